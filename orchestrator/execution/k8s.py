"""k6-operator runs: manifests for a ``TestRun``, and the kubectl flow to one report.

``orch run SCENARIO --runner k8s --parallelism N`` renders the script and builds:

- a ConfigMap with the script and its ``k6_scripts/`` helpers. ConfigMap keys cannot hold
  folders, so ``k6_scripts/auth.js`` becomes the key ``k6_scripts__auth.js`` and every
  relative import or ``open()`` of such a file is rewritten to the flat name
  (:func:`flatten_script`);
- a Secret with the k6 variables that hold secrets (and the test users), read by the
  runners through ``envFrom``. Its values never reach a file: a dry run writes placeholders
  and prints a ``kubectl create secret`` command that reads them from the environment;
- a ``TestRun`` (``k6.io/v1alpha1``): ``parallelism`` runner pods, each running its
  execution segment and writing ``raw.csv.gz`` and ``summary.json`` to its own folder
  (``<run>/<pod name>``) on a shared PersistentVolumeClaim, ``cleanup: post``.

With kubectl and a context (not a production one: :func:`guard_context`), orch applies
them, waits on ``status.stage``, copies every runner's folder back through a short-lived
pod that mounts the claim, and merges them (:mod:`orchestrator.results.merge`) into one run
folder. Every kubectl call goes through :func:`kubectl`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.config import OrchConfig, ResolvedRun, url_host
from orchestrator.core import (
    ConfigError,
    ExitCode,
    K6Error,
    OrchError,
    Outcome,
    RefusedError,
    SetupError,
)
from orchestrator.execution.lifecycle import (
    Echo,
    PreparedRun,
    RunEnding,
    RunLifecycle,
    RunResult,
    new_manifest,
)
from orchestrator.execution.outputs import outputs_not_sent
from orchestrator.execution.progress import planned_seconds
from orchestrator.execution.render import BASE_URL_VAR, N8N_BASE_URL_VAR, RenderedScript
from orchestrator.results import (
    RunFolder,
    RunManifest,
    find_sources,
    iso,
    judge_merged,
    merge_into,
    utc_now,
)
from orchestrator.target import TargetWatch

API_VERSION = "k6.io/v1alpha1"
MANIFESTS_DIR = "k8s"
RESULTS_MOUNT = "/results"  # where each runner sees its own folder on the shared claim
CONFIGMAP_LIMIT = 1_000_000  # bytes; Kubernetes refuses ConfigMaps over 1 MiB
K6_UID = 12345  # the grafana/k6 image's user
MAX_PARALLELISM = 1000
# Context names that say production, whatever the config declares.
_PRODUCTION_WORDS = {"prod", "production", "prd", "live"}
_KEY_SAFE = re.compile(r"[^-._a-zA-Z0-9]")
_REF = re.compile(
    r"""(?P<pre>\bfrom\s*|\bimport\s*\(?\s*|\bopen\s*\(\s*|\brequire\s*\(\s*)"""
    r"""(?P<q>['"`])(?P<path>\.{1,2}/[^'"`$]+)(?P=q)"""
)


@dataclass(frozen=True)
class K8sSettings:
    """Where and how the TestRun runs; from ORCH_K8S_* variables, else the defaults."""

    namespace: str = "default"
    image: str = "grafana/k6:1.1.0"
    results_claim: str = "orch-results"
    collector_image: str = "busybox:1.36"
    stage_timeout_s: float = 3600.0

    @classmethod
    def from_env(cls, image: str) -> K8sSettings:
        """ORCH_K8S_NAMESPACE, ORCH_K8S_IMAGE (default: the environment's docker_image),
        ORCH_K8S_RESULTS_CLAIM, ORCH_K8S_COLLECTOR_IMAGE."""
        return cls(
            namespace=os.environ.get("ORCH_K8S_NAMESPACE") or "default",
            image=os.environ.get("ORCH_K8S_IMAGE") or image,
            results_claim=os.environ.get("ORCH_K8S_RESULTS_CLAIM") or "orch-results",
            collector_image=os.environ.get("ORCH_K8S_COLLECTOR_IMAGE") or "busybox:1.36",
        )


@dataclass
class Manifests:
    """The objects of one TestRun, and the secret values that must not reach a file."""

    name: str
    configmap: dict[str, Any]
    secret: dict[str, Any] | None  # with placeholders for values
    testrun: dict[str, Any]
    secret_sources: dict[str, str] = field(default_factory=dict)  # k6 name -> host variable

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Every object, in the order to apply them."""
        return [self.configmap, *([self.secret] if self.secret else []), self.testrun]


def flat_key(relative: str) -> str:
    """The ConfigMap key of a file of the script folder: ``k6_scripts/data/x.json`` →
    ``k6_scripts__data__x.json``."""
    return _KEY_SAFE.sub("_", relative.replace("/", "__"))


def flatten_script(script_dir: Path, script_name: str) -> dict[str, str]:
    """The script folder as ConfigMap data: flat keys, with relative references between
    its files (``import … from './k6_scripts/x.js'``, ``open('./k6_scripts/data/y')``)
    rewritten to ``./<flat key>``, so it runs from one flat folder as it did from the tree."""
    files = sorted(
        p.relative_to(script_dir).as_posix() for p in script_dir.rglob("*") if p.is_file()
    )
    if script_name not in files:
        raise ConfigError(f"{script_dir} has no {script_name}; render the scenario first")
    data: dict[str, str] = {}
    for relative in files:
        try:
            text = (script_dir / relative).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"{script_dir / relative} is not UTF-8 text; a ConfigMap holds text files only"
            ) from None
        parent = PurePosixPath(relative).parent

        def rewrite(match: re.Match[str], parent: PurePosixPath = parent) -> str:
            target = _normalise(parent / match["path"])
            if target not in files:
                return match.group(0)
            q = match["q"]
            return f"{match['pre']}{q}./{flat_key(target)}{q}"

        key = script_name if relative == script_name else flat_key(relative)
        data[key] = _REF.sub(rewrite, text)
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > CONFIGMAP_LIMIT:
        raise ConfigError(
            f"the script and its helpers take {size:,} bytes, over a ConfigMap's 1 MiB; "
            "move large data files out of k6_scripts/ (or serve them over HTTP)"
        )
    return data


def _normalise(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


def testrun_name(run_dir: Path) -> str:
    """A DNS-1123 name (at most 52 characters: pod names add suffixes) from a run folder."""
    name = re.sub(r"[^a-z0-9-]+", "-", run_dir.name.lower()).strip("-")
    name = f"orch-{name}"[:52].rstrip("-")
    return name


def runner_arguments() -> str:
    """``spec.arguments``: each runner writes gzipped CSV and its summary to its folder."""
    return (
        f"--out csv={RESULTS_MOUNT}/{RunFolder.RAW_CSV}.gz "
        f"--summary-export={RESULTS_MOUNT}/{RunFolder.SUMMARY} --no-color --no-usage-report"
    )


def build_manifests(
    run: ResolvedRun,
    rendered: RenderedScript,
    *,
    name: str,
    parallelism: int,
    settings: K8sSettings,
    secret_names: list[str],
    run_id: str,
) -> Manifests:
    """The ConfigMap, Secret (placeholders only) and TestRun of one run.

    ``secret_names`` are the k6 variables the Secret holds (their values stay in memory).
    """
    if not 1 <= parallelism <= MAX_PARALLELISM:
        raise ConfigError(f"--parallelism must be between 1 and {MAX_PARALLELISM}")
    labels = {
        "app.kubernetes.io/managed-by": "orch",
        "orch/scenario": _label_value(run.scenario_name),
        "orch/environment": _label_value(run.environment_name),
    }
    meta: dict[str, Any] = {"name": name, "namespace": settings.namespace, "labels": labels}
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**meta, "name": f"{name}-script"},
        "data": flatten_script(rendered.directory, rendered.script_name),
    }
    secret: dict[str, Any] | None = None
    if secret_names:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {**meta, "name": f"{name}-secrets"},
            "type": "Opaque",
            "stringData": {key: f"<set from the environment: {key}>" for key in secret_names},
        }
    env = [
        {"name": BASE_URL_VAR, "value": run.base_url},
        {"name": N8N_BASE_URL_VAR, "value": run.n8n_base_url},
        {"name": "ORCH_RUN_ID", "value": run_id},
        {"name": "K6_WEB_DASHBOARD", "value": "false"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    runner: dict[str, Any] = {
        "image": settings.image,
        "metadata": {"labels": labels},
        "env": env,
        # Each pod writes into <run>/<pod name> on the shared claim; fsGroup lets the
        # image's non-root user (12345) write there.
        "securityContext": {"fsGroup": K6_UID},
        "volumes": [
            {"name": "results", "persistentVolumeClaim": {"claimName": settings.results_claim}}
        ],
        "volumeMounts": [
            {"name": "results", "mountPath": RESULTS_MOUNT, "subPathExpr": f"{name}/$(POD_NAME)"}
        ],
    }
    if secret is not None:
        runner["envFrom"] = [{"secretRef": {"name": secret["metadata"]["name"]}}]
    testrun = {
        "apiVersion": API_VERSION,
        "kind": "TestRun",
        "metadata": meta,
        "spec": {
            "parallelism": parallelism,
            "script": {
                "configMap": {"name": configmap["metadata"]["name"], "file": rendered.script_name}
            },
            "arguments": runner_arguments(),
            "cleanup": "post",
            "runner": runner,
        },
    }
    return Manifests(name, configmap, secret, testrun)


def _label_value(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("-._") or "none"


def to_yaml(obj: dict[str, Any]) -> str:
    """One object as YAML (block style, keys in the order built)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    return str(yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100))


# --- kubectl ------------------------------------------------------------------------------


def kubectl(
    args: list[str], *, input_text: str | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl ARGS`` (the one place orch calls kubectl); raise on failure.

    ``input_text`` goes to stdin (Secrets are applied this way, never through a file).
    """
    command = ["kubectl", *args]
    try:
        done = subprocess.run(
            command,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise SetupError(
            "kubectl is not installed; install it and select a cluster context, or use "
            "--dry-run to write the manifests and the commands to run"
        ) from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"`{shlex.join(command)}` did not answer in {timeout:.0f} s") from None
    if done.returncode != 0:
        raise SetupError(
            f"`{shlex.join(command)}` failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[:500]}"
        )
    return done


@dataclass(frozen=True)
class ClusterContext:
    """The kubectl context a run would use."""

    name: str
    server: str


def current_context() -> ClusterContext:
    """The current kubectl context and its API server."""
    name = kubectl(["config", "current-context"]).stdout.strip()
    server = kubectl(
        ["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"]
    ).stdout.strip()
    return ClusterContext(name, server)


def guard_context(config: OrchConfig, context: ClusterContext) -> None:
    """Refuse a cluster context that is production: its API server is a declared production
    host, or its name names one or says ``prod``/``production``/``prd``/``live``."""

    production = config.production_hosts()
    server_host = url_host(context.server) if context.server else None
    words = {w for w in re.split(r"[^a-z0-9]+", context.name.lower()) if w}
    reasons = []
    if server_host and production.matches(server_host):
        reasons.append(f"its API server {server_host} is declared as production")
    named = sorted(h for h in production.names if h and h in context.name.lower())
    if named:
        reasons.append(f"its name contains the production host {named[0]}")
    if words & _PRODUCTION_WORDS:
        reasons.append(f"its name says {sorted(words & _PRODUCTION_WORDS)[0]!r}")
    if reasons:
        raise RefusedError(
            f"refusing to run a load test on cluster context {context.name!r}: "
            f"{'; '.join(reasons)} (there is no override); switch to a staging cluster with "
            "`kubectl config use-context NAME`"
        )


# --- the run ------------------------------------------------------------------------------


def write_manifests(run_dir: Path, manifests: Manifests) -> list[Path]:
    """Write the manifests (the Secret with placeholders only) into ``run_dir/k8s``."""
    folder = run_dir / MANIFESTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for obj in manifests.objects:
        path = folder / f"{obj['kind'].lower()}.yaml"
        path.write_text(to_yaml(obj), encoding="utf-8")
        written.append(path)
    return written


def kubectl_commands(run_dir: Path, manifests: Manifests) -> list[str]:
    """The commands a person runs to do by hand what the live path does."""
    folder = run_dir / MANIFESTS_DIR
    ns = manifests.testrun["metadata"]["namespace"]
    name = manifests.name
    commands = []
    if manifests.secret is not None:
        sources = " ".join(
            f'--from-file={k}=<(printf %s "${v}")' for k, v in manifests.secret_sources.items()
        )
        commands.append(
            f"kubectl -n {ns} create secret generic {manifests.secret['metadata']['name']} "
            f"{sources}   # bash: reads the values from your environment"
        )
    commands.append(f"kubectl apply -f {shlex.quote(str(folder / 'configmap.yaml'))}")
    commands.append(f"kubectl apply -f {shlex.quote(str(folder / 'testrun.yaml'))}")
    commands.append(f"kubectl -n {ns} get testrun {name} -o jsonpath='{{.status.stage}}'")
    commands.append(
        f"# when the stage is 'finished': copy {name}/ from the claim "
        f"{manifests.testrun['spec']['runner']['volumes'][0]['persistentVolumeClaim']['claimName']}"
        f" into {shlex.quote(str(run_dir / 'runners'))}, then:"
    )
    commands.append(
        f"orch report --merge {shlex.quote(str(run_dir / 'runners'))}/* --out "
        f"{shlex.quote(str(run_dir / 'merged'))}"
    )
    return commands


class K6OperatorRun(RunLifecycle):
    """The run as a k6-operator TestRun of ``parallelism`` runner pods on the current
    kubectl context (never a production one): apply, wait on ``status.stage``, copy every
    runner's folder back, merge. A dry run writes the manifests and the kubectl commands
    and applies nothing."""

    def __init__(self, *, parallelism: int, dry_run: bool, echo: Echo) -> None:
        self.parallelism, self.dry_run, self.echo = parallelism, dry_run, echo
        self._context: ClusterContext | None = None
        self._settings: K8sSettings | None = None
        self._state: _Applied | None = None

    def prepare(self, config: OrchConfig, run: ResolvedRun) -> PreparedRun:
        if not self.dry_run:
            self._context = current_context()
            guard_context(config, self._context)
            if _is_loopback(run.base_url) or _is_loopback(run.n8n_base_url):
                raise ConfigError(
                    f"environment {run.environment_name!r} targets {run.base_url}, a loopback "
                    "address: runner pods would load themselves; use an environment whose URL "
                    "the cluster reaches"
                )
        self._settings = K8sSettings.from_env(run.environment.docker_image)
        return super().prepare(config, run)

    def plan(self, prepared: PreparedRun, run: ResolvedRun) -> None:
        assert self._settings is not None
        run_dir, rendered, test_users = prepared.run_dir, prepared.rendered, prepared.test_users
        secret_values = dict(run.secret_env)
        if test_users:
            secret_values["ORCH_TEST_USERS"] = json.dumps(test_users)
        manifests = build_manifests(
            run,
            rendered,
            name=testrun_name(run_dir),
            parallelism=self.parallelism,
            settings=self._settings,
            secret_names=sorted(secret_values),
            run_id=run_dir.name,
        )
        manifests.secret_sources = {
            **run.environment.secrets,
            **({"ORCH_TEST_USERS": "ORCH_TEST_USERS"} if test_users else {}),
        }
        write_manifests(run_dir, manifests)
        manifest = new_manifest(
            run,
            runner=f"k8s x{self.parallelism}",
            k6_version=self._settings.image,
            files={
                "script": f"{RunFolder.SCRIPT}/{rendered.script_name}",
                "config": RunFolder.CONFIG,
                "manifests": MANIFESTS_DIR,
            },
        )
        self._state = _Applied(run_dir, manifest, manifests, secret_values)
        if self.dry_run:
            if _is_loopback(run.base_url):
                manifest.notes.append(
                    f"the target {run.base_url} is a loopback address: pods cannot reach it"
                )
            manifest.outcome, manifest.exit_code = Outcome.DRY_RUN, int(ExitCode.OK)
            manifest.notes.append("dry run: manifests written to k8s/, nothing applied")
            manifest.ended_at = iso(utc_now())
        else:
            assert self._context is not None
            manifest.notes.append(f"cluster context {self._context.name} ({self._context.server})")
        if note := outputs_not_sent(run):
            manifest.notes.append(note)
            self.echo(f"warning: {note}")
        manifest.save(run_dir)

    @property
    def state(self) -> _Applied:
        assert self._state is not None and self._settings is not None, "plan() first"
        return self._state

    def result_without_load(self) -> RunResult | None:
        if not self.dry_run:
            return None
        state = self.state
        commands = tuple(kubectl_commands(state.run_dir, state.manifests))
        return RunResult(state.run_dir, Outcome.DRY_RUN, ExitCode.OK, None, None, commands)

    def target(
        self, run: ResolvedRun, run_dir: Path, echo: Echo
    ) -> contextlib.AbstractContextManager[TargetWatch]:
        return contextlib.nullcontext(TargetWatch())  # the cluster's target, not watched here

    def start(self) -> None:
        state, ns = self.state, self._namespace
        state.started = time.monotonic()
        manifests = state.manifests
        kubectl(["-n", ns, "apply", "-f", "-"], input_text=json.dumps(manifests.configmap))
        if manifests.secret is not None:
            secret = {**manifests.secret, "stringData": state.secret_values}
            kubectl(["-n", ns, "apply", "-f", "-"], input_text=json.dumps(secret))
        kubectl(["-n", ns, "apply", "-f", "-"], input_text=json.dumps(manifests.testrun))
        self.echo(
            f"applied TestRun {ns}/{manifests.name} "
            f"({manifests.testrun['spec']['parallelism']} runners)"
        )

    def wait(self) -> bool:
        assert self._settings is not None
        state, ns, name = self.state, self._namespace, self.state.manifests.name
        planned = planned_seconds(state.manifest.load_profile or {}) or 0.0
        deadline = time.monotonic() + planned + self._settings.stage_timeout_s
        while True:
            now_stage = kubectl(
                ["-n", ns, "get", "testrun", name, "-o", "jsonpath={.status.stage}"]
            ).stdout.strip()
            if now_stage != state.stage:
                state.stage = now_stage
                self.echo(
                    f"  {time.monotonic() - state.started:5.0f}s  stage: {now_stage or '(pending)'}"
                )
            if state.stage in ("finished", "error"):
                return False
            if time.monotonic() > deadline:
                raise K6Error(f"TestRun {ns}/{name} did not finish in time (stage {state.stage!r})")
            time.sleep(5.0)

    def collect(self, ending: RunEnding) -> None:
        assert self._settings is not None
        state = self.state
        if ending.interrupted:
            self._record_failure(
                Outcome.INTERRUPTED,
                ExitCode.INTERRUPTED,
                "stopped while waiting; the TestRun may still run: "
                f"kubectl -n {self._namespace} delete testrun {state.manifests.name}",
            )
            return
        if isinstance(ending.problem, OrchError):
            self._record_failure(
                Outcome.K6_ERROR,
                ending.problem.exit_code,
                f"the cluster run failed: {ending.problem.message}",
            )
            return
        if ending.problem is not None:
            return
        runners_dir = state.run_dir / "runners"
        try:
            collect_outputs(self._namespace, state.manifests.name, self._settings, runners_dir)
        except OrchError as exc:
            self._record_failure(
                Outcome.K6_ERROR, exc.exit_code, f"the cluster run failed: {exc.message}"
            )
            raise
        state.collected = runners_dir

    def finish(self) -> RunResult:
        state = self.state
        manifest, run_dir = state.manifest, state.run_dir
        if state.collected is None:  # interrupted: run.json says what to do
            assert manifest.outcome is not None
            return RunResult(run_dir, manifest.outcome, ExitCode.INTERRUPTED, None, None)
        sources = find_sources(sorted(p for p in state.collected.iterdir() if p.is_dir()))
        merged = merge_into(run_dir, sources)
        manifest.files.update({"raw": merged.raw_path.name, "summary": RunFolder.MERGED_SUMMARY})
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = round(time.monotonic() - state.started, 3)
        if state.stage == "error":
            manifest.notes.append("the k6-operator reported stage 'error'")

        def save(outcome: Outcome, code: ExitCode) -> None:
            manifest.outcome, manifest.exit_code = outcome, int(code)
            manifest.save(run_dir)

        outcomes: list[Outcome | None] = [Outcome.K6_ERROR] if state.stage == "error" else []
        outcome, code, report = judge_merged(run_dir, outcomes, save)
        return RunResult(run_dir, outcome, code, None, report.report_path)

    @property
    def _namespace(self) -> str:
        assert self._settings is not None
        return self._settings.namespace

    def _record_failure(self, outcome: Outcome, code: ExitCode, note: str) -> None:
        manifest = self.state.manifest
        manifest.outcome, manifest.exit_code = outcome, int(code)
        manifest.ended_at = iso(utc_now())
        manifest.notes.append(note)
        manifest.save(self.state.run_dir)


@dataclass
class _Applied:
    """A TestRun's state across the lifecycle: its folder, run.json, manifests, stage."""

    run_dir: Path
    manifest: RunManifest
    manifests: Manifests
    secret_values: dict[str, str]  # never written to a file: applied as stringData only
    started: float = 0.0
    stage: str = ""
    collected: Path | None = None


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def collect_outputs(namespace: str, name: str, settings: K8sSettings, into: Path) -> None:
    """Copy ``<name>/`` from the results claim into ``into`` through a short-lived pod."""
    pod = f"{name}-collect"[:63]
    overrides = {
        "apiVersion": "v1",
        "spec": {
            "volumes": [
                {"name": "results", "persistentVolumeClaim": {"claimName": settings.results_claim}}
            ],
            "containers": [
                {
                    "name": "collect",
                    "image": settings.collector_image,
                    "command": ["sleep", "600"],
                    "volumeMounts": [{"name": "results", "mountPath": RESULTS_MOUNT}],
                }
            ],
        },
    }
    kubectl(
        [
            "-n",
            namespace,
            "run",
            pod,
            "--restart=Never",
            f"--image={settings.collector_image}",
            f"--overrides={json.dumps(overrides)}",
        ]
    )
    try:
        kubectl(
            ["-n", namespace, "wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=180s"],
            timeout=200,
        )
        # `kubectl cp POD:DIR DEST` makes DEST a copy of DIR (one folder per runner pod).
        kubectl(["-n", namespace, "cp", f"{pod}:{RESULTS_MOUNT}/{name}", str(into)], timeout=1800)
    finally:
        kubectl(["-n", namespace, "delete", "pod", pod, "--wait=false"])

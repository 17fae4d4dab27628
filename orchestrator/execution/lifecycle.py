"""One run, end to end: folder, script, target, k6, raw output, report, manifest.

:func:`execute_run` prints nothing itself: it reports through an ``echo`` callback and
returns a :class:`RunResult`. Whatever happens (threshold failure, k6 crash, Ctrl-C, a
failing report) every file already written stays, and ``run.json`` says how it ended.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

from orchestrator.config.egress import EgressPolicy
from orchestrator.config.k6_options import max_vus
from orchestrator.config.model import OrchConfig, ResolvedRun
from orchestrator.config.secrets import Redactor
from orchestrator.core.errors import ConfigError, ExitCode, OrchError, SetupError
from orchestrator.core.outcome import Outcome
from orchestrator.execution.progress import (
    ProgressMonitor,
    ProgressSnapshot,
    free_loopback_port,
    planned_seconds,
)
from orchestrator.execution.render import (
    BASE_URL_VAR,
    N8N_BASE_URL_VAR,
    RenderedScript,
    render_script,
)
from orchestrator.execution.runner import (
    K6Invocation,
    K6Outcome,
    K6Runner,
    LineSink,
    dropped_variables,
)
from orchestrator.results.run_folder import RunFolder, RunManifest, iso, utc_now, write_json

Echo = Callable[[str], None]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its files are."""

    run_dir: Path
    outcome: Outcome
    exit_code: ExitCode
    k6_exit_code: int | None
    report_path: Path | None


def new_manifest(
    run: ResolvedRun, *, runner: str, k6_version: str, files: dict[str, str], **extra: Any
) -> RunManifest:
    """The manifest a run starts with: what runs, where, with which load and targets."""
    return RunManifest.start(
        scenario=run.scenario_name,
        environment=run.environment_name,
        profile=run.profile_name,
        runner=runner,
        k6_version=k6_version,
        started_at=extra.pop("started_at", None) or iso(utc_now()),
        files=files,
        load_profile=run.profile.k6_options(),
        thresholds=run.thresholds,
        target={"base_url": run.base_url, "n8n_base_url": run.n8n_base_url},
        **extra,
    )


def classify(outcome: K6Outcome) -> tuple[Outcome, ExitCode]:
    """Map how k6 ended to run.json's outcome and orch's exit code."""
    if outcome.interrupted or outcome.exit_code == 105:
        return Outcome.INTERRUPTED, ExitCode.INTERRUPTED
    if outcome.exit_code is None:
        return Outcome.CRASHED, ExitCode.K6_ERROR
    if outcome.exit_code == 0:
        return Outcome.PASSED, ExitCode.OK
    if outcome.exit_code == 99:
        return Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS
    return Outcome.K6_ERROR, ExitCode.K6_ERROR


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a run is in progress (CI cancels with SIGTERM)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def target_for(run: ResolvedRun, run_dir: Path, echo: Echo) -> Iterator[None]:
    """Start the embedded sandbox for a local run when nothing listens at its URL."""
    if run.environment.kind != "local" or run.environment.sandbox is None:
        yield
        return
    from orchestrator.target.sandbox import SandboxSettings, is_listening, start_sandbox

    if is_listening(run.base_url):
        echo(f"target: {run.base_url} is already listening; using it")
        yield
        return
    parts = urlsplit(run.base_url)
    if parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"environment {run.environment_name!r} has a sandbox but its base_url "
            f"{run.base_url} is not a loopback address; use http://127.0.0.1:PORT"
        )
    # validated when the config was read; the port comes from base_url
    settings = SandboxSettings.model_validate({**run.environment.sandbox, "port": parts.port or 80})
    with start_sandbox(settings, log_path=run_dir / "sandbox.log") as sandbox:
        echo(f"target: started the embedded sandbox at {sandbox.url} (pid {sandbox.pid})")
        yield


def _progress_printer(echo: Echo, total_s: float | None) -> Callable[[ProgressSnapshot], None]:
    last_print = [0.0]

    def show(snap: ProgressSnapshot) -> None:
        now = time.monotonic()
        if now - last_print[0] < 5.0:
            return
        last_print[0] = now
        of_total = f"/{total_s:.0f}s" if total_s else "s"
        echo(
            f"  {snap.elapsed_s:5.0f}{of_total}  {snap.requests:>9,} requests  "
            f"errors {snap.error_rate:6.2%}  VUs {snap.vus} active/{snap.vus_max}"
        )

    return show


# What k6 prints when its connect-time allow-list (blacklistIPs, blockHostnames) or the
# script's checked request function refuses a connection.
BLOCKED_MARKERS = ("is in a blacklisted range", "is in a blocked pattern", "orch egress: refused")
EGRESS_RULE_VAR = "ORCH_EGRESS_RULE"


class BlockedConnections:
    """Counts the connections k6 refused because they left the allow-list."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def see(self, line: str) -> None:
        if any(marker in line for marker in BLOCKED_MARKERS):
            self.count += 1
            if len(self.examples) < 3:
                self.examples.append(line.strip()[:300])


@dataclass(frozen=True)
class PreparedRun:
    """A new run folder with its script and configuration, and what k6 will be given."""

    run_dir: Path
    rendered: RenderedScript
    test_users: list[dict[str, str]]
    redact: Redactor  # hides secret values and test-user passwords
    policy: EgressPolicy
    blocked: BlockedConnections

    def k6_env(self, run: ResolvedRun) -> dict[str, str]:
        """The variables k6 sees: targets, the run id, test users, the production-N8N rule
        and secrets (the runner adds PATH and HOME, nothing else of orch's environment)."""
        shared = self.policy.shared_n8n
        return {
            BASE_URL_VAR: run.base_url,
            N8N_BASE_URL_VAR: run.n8n_base_url,
            "ORCH_RUN_ID": self.run_dir.name,
            **({"ORCH_TEST_USERS": json.dumps(self.test_users)} if self.test_users else {}),
            **({EGRESS_RULE_VAR: json.dumps(shared.js_rule())} if shared else {}),
            **run.secret_env,
        }

    def egress_notes(self) -> list[str]:
        """What run.json and the report say about the allow-list and k6's environment."""
        notes = []
        shared = self.policy.shared_n8n
        if shared:
            notes.append(
                f"production N8N ({shared.host}) used with test workflows: only "
                f"{', '.join(shared.paths)}"
                + (f", at most {shared.max_requests_per_second:g} req/s"
                   if shared.max_requests_per_second else "")
            )
        dropped = dropped_variables()
        if dropped:
            notes.append(
                f"k6 ran without these variables of orch's environment, which could override "
                f"the script's protections: {', '.join(dropped)}"
            )
        return notes

    def users_note(self, run: ResolvedRun) -> str | None:
        """What run.json says about test users, or None without any."""
        if not self.test_users:
            return None
        count = len(self.test_users)
        vus = max_vus(run.profile.k6_options())
        share = f"; {vus} VUs share them, wrapping round" if vus and vus > count else ""
        return f"{count} test users, one per VU{share}"


def prepare_run(config: OrchConfig, run: ResolvedRun) -> PreparedRun:
    """Check the run against its environment's allow-list (RefusedError, before anything is
    written), create the run folder, render the script into it and write the resolved config.

    A folder whose script could not be rendered is removed again: it would hold nothing.
    """
    from orchestrator.config.guard import guard_run
    from orchestrator.target.users import USERS_FILE, users_for_run

    policy = guard_run(config, run, "run a load test")
    test_users = users_for_run(config.root / USERS_FILE, run.environment_name)
    run_dir = RunFolder.create(config.results_dir, run.scenario_name, run.environment_name).path
    try:
        rendered = render_script(config, run, run_dir / RunFolder.SCRIPT, policy)
    except OrchError:
        _remove_empty_run_dir(run_dir)
        raise
    write_json(run_dir / RunFolder.CONFIG, run.public_summary())
    redact = Redactor([*run.secret_env.values(), *(u["password"] for u in test_users)])
    return PreparedRun(run_dir, rendered, test_users, redact, policy, BlockedConnections())


def record_outcome(
    manifest: RunManifest,
    outcome: K6Outcome,
    redact: Redactor,
    blocked: BlockedConnections | None = None,
) -> ExitCode:
    """Write how k6 ended into the manifest (not yet saved); return orch's exit code.

    A run in which k6 refused a connection outside the allow-list is ``refused`` (exit 6),
    whatever its thresholds say: it tried to reach somewhere it may not.
    """
    name, code = classify(outcome)
    if blocked is not None and blocked.count and name != Outcome.INTERRUPTED:
        name, code = Outcome.REFUSED, ExitCode.REFUSED
        manifest.notes.append(
            f"k6 refused {blocked.count} connection(s) outside the allow-list (a redirect or "
            f"a URL leading elsewhere), e.g.: {redact(blocked.examples[0])}"
        )
    manifest.command = [redact(part) for part in outcome.command]
    manifest.k6_exit_code = outcome.exit_code
    manifest.k6_signal = outcome.killed_by_signal
    manifest.outcome = name
    manifest.exit_code = int(code)
    return code


def log_lines(
    log: TextIO,
    redact: Redactor,
    echo: Echo,
    label: str = "k6",
    blocked: BlockedConnections | None = None,
) -> LineSink:
    """A sink for k6's output: every line (redacted) to the log, errors also to ``echo``,
    connections k6 refused counted in ``blocked``."""

    def on_line(line: str) -> None:
        if blocked is not None:
            blocked.see(line)
        clean = redact(line)
        log.write(clean + "\n")
        log.flush()
        if "level=error" in clean or "level=warning" in clean:
            echo(f"  {label}: {clean}")

    return on_line


def compact_raw(run_dir: Path, manifest: RunManifest, echo: Echo) -> Path | None:
    """Compact k6's raw CSV (see ``ingest.finalize_raw``); on any failure keep the CSV,
    note why, and return None."""
    try:
        from orchestrator.results.ingest import finalize_raw

        raw = finalize_raw(run_dir)
    except KeyboardInterrupt:  # a Ctrl-C during the conversion: say so, then stop
        manifest.notes.append(
            f"raw output left as written ({RunFolder.RAW_CSV}): its conversion to "
            f"{RunFolder.RAW_PARQUET} was interrupted"
        )
        manifest.save(run_dir)
        raise
    except Exception as exc:  # any failure here must keep the CSV and the run folder
        note = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        manifest.notes.append(f"raw output left as written: {note}")
        echo(f"warning: raw output left as written: {note}")
        return None
    if raw is not None:
        manifest.files["raw"] = raw.name
        if raw.name == RunFolder.RAW_CSV and raw.is_file() and raw.stat().st_size > 0:
            note = (  # finalize_raw keeps the CSV when it cannot convert it
                f"raw output left as written ({raw.name}): it could not be converted to "
                f"{RunFolder.RAW_PARQUET}"
            )
            manifest.notes.append(note)
            echo(f"warning: {note}")
    return raw


def execute_run(
    config: OrchConfig,
    run: ResolvedRun,
    runner: K6Runner,
    *,
    echo: Echo,
    make_report: bool = True,
) -> RunResult:
    """Run ``run`` with ``runner`` into a new run folder and return how it ended."""
    prepared = prepare_run(config, run)
    run_dir = prepared.run_dir
    manifest = new_manifest(
        run,
        runner=runner.name,
        k6_version=runner.version(),
        files={
            "script": f"{RunFolder.SCRIPT}/{prepared.rendered.script_name}",
            "config": RunFolder.CONFIG,
            "log": RunFolder.LOG,
            "summary": RunFolder.SUMMARY,
            "raw": RunFolder.RAW_CSV,
        },
    )
    if note := prepared.users_note(run):
        manifest.notes.append(note)
    manifest.notes += prepared.egress_notes()
    manifest.egress = prepared.policy.describe()
    manifest.dropped_environment = dropped_variables()
    manifest.save(run_dir)
    echo(f"run folder: {run_dir}")
    invocation = K6Invocation(
        script_dir=prepared.rendered.directory,
        script_name=prepared.rendered.script_name,
        run_dir=run_dir,
        env=prepared.k6_env(run),
        api_address=f"127.0.0.1:{free_loopback_port()}",
    )
    started = time.monotonic()
    outcome: K6Outcome | None = None
    try:
        with (
            sigterm_as_interrupt(),
            open(run_dir / RunFolder.LOG, "w", encoding="utf-8") as log,
        ):
            try:
                with target_for(run, run_dir, echo):
                    outcome = _run_k6(
                        runner,
                        invocation,
                        run,
                        log_lines(log, prepared.redact, echo, blocked=prepared.blocked),
                        echo,
                    )
            except KeyboardInterrupt:
                outcome = K6Outcome(exit_code=None, interrupted=True)
    finally:
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = round(time.monotonic() - started, 3)
        if outcome is None:  # an error before or while starting k6
            manifest.outcome = Outcome.K6_ERROR
            manifest.notes.append(f"k6 did not run to completion; see {RunFolder.LOG}")
            manifest.save(run_dir)
    code = record_outcome(manifest, outcome, prepared.redact, prepared.blocked)
    manifest.save(run_dir)

    report_path = _finish_outputs(run_dir, manifest, echo, make_report)
    assert manifest.outcome is not None  # record_outcome set it
    return RunResult(run_dir, manifest.outcome, code, outcome.exit_code, report_path)


def _run_k6(
    runner: K6Runner, invocation: K6Invocation, run: ResolvedRun, on_line: LineSink, echo: Echo
) -> K6Outcome:
    """Run k6 with live progress, its output going to ``on_line``."""
    total = planned_seconds(run.profile.k6_options())
    printer = _progress_printer(echo, total)
    assert invocation.api_address is not None
    echo(
        f"k6 {runner.version()} ({runner.name}) running {run.scenario_name} "
        f"[{run.profile_name}] against {run.base_url}"
    )
    with ProgressMonitor(invocation.api_address, printer):
        return runner.run(invocation, on_line)


def _finish_outputs(
    run_dir: Path, manifest: RunManifest, echo: Echo, make_report: bool
) -> Path | None:
    """Compact the raw output and build the report; a failure here loses no file."""
    compact_raw(run_dir, manifest, echo)
    manifest.save(run_dir)
    if not make_report:
        return None
    try:
        from orchestrator.results.report import build_report

        return build_report(run_dir).report_path
    except Exception as exc:  # the run's files stay; the report can be rebuilt later
        note = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        manifest.notes.append(f"report not built: {note}")
        manifest.save(run_dir)
        echo(f"warning: report not built: {note}; rebuild it with `orch report {run_dir}`")
        return None


def _remove_empty_run_dir(run_dir: Path) -> None:
    """Remove a run folder that holds nothing but a partial script render."""
    import shutil

    with contextlib.suppress(OSError):
        shutil.rmtree(run_dir)


def select_runner(choice: str, *, k6_path: str | None, docker_image: str, echo: Echo) -> K6Runner:
    """The runner to use: native, docker, or auto (native when a good k6 exists)."""
    from orchestrator.execution.k6bin import find_k6
    from orchestrator.execution.runner import NativeRunner

    if choice == "native":
        binary = find_k6(k6_path)
        return NativeRunner(binary.path, binary.version_text)
    if choice == "docker":
        return _docker_runner(docker_image)
    if choice != "auto":
        raise ConfigError(f"unknown runner {choice!r}; use auto, native or docker")
    try:
        binary = find_k6(k6_path)
    except SetupError as native_problem:
        try:
            runner = _docker_runner(docker_image)
        except SetupError as docker_problem:
            raise SetupError(
                f"no usable runner: native: {native_problem.message}; "
                f"docker: {docker_problem.message}"
            ) from None
        echo(f"runner: docker ({docker_image}), because {native_problem.message}")
        return runner
    return NativeRunner(binary.path, binary.version_text)


def _docker_runner(image: str) -> K6Runner:
    from orchestrator.execution.docker import DockerRunner

    runner = DockerRunner(image)
    runner.version()  # raises SetupError when the engine or image is unusable or too old
    return runner

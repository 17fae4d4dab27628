"""Any k6 script: ``orch run path/to/script.js`` runs a script written without orch.

The script keeps its own options (scenarios, thresholds, everything else): orch reads them
with ``k6 inspect`` (k6's own reading, the one ``k6 run`` uses) and adds only what protects
the run, as ``k6 run`` flags, which win over the script's options (k6's precedence: CLI
flags > ``K6_*`` variables > the script's ``options`` > a config file; docs/staging.md):

- ``--blacklist-ip``/``--block-hostnames``: the environment's allow-list, enforced by k6 at
  connect time, as for orch's own scenarios;
- ``--no-usage-report``, ``--summary-export`` and ``--out csv=`` (the runner adds them).

A script is refused (exit 6) before anything runs when it would set the protection
itself (``blacklistIPs``, ``blockHostnames``, ``hosts``), when it names a URL the
environment may not reach, or when the environment uses the production N8N (whose
webhook-path rule only orch's own scenarios enforce).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from orchestrator.config import (
    EgressPolicy,
    OrchConfig,
    Redactor,
    ResolvedRun,
    guard_run,
    resolve_script,
)
from orchestrator.config.guard import check_written_targets
from orchestrator.core import ConfigError, RefusedError, SetupError
from orchestrator.execution.k6bin import find_k6
from orchestrator.execution.render import BASE_URL_VAR, N8N_BASE_URL_VAR
from orchestrator.execution.runner import k6_environment

ACTION = "run a k6 script"
# Options through which a script would set (or undo) what protects the run.
PROTECTION_OPTIONS = {
    "blacklistIPs": "the addresses k6 may not connect to",
    "blockHostnames": "the host names k6 may not connect to",
    "hosts": "host names mapped to addresses, past the name checks",
}
# k6 files a script imports or opens beside it (./x.js, ../lib/y.js), for the URL check
_LOCAL_REF = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\bopen\s*\(\s*|\brequire\s*\(\s*)['"`](\.{1,2}/[^'"`$]+)['"`]"""
)
# remote modules k6 would fetch itself (https://jslib.k6.io/…), outside the VU's block lists
_REMOTE_REF = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"`](https?://[^'"`$\s]+)['"`]"""
)
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"(?<![:'\"\w\\])//[^\n]*")
MAX_FILES_SCANNED = 200
INSPECT_TIMEOUT_S = 60.0


def script_run(
    config: OrchConfig, script: Path, environment: str | None, k6_path: str | None
) -> ResolvedRun:
    """The run of ``script`` in ``environment``, checked to be safe (RefusedError if not)."""
    path = Path(script)
    if not path.is_file():
        raise ConfigError(f"{script} is not a file; pass the path of a k6 script (.js)")
    if path.suffix not in (".js", ".mjs", ".cjs", ".ts"):
        raise ConfigError(f"{script} is not a k6 script (.js); name a scenario or a script")
    path = path.resolve()
    env_name = environment or config.defaults.environment
    preview = resolve_script(config, path, {}, {}, env_name)  # before k6 reads the options
    policy = guard_run(config, preview, ACTION)
    if policy.shared_n8n is not None:
        raise RefusedError(
            f"refusing to {ACTION} in environment {env_name!r}: it reaches the production N8N "
            f"({policy.shared_n8n.host}) on test-workflow paths only, a rule only orch's own "
            "scenarios enforce; use an environment without production_n8n"
        )
    check_script_urls(path, policy)
    options = inspect_script(path, preview, k6_path)
    check_options(path, options)
    return resolve_script(
        config, path, script_scenarios(options), script_thresholds(options), env_name
    )


def inspect_script(path: Path, run: ResolvedRun, k6_path: str | None) -> dict[str, Any]:
    """The script's options as k6 reads them (``k6 inspect``: runs its init code, sends
    nothing)."""
    binary = find_k6(k6_path)
    env = k6_environment({BASE_URL_VAR: run.base_url, N8N_BASE_URL_VAR: run.n8n_base_url,
                          "ORCH_RUN_ID": "inspect", **run.secret_env})
    try:
        done = subprocess.run(
            # k6 run puts the process environment in __ENV, k6 inspect only when asked:
            # without this, options built from __ENV were read other than they run
            [str(binary.path), "inspect", "--include-system-env-vars", str(path)],
            cwd=path.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSPECT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"could not read the options of {path} with k6 inspect: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        # the script's init code sees the run's secrets and may print or throw them
        redact = Redactor(run.secret_values())
        raise ConfigError(f"k6 cannot read the script {path}: {redact(detail[0][:400])}")
    try:
        options = json.loads(done.stdout)
    except ValueError:
        raise ConfigError(f"k6 inspect printed no options for {path}") from None
    if not isinstance(options, dict):
        raise ConfigError(f"k6 inspect printed no options for {path}")
    return options


def check_options(path: Path, options: dict[str, Any]) -> None:
    """Refuse a script that sets the protection itself."""
    found = [name for name in PROTECTION_OPTIONS if options.get(name) is not None]
    if found:
        what = "; ".join(f"{name} ({PROTECTION_OPTIONS[name]})" for name in found)
        raise RefusedError(
            f"refusing to {ACTION} {path}: its options set {what}. orch sets these itself "
            "from the environment's allow-list; remove them from the script's options"
        )


def check_script_urls(path: Path, policy: EgressPolicy) -> None:
    """Refuse a script (or a module or file of it beside it) that names a URL the
    environment may not reach; comments are left out."""
    texts: dict[str, Any] = {}
    for file in _local_files(path):
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        text = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", text))
        texts[str(file)] = text
        for url in _REMOTE_REF.findall(text):
            try:
                policy.check_url(url, ACTION)
            except RefusedError as exc:
                raise RefusedError(
                    f"{exc} ({file} imports the remote module {url}, which k6 would fetch "
                    "itself: download it beside the script and import it from there)"
                ) from None
    check_written_targets(policy, ACTION, hosts={}, texts=texts)


def _local_files(path: Path) -> list[Path]:
    """The script and the local files it imports or opens, followed from file to file."""
    seen: list[Path] = []
    todo = [path]
    while todo and len(seen) < MAX_FILES_SCANNED:
        file = todo.pop()
        if file in seen or not file.is_file():
            continue
        seen.append(file)
        if file.suffix not in (".js", ".mjs", ".cjs", ".ts"):
            continue
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        todo += [(file.parent / ref).resolve() for ref in _LOCAL_REF.findall(text)]
    return seen


def script_scenarios(options: dict[str, Any]) -> dict[str, Any]:
    """The script's k6 scenarios (nulls left out); a script with only ``vus``,
    ``duration``, ``iterations`` or ``stages`` gets the one scenario k6 makes of them."""
    scenarios = options.get("scenarios")
    if isinstance(scenarios, dict) and scenarios:
        return {
            str(name): {k: v for k, v in spec.items() if v is not None}
            for name, spec in scenarios.items()
            if isinstance(spec, dict)
        }
    vus = options.get("vus") or 1
    if options.get("stages"):
        default = {"executor": "ramping-vus", "startVUs": vus, "stages": options["stages"]}
    elif options.get("duration"):
        default = {"executor": "constant-vus", "vus": vus, "duration": options["duration"]}
    else:
        iterations = options.get("iterations") or 1
        default = {"executor": "shared-iterations", "vus": vus, "iterations": iterations}
    return {"default": default}


def script_thresholds(options: dict[str, Any]) -> dict[str, list[Any]]:
    """The script's thresholds, as k6 read them."""
    thresholds = options.get("thresholds")
    if not isinstance(thresholds, dict):
        return {}
    return {str(k): list(v) for k, v in thresholds.items() if isinstance(v, list)}

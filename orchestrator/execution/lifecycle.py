"""One run, end to end: folder, script, target, k6, raw output, report, manifest.

:func:`execute_run` prints nothing itself: it reports through an ``echo`` callback and
returns a :class:`RunResult`. Whatever happens (threshold failure, k6 crash, Ctrl-C, a
failing report) every file already written stays, and ``run.json`` says how it ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from orchestrator.config import (
    EgressPolicy,
    OrchConfig,
    Redactor,
    ResolvedRun,
    guard_run,
    max_vus,
)
from orchestrator.core import ConfigError, ExitCode, OrchError, Outcome, SetupError
from orchestrator.execution.docker import DockerRunner
from orchestrator.execution.k6bin import find_k6
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
    NativeRunner,
    dropped_variables,
)
from orchestrator.results import (
    RunFolder,
    RunManifest,
    build_report,
    finalize_raw,
    iso,
    utc_now,
    write_json,
)
from orchestrator.results.report import judge_delivery_from_summary
from orchestrator.target import USERS_FILE, target_for, users_for_run

Echo = Callable[[str], None]


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
    if outcome.io_error:
        return Outcome.IO_ERROR, ExitCode.SETUP
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
    target_lost: str | None = None,
) -> ExitCode:
    """Write how k6 ended into the manifest (not yet saved); return orch's exit code.

    A run in which k6 refused a connection outside the allow-list is ``refused`` (exit 6),
    whatever its thresholds say: it tried to reach somewhere it may not. A write error in
    the run folder is ``io_error`` (exit 4). A run whose sandbox stopped (``target_lost``,
    the note naming it) is ``target_lost`` (exit 4) instead of passed or failed: its
    figures are not the target's.
    """
    name, code = classify(outcome)
    if blocked is not None and blocked.count and name != Outcome.INTERRUPTED:
        name, code = Outcome.REFUSED, ExitCode.REFUSED
        manifest.notes.append(
            f"k6 refused {blocked.count} connection(s) outside the allow-list (a redirect or "
            f"a URL leading elsewhere), e.g.: {redact(blocked.examples[0])}"
        )
    if outcome.io_error:
        manifest.notes.append(
            f"k6 was stopped because the run folder could not be written: {outcome.io_error}; "
            "what was written is kept (free space, then rebuild the report with `orch report`)"
        )
    if target_lost:
        manifest.notes.append(target_lost)
        if name in (Outcome.PASSED, Outcome.THRESHOLDS_FAILED):
            name, code = Outcome.TARGET_LOST, ExitCode.SETUP
    manifest.load_generator = outcome.resources
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
    manifest.delivery = run.delivery_rule() or {"judged": False}
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
    lost: str | None = None
    reserve = SpaceReserve(run_dir)
    problem: BaseException | None = None
    try:
        with sigterm_as_interrupt(), _log_file(run_dir) as log:
            try:
                with target_for(run, run_dir, echo) as target:
                    outcome = _run_k6(
                        runner,
                        invocation,
                        run,
                        log_lines(log, prepared.redact, echo, blocked=prepared.blocked),
                        echo,
                    )
                    lost = target.lost()
            except KeyboardInterrupt:
                outcome = K6Outcome(exit_code=None, interrupted=True)
    except BaseException as exc:
        problem = exc
        raise
    finally:
        reserve.release()
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = round(time.monotonic() - started, 3)
        if outcome is None:  # an error before or while starting k6
            _record_not_started(manifest, problem)
            save_quietly(manifest, run_dir, echo)
    code = record_outcome(manifest, outcome, prepared.redact, prepared.blocked, lost)
    if lost:
        echo(f"warning: {lost}")
    if outcome.io_error:
        echo(f"error: {outcome.io_error}; k6 was stopped, what was written is kept in {run_dir}")
        save_quietly(manifest, run_dir, echo)
        assert manifest.outcome is not None
        return RunResult(run_dir, manifest.outcome, code, outcome.exit_code, None)
    manifest.save(run_dir)

    report_path, code = _finish_outputs(run_dir, manifest, echo, make_report, code)
    assert manifest.outcome is not None  # record_outcome set it
    return RunResult(run_dir, manifest.outcome, code, outcome.exit_code, report_path)


# Kept free in a new run folder while k6 runs, and released when it ends, so that run.json
# can still be written when k6's output fills the disk.
RESERVE_BYTES = 256 * 1024
RESERVE_FILE = ".orch-reserve"


class SpaceReserve:
    """A file of :data:`RESERVE_BYTES` held in the run folder while k6 runs (best effort)."""

    def __init__(self, run_dir: Path) -> None:
        self.path: Path | None = run_dir / RESERVE_FILE
        try:
            with open(self.path, "wb") as out:
                out.write(b"\0" * RESERVE_BYTES)
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            self.release()

    def release(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


@contextlib.contextmanager
def _log_file(run_dir: Path) -> Iterator[TextIO]:
    """k6.log, opened for writing; closing it never raises (a full disk is reported by the
    runner, which stops k6, not by a traceback here)."""
    try:
        log = open(run_dir / RunFolder.LOG, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise SetupError(
            f"cannot write {run_dir / RunFolder.LOG}: {exc.strerror or exc}; free space in "
            "the results folder or make it writable"
        ) from None
    try:
        yield log
    finally:
        with contextlib.suppress(OSError):
            log.close()


def _record_not_started(manifest: RunManifest, problem: BaseException | None) -> None:
    """run.json of a run that ended before k6 ran: ``not_started`` with the error's exit code
    (an error orch did not expect stays ``k6_error``)."""
    if isinstance(problem, OrchError):
        manifest.outcome = Outcome.NOT_STARTED
        manifest.exit_code = int(problem.exit_code)
        manifest.notes.append(f"k6 did not start: {problem.message}")
    else:
        manifest.outcome = Outcome.K6_ERROR
        manifest.notes.append(f"k6 did not run to completion; see {RunFolder.LOG}")


def save_quietly(manifest: RunManifest, run_dir: Path, echo: Echo) -> bool:
    """Save run.json; on a write error (a full disk) say so and keep the previous run.json,
    which the atomic write leaves whole."""
    try:
        manifest.save(run_dir)
    except OSError as exc:
        echo(
            f"warning: run.json could not be updated ({exc.strerror or exc}); it still holds "
            "the state before this step"
        )
        return False
    return True


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
    run_dir: Path, manifest: RunManifest, echo: Echo, make_report: bool, code: ExitCode
) -> tuple[Path | None, ExitCode]:
    """Compact the raw output and build the report, which judges the load delivered (a
    passed run that did not deliver it becomes ``load_not_delivered``, exit 10); return
    the report and the exit code. A failure here loses no file."""

    compact_raw(run_dir, manifest, echo)
    manifest.save(run_dir)
    if not make_report:
        judged = judge_delivery_from_summary(run_dir, manifest)
        if judged is not None:
            manifest.outcome, manifest.exit_code = judged[0], int(judged[1])
            manifest.save(run_dir)
            return None, judged[1]
        return None, code
    try:
        report = build_report(run_dir)
    except Exception as exc:  # the run's files stay; the report can be rebuilt later
        note = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        manifest.notes.append(f"report not built: {note}")
        manifest.save(run_dir)
        echo(f"warning: report not built: {note}; rebuild it with `orch report {run_dir}`")
        return None, code
    if report.outcome is not None and report.outcome != manifest.outcome:
        manifest.outcome, manifest.exit_code = report.outcome, report.exit_code
        manifest.save(run_dir)
        code = ExitCode(report.exit_code) if report.exit_code is not None else code
    return report.report_path, code


def _remove_empty_run_dir(run_dir: Path) -> None:
    """Remove a run folder that holds nothing but a partial script render."""
    import shutil

    with contextlib.suppress(OSError):
        shutil.rmtree(run_dir)


def select_runner(choice: str, *, k6_path: str | None, docker_image: str, echo: Echo) -> K6Runner:
    """The runner to use: native, docker, or auto (native when a good k6 exists)."""

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
    runner = DockerRunner(image)
    runner.version()  # raises SetupError when the engine or image is unusable or too old
    return runner

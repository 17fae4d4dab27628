"""One run's lifecycle: prepare → start → wait → collect → finish, the same for every runner.

:class:`RunLifecycle` is the interface; :func:`carry_out` drives it. Implementations: one
k6 on this machine or in Docker (:mod:`~orchestrator.execution.local`), local shards
(:mod:`~orchestrator.execution.shards`) and a k6-operator TestRun
(:mod:`~orchestrator.execution.k8s`). Nothing here prints: it reports through an ``echo``
callback and returns a :class:`RunResult`. Whatever happens (threshold failure, k6 crash,
Ctrl-C, a failing report) every file already written stays, and ``run.json`` says how the
run ended (the verdict itself: :mod:`~orchestrator.execution.run_outcome`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from abc import ABC, abstractmethod
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
from orchestrator.core import ExitCode, OrchError, Outcome
from orchestrator.db import database_watch
from orchestrator.execution.render import (
    BASE_URL_VAR,
    N8N_BASE_URL_VAR,
    RenderedScript,
    render_script,
)
from orchestrator.execution.run_outcome import BlockedConnections as BlockedConnections
from orchestrator.execution.run_outcome import classify as classify
from orchestrator.execution.run_outcome import record_outcome as record_outcome
from orchestrator.execution.runner import LineSink, dropped_variables
from orchestrator.results import (
    RunFolder,
    RunManifest,
    finalize_raw,
    iso,
    utc_now,
    write_json,
)
from orchestrator.target import USERS_FILE, TargetWatch, target_for, users_for_run

Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its files are (``commands``: what a dry run leaves to do
    by hand)."""

    run_dir: Path
    outcome: Outcome
    exit_code: ExitCode
    k6_exit_code: int | None
    report_path: Path | None
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunEnding:
    """What :func:`carry_out` saw of the load's end, handed to :meth:`RunLifecycle.collect`."""

    interrupted: bool  # Ctrl-C or SIGTERM
    problem: BaseException | None  # an error that stopped the lifecycle (re-raised after)
    target_lost: str | None  # the note when the run's sandbox stopped during the run
    duration_s: float


class RunLifecycle(ABC):
    """One way of carrying a run through prepare → start → wait → collect → finish.

    :func:`carry_out` calls the steps in that order, ``collect`` also when a step raised,
    ``finish`` only when none did. ``start`` and ``wait`` run inside the run's target
    (the embedded sandbox, for a local environment that has one).
    """

    def prepare(self, config: OrchConfig, run: ResolvedRun) -> PreparedRun:
        """Check the run, create its folder with the script and write run.json; start
        nothing. Implementations add their files through :meth:`plan`."""
        prepared = prepare_run(config, run)
        self.plan(prepared, run)
        return prepared

    @abstractmethod
    def plan(self, prepared: PreparedRun, run: ResolvedRun) -> None:
        """Write run.json (and any per-runner folders or manifests) of the new run."""

    def result_without_load(self) -> RunResult | None:
        """The result of a run that ends once prepared (a dry run), else None."""
        return None

    def target(
        self, run: ResolvedRun, run_dir: Path, echo: Echo
    ) -> contextlib.AbstractContextManager[TargetWatch]:
        """The run's target for the time of the load (see :func:`target_for`)."""
        return target_for(run, run_dir, echo)

    @abstractmethod
    def start(self) -> None:
        """Start the load: k6 processes, a container, or a TestRun."""

    @abstractmethod
    def wait(self) -> bool:
        """Block until the load has ended; True when Ctrl-C stopped it (gracefully)."""

    @abstractmethod
    def collect(self, ending: RunEnding) -> None:
        """Record how the load ended in run.json; runs whatever happened before."""

    @abstractmethod
    def finish(self) -> RunResult:
        """Compact and merge the raw output, build the report, give the verdict."""


def carry_out(
    lifecycle: RunLifecycle, config: OrchConfig, run: ResolvedRun, *, echo: Echo
) -> RunResult:
    """Carry ``run`` through ``lifecycle`` into a new run folder; return how it ended.

    SIGTERM counts as Ctrl-C while the load runs (CI cancels with SIGTERM). An error of a
    step is recorded in run.json by ``collect``, then raised.
    """
    prepared = lifecycle.prepare(config, run)
    early = lifecycle.result_without_load()
    if early is not None:
        return early
    echo(f"run folder: {prepared.run_dir}")
    started = time.monotonic()
    interrupted, lost, problem = False, None, None
    stopping: list[TargetWatch] = []  # a sandbox stops while the report is made
    try:
        try:
            with sigterm_as_interrupt():
                try:
                    with lifecycle.target(run, prepared.run_dir, echo) as target, (
                        database_watch(config, run.environment_name,
                                       prepared.run_dir / RunFolder.DATABASE, echo)
                    ):  # fmt: skip
                        target.defer_stop()
                        stopping.append(target)
                        lifecycle.start()
                        interrupted = lifecycle.wait()
                        lost = target.lost()
                except KeyboardInterrupt:
                    interrupted = True
        except BaseException as exc:
            problem = exc
            raise
        finally:
            duration = round(time.monotonic() - started, 3)
            lifecycle.collect(RunEnding(interrupted, problem, lost, duration))
        return lifecycle.finish()
    finally:
        for target in stopping:
            target.wait_stopped()


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
        load_profile=run.load_profile(),
        thresholds=run.thresholds,
        target={"base_url": run.base_url, "n8n_base_url": run.n8n_base_url},
        **extra,
    )


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


EGRESS_RULE_VAR = "ORCH_EGRESS_RULE"


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
        vus = max_vus(run.load_profile())
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
    redact = Redactor([*run.secret_values(), *(u["password"] for u in test_users)])
    return PreparedRun(run_dir, rendered, test_users, redact, policy, BlockedConnections())


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


def _remove_empty_run_dir(run_dir: Path) -> None:
    """Remove a run folder that holds nothing but a partial script render."""
    with contextlib.suppress(OSError):
        shutil.rmtree(run_dir)

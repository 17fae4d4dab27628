"""k6 on this machine, natively or in Docker: the lifecycle of one or more k6 processes.

:class:`LocalRun` starts each k6 of a run (a :class:`K6Slot`) in its own thread, all at
once, and waits for them; Ctrl-C (or SIGTERM) stops every one gracefully through the
runner. :class:`SingleRun` is one k6 writing into the run folder itself; the sharded run
(:mod:`orchestrator.execution.shards`) is N of them, merged.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from orchestrator.config import ResolvedRun
from orchestrator.core import ExitCode, OrchError, Outcome, SetupError
from orchestrator.execution.lifecycle import (
    Echo,
    PreparedRun,
    RunEnding,
    RunLifecycle,
    RunResult,
    SpaceReserve,
    compact_raw,
    log_lines,
    new_manifest,
    save_quietly,
)
from orchestrator.execution.outputs import extra_outputs
from orchestrator.execution.progress import (
    ProgressMonitor,
    ProgressSnapshot,
    free_loopback_port,
    planned_seconds,
)
from orchestrator.execution.report_worker import ReportWorker
from orchestrator.execution.run_outcome import BlockedConnections, record_outcome
from orchestrator.execution.runner import (
    STOP_GRACE_SECONDS,
    K6Invocation,
    K6Outcome,
    K6Runner,
    LineSink,
    dropped_variables,
    ignoring_sigint,
)
from orchestrator.results import RunFolder, RunManifest, build_report, iso, utc_now
from orchestrator.results.report import judge_delivery_from_summary


@dataclass
class K6Slot:
    """One k6 process of a local run: its folder, what it runs, its run.json and its end."""

    label: str  # how its log lines are prefixed on the terminal: ``k6`` or ``k6[2]``
    run_dir: Path
    invocation: K6Invocation
    manifest: RunManifest
    outcome: K6Outcome | None = None
    error: Exception | None = None  # the runner could not run it (k6 or Docker missing, …)
    blocked: BlockedConnections = field(default_factory=BlockedConnections)
    done: threading.Event = field(default_factory=threading.Event)  # its thread has ended


class LocalRun(RunLifecycle):
    """k6 processes (or containers) on this machine, started together, one thread each."""

    def __init__(self, runner: K6Runner, echo: Echo) -> None:
        self.runner = runner
        self.echo = echo
        self.slots: list[K6Slot] = []
        self._prepared: PreparedRun | None = None
        self._run: ResolvedRun | None = None
        self._manifest: RunManifest | None = None
        self._threads: list[threading.Thread] = []
        self._resources = contextlib.ExitStack()  # logs, progress monitors, space reserve

    # -- what subclasses give ------------------------------------------------------------

    def announcement(self, run: ResolvedRun) -> str:
        """The line said when k6 starts."""
        return (
            f"k6 {self.runner.version()} ({self.runner.name}) running {run.scenario_name} "
            f"[{run.profile_name}] against {run.base_url}"
        )

    def record_run(self, ending: RunEnding) -> None:
        """Record the whole run's ending in its run.json, after every slot's."""

    # -- the lifecycle -------------------------------------------------------------------

    @property
    def prepared(self) -> PreparedRun:
        assert self._prepared is not None, "plan() first"
        return self._prepared

    @property
    def manifest(self) -> RunManifest:
        assert self._manifest is not None, "plan() first"
        return self._manifest

    def begin(self, prepared: PreparedRun, run: ResolvedRun, manifest: RunManifest) -> None:
        """Keep the prepared run and its manifest, with the notes every local run has, and
        save it (``plan`` of a subclass calls this)."""
        self._prepared, self._run, self._manifest = prepared, run, manifest
        manifest.notes += prepared.egress_notes()
        manifest.egress = prepared.policy.describe()
        manifest.dropped_environment = dropped_variables()
        manifest.delivery = run.delivery_rule() or {"judged": False}
        manifest.save(prepared.run_dir)

    def start(self) -> None:
        assert self._run is not None
        self.echo(self.announcement(self._run))
        reserve = SpaceReserve(self.prepared.run_dir)
        self._resources.callback(reserve.release)
        board = ProgressBoard(self.echo, planned_seconds(self._run.load_profile()), len(self.slots))
        for slot in self.slots:
            log = self._resources.enter_context(_log_file(slot.run_dir))
            sink = log_lines(log, self.prepared.redact, self.echo, slot.label, slot.blocked)
            assert slot.invocation.api_address is not None
            self._resources.enter_context(
                ProgressMonitor(slot.invocation.api_address, board.printer(slot.label))
            )
            self._threads.append(
                threading.Thread(target=self._work, args=(slot, sink), daemon=True, name=slot.label)
            )
        for thread in self._threads:
            thread.start()

    def _work(self, slot: K6Slot, sink: LineSink) -> None:
        try:
            slot.outcome = self.runner.run(slot.invocation, sink)
        except Exception as exc:  # kept for collect(): the run records it and goes on
            slot.error = exc
        finally:
            slot.done.set()

    def wait(self) -> bool:
        try:
            self._join(deadline=None)
        except KeyboardInterrupt:
            if len(self.slots) > 1:
                self.echo(f"stopping {len(self.slots)} k6 processes ...")
            with ignoring_sigint():  # a second Ctrl-C must not orphan k6
                self._join(deadline=time.monotonic() + STOP_GRACE_SECONDS + 5.0, stop=True)
            return True
        return False

    def _join(self, deadline: float | None, stop: bool = False) -> None:
        """Wait for every slot's thread. On an Event, not ``Thread.join``: a join that
        Ctrl-C interrupts can mark a running thread as ended (seen on CPython 3.11)."""
        for slot in self.slots:
            while deadline is None or time.monotonic() < deadline:
                if stop:  # again and again: a runner may clear its flag as it starts
                    self.runner.stop()
                if slot.done.wait(timeout=0.2):
                    break

    def collect(self, ending: RunEnding) -> None:
        self._resources.close()
        for slot in self.slots:
            self._record_slot(slot, ending)
        self.record_run(ending)
        if ending.target_lost:
            self.echo(f"warning: {ending.target_lost}")

    def _record_slot(self, slot: K6Slot, ending: RunEnding) -> None:
        manifest = slot.manifest
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = ending.duration_s
        problem = slot.error or ending.problem
        if slot.outcome is None and problem is not None and not ending.interrupted:
            _record_not_started(manifest, problem)
        else:
            outcome = slot.outcome or K6Outcome(exit_code=None, interrupted=ending.interrupted)
            if ending.interrupted and not outcome.interrupted:
                outcome = replace(outcome, interrupted=True)
            slot.outcome = outcome
            record_outcome(
                manifest, outcome, self.prepared.redact, slot.blocked, ending.target_lost
            )
        dashboard = manifest.files.get("dashboard")
        if dashboard and not (slot.run_dir / dashboard).is_file():  # k6 may skip it
            del manifest.files["dashboard"]
            manifest.notes.append(
                f"k6 wrote no {dashboard}: it needs at least 2 periods of data (see k6.log)"
            )
        save_quietly(manifest, slot.run_dir, self.echo)


# A long run's report worker imports its libraries this long before the planned end.
WARM_LEAD_S = 30.0


class SingleRun(LocalRun):
    """One k6 (native or in Docker) writing into the run folder itself."""

    def __init__(self, runner: K6Runner, echo: Echo, *, make_report: bool = True) -> None:
        super().__init__(runner, echo)
        self.make_report = make_report
        self._worker: ReportWorker[tuple[Path | None, ExitCode]] | None = None

    def start(self) -> None:
        if self.make_report:  # forked before k6 and the progress threads start
            assert self._run is not None, "plan() first"
            planned = planned_seconds(self._run.load_profile()) or 0.0
            self._worker = ReportWorker.fork(
                _finish_from_disk, warm_after_s=max(0.0, planned - WARM_LEAD_S)
            )
        super().start()

    def collect(self, ending: RunEnding) -> None:
        try:
            super().collect(ending)
        finally:
            if ending.problem is not None and self._worker is not None:
                self._worker.close()  # finish() is not called after an error
                self._worker = None

    def plan(self, prepared: PreparedRun, run: ResolvedRun) -> None:
        run_dir = prepared.run_dir
        extra = extra_outputs(run)  # the environment's outputs and dashboard export
        manifest = new_manifest(
            run,
            runner=self.runner.name,
            k6_version=self.runner.version(),
            files={
                "script": f"{RunFolder.SCRIPT}/{prepared.rendered.script_name}",
                "config": RunFolder.CONFIG,
                "log": RunFolder.LOG,
                "summary": RunFolder.SUMMARY,
                "raw": RunFolder.RAW_CSV,
                **extra.files,
            },
            notes=list(extra.notes),
        )
        if note := prepared.users_note(run):
            manifest.notes.append(note)
        invocation = K6Invocation(
            script_dir=prepared.rendered.directory,
            script_name=prepared.rendered.script_name,
            run_dir=run_dir,
            env={**prepared.k6_env(run), **extra.env},
            extra_args=[*prepared.rendered.k6_args, *extra.args],
            api_address=f"127.0.0.1:{free_loopback_port()}",
        )
        self.slots = [K6Slot("k6", run_dir, invocation, manifest)]
        self.begin(prepared, run, manifest)

    def wait(self) -> bool:
        interrupted = super().wait()
        slot = self.slots[0]
        if slot.error is not None and slot.outcome is None and not interrupted:
            raise slot.error  # k6 could not be started: the command says why
        return interrupted

    def finish(self) -> RunResult:
        try:
            return self._finish()
        finally:
            if self._worker is not None:  # not used: k6 could not write its output
                self._worker.close()
                self._worker = None

    def _finish(self) -> RunResult:
        slot, manifest, run_dir = self.slots[0], self.manifest, self.prepared.run_dir
        assert slot.outcome is not None and manifest.outcome is not None
        assert manifest.exit_code is not None
        code = ExitCode(manifest.exit_code)
        if slot.outcome.io_error:
            self.echo(
                f"error: {slot.outcome.io_error}; k6 was stopped, what was written is kept in "
                f"{run_dir}"
            )
            return RunResult(run_dir, manifest.outcome, code, slot.outcome.exit_code, None)
        finished = self._finish_in_worker(code)
        if finished is None:
            report_path, code = _finish_outputs(
                run_dir, self.manifest, self.echo, self.make_report, code
            )
        else:
            report_path, code = finished
        manifest = self.manifest
        assert manifest.outcome is not None
        return RunResult(run_dir, manifest.outcome, code, slot.outcome.exit_code, report_path)

    def _finish_in_worker(self, code: ExitCode) -> tuple[Path | None, ExitCode] | None:
        """:func:`_finish_outputs` done by the report worker; None when there is none or it
        failed (the caller then does it, from run.json as the worker left it)."""
        worker, self._worker = self._worker, None
        if worker is None:
            return None
        run_dir = self.prepared.run_dir
        try:
            self.manifest.save(run_dir)  # the worker starts from run.json
        except OSError:
            worker.close()
            return None
        done = worker.finish((run_dir, code))
        self._read_back_manifest()  # what the worker wrote, even when it failed half-way
        if done is None:
            return None
        (report_path, code), lines = done
        for line in lines:
            self.echo(line)
        return report_path, code

    def _read_back_manifest(self) -> None:
        written = RunFolder(self.prepared.run_dir).read_manifest()
        if written is not None:
            self.slots[0].manifest = self._manifest = written


class ProgressBoard:
    """Live progress of a run's k6 processes, one line every 5 s, summed over them."""

    INTERVAL_S = 5.0

    def __init__(self, echo: Echo, total_s: float | None, processes: int) -> None:
        self.echo, self.total_s, self.processes = echo, total_s, processes
        self._latest: dict[str, ProgressSnapshot] = {}
        self._last_print = time.monotonic() if processes > 1 else 0.0
        self._lock = threading.Lock()

    def printer(self, label: str) -> Callable[[ProgressSnapshot], None]:
        """The callback of one k6's progress monitor."""

        def show(snap: ProgressSnapshot) -> None:
            with self._lock:
                self._latest[label] = snap
                now = time.monotonic()
                if now - self._last_print < self.INTERVAL_S:
                    return
                self._last_print = now
                self.echo(self.line(snap))

        return show

    def line(self, snap: ProgressSnapshot) -> str:
        """``  12/60s      1,234 requests  errors  0.00%  VUs 3 active/10`` (one k6), or
        the sums with the number of processes reporting (several)."""
        of_total = f"/{self.total_s:.0f}s" if self.total_s else "s"
        if self.processes == 1:
            return (
                f"  {snap.elapsed_s:5.0f}{of_total}  {snap.requests:>9,} requests  "
                f"errors {snap.error_rate:6.2%}  VUs {snap.vus} active/{snap.vus_max}"
            )
        snaps = self._latest.values()
        requests = sum(s.requests for s in snaps)
        failed = sum(s.requests * s.error_rate for s in snaps)
        return (
            f"  {snap.elapsed_s:5.0f}{of_total}  {requests:>9,} requests  errors "
            f"{(failed / requests if requests else 0.0):6.2%}  "
            f"VUs {sum(s.vus for s in snaps)}  ({len(self._latest)} shards)"
        )


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


def _finish_from_disk(args: tuple[Path, ExitCode], echo: Echo) -> tuple[Path | None, ExitCode]:
    """:func:`_finish_outputs` of a report worker, from the run.json the run saved."""
    run_dir, code = args
    manifest = RunFolder(run_dir).read_manifest()
    if manifest is None:
        raise SetupError(f"{run_dir / RunFolder.MANIFEST} could not be read back")
    return _finish_outputs(run_dir, manifest, echo, True, code)


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

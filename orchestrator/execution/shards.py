"""Sharded local runs: one test split into N k6 processes, merged into one run.

``orch run SCENARIO --shards N`` starts N k6 processes on this machine, each with the
execution segment the k6-operator gives its runner pod ``i`` of ``N``
(:func:`segment_args`), so N processes together run exactly the test one process would.
Each writes into ``shards/<i>/`` of one run folder (its own k6.log, summary.json, raw
points and run.json); the raw points are then merged (:mod:`orchestrator.results.merge`) into one
``raw.parquet``, one results.json and report, and one exit code.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from orchestrator.config import OrchConfig, Redactor, ResolvedRun
from orchestrator.core import ConfigError, ExitCode, OrchError, Outcome
from orchestrator.execution.lifecycle import (
    BlockedConnections,
    RunResult,
    compact_raw,
    log_lines,
    new_manifest,
    prepare_run,
    record_outcome,
    save_quietly,
    sigterm_as_interrupt,
)
from orchestrator.execution.progress import (
    LOOPBACK_OPENER,
    ProgressMonitor,
    ProgressSnapshot,
    free_loopback_port,
)
from orchestrator.execution.runner import (
    STOP_GRACE_SECONDS,
    K6Invocation,
    K6Outcome,
    K6Runner,
    dropped_variables,
)
from orchestrator.results import (
    MergeSource,
    RunFolder,
    RunManifest,
    combined_outcome,
    iso,
    judge_merged,
    merge_into,
    utc_now,
)
from orchestrator.results.delivery import combine_load_generators
from orchestrator.target import target_for

Echo = Callable[[str], None]

SHARDS_DIR = "shards"
MAX_SHARDS = 64


def segment_args(index: int, total: int) -> list[str]:
    """The k6 options runner ``index`` (1-based) of ``total`` gets, as the k6-operator
    writes them: ``--execution-segment=(i-1)/n:i/n --execution-segment-sequence=0,1/n,…,1``
    (ends written ``0`` and ``1``; nothing at all for a single runner)."""
    if not 1 <= index <= total:
        raise ValueError(f"shard {index} is not in 1..{total}")
    if total == 1:
        return []

    def point(i: int) -> str:
        return "0" if i == 0 else "1" if i == total else f"{i}/{total}"

    sequence = ",".join(point(i) for i in range(total + 1))
    return [
        f"--execution-segment={point(index - 1)}:{point(index)}",
        f"--execution-segment-sequence={sequence}",
    ]


@dataclass
class _Shard:
    index: int
    run_dir: Path
    invocation: K6Invocation
    manifest: RunManifest
    outcome: K6Outcome | None = None
    error: OrchError | None = None
    blocked: BlockedConnections = field(default_factory=BlockedConnections)


def execute_sharded_run(
    config: OrchConfig,
    run: ResolvedRun,
    runner: K6Runner,
    shards: int,
    *,
    echo: Echo,
) -> RunResult:
    """Run ``run`` as ``shards`` concurrent k6 processes into one run folder.

    The returned outcome and exit code are the merged run's: a stopped or failed shard
    first, else the thresholds recomputed over every shard's points (99 when one crossed).
    The report is always built: the verdict is recomputed by it.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"--shards must be between 1 and {MAX_SHARDS}, not {shards}")
    if runner.name != "native":
        raise ConfigError(
            "--shards runs k6 processes on this machine; use --runner native (or auto with k6 "
            "installed), or --runner k8s --parallelism N for a cluster"
        )
    prepared = prepare_run(config, run)
    run_dir, rendered, redact = prepared.run_dir, prepared.rendered, prepared.redact
    started_at = iso(utc_now())
    manifest = new_manifest(
        run,
        runner=f"{runner.name} x{shards} shards",
        k6_version=runner.version(),
        started_at=started_at,
        files={
            "script": f"{RunFolder.SCRIPT}/{rendered.script_name}",
            "config": RunFolder.CONFIG,
            "shards": SHARDS_DIR,
        },
    )
    manifest.notes.append(
        f"{shards} k6 processes with execution segments as the k6-operator gives its runners; "
        f"each wrote into {SHARDS_DIR}/<i>/, merged here"
    )
    if note := prepared.users_note(run):
        manifest.notes.append(f"{note} (in each shard: VU numbers start at 1 in every shard)")
    manifest.notes += prepared.egress_notes()
    manifest.egress = prepared.policy.describe()
    manifest.dropped_environment = dropped_variables()
    manifest.delivery = run.delivery_rule() or {"judged": False}
    manifest.save(run_dir)
    echo(f"run folder: {run_dir}")
    env = prepared.k6_env(run)
    items: list[_Shard] = []
    for index in range(1, shards + 1):
        shard_dir = run_dir / SHARDS_DIR / str(index)
        shard_dir.mkdir(parents=True)
        invocation = K6Invocation(
            script_dir=rendered.directory,
            script_name=rendered.script_name,
            run_dir=shard_dir,
            env=env,
            extra_args=segment_args(index, shards),
            api_address=f"127.0.0.1:{free_loopback_port()}",
        )
        shard_manifest = new_manifest(
            run,
            runner=runner.name,
            k6_version=runner.version(),
            started_at=started_at,
            files={
                "script": f"../../{RunFolder.SCRIPT}/{rendered.script_name}",
                "log": RunFolder.LOG,
                "summary": RunFolder.SUMMARY,
                "raw": RunFolder.RAW_CSV,
            },
            notes=[f"shard {index} of {shards}: {' '.join(invocation.extra_args) or 'whole test'}"],
        )
        shard_manifest.save(shard_dir)
        items.append(_Shard(index, shard_dir, invocation, shard_manifest))

    started = time.monotonic()
    interrupted = False
    lost: str | None = None
    problem: OrchError | None = None
    try:
        with sigterm_as_interrupt():
            try:
                with target_for(run, run_dir, echo) as target:
                    echo(
                        f"k6 {runner.version()} ({runner.name}) running {run.scenario_name} "
                        f"[{run.profile_name}] as {shards} shards against {run.base_url}"
                    )
                    interrupted = _run_all(runner, items, redact, echo)
                    lost = target.lost()
            except KeyboardInterrupt:
                interrupted = True
    except OrchError as exc:  # the target could not be had: no k6 started
        problem = exc
        raise
    finally:
        for item in items:
            outcome = item.outcome or K6Outcome(exit_code=None, interrupted=interrupted)
            if interrupted and not outcome.interrupted:
                outcome = replace(outcome, interrupted=True)
            item.outcome = outcome
            record_outcome(item.manifest, outcome, redact, item.blocked, lost)
            error = item.error or problem
            if error is not None and item.manifest.k6_exit_code is None and not interrupted:
                item.manifest.outcome = Outcome.NOT_STARTED
                item.manifest.exit_code = int(error.exit_code)
                item.manifest.notes.append(f"k6 did not start: {error.message}")
            item.manifest.ended_at = iso(utc_now())
            item.manifest.duration_s = round(time.monotonic() - started, 3)
            item.manifest.save(item.run_dir)
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = round(time.monotonic() - started, 3)
        codes = [i.manifest.k6_exit_code for i in items]
        manifest.k6_exit_code = _worst_k6_code(codes)
        manifest.notes.append(
            "shards' k6 exit codes: "
            + ", ".join(f"{i.index}: {i.manifest.k6_exit_code}" for i in items)
        )
        if lost:
            manifest.notes.append(lost)
        manifest.load_generator = combine_load_generators(
            [i.manifest.load_generator for i in items], same_machine=True
        )
        if problem is not None:
            manifest.outcome, manifest.exit_code = Outcome.NOT_STARTED, int(problem.exit_code)
            manifest.notes.append(f"k6 did not start: {problem.message}")
        save_quietly(manifest, run_dir, echo)
    return _merge_shards(run_dir, manifest, items, echo)


def _worst_k6_code(codes: list[int | None]) -> int | None:
    """One k6 exit code for the run: the first that is neither 0 nor 99, else 99, else 0."""
    if any(code is None for code in codes):
        return None
    others = [c for c in codes if c not in (0, 99)]
    if others:
        return others[0]
    return 99 if 99 in codes else 0


def _run_all(runner: K6Runner, items: list[_Shard], redact: Redactor, echo: Echo) -> bool:
    """Run every shard's k6 at once; on Ctrl-C stop them all. True when interrupted."""
    threads: list[threading.Thread] = []
    logs: list[TextIO] = []
    snapshots: dict[int, ProgressSnapshot] = {}
    last_print = [time.monotonic()]
    lock = threading.Lock()

    def show(index: int) -> Callable[[ProgressSnapshot], None]:
        def store(snap: ProgressSnapshot) -> None:
            with lock:
                snapshots[index] = snap
                now = time.monotonic()
                if now - last_print[0] < 5.0:
                    return
                last_print[0] = now
                requests = sum(s.requests for s in snapshots.values())
                failed = sum(s.requests * s.error_rate for s in snapshots.values())
                echo(
                    f"  {snap.elapsed_s:5.0f}s  {requests:>9,} requests  errors "
                    f"{(failed / requests if requests else 0.0):6.2%}  "
                    f"VUs {sum(s.vus for s in snapshots.values())}  ({len(snapshots)} shards)"
                )

        return store

    def work(item: _Shard, log: TextIO) -> None:
        try:
            item.outcome = runner.run(
                item.invocation,
                log_lines(log, redact, echo, f"k6[{item.index}]", item.blocked),
            )
        except OrchError as exc:
            item.error = exc

    with contextlib.ExitStack() as stack:
        for item in items:
            log = stack.enter_context(open(item.run_dir / RunFolder.LOG, "w", encoding="utf-8"))
            logs.append(log)
            assert item.invocation.api_address is not None
            stack.enter_context(ProgressMonitor(item.invocation.api_address, show(item.index)))
            thread = threading.Thread(target=work, args=(item, log), daemon=True)
            threads.append(thread)
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        except KeyboardInterrupt:
            echo(f"stopping {len(items)} shards ...")
            for item in items:
                _stop_through_api(item.invocation.api_address)
            deadline = time.monotonic() + STOP_GRACE_SECONDS + 5.0
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            return True
    return False


def _stop_through_api(address: str | None) -> None:
    """Stop one k6 through its REST API (it then writes its summary and exits 103)."""
    if not address:
        return
    body = json.dumps({"data": {"type": "status", "id": "default",
                                "attributes": {"stopped": True}}}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"http://{address}/v1/status",
        data=body,
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    with contextlib.suppress(OSError, urllib.error.URLError):
        LOOPBACK_OPENER.open(request, timeout=2).close()  # never through a proxy


def _merge_shards(
    run_dir: Path,
    manifest: RunManifest,
    items: list[_Shard],
    echo: Echo,
) -> RunResult:
    """Compact each shard's raw output, merge them, and judge the whole run once."""

    shard_outcomes: list[Outcome | None] = [i.manifest.outcome for i in items]
    if Outcome.IO_ERROR in shard_outcomes:  # the folder cannot be written: keep it as it is
        manifest.outcome, manifest.exit_code = Outcome.IO_ERROR, int(ExitCode.SETUP)
        save_quietly(manifest, run_dir, echo)
        return RunResult(run_dir, Outcome.IO_ERROR, ExitCode.SETUP, manifest.k6_exit_code, None)
    sources: list[MergeSource] = []
    for item in items:
        # the merge reads a CSV left as written too
        raw = compact_raw(item.run_dir, item.manifest, echo) or item.run_dir / RunFolder.RAW_CSV
        item.manifest.save(item.run_dir)
        if raw.is_file() and raw.stat().st_size > 0:
            summary = item.run_dir / RunFolder.SUMMARY
            sources.append(
                MergeSource(
                    label=f"shard {item.index}",
                    raw=raw,
                    run_dir=item.run_dir,
                    manifest=RunManifest(thresholds=manifest.thresholds),
                    summary_path=summary if summary.is_file() and summary.stat().st_size else None,
                )
            )
        else:
            manifest.notes.append(f"shard {item.index} wrote no raw points")
    abnormal = (
        Outcome.REFUSED,
        Outcome.INTERRUPTED,
        Outcome.CRASHED,
        Outcome.K6_ERROR,
        Outcome.IO_ERROR,
        Outcome.NOT_STARTED,
        Outcome.TARGET_LOST,
    )
    if any(o in abnormal for o in shard_outcomes) or not sources:
        name, code = combined_outcome(shard_outcomes, None)
        if not sources and name == Outcome.PASSED:
            name, code = Outcome.K6_ERROR, ExitCode.K6_ERROR
        manifest.outcome, manifest.exit_code = name, int(code)
        manifest.save(run_dir)
    report_path: Path | None = None
    try:
        if sources:
            merged = merge_into(run_dir, sources)
            manifest.files["raw"] = merged.raw_path.name
            manifest.files["summary"] = RunFolder.MERGED_SUMMARY
            manifest.notes.append(f"merged {merged.points:,} points from {len(sources)} shards")
            manifest.save(run_dir)

            def save(outcome: Outcome, code: ExitCode) -> None:
                manifest.outcome, manifest.exit_code = outcome, int(code)
                manifest.save(run_dir)

            _, _, report = judge_merged(run_dir, shard_outcomes, save)
            report_path = report.report_path
    except OrchError as exc:
        manifest.notes.append(f"merge or report failed: {exc.message}")
        echo(f"warning: merge or report failed: {exc.message}; see {run_dir / SHARDS_DIR}")
        if manifest.exit_code is None:
            manifest.outcome, manifest.exit_code = Outcome.K6_ERROR, int(ExitCode.K6_ERROR)
    manifest.save(run_dir)
    assert manifest.outcome is not None and manifest.exit_code is not None
    return RunResult(
        run_dir,
        manifest.outcome,
        ExitCode(manifest.exit_code),
        manifest.k6_exit_code,
        report_path,
    )

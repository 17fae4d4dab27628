"""Sharded local runs: one test split into N k6 processes, merged into one run.

``orch run SCENARIO --shards N`` starts N k6 processes on this machine, each with the
execution segment the k6-operator gives its runner pod ``i`` of ``N``
(:func:`segment_args`), so N processes together run exactly the test one process would.
Each writes into ``shards/<i>/`` of one run folder (its own k6.log, summary.json, raw
points and run.json); the raw points are then merged (:mod:`orchestrator.results.merge`) into one
``raw.parquet``, one results.json and report, and one exit code.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import ResolvedRun
from orchestrator.core import ConfigError, ExitCode, OrchError, Outcome
from orchestrator.execution.lifecycle import (
    Echo,
    PreparedRun,
    RunEnding,
    RunResult,
    compact_raw,
    new_manifest,
    save_quietly,
)
from orchestrator.execution.local import K6Slot, LocalRun
from orchestrator.execution.outputs import extra_outputs
from orchestrator.execution.progress import free_loopback_port
from orchestrator.execution.runner import K6Invocation, K6Runner
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


class ShardedRun(LocalRun):
    """One test as ``shards`` concurrent k6 processes on this machine, merged into one run.

    The outcome and exit code are the merged run's: a stopped or failed shard first, else
    the thresholds recomputed over every shard's points (99 when one crossed). The report
    is always built: the verdict is recomputed by it.
    """

    def __init__(self, runner: K6Runner, echo: Echo, *, shards: int) -> None:
        self.check(shards, runner.name)
        super().__init__(runner, echo)
        self.shards = shards

    @staticmethod
    def check(shards: int, runner_name: str) -> None:
        """Refuse a number of shards out of range, or a runner other than native."""
        if not 1 <= shards <= MAX_SHARDS:
            raise ConfigError(f"--shards must be between 1 and {MAX_SHARDS}, not {shards}")
        if runner_name not in ("native", "auto"):
            raise ConfigError(
                "--shards runs k6 processes on this machine; use --runner native (or auto with "
                "k6 installed), or --runner k8s --parallelism N for a cluster"
            )

    def plan(self, prepared: PreparedRun, run: ResolvedRun) -> None:
        run_dir, rendered, shards = prepared.run_dir, prepared.rendered, self.shards
        started_at = iso(utc_now())
        manifest = new_manifest(
            run,
            runner=f"{self.runner.name} x{shards} shards",
            k6_version=self.runner.version(),
            started_at=started_at,
            files={
                "script": f"{RunFolder.SCRIPT}/{rendered.script_name}",
                "config": RunFolder.CONFIG,
                "shards": SHARDS_DIR,
            },
        )
        manifest.notes.append(
            f"{shards} k6 processes with execution segments as the k6-operator gives its "
            f"runners; each wrote into {SHARDS_DIR}/<i>/, merged here"
        )
        if note := prepared.users_note(run):
            manifest.notes.append(f"{note} (in each shard: VU numbers start at 1 in every shard)")
        extra = extra_outputs(run)  # each shard sends its own metrics, writes its own dashboard
        manifest.notes += extra.notes
        env = {**prepared.k6_env(run), **extra.env}
        for index in range(1, shards + 1):
            shard_dir = run_dir / SHARDS_DIR / str(index)
            shard_dir.mkdir(parents=True)
            invocation = K6Invocation(
                script_dir=rendered.directory,
                script_name=rendered.script_name,
                run_dir=shard_dir,
                env=env,
                extra_args=[*segment_args(index, shards), *rendered.k6_args, *extra.args],
                api_address=f"127.0.0.1:{free_loopback_port()}",
            )
            shard_manifest = new_manifest(
                run,
                runner=self.runner.name,
                k6_version=self.runner.version(),
                started_at=started_at,
                files={
                    "script": f"../../{RunFolder.SCRIPT}/{rendered.script_name}",
                    "log": RunFolder.LOG,
                    "summary": RunFolder.SUMMARY,
                    "raw": RunFolder.RAW_CSV,
                    **extra.files,
                },
                notes=[
                    f"shard {index} of {shards}: "
                    f"{' '.join(segment_args(index, shards)) or 'whole test'}"
                ],
            )
            shard_manifest.save(shard_dir)
            self.slots.append(K6Slot(f"k6[{index}]", shard_dir, invocation, shard_manifest))
        self.begin(prepared, run, manifest)

    def announcement(self, run: ResolvedRun) -> str:
        return (
            f"k6 {self.runner.version()} ({self.runner.name}) running {run.scenario_name} "
            f"[{run.profile_name}] as {self.shards} shards against {run.base_url}"
        )

    def record_run(self, ending: RunEnding) -> None:
        manifest = self.manifest
        manifest.ended_at = iso(utc_now())
        manifest.duration_s = ending.duration_s
        manifest.k6_exit_code = _worst_k6_code([s.manifest.k6_exit_code for s in self.slots])
        manifest.notes.append(
            "shards' k6 exit codes: "
            + ", ".join(
                f"{i}: {s.manifest.k6_exit_code}" for i, s in enumerate(self.slots, start=1)
            )
        )
        if ending.target_lost:
            manifest.notes.append(ending.target_lost)
        manifest.load_generator = combine_load_generators(
            [s.manifest.load_generator for s in self.slots], same_machine=True
        )
        if isinstance(ending.problem, OrchError):
            manifest.outcome = Outcome.NOT_STARTED
            manifest.exit_code = int(ending.problem.exit_code)
            manifest.notes.append(f"k6 did not start: {ending.problem.message}")
        save_quietly(manifest, self.prepared.run_dir, self.echo)

    def finish(self) -> RunResult:
        return _merge_shards(self.prepared.run_dir, self.manifest, self.slots, self.echo)


def _worst_k6_code(codes: list[int | None]) -> int | None:
    """One k6 exit code for the run: the first that is neither 0 nor 99, else 99, else 0."""
    if any(code is None for code in codes):
        return None
    others = [c for c in codes if c not in (0, 99)]
    if others:
        return others[0]
    return 99 if 99 in codes else 0


def _merge_shards(
    run_dir: Path,
    manifest: RunManifest,
    items: list[K6Slot],
    echo: Echo,
) -> RunResult:
    """Compact each shard's raw output, merge them, and judge the whole run once."""

    shard_outcomes: list[Outcome | None] = [i.manifest.outcome for i in items]
    if Outcome.IO_ERROR in shard_outcomes:  # the folder cannot be written: keep it as it is
        manifest.outcome, manifest.exit_code = Outcome.IO_ERROR, int(ExitCode.SETUP)
        save_quietly(manifest, run_dir, echo)
        return RunResult(run_dir, Outcome.IO_ERROR, ExitCode.SETUP, manifest.k6_exit_code, None)
    sources: list[MergeSource] = []
    for index, item in enumerate(items, start=1):
        # the merge reads a CSV left as written too
        raw = compact_raw(item.run_dir, item.manifest, echo) or item.run_dir / RunFolder.RAW_CSV
        item.manifest.save(item.run_dir)
        if raw.is_file() and raw.stat().st_size > 0:
            summary = item.run_dir / RunFolder.SUMMARY
            sources.append(
                MergeSource(
                    label=f"shard {index}",
                    raw=raw,
                    run_dir=item.run_dir,
                    manifest=RunManifest(thresholds=manifest.thresholds),
                    summary_path=summary if summary.is_file() and summary.stat().st_size else None,
                )
            )
        else:
            manifest.notes.append(f"shard {index} wrote no raw points")
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

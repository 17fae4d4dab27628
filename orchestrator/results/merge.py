"""Merge the raw outputs of several k6 runners into one run, with one exact verdict.

k6 runners that split a test with execution segments (``orch run --shards N``, or the
k6-operator's runner pods) each write their own raw points and summary. Percentiles cannot
be combined from per-runner summaries, so orch concatenates every runner's raw points into
one ``raw.parquet`` and recomputes every figure and threshold from that union:

- trend ``avg``, ``min``, ``max``, ``med``, ``p(N)``: over all points (exact, k6's linear
  interpolation between sorted values);
- rate ``rate``: non-zero points over all points;
- counter ``count``: the sum; counter ``rate``: the sum over the test's duration, which is
  the longest runner's (runners run side by side);
- gauge ``value``: the last point by time over all runners;
- sub-metrics such as ``http_req_duration{name:x}`` select points by tag.

The measuring itself is the report's (:func:`orchestrator.results.ingest.ingest_raw` through
:func:`orchestrator.results.report.build_report`); this module only assembles its input: the merged
points, and ``merged-summary.json``, a summary holding nothing but the merged duration and
the metric types the runners reported (no statistics, no verdicts, so every verdict in
``results.json`` is orch's own, ``verdict_source: "orch"``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__
from orchestrator.core import ConfigError, ExitCode, Outcome, SetupError, not_judged_exit_code
from orchestrator.results.delivery import combine_load_generators
from orchestrator.results.figures import manifest_thresholds, merge_thresholds
from orchestrator.results.ingest import CSV_COLUMNS, detect_format, finalize_raw, find_raw
from orchestrator.results.model import ResultsDocument, Verdict, read_results
from orchestrator.results.report import build_report, render_markdown, summary_thresholds
from orchestrator.results.run_folder import RunFolder, RunManifest, iso, utc_now, write_text_atomic
from orchestrator.results.summary import (
    BUILTIN_TYPES,
    parse_metric_key,
    parse_threshold,
    read_summary,
)

if TYPE_CHECKING:
    from orchestrator.results.report import ReportResult

MERGED_SUMMARY = RunFolder.MERGED_SUMMARY
MERGED_RAW = RunFolder.RAW_PARQUET
# Outcome of a merged run from its sources' outcomes, worst first.
_SOURCE_PRECEDENCE = (
    (Outcome.REFUSED, ExitCode.REFUSED),
    (Outcome.INTERRUPTED, ExitCode.INTERRUPTED),
    (Outcome.IO_ERROR, ExitCode.SETUP),
    (Outcome.NOT_STARTED, ExitCode.SETUP),
    (Outcome.CRASHED, ExitCode.K6_ERROR),
    (Outcome.K6_ERROR, ExitCode.K6_ERROR),
    (Outcome.TARGET_LOST, ExitCode.SETUP),
)
# Source outcomes the merge judges again over every runner's points (a runner's own verdict
# covers its segment only); any other (`running`, `dry_run`, ...) is the merged run's.
_REJUDGED = (Outcome.PASSED, Outcome.THRESHOLDS_FAILED, Outcome.LOAD_NOT_DELIVERED)


@dataclass
class MergeSource:
    """One runner's output: its raw file, and its run.json and summary when it has them."""

    label: str
    raw: Path
    run_dir: Path | None = None
    manifest: RunManifest = field(default_factory=RunManifest)
    summary_path: Path | None = None


@dataclass(frozen=True)
class MergedRaw:
    """What :func:`merge_into` wrote."""

    raw_path: Path
    points: int
    duration_s: float | None
    thresholds: dict[str, list[str]]
    metric_types: dict[str, str]


@dataclass(frozen=True)
class MergeResult:
    """How a merge ended: the folder, the recomputed verdict and the one exit code."""

    run_dir: Path
    outcome: Outcome
    exit_code: ExitCode
    points: int
    sources: list[str]
    thresholds_ok: bool | None
    thresholds_failed: int
    report_path: Path | None


def find_sources(paths: list[Path]) -> list[MergeSource]:
    """Read each path as a run folder (orch's, or one runner's collected output) or a raw file.

    A folder must hold a raw file (``raw.parquet``, ``raw.csv[.gz]``); its ``run.json`` and
    summary are used when present. Raises :class:`ConfigError` naming the path otherwise.
    """

    if not paths:
        raise ConfigError("give at least one run folder or raw file to merge")
    sources: list[MergeSource] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            manifest = RunFolder(path).read_manifest() or RunManifest()
            named = manifest.files.get("raw")
            raw = path / named if isinstance(named, str) and (path / named).is_file() else None
            raw = raw or find_raw(path)
            if raw is None:
                raise ConfigError(
                    f"{path} holds no raw k6 output (raw.parquet or raw.csv[.gz]); pass the run "
                    "folders of the runners, each with the raw file k6 wrote"
                )
            sources.append(
                MergeSource(_label(path), raw, path, manifest, _summary_of(path, manifest))
            )
        elif path.is_file():
            sources.append(MergeSource(_label(path), path))
        else:
            raise ConfigError(f"{path} does not exist; pass run folders or raw k6 files")
    labels = [s.label for s in sources]
    for i, source in enumerate(sources):
        if labels.count(source.label) > 1:
            source.label = f"{i + 1}:{source.label}"
    return sources


def check_sources(sources: list[MergeSource]) -> None:
    """Refuse inputs that are not the runners of one run, each once (ConfigError, exit 3,
    naming them): the same folder or raw file twice (by resolved path, by identical content,
    or by run.json's start time and execution segment), runs of different scenarios or
    scripts, or overlapping execution segments. What a source's run.json does not say
    (a runner's bare output) is not checked."""
    seen: dict[Path, MergeSource] = {}
    for source in sources:
        key = source.raw.resolve()
        if key in seen:
            raise ConfigError(
                f"{_where(seen[key])} and {_where(source)} are the same run folder (or raw "
                "file); give each runner once"
            )
        seen[key] = source
    by_size: dict[int, list[MergeSource]] = {}
    for source in sources:
        by_size.setdefault(source.raw.stat().st_size, []).append(source)
    for group in (g for g in by_size.values() if len(g) > 1):
        digests: dict[str, MergeSource] = {}
        for source in group:
            digest = _sha256(source.raw)
            if digest in digests:
                raise ConfigError(
                    f"{_where(digests[digest])} and {_where(source)} hold the same raw points "
                    "(identical files): the same run twice; give each runner once"
                )
            digests[digest] = source
    described = [(s, s.manifest) for s in sources if s.manifest.model_fields_set]
    scenarios = {m.scenario for _s, m in described if m.scenario}
    if len(scenarios) > 1:
        listed = ", ".join(f"{_where(s)}: {m.scenario}" for s, m in described if m.scenario)
        raise ConfigError(
            f"the folders are runs of different scenarios ({listed}); merge only the runners "
            "of one run"
        )
    scripts = [(s, script) for s, m in described if (script := _script_digest(s, m))]
    if len({script for _s, script in scripts}) > 1:
        first = scripts[0]
        other = next(s for s, script in scripts if script != first[1])
        raise ConfigError(
            f"{_where(first[0])} and {_where(other)} ran different scripts (their script "
            "files differ); merge only the runners of one run"
        )
    segments = [(s, m, seg) for s, m in described if (seg := execution_segment(m.command))]
    for i, (a, ma, (a_from, a_to)) in enumerate(segments):
        for b, mb, (b_from, b_to) in segments[i + 1 :]:
            same_start = ma.started_at is not None and ma.started_at == mb.started_at
            if same_start and (a_from, a_to) == (b_from, b_to):
                raise ConfigError(
                    f"{_where(a)} and {_where(b)} are the same run (same start and execution "
                    "segment); give each runner once"
                )
            if max(a_from, b_from) < min(a_to, b_to):
                raise ConfigError(
                    f"{_where(a)} (execution segment {a_from}:{a_to}) and {_where(b)} "
                    f"({b_from}:{b_to}) overlap: together they ran part of the test twice; "
                    "merge runners whose segments do not overlap"
                )


def execution_segment(command: list[str]) -> tuple[Fraction, Fraction] | None:
    """The execution segment a k6 command line ran (``--execution-segment=1/3:2/3``; the
    whole test ``0:1`` without the option), or None when there is no command to read."""
    if not command:
        return None
    value = None
    for index, arg in enumerate(command):
        if arg.startswith("--execution-segment="):
            value = arg.split("=", 1)[1]
        elif arg == "--execution-segment" and index + 1 < len(command):
            value = command[index + 1]
    if value is None:
        return Fraction(0), Fraction(1)
    start, _sep, end = value.rpartition(":")
    try:
        return _segment_point(start or "0"), _segment_point(end)
    except (ValueError, ZeroDivisionError):
        return None


def _segment_point(text: str) -> Fraction:
    """One end of a k6 execution segment: ``1/3``, ``0.5`` or ``50%``."""
    text = text.strip()
    if text.endswith("%"):
        return Fraction(text[:-1]) / 100
    return Fraction(text)


def _where(source: MergeSource) -> str:
    return str(source.run_dir or source.raw)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _script_digest(source: MergeSource, manifest: RunManifest) -> str | None:
    """The hash of the k6 script a runner's run.json names (``files.script``), if present."""
    name = manifest.files.get("script")
    if source.run_dir is None or not name:
        return None
    script = source.run_dir / name
    return _sha256(script) if script.is_file() else None


def _summary_of(run_dir: Path, manifest: RunManifest) -> Path | None:
    """The k6 summary of a runner's folder: run.json's ``files.summary``, else summary.json."""
    for name in [manifest.files.get("summary"), RunFolder.SUMMARY]:
        if isinstance(name, str) and (run_dir / name).is_file():
            return run_dir / name
    return None


def _label(path: Path) -> str:
    resolved = path.resolve()
    return f"{resolved.parent.name}/{resolved.name}" if resolved.parent.name else resolved.name


def _as_parquet(source: MergeSource, workdir: Path) -> Path:
    """The source's points as orch's Parquet file (CSV, plain or gzipped, is converted)."""

    fmt, _compressed = detect_format(source.raw)
    if fmt == "parquet":
        return source.raw
    if fmt == "empty":
        raise ConfigError(f"{source.raw} is empty: that runner recorded no points")
    if fmt != "csv":
        raise ConfigError(
            f"{source.raw} is k6 NDJSON; merging reads k6's CSV output (--out csv=raw.csv.gz) "
            "or orch's raw.parquet: rerun the runners with --out csv, or report on it alone "
            "with `orch report --from`"
        )
    # finalize_raw converts <folder>/raw.csv (plain or gzipped) and deletes only that name,
    # so a link to the source is converted without touching the source.
    folder = Path(tempfile.mkdtemp(prefix="convert-", dir=workdir))
    os.symlink(source.raw.resolve(), folder / RunFolder.RAW_CSV)
    converted = finalize_raw(folder)
    if converted.suffix != ".parquet":
        raise ConfigError(f"cannot read the k6 CSV {source.raw}; is it complete?")
    return converted


def _summary_types(summary_path: Path | None) -> dict[str, str]:
    """Metric types from a summary: handleSummary names them; --summary-export shows them
    by the statistics it lists (counter: count+rate, rate: passes, gauge: value, trend: avg)."""
    if summary_path is None:
        return {}
    try:
        data = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    metrics = data.get("metrics") if isinstance(data, dict) else None
    types: dict[str, str] = {}
    for key, metric in (metrics or {}).items():
        if not isinstance(metric, dict):
            continue
        if isinstance(metric.get("type"), str):
            types[key] = metric["type"]
            continue
        stats = set(metric)
        if "passes" in stats or "fails" in stats:
            types[key] = "rate"
        elif {"count", "rate"} <= stats:
            types[key] = "counter"
        elif "avg" in stats or "med" in stats:
            types[key] = "trend"
        elif "value" in stats:
            types[key] = "gauge"
    return types


def _source_thresholds(source: MergeSource) -> dict[str, list[str]]:
    summary = None
    if source.summary_path is not None:
        try:
            summary = read_summary(source.summary_path)
        except ConfigError:
            summary = None
    return merge_thresholds(manifest_thresholds(source.manifest), summary_thresholds(summary))


def _source_duration(source: MergeSource) -> float | None:
    if source.summary_path is not None:
        try:
            duration = read_summary(source.summary_path).duration_s
        except ConfigError:
            duration = None
        if duration:
            return duration
    value = source.manifest.duration_s
    return float(value) if value is not None and value > 0 else None


def merge_into(
    run_dir: Path, sources: list[MergeSource], *, thresholds: dict[str, list[str]] | None = None
) -> MergedRaw:
    """Write ``run_dir/raw.parquet`` (every source's points, with an ``orch_source`` column)
    and ``run_dir/merged-summary.json`` (duration and metric types only).

    ``thresholds`` adds declarations to those found in the sources' run.json and summaries.
    """

    if not sources:
        raise ConfigError("nothing to merge: no runner output was found")
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - a dependency of orch
        raise SetupError("duckdb is not installed; run `pip install orch`") from exc

    run_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".merge-", dir=run_dir))
    out = run_dir / MERGED_RAW
    part = run_dir / (MERGED_RAW + ".part")
    try:
        parquets = [(s.label, _as_parquet(s, workdir)) for s in sources]
        con = duckdb.connect(config={"threads": min(2, os.cpu_count() or 1)})
        try:
            con.execute("SET memory_limit='256MB'")
            con.execute(f"SET temp_directory='{_sql(str(workdir))}'")
            skipped = 0
            for _label, path in parquets:
                row = con.execute(
                    "SELECT coalesce(sum(try_cast(value::VARCHAR AS BIGINT)), 0) "
                    "FROM parquet_kv_metadata(?) WHERE key::VARCHAR = 'orch.skipped_lines'",
                    [str(path)],
                ).fetchone()
                skipped += int(row[0]) if row else 0
            columns = ", ".join(f'"{c}"' for c in CSV_COLUMNS)
            union = " UNION ALL ".join(
                f"SELECT {columns}, '{_sql(label)}' AS orch_source "
                f"FROM read_parquet('{_sql(str(path))}')"
                for label, path in parquets
            )
            con.execute(
                f"COPY ({union}) TO '{_sql(str(part))}' (FORMAT parquet, COMPRESSION zstd, "
                f"KV_METADATA {{'orch.skipped_lines': '{skipped}'}})"
            )
            count_row = con.execute(f"SELECT count(*) FROM read_parquet('{_sql(str(part))}')")
            points = int((count_row.fetchone() or (0,))[0])
        finally:
            con.close()
        os.replace(part, out)
    except duckdb.Error as exc:
        raise ConfigError(f"cannot merge the raw outputs: {exc}") from exc
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

    declared = merge_thresholds(*(_source_thresholds(s) for s in sources), thresholds or {})
    types: dict[str, str] = {}
    for source in sources:
        for key, kind in _summary_types(source.summary_path).items():
            types.setdefault(key, kind)
    durations = [d for d in (_source_duration(s) for s in sources) if d]
    duration = max(durations) if durations else None
    _write_merged_summary(run_dir / MERGED_SUMMARY, declared, types, duration, sources)
    return MergedRaw(out, points, duration, declared, types)


def _write_merged_summary(
    path: Path,
    thresholds: dict[str, list[str]],
    types: dict[str, str],
    duration_s: float | None,
    sources: list[MergeSource],
) -> None:
    """A handleSummary-shaped file with types and duration, and no statistic or verdict."""

    metrics: dict[str, Any] = {}
    for key in [*types, *thresholds]:
        kind = types.get(key) or types.get(parse_metric_key(key)[0])
        kind = kind or BUILTIN_TYPES.get(parse_metric_key(key)[0])
        if kind:
            metrics[key] = {"type": kind, "values": {}}
    data: dict[str, Any] = {
        "orch_merged": {
            "note": "written by orch when merging runners: the merged test duration and "
            "metric types only; every statistic and verdict is recomputed from raw.parquet",
            "sources": [s.label for s in sources],
        },
        "metrics": metrics,
        "state": {"testRunDurationMs": duration_s * 1000.0} if duration_s else {},
    }
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _sql(text: str) -> str:
    return text.replace("'", "''")


def combined_outcome(
    source_outcomes: list[Outcome | None],
    thresholds_ok: bool | None,
    delivered: bool | None = None,
) -> tuple[Outcome, ExitCode]:
    """One outcome and exit code: a stopped or failed runner first, then the recomputed
    thresholds (99 when any crossed), then the merged load delivery (10 when the runners
    together did not deliver the planned load), else passed. Runners' own verdicts (over
    their segment only) do not count."""
    for outcome, code in _SOURCE_PRECEDENCE:
        if outcome in source_outcomes:
            return outcome, code
    for source_outcome in source_outcomes:  # unfinished (`running`), a dry run, ...
        if source_outcome is not None and source_outcome not in _REJUDGED:
            return source_outcome, ExitCode(not_judged_exit_code(source_outcome))
    if thresholds_ok is False:
        return Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS
    if delivered is False:
        return Outcome.LOAD_NOT_DELIVERED, ExitCode.LOAD_NOT_DELIVERED
    return Outcome.PASSED, ExitCode.OK


def judge_merged(
    run_dir: Path,
    source_outcomes: list[Outcome | None],
    save_outcome: Callable[[Outcome, ExitCode], None],
) -> tuple[Outcome, ExitCode, ReportResult]:
    """Build the report of a merged folder, decide the one outcome, and record it.

    ``save_outcome(outcome, code)`` writes it into run.json; results.json and report.md
    are then brought up to date without a second ingest.
    """

    report = build_report(run_dir)
    results = read_results(report.results_path)
    thresholds_ok = _judge_empty_metrics(results)
    outcome, code = combined_outcome(source_outcomes, thresholds_ok, results.delivery.delivered)
    save_outcome(outcome, code)
    report.thresholds_ok = thresholds_ok
    report.thresholds_failed = results.verdict.thresholds_failed
    report.outcome, report.exit_code = outcome, int(code)
    results.run.outcome = outcome
    results.run.exit_code = int(code)
    write_text_atomic(report.results_path, results.to_json())
    write_text_atomic(report.report_path, render_markdown(results))
    return outcome, code, report


def _judge_empty_metrics(results: ResultsDocument) -> bool | None:
    """Judge thresholds whose metric has no point at all as k6 does: on an empty metric's
    zero value (k6 reports ``vus_max value>=1`` crossed with value 0 when no sample came).
    Updates ``results``' rows and verdict in place; returns the overall verdict."""

    for row in results.thresholds:
        if row.ok is not None or row.measured is not None:
            continue
        expr = parse_threshold(row.expression)
        if expr is None:
            continue
        if row.unit == "per_second" and not results.run.duration_s:
            continue  # a counter's rate needs the duration, which is unknown
        row.measured = 0.0
        row.measured_source = "raw points (none: an empty metric is 0, as in k6)"
        row.ok = expr.holds(0.0)
        row.verdict_source = "orch"
    results.verdict = Verdict.of(results.thresholds)
    return results.verdict.thresholds_ok


def merge_runs(
    inputs: list[Path],
    *,
    out_dir: Path | None = None,
    results_dir: Path | None = None,
) -> MergeResult:
    """``orch report --merge``: one run folder and one verdict from several runners' outputs.

    The folder is ``out_dir``, or ``results_dir/<UTC timestamp>_merged_<scenario>``.
    """

    sources = find_sources(inputs)
    check_sources(sources)
    # the first source whose run.json says anything
    first = next((s.manifest for s in sources if s.manifest.model_fields_set), RunManifest())
    scenario = str(first.scenario or "runs")
    if out_dir is None:
        run_dir = RunFolder.create(results_dir or Path("results"), "merged", scenario).path
    else:
        run_dir = Path(out_dir)
        if run_dir.resolve() in {s.raw.resolve().parent for s in sources}:
            raise ConfigError(f"--out {run_dir} is one of the inputs; choose a new folder")
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise ConfigError(f"{run_dir} is not empty; choose an empty or new folder with --out")
        run_dir.mkdir(parents=True, exist_ok=True)
    merged = merge_into(run_dir, sources)
    source_outcomes = [s.manifest.outcome for s in sources]
    started = [s.manifest.started_at for s in sources if s.manifest.started_at]
    ended = [s.manifest.ended_at for s in sources if s.manifest.ended_at]
    manifest = RunManifest(
        scenario=first.scenario,
        environment=first.environment,
        profile=first.profile,
        runner=f"merged ({len(sources)} runners)",
        k6_version=first.k6_version,
        started_at=min(started, default=None),
        ended_at=max(ended, default=None),
        orch_version=__version__,
        duration_s=merged.duration_s,
        outcome=Outcome.RUNNING,
        merged_from=[
            {
                "label": s.label,
                "path": str(s.run_dir or s.raw),
                "outcome": s.manifest.outcome,
                "k6_exit_code": s.manifest.k6_exit_code,
            }
            for s in sources
        ],
        notes=[f"merged {merged.points:,} points from {len(sources)} runners on {iso(utc_now())}"],
        files={"raw": MERGED_RAW, "summary": MERGED_SUMMARY},
        load_profile=first.load_profile or {},
        thresholds=merged.thresholds,
        target=first.target,
        delivery=first.delivery,
        load_generator=combine_load_generators([s.manifest.load_generator for s in sources]),
    )
    manifest.save(run_dir)

    def save(outcome: Outcome, code: ExitCode) -> None:
        manifest.outcome, manifest.exit_code = outcome, int(code)
        manifest.save(run_dir)

    outcome, code, report = judge_merged(run_dir, source_outcomes, save)
    return MergeResult(
        run_dir=run_dir,
        outcome=outcome,
        exit_code=code,
        points=merged.points,
        sources=[s.label for s in sources],
        thresholds_ok=report.thresholds_ok,
        thresholds_failed=report.thresholds_failed,
        report_path=report.report_path,
    )

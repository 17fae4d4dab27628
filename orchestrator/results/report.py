"""Build a run's results: ``results.json``, ``charts/*.png`` and ``report.md``.

:func:`build_report` is what ``orch run`` calls at its end and ``orch report RUN_DIR``
calls later; it only reads the run folder, writes those three outputs, and gives the same
files every time (no time stamps of its own). :func:`import_raw` makes a run folder from
someone else's raw k6 output for ``orch report --from FILE``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__
from orchestrator.core import TEMPLATES_DIR, ConfigError, ExitCode, Outcome, SetupError
from orchestrator.results.charts import render_charts
from orchestrator.results.database import read_database
from orchestrator.results.delivery import judge_outcome
from orchestrator.results.figures import (
    build_results,
    delivery_of,
    manifest_thresholds,
    merge_thresholds,
)
from orchestrator.results.ingest import (
    RAW_CANDIDATES,
    RawAggregates,
    find_raw,
    verify_raw,
)
from orchestrator.results.ingest_cache import cached_ingest
from orchestrator.results.model import ChartEntry, ResultsDocument
from orchestrator.results.pages import fit_summary, mermaid_charts, write_html
from orchestrator.results.run_folder import RunFolder, RunManifest, write_text_atomic
from orchestrator.results.summary import Summary, read_summary

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.md.j2"
SUMMARY_ROWS = 25  # rows of each long table in the job summary (report.html has them all)
SUMMARY_CANDIDATES = (RunFolder.SUMMARY, "handle_summary.json", "summary-handle.json")


@dataclass
class ReportResult:
    """What :func:`build_report` wrote and concluded."""

    run_dir: Path
    report_path: Path
    results_path: Path
    charts: list[Path] = field(default_factory=list)
    thresholds_ok: bool | None = None  # None: no threshold could be judged
    thresholds_failed: int = 0
    # the run's outcome as judged with its load delivery (load_not_delivered for a passed
    # run that did not deliver its load), and its exit code; run.json's when unchanged
    outcome: Outcome | None = None
    exit_code: int | None = None
    delivered: bool | None = None  # None: nothing planned, or delivery not judged
    skipped: dict[str, int] = field(default_factory=dict)  # lines/points the ingest skipped
    notes: list[str] = field(default_factory=list)

    @property
    def html_path(self) -> Path:
        """report.html: report.md with its charts, in one file."""
        return self.run_dir / RunFolder.REPORT_HTML

    @property
    def job_summary_path(self) -> Path:
        """job-summary.md: report.md for a CI job summary."""
        return self.run_dir / RunFolder.JOB_SUMMARY

    @property
    def paths(self) -> list[Path]:
        """Every file written."""
        return [
            self.results_path, self.report_path, self.html_path, self.job_summary_path,
            *self.charts,
        ]  # fmt: skip


def _summary_file(run_dir: Path, manifest: RunManifest) -> Path | None:
    named = manifest.files.get("summary")
    candidates = ([named] if named is not None else []) + list(SUMMARY_CANDIDATES)
    for name in candidates:
        path = run_dir / name
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _raw_file(run_dir: Path, manifest: RunManifest) -> Path | None:
    named = manifest.files.get("raw")
    if named is not None and (run_dir / named).is_file():
        return run_dir / named
    return find_raw(run_dir)


def _require_k6_output(run_dir: Path) -> None:
    """Refuse a folder without run.json that holds no k6 output either (an empty folder,
    a typo): it is not a run, and nothing is written into it."""

    if find_raw(run_dir) is not None or any(
        (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0
        for name in SUMMARY_CANDIDATES
    ):
        return
    if (run_dir / RunFolder.MANIFEST).exists():
        raise ConfigError(
            f"{run_dir / RunFolder.MANIFEST} is not a JSON object (unreadable or corrupt) and "
            "the folder holds no k6 output either; restore run.json from a copy, or pass a "
            "folder written by `orch run`"
        )
    raise ConfigError(
        f"{run_dir} is not a run folder: it holds no {RunFolder.MANIFEST}, no raw k6 output "
        f"({', '.join(RAW_CANDIDATES)}) and no k6 summary ({RunFolder.SUMMARY}); pass a "
        "folder written by `orch run`, or a raw k6 file with `orch report --from FILE`"
    )


def _empty_summaries(run_dir: Path, manifest: RunManifest) -> list[str]:
    """Names of the summary files in the folder that are empty (0 bytes)."""
    named = manifest.files.get("summary")
    names = dict.fromkeys([*([named] if named else []), *SUMMARY_CANDIDATES])
    return [n for n in names if (run_dir / n).is_file() and (run_dir / n).stat().st_size == 0]


def _left_unconverted(raw: Path, manifest: RunManifest, notes: list[str]) -> bool:
    """Whether ``raw`` is the CSV `orch run` should have converted to Parquet and no note
    says so yet (an import or a runner's collected output keeps its CSV by design)."""
    if raw.name not in (RunFolder.RAW_CSV, f"{RunFolder.RAW_CSV}.gz"):
        return False
    if manifest.runner is None or manifest.imported_from is not None:
        return False
    if manifest.runner.startswith("merged") or raw.stat().st_size == 0:
        return False
    return not any("left as written" in n for n in notes)  # compact_raw's own note


def build_report(run_dir: Path, *, raw_file: Path | None = None) -> ReportResult:
    """Read a run folder and (re)write its results.json, charts and report.md.

    Raises :class:`ConfigError` when ``run_dir`` is not a folder or a given raw file is
    unreadable, and :class:`SetupError` when the folder cannot be written.
    """

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(
            f"{run_dir} is not a run folder; pass a folder under results/ written by "
            "`orch run`, or use `orch report --from FILE` for a raw k6 file"
        )
    folder = RunFolder(run_dir)
    recorded = folder.read_manifest()
    if recorded is None and raw_file is None:
        _require_k6_output(run_dir)
    manifest = recorded or RunManifest()
    # the run's own notes first (test users shared by VUs, raw output left uncompacted, …)
    notes: list[str] = [n for n in manifest.notes if n and not n.startswith("report not")]
    summary: Summary | None = None
    summary_path = _summary_file(run_dir, manifest)
    if summary_path is not None:
        try:
            summary = read_summary(summary_path)
        except ConfigError as exc:
            notes.append(f"summary not used: {exc.message}")
            summary_path = None
    notes += [
        f"{name} is empty: figures come from the raw points"
        for name in _empty_summaries(run_dir, manifest)
        if summary_path is None or summary_path.name != name
    ]
    raw = raw_file if raw_file is not None else _raw_file(run_dir, manifest)
    if raw is not None and not raw.is_file():
        raise ConfigError(f"the raw file {raw} does not exist; pass an existing k6 output")
    if raw is not None and _left_unconverted(raw, manifest, notes):
        notes.append(
            f"{raw.name} was kept as k6 wrote it: its conversion to {RunFolder.RAW_PARQUET} "
            "did not finish (orch was stopped, or the conversion failed); the figures are "
            "read from it as it is"
        )

    declared = merge_thresholds(summary_thresholds(summary), manifest_thresholds(manifest))
    duration = summary.duration_s if summary else None
    agg: RawAggregates | None = None
    if raw is None:
        notes.append("no raw time series in the folder: figures come from k6's summary only")
    else:
        agg = cached_ingest(
            raw,
            thresholds=declared,
            duration_s=duration,
            metric_types=dict(summary.metric_types) if summary else None,
        )
        if agg.fmt == "empty":
            notes.append(f"the raw file {raw.name} is empty: k6 recorded no points")
            agg = None
    thresholds = merge_thresholds(declared, agg.declared_thresholds if agg else {})
    results = build_results(
        run_dir,
        manifest=manifest,
        summary=summary,
        summary_file=summary_path,
        agg=agg,
        thresholds=thresholds,
        orch_version=__version__,
    )
    judged = judge_outcome(manifest.outcome, results.delivery.delivered)
    if judged is not None:
        results.run.outcome, results.run.exit_code = judged[0], int(judged[1])
    notes += delivery_notes(results)
    results.database = read_database(folder.path / RunFolder.DATABASE)
    skipped = dict(agg.skipped) if agg else {}
    if skipped.get("malformed_lines"):
        notes.append(
            f"{skipped['malformed_lines']} malformed line(s) skipped in {raw.name if raw else ''}"
            " (a truncated last line is normal when k6 was stopped)"
        )
    if skipped.get("points_without_time_or_value"):
        notes.append(f"{skipped['points_without_time_or_value']} point(s) without time or value")
    if agg and agg.untagged_http_points:
        notes.append(f"{agg.untagged_http_points} request(s) carried neither a name nor a url tag")

    try:
        charts = render_charts(run_dir, agg, results)
        results.charts = [ChartEntry(key=c.key, title=c.title, file=c.file) for c in charts]
        results.notes = notes
        results_path = folder.results_path
        _write(results_path, results.to_json())
        report_path = folder.report_path
        _write(report_path, render_markdown(results))
        write_html(run_dir)
        mermaid = mermaid_charts(agg.buckets, agg.bucket_s) if agg else {}
        summary_text = render_markdown(results, fmt="github", mermaid=mermaid, rows=SUMMARY_ROWS)
        _write(run_dir / RunFolder.JOB_SUMMARY, fit_summary(summary_text))
    except OSError as exc:
        raise SetupError(
            f"cannot write the report into {run_dir}: {exc.strerror or exc}; make the folder "
            "writable or copy it elsewhere and run `orch report` there"
        ) from exc
    return ReportResult(
        run_dir=run_dir,
        report_path=report_path,
        results_path=results_path,
        charts=[run_dir / c.file for c in results.charts],
        thresholds_ok=results.verdict.thresholds_ok,
        thresholds_failed=results.verdict.thresholds_failed,
        outcome=results.run.outcome,
        exit_code=results.run.exit_code,
        delivered=results.delivery.delivered,
        skipped=skipped,
        notes=notes,
    )


def judge_delivery_from_summary(
    run_dir: Path, manifest: RunManifest
) -> tuple[Outcome, ExitCode] | None:
    """The outcome a run takes for its delivery, judged from k6's summary alone (no report
    is built: ``orch run --no-report``); None when it stands or there is no summary."""

    path = _summary_file(run_dir, manifest)
    if path is None:
        return None
    try:
        summary = read_summary(path)
    except ConfigError:
        return None
    return judge_outcome(manifest.outcome, delivery_of(manifest, summary, None).delivered)


def delivery_notes(results: ResultsDocument) -> list[str]:
    """Notes on the load generator and on VUs that ran out (the figures are in the report's
    delivery section)."""
    notes: list[str] = []
    gen = results.load_generator
    if gen is not None and gen.saturated:
        notes.append(
            f"the load generator was saturated: k6 used at least 90 % of its "
            f"{_num(gen.cpu_cores_available, 0)} core(s) for {_pct(gen.saturated_share)} of the "
            "run, so it could not start iterations on time and its latencies include its own "
            "queueing; run it on a bigger machine or shard it (--shards)"
        )
    for row in results.delivery.scenarios:
        if row.reached_max_vus and row.dropped_iterations:
            notes.append(
                f"scenario {row.name}: all {row.max_vus} VUs (maxVUs) were busy and k6 dropped "
                f"{row.dropped_iterations:,} iterations; raise maxVUs or lower the rate"
            )
    return notes


def summary_thresholds(summary: Any) -> dict[str, list[str]]:
    """Threshold expressions k6 reported in its summary."""
    if summary is None:
        return {}
    return {key: list(exprs) for key, exprs in summary.thresholds.items()}


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text)


# --- Markdown -----------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _ms(value: Any) -> str:
    return "—" if value is None else f"{float(value):,.1f} ms"


def _phase_ms(value: Any) -> str:
    """A request phase's average: two decimals, as most phases take well under 1 ms."""
    return "—" if value is None else f"{float(value):,.2f}"


def _pct(value: Any) -> str:
    if value is None:
        return "—"
    pct = 100.0 * float(value)
    return f"{pct:.2f} %" if pct < 10 else f"{pct:.1f} %"


def _measured(row: dict[str, Any]) -> str:
    value, unit = row.get("measured"), row.get("unit")
    if value is None:
        return "not measured"
    if unit == "ms":
        return _ms(value)
    if unit == "ratio":
        return _pct(value)
    if unit == "per_second":
        return f"{float(value):,.1f}/s"
    return _num(value, 0 if float(value).is_integer() else 3)


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ") if text not in (None, "") else "—"


def _duration(value: Any) -> str:
    if value is None:
        return "—"
    seconds = float(value)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def _epoch(value: Any) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _profile_line(profile: Any) -> str:
    """One line describing k6 scenario options: ``executor: key=value, ...``."""
    if not isinstance(profile, dict) or not profile:
        return "—"
    if "executor" not in profile and all(isinstance(v, dict) for v in profile.values()):
        return "; ".join(f"{name}: {_profile_line(opts)}" for name, opts in profile.items())
    parts = [
        f"{k}={json.dumps(v) if isinstance(v, list | dict) else v}"
        for k, v in profile.items()
        if k != "executor"
    ]
    text = f"{profile.get('executor', 'scenario')}: {', '.join(parts)}"
    return _cell(text)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's cache of compiled templates in its private per-user temp folder (mode 0700,
    owner checked), under a name tied to this module's source: the environment's settings
    are compiled into the code but are not part of Jinja's key. None where it cannot be
    made: the template is then compiled, as before."""
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        """A cache that cannot be read or written is no cache, not an error."""

        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().load_bytecode(bucket)

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    settings = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    try:
        return QuietCache(pattern=f"orch-report-{settings}-%s.cache")
    except (OSError, RuntimeError):  # no safe temp folder
        return None


@functools.cache
def _report_template() -> jinja2.Template:
    """``templates/report.md.j2``, compiled once per process: report.md and the job
    summary render the same template. Compiling it takes 0.1 s; Jinja's bytecode cache
    keeps the compiled code between processes."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown, not HTML; cells go through the `cell` filter
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=_num, ms=_ms, pct=_pct, measured=_measured, cell=_cell, duration=_duration,
        epoch=_epoch, profile_line=_profile_line, phase_ms=_phase_ms,
    )  # fmt: skip
    try:
        return env.get_template(TEMPLATE)
    except jinja2.TemplateNotFound as exc:
        raise SetupError(
            f"the report template {TEMPLATES_DIR / TEMPLATE} is missing; reinstall orch"
        ) from exc


def render_markdown(
    results: ResultsDocument,
    *,
    fmt: str = "markdown",
    mermaid: dict[str, str] | None = None,
    rows: int | None = None,
) -> str:
    """report.md from the results document (as written) and ``templates/report.md.j2``;
    with ``fmt="github"`` the job summary (charts as ``mermaid`` blocks, tables cut to
    ``rows`` rows)."""
    template = _report_template()
    return template.render(r=results.to_dict(), fmt=fmt, mermaid=mermaid or {}, rows=rows)


# --- orch report --from -----------------------------------------------------------------


def import_raw(
    raw: Path,
    *,
    summary: Path | None = None,
    out_dir: Path | None = None,
    results_dir: Path | None = None,
) -> Path:
    """Make a run folder from someone else's raw k6 file (and summary); return the folder.

    The folder is ``out_dir``, or ``results_dir/<UTC timestamp>_imported_<file stem>``.
    The raw file is copied in unchanged (any format, plain or gzipped); a minimal run.json
    records where it came from.
    """

    if not raw.is_file():
        raise ConfigError(f"the raw file {raw} does not exist; pass k6's --out json/csv file")
    fmt, compressed = verify_raw(raw)  # all of it, before any folder is made
    if fmt == "parquet":
        name = RunFolder.RAW_PARQUET
    else:
        plain = "raw.json" if fmt == "ndjson" else RunFolder.RAW_CSV
        name = plain + (".gz" if compressed else "")
    if summary is not None and not summary.is_file():
        raise ConfigError(f"the summary file {summary} does not exist")
    if summary is not None:
        read_summary(summary)  # fail early, with the file named, if it is not a summary
    if out_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        stem = raw.name.split(".")[0] or "raw"
        base = results_dir if results_dir is not None else Path("results")
        out_dir = base / f"{stamp}_imported_{stem}"
    folder = RunFolder(out_dir)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = folder.read_manifest()
        if previous is not None and previous.imported_from is not None:
            # A folder of an earlier import: drop its inputs so none outlives this import.
            for old in [*out_dir.glob("raw.*"), folder.summary_path]:
                if old.name != name and old.is_file():
                    old.unlink()
        elif any(out_dir.iterdir()):
            raise ConfigError(
                f"{out_dir} already holds files that `orch report --from` did not write; "
                "choose an empty or new folder with --out"
            )
        if raw.resolve() != (out_dir / name).resolve():
            shutil.copyfile(raw, out_dir / name)
        files: dict[str, str] = {"raw": name}
        if summary is not None:
            if summary.resolve() != folder.summary_path.resolve():
                shutil.copyfile(summary, folder.summary_path)
            files["summary"] = RunFolder.SUMMARY
        manifest = RunManifest(
            orch_version=__version__,
            imported_from={"raw": str(raw), "summary": str(summary) if summary else None},
            files=files,
        )
        folder.write_manifest(manifest)
    except OSError as exc:
        _remove_made(out_dir, created)
        raise SetupError(
            f"cannot write the run folder {out_dir}: {exc.strerror or exc}; choose a writable "
            "folder with --out"
        ) from exc
    except BaseException:
        _remove_made(out_dir, created)
        raise
    return out_dir


def report_import(
    raw: Path,
    *,
    summary: Path | None = None,
    out_dir: Path | None = None,
    results_dir: Path | None = None,
) -> ReportResult:
    """``orch report --from``: :func:`import_raw`, then :func:`build_report` on the folder.

    A folder this call made is removed again when the report fails, so a file that cannot
    be read leaves no half-made folder behind.
    """
    created = out_dir is None or not out_dir.exists()
    run_dir = import_raw(raw, summary=summary, out_dir=out_dir, results_dir=results_dir)
    try:
        return build_report(run_dir)
    except BaseException:
        _remove_made(run_dir, created)
        raise


def _remove_made(folder: Path, created: bool) -> None:
    """Remove a folder this import made (never one that existed before it)."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)

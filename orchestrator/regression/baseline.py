"""Baselines: a run's figures, kept in a small file to commit, and checks against them.

A baseline file (``baselines/<scenario>_<environment>.json``) holds the figures of one run
(overall and per endpoint: requests, throughput, error rate, latency percentiles) and, per
endpoint, a compact latency sample: ``min(requests, SAMPLE_SIZE)`` evenly spaced quantiles
of the run's ``http_req_duration`` points, so the significance test can run against it. No
raw point, URL or secret is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import __version__
from orchestrator.config import OrchConfig, RegressionSettings
from orchestrator.core import ConfigError, ExitCode, OrchError, SetupError
from orchestrator.regression.compare import (
    OVERALL,
    Comparison,
    Side,
    compare_sides,
    figures_by_endpoint,
    latency_samples,
    load_run,
    read_results,
    run_outcome,
)
from orchestrator.regression.compare_report import render_markdown, write_comparison
from orchestrator.results import RunFolder, write_html, write_junit, write_text_atomic

if TYPE_CHECKING:
    import numpy as np

BASELINE_KIND = "orch-baseline"
BASELINE_SCHEMA_VERSION = 1
BASELINES_DIR = "baselines"
SAMPLE_SIZE = 500  # quantiles kept per endpoint (fewer when the run had fewer requests)
_FIGURE_KEYS = ("name", "methods", "requests", "throughput_rps", "failed", "error_rate",
                "rate_limited", "error_rate_excluding_429")  # fmt: skip
_NUMBER_LIST = re.compile(r"\[([0-9eE.+\-,\s]+)\]")
_LATENCY_KEYS = ("avg", "min", "p50", "p90", "p95", "p99", "max")


def baseline_path(config: OrchConfig, scenario: str, environment: str) -> Path:
    """Where the baseline of a scenario in an environment lives by default."""
    return config.root / BASELINES_DIR / f"{scenario}_{environment}.json"


def quantile_sample(values: np.ndarray, size: int = SAMPLE_SIZE) -> list[float]:
    """``min(len(values), size)`` quantiles at (i + 0.5) / k, rounded to microseconds."""
    import numpy as np

    k = min(int(values.size), size)
    if k == 0:
        return []
    probs = (np.arange(k) + 0.5) / k
    return [round(float(v), 3) for v in np.quantile(values, probs)]


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry.get(k) for k in _FIGURE_KEYS if k in entry}
    latency = entry.get("latency_ms") or {}
    out["latency_ms"] = {k: latency.get(k) for k in _LATENCY_KEYS}
    return out


def make_baseline(run_dir: Path) -> dict[str, Any]:
    """The baseline document of a run folder (figures and quantile samples only)."""

    run_dir = Path(run_dir)
    results = read_results(run_dir)
    run = results.run
    if not run.scenario or not run.environment:
        raise ConfigError(
            f"{run_dir} does not say which scenario and environment it ran "
            f"({RunFolder.MANIFEST}); only folders written by `orch run` can become a baseline"
        )

    outcome, _code = run_outcome(run_dir, results)  # run.json's (or a later report's)
    if outcome is None or not outcome.completed:
        shown = repr(None if outcome is None else outcome.value)
        raise ConfigError(
            f"{run_dir} ended as {shown}; a baseline must be a complete run "
            "(passed, or thresholds_failed)"
        )
    figures = figures_by_endpoint(results)
    if OVERALL not in figures:
        raise ConfigError(f"{run_dir} has no raw points, so no figures to keep as a baseline")
    samples = latency_samples(run_dir, results)
    return {
        "kind": BASELINE_KIND,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "scenario": run.scenario,
        "environment": run.environment,
        "profile": run.profile,
        "source_run": run.folder or run_dir.name,
        "run_started_at": run.started_at,
        "duration_s": run.duration_s,
        "k6_version": run.k6_version,
        "orch_version": __version__,
        "set_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "overall": _figures(figures[OVERALL]),
        "endpoints": [_figures(f) for name, f in figures.items() if name != OVERALL],
        "latency_sample": {
            "method": "quantiles",
            "metric": "http_req_duration",
            "unit": "ms",
            "max_size": SAMPLE_SIZE,
            "quantiles": {name: quantile_sample(values) for name, values in samples.items()},
        },
    }


def set_baseline(run_dir: Path, out: Path) -> Path:
    """Write ``run_dir``'s baseline to ``out`` and return it."""
    document = make_baseline(run_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        text = json.dumps(document, indent=1)
        # one line per number list (the quantile samples), so the file reads and diffs well
        text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise SetupError(f"cannot write the baseline {out}: {exc.strerror or exc}") from exc
    return out


def read_baseline(path: Path) -> dict[str, Any]:
    """A baseline file as a dict, checked to be one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise ConfigError(
            f"{path} is not a baseline file; make one with `orch baseline set RUN_DIR`"
        )
    if data.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise ConfigError(
            f"{path} has baseline schema_version {data.get('schema_version')!r}; this orch "
            f"reads {BASELINE_SCHEMA_VERSION}: set it again with `orch baseline set`"
        )
    return data


def baseline_side(data: dict[str, Any], *, label: str) -> Side:
    """A baseline document as one side of a comparison."""
    import numpy as np

    figures: dict[str, dict[str, Any]] = {OVERALL: data.get("overall") or {}}
    for entry in data.get("endpoints") or []:
        if isinstance(entry, dict) and entry.get("name"):
            figures[str(entry["name"])] = entry
    quantiles = (data.get("latency_sample") or {}).get("quantiles") or {}
    return Side(
        label=f"baseline {label} (from {data.get('source_run')})",
        kind="baseline",
        scenario=data.get("scenario"),
        environment=data.get("environment"),
        profile=data.get("profile"),
        figures=figures,
        samples={str(k): np.asarray(v, dtype=float) for k, v in quantiles.items()},
        sample_kind="quantiles",
        started_at=data.get("run_started_at"),
    )


def load_side(path: Path) -> Side:
    """A run folder or a baseline file (``orch baseline set``) as a side."""
    path = Path(path)
    if path.is_dir():
        return load_run(path)
    if path.is_file():
        return baseline_side(read_baseline(path), label=path.name)
    raise ConfigError(f"{path} does not exist; pass a run folder or a baseline file")


@dataclass(frozen=True)
class BaselineCheck:
    """The outcome of checking a run against its baseline."""

    baseline: Path
    comparison: Comparison
    markdown: Path
    json: Path
    chart: Path

    @property
    def regressed(self) -> bool:
        """Whether the run regressed against the baseline."""
        return self.comparison.regressed


def check_against_baseline(
    run_dir: Path, baseline: Path, settings: RegressionSettings
) -> BaselineCheck:
    """Compare a run with a baseline; write compare.* into the run folder; extend report.md.

    The comparison goes to ``compare.md``, ``compare.json`` and ``charts/compare_p95.png``,
    and is appended to ``report.md`` as a section.
    """

    base = load_side(baseline)
    run = load_run(run_dir)
    cmp = compare_sides(base, run, settings)
    files = write_comparison(cmp, run_dir, chart_dir=RunFolder.CHARTS)
    folder = RunFolder(run_dir)
    verdict = _regressed_line(cmp, Path(baseline)) if cmp.regressed else None
    if folder.report_path.is_file():
        chart = f"{RunFolder.CHARTS}/{files.chart.name}"
        _append_section(folder.report_path, _baseline_section(cmp, chart), verdict)
        write_html(run_dir)  # report.html is report.md's text: the section goes in too
    summary = run_dir / RunFolder.JOB_SUMMARY
    if summary.is_file():  # no image there: a job summary cannot reach the run's files
        _append_section(summary, _baseline_section(cmp, None), verdict)
    return BaselineCheck(Path(baseline), cmp, files.markdown, files.json, files.chart)


def _regressed_line(cmp: Comparison, baseline: Path) -> str:
    """The line a regressed run's reports open with, above the thresholds' verdict: a run
    whose thresholds held but that regressed must not open with PASSED alone."""
    names = ", ".join(f"`{name}`" for name in cmp.regressed_endpoints) or "the run"
    return (
        f"**📉 REGRESSED** against the baseline `{baseline.name}`: {names} worse, with "
        "significance (exit 8 when the thresholds held; see the last section)."
    )


def _baseline_section(cmp: Comparison, chart: str | None) -> str:
    section = render_markdown(cmp, chart=chart, heading=2)
    return section.replace("## Comparison:", "## Against the baseline:", 1)


def _append_section(path: Path, section: str, first_line: str | None = None) -> None:
    """Append ``section`` to a report; put ``first_line`` above everything, if given."""
    try:
        text = path.read_text(encoding="utf-8")
        head = f"{first_line}\n\n" if first_line else ""
        write_text_atomic(path, f"{head}{text}\n{section}")
    except OSError as exc:
        raise SetupError(f"cannot extend {path}: {exc.strerror or exc}") from exc


def resolve_baseline_file(
    config: OrchConfig, scenario: str, environment: str, explicit: Path | None
) -> Path | None:
    """The baseline to check a run against: ``explicit`` (must exist) or the default file.

    Returns None when no explicit file was given and the default one does not exist yet.
    Raises :class:`ConfigError` for a missing explicit file or one of another scenario.
    """
    path = explicit if explicit is not None else baseline_path(config, scenario, environment)
    if not path.is_file():
        if explicit is not None:
            raise ConfigError(
                f"the baseline file {path} does not exist; make one with `orch baseline set "
                "RUN_DIR --out FILE` or leave out --baseline"
            )
        return None
    data = read_baseline(path)
    if data.get("scenario") != scenario:
        raise ConfigError(
            f"the baseline {path} is of scenario {data.get('scenario')!r}, not {scenario!r}; "
            "pass the baseline of this scenario"
        )
    return path


def conclude_run(
    run_dir: Path,
    exit_code: int,
    *,
    settings: RegressionSettings,
    baseline: Path | None,
    against_baseline: bool,
    echo: Callable[[str], None],
) -> int:
    """After `orch run`: compare with the baseline if asked, write junit.xml, final exit code.

    A regression turns a passing run's exit 0 into 8 (REGRESSION); a threshold failure
    (99) keeps its code, as do k6 errors and interruptions (those are not compared).
    """

    final = exit_code
    if against_baseline:
        if exit_code not in (ExitCode.OK, ExitCode.THRESHOLDS):
            echo("baseline: not compared, the run did not complete")
        elif baseline is None:
            echo(
                "baseline: none yet for this scenario and environment; nothing to compare "
                "(set one with `orch baseline set RUN_DIR`)"
            )
        else:
            try:
                check = check_against_baseline(run_dir, baseline, settings)
            except OrchError as exc:
                echo(f"warning: no comparison with the baseline: {exc.message}")
            else:
                _record_in_manifest(run_dir, check)
                if check.regressed:
                    names = ", ".join(r.name for r in check.comparison.rows if r.regressed)
                    echo(f"REGRESSED against {baseline}: {names}; see {check.markdown}")
                    if exit_code == ExitCode.OK:
                        final = int(ExitCode.REGRESSION)
                else:
                    echo(f"baseline: no regression against {baseline}")
    if final != exit_code:
        _update_manifest(run_dir, {"exit_code": final})
    try:
        write_junit(run_dir)
    except OrchError as exc:
        echo(f"warning: {exc.message}")
    return final


def _update_manifest(run_dir: Path, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into run.json (best effort: the comparison files stay either way)."""
    folder = RunFolder(run_dir)
    try:
        manifest = folder.read_manifest()
        if manifest is not None:
            folder.write_manifest(manifest.model_copy(update=changes))
    except (OSError, OrchError):
        pass


def _record_in_manifest(run_dir: Path, check: BaselineCheck) -> None:
    _update_manifest(
        run_dir,
        {
            "baseline": {
                "file": str(check.baseline),
                "source_run": check.comparison.a.label,
                "regressed": check.regressed,
                "regressed_endpoints": check.comparison.regressed_endpoints,
                "comparison": check.json.name,
            }
        },
    )

"""The trend of one scenario across runs: p95, throughput and error rate, as PNG and Markdown.

:func:`collect_history` reads every ``results.json`` under a folder (the results folder, or
any archive of run folders such as downloaded CI artifacts), keeps the runs of one scenario
(and environment), and orders them by start time. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.core import ConfigError, Outcome, SetupError, not_judged_reason
from orchestrator.regression.compare import run_outcome
from orchestrator.results import ResultsDocument, RunFolder, read_results

HISTORY_CHART = "history.png"
HISTORY_MARKDOWN = "history.md"


@dataclass(frozen=True)
class HistoryPoint:
    """One run's headline figures."""

    folder: str
    started_at: str
    environment: str
    profile: str | None
    outcome: Outcome | None
    requests: int | None
    throughput_rps: float | None
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def judged(self) -> bool:
        """Whether the run completed (or is of unknown outcome), so its figures belong to
        the trend; an unfinished or failed run is listed but not part of it."""
        return not_judged_reason(self.outcome) is None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def collect_history(
    root: Path, scenario: str, environment: str | None = None, profile: str | None = None
) -> list[HistoryPoint]:
    """Runs of ``scenario`` (in ``environment``, of ``profile``) under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder of run folders; pass one with --from")
    points: list[HistoryPoint] = []
    for path in sorted(root.rglob(RunFolder.RESULTS)):
        try:
            data = read_results(path)
        except ConfigError:
            continue  # not a results.json this orch reads
        run = data.run
        outcome = _outcome(path.parent, data)
        if run.scenario != scenario:
            continue
        if environment and run.environment != environment:
            continue
        if profile and run.profile != profile:
            continue
        overall = data.overall
        latency = overall.latency_ms if overall is not None else None
        points.append(
            HistoryPoint(
                folder=str(run.folder or path.parent.name),
                started_at=str(run.started_at or ""),
                environment=str(run.environment or ""),
                profile=run.profile,
                outcome=outcome,
                requests=overall.requests if overall is not None else None,
                throughput_rps=_num(overall.throughput_rps if overall else None),
                error_rate=_num(overall.error_rate if overall else None),
                p50_ms=_num(latency.p50 if latency else None),
                p95_ms=_num(latency.p95 if latency else None),
                p99_ms=_num(latency.p99 if latency else None),
            )
        )
    unique = {p.folder: p for p in points}  # the same run copied twice counts once
    return sorted(unique.values(), key=lambda p: (p.started_at, p.folder))


def _outcome(run_dir: Path, results: ResultsDocument) -> Outcome | None:
    """The run's outcome (:func:`~orchestrator.regression.compare.run_outcome`); results.json's
    alone when run.json cannot be read."""
    try:
        return run_outcome(run_dir, results)[0]
    except ConfigError:
        return results.run.outcome


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def render_markdown(
    points: list[HistoryPoint], scenario: str, environment: str | None, chart: str | None = None
) -> str:
    """A Markdown table of the runs, oldest first, with the change of p95 from run to run."""
    where = f" in {environment}" if environment else ""
    lines = [f"# History of {scenario}{where}", "", f"{len(points)} run(s), oldest first.", ""]
    unjudged = [p for p in points if not p.judged]
    if unjudged:
        lines += [
            f"{len(unjudged)} run(s) did not complete (outcome marked *not judged*): their "
            "figures cover only what they recorded, so they are listed but left out of the "
            "trend (Δ p95 and the chart's line).",
            "",
        ]
    lines += [
        "| started (UTC) | run folder | env | profile | outcome | requests | req/s | "
        "error rate | p50 ms | p95 ms | Δ p95 | p99 ms |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous: float | None = None
    for p in points:
        change = (
            f"{100 * (p.p95_ms - previous) / previous:+.1f} %"
            if p.p95_ms is not None and previous and p.judged
            else "—"
        )
        outcome = f"{p.outcome} (not judged)" if not p.judged else (p.outcome or "—")
        lines.append(
            f"| {p.started_at[:19].replace('T', ' ')} | {p.folder} | {p.environment} | "
            f"{p.profile or '—'} | {outcome} | "
            f"{_fmt(p.requests, '{:,}')} | {_fmt(p.throughput_rps, '{:,.1f}')} | "
            f"{_fmt(None if p.error_rate is None else 100 * p.error_rate, '{:.2f} %')} | "
            f"{_fmt(p.p50_ms, '{:,.1f}')} | {_fmt(p.p95_ms, '{:,.1f}')} | {change} | "
            f"{_fmt(p.p99_ms, '{:,.1f}')} |"
        )
        if p.judged and p.p95_ms is not None:
            previous = p.p95_ms
    if chart:
        lines += ["", f"![p95, throughput and error rate across runs]({chart})"]
    return "\n".join(lines) + "\n"


def draw_history(points: list[HistoryPoint], path: Path, title: str) -> Path:
    """Three stacked panels (p95, throughput, error rate) across runs, as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 8.0), dpi=120, layout="constrained")
    axes = [fig.add_subplot(3, 1, i + 1) for i in range(3)]
    xs = list(range(len(points)))
    series = [
        ("p95 latency (ms)", [p.p95_ms for p in points], "#1f77b4"),
        ("throughput (req/s)", [p.throughput_rps for p in points], "#2ca02c"),
        ("error rate (%)", [None if p.error_rate is None else 100 * p.error_rate
                            for p in points], "#d62728"),
    ]  # fmt: skip
    for ax, (label, values, color) in zip(axes, series, strict=True):
        ax.grid(True, color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        known = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        trend = [(x, v) for x, v in known if points[x].judged]
        if known:
            if trend:
                ax.plot([k[0] for k in trend], [k[1] for k in trend], marker="o", color=color,
                        label=label)  # fmt: skip
            failed = [(x, v) for x, v in trend if points[x].outcome == Outcome.THRESHOLDS_FAILED]
            if failed:
                ax.scatter([f[0] for f in failed], [f[1] for f in failed], marker="x", s=80,
                           color="black", zorder=3, label="thresholds crossed")  # fmt: skip
            unjudged = [(x, v) for x, v in known if not points[x].judged]
            if unjudged:
                ax.scatter([u[0] for u in unjudged], [u[1] for u in unjudged], marker="o", s=60,
                           facecolors="none", edgecolors="#888888", zorder=3,
                           label="did not complete: not judged")  # fmt: skip
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        top = max((k[1] for k in known), default=0.0)
        floor = 1.0 if color == "#d62728" else 0.0  # an error-free history shows 0..1 %
        ax.set_ylim(0, max(top * 1.25, floor) or 1.0)
    labels = [p.started_at[5:19].replace("T", " ") or p.folder for p in points]
    step = max(1, len(points) // 12)
    axes[-1].set_xticks(xs[::step], labels[::step], rotation=30, ha="right", fontsize=8)
    for ax in axes[:-1]:
        ax.set_xticks(xs[::step], [])
    axes[-1].set_xlabel("run start (UTC, MM-DD HH:MM:SS)")
    axes[0].set_title(title)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as exc:
        raise SetupError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def write_history(
    points: list[HistoryPoint], out_dir: Path, scenario: str, environment: str | None
) -> tuple[Path, Path]:
    """Write ``history.png`` and ``history.md`` into ``out_dir``; return both paths."""
    where = f" ({environment})" if environment else ""
    chart = draw_history(points, Path(out_dir) / HISTORY_CHART, f"{scenario}{where} across runs")
    md = Path(out_dir) / HISTORY_MARKDOWN
    try:
        md.write_text(
            render_markdown(points, scenario, environment, chart=HISTORY_CHART), encoding="utf-8"
        )
    except OSError as exc:
        raise SetupError(f"cannot write {md}: {exc.strerror or exc}") from exc
    return chart, md

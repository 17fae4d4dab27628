"""A comparison as people and tools read it: ``compare.md``, ``compare.json`` and a chart.

The decision (what regressed) is :mod:`orchestrator.regression.compare`'s; this module only
renders a :class:`~orchestrator.regression.compare.Comparison` and writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core import SetupError
from orchestrator.regression.compare import Comparison
from orchestrator.results import RunFolder

CHART_FILE = "compare_p95.png"


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def _signed(v: float | None, unit: str = "", digits: int = 1) -> str:
    return "—" if v is None else f"{v:+,.{digits}f}{unit}"


def _rate(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(cmp: Comparison, *, chart: str | None = None, heading: int = 1) -> str:
    """The comparison as Markdown: what was compared, the tables, and the verdict."""
    h = "#" * heading
    lines = [
        f"{h} Comparison: {_cell(cmp.b.label)} against {_cell(cmp.a.label)}",
        "",
        f"- A: `{cmp.a.label}` ({cmp.a.kind}; {cmp.a.scenario or '?'} / "
        f"{cmp.a.environment or '?'} / {cmp.a.profile or '?'})",
        f"- B: `{cmp.b.label}` ({cmp.b.kind}; {cmp.b.scenario or '?'} / "
        f"{cmp.b.environment or '?'} / {cmp.b.profile or '?'})",
        f"- Regression when p95 is worse by more than {cmp.settings['p95_increase_pct']:g} % "
        f"and {cmp.settings['p95_min_increase_ms']:g} ms with significance (alpha "
        f"{cmp.settings['alpha']:g}), or the error rate is up by more than "
        f"{cmp.settings['error_rate_increase_points']:g} points with significance.",
        "",
    ]
    regressed = [r.name for r in cmp.rows if r.regressed]
    verdict = f"**REGRESSED**: {', '.join(regressed)}" if regressed else "**No regression** found."
    if not cmp.judged:
        verdict = (
            "**NOT JUDGED**: a run that did not complete is neither compared as a regression "
            "nor as none; the figures below cover only what it recorded.\n\n"
            + "\n".join(f"- {why}" for why in cmp.not_judged)
        )
    lines += [verdict, "", f"{h}# Latency (ms)", ""]
    lines += [
        "| endpoint | p50 A | p50 B | Δ p50 | p95 A | p95 B | Δ p95 | Δ p95 % | p99 A | p99 B "
        "| Δ p99 | U test p | p95 Δ 95 % CI (ms) | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in cmp.rows:
        s = r.significance
        ci = "—"
        if s and s.p95_diff_ci_ms:
            ci = f"{s.p95_diff_ci_ms[0]:+.1f} … {s.p95_diff_ci_ms[1]:+.1f}"
        p = f"{s.p_value:.2g}" if s and s.p_value is not None else "—"
        verdict_cell = (
            "REGRESSED" if r.latency_regressed
            else ("significant, within tolerance" if s and s.significant else "ok")
        )  # fmt: skip
        lat, chg = r.latency_ms, r.latency_change_ms
        lines.append(
            f"| {_cell(r.name)} | {_ms(lat['p50'][0])} | {_ms(lat['p50'][1])} | "
            f"{_signed(chg['p50'])} | {_ms(lat['p95'][0])} | {_ms(lat['p95'][1])} | "
            f"{_signed(chg['p95'])} | {_signed(r.latency_change_pct['p95'], ' %')} | "
            f"{_ms(lat['p99'][0])} | {_ms(lat['p99'][1])} | {_signed(chg['p99'])} | {p} | "
            f"{ci} | {verdict_cell} |"
        )
    lines += ["", f"{h}# Throughput and errors", ""]
    lines += [
        "| endpoint | requests A | requests B | req/s A | req/s B | Δ req/s % | error rate A "
        "| error rate B | Δ points | z test p | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in cmp.rows:
        ep = f"{r.error_p_value:.2g}" if r.error_p_value is not None else "—"
        req = ["—" if v is None else f"{v:,}" for v in r.requests]
        tp = ["—" if v is None else f"{v:,.1f}" for v in r.throughput_rps]
        lines.append(
            f"| {_cell(r.name)} | {req[0]} | {req[1]} | {tp[0]} | {tp[1]} | "
            f"{_signed(r.throughput_change_pct, ' %')} | {_rate(r.error_rate[0])} | "
            f"{_rate(r.error_rate[1])} | {_signed(r.error_rate_change_points, '', 2)} | {ep} | "
            f"{'REGRESSED' if r.errors_regressed else 'ok'} |"
        )
    reasons = [f"- {r.name}: {why}" for r in cmp.rows for why in r.reasons]
    if reasons:
        lines += ["", f"{h}# Why", "", *reasons]
    if cmp.notes:
        lines += ["", f"{h}# Notes", "", *(f"- {n}" for n in cmp.notes)]
    if chart:
        lines += ["", f"![p95 per endpoint, A vs B]({chart})"]
    return "\n".join(lines) + "\n"


def draw_chart(cmp: Comparison, path: Path) -> Path:
    """A PNG of the p95 per endpoint, A next to B, with regressed endpoints marked."""
    from matplotlib.figure import Figure

    rows = [r for r in cmp.rows if r.in_a or r.in_b]
    fig = Figure(figsize=(10.0, 5.0), dpi=120, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    xs = list(range(len(rows)))
    width = 0.38
    va = [r.latency_ms["p95"][0] or 0.0 for r in rows]
    vb = [r.latency_ms["p95"][1] or 0.0 for r in rows]
    ax.bar([x - width / 2 for x in xs], va, width, label=f"A: {cmp.a.label}", color="#1f77b4")
    bars_b = ax.bar(
        [x + width / 2 for x in xs], vb, width, label=f"B: {cmp.b.label}", color="#ff7f0e"
    )
    top = max([*va, *vb, 1.0])
    for x, r, bar in zip(xs, rows, bars_b, strict=True):
        if r.latency_regressed:
            bar.set_edgecolor("#d62728")
            bar.set_linewidth(2.5)
        pct = r.latency_change_pct["p95"]
        if pct is not None:
            flag = "  REGRESSED" if r.latency_regressed else ""
            ax.annotate(
                f"{pct:+.0f} %{flag}",
                (x + width / 2, bar.get_height()),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=9,
                color="#d62728" if r.latency_regressed else "#333333",
                fontweight="bold" if r.latency_regressed else "normal",
            )
    ax.set_ylim(0, top * 1.2)
    ax.set_xticks(xs, [r.name for r in rows], rotation=15 if len(rows) > 4 else 0)
    ax.set_ylabel("p95 latency (ms)")
    ax.set_xlabel("endpoint")
    ax.set_title("p95 latency per endpoint: A vs B (red outline: regressed)")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(facecolor="#1f77b4", label=f"A: {cmp.a.label}"),
            Patch(facecolor="#ff7f0e", label=f"B: {cmp.b.label}"),
            Patch(facecolor="white", edgecolor="#d62728", linewidth=2.5, label="regressed"),
        ],
        loc="upper left",
        fontsize=8,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


@dataclass(frozen=True)
class ComparisonFiles:
    """What :func:`write_comparison` wrote."""

    markdown: Path
    json: Path
    chart: Path


def write_comparison(cmp: Comparison, out_dir: Path, *, chart_dir: str = "") -> ComparisonFiles:
    """Write ``compare.md``, ``compare.json`` and the chart (in ``chart_dir``) into ``out_dir``."""
    out_dir = Path(out_dir)
    link = f"{chart_dir}/{CHART_FILE}" if chart_dir else CHART_FILE
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        chart = draw_chart(cmp, out_dir / link)
        md = out_dir / RunFolder.COMPARE_MD
        md.write_text(render_markdown(cmp, chart=link), encoding="utf-8")
        js = out_dir / RunFolder.COMPARE_JSON
        js.write_text(json.dumps(cmp.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SetupError(
            f"cannot write the comparison into {out_dir}: {exc.strerror or exc}; "
            "choose a writable folder with --out"
        ) from exc
    return ComparisonFiles(md, js, chart)

"""PNG charts of one run, drawn with matplotlib's Agg canvas (no display needed).

Every chart has a title, axis labels with units and a legend; a chart without data says
so in its frame instead of drawing empty axes. Figures are built with
``matplotlib.figure.Figure`` (not pyplot), which needs no global state and imports less.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, is_dataclass
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.results.run_folder import RunFolder

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from orchestrator.results.database import DatabaseFigures
    from orchestrator.results.ingest import RawAggregates
    from orchestrator.results.model import EndpointFigures, ResultsDocument, ThresholdRow

CHART_DIR = RunFolder.CHARTS
CHART_INPUTS = f"{CHART_DIR}/.inputs.json"  # what the PNGs were drawn from
SIZE = (10.0, 5.0)  # inches; at 120 dpi: 1200 x 600 px, readable on a slide
DPI = 120
BLUE, ORANGE, RED, PURPLE, GREEN, GREY = (
    "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#2ca02c", "#7f7f7f",
)  # fmt: skip


@dataclass(frozen=True)
class Chart:
    """One written chart: its title and file (relative to the run folder)."""

    key: str
    title: str
    file: str


def _figure(rows: int = 1, height: float = SIZE[1]) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(SIZE[0], height), dpi=DPI, layout="constrained")
    axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
    for ax in axes:
        ax.grid(True, color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _no_data(ax: Axes, message: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_facecolor("#f6f6f6")
    ax.text(
        0.5, 0.5, message, ha="center", va="center", fontsize=14, color=GREY,
        transform=ax.transAxes, wrap=True,
    )  # fmt: skip


def _save(fig: Figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white", pil_kwargs={"compress_level": 1})


def _time_label(agg: RawAggregates) -> str:
    width = f", {agg.bucket_s} s buckets" if agg.bucket_s > 1 else ", per second"
    return f"time since first request (s{width})"


def latency_over_time(
    agg: RawAggregates | None, path: Path, p95_limit: float | None = None
) -> None:
    """p50/p95/p99 of http_req_duration per time bucket, with the overall p95 threshold."""
    fig, (ax,) = _figure()
    ax.set_title("HTTP request latency over time (p50 / p95 / p99)", fontsize=14, loc="left")
    points = [b for b in (agg.buckets if agg else []) if b.p50 is not None]
    if not points or agg is None:
        _no_data(ax, "No data: the run recorded no http_req_duration points")
    else:
        t = [b.t + agg.bucket_s / 2 for b in points]
        for attr, colour, label in (("p99", RED, "p99"), ("p95", ORANGE, "p95"),
                                    ("p50", BLUE, "p50 (median)")):  # fmt: skip
            marker = "o" if len(points) < 30 else None
            ax.plot(t, [getattr(b, attr) for b in points], color=colour, linewidth=1.8,
                    label=label, marker=marker, markersize=3)  # fmt: skip
        ax.set_xlabel(_time_label(agg))
        ax.set_ylabel("latency (ms)")
        top = max(b.p99 or 0.0 for b in points) * 1.25 or 1.0
        if p95_limit is not None and p95_limit <= top * 2:
            ax.axhline(p95_limit, color="black", linestyle="--", linewidth=1.5,
                       label=f"p95 threshold ({p95_limit:,.0f} ms)")  # fmt: skip
            top = max(top, p95_limit * 1.15)
        elif p95_limit is not None:
            ax.text(0.99, 0.97, f"p95 threshold {p95_limit:,.0f} ms: far above this scale",
                    transform=ax.transAxes, ha="right", va="top", color=GREY)  # fmt: skip
        ax.set_ylim(0, top)
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.legend(loc="upper left", frameon=False, ncols=4)
    _save(fig, path)


def throughput_and_errors(agg: RawAggregates | None, path: Path) -> None:
    """Requests per second split into OK / failed / 429, and error rates over time."""
    fig, (top, bottom) = _figure(rows=2, height=6.5)
    fig.suptitle("Throughput and errors over time (429 rate limits shown apart)",
                 fontsize=14, x=0.01, ha="left")  # fmt: skip
    buckets = agg.buckets if agg else []
    if not buckets or agg is None or not any(b.requests for b in buckets):
        _no_data(top, "No data: the run recorded no HTTP requests")
        _no_data(bottom, "No error rate without requests")
    else:
        width = float(agg.bucket_s)
        t = [b.t for b in buckets]
        limited = [b.rate_limited / width for b in buckets]
        failed = [b.failed_not_429 / width for b in buckets]
        ok = [max(b.requests - b.failed_not_429 - b.rate_limited, 0) / width for b in buckets]
        labels = ["successful", "failed (not 429)", "rate limited (429)"]
        if len(buckets) <= 180:
            base = [0.0] * len(t)
            for series, colour, label in zip((ok, failed, limited), (BLUE, RED, PURPLE), labels,
                                             strict=True):  # fmt: skip
                top.bar(t, series, width=width * 0.85, bottom=base, align="edge", color=colour,
                        label=label)  # fmt: skip
                base = [a + b for a, b in zip(base, series, strict=True)]
        else:
            top.stackplot(t, ok, failed, limited, colors=[BLUE, RED, PURPLE], alpha=0.85,
                          labels=labels, step="post")  # fmt: skip
        totals = [a + b + c for a, b, c in zip(ok, failed, limited, strict=True)]
        top.set_ylabel("requests per second")
        top.set_ylim(0, max(totals) * 1.3 or 1.0)
        top.legend(loc="upper left", frameon=False, ncols=3)
        err = [100.0 * b.failed_not_429 / b.requests if b.requests else 0.0
               for b in buckets]  # fmt: skip
        lim = [100.0 * b.rate_limited / b.requests if b.requests else 0.0 for b in buckets]
        mid = [x + width / 2 for x in t]
        marker = "o" if len(t) < 60 else None
        bottom.plot(mid, err, color=RED, linewidth=2, marker=marker,
                    label="error rate without 429 (%)")  # fmt: skip
        bottom.plot(mid, lim, color=PURPLE, linewidth=2, linestyle="--", marker=marker,
                    label="429 share of requests (%)")  # fmt: skip
        bottom.set_ylabel("share of requests (%)")
        bottom.set_xlabel(_time_label(agg))
        bottom.set_ylim(0, max(5.0, max(err + lim) * 1.3))
        bottom.legend(loc="upper left", frameon=False, ncols=2)
        for ax in (top, bottom):
            ax.xaxis.set_major_locator(_integer_ticks())
            ax.set_xlim(min(t) - width * 0.1, max(t) + width * 1.05)
    _save(fig, path)


def active_vus(agg: RawAggregates | None, path: Path) -> None:
    """The ``vus`` gauge over time."""
    fig, (ax,) = _figure()
    ax.set_title("Active virtual users over time", fontsize=14, loc="left")
    points = [b for b in (agg.buckets if agg else []) if b.vus is not None]
    if not points or agg is None:
        _no_data(ax, "No data: the run recorded no vus points\n(k6 samples them once a second)")
    else:
        t = [b.t for b in points] + [points[-1].t + agg.bucket_s]
        vus = [float(b.vus or 0.0) for b in points]
        vus.append(vus[-1])
        ax.step(t, vus, where="post", color=GREEN, linewidth=2.2,
                label="active VUs (k6 samples once a second; highest per bucket)")  # fmt: skip
        ax.fill_between(t, vus, step="post", color=GREEN, alpha=0.15)
        allocated = [float(b.vus_max) for b in points if b.vus_max is not None]
        if len(allocated) == len(points):
            allocated.append(allocated[-1])
            ax.step(t, allocated, where="post", color=GREY, linewidth=1.6, linestyle="--",
                    label="VUs allocated (vus_max)")  # fmt: skip
        top = max(vus + allocated)
        ax.set_xlim(0, max(t[-1], (agg.span_s or 0)))
        ax.set_xlabel(_time_label(agg))
        ax.set_ylabel("virtual users")
        ax.set_ylim(0, top * 1.3 or 1.0)
        ax.yaxis.set_major_locator(_integer_ticks())
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.legend(loc="upper left", frameon=False)
    _save(fig, path)


def endpoint_p95(endpoints: list[EndpointFigures], limits: dict[str, float], path: Path) -> None:
    """Per-endpoint p95 as bars, with the p95 threshold each must stay under."""
    shown = [e for e in endpoints if e.latency_ms.p95 is not None][:20]
    height = max(SIZE[1], 1.2 + 0.45 * len(shown))
    fig, (ax,) = _figure(height=height)
    ax.set_title("p95 latency per endpoint vs its threshold", fontsize=14, loc="left")
    if not shown:
        _no_data(ax, "No data: no endpoint recorded http_req_duration points")
        _save(fig, path)
        return
    names = [_short(e.name) for e in shown][::-1]
    values = [float(e.latency_ms.p95 or 0.0) for e in shown][::-1]
    limit_of = [limits.get(e.name, limits.get("*")) for e in shown][::-1]
    colours = [
        RED if lim is not None and v >= lim else BLUE
        for v, lim in zip(values, limit_of, strict=True)
    ]
    ax.barh(names, values, color=colours, height=0.6, zorder=2)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.1f} ms", va="center", fontsize=10)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    for i, lim in enumerate(limit_of):
        if lim is not None:
            ax.plot([lim, lim], [i - 0.42, i + 0.42], color="black", linewidth=3)
    handles: list[Any] = [Patch(color=BLUE, label="p95 within its threshold (or none set)")]
    if any(c == RED for c in colours):
        handles.append(Patch(color=RED, label="p95 over its threshold"))
    if any(lim is not None for lim in limit_of):
        handles.append(Line2D([], [], color="black", linewidth=3, label="p95 threshold"))
    top = max(values + [lim for lim in limit_of if lim is not None])
    ax.set_xlim(0, top * 1.2)
    ax.set_xlabel("p95 of http_req_duration (ms)")
    ax.set_ylabel("endpoint (name tag, else URL)")
    ax.grid(True, axis="x", color="#dddddd")
    ax.grid(False, axis="y")
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    _save(fig, path)


def latency_histogram(
    agg: RawAggregates | None, overall: EndpointFigures | None, path: Path
) -> None:
    """Distribution of http_req_duration, with p50/p95/p99 marked."""
    fig, (ax,) = _figure()
    ax.set_title("HTTP request latency distribution", fontsize=14, loc="left")
    if agg is None or not agg.histogram_counts or not sum(agg.histogram_counts):
        _no_data(ax, "No data: the run recorded no http_req_duration points")
        _save(fig, path)
        return
    edges = agg.histogram_edges
    widths = [edges[i + 1] - edges[i] for i in range(len(edges) - 1)]
    label = "requests per bin"
    outside = []
    if agg.histogram_underflow:
        outside.append(f"{agg.histogram_underflow:,} below {edges[0]:,.1f} ms")
    if agg.histogram_overflow:
        outside.append(f"{agg.histogram_overflow:,} above {edges[-1]:,.1f} ms")
    if outside:
        label += f" (not shown: {', '.join(outside)})"
    ax.bar(edges[:-1], agg.histogram_counts, width=widths, align="edge", color=BLUE,
           alpha=0.8, label=label)  # fmt: skip
    lat = overall.latency_ms if overall is not None else None
    for key, colour in (("p50", GREEN), ("p95", ORANGE), ("p99", RED)):
        value = getattr(lat, key) if lat is not None else None
        if value is not None and value <= edges[-1] * 1.001:
            ax.axvline(value, color=colour, linewidth=2, linestyle="--",
                       label=f"{key} = {value:,.1f} ms")  # fmt: skip
    ax.set_xlabel("http_req_duration (ms)")
    ax.set_ylabel("requests")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    _save(fig, path)


def database_during_load(
    agg: RawAggregates | None, database: DatabaseFigures, path: Path
) -> None:
    """Latency, the database's connections and locks, and its scans and cache hit ratio,
    on one time axis (seconds since the first request)."""
    fig, (lat, conns, scans) = _figure(rows=3, height=8.5)
    fig.suptitle("The database during the load (one time axis)", fontsize=14, x=0.01, ha="left")
    points = database.series
    origin = agg.first_ts if agg is not None and agg.first_ts is not None else (
        float(points[0].t) - float(database.interval_s or 0) if points else 0.0
    )
    buckets = [b for b in (agg.buckets if agg else []) if b.p95 is not None]
    if agg is not None and buckets:
        t = [b.t + agg.bucket_s / 2 for b in buckets]
        lat.plot(t, [b.p95 or 0.0 for b in buckets], color=ORANGE, linewidth=1.8, label="p95")
        lat.plot(t, [b.p50 or 0.0 for b in buckets], color=BLUE, linewidth=1.8, label="p50")
        lat.set_ylabel("latency (ms)")
        lat.set_ylim(0, max(b.p95 or 0.0 for b in buckets) * 1.3 or 1.0)
        lat.legend(loc="upper left", frameon=False, ncols=2)
    else:
        _no_data(lat, "No latency points")
    if not points:
        _no_data(conns, "No database samples: fewer than two were taken")
        _no_data(scans, "No scans without two samples")
    else:
        # each point is an interval ending at its time: its line starts where it began
        first = float(points[0].t) - origin - float(database.interval_s or 0)
        t = [max(first, 0.0)] + [float(p.t) - origin for p in points]
        points = [points[0], *points]
        conns.step(t, [p.connections for p in points], where="pre", color=BLUE,
                   label="client connections")  # fmt: skip
        conns.step(t, [p.active for p in points], where="pre", color=GREEN, label="active")
        conns.step(t, [p.waiting_locks for p in points], where="pre", color=RED,
                   label="lock requests waiting")  # fmt: skip
        limit = database.connections.limit
        if limit and database.connections.peak >= limit / 2:
            conns.axhline(limit, color="black", linestyle="--", label=f"limit ({limit})")
        conns.set_ylabel("connections")
        conns.set_ylim(0, max(max(p.connections for p in points), 1) * 1.4)
        conns.yaxis.set_major_locator(_integer_ticks())
        conns.legend(loc="upper left", frameon=False, ncols=4)
        scans.step(t, [p.seq_scans for p in points], where="pre", color=RED,
                   label="sequential scans")  # fmt: skip
        scans.step(t, [p.index_scans for p in points], where="pre", color=BLUE,
                   label="index scans")  # fmt: skip
        scans.set_ylabel("scans per interval")
        scans.set_ylim(0, max(max(max(p.seq_scans, p.index_scans) for p in points), 1) * 1.4)
        ratio = scans.twinx()
        ratio.plot(t, [float("nan") if p.cache_hit_ratio is None else p.cache_hit_ratio
                       for p in points], color=PURPLE, linestyle=":",
                   label="cache hit ratio")  # fmt: skip
        ratio.set_ylim(0, 1.4)
        ratio.set_ylabel("cache hit ratio")
        handles = scans.get_legend_handles_labels()
        extra = ratio.get_legend_handles_labels()
        scans.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left",
                     frameon=False, ncols=3)  # fmt: skip
    end = max([float(p.t) - origin for p in points] + [b.t + 1 for b in buckets] + [1.0])
    for ax in (lat, conns, scans):
        ax.set_xlim(0, end)
    scans.set_xlabel("time since the first request (s)")
    _save(fig, path)


def _short(name: str, width: int = 42) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def p95_limits(thresholds: list[ThresholdRow]) -> dict[str, float]:
    """Per-endpoint p95 limits from thresholds on http_req_duration ('*' = all requests)."""
    limits: dict[str, float] = {}
    for row in thresholds:
        if row.base_metric != "http_req_duration" or row.stat != "p(95)":
            continue
        if row.operator not in ("<", "<=") or row.target is None:
            continue
        tags = row.tags
        key = tags.get("name") or tags.get("url") if tags else "*"
        if key and set(tags) <= {"name", "url"}:
            limits[key] = min(float(row.target), limits.get(key, float("inf")))
    return limits


def _run_jobs(jobs: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    for func, args in jobs:
        func(*args)


def _draw(jobs: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    """Draw the charts, on Linux in two processes (k6 has ended, so both cores are free).

    The child is forked after matplotlib is imported and inherits the figures' data; if it
    fails, the parent draws its share too, so a chart is never silently missing.
    """
    if not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2 or len(jobs) < 2:
        _run_jobs(jobs)
        return
    import multiprocessing

    import matplotlib.figure  # noqa: F401 - imported once, before the fork
    from matplotlib.backends import backend_agg  # noqa: F401

    child_jobs, own_jobs = jobs[:2], jobs[2:]
    try:
        child = multiprocessing.get_context("fork").Process(
            target=_run_jobs, args=(child_jobs,), daemon=True
        )
        child.start()
    except OSError:
        _run_jobs(jobs)
        return
    _run_jobs(own_jobs)
    child.join()
    if child.exitcode != 0:
        _run_jobs(child_jobs)


def _first(pair: list[Any]) -> str:
    return str(pair[0])


def _plain(value: Any, run_dir: Path) -> Any:
    """A chart input as JSON values, the same for the same figures.

    Paths are made relative to the run folder, where the raw points were read from is left
    out (it does not change what they show), and dicts become key-ordered pairs (DuckDB
    returns groups in any order).
    """
    if isinstance(value, Path):
        return value.relative_to(run_dir).as_posix() if value.is_relative_to(run_dir) else (
            value.as_posix()
        )
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(
            {f.name: getattr(value, f.name) for f in dc_fields(value)
             if f.name not in ("path", "fmt", "compressed")},
            run_dir,
        )  # fmt: skip
    if hasattr(value, "model_dump"):  # a pydantic model
        return _plain(value.model_dump(mode="json"), run_dir)
    if isinstance(value, dict):
        return sorted(([repr(k), _plain(v, run_dir)] for k, v in value.items()), key=_first)
    if isinstance(value, list | tuple):
        return [_plain(v, run_dir) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _chart_inputs(
    jobs: list[tuple[Callable[..., None], tuple[Any, ...]]], run_dir: Path
) -> dict[str, Any]:
    """What the charts are drawn from: the figures each one gets, this module's source,
    orch's and matplotlib's versions; as JSON values."""
    from importlib.metadata import PackageNotFoundError, version

    from orchestrator import __version__

    try:
        mpl = version("matplotlib")
    except PackageNotFoundError:  # pragma: no cover - matplotlib is a dependency
        mpl = "?"
    values: list[Any] = []
    index: dict[int, int] = {}  # one copy of an argument several charts get (the aggregates)
    calls: list[list[Any]] = []
    for func, args in jobs:
        refs = []
        for arg in args:
            if id(arg) not in index:
                index[id(arg)] = len(values)
                values.append(_plain(arg, run_dir))
            refs.append(index[id(arg)])
        calls.append([func.__name__, refs])
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    plain = {"code": [source, __version__, mpl], "calls": calls, "values": values}
    return json.loads(json.dumps(plain))  # as they read back: tuples as lists


def _same(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-9 of each other: DuckDB's parallel sums differ in the last
    bits from one ingest to the next, a difference no chart can show."""
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _already_drawn(
    recorded_path: Path, inputs: dict[str, Any], charts: list[Chart], run_dir: Path
) -> bool:
    if not all((run_dir / c.file).is_file() for c in charts):
        return False
    try:
        recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return _same(recorded, inputs)


def render_charts(
    run_dir: Path, agg: RawAggregates | None, results: ResultsDocument
) -> list[Chart]:
    """Draw every chart into ``run_dir/charts/``; return them in report order.

    The charts are not drawn again when ``charts/.inputs.json`` records the same inputs
    (figures, this module, orch's and matplotlib's versions) and every PNG is there:
    ``orch report`` on a folder whose figures did not change skips matplotlib entirely.
    """
    out = run_dir / CHART_DIR
    out.mkdir(parents=True, exist_ok=True)
    charts = [
        Chart("latency", "Latency over time", f"{CHART_DIR}/latency_over_time.png"),
        Chart("throughput", "Throughput and errors", f"{CHART_DIR}/throughput_errors.png"),
        Chart("vus", "Active virtual users", f"{CHART_DIR}/active_vus.png"),
        Chart("endpoint_p95", "p95 per endpoint", f"{CHART_DIR}/endpoint_p95.png"),
        Chart("histogram", "Latency distribution", f"{CHART_DIR}/latency_histogram.png"),
    ]
    limits = p95_limits(results.thresholds)
    jobs: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (throughput_and_errors, (agg, run_dir / charts[1].file)),
        (latency_histogram, (agg, results.overall, run_dir / charts[4].file)),
        (latency_over_time, (agg, run_dir / charts[0].file, limits.get("*"))),
        (active_vus, (agg, run_dir / charts[2].file)),
        (
            endpoint_p95,
            (
                results.endpoints,
                limits,
                run_dir / charts[3].file,
            ),
        ),
    ]
    if results.database is not None and results.database.samples:
        charts.append(Chart("database", "The database during the load",
                            f"{CHART_DIR}/database.png"))  # fmt: skip
        jobs.append((database_during_load, (agg, results.database, run_dir / charts[-1].file)))
    inputs = _chart_inputs(jobs, run_dir)
    recorded_path = run_dir / CHART_INPUTS
    if _already_drawn(recorded_path, inputs, charts, run_dir):
        return charts
    recorded_path.unlink(missing_ok=True)  # a draw that fails half-way leaves no match behind
    import matplotlib

    matplotlib.use("Agg", force=False)
    _draw(jobs)
    recorded_path.write_text(json.dumps(inputs, separators=(",", ":")), encoding="utf-8")
    return charts

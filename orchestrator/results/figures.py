"""The run's figures: one ``results.json`` document from run.json, the summary and raw points.

The document's shape is stable and versioned (``schema_version``); it is described field
by field in ``docs/results-json.md`` and typed in :mod:`orchestrator.results.model`, whose
models :func:`build_results` fills. Verdicts come from k6's own summary where it has
them; a threshold k6 did not report (no summary, e.g. a killed run or a raw file from
elsewhere) is judged by orch from the raw points and marked so.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator.config import parse_duration, planned_seconds
from orchestrator.results.delivery import (
    Counts,
    Rule,
    build_delivery,
    k6_scenarios,
    load_generator,
)
from orchestrator.results.ingest import EndpointFigures as RawEndpointFigures
from orchestrator.results.ingest import RawAggregates
from orchestrator.results.model import (
    SCHEMA_VERSION,
    CheckFigures,
    Delivery,
    EndpointFigures,
    ErrorGroup,
    FlowFigures,
    Ingest,
    Latency,
    RateLimits,
    RateLimitShare,
    ResultsDocument,
    RunInfo,
    Sources,
    ThresholdRow,
    Timing,
    Verdict,
)
from orchestrator.results.run_folder import RunFolder, RunManifest
from orchestrator.results.summary import BUILTIN_TYPES, Summary, parse_metric_key, parse_threshold


def manifest_thresholds(manifest: RunManifest) -> dict[str, list[str]]:
    """Thresholds declared in run.json: ``{metric_key: [expr, ...]}`` (k6's object form too)."""
    out: dict[str, list[str]] = {}
    for key, exprs in manifest.thresholds.items():
        items = exprs if isinstance(exprs, list) else [exprs]
        for item in items:
            text = item.get("threshold") if isinstance(item, dict) else item
            if isinstance(text, str):
                out.setdefault(str(key), []).append(text)
    return out


def merge_thresholds(*sources: dict[str, list[str]]) -> dict[str, list[str]]:
    """Union of threshold declarations, keeping first-seen order."""
    out: dict[str, list[str]] = {}
    for source in sources:
        for key, exprs in source.items():
            merged = out.setdefault(key, [])
            merged.extend(e for e in exprs if e not in merged)
    return out


def _metric_kind(key: str, summary: Summary | None, agg: RawAggregates | None) -> str | None:
    metric = parse_metric_key(key)[0]
    if summary and summary.metric_types.get(key):
        return summary.metric_types[key]
    if agg and agg.metric_types.get(metric):
        return agg.metric_types[metric]
    return BUILTIN_TYPES.get(metric)


def _unit(kind: str | None, stat: str, metric: str) -> str:
    """How a measured value reads: ms for time trends, ratio for rates, /s, or a count."""
    if kind == "rate" or (stat == "rate" and kind != "counter"):
        return "ratio"
    if stat == "rate":
        return "per_second"
    if kind == "trend" and stat not in ("count",):
        timed = metric.startswith(("http_req_", "iteration_duration", "group_duration"))
        return "ms" if timed or metric.endswith(("_duration", "_time", "_latency")) else ""
    return ""


def _latency(figures: RawEndpointFigures) -> Latency:
    lat = asdict(figures.latency)
    lat.pop("count", None)
    return Latency(**lat)


def _endpoint_doc(figures: RawEndpointFigures, duration_s: float | None) -> EndpointFigures:
    requests = figures.requests
    return EndpointFigures(
        name=figures.name,
        methods=figures.methods,
        requests=requests,
        throughput_rps=(requests / duration_s) if duration_s else None,
        failed=figures.failed,
        error_rate=(figures.failed / requests) if requests else None,
        rate_limited=figures.rate_limited,
        failed_excluding_429=figures.failed - figures.failed_rate_limited,
        error_rate_excluding_429=(
            (figures.failed - figures.failed_rate_limited) / requests if requests else None
        ),
        server_errors=figures.server_errors,
        network_errors=figures.network_errors,
        latency_ms=_latency(figures),
        timing_ms=Timing(**figures.timing),
    )


def threshold_rows(
    thresholds: dict[str, list[str]],
    summary: Summary | None,
    agg: RawAggregates | None,
) -> list[ThresholdRow]:
    """One row per threshold expression: verdict, measured value, and where each came from."""
    rows: list[ThresholdRow] = []
    for key, exprs in thresholds.items():
        metric, tags = parse_metric_key(key)
        kind = _metric_kind(key, summary, agg)
        for text in exprs:
            expr = parse_threshold(text)
            k6_ok = summary.thresholds.get(key, {}).get(text) if summary else None
            measured: float | None = None
            measured_source: str | None = None
            if expr is not None and summary is not None:
                measured = summary.stat(key, expr.stat)
                measured_source = "k6 summary" if measured is not None else None
            if measured is None and agg is not None:
                measured = agg.measured.get((key, text))
                measured_source = "raw points" if measured is not None else None
            ok: bool | None
            if k6_ok is not None:
                ok, verdict_source = k6_ok, "k6"
            elif expr is not None and measured is not None:
                ok, verdict_source = expr.holds(measured), "orch"
            else:
                ok, verdict_source = None, None
            rows.append(
                ThresholdRow(
                    metric=key,
                    base_metric=metric,
                    tags=tags,
                    expression=text,
                    stat=expr.stat if expr else None,
                    operator=expr.operator if expr else None,
                    target=expr.target if expr else None,
                    unit=_unit(kind, expr.stat if expr else "", metric),
                    measured=measured,
                    measured_source=measured_source,
                    ok=ok,
                    verdict_source=verdict_source,
                )
            )
    return rows


def _allowed_rate(run_dir: Path) -> dict[str, Any]:
    """The Claude tier a run paced itself by and the rate it allowed (from the resolved
    config), so the report can set 429s against the effective allowed rate."""
    path = run_dir / RunFolder.CONFIG
    try:
        resolved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    variables = resolved.get("vars") if isinstance(resolved, dict) else None
    if not isinstance(variables, dict) or "claude_rate_cap_per_minute" not in variables:
        return {}
    tier = variables.get("claude_tier_limits") or {}
    return {
        "allowed_per_minute": variables["claude_rate_cap_per_minute"],
        "tier": tier.get("name") if isinstance(tier, dict) else None,
        "tier_requests_per_minute": (
            tier.get("requests_per_minute") if isinstance(tier, dict) else None
        ),
    }


def build_results(
    run_dir: Path,
    *,
    manifest: RunManifest,
    summary: Summary | None,
    summary_file: Path | None,
    agg: RawAggregates | None,
    thresholds: dict[str, list[str]],
    orch_version: str,
) -> ResultsDocument:
    """Assemble the results.json document (without the chart list and the notes, added by
    the report)."""
    duration = (
        (summary.duration_s if summary else None)
        or _positive(manifest.duration_s)
        or (agg.span_s if agg else None)
    )
    rows = threshold_rows(thresholds, summary, agg)
    delivery = delivery_of(manifest, summary, agg)
    overall = _endpoint_doc(agg.overall, duration) if agg and agg.overall else None
    endpoints = [_endpoint_doc(e, duration) for e in agg.endpoints] if agg else []
    errors = (
        [
            ErrorGroup(
                endpoint=e.endpoint,
                status=e.status,
                error_code=e.error_code,
                count=e.count,
                rate_limited=e.status == "429",
                message=e.message,
            )
            for e in agg.errors
        ]
        if agg
        else []
    )
    checks: list[CheckFigures]
    if agg and agg.checks:
        checks = [
            CheckFigures(name=n, passes=p, fails=f, pass_rate=p / (p + f) if p + f else None)
            for n, p, f in agg.checks
        ]
        checks_source: str | None = "raw points"
    elif summary and summary.checks:
        checks = [
            CheckFigures(
                name=c.name,
                passes=c.passes,
                fails=c.fails,
                pass_rate=c.passes / (c.passes + c.fails) if c.passes + c.fails else None,
            )
            for c in summary.checks
        ]
        checks_source = "k6 summary"
    else:
        checks, checks_source = [], None
    return ResultsDocument(
        schema_version=SCHEMA_VERSION,
        generated_by=f"orch {orch_version}",
        run=RunInfo(
            folder=run_dir.name,
            scenario=manifest.scenario,
            environment=manifest.environment,
            profile=manifest.profile,
            runner=manifest.runner,
            orch_version=manifest.orch_version,
            k6_version=manifest.k6_version,
            started_at=manifest.started_at,
            ended_at=manifest.ended_at,
            duration_s=duration,
            outcome=manifest.outcome,
            k6_exit_code=manifest.k6_exit_code,
            exit_code=manifest.exit_code,
            base_url=manifest.target.get("base_url"),
            load_profile=manifest.load_profile,
        ),
        sources=Sources(
            raw_file=agg.path.name if agg else None,
            raw_format=(agg.fmt + (".gz" if agg.compressed else "")) if agg else None,
            summary_file=summary_file.name if summary_file else None,
            summary_shape=summary.shape if summary else None,
        ),
        ingest=Ingest(
            points=agg.total_points if agg else 0,
            skipped=dict(agg.skipped) if agg else {},
            untagged_http_points=agg.untagged_http_points if agg else 0,
            metrics=dict(sorted(agg.metrics.items())) if agg else {},
            first_point_at=agg.first_ts if agg else None,
            last_point_at=agg.last_ts if agg else None,
        ),
        verdict=Verdict.of(rows),
        thresholds=rows,
        overall=overall,
        endpoints=endpoints,
        errors=errors,
        rate_limits=RateLimits(
            total=overall.rate_limited if overall else 0,
            by_endpoint=[
                RateLimitShare(
                    endpoint=e.name,
                    count=e.rate_limited,
                    share_of_requests=e.rate_limited / e.requests if e.requests else 0,
                )
                for e in endpoints
                if e.rate_limited
            ],
            **_allowed_rate(run_dir),
        ),
        checks=checks,
        checks_source=checks_source,
        delivery=delivery,
        flows=flows_of(agg, rows, delivery, manifest.load_profile, duration),
        load_generator=load_generator(manifest.load_generator),
        charts=[],
    )


def flows_of(
    agg: RawAggregates | None,
    rows: list[ThresholdRow],
    delivery: Delivery,
    load_profile: dict[str, Any] | None,
    duration_s: float | None,
) -> list[FlowFigures]:
    """Each k6 scenario of a run of several (a mix's flows), in the order the run planned
    them: its figures over the time it was planned to run, its thresholds (those on its
    ``flow`` or ``scenario`` tag) and its delivery."""
    if agg is None or not agg.by_scenario:
        return []
    planned = k6_scenarios(load_profile, "default")
    order = [n for n in planned if n in agg.by_scenario]
    order += sorted(n for n in agg.by_scenario if n not in planned)
    flows = []
    for name in order:
        seconds = _active_seconds(planned.get(name)) or duration_s
        flows.append(
            FlowFigures(
                name=name,
                overall=_endpoint_doc(agg.by_scenario[name], seconds),
                endpoints=[_endpoint_doc(e, seconds) for e in agg.scenario_endpoints.get(name, [])],
                thresholds=[
                    r for r in rows if name in (r.tags.get("flow"), r.tags.get("scenario"))
                ],
                delivery=next((d for d in delivery.scenarios if d.name == name), None),
            )
        )
    return flows


def _active_seconds(options: dict[str, Any] | None) -> float | None:
    """How long a k6 scenario was planned to send load (its start time left out)."""
    if not options:
        return None
    try:
        total = planned_seconds(options)
        start = parse_duration(options.get("startTime", 0))
    except ValueError:
        return None
    return total - start if total is not None and total > start else None


def delivery_of(
    manifest: RunManifest, summary: Summary | None, agg: RawAggregates | None
) -> Delivery:
    """The load delivered against the load planned (:mod:`orchestrator.results.delivery`):
    per scenario from the raw points, else k6's summary."""
    totals: Counts | None = None
    source: str | None = None
    if summary is not None and summary.stat("iterations", "count") is not None:
        totals = Counts(
            int(summary.stat("iterations", "count") or 0),
            int(summary.stat("dropped_iterations", "count") or 0),
            int(summary.stat("http_reqs", "count") or 0),
        )
        source = "k6 summary"
    per_scenario = None
    if agg is not None and agg.scenarios:
        per_scenario = {
            name: Counts(c.iterations, c.dropped_iterations, c.requests)
            for name, c in agg.scenarios.items()
        }
        source = "raw points"
        if totals is None:
            totals = Counts(
                sum(c.iterations for c in per_scenario.values()),
                sum(c.dropped for c in per_scenario.values()),
                sum(c.requests for c in per_scenario.values()),
            )
    vus_peak = agg.vus_peak if agg else None
    vus_max_peak = agg.vus_max_peak if agg else None
    if summary is not None:
        vus_peak = vus_peak if vus_peak is not None else summary.stat("vus", "max")
        if vus_max_peak is None:
            vus_max_peak = summary.stat("vus_max", "max")
    return build_delivery(
        load_profile=manifest.load_profile,
        rule=Rule.of(manifest.delivery),
        default_name=(manifest.scenario or "default").replace("-", "_"),
        per_scenario=per_scenario,
        totals=totals,
        source=source,
        vus_peak=vus_peak,
        vus_max_peak=vus_max_peak,
    )


def _positive(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None

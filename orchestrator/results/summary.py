"""k6's end-of-test summary in either shape, and k6 threshold expressions.

Two shapes exist (see K6_FACTS): ``--summary-export`` (flattened stats, thresholds as
``{expr: crossed}`` where **true means failed**) and the ``handleSummary`` data object
(``{type, values, thresholds: {expr: {ok}}}``, groups and checks as arrays). Both are read
into one :class:`Summary`, with every verdict stored as ``ok`` (True = passed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.core import ConfigError

# Types of k6's built-in metrics, for files that do not declare them.
BUILTIN_TYPES: dict[str, str] = {
    "http_reqs": "counter",
    "http_req_failed": "rate",
    "checks": "rate",
    "vus": "gauge",
    "vus_max": "gauge",
    "iterations": "counter",
    "dropped_iterations": "counter",
    "data_sent": "counter",
    "data_received": "counter",
    "iteration_duration": "trend",
    "group_duration": "trend",
    "http_req_duration": "trend",
    "http_req_blocked": "trend",
    "http_req_connecting": "trend",
    "http_req_tls_handshaking": "trend",
    "http_req_sending": "trend",
    "http_req_waiting": "trend",
    "http_req_receiving": "trend",
}

_THRESHOLD_RE = re.compile(
    r"^\s*(?P<stat>count|rate|value|avg|min|max|med|p\(\s*(?P<pct>[0-9.]+)\s*\))\s*"
    r"(?P<op>===|==|!=|>=|<=|>|<)\s*(?P<target>[-+0-9.eE]+)\s*$"
)
_METRIC_KEY_RE = re.compile(r"^(?P<metric>[^{}]+?)(?:\{(?P<selector>.*)\})?$")


@dataclass(frozen=True)
class ThresholdExpr:
    """One parsed threshold expression such as ``p(95)<500``."""

    stat: str  # count, rate, value, avg, min, max, med, or p(N)
    operator: str
    target: float
    percentile: float | None = None  # 0..100 for p(N)

    def holds(self, measured: float) -> bool:
        """Whether ``measured`` satisfies the expression (k6's verdict: passed)."""
        op, target = self.operator, self.target
        if op == "<":
            return measured < target
        if op == "<=":
            return measured <= target
        if op == ">":
            return measured > target
        if op == ">=":
            return measured >= target
        if op == "!=":
            return measured != target
        return measured == target


def parse_threshold(expression: str) -> ThresholdExpr | None:
    """Parse a k6 threshold expression; None when it is not one orch understands."""
    match = _THRESHOLD_RE.match(expression)
    if match is None:
        return None
    try:
        target = float(match["target"])
        pct = float(match["pct"]) if match["pct"] else None
    except ValueError:  # the patterns admit "1.2.3" and "."
        return None
    stat = f"p({match['pct']})" if pct is not None else match["stat"]
    return ThresholdExpr(stat=stat, operator=match["op"], target=target, percentile=pct)


def parse_metric_key(key: str) -> tuple[str, dict[str, str]]:
    """Split ``http_req_duration{name:ok,status:200}`` into the metric and its tag filter."""
    match = _METRIC_KEY_RE.match(key.strip())
    if match is None:
        return key, {}
    tags: dict[str, str] = {}
    selector = match["selector"] or ""
    for part in selector.split(","):
        if ":" in part:
            tag, _, value = part.partition(":")
            tags[tag.strip()] = value.strip()
    return match["metric"].strip(), tags


@dataclass
class Check:
    """One k6 check with its pass/fail counts."""

    name: str
    path: str
    passes: int
    fails: int


@dataclass
class Summary:
    """k6's end-of-test summary, normalised from either shape."""

    shape: str  # "summary-export" or "handleSummary"
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    metric_types: dict[str, str] = field(default_factory=dict)
    # metric key -> expression -> passed?
    thresholds: dict[str, dict[str, bool]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    duration_s: float | None = None

    def stat(self, metric_key: str, stat: str) -> float | None:
        """A statistic k6 reported, translated to threshold vocabulary, or None."""
        values = self.metrics.get(metric_key)
        if not values:
            return None
        kind = self.metric_types.get(metric_key) or BUILTIN_TYPES.get(
            parse_metric_key(metric_key)[0]
        )
        if stat == "rate" and kind == "rate":
            return values.get("rate", values.get("value"))
        number = values.get(stat)
        if number is None and stat.startswith("p("):
            # k6 prints p(95.0) as p(95); accept both spellings.
            pct = stat[2:-1]
            for key, val in values.items():
                if key.startswith("p(") and _same_number(key[2:-1], pct):
                    return val
        return number


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _numbers(raw: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _walk_groups_export(group: dict[str, Any], out: list[Check]) -> None:
    for check in (group.get("checks") or {}).values():
        out.append(_check_of(check))
    for sub in (group.get("groups") or {}).values():
        _walk_groups_export(sub, out)


def _walk_groups_handle(group: dict[str, Any], out: list[Check]) -> None:
    for check in group.get("checks") or []:
        out.append(_check_of(check))
    for sub in group.get("groups") or []:
        _walk_groups_handle(sub, out)


def _check_of(raw: dict[str, Any]) -> Check:
    return Check(
        name=str(raw.get("name", "")),
        path=str(raw.get("path", raw.get("name", ""))),
        passes=int(raw.get("passes") or 0),
        fails=int(raw.get("fails") or 0),
    )


def parse_summary(data: dict[str, Any]) -> Summary:
    """Normalise a parsed summary object of either shape."""
    metrics_raw = data.get("metrics")
    if not isinstance(metrics_raw, dict):
        raise ValueError("no 'metrics' object")
    handle = any(
        isinstance(m, dict) and isinstance(m.get("values"), dict) for m in metrics_raw.values()
    )
    summary = Summary(shape="handleSummary" if handle else "summary-export")
    for key, metric in metrics_raw.items():
        if not isinstance(metric, dict):
            continue
        if handle:
            summary.metrics[key] = _numbers(metric.get("values") or {})
            if isinstance(metric.get("type"), str):
                summary.metric_types[key] = metric["type"]
            for expr, verdict in (metric.get("thresholds") or {}).items():
                ok = verdict.get("ok") if isinstance(verdict, dict) else None
                if isinstance(ok, bool):
                    summary.thresholds.setdefault(key, {})[expr] = ok
        else:
            summary.metrics[key] = _numbers(metric)
            for expr, crossed in (metric.get("thresholds") or {}).items():
                if isinstance(crossed, bool):
                    summary.thresholds.setdefault(key, {})[expr] = not crossed
    root = data.get("root_group") or {}
    if isinstance(root, dict):
        if handle:
            _walk_groups_handle(root, summary.checks)
        else:
            _walk_groups_export(root, summary.checks)
    state = data.get("state") or {}
    if isinstance(state, dict) and isinstance(state.get("testRunDurationMs"), int | float):
        summary.duration_s = float(state["testRunDurationMs"]) / 1000.0
    else:
        reqs = summary.metrics.get("http_reqs") or summary.metrics.get("iterations") or {}
        if reqs.get("rate"):
            summary.duration_s = reqs.get("count", 0.0) / reqs["rate"]
    return summary


def read_summary(path: Path) -> Summary:
    """Read a summary file of either shape; raise ConfigError naming the file if unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the k6 summary {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); pass the file k6 "
            "wrote with --summary-export or from handleSummary"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a k6 summary (expected a JSON object)")
    try:
        return parse_summary(data)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not a k6 summary ({exc}); pass the file k6 wrote with "
            "--summary-export or from handleSummary"
        ) from exc

"""k6 threshold expressions and the statistics they are judged on (``results.summary``):
every operator on both sides of its target, the statistic a threshold reads in either
summary shape, and the checks and duration read from a summary. Fast: no k6."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import ConfigError
from orchestrator.results.summary import (
    Check,
    Summary,
    ThresholdExpr,
    parse_metric_key,
    parse_summary,
    parse_threshold,
    read_summary,
)

# ------------------------------------------------------------------ threshold expressions


@pytest.mark.parametrize(
    ("operator", "below", "equal", "above"),
    [
        ("<", True, False, False),
        ("<=", True, True, False),
        (">", False, False, True),
        (">=", False, True, True),
        ("!=", True, False, True),
        ("==", False, True, False),
        ("===", False, True, False),
    ],
)
def test_each_operator_holds_on_its_side_of_the_target(
    operator: str, below: bool, equal: bool, above: bool
) -> None:
    expr = parse_threshold(f"avg{operator}10")
    assert expr is not None and expr.operator == operator
    assert (expr.holds(9.99), expr.holds(10.0), expr.holds(10.01)) == (below, equal, above)


def test_a_threshold_is_read_into_its_statistic_operator_and_target() -> None:
    assert parse_threshold("p(95)<500") == ThresholdExpr("p(95)", "<", 500.0, 95.0)
    assert parse_threshold(" p( 99.9 ) <= 1e3 ") == ThresholdExpr("p(99.9)", "<=", 1000.0, 99.9)
    assert parse_threshold("rate>0.99") == ThresholdExpr("rate", ">", 0.99, None)
    assert parse_threshold("count >= -5") == ThresholdExpr("count", ">=", -5.0, None)


@pytest.mark.parametrize("expression", ["avg<1.2.3", "avg<+", "avg<e5", "p(9.9.9)<1", "p(.)<1"])
def test_a_target_or_percentile_that_is_not_a_number_is_not_a_threshold(expression: str) -> None:
    assert parse_threshold(expression) is None


def test_a_metric_key_without_tags_has_an_empty_filter() -> None:
    assert parse_metric_key("http_reqs") == ("http_reqs", {})
    assert parse_metric_key(" checks{} ") == ("checks", {})
    assert parse_metric_key("{a:b}") == ("{a:b}", {})  # no metric name: left as it is


# ------------------------------------------------------------------ statistics


def _summary(values: dict[str, float], kind: str | None = None, key: str = "m") -> Summary:
    return Summary(
        shape="handleSummary", metrics={key: values}, metric_types={key: kind} if kind else {}
    )


def test_a_rate_metric_reads_its_rate_else_its_value() -> None:
    assert _summary({"rate": 0.3, "value": 0.9}, "rate").stat("m", "rate") == 0.3
    assert _summary({"value": 0.4, "passes": 4}, "rate").stat("m", "rate") == 0.4
    assert _summary({"value": 0.4}).stat("m", "rate") is None  # of unknown type: no rate
    failed = _summary({"value": 0.02}, key="http_req_failed{status:500}")
    assert failed.stat("http_req_failed{status:500}", "rate") == 0.02  # built-in: a rate


def test_a_rate_metrics_other_statistics_are_read_as_they_are() -> None:
    rate = _summary({"rate": 0.01, "passes": 2, "fails": 198}, "rate")
    assert (rate.stat("m", "passes"), rate.stat("m", "fails")) == (2, 198)


def test_a_declared_type_wins_over_the_builtin_one() -> None:
    counter = _summary({"rate": 40.0, "value": 7.0}, "counter", key="http_req_failed")
    assert counter.stat("http_req_failed", "rate") == 40.0


def test_value_and_the_other_statistics_of_a_gauge() -> None:
    gauge = _summary({"value": 7, "min": 1, "max": 9}, "gauge")
    assert [gauge.stat("m", s) for s in ("value", "min", "max", "avg")] == [7, 1, 9, None]
    assert _summary({"min": 1}, "gauge").stat("m", "value") is None


def test_a_metric_with_no_values_has_no_statistic() -> None:
    assert _summary({}, "trend").stat("m", "avg") is None


def test_a_percentile_is_found_under_any_spelling_of_its_number() -> None:
    trend = _summary({"p(99.90)": 41.0, "p(95)": 30.0, "p(x)": 1.0}, "trend")
    assert trend.stat("m", "p(99.9)") == 41.0
    assert trend.stat("m", "p(95.00)") == 30.0
    assert trend.stat("m", "p(90)") is None  # p(x) is no number, not a match
    assert trend.stat("m", "p(x)") == 1.0  # spelled as k6 wrote it


def test_the_exact_spelling_of_a_percentile_wins() -> None:
    trend = _summary({"p(95.0)": 1.0, "p(95)": 2.0}, "trend")
    assert trend.stat("m", "p(95)") == 2.0
    assert trend.stat("m", "p(95.0)") == 1.0


def test_a_missing_statistic_that_is_no_percentile_is_none() -> None:
    assert _summary({"p(95)": 2.0}, "trend").stat("m", "avg") is None


# ------------------------------------------------------------------ whole summaries


def test_metrics_that_are_not_objects_are_skipped_not_the_ones_after() -> None:
    data = {"metrics": {"junk": 5, "http_reqs": {"count": 10, "rate": 2.0}, "more": [1]}}
    summary = parse_summary(data)
    assert summary.metrics == {"http_reqs": {"count": 10.0, "rate": 2.0}}


def test_handle_summary_verdicts_that_are_not_objects_are_ignored() -> None:
    data = {"metrics": {"http_req_failed": {"type": "rate", "values": {"rate": 0.1},
            "thresholds": {"rate<0.05": True, "rate<0.5": {"ok": True},
                           "rate<0.01": {"ok": "no"}}}}}  # fmt: skip
    assert parse_summary(data).thresholds == {"http_req_failed": {"rate<0.5": True}}


def test_checks_without_names_or_counts_read_as_empty_and_zero() -> None:
    data = {"metrics": {"checks": {"type": "rate", "values": {"rate": 1.0}}},
            "root_group": {"checks": [{}, {"name": "ok", "passes": None, "fails": None},
                                      {"path": "::p", "passes": 3, "fails": 1}]}}  # fmt: skip
    assert parse_summary(data).checks == [
        Check(name="", path="", passes=0, fails=0),
        Check(name="ok", path="ok", passes=0, fails=0),
        Check(name="", path="::p", passes=3, fails=1),
    ]


def test_a_count_without_a_rate_gives_no_duration_and_a_rate_without_a_count_zero() -> None:
    assert parse_summary({"metrics": {"http_reqs": {"count": 10}}}).duration_s is None
    assert parse_summary({"metrics": {"http_reqs": {"rate": 4.0}}}).duration_s == 0.0


def test_a_summary_file_that_is_not_one_says_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text('{"root_group": {}}', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_summary(path)
    assert caught.value.message == (
        f"{path} is not a k6 summary (no 'metrics' object); pass the file k6 wrote with "
        "--summary-export or from handleSummary"
    )


def test_a_summary_file_is_read_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    data: dict[str, Any] = {"metrics": {"iterations": {"count": 1, "rate": 1}},
                            "root_group": {"checks": {"a": {"name": "größe ✓", "passes": 1}}}}
    path.write_bytes(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    assert [c.name for c in read_summary(path).checks] == ["größe ✓"]

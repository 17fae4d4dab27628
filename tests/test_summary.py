"""k6's end-of-test summary in either shape, read into one model; threshold expressions and
metric keys as k6 writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_results_model import reading_error

from orchestrator.results.summary import (
    parse_metric_key,
    parse_summary,
    parse_threshold,
    read_summary,
)

# The same run in both shapes, abridged from a real k6 v1 run.
EXPORT: dict[str, Any] = {
    "metrics": {
        "http_reqs": {"count": 200, "rate": 40.0},
        "http_req_failed": {"passes": 2, "fails": 198, "value": 0.01,
                            "thresholds": {"rate<0.05": False}},
        "http_req_duration{name:api}": {"avg": 12.5, "p(95)": 30.25, "p(99.9)": 41.0,
                                        "thresholds": {"p(95)<20": True}},
        "my_gauge": {"value": 7, "min": 1, "max": 9},
        "iterations": {"count": 100, "rate": 20.0},
    },
    "root_group": {
        "checks": {"a": {"name": "status 200", "path": "::status 200", "passes": 198, "fails": 2}},
        "groups": {"browse": {"checks": {"b": {"name": "has body", "passes": 50, "fails": 0}},
                              "groups": {}}},
    },
}  # fmt: skip
HANDLE: dict[str, Any] = {
    "metrics": {
        "http_reqs": {"type": "counter", "values": {"count": 200, "rate": 40.0}},
        "http_req_failed": {"type": "rate", "values": {"rate": 0.01, "passes": 2, "fails": 198},
                            "thresholds": {"rate<0.05": {"ok": True}}},
        "http_req_duration{name:api}": {"type": "trend",
                                        "values": {"avg": 12.5, "p(95)": 30.25},
                                        "thresholds": {"p(95)<20": {"ok": False}}},
    },
    "root_group": {
        "checks": [{"name": "status 200", "path": "::status 200", "passes": 198, "fails": 2}],
        "groups": [{"checks": [{"name": "has body", "passes": 50, "fails": 0}], "groups": []}],
    },
    "state": {"testRunDurationMs": 5012.5},
}  # fmt: skip


def test_both_shapes_store_every_verdict_as_ok() -> None:
    export, handle = parse_summary(EXPORT), parse_summary(HANDLE)
    assert (export.shape, handle.shape) == ("summary-export", "handleSummary")
    # --summary-export says true for a *crossed* threshold; handleSummary says ok
    expected = {"http_req_failed": {"rate<0.05": True}, "http_req_duration{name:api}": {
        "p(95)<20": False}}  # fmt: skip
    assert export.thresholds == handle.thresholds == expected
    assert [(c.name, c.path, c.passes, c.fails) for c in export.checks] == [
        ("status 200", "::status 200", 198, 2), ("has body", "has body", 50, 0),
    ]  # fmt: skip
    assert [(c.name, c.passes) for c in handle.checks] == [("status 200", 198), ("has body", 50)]
    assert handle.metric_types["http_req_failed"] == "rate" and export.metric_types == {}


def test_statistics_in_threshold_vocabulary() -> None:
    export, handle = parse_summary(EXPORT), parse_summary(HANDLE)
    for summary in (export, handle):
        assert summary.stat("http_req_failed", "rate") == 0.01  # export: "value" of a rate
        assert summary.stat("http_req_duration{name:api}", "p(95)") == 30.25
        assert summary.stat("http_req_duration{name:api}", "p(95.0)") == 30.25
        assert summary.stat("http_req_duration{name:api}", "p(90)") is None
        assert summary.stat("http_reqs", "count") == 200
        assert summary.stat("nope", "count") is None
    assert export.stat("http_req_duration{name:api}", "p(99.90)") == 41.0
    assert export.stat("my_gauge", "value") == 7
    assert export.stat("http_reqs", "rate") == 40.0  # a counter's rate is per second
    assert "thresholds" not in export.metrics["http_req_failed"]  # numbers only


@pytest.mark.parametrize(
    ("state", "metrics", "seconds"),
    [
        ({"testRunDurationMs": 5012.5}, {"http_reqs": {"count": 200, "rate": 40}}, 5.0125),
        (None, {"http_reqs": {"count": 200, "rate": 40}}, 5.0),
        (None, {"iterations": {"count": 30, "rate": 10}}, 3.0),
        (None, {"http_reqs": {"count": 0, "rate": 0}}, None),
        ({"testRunDurationMs": "long"}, {}, None),
    ],
)
def test_the_duration_from_the_state_else_from_a_count_and_its_rate(
    state: dict[str, Any] | None, metrics: dict[str, Any], seconds: float | None
) -> None:
    data: dict[str, Any] = {"metrics": metrics}
    if state is not None:
        data["state"] = state
    assert parse_summary(data).duration_s == seconds


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the k6 summary {path}: No such file or directory"),
        ('{"metrics": ', "{path} is not valid JSON (Expecting value at line 1); pass the file "
                         "k6 wrote with --summary-export or from handleSummary"),
        ("[1, 2]", "{path} is not a k6 summary (expected a JSON object)"),
        ('{"root_group": {}}', "{path} is not a k6 summary (no 'metrics' object); pass the file"),
        ('{"metrics": []}', "{path} is not a k6 summary (no 'metrics' object)"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_summary_is_named(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "summary.json"
    assert reading_error(path, content, read_summary).startswith(problem.format(path=path))


def test_a_summary_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(HANDLE), encoding="utf-8")
    assert read_summary(path) == parse_summary(HANDLE)


@pytest.mark.parametrize(
    ("key", "metric", "tags"),
    [
        ("http_req_duration", "http_req_duration", {}),
        ("http_req_duration{name:api}", "http_req_duration", {"name": "api"}),
        ("http_req_duration{ name : api , status:200 }", "http_req_duration",
         {"name": "api", "status": "200"}),
        ("http_req_duration{url:http://x:8080/a}", "http_req_duration",
         {"url": "http://x:8080/a"}),
        ("checks{scenario:main,junk}", "checks", {"scenario": "main"}),
    ],
)  # fmt: skip
def test_a_metric_key_splits_into_metric_and_tag_filter(
    key: str, metric: str, tags: dict[str, str]
) -> None:
    assert parse_metric_key(key) == (metric, tags)


@pytest.mark.parametrize(
    ("expression", "measured", "holds"),
    [
        ("p(95)<500", 499.9, True), ("p(95)<500", 500, False), ("avg<=10", 10, True),
        ("rate>0.99", 0.99, False), ("count>=100", 100, True), ("value==3", 3, True),
        ("value===3", 3, True), ("med!=0", 0, False), ("min > -1.5e2", -100, True),
    ],
)  # fmt: skip
def test_a_threshold_holds_as_k6_judges_it(expression: str, measured: float, holds: bool) -> None:
    expr = parse_threshold(expression)
    assert expr is not None and expr.holds(measured) is holds


@pytest.mark.parametrize("expression", ["p95<500", "p(95)", "avg < fast", "sum<3", "rate<1e", ""])
def test_an_expression_orch_cannot_read_is_none(expression: str) -> None:
    assert parse_threshold(expression) is None

"""Ingest of real k6 raw output: figures checked against independent computations.

The runs come from the real k6 binary against a loopback server that counts every
response it sent (see k6_outputs.py). Each figure is compared with numpy over the raw
points read with the csv module, with the server's own counts, or with k6's summary.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from k6_outputs import NORMAL_OPTIONS, K6Run, k6_binary, real_runs, run_k6

from orchestrator.core import ConfigError
from orchestrator.results.figures import threshold_rows
from orchestrator.results.ingest import detect_format, finalize_raw, ingest_raw, load_points
from orchestrator.results.summary import parse_threshold, read_summary

pytestmark = pytest.mark.skipif(k6_binary() is None, reason="k6 is not on PATH")


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, K6Run]:
    """The four real k6 runs (made once per session, shared with test_report.py)."""
    return real_runs(tmp_path_factory.getbasetemp() / "k6-runs")


def _gzip(src: Path, dst: Path) -> Path:
    with open(src, "rb") as fin, gzip.open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def _variants(run: K6Run, tmp: Path) -> dict[str, Path]:
    """The same run's raw output in every format ingest reads."""
    tmp.mkdir(parents=True, exist_ok=True)
    pq_dir = tmp / "pq"
    pq_dir.mkdir(exist_ok=True)
    shutil.copyfile(run.csv, pq_dir / "raw.csv")
    return {
        "csv": run.csv,
        "ndjson": run.ndjson,
        "csv.gz": _gzip(run.csv, tmp / "raw.csv.gz"),
        "ndjson.gz": _gzip(run.ndjson, tmp / "raw.json.gz"),
        "parquet": finalize_raw(pq_dir),
    }


def _durations_by_endpoint(csv_path: Path) -> dict[str, list[float]]:
    """http_req_duration values per endpoint (name tag, else url), read with the csv module."""
    out: dict[str, list[float]] = defaultdict(list)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["metric_name"] == "http_req_duration":
                out[row["name"] or row["url"]].append(float(row["metric_value"]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "ndjson", "csv.gz", "ndjson.gz", "parquet"])
@pytest.mark.parametrize("name", ["normal", "failing", "limited", "interrupted"])
def test_latency_percentiles_match_numpy_on_the_raw_points(
    runs: dict[str, K6Run], tmp_path: Path, name: str, fmt: str
) -> None:
    run = runs[name]
    path = _variants(run, tmp_path)[fmt]
    assert detect_format(path)[0] == fmt.split(".")[0]
    agg = ingest_raw(path)
    expected = _durations_by_endpoint(run.csv)
    assert {e.name for e in agg.endpoints} == set(expected)
    for endpoint in agg.endpoints:
        values = np.array(expected[endpoint.name])
        lat = endpoint.latency
        assert lat.count == len(values)
        for attr, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
            # CSV values carry 6 decimals; NDJSON the full value: allow that rounding.
            assert getattr(lat, attr) == pytest.approx(np.percentile(values, q), abs=2e-6)
        assert lat.max == pytest.approx(values.max(), abs=2e-6)
    every = np.concatenate([np.array(v) for v in expected.values()])
    assert agg.overall is not None
    assert agg.overall.latency.p95 == pytest.approx(np.percentile(every, 95), abs=2e-6)
    assert agg.skipped["malformed_lines"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["normal", "failing", "limited"])
def test_overall_p95_equals_k6s_own_summary(runs: dict[str, K6Run], name: str) -> None:
    run = runs[name]
    summary = json.loads(run.summary_export.read_text())
    agg = ingest_raw(run.ndjson)
    assert agg.overall is not None
    k6_p95 = summary["metrics"]["http_req_duration"]["p(95)"]
    assert agg.overall.latency.p95 == pytest.approx(k6_p95, rel=1e-6)
    assert agg.requests == summary["metrics"]["http_reqs"]["count"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "ndjson.gz", "parquet"])
def test_error_counts_equal_what_the_server_produced(
    runs: dict[str, K6Run], tmp_path: Path, fmt: str
) -> None:
    run = runs["normal"]
    agg = ingest_raw(_variants(run, tmp_path)[fmt])
    by_name = {e.name: e for e in agg.endpoints}
    fail = by_name["fail"]
    assert fail.requests == run.sent[("/api/fail", 200)] + run.sent[("/api/fail", 500)]
    assert fail.server_errors == run.sent[("/api/fail", 500)] == 60
    assert fail.failed == 60
    assert by_name["ok"].failed == 0
    errors = [(e.endpoint, e.status, e.count) for e in agg.errors]
    assert errors == [("fail", "500", 60)]
    assert agg.errors[0].error_code == "1500"  # k6's code for HTTP 500
    # the request without a name tag is reported under its URL
    plain = [e for e in agg.endpoints if e.name.endswith("/api/plain")]
    assert plain and plain[0].requests == run.sent[("/api/plain", 200)]
    assert dict((c[0], c[1:]) for c in agg.checks) == {
        "fail: status 200": (240, 60),
        "ok: status 200": (300, 0),
    }


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_429s_are_counted_apart_from_server_failures(
    runs: dict[str, K6Run], tmp_path: Path, fmt: str
) -> None:
    run = runs["limited"]
    agg = ingest_raw(_variants(run, tmp_path)[fmt])
    limited = next(e for e in agg.endpoints if e.name == "limited")
    assert limited.rate_limited == run.sent[("/api/limited", 429)] > 100
    assert limited.requests == run.sent[("/api/limited", 429)] + run.sent[("/api/limited", 200)]
    assert limited.server_errors == 0
    assert limited.failed == limited.rate_limited  # k6 counts 429 as failed
    assert agg.overall is not None and agg.overall.rate_limited == limited.rate_limited
    assert sum(b.rate_limited for b in agg.buckets) == limited.rate_limited
    assert [(e.status, e.count) for e in agg.errors] == [("429", limited.rate_limited)]
    # per second: 429s and other failures are apart, so the chart stacks them without overlap
    assert sum(b.failed_not_429 for b in agg.buckets) == 0
    assert limited.failed_rate_limited == limited.rate_limited


@pytest.mark.slow
def test_interrupted_run_is_read_and_counts_what_k6_recorded(runs: dict[str, K6Run]) -> None:
    run = runs["interrupted"]
    assert run.exit_code == 105
    agg = ingest_raw(run.csv)
    served = sum(run.sent.values())
    # Requests in flight at SIGINT reach the server but never k6's output.
    assert served - 10 <= agg.requests <= served
    assert agg.requests > 100
    assert agg.span_s is not None and agg.span_s < 10  # the 30 s plan was cut short
    assert any(b.vus for b in agg.buckets)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["normal", "failing", "limited", "interrupted"])
def test_thresholds_judged_from_raw_points_agree_with_k6(runs: dict[str, K6Run], name: str) -> None:
    run = runs[name]
    summary = read_summary(run.summary_export)
    thresholds = {k: list(v) for k, v in summary.thresholds.items()}
    agg = ingest_raw(run.csv, thresholds=thresholds, duration_s=summary.duration_s)
    ours = threshold_rows(thresholds, None, agg)  # no summary: orch judges alone
    assert ours and all(r.verdict_source == "orch" for r in ours)
    for row in ours:
        assert row.ok == summary.thresholds[row.metric][row.expression], row
    if name == "failing":
        assert run.exit_code == 99
        failed = {(r.metric, r.expression) for r in ours if not r.ok}
        assert failed == {
            ("http_req_duration{name:slow}", "p(95)<5"),
            ("http_req_failed", "rate<0.01"),
        }


@pytest.mark.slow
def test_both_summary_shapes_give_the_same_verdicts_and_checks(runs: dict[str, K6Run]) -> None:
    run = runs["failing"]
    export = read_summary(run.summary_export)
    handle = read_summary(run.handle_summary)
    assert (export.shape, handle.shape) == ("summary-export", "handleSummary")
    assert export.thresholds == handle.thresholds
    assert export.thresholds["http_req_failed"] == {"rate<0.01": False}
    assert export.thresholds["http_req_duration"] == {"p(99)<3000": True}
    key = "http_req_duration{name:slow}"
    assert export.stat(key, "p(95)") == handle.stat(key, "p(95)")
    assert export.stat("http_req_failed", "rate") == handle.stat("http_req_failed", "rate")
    assert sorted((c.name, c.passes, c.fails) for c in export.checks) == sorted(
        (c.name, c.passes, c.fails) for c in handle.checks
    )
    assert handle.duration_s is not None and export.duration_s is not None
    assert handle.duration_s == pytest.approx(export.duration_s, rel=0.05)


def _truncate_last_line(src: Path, dst: Path) -> int:
    """Copy ``src`` without the second half of its last line; return the number of lines."""
    data = src.read_bytes()
    body = data.rstrip(b"\n")
    cut = body.rfind(b"\n")
    last = body[cut + 1 :]
    dst.write_bytes(body[: cut + 1] + last[: len(last) // 2])
    return body.count(b"\n") + 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
def test_a_truncated_last_line_is_skipped_and_reported(
    runs: dict[str, K6Run], tmp_path: Path, fmt: str
) -> None:
    run = runs["interrupted"]
    full = ingest_raw(run.csv if fmt != "ndjson" else run.ndjson)
    if fmt == "ndjson":
        path = tmp_path / "raw.json"
        _truncate_last_line(run.ndjson, path)
    else:
        path = tmp_path / "raw.csv"
        _truncate_last_line(run.csv, path)
        if fmt == "parquet":
            path = finalize_raw(tmp_path)
            assert path.name == "raw.parquet" and not (tmp_path / "raw.csv").exists()
    agg = ingest_raw(path)
    assert agg.skipped["malformed_lines"] == 1
    assert full.total_points - 1 <= agg.total_points <= full.total_points
    assert abs(agg.requests - full.requests) <= 1


@pytest.mark.slow
def test_null_tags_unknown_metrics_and_bad_points_do_not_stop_the_ingest(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    run = runs["normal"]
    path = tmp_path / "raw.json"
    extra = [
        {"metric": "my_custom_gauge", "type": "Point",
         "data": {"time": "2026-01-01T00:00:00.5Z", "value": 7, "tags": None}},
        {"metric": "http_reqs", "type": "Point",
         "data": {"time": "2026-01-01T00:00:00Z", "value": 1, "tags": None}},
        {"metric": "http_reqs", "type": "Point",
         "data": {"time": "not a time", "value": 1, "tags": {"name": "x"}}},
        {"metric": "http_reqs", "type": "Point",
         "data": {"time": "2026-01-01T00:00:00Z", "value": None, "tags": {"name": "x"}}},
    ]  # fmt: skip
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(run.ndjson.read_text(encoding="utf-8"))
        for obj in extra:
            fh.write(json.dumps(obj) + "\n")
        fh.write("this is not json\n")
    base = ingest_raw(run.ndjson)
    agg = ingest_raw(path, thresholds={"my_custom_gauge": ["value<10"]})
    assert agg.skipped == {"malformed_lines": 1, "points_without_time_or_value": 2}
    assert agg.requests == base.requests + 1
    assert agg.untagged_http_points == 1
    assert any(e.name == "(untagged)" for e in agg.endpoints)
    assert agg.measured[("my_custom_gauge", "value<10")] == 7.0


def test_finalize_raw_keeps_the_csv_when_absent_empty_or_not_convertible(tmp_path: Path) -> None:
    assert finalize_raw(tmp_path) == tmp_path / "raw.csv"
    assert not (tmp_path / "raw.parquet").exists()
    (tmp_path / "raw.csv").write_text("")
    assert finalize_raw(tmp_path) == tmp_path / "raw.csv"
    assert (tmp_path / "raw.csv").exists()
    (tmp_path / "raw.csv").write_text("garbage that is not k6 output\n")
    assert finalize_raw(tmp_path) == tmp_path / "raw.csv"
    assert (tmp_path / "raw.csv").exists() and not (tmp_path / "raw.parquet").exists()
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.slow
def test_finalize_raw_converts_and_deletes_the_csv(runs: dict[str, K6Run], tmp_path: Path) -> None:
    shutil.copyfile(runs["limited"].csv, tmp_path / "raw.csv")
    before = ingest_raw(tmp_path / "raw.csv")
    out = finalize_raw(tmp_path)
    assert out == tmp_path / "raw.parquet" and out.read_bytes()[:4] == b"PAR1"
    assert not (tmp_path / "raw.csv").exists()
    after = ingest_raw(out)
    assert after.total_points == before.total_points
    assert after.metrics == before.metrics
    assert [(e.name, e.requests, e.rate_limited, e.latency.p95) for e in after.endpoints] == [
        (e.name, e.requests, e.rate_limited, e.latency.p95) for e in before.endpoints
    ]
    assert out.stat().st_size < runs["limited"].csv.stat().st_size / 4


@pytest.mark.slow
def test_a_csv_with_fewer_system_tags_is_read_and_converted(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    """k6 writes a CSV column only for the system tags it records (orch's own scripts ask
    for fewer): such a file is read, judged and converted like a full one."""
    tags = ["check", "expected_response", "method", "name", "scenario", "status"]
    run = run_k6(tmp_path / "k6", "few-tags", {**NORMAL_OPTIONS, "systemTags": tags})
    with open(run.csv, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    assert "url" not in header and "proto" not in header and "name" in header
    full = ingest_raw(runs["normal"].csv)
    from_csv = ingest_raw(run.csv)
    from_json = ingest_raw(run.ndjson)
    # An unnamed request is its URL (k6 fills the name tag with it), on each run's own port.
    def names(agg: Any) -> set[str]:
        return {re.sub(r":\d+/", ":PORT/", e.name) for e in agg.endpoints}

    assert names(from_csv) == names(full)
    assert [(e.name, e.requests, e.failed, e.latency.p95) for e in from_csv.endpoints] == [
        (e.name, e.requests, e.failed, pytest.approx(e.latency.p95, abs=2e-6))
        for e in from_json.endpoints
    ]
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copyfile(run.csv, folder / "raw.csv")
    out = finalize_raw(folder)
    assert out == folder / "raw.parquet" and not (folder / "raw.csv").exists()
    converted = ingest_raw(out)
    assert converted.total_points == from_csv.total_points
    assert [(e.name, e.requests, e.failed) for e in converted.endpoints] == [
        (e.name, e.requests, e.failed) for e in from_csv.endpoints
    ]


@pytest.mark.slow
def test_load_points_gives_a_dataframe_of_the_raw_points(runs: dict[str, K6Run]) -> None:
    run = runs["normal"]
    frame = load_points(run.ndjson, ("http_req_duration",))
    expected = _durations_by_endpoint(run.csv)
    assert len(frame) == sum(len(v) for v in expected.values())
    assert set(frame["endpoint"]) == set(expected)
    assert set(frame.loc[frame["endpoint"] == "ok", "extra_tags"]) == {"flow=browse"}
    assert frame["time"].is_monotonic_increasing


def test_not_a_k6_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    with pytest.raises(ConfigError, match="neither k6 NDJSON"):
        ingest_raw(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        ingest_raw(tmp_path / "missing.json")


def test_threshold_expressions_parse_like_k6() -> None:
    expr = parse_threshold("p(99.9) <= 250")
    assert expr is not None
    assert (expr.stat, expr.operator, expr.target, expr.percentile) == ("p(99.9)", "<=", 250, 99.9)
    assert parse_threshold("rate<0.01") is not None
    assert parse_threshold("count>=100") is not None
    assert parse_threshold("nonsense") is None

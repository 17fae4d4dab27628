"""The report of real k6 runs: results.json, charts, report.md, and `orch report`."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from k6_outputs import K6Run, k6_binary, real_runs

from orchestrator.cli import main
from orchestrator.core import Outcome
from orchestrator.results import build_report, finalize_raw

pytestmark = pytest.mark.skipif(k6_binary() is None, reason="k6 is not on PATH")

OUTCOMES = {"normal": "passed", "failing": "thresholds_failed", "limited": "passed",
            "interrupted": "interrupted"}  # fmt: skip


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, K6Run]:
    """The four real k6 runs (made once per session, shared with test_ingest.py)."""
    return real_runs(tmp_path_factory.getbasetemp() / "k6-runs")


def make_run_dir(run: K6Run, dest: Path, *, outcome: str | None = None) -> Path:
    """A run folder as `orch run` leaves it: Parquet raw file, summary, run.json."""
    dest.mkdir(parents=True)
    shutil.copyfile(run.csv, dest / "raw.csv")
    shutil.copyfile(run.summary_export, dest / "summary.json")
    raw = finalize_raw(dest)
    manifest = {
        "orch_version": "0.1.0",
        "k6_version": "v1.1.0",
        "runner": "native",
        "scenario": f"test-{run.name}",
        "environment": "local",
        "profile": "smoke",
        "started_at": "2026-01-01T12:00:00.000Z",
        "ended_at": "2026-01-01T12:00:03.000Z",
        "duration_s": 3.0,
        "k6_exit_code": run.exit_code,
        "outcome": outcome or OUTCOMES[run.name],
        "files": {"summary": "summary.json", "raw": raw.name, "log": "k6.log"},
        "load_profile": {"executor": "shared-iterations"},
        "thresholds": {"http_req_duration": ["p(95)<2000"]},
        "target": {"base_url": "http://127.0.0.1:1"},
    }
    (dest / "run.json").write_text(json.dumps(manifest))
    return dest


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_failing_run_report_opens_with_the_failed_verdict(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    run_dir = make_run_dir(runs["failing"], tmp_path / "run")
    result = build_report(run_dir)
    assert result.thresholds_ok is False
    assert result.thresholds_failed == 2
    results = json.loads((run_dir / "results.json").read_text())
    assert results["schema_version"] == 1
    rows = {(t["metric"], t["expression"]): t for t in results["thresholds"]}
    assert rows[("http_req_failed", "rate<0.01")]["ok"] is False
    assert rows[("http_req_duration{name:slow}", "p(95)<5")]["ok"] is False
    assert rows[("http_req_duration{name:slow}", "p(95)<5")]["measured"] > 5
    assert rows[("http_req_duration", "p(99)<3000")]["ok"] is True
    # run.json's thresholds are judged too, by orch, from the raw points
    extra = rows[("http_req_duration", "p(95)<2000")]
    assert (extra["ok"], extra["verdict_source"]) == (True, "orch")
    text = (run_dir / "report.md").read_text()
    # the first line is the verdict, from the run's outcome
    assert text.splitlines()[0] == "**❌ FAILED**: 2 of 4 threshold(s) crossed."
    assert "PASSED" not in text
    assert text.index("| ❌ **FAIL** | `http_req_failed` | `rate<0.01` |") < text.index(
        "## Endpoints"
    )
    assert "[!WARNING]" not in text and "[!CAUTION]" not in text
    for chart in results["charts"]:
        assert f"]({chart['file']})" in text  # relative links
        assert _png_size(run_dir / chart["file"]) >= (1000, 500)
    assert len(result.charts) == 5


@pytest.mark.slow
def test_interrupted_run_is_marked_at_the_top(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run_dir = make_run_dir(runs["interrupted"], tmp_path / "run")
    build_report(run_dir)
    head = (run_dir / "report.md").read_text().split("## Verdict")[0]
    assert "[!WARNING]" in head and "interrupted" in head and "105" in head


@pytest.mark.slow
def test_crashed_run_is_marked_at_the_top(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run_dir = make_run_dir(runs["normal"], tmp_path / "run", outcome="crashed")
    build_report(run_dir)
    head = (run_dir / "report.md").read_text().split("## Verdict")[0]
    assert "[!CAUTION]" in head and "crashed" in head


@pytest.mark.slow
@pytest.mark.parametrize("outcome", [o.value for o in Outcome] + [None])
def test_only_a_passed_run_says_passed(
    runs: dict[str, K6Run], tmp_path: Path, outcome: str | None
) -> None:
    """The first line comes from run.json's outcome: a run whose thresholds all held says
    PASSED only when it passed, and never next to a caution banner."""
    run_dir = make_run_dir(runs["normal"], tmp_path / "run", outcome=outcome or "passed")
    if outcome is None:  # raw output without a run record (orch report --from)
        manifest = json.loads((run_dir / "run.json").read_text())
        manifest["outcome"] = None
        (run_dir / "run.json").write_text(json.dumps(manifest))
    result = build_report(run_dir)
    assert result.thresholds_ok is True
    text = (run_dir / "report.md").read_text()
    first = text.splitlines()[0]
    if outcome == "passed":
        assert first.startswith("**✅ PASSED**")
    else:
        assert "PASSED" not in text, first
    assert not ("PASSED" in text and "[!CAUTION]" in text)


@pytest.mark.slow
def test_rate_limited_run_reports_429s_apart(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run = runs["limited"]
    run_dir = make_run_dir(run, tmp_path / "run")
    build_report(run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    sent_429 = run.sent[("/api/limited", 429)]
    assert results["rate_limits"]["total"] == sent_429
    assert results["rate_limits"]["by_endpoint"][0]["endpoint"] == "limited"
    assert results["overall"]["server_errors"] == 0
    assert results["overall"]["failed_excluding_429"] == 0
    text = (run_dir / "report.md").read_text()
    section = text.split("## Rate limits (HTTP 429)")[1].split("## Checks")[0]
    assert f"**{sent_429:,} request(s) were answered 429" in section
    assert "| `limited` |" in section


@pytest.mark.slow
def test_report_is_idempotent(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    first = build_report(run_dir)
    before = {p.name: p.read_bytes() for p in first.paths}
    second = build_report(run_dir)
    after = {p.name: p.read_bytes() for p in second.paths}
    assert before == after
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "charts", "job-summary.md", "raw.parquet", "report.html", "report.md", "results.json",
        "run.json", "summary.json",
    ]  # fmt: skip


@pytest.mark.slow
def test_charts_are_drawn_again_only_when_what_they_show_changes(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    charts = run_dir / "charts"
    build_report(run_dir)
    drawn = {p.name: p.stat().st_mtime_ns for p in charts.glob("*.png")}
    assert len(drawn) == 5 and (charts / ".inputs.json").is_file()

    build_report(run_dir)  # same figures: the PNGs are kept as they are
    assert {p.name: p.stat().st_mtime_ns for p in charts.glob("*.png")} == drawn

    (charts / "active_vus.png").unlink()  # a chart missing: all are drawn again
    build_report(run_dir)
    assert (charts / "active_vus.png").is_file()
    assert (charts / "latency_histogram.png").stat().st_mtime_ns != drawn["latency_histogram.png"]

    redrawn = {p.name: p.stat().st_mtime_ns for p in charts.glob("*.png")}
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["metrics"]["http_req_duration"]["thresholds"] = {"p(95)<1": {"ok": False}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    build_report(run_dir)  # a p95 limit is drawn on the latency chart: it changes
    changed = {p.name: p.stat().st_mtime_ns for p in charts.glob("*.png")}
    assert all(changed[name] != redrawn[name] for name in redrawn)


@pytest.mark.slow
def test_charts_are_kept_whatever_order_and_last_bits_duckdb_gives(
    runs: dict[str, K6Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB returns GROUP BY rows in any order, and sums whose last bits vary."""
    import orchestrator.results.ingest_cache as ingest_module  # the cache is off in tests

    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    build_report(run_dir)
    drawn = {p.name: p.stat().st_mtime_ns for p in (run_dir / "charts").glob("*.png")}
    ingest = ingest_module.ingest_raw
    calls: list[int] = []

    def reordered(*args: object, **kwargs: object) -> object:
        calls.append(1)
        agg = ingest(*args, **kwargs)  # type: ignore[arg-type]
        assert len(agg.metrics) > 1
        agg.metrics = dict(reversed(agg.metrics.items()))
        agg.scenarios = dict(reversed(agg.scenarios.items()))
        # parallel sums differ in their last bits from one ingest to the next
        bucket = next(b for b in agg.buckets if b.p95)
        bucket.p95 = math.nextafter(bucket.p95, math.inf)
        return agg

    monkeypatch.setattr(ingest_module, "ingest_raw", reordered)
    build_report(run_dir)
    assert calls == [1]
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "charts").glob("*.png")} == drawn


def test_folder_without_raw_data_or_summary_still_reports(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty-run"
    run_dir.mkdir()
    (run_dir / "raw.csv").write_text("")
    (run_dir / "run.json").write_text(json.dumps({"outcome": "crashed", "k6_exit_code": -9}))
    result = build_report(run_dir)
    assert result.thresholds_ok is None
    assert any("empty" in n for n in result.notes)
    text = result.report_path.read_text()
    assert "NO VERDICT" in text and "crashed" in text
    assert len(result.charts) == 5 and all(p.stat().st_size > 5000 for p in result.charts)


@pytest.mark.slow
def test_cli_report_rebuilds_a_run_folder(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run_dir = make_run_dir(runs["failing"], tmp_path / "run")
    cli = CliRunner()
    res = cli.invoke(main, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "2 threshold(s) crossed" in res.output
    assert (run_dir / "report.md").is_file()
    res = cli.invoke(main, ["report", str(run_dir), "--fail-on-thresholds"])
    assert res.exit_code == 99


def test_cli_report_on_a_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 3
    assert "is not a run folder" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["report"])
    assert res.exit_code == 3


@pytest.mark.slow
def test_cli_report_from_a_raw_file_of_elsewhere(runs: dict[str, K6Run], tmp_path: Path) -> None:
    run = runs["failing"]
    import gzip

    raw = tmp_path / "their-raw.json.gz"
    raw.write_bytes(gzip.compress(run.ndjson.read_bytes()))
    out = tmp_path / "imported"
    res = CliRunner().invoke(
        main,
        ["report", "--from", str(raw), "--summary", str(run.handle_summary), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    imported = json.loads((out / "results.json").read_text())
    assert imported["sources"]["raw_format"] == "ndjson.gz"
    assert imported["sources"]["summary_shape"] == "handleSummary"
    assert imported["verdict"]["thresholds_failed"] == 2
    # same figures as the folder `orch run` would have made from the CSV of the same run
    reference_dir = make_run_dir(run, tmp_path / "reference")
    build_report(reference_dir)
    reference = json.loads((reference_dir / "results.json").read_text())
    assert [(e["name"], e["requests"]) for e in imported["endpoints"]] == [
        (e["name"], e["requests"]) for e in reference["endpoints"]
    ]
    for a, b in zip(imported["endpoints"], reference["endpoints"], strict=True):
        assert a["latency_ms"]["p95"] == pytest.approx(b["latency_ms"]["p95"], abs=2e-6)
    # No summary: the thresholds the NDJSON declares are judged from the raw points. (k6
    # declares a sub-metric's thresholds nowhere in the NDJSON, so those are unknown here.)
    res = CliRunner().invoke(main, ["report", "--from", str(run.ndjson), "--out", str(out)])
    assert res.exit_code == 0, res.output
    alone = json.loads((out / "results.json").read_text())
    assert alone["sources"]["summary_file"] is None
    assert {(t["metric"], t["expression"], t["ok"], t["verdict_source"])
            for t in alone["thresholds"]} == {
        ("http_req_failed", "rate<0.01", False, "orch"),
        ("http_req_duration", "p(99)<3000", True, "orch"),
    }  # fmt: skip


def test_cli_report_from_a_file_that_is_not_k6_output(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    res = CliRunner().invoke(main, ["report", "--from", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 3
    assert "neither k6 NDJSON" in res.output

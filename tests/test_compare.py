"""Compare, baselines, history and junit.xml, on real k6 runs against the real sandbox.

Three short runs of email-queue (every iteration hits `email_enqueue` and
`email_queue_status`): A and B unchanged, C with 150 ms extra on the sandbox's
`email-queue` endpoint (what `email_queue_status` calls).

The tolerance here is wider than orch's default (10 %): on this shared 2-core machine two
unchanged 4 s runs were measured 19 % apart at p95 (+12 ms, U p = 0.0004) when other test
suites loaded it, because scheduler stalls of tens of ms reach the tail. Such a shift is
real (the machine was slower) but is not what these tests are about; the default fits
staging, whose p95 is hundreds of ms. See docs/ci.md, "Statistics".
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scenario_project import make_project

from orchestrator.cli import main
from orchestrator.config import RegressionSettings
from orchestrator.core import ExitCode
from orchestrator.regression.compare import (
    OVERALL,
    Side,
    compare_sides,
    error_rate_p_value,
    latency_significance,
)

SLOW_MS = 150.0
# p95 must more than double, by at least 50 ms, with significance (alpha 0.01).
TEST_REGRESSION = {"p95_increase_pct": 100, "p95_min_increase_ms": 50, "alpha": 0.01}


def _edit(data: dict[str, Any]) -> None:
    data["regression"] = dict(TEST_REGRESSION)
    scenario = data["scenarios"]["email-queue"]
    scenario["vars"]["status_every"] = 1  # both endpoints on every iteration
    scenario["profiles"]["smoke"].update(
        {"rate": 100, "duration": "4s", "preAllocatedVUs": 40, "maxVUs": 80}
    )
    # Latencies well above the machine's own jitter, so a loaded machine is not a regression.
    data["environments"]["local"]["sandbox"].update({"latency_ms_median": 40, "latency_ms_p95": 60})


def _set_extra_latency(config: Path, extra: dict[str, float]) -> None:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["environments"]["local"]["sandbox"]["endpoint_latency_ms"] = extra
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _run_dir(output: str) -> Path:
    return Path(output.strip().splitlines()[-1])


@dataclass
class Runs:
    config: Path
    a: Path
    b: Path
    c: Path
    b_exit: int
    c_exit: int
    baseline: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("compare")
    config = make_project(root, _edit)
    first = _invoke("run", "email-queue", "--config", str(config))
    assert first.exit_code == 0, first.output
    a = _run_dir(first.stdout)
    made = _invoke("baseline", "set", str(a), "--config", str(config))
    assert made.exit_code == 0, made.output
    baseline = Path(made.stdout.strip())
    second = _invoke("run", "email-queue", "--against-baseline", "--config", str(config))
    _set_extra_latency(config, {"email-queue": SLOW_MS})
    third = _invoke("run", "email-queue", "--against-baseline", "--config", str(config))
    _set_extra_latency(config, {})
    return Runs(
        config, a, _run_dir(second.stdout), _run_dir(third.stdout), second.exit_code,
        third.exit_code, baseline,
    )  # fmt: skip


# --- real runs ----------------------------------------------------------------------------


@pytest.mark.slow
def test_injected_latency_flags_exactly_that_endpoint(runs: Runs, tmp_path: Path) -> None:
    result = _invoke(
        "compare", str(runs.a), str(runs.c), "--out", str(tmp_path), "--fail-on-regression",
        "--config", str(runs.config),
    )  # fmt: skip
    assert result.exit_code == ExitCode.REGRESSION == 8, result.output
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["regressed"] is True
    assert doc["regressed_endpoints"] == ["email_queue_status"]
    rows = {r["name"]: r for r in doc["rows"]}
    slow = rows["email_queue_status"]
    assert slow["latency_regressed"] and slow["significance"]["significant"]
    assert slow["significance"]["p_value"] < 1e-6
    assert slow["latency_change_ms"]["p95"] > SLOW_MS / 2
    assert slow["latency_change_pct"]["p95"] > TEST_REGRESSION["p95_increase_pct"]
    assert not rows["email_enqueue"]["regressed"]
    assert "| email_queue_status |" in result.stdout and "REGRESSED" in result.stdout
    assert (tmp_path / "compare.md").read_text().count("REGRESSED") >= 2
    png = (tmp_path / "compare_p95.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.slow
def test_unchanged_runs_are_not_flagged(runs: Runs, tmp_path: Path) -> None:
    result = _invoke(
        "compare", str(runs.a), str(runs.b), "--out", str(tmp_path), "--fail-on-regression",
        "--config", str(runs.config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["regressed"] is False and doc["regressed_endpoints"] == []
    assert {r["name"] for r in doc["rows"]} == {OVERALL, "email_enqueue", "email_queue_status"}
    assert "**No regression** found." in result.stdout


@pytest.mark.slow
def test_against_baseline_exits_8_and_extends_the_report(runs: Runs) -> None:
    assert runs.c_exit == ExitCode.REGRESSION == 8
    manifest = json.loads((runs.c / "run.json").read_text())
    assert manifest["outcome"] == "passed" and manifest["exit_code"] == 8
    assert manifest["baseline"]["regressed_endpoints"] == ["email_queue_status"]
    report = (runs.c / "report.md").read_text()
    assert "## Against the baseline:" in report and "charts/compare_p95.png" in report
    # every form of the report opens with the regression, above the thresholds' PASSED
    summary = (runs.c / "job-summary.md").read_text()
    page = (runs.c / "report.html").read_text()
    for text in (report, summary):
        first, _, second = text.splitlines()[:3]
        assert first.startswith("**📉 REGRESSED** against the baseline")
        assert "email_queue_status" in first
        assert second.startswith("**✅ PASSED**")
    assert page.index("REGRESSED</strong> against the baseline") < page.index("PASSED</strong>")
    # the unchanged run's reports open with its own verdict
    assert (runs.b / "report.md").read_text().startswith("**✅ PASSED**")
    assert (runs.c / "charts" / "compare_p95.png").is_file()
    junit = ET.parse(runs.c / "junit.xml").getroot()
    failures = {
        case.get("name", "").split(" against ")[0]
        for case in junit.iter("testcase")
        if case.get("classname", "").endswith(".regression") and case.find("failure") is not None
    }
    assert failures == {OVERALL, "email_queue_status"}


@pytest.mark.slow
def test_unchanged_run_against_baseline_passes(runs: Runs) -> None:
    assert runs.b_exit == 0
    doc = json.loads((runs.b / "compare.json").read_text())
    assert doc["regressed"] is False
    assert doc["a"]["kind"] == "baseline" and doc["a"]["sample_kind"] == "quantiles"


@pytest.mark.slow
def test_baseline_file_is_small_figures_and_quantiles(runs: Runs) -> None:
    assert runs.baseline == runs.config.parent / "baselines" / "email-queue_local.json"
    text = runs.baseline.read_text()
    assert len(text) < 40_000
    data = json.loads(text)
    assert data["kind"] == "orch-baseline" and data["source_run"] == runs.a.name
    quantiles = data["latency_sample"]["quantiles"]
    assert set(quantiles) == {OVERALL, "email_enqueue", "email_queue_status"}
    assert all(0 < len(q) <= 500 and q == sorted(q) for q in quantiles.values())
    assert "127.0.0.1" not in text  # no URL, no raw point tags
    shown = _invoke("baseline", "show", "email-queue", "--config", str(runs.config))
    assert shown.exit_code == 0 and "email_queue_status" in shown.stdout


@pytest.mark.slow
def test_every_run_writes_junit(runs: Runs) -> None:
    root = ET.parse(runs.a / "junit.xml").getroot()
    suites = {s.get("name", "").rsplit(".", 1)[-1]: s for s in root.iter("testsuite")}
    assert set(suites) == {"run", "thresholds", "checks"}
    results = json.loads((runs.a / "results.json").read_text())
    assert int(suites["thresholds"].get("tests") or 0) == len(results["thresholds"])
    assert int(suites["checks"].get("tests") or 0) == len(results["checks"])
    assert root.get("failures") == "0"


@pytest.mark.slow
def test_history_table_and_chart(runs: Runs, tmp_path: Path) -> None:
    result = _invoke(
        "history", "email-queue", "--env", "local", "--out", str(tmp_path),
        "--config", str(runs.config),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for run_dir in (runs.a, runs.b, runs.c):
        assert run_dir.name in result.stdout
    assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
    assert "history.png" in (tmp_path / "history.md").read_text()
    none = _invoke("history", "linkedin-scrape", "--config", str(runs.config))
    assert none.exit_code == ExitCode.CONFIG and "no run of linkedin-scrape" in none.output


@pytest.mark.slow
def test_threshold_failure_wins_over_regression(runs: Runs) -> None:
    data = yaml.safe_load(runs.config.read_text(encoding="utf-8"))
    data["environments"]["local"]["sandbox"]["endpoint_latency_ms"] = {"email-queue": SLOW_MS}
    data["scenarios"]["email-queue"]["profiles"]["smoke"]["duration"] = "2s"
    data["scenarios"]["email-queue"]["thresholds"]["http_req_duration{name:email_queue_status}"] = [
        "p(95)<50"
    ]
    config = runs.config.with_name("orch-strict.yaml")
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = _invoke(
        "run", "email-queue", "--baseline", str(runs.baseline), "--config", str(config)
    )
    assert result.exit_code == ExitCode.THRESHOLDS == 99, result.output
    run_dir = _run_dir(result.stdout)
    assert json.loads((run_dir / "compare.json").read_text())["regressed"] is True
    junit = ET.parse(run_dir / "junit.xml").getroot()
    crossed = [
        c.get("name")
        for c in junit.iter("testcase")
        if c.get("classname", "").endswith(".thresholds") and c.find("failure") is not None
    ]
    assert crossed == ["http_req_duration{name:email_queue_status}: p(95)<50"]


# --- errors -------------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_refuses_a_missing_folder(runs: Runs, tmp_path: Path) -> None:
    result = _invoke("compare", str(tmp_path / "nope"), str(runs.a), "--config", str(runs.config))
    assert result.exit_code == ExitCode.CONFIG
    assert "does not exist" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_missing_explicit_baseline_is_refused_before_any_load(runs: Runs, tmp_path: Path) -> None:
    before = sorted((runs.config.parent / "results").iterdir())
    result = _invoke(
        "run", "email-queue", "--baseline", str(tmp_path / "none.json"), "--config",
        str(runs.config),
    )  # fmt: skip
    assert result.exit_code == ExitCode.CONFIG and "does not exist" in result.output
    assert sorted((runs.config.parent / "results").iterdir()) == before


def test_regression_block_is_validated(tmp_path: Path) -> None:
    config = make_project(tmp_path, lambda d: d.update(regression={"p95_increase_pct": -1}))
    result = _invoke("scenarios", "--config", str(config))
    assert result.exit_code == ExitCode.CONFIG
    assert "regression.p95_increase_pct" in result.output


# --- statistics on synthetic samples ------------------------------------------------------


def _side(label: str, samples: dict[str, np.ndarray]) -> Side:
    figures = {
        name: {
            "requests": int(v.size),
            "failed": 0,
            "error_rate": 0.0,
            "throughput_rps": v.size / 10.0,
            "latency_ms": {f"p{q}": float(np.percentile(v, q)) for q in (50, 95, 99)},
        }
        for name, v in samples.items()
    }
    return Side(label, "run", "s", "local", "smoke", figures, samples, "raw points")


@pytest.mark.slow
def test_same_distribution_is_not_significant() -> None:
    rng = np.random.default_rng(1)
    flagged = 0
    for _ in range(20):
        a = rng.lognormal(np.log(40), 0.25, 400)
        b = rng.lognormal(np.log(40), 0.25, 400)
        flagged += latency_significance(a, b, alpha=0.01, resamples=200).significant
    assert flagged <= 1


@pytest.mark.slow
def test_bootstrap_bound_is_seeded_and_one_sided() -> None:
    rng = np.random.default_rng(3)
    a = rng.lognormal(np.log(40), 0.25, 30_000)  # thinned to BOOTSTRAP_MAX_POINTS first
    b = rng.lognormal(np.log(40), 0.25, 30_000) + 8
    first = latency_significance(a, b, alpha=0.01)
    assert first == latency_significance(a, b, alpha=0.01)  # same inputs, same bounds
    assert first.p95_diff_ms is not None and first.p95_diff_ci_ms is not None
    assert first.p95_diff_low_ms is not None
    low, high = first.p95_diff_ci_ms
    # the one-sided 99 % bound lies below the two-sided 95 % interval, which holds the shift
    assert first.p95_diff_low_ms < low < first.p95_diff_ms < high
    assert first.significant and first.p95_diff_low_ms > 0
    looser = latency_significance(a, b, alpha=0.2)
    assert looser.p95_diff_low_ms is not None and looser.p95_diff_low_ms > low
    assert looser.p95_diff_ci_ms == first.p95_diff_ci_ms  # 95 % whatever alpha is


@pytest.mark.slow
def test_large_samples_need_the_tolerance_too() -> None:
    rng = np.random.default_rng(2)
    a = rng.lognormal(np.log(40), 0.25, 100_000)
    b = a * 1.02 + rng.normal(0, 0.01, a.size)  # 2 % slower: "significant", not material
    cmp = compare_sides(_side("A", {OVERALL: a}), _side("B", {OVERALL: b}), RegressionSettings())
    (row,) = cmp.rows
    assert row.significance is not None and row.significance.significant
    assert not row.regressed and not cmp.regressed
    worse = a * 1.3
    cmp = compare_sides(_side("A", {OVERALL: a}), _side("B", {OVERALL: worse}))
    assert cmp.rows[0].latency_regressed


def test_error_rate_test() -> None:
    assert error_rate_p_value(0, 1000, 0, 1000) == 1.0
    p = error_rate_p_value(1, 1000, 40, 1000)
    assert p is not None and p < 1e-6
    p = error_rate_p_value(0, 20, 1, 20)
    assert p is not None and p > 0.01  # one failure in 20 proves nothing

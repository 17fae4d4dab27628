"""Sharded runs and merges: N k6 processes give the same test as one, judged exactly.

Real k6 processes with the k6-operator's execution segments, the real sandbox, and the
merge recomputing every threshold from the union of the shards' raw points.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode
from orchestrator.execution import find_k6
from orchestrator.execution.shards import segment_args
from orchestrator.results import combined_outcome, merge_runs
from orchestrator.results.summary import read_summary

# A fixed iteration count, so one process and three shards run the same requests.
FIXED_SCENARIOS = """\
  fixed:
    description: a fixed number of webhook posts
    template: linkedin_scrape.js.j2
    tags: {flow: linkedin-scrape}
    vars: {webhook_export: workflows/linkedin-scraper.json, webhook_auth: none,
           webhook_auth_header: X-N8N-API-KEY, webhook_secret_var: WEBHOOK_SECRET,
           profiles_file: linkedin-profiles.json}
    thresholds:
      http_req_failed: ["rate<0.01", "rate>0.5"]
      http_req_duration: ["p(95)<500", "p(95)<0.001", "avg<500", "min>=0", "max<10000",
                          "med<1000", "min>1000"]
      "http_req_duration{name:linkedin_webhook}": ["p(99)<1000", "p(90)>1000"]
      "http_req_duration{expected_response:true}": ["max<0.0001"]
      "http_reqs{flow:linkedin-scrape}": ["count==300", "count<1"]
      http_reqs: ["count>=300", "rate>1", "rate<1"]
      iterations: ["count==300"]
      checks: ["rate>0.99"]
    default_profile: fixed
    profiles:
      fixed: {executor: shared-iterations, vus: 3, iterations: 300, maxDuration: 20s}
  fixed-ok:
    description: the same, with thresholds that hold
    template: linkedin_scrape.js.j2
    tags: {flow: linkedin-scrape}
    vars: {webhook_export: workflows/linkedin-scraper.json, webhook_auth: none,
           webhook_auth_header: X-N8N-API-KEY, webhook_secret_var: WEBHOOK_SECRET,
           profiles_file: linkedin-profiles.json}
    thresholds:
      http_req_failed: ["rate<0.01"]
      "http_req_duration{name:linkedin_webhook}": ["p(95)<500"]
    default_profile: fixed
    profiles:
      fixed: {executor: shared-iterations, vus: 2, iterations: 40, maxDuration: 20s}
"""


def _run_dirs(config: Path) -> list[Path]:
    results = config.parent / "results"
    return sorted(p for p in results.iterdir() if p.is_dir() and p.name != "rendered")


def _results(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return data


def _verdicts(results: dict[str, Any]) -> dict[tuple[str, str], bool | None]:
    return {(r["metric"], r["expression"]): r["ok"] for r in results["thresholds"]}


def test_segments_are_the_operators() -> None:
    assert segment_args(1, 1) == []
    assert segment_args(1, 3) == [
        "--execution-segment=0:1/3",
        "--execution-segment-sequence=0,1/3,2/3,1",
    ]
    assert segment_args(3, 3)[0] == "--execution-segment=2/3:1"
    assert segment_args(2, 4) == [
        "--execution-segment=1/4:2/4",
        "--execution-segment-sequence=0,1/4,2/4,3/4,1",
    ]
    with pytest.raises(ValueError):
        segment_args(4, 3)


@pytest.mark.slow
def test_three_shards_match_one_process(project: Callable[..., Path]) -> None:
    config = project(extra_yaml=FIXED_SCENARIOS)
    cli = CliRunner()
    single = cli.invoke(main, ["run", "fixed", "--config", str(config)])
    assert single.exit_code == ExitCode.THRESHOLDS, single.output
    sharded = cli.invoke(main, ["run", "fixed", "--shards", "3", "--config", str(config)])
    assert sharded.exit_code == ExitCode.THRESHOLDS, sharded.output
    one_dir, shard_dir = _run_dirs(config)

    one, merged = _results(one_dir), _results(shard_dir)
    assert one["overall"]["requests"] == merged["overall"]["requests"] == 300
    # k6 judged the single run; orch recomputed the merged one from raw points.
    k6_verdicts = _verdicts(one)
    assert {r["verdict_source"] for r in one["thresholds"]} == {"k6"}
    assert {r["verdict_source"] for r in merged["thresholds"]} == {"orch"}
    assert _verdicts(merged) == k6_verdicts
    assert False in k6_verdicts.values() and True in k6_verdicts.values()

    # The merged p95 is exact: numpy over the union of the shards' raw points.
    frames = [
        duckdb.sql(f"SELECT * FROM read_parquet('{shard_dir / 'shards' / str(i) / 'raw.parquet'}')")
        .df()
        for i in (1, 2, 3)
    ]
    points = pd.concat(frames)
    durations = points.loc[points["metric_name"] == "http_req_duration", "metric_value"]
    assert len(durations) == 300
    direct = float(np.percentile(durations.to_numpy(), 95))
    assert merged["overall"]["latency_ms"]["p95"] == pytest.approx(direct, rel=1e-9)
    row = next(
        r
        for r in merged["thresholds"]
        if r["metric"] == "http_req_duration" and r["expression"] == "p(95)<500"
    )
    assert row["measured"] == pytest.approx(direct, rel=1e-9)
    # ... and not the mean of the shards' own p95s.
    per_shard = [
        read_summary(shard_dir / "shards" / str(i) / "summary.json").metrics["http_req_duration"][
            "p(95)"
        ]
        for i in (1, 2, 3)
    ]
    assert len(per_shard) == 3

    manifest = json.loads((shard_dir / "run.json").read_text(encoding="utf-8"))
    assert manifest["outcome"] == "thresholds_failed"
    assert manifest["exit_code"] == 99
    assert manifest["files"]["raw"] == "raw.parquet"
    for i in (1, 2, 3):
        shard = shard_dir / "shards" / str(i)
        shard_manifest = json.loads((shard / "run.json").read_text(encoding="utf-8"))
        assert segment_args(i, 3)[0] in shard_manifest["command"]
        assert shard_manifest["k6_exit_code"] in (0, 99)
        assert (shard / "k6.log").is_file()
    assert (shard_dir / "report.md").is_file()

    # `orch report --merge` over the shard folders gives the same verdict and exit code.
    out = config.parent / "merged"
    merge = cli.invoke(
        main, ["report", "--merge", *(str(shard_dir / "shards" / str(i)) for i in (1, 2, 3)),
               "--out", str(out)],
    )  # fmt: skip
    assert merge.exit_code == ExitCode.THRESHOLDS, merge.output
    again = _results(out)
    assert again["overall"]["requests"] == 300
    assert _verdicts(again) == k6_verdicts
    assert again["run"]["outcome"] == "thresholds_failed"


@pytest.mark.slow
def test_sharded_run_that_holds_exits_zero(project: Callable[..., Path]) -> None:
    config = project(extra_yaml=FIXED_SCENARIOS)
    result = CliRunner().invoke(main, ["run", "fixed-ok", "--shards", "2", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (run_dir,) = _run_dirs(config)
    results = _results(run_dir)
    assert results["overall"]["requests"] == 40
    assert results["verdict"]["thresholds_ok"] is True
    assert json.loads((run_dir / "run.json").read_text())["outcome"] == "passed"


METRICS_SCRIPT = """\
import exec from 'k6/execution';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const items = new Counter('c_items');
const level = new Gauge('g_level');
const odd = new Rate('r_odd');
const value = new Trend('t_value');

export const options = {
  scenarios: { s: { executor: 'shared-iterations', vus: 3, iterations: 60 } },
  thresholds: {
    c_items: ['count==60', 'count<60', 'rate>0', 'rate<0'],
    g_level: ['value>=0', 'value<0'],
    r_odd: ['rate==0.5', 'rate>0.5', 'rate<=0.5'],
    t_value: ['avg==29.5', 'min==0', 'max==59', 'med==29.5', 'p(95)>56', 'p(95)<56.1',
              'p(90)>54', 'max!=59'],
    't_value{kind:even}': ['max==58', 'min>0'],
    'c_items{kind:odd}': ['count==30'],
  },
};

export default function () {
  const i = exec.scenario.iterationInTest;
  const kind = i % 2 ? 'odd' : 'even';
  items.add(1, { kind });
  level.add(i);
  odd.add(i % 2);
  value.add(i, { kind });
}
"""


def _k6(script: Path, out_dir: Path, extra: list[str]) -> int:
    """Run k6 on a script that sends no request, writing like a k6-operator runner pod."""
    out_dir.mkdir(parents=True)
    k6 = find_k6(None).path
    done = subprocess.run(
        [str(k6), "run", "--quiet", "--no-color", *extra, "--out",
         f"csv={out_dir}/raw.csv.gz", f"--summary-export={out_dir}/summary.json", str(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode


@pytest.mark.slow
def test_merge_recomputes_every_metric_type_like_k6(tmp_path: Path) -> None:
    script = tmp_path / "metrics.js"
    script.write_text(METRICS_SCRIPT, encoding="utf-8")
    assert _k6(script, tmp_path / "single", []) == 99
    for i in (1, 2, 3):
        assert _k6(script, tmp_path / "pods" / f"runner-{i}", segment_args(i, 3)) in (0, 99)

    k6_summary = read_summary(tmp_path / "single" / "summary.json")
    k6_verdicts = {
        (key, expr): ok
        for key, exprs in k6_summary.thresholds.items()
        for expr, ok in exprs.items()
    }
    assert len(k6_verdicts) == 20

    result = merge_runs(sorted((tmp_path / "pods").iterdir()), out_dir=tmp_path / "merged")
    assert result.exit_code == ExitCode.THRESHOLDS
    merged = _results(tmp_path / "merged")
    assert _verdicts(merged) == k6_verdicts
    measured = {(r["metric"], r["expression"]): r["measured"] for r in merged["thresholds"]}
    assert measured[("c_items", "count==60")] == 60
    assert measured[("c_items{kind:odd}", "count==30")] == 30
    assert measured[("r_odd", "rate==0.5")] == 0.5
    assert measured[("t_value", "p(95)>56")] == pytest.approx(np.percentile(np.arange(60), 95))
    assert measured[("t_value{kind:even}", "max==58")] == 58
    # A custom counter's rate is its count over the test's duration (the longest pod's).
    duration = merged["run"]["duration_s"]
    longest = max(
        read_summary(p / "summary.json").duration_s or 0 for p in (tmp_path / "pods").iterdir()
    )
    assert duration == pytest.approx(longest, rel=1e-9)  # results.json keeps 10 digits
    assert measured[("c_items", "rate>0")] == pytest.approx(60 / duration, rel=1e-6)

    # Raw k6 CSV from the pods is kept as it was; the merge wrote one Parquet file.
    assert (tmp_path / "pods" / "runner-1" / "raw.csv.gz").is_file()
    assert (tmp_path / "merged" / "raw.parquet").is_file()
    assert json.loads((tmp_path / "merged" / "run.json").read_text())["exit_code"] == 99


def test_combined_outcome_order() -> None:
    assert combined_outcome(["passed", "interrupted"], False) == (
        "interrupted",
        ExitCode.INTERRUPTED,
    )
    assert combined_outcome(["passed", "k6_error"], True) == ("k6_error", ExitCode.K6_ERROR)
    # A runner's own verdict over its segment does not count; the merged one does.
    assert combined_outcome(["thresholds_failed"], True) == ("passed", ExitCode.OK)
    assert combined_outcome([None], False) == ("thresholds_failed", ExitCode.THRESHOLDS)


def test_merge_refuses_what_it_cannot_merge(tmp_path: Path) -> None:
    cli = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli.invoke(main, ["report", "--merge", str(empty)])
    assert result.exit_code == ExitCode.CONFIG
    assert "holds no raw k6 output" in result.output
    ndjson = tmp_path / "raw.json"
    ndjson.write_text('{"type":"Point","metric":"vus","data":{"time":"2026-01-01T00:00:00Z",'
                      '"value":1,"tags":null}}\n', encoding="utf-8")  # fmt: skip
    result = cli.invoke(main, ["report", "--merge", str(ndjson), "--out", str(tmp_path / "o")])
    assert result.exit_code == ExitCode.CONFIG
    assert "--out csv" in result.output
    result = cli.invoke(main, ["report", "--merge"])
    assert result.exit_code == ExitCode.CONFIG


def test_shards_and_k8s_options_are_checked(project: Callable[..., Path]) -> None:
    config = project(extra_yaml=FIXED_SCENARIOS)
    cli = CliRunner()
    result = cli.invoke(main, ["run", "fixed", "--parallelism", "4", "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    result = cli.invoke(main, ["run", "fixed", "--shards", "0", "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    assert "--shards must be between 1 and" in result.output

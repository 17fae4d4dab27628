"""Baselines: made from a real k6 run's folder, read back, resolved for a run, refused when
they are not baselines, and what `orch run --against-baseline` concludes with one."""
# ruff: noqa: F811 - the session's k6 runs are a fixture imported from test_report

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from k6_outputs import K6Run, k6_binary
from scenario_project import make_project
from test_report import make_run_dir, runs  # noqa: F401
from test_results_model import reading_error, write_run_folder

from orchestrator.config import RegressionSettings, load_config
from orchestrator.core import ConfigError, ExitCode, Outcome
from orchestrator.regression.baseline import (
    BASELINE_KIND,
    baseline_path,
    baseline_side,
    conclude_run,
    load_side,
    make_baseline,
    quantile_sample,
    read_baseline,
    resolve_baseline_file,
    set_baseline,
)
from orchestrator.regression.compare import OVERALL, latency_samples
from orchestrator.results import RunFolder

needs_k6 = pytest.mark.skipif(k6_binary() is None, reason="k6 is not on PATH")


def conclude(
    run_dir: Path, code: int, baseline: Path | None, against: bool = True
) -> tuple[int, list[str]]:
    """What `orch run` concludes for a run that exited ``code``: the final code, and what
    it said."""
    said: list[str] = []
    final = conclude_run(run_dir, code, settings=RegressionSettings(), baseline=baseline,
                         against_baseline=against, echo=said.append)  # fmt: skip
    return final, said


def test_a_quantile_sample_keeps_the_shape_in_at_most_size_values() -> None:
    values = np.arange(1, 10_001, dtype=float)  # 1..10000 ms
    sample = quantile_sample(values, size=100)
    assert len(sample) == 100 and sample == sorted(sample)
    assert sample[0] == pytest.approx(50.995) and sample[-1] == pytest.approx(9950.005)
    assert np.median(sample) == pytest.approx(np.median(values), rel=1e-3)
    # fewer values than the size: as many quantiles, at (i + 0.5) / k, in any input order
    assert quantile_sample(np.array([3.0, 1.0, 2.0])) == [1.333, 2.0, 2.667]
    assert quantile_sample(np.array([])) == []
    assert quantile_sample(np.array([1.23456789])) == [1.235]  # microseconds


@pytest.mark.slow
@needs_k6
def test_a_baseline_keeps_figures_and_quantiles_of_the_run_and_reads_back(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    out = set_baseline(run_dir, tmp_path / "baselines" / "b.json")
    text = out.read_text(encoding="utf-8")
    data = read_baseline(out)
    assert (data["kind"], data["schema_version"]) == (BASELINE_KIND, 1)
    assert (data["scenario"], data["environment"], data["source_run"]) == (
        "test-normal", "local", "run",
    )  # fmt: skip
    results = RunFolder(run_dir).read_results()
    assert results.overall is not None
    assert data["overall"]["requests"] == results.overall.requests == 1200
    assert data["overall"]["latency_ms"]["p95"] == results.overall.latency_ms.p95
    assert {e["name"] for e in data["endpoints"]} == {e.name for e in results.endpoints}
    # one quantile list per endpoint, from the raw points, on one line each
    raw = latency_samples(run_dir, results)
    quantiles = data["latency_sample"]["quantiles"]
    assert set(quantiles) == set(raw) and {OVERALL, "ok", "fail", "slow"} < set(quantiles)
    assert quantiles[OVERALL] == quantile_sample(raw[OVERALL])
    assert len(quantiles["ok"]) == 300 and len(quantiles[OVERALL]) == 500
    assert not [line for line in text.splitlines() if line.strip() in ("[", "]")]
    # the target's URL appears only as the name of the untagged endpoint (the documented
    # fallback: its url tag), never as the run's base URL
    untagged = [name for name in quantiles if name.startswith("http://127.0.0.1:")]
    assert [u.rsplit("/", 2)[-2:] for u in untagged] == [["api", "plain"]]
    assert "127.0.0.1" not in text.replace(untagged[0], "")

    side = load_side(out)
    assert (side.kind, side.scenario, side.sample_kind) == ("baseline", "test-normal", "quantiles")
    assert side.label == "baseline b.json (from run)"
    assert side.figures[OVERALL]["requests"] == 1200
    assert np.array_equal(side.samples["ok"], np.asarray(quantiles["ok"]))
    assert load_side(run_dir).kind == "run"


@pytest.mark.slow
@needs_k6
def test_a_run_checked_against_its_own_baseline_has_not_regressed(
    runs: dict[str, K6Run], tmp_path: Path
) -> None:
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    baseline = set_baseline(run_dir, tmp_path / "b.json")
    code, said = conclude(run_dir, ExitCode.OK, baseline)
    assert code == ExitCode.OK
    assert said == [f"baseline: no regression against {baseline}"]
    folder = RunFolder(run_dir)
    assert folder.compare_json_path.is_file() and (run_dir / "compare.md").is_file()
    assert "## Against the baseline:" in folder.report_path.read_text(encoding="utf-8")
    manifest = folder.read_manifest()
    assert manifest is not None and manifest.baseline is not None
    assert manifest.baseline["regressed"] is False and manifest.baseline["file"] == str(baseline)
    assert folder.junit_path.is_file()


@pytest.mark.parametrize(
    ("code", "baseline", "against", "said"),
    [
        (ExitCode.K6_ERROR, "b.json", True, ["baseline: not compared, the run did not complete"]),
        (ExitCode.INTERRUPTED, "b.json", True,
         ["baseline: not compared, the run did not complete"]),
        (ExitCode.OK, None, True,
         ["baseline: none yet for this scenario and environment; nothing to compare (set one "
          "with `orch baseline set RUN_DIR`)"]),
        (ExitCode.THRESHOLDS, "b.json", False, []),
    ],
)  # fmt: skip
def test_what_a_run_concludes_without_comparing(
    tmp_path: Path, code: ExitCode, baseline: str | None, against: bool, said: list[str]
) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    final, echoed = conclude(run_dir, code, tmp_path / baseline if baseline else None, against)
    assert final == code and echoed == said
    assert RunFolder(run_dir).junit_path.is_file()  # junit.xml is written either way
    assert not RunFolder(run_dir).compare_json_path.exists()


def test_a_baseline_that_cannot_be_compared_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    broken = tmp_path / "b.json"
    broken.write_text("{}", encoding="utf-8")
    final, echoed = conclude(run_dir, ExitCode.OK, broken)
    assert final == ExitCode.OK
    assert echoed == [
        f"warning: no comparison with the baseline: {broken} is not a baseline file; make one "
        "with `orch baseline set RUN_DIR`"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read the baseline {path}: [Errno 2] No such file or directory"),
        ("not json", "cannot read the baseline {path}: Expecting value"),
        ("[]", "{path} is not a baseline file; make one with `orch baseline set RUN_DIR`"),
        ('{"kind": "orch-results"}', "{path} is not a baseline file"),
        ('{"kind": "orch-baseline"}', "{path} has baseline schema_version None; this orch reads "
                                      "1: set it again with `orch baseline set`"),
        ('{"kind": "orch-baseline", "schema_version": 2}', "{path} has baseline schema_version 2"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_baseline_is_refused(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "b.json"
    assert reading_error(path, content, read_baseline).startswith(problem.format(path=path))


def test_load_side_of_nothing_names_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; pass a run folder or a baseline file"):
        load_side(tmp_path / "missing")


@pytest.mark.parametrize(
    ("folder", "problem"),
    [
        ({"scenario": None}, "does not say which scenario and environment it ran (run.json); "
                             "only folders written by `orch run` can become a baseline"),
        ({"environment": None}, "does not say which scenario and environment it ran"),
        ({"outcome": Outcome.INTERRUPTED}, "ended as 'interrupted'; a baseline must be a complete "
                                           "run (passed, or thresholds_failed)"),
        ({"outcome": None}, "ended as None; a baseline must be a complete run"),
    ],
)  # fmt: skip
def test_only_a_complete_run_of_a_known_scenario_becomes_a_baseline(
    tmp_path: Path, folder: dict[str, Any], problem: str
) -> None:
    run_dir = write_run_folder(tmp_path / "run", **folder)
    with pytest.raises(ConfigError) as caught:
        set_baseline(run_dir, tmp_path / "b.json")
    assert caught.value.message.startswith(f"{run_dir} {problem}")
    assert not (tmp_path / "b.json").exists()


def test_a_run_without_raw_points_has_no_figures_to_keep(tmp_path: Path) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    doc = json.loads(RunFolder(run_dir).results_path.read_text(encoding="utf-8"))
    doc["overall"] = None
    RunFolder(run_dir).results_path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="has no raw points, so no figures to keep"):
        make_baseline(run_dir)


def test_the_baseline_a_run_is_checked_against(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path / "project"))
    default = baseline_path(config, "email-queue", "local")
    assert default == config.root / "baselines" / "email-queue_local.json"
    # no default file yet: nothing to check against; an explicit one must exist
    assert resolve_baseline_file(config, "email-queue", "local", None) is None
    with pytest.raises(ConfigError) as missing:
        resolve_baseline_file(config, "email-queue", "local", tmp_path / "nope.json")
    assert missing.value.message == (
        f"the baseline file {tmp_path / 'nope.json'} does not exist; make one with `orch "
        "baseline set RUN_DIR --out FILE` or leave out --baseline"
    )
    default.parent.mkdir()
    default.write_text(json.dumps({"kind": BASELINE_KIND, "schema_version": 1,
                                   "scenario": "email-queue"}))  # fmt: skip
    assert resolve_baseline_file(config, "email-queue", "local", None) == default
    with pytest.raises(ConfigError) as other:
        resolve_baseline_file(config, "linkedin-scrape", "local", default)
    assert other.value.message == (
        f"the baseline {default} is of scenario 'email-queue', not 'linkedin-scrape'; pass the "
        "baseline of this scenario"
    )


def test_a_baseline_document_as_a_side_skips_what_is_not_an_endpoint() -> None:
    data = {
        "kind": BASELINE_KIND, "schema_version": 1, "scenario": "s", "environment": "local",
        "source_run": "r1", "overall": {"name": "all", "requests": 10},
        "endpoints": [{"name": "a", "requests": 10}, {"requests": 1}, "junk"],
        "latency_sample": {"quantiles": {"all": [1, 2], "a": [1.5]}},
    }  # fmt: skip
    side = baseline_side(data, label="b.json")
    assert set(side.figures) == {OVERALL, "a"}
    assert side.samples["a"].dtype == float and list(side.samples["all"]) == [1.0, 2.0]
    assert side.profile is None and side.started_at is None

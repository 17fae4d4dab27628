"""The trend of a scenario across run folders: which runs count, in which order, and what
the table and chart say of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import _png_size
from test_results_model import write_run_folder

from orchestrator.core import ConfigError, Outcome
from orchestrator.regression.history import collect_history, render_markdown, write_history
from orchestrator.results import RunFolder

P95_BLUE, THROUGHPUT_GREEN, ERROR_RED = (31, 119, 180), (44, 160, 44), (214, 39, 40)
GREY_RING = (136, 136, 136)


def colours(png: Path) -> set[tuple[int, int, int]]:
    """The RGB colours a PNG shows (read back with matplotlib)."""
    from matplotlib.image import imread

    pixels = (imread(png)[:, :, :3] * 255).round().astype(int).reshape(-1, 3)
    return {(int(r), int(g), int(b)) for r, g, b in set(map(tuple, pixels))}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Run folders of two scenarios, two environments and two profiles, made out of order,
    some nested as downloaded CI artifacts are."""
    root = tmp_path / "results"
    write_run_folder(root / "r3", started_at="2026-01-03T10:00:00.000Z", p95=150.0)
    write_run_folder(root / "r1", started_at="2026-01-01T10:00:00.000Z", p95=100.0)
    write_run_folder(root / "ci" / "job-7" / "r2", started_at="2026-01-02T10:00:00.000Z",
                     p95=120.0, outcome=Outcome.THRESHOLDS_FAILED)  # fmt: skip
    write_run_folder(root / "r4", started_at="2026-01-04T10:00:00.000Z", p95=900.0,
                     outcome=Outcome.INTERRUPTED)  # fmt: skip
    write_run_folder(root / "r5", started_at="2026-01-05T10:00:00.000Z", p95=135.0)
    write_run_folder(root / "staging-1", environment="staging", started_at="2026-01-02T00:00:00Z")
    write_run_folder(root / "load-1", profile="load", started_at="2026-01-02T00:00:00Z")
    write_run_folder(root / "other-1", scenario="signup")
    return root


def test_runs_of_one_scenario_oldest_first(archive: Path) -> None:
    points = collect_history(archive, "checkout", "local", "smoke")
    assert [p.folder for p in points] == ["r1", "r2", "r3", "r4", "r5"]
    assert [p.p95_ms for p in points] == [100.0, 120.0, 150.0, 900.0, 135.0]
    assert points[1].outcome is Outcome.THRESHOLDS_FAILED and points[1].judged
    assert points[3].outcome is Outcome.INTERRUPTED and not points[3].judged
    first = points[0]
    assert (first.requests, first.throughput_rps, first.error_rate) == (1000, 100.0, 0.0)
    assert (first.p50_ms, first.p99_ms) == (50.0, 150.0)


def test_environment_and_profile_narrow_the_history(archive: Path) -> None:
    assert len(collect_history(archive, "checkout")) == 7
    assert [p.folder for p in collect_history(archive, "checkout", "staging")] == ["staging-1"]
    assert [p.folder for p in collect_history(archive, "checkout", None, "load")] == ["load-1"]
    assert collect_history(archive, "checkout", "production") == []
    assert [p.folder for p in collect_history(archive, "signup")] == ["other-1"]


def test_a_run_copied_twice_counts_once_and_unreadable_files_are_passed_over(
    archive: Path,
) -> None:
    shutil.copytree(archive / "r1", archive / "backup" / "r1")
    broken = archive / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{", encoding="utf-8")
    newer = write_run_folder(archive / "newer")
    RunFolder(newer).results_path.write_text('{"schema_version": 2}', encoding="utf-8")
    folders = [p.folder for p in collect_history(archive, "checkout", "local", "smoke")]
    assert folders == ["r1", "r2", "r3", "r4", "r5"]


def test_a_run_json_saying_it_did_not_complete_wins_over_results_json(archive: Path) -> None:
    # results.json was written while the run still counted as passed; run.json knows better
    manifest = RunFolder(archive / "r5").read_manifest()
    assert manifest is not None
    manifest.outcome = Outcome.CRASHED
    manifest.save(archive / "r5")
    last = collect_history(archive, "checkout", "local", "smoke")[-1]
    assert last.outcome is Outcome.CRASHED and not last.judged


def test_not_a_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder of run folders; pass one with --from"):
        collect_history(tmp_path / "nowhere", "checkout")


def test_the_table_sets_each_p95_against_the_last_judged_one(archive: Path) -> None:
    points = collect_history(archive, "checkout", "local", "smoke")
    text = render_markdown(points, "checkout", "local", chart="history.png")
    lines = text.splitlines()
    assert lines[0] == "# History of checkout in local"
    assert "5 run(s), oldest first." in lines
    assert lines[4].startswith("1 run(s) did not complete (outcome marked *not judged*)")
    rows = {line.split(" | ")[1]: line.split(" | ") for line in lines if line.startswith("| 2026")}
    assert rows["r1"][10] == "—"  # the first run has nothing before it
    assert rows["r2"][10] == "+20.0 %"
    assert rows["r3"][10] == "+25.0 %"
    assert rows["r4"][4] == "interrupted (not judged)" and rows["r4"][10] == "—"
    assert rows["r5"][10] == "-10.0 %"  # against r3: the interrupted run is left out
    assert rows["r1"][0] == "| 2026-01-01 10:00:00"
    assert rows["r2"][4] == "thresholds_failed"
    assert rows["r1"][5:8] == ["1,000", "100.0", "0.00 %"]
    assert lines[-1] == "![p95, throughput and error rate across runs](history.png)"


@pytest.mark.slow
def test_an_empty_history_still_renders(tmp_path: Path) -> None:
    text = render_markdown([], "checkout", None)
    assert text.startswith("# History of checkout\n\n0 run(s), oldest first.\n")
    assert "not judged" not in text and "![" not in text
    chart, md = write_history([], tmp_path / "out", "checkout", None)
    assert _png_size(chart) == (1200, 960)
    assert not {P95_BLUE, THROUGHPUT_GREEN, ERROR_RED} & colours(chart)  # "no data" only
    assert md.read_text(encoding="utf-8").endswith("(history.png)\n")


@pytest.mark.slow
def test_write_history_writes_the_chart_and_the_table(archive: Path, tmp_path: Path) -> None:
    points = collect_history(archive, "checkout", "local")
    chart, md = write_history(points, tmp_path / "out", "checkout", "local")
    assert (chart.name, md.name) == ("history.png", "history.md")
    assert _png_size(chart) == (1200, 960)  # 10 x 8 inches at 120 dpi
    drawn = colours(chart)
    assert {P95_BLUE, THROUGHPUT_GREEN, ERROR_RED} <= drawn  # the three lines are drawn
    assert GREY_RING in drawn  # and the interrupted run as a hollow grey marker
    assert md.read_text(encoding="utf-8") == render_markdown(
        points, "checkout", "local", chart="history.png"
    )

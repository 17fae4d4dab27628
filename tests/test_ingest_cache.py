"""The per-user figures cache: `orch report` on a folder it measured before reads no raw
points again, and gives the same files as a fresh measurement."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from k6_outputs import K6Run, real_runs

from orchestrator.cli import main
from orchestrator.results import ingest_cache
from orchestrator.results.ingest import RawAggregates


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, K6Run]:
    """The real k6 runs the results tests share (made once per session)."""
    return real_runs(tmp_path_factory.getbasetemp() / "k6-runs")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache turned on, in a folder of this test; returns where its entries go."""
    monkeypatch.setenv(ingest_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "figures"


class Scans:
    """Counts the raw scans; ``refuse`` makes one fail the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.refuse = False
        real = ingest_cache.ingest_raw

        def counted(*args: Any, **kwargs: Any) -> RawAggregates:
            assert not self.refuse, "the raw file was scanned again"
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(ingest_cache, "ingest_raw", counted)


def report(*args: str) -> None:
    result = CliRunner().invoke(main, ["report", *args])
    assert result.exit_code == 0, result.output


def folder_from(run: K6Run, dest: Path) -> Path:
    report("--from", str(run.csv), "--summary", str(run.summary_export), "--out", str(dest))
    return dest


def files(folder: Path) -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in folder.iterdir()
        if p.is_file() and p.suffix in (".json", ".md", ".html")
    }


def same_figures(a: dict[str, str], b: dict[str, str]) -> bool:
    """The same files, results.json's numbers within 1e-9 of each other: DuckDB's parallel
    sums differ in their last bits from one measurement to the next."""

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, int | float) and isinstance(y, int | float) and (
                math.isclose(x, y, rel_tol=1e-9))  # fmt: skip
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(i, j) for i, j in zip(x, y, strict=True))
        return bool(x == y)

    others = {k for k in a if k != "results.json"}
    return (
        a.keys() == b.keys()
        and all(a[k] == b[k] for k in others)
        and close(json.loads(a["results.json"]), json.loads(b["results.json"]))
    )


def test_a_folder_measured_before_is_reported_from_the_cache_with_the_same_files(
    runs: dict[str, K6Run], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch)
    folder = folder_from(runs["normal"], tmp_path / "run")
    assert scans.count == 1 and len(list(cache.glob("*.json"))) == 1
    measured = files(folder)
    scans.refuse = True
    report(str(folder))
    assert files(folder) == measured
    monkeypatch.setenv(ingest_cache.CACHE_ENV, "off")
    scans.refuse = False
    report(str(folder))
    assert scans.count == 2
    assert same_figures(files(folder), measured)


def test_a_changed_raw_file_or_threshold_is_measured_again(
    runs: dict[str, K6Run], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch)
    folder = folder_from(runs["normal"], tmp_path / "run")
    report(str(folder))
    assert scans.count == 1
    run_json = folder / "run.json"
    manifest = json.loads(run_json.read_text())
    manifest["thresholds"] = {"http_req_duration": ["p(99)<1000"]}
    run_json.write_text(json.dumps(manifest))
    report(str(folder))
    assert scans.count == 2
    raw = folder / "raw.csv"
    shutil.copyfile(folder_from(runs["failing"], tmp_path / "other") / "raw.csv", raw)
    scans.count = 0
    report(str(folder))
    assert scans.count == 1
    failing = json.loads((tmp_path / "other" / "results.json").read_text())
    now = json.loads((folder / "results.json").read_text())
    assert now["overall"]["requests"] == failing["overall"]["requests"]


def test_an_entry_that_does_not_parse_is_dropped_and_measured_again(
    runs: dict[str, K6Run], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = Scans(monkeypatch)
    folder = folder_from(runs["normal"], tmp_path / "run")
    measured = files(folder)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"overall": {"requests": 1}}')  # someone's edit, or half a file
    report(str(folder))
    assert scans.count == 2
    assert same_figures(files(folder), measured)
    assert json.loads(entry.read_text())["overall"]["requests"] > 1  # written again


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_a_cache_folder_others_can_write_is_not_used(
    runs: dict[str, K6Run], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    scans = Scans(monkeypatch)
    folder = folder_from(runs["normal"], tmp_path / "run")
    report(str(folder))
    assert scans.count == 2
    assert list(cache.iterdir()) == []


def test_a_cache_turned_off_writes_nothing(
    runs: dict[str, K6Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ingest_cache.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder_from(runs["normal"], tmp_path / "run")
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_the_default_folder_is_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ingest_cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ingest_cache.cache_dir() == tmp_path / "xdg" / "orch" / "figures"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ingest_cache.cache_dir() == tmp_path / "home" / ".cache" / "orch" / "figures"


def test_figures_that_do_not_read_back_equal_are_not_kept(
    runs: dict[str, K6Run], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_cache.ingest_raw

    def with_nan(*args: Any, **kwargs: Any) -> RawAggregates:
        agg = real(*args, **kwargs)
        agg.measured[("http_req_duration", "avg<1")] = math.nan  # JSON cannot hold it
        return agg

    monkeypatch.setattr(ingest_cache, "ingest_raw", with_nan)
    raw = runs["normal"].csv
    agg = ingest_cache.cached_ingest(raw)
    assert math.isnan(agg.measured[("http_req_duration", "avg<1")])
    assert not list(cache.glob("*.json"))


def test_the_oldest_entries_beyond_the_limit_are_removed(
    runs: dict[str, K6Run], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_cache, "MAX_ENTRIES", 2)
    raw = runs["normal"].csv
    for duration in (1.0, 2.0, 3.0):
        ingest_cache.cached_ingest(raw, duration_s=duration)
    assert len(list(cache.glob("*.json"))) == 2
    scans = Scans(monkeypatch)
    ingest_cache.cached_ingest(raw, duration_s=3.0)
    ingest_cache.cached_ingest(raw, duration_s=2.0)
    assert scans.count == 0
    ingest_cache.cached_ingest(raw, duration_s=1.0)
    assert scans.count == 1


def test_entries_are_private_to_the_user(runs: dict[str, K6Run], cache: Path) -> None:
    ingest_cache.cached_ingest(runs["normal"].csv)
    (entry,) = cache.glob("*.json")
    if os.name == "posix":
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
        assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0

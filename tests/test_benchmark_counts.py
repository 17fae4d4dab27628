"""The benchmarks count only the run they just made: a failed arm is an error, never the
previous arm's figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks.peer import requests_of_k6, requests_of_new_run


def _run_folder(results: Path, name: str, requests: int) -> Path:
    folder = results / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"overall": {"requests": requests}}))
    return folder


def test_the_new_run_folder_is_counted_not_an_older_one(tmp_path: Path) -> None:
    results = tmp_path / "results"
    before = {_run_folder(results, "2026-12-06T01-00-00", 111)}
    _run_folder(results, "2026-12-06T00-00-00", 222)  # sorts first, yet it is the new one
    assert requests_of_new_run(results, before) == 222


@pytest.mark.parametrize("made_before", [True, False])
def test_an_orch_run_that_made_no_folder_is_an_error(tmp_path: Path, made_before: bool) -> None:
    results = tmp_path / "results"
    before = {_run_folder(results, "2026-12-06T01-00-00", 111)} if made_before else set()
    with pytest.raises(SystemExit, match="found 0: the orch run failed"):
        requests_of_new_run(results, before)


def test_a_k6_run_that_fails_does_not_count_the_previous_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"metrics": {"http_reqs": {"count": 999}}}))
    failing = [sys.executable, "-c", "raise SystemExit(107)"]
    with pytest.raises(SystemExit, match=r"k6 wrote no summary\.json"):
        requests_of_k6(failing, summary, {})

"""junit.xml: parsed back as XML, its suites, counts and messages follow the run folder."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from test_results_model import threshold, write_run_folder

from orchestrator.core import Outcome
from orchestrator.results import RunFolder, write_junit
from orchestrator.results.model import CheckFigures


def parsed(run_dir: Path) -> ET.Element:
    """junit.xml written for the folder, read back by a real XML parser."""
    path = write_junit(run_dir)
    assert path == run_dir / "junit.xml"
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.parse(path).getroot()


def counts(element: ET.Element) -> tuple[int, int, int, int]:
    return tuple(int(element.get(k) or -1) for k in ("tests", "failures", "errors", "skipped"))  # type: ignore[return-value]


def suite(root: ET.Element, kind: str) -> ET.Element:
    found = [s for s in root.iter("testsuite") if s.get("name", "").endswith(f".{kind}")]
    assert len(found) == 1, [s.get("name") for s in root]
    return found[0]


def test_a_failed_threshold_a_held_one_an_unjudged_one_and_a_failing_check(tmp_path: Path) -> None:
    run_dir = write_run_folder(
        tmp_path / "run",
        outcome=Outcome.THRESHOLDS_FAILED,
        thresholds=[
            threshold("http_req_duration", "p(95)<500", True, 120.0),
            threshold("http_req_duration{name:api}", "p(99)<100", False, 180.0),
            threshold("http_req_duration{name:other}", "p(95)<100", None, None),
        ],
        checks=[
            CheckFigures(name="status 200", passes=98, fails=2, pass_rate=0.98),
            CheckFigures(name="body has id", passes=100, fails=0, pass_rate=1.0),
        ],
    )
    root = parsed(run_dir)
    assert root.tag == "testsuites" and root.get("name") == "orch run"
    assert [s.get("name") for s in root] == [
        "orch.checkout.local.run", "orch.checkout.local.thresholds", "orch.checkout.local.checks",
    ]  # fmt: skip
    # the run completed: its own case passes
    run_case = suite(root, "run").find("testcase")
    assert run_case is not None and run_case.get("time") == "10.000" and len(run_case) == 0

    thresholds = suite(root, "thresholds")
    assert counts(thresholds) == (3, 1, 0, 1)
    held, crossed, unjudged = thresholds.findall("testcase")
    assert held.get("name") == "http_req_duration: p(95)<500"
    assert held.findtext("system-out") == "held: measured 120.00 ms"
    failure = crossed.find("failure")
    assert failure is not None and failure.get("type") == "threshold"
    assert failure.get("message") == "crossed: p(99)<100 (measured 180.00 ms)"
    assert json.loads(failure.text or "")["metric"] == "http_req_duration{name:api}"
    skipped = unjudged.find("skipped")
    assert skipped is not None and skipped.get("message") == "not judged (measured not measured)"

    checks = suite(root, "checks")
    assert counts(checks) == (2, 1, 0, 0)
    failing = checks.find("testcase/failure")
    assert failing is not None
    assert failing.get("message") == "2 of 100 failed (pass rate 98.00 %)"
    assert checks.findall("testcase")[1].findtext("system-out") == "100 passed"
    assert counts(root) == (6, 2, 0, 1)  # the totals add the suites up


def test_a_run_that_did_not_complete_is_an_error_with_its_notes(tmp_path: Path) -> None:
    run_dir = write_run_folder(
        tmp_path / "run",
        outcome=Outcome.INTERRUPTED,
        manifest={"notes": ["stopped by Ctrl-C", "raw.csv kept"], "k6_exit_code": 105},
    )
    root = parsed(run_dir)
    error = suite(root, "run").find("testcase/error")
    assert error is not None and error.get("type") == "interrupted"
    assert error.get("message") == ("the run ended as 'interrupted' (k6 exit 105); see k6.log")
    assert error.text == "stopped by Ctrl-C\nraw.csv kept"
    assert counts(root)[2] == 1


def test_a_folder_without_results_or_run_json_is_still_valid_junit(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    root = parsed(run_dir)
    assert [s.get("name") for s in root] == ["orch.run.-.run"]
    errors = root.findall("testsuite/testcase/error")
    assert [e.get("type") for e in errors] == ["None", "no-results"]
    assert errors[0].get("message") == "the run ended as None (k6 exit None); see k6.log"
    assert errors[1].get("message") == (
        f"no readable results.json; rebuild it with `orch report {run_dir}`"
    )
    assert counts(root) == (1, 0, 1, 0)  # one case in error, for two reasons


def test_an_unreadable_results_json_is_named_not_fatal(tmp_path: Path) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    RunFolder(run_dir).results_path.write_text('{"schema_version": 9}', encoding="utf-8")
    root = parsed(run_dir)
    assert [e.get("type") for e in root.iter("error")] == ["no-results"]
    assert root.find("testsuite/testcase") is not None


def test_a_comparison_adds_one_case_per_endpoint(tmp_path: Path) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    compare = {
        "a": {"label": "baseline checkout_local.json"},
        "rows": [
            {"name": "all", "regressed": False, "reasons": []},
            {"name": "api", "regressed": True,
             "reasons": ["p95 +40.0 % (120 → 168 ms)", "error rate +1.2 points"]},
        ],
    }  # fmt: skip
    RunFolder(run_dir).compare_json_path.write_text(json.dumps(compare), encoding="utf-8")
    regression = suite(parsed(run_dir), "regression")
    assert counts(regression) == (2, 1, 0, 0)
    ok, regressed = regression.findall("testcase")
    assert ok.get("name") == "all against baseline checkout_local.json"
    assert ok.findtext("system-out") == "ok"
    failure = regressed.find("failure")
    assert failure is not None and failure.get("type") == "regression"
    assert failure.get("message") == "p95 +40.0 % (120 → 168 ms); error rate +1.2 points"


def test_names_with_markup_characters_survive_the_round_trip(tmp_path: Path) -> None:
    name = 'status is <200> & "ok"'
    run_dir = write_run_folder(
        tmp_path / "run", checks=[CheckFigures(name=name, passes=1, fails=0, pass_rate=1.0)]
    )
    case = suite(parsed(run_dir), "checks").find("testcase")
    assert case is not None and case.get("name") == name


def test_junit_is_rewritten_not_appended(tmp_path: Path) -> None:
    run_dir = write_run_folder(tmp_path / "run")
    first = parsed(run_dir)
    write_run_folder(run_dir, outcome=Outcome.CRASHED)
    second = parsed(run_dir)
    assert counts(first)[2] == 0 and counts(second)[2] == 1
    assert len(second.findall("testsuite")) == len(first.findall("testsuite"))

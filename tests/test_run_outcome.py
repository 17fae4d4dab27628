"""How a run's end becomes its outcome, exit code and verdict line, without running k6.

``classify`` and ``record_outcome`` turn how k6 ended into run.json's outcome and orch's
exit code; ``not_judged_*`` give the reason and code of a run that cannot be judged;
``verdict_line`` is the line a person reads. Each is checked against what the README's
"Exit codes" section promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.config import Redactor
from orchestrator.core import ExitCode, Outcome, not_judged_exit_code, not_judged_reason
from orchestrator.execution import K6Outcome
from orchestrator.execution.lifecycle import BlockedConnections, classify, record_outcome
from orchestrator.results import RunManifest, verdict_line

# ------------------------------------------------------------------ classify


@pytest.mark.parametrize(
    ("ended", "expected"),
    [
        pytest.param(K6Outcome(0, False), (Outcome.PASSED, ExitCode.OK), id="exit-0"),
        pytest.param(
            K6Outcome(99, False), (Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS), id="exit-99"
        ),
        pytest.param(K6Outcome(107, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR), id="exit-107"),
        pytest.param(K6Outcome(1, False), (Outcome.K6_ERROR, ExitCode.K6_ERROR), id="exit-1"),
        pytest.param(
            K6Outcome(None, False, killed_by_signal=9),
            (Outcome.CRASHED, ExitCode.K6_ERROR),
            id="killed",
        ),
        pytest.param(
            K6Outcome(105, False), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED), id="k6-own-105"
        ),
        pytest.param(K6Outcome(0, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED), id="ctrl-c"),
        pytest.param(
            K6Outcome(None, True), (Outcome.INTERRUPTED, ExitCode.INTERRUPTED), id="ctrl-c-killed"
        ),
        pytest.param(
            K6Outcome(99, True, io_error="No space left on device"),
            (Outcome.IO_ERROR, ExitCode.SETUP),
            id="io-error-first",
        ),
    ],
)
def test_classify_maps_how_k6_ended(ended: K6Outcome, expected: tuple[Outcome, ExitCode]) -> None:
    assert classify(ended) == expected


# ------------------------------------------------------------------ record_outcome


def blocked_once(line: str) -> BlockedConnections:
    blocked = BlockedConnections()
    blocked.see("an ordinary k6 line")
    blocked.see(line)
    return blocked


BLOCKED_LINE = (
    'level=warning msg="Request Failed" error="dial: IP (10.0.0.7) is in a blacklisted range '
    '(10.0.0.0/8)" url=https://hook.example/tok-1234-secret'
)


def test_record_outcome_writes_k6s_end_into_the_manifest() -> None:
    manifest = RunManifest.start(scenario="s")
    ended = K6Outcome(99, False, command=["k6", "run", "-e", "KEY=tok-1234-secret", "s.js"],
                      resources={"cpu_avg_pct": 12.5})  # fmt: skip
    code = record_outcome(manifest, ended, Redactor(["tok-1234-secret"]))
    assert code == ExitCode.THRESHOLDS
    assert (manifest.outcome, manifest.exit_code) == (Outcome.THRESHOLDS_FAILED, 99)
    assert (manifest.k6_exit_code, manifest.k6_signal) == (99, None)
    assert manifest.command == ["k6", "run", "-e", "KEY=***", "s.js"]
    assert manifest.load_generator == {"cpu_avg_pct": 12.5}
    assert manifest.notes == []


def test_a_refused_connection_makes_a_passing_run_refused() -> None:
    manifest = RunManifest.start()
    blocked = blocked_once(BLOCKED_LINE)
    assert blocked.count == 1
    code = record_outcome(manifest, K6Outcome(0, False), Redactor(["tok-1234-secret"]), blocked)
    assert code == ExitCode.REFUSED
    assert (manifest.outcome, manifest.exit_code) == (Outcome.REFUSED, 6)
    (note,) = manifest.notes
    assert note.startswith("k6 refused 1 connection(s) outside the allow-list")
    assert "10.0.0.7" in note and "tok-1234-secret" not in note and "***" in note


def test_an_interrupted_run_stays_interrupted_despite_refusals() -> None:
    manifest = RunManifest.start()
    code = record_outcome(manifest, K6Outcome(None, True), Redactor([]), blocked_once(BLOCKED_LINE))
    assert code == ExitCode.INTERRUPTED and manifest.outcome == Outcome.INTERRUPTED
    assert manifest.notes == []


def test_no_refusal_without_a_blocked_marker() -> None:
    blocked = BlockedConnections()
    blocked.see('level=warning msg="Request Failed" error="connection refused"')
    manifest = RunManifest.start()
    assert record_outcome(manifest, K6Outcome(0, False), Redactor([]), blocked) == ExitCode.OK
    assert manifest.outcome == Outcome.PASSED


@pytest.mark.parametrize(
    ("k6_exit", "expected"),
    [
        (0, (Outcome.TARGET_LOST, ExitCode.SETUP)),
        (99, (Outcome.TARGET_LOST, ExitCode.SETUP)),
        (107, (Outcome.K6_ERROR, ExitCode.K6_ERROR)),  # a k6 error stays one
    ],
)
def test_a_lost_target_overrides_only_a_judged_end(
    k6_exit: int, expected: tuple[Outcome, ExitCode]
) -> None:
    manifest = RunManifest.start()
    note = "the sandbox at http://127.0.0.1:8765 stopped during the run"
    code = record_outcome(manifest, K6Outcome(k6_exit, False), Redactor([]), target_lost=note)
    assert (manifest.outcome, code) == expected
    assert manifest.exit_code == int(expected[1])
    assert note in manifest.notes


def test_an_io_error_is_noted_with_what_to_do() -> None:
    manifest = RunManifest.start()
    ended = K6Outcome(None, False, io_error="write raw.csv: No space left on device")
    assert record_outcome(manifest, ended, Redactor([])) == ExitCode.SETUP
    assert manifest.outcome == Outcome.IO_ERROR
    (note,) = manifest.notes
    assert "No space left on device" in note and "orch report" in note


# ------------------------------------------------------------------ runs that are not judged


# README, "Only complete runs are judged": the code each outcome stands for.
README_NOT_JUDGED_CODES = {
    Outcome.RUNNING: 5,
    Outcome.K6_ERROR: 5,
    Outcome.CRASHED: 5,
    Outcome.INTERRUPTED: 130,
    Outcome.REFUSED: 6,
    Outcome.LOAD_NOT_DELIVERED: 10,
    Outcome.NOT_STARTED: 4,
    Outcome.IO_ERROR: 4,
    Outcome.TARGET_LOST: 4,
    Outcome.DRY_RUN: 3,
}


def test_every_incomplete_outcome_has_the_readme_code() -> None:
    incomplete = {o for o in Outcome if not o.completed}
    assert incomplete == set(README_NOT_JUDGED_CODES)
    for outcome, code in README_NOT_JUDGED_CODES.items():
        assert not_judged_exit_code(outcome) == code, outcome
        assert not_judged_exit_code(str(outcome)) == code, outcome  # as run.json holds it
        assert not_judged_exit_code(outcome, 0) == code  # 0 and 99 are never kept
        assert not_judged_exit_code(outcome, 99) == code


def test_the_recorded_code_wins_over_the_outcomes() -> None:
    assert not_judged_exit_code(Outcome.NOT_STARTED, 6) == 6  # refused before k6 started
    assert not_judged_exit_code(Outcome.K6_ERROR, 4) == 4


def test_an_unknown_or_missing_outcome_stands_for_a_k6_error() -> None:
    assert not_judged_exit_code("exploded") == ExitCode.K6_ERROR
    assert not_judged_exit_code(None) == ExitCode.K6_ERROR


def test_only_complete_or_foreign_runs_have_no_reason() -> None:
    assert Outcome.PASSED.completed and Outcome.THRESHOLDS_FAILED.completed
    assert not_judged_reason(Outcome.PASSED) is None
    assert not_judged_reason("thresholds_failed") is None
    assert not_judged_reason(None) is None  # `orch report --from`: judged on its figures
    for outcome in README_NOT_JUDGED_CODES:
        reason = not_judged_reason(outcome)
        assert reason, outcome
    assert "unfinished" in (not_judged_reason(Outcome.RUNNING) or "")
    assert not_judged_reason("exploded") == "it ended as 'exploded', which this orch does not know"


# ------------------------------------------------------------------ the verdict line


@pytest.mark.parametrize(
    ("outcome", "starts"),
    [
        (Outcome.PASSED, "PASSED: every threshold held"),
        (Outcome.THRESHOLDS_FAILED, "FAILED: thresholds crossed"),
        (Outcome.K6_ERROR, "ERROR: k6 failed (exit 107); see k6.log"),
        (Outcome.CRASHED, "ERROR: k6 crashed or was killed; see k6.log"),
        (Outcome.INTERRUPTED, "INTERRUPTED:"),
        (Outcome.TARGET_LOST, "INCONCLUSIVE: the sandbox stopped"),
        (Outcome.IO_ERROR, "ERROR: the run folder could not be written"),
        (Outcome.REFUSED, "REFUSED:"),
        (Outcome.NOT_STARTED, "not_started"),
    ],
)
def test_verdict_line_per_outcome(outcome: Outcome, starts: str, tmp_path: Path) -> None:
    assert verdict_line(outcome, 107, tmp_path).startswith(starts)


def test_undelivered_load_says_by_how_much_when_results_json_can_tell(tmp_path: Path) -> None:
    assert verdict_line(Outcome.LOAD_NOT_DELIVERED, 0, tmp_path) == (
        "INCONCLUSIVE: the load was not delivered"  # no results.json: no numbers, no error
    )
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    assert verdict_line(Outcome.LOAD_NOT_DELIVERED, 0, tmp_path) == (
        "INCONCLUSIVE: the load was not delivered"
    )


def test_run_json_written_from_a_recorded_outcome_reads_back(tmp_path: Path) -> None:
    manifest = RunManifest.start(scenario="s", environment="local")
    record_outcome(manifest, K6Outcome(105, False), Redactor([]))
    manifest.save(tmp_path)
    data = json.loads((tmp_path / "run.json").read_text())
    assert (data["outcome"], data["exit_code"], data["k6_exit_code"]) == ("interrupted", 130, 105)

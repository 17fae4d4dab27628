"""How a run's verdict and exit code follow from what k6 did: the delivery rule (planned
against achieved load) and the exit code of a run that cannot be judged. Fast: no k6."""

from __future__ import annotations

import pytest

from orchestrator.core import ExitCode, Outcome, not_judged_exit_code, not_judged_reason
from orchestrator.results.delivery import Counts, Rule, judge_outcome, scenario_delivery

RATE = {"executor": "constant-arrival-rate", "rate": 10, "timeUnit": "1s", "duration": "10s"}


def _delivered(iterations: int, dropped: int = 0, rule: Rule | None = None) -> bool | None:
    counts = Counts(iterations=iterations, dropped=dropped, requests=iterations)
    return scenario_delivery("s", RATE, counts, rule or Rule(), None).delivered


def test_a_run_that_made_its_planned_load_is_delivered() -> None:
    assert _delivered(100) is True


def test_exactly_the_minimum_share_and_the_maximum_dropped_share_still_deliver() -> None:
    assert _delivered(95) is True  # 95 % of 100 planned
    assert _delivered(100, dropped=1) is True  # 1 % dropped


def test_just_below_the_minimum_or_above_the_dropped_share_is_not_delivered() -> None:
    assert _delivered(94) is False
    assert _delivered(100, dropped=2) is False


def test_a_run_that_opted_out_of_the_rule_is_not_judged() -> None:
    assert _delivered(10, rule=Rule.of({"judged": False})) is None


def test_the_recorded_rule_is_the_one_applied() -> None:
    strict = Rule.of({"min_achieved": 0.99, "max_dropped": 0.0})
    assert _delivered(98, rule=strict) is False
    assert _delivered(100, dropped=1, rule=strict) is False


def test_planned_requests_count_the_requests_an_iteration_makes() -> None:
    counts = Counts(iterations=50, dropped=0, requests=150)
    row = scenario_delivery("s", RATE, counts, Rule(), None)
    assert (row.planned_iterations, row.planned_requests) == (100, 300)


def test_a_passed_run_short_of_its_load_exits_10_and_a_failed_one_keeps_99() -> None:
    assert judge_outcome(Outcome.PASSED, False) == (
        Outcome.LOAD_NOT_DELIVERED,
        ExitCode.LOAD_NOT_DELIVERED,
    )
    assert judge_outcome(Outcome.PASSED, True) is None
    assert judge_outcome(Outcome.PASSED, None) is None
    assert judge_outcome(Outcome.THRESHOLDS_FAILED, False) is None


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.RUNNING, 5),
        (Outcome.K6_ERROR, 5),
        (Outcome.CRASHED, 5),
        (Outcome.INTERRUPTED, 130),
        (Outcome.REFUSED, 6),
        (Outcome.DRY_RUN, 3),
        (Outcome.LOAD_NOT_DELIVERED, 10),
        (Outcome.NOT_STARTED, 4),
        (Outcome.IO_ERROR, 4),
        (Outcome.TARGET_LOST, 4),
        ("something-new", 5),
        (None, 5),
    ],
)
def test_a_run_that_cannot_be_judged_exits_with_its_outcomes_code(
    outcome: Outcome | str | None, code: int
) -> None:
    assert not_judged_exit_code(outcome) == code


def test_the_exit_code_run_json_records_wins_unless_it_is_0_or_99() -> None:
    assert not_judged_exit_code(Outcome.CRASHED, 6) == 6
    assert not_judged_exit_code(Outcome.CRASHED, 0) == 5
    assert not_judged_exit_code(Outcome.INTERRUPTED, 99) == 130


def test_only_complete_runs_and_unknown_origins_are_judged() -> None:
    assert not_judged_reason(Outcome.PASSED) is None
    assert not_judged_reason(Outcome.THRESHOLDS_FAILED) is None
    assert not_judged_reason(None) is None
    assert "does not know" in (not_judged_reason("weird") or "")
    for outcome in Outcome:
        if outcome not in (Outcome.PASSED, Outcome.THRESHOLDS_FAILED):
            assert not_judged_reason(outcome)

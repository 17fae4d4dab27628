"""Which runs cannot be judged, why in words, and the exit code they stand for; and what an
orch error says when printed. Fast: plain values, no run."""

from __future__ import annotations

import pytest

from orchestrator.core import (
    ConfigError,
    ExitCode,
    OrchError,
    Outcome,
    RefusedError,
    not_judged_exit_code,
    not_judged_reason,
)

# README, "Exit codes": what a run that did not complete stands for
NOT_JUDGED = {
    Outcome.RUNNING: (
        ExitCode.K6_ERROR,
        "the run is unfinished: run.json still says `running` (k6 is still running, or orch "
        "was stopped before it recorded how the run ended)",
    ),
    Outcome.K6_ERROR: (
        ExitCode.K6_ERROR,
        "k6 reported an error, so the test did not run as planned",
    ),
    Outcome.CRASHED: (
        ExitCode.K6_ERROR,
        "k6 crashed, so the figures cover only what was written before",
    ),
    Outcome.INTERRUPTED: (ExitCode.INTERRUPTED, "the run was interrupted before its planned end"),
    Outcome.REFUSED: (
        ExitCode.REFUSED,
        "k6 tried to reach a host outside the environment's allow-list",
    ),
    Outcome.DRY_RUN: (ExitCode.CONFIG, "it is a dry run: nothing ran"),
    Outcome.LOAD_NOT_DELIVERED: (
        ExitCode.LOAD_NOT_DELIVERED,
        "k6 did not deliver the planned load, so the figures are not those of the test as "
        "planned",
    ),
    Outcome.NOT_STARTED: (ExitCode.SETUP, "k6 never started"),
    Outcome.IO_ERROR: (
        ExitCode.SETUP,
        "writing the run folder failed while k6 ran (e.g. a full disk)",
    ),
    Outcome.TARGET_LOST: (ExitCode.SETUP, "the sandbox orch relied on stopped during the run"),
}


def test_every_outcome_is_either_complete_or_not_judged_with_its_own_reason() -> None:
    assert {o for o in Outcome if o.completed} == {Outcome.PASSED, Outcome.THRESHOLDS_FAILED}
    assert {o for o in Outcome if not o.completed} == set(NOT_JUDGED)


@pytest.mark.parametrize("outcome", list(NOT_JUDGED))
def test_the_reason_a_run_is_not_judged(outcome: Outcome) -> None:
    reason = NOT_JUDGED[outcome][1]
    assert not_judged_reason(outcome) == reason
    assert not_judged_reason(str(outcome)) == reason  # as run.json holds it


@pytest.mark.parametrize("outcome", list(NOT_JUDGED))
def test_the_exit_code_a_run_that_is_not_judged_stands_for(outcome: Outcome) -> None:
    code = NOT_JUDGED[outcome][0]
    for recorded in (None, 0, 99):  # none, or a code that would read as a success or 99
        got = not_judged_exit_code(outcome, recorded)
        assert got == code and type(got) is int
    assert not_judged_exit_code(str(outcome)) == code


def test_complete_or_unknown_outcomes() -> None:
    assert not_judged_reason(None) is None
    assert not_judged_reason(Outcome.PASSED) is None
    assert not_judged_reason("thresholds_failed") is None
    assert not_judged_reason("exploded") == "it ended as 'exploded', which this orch does not know"
    assert not_judged_exit_code(None) == ExitCode.K6_ERROR
    assert not_judged_exit_code("exploded") == ExitCode.K6_ERROR


def test_a_complete_outcome_given_as_not_judged_never_stands_for_success() -> None:
    # a caller that asks anyway gets a failing code, never 0 or 99
    for outcome in (Outcome.PASSED, Outcome.THRESHOLDS_FAILED, "passed"):
        assert not_judged_exit_code(outcome) == ExitCode.K6_ERROR
        assert not_judged_exit_code(outcome, 99) == ExitCode.K6_ERROR


def test_the_recorded_exit_code_wins_unless_it_is_0_or_99() -> None:
    assert not_judged_exit_code(Outcome.NOT_STARTED, 6) == 6
    assert not_judged_exit_code(Outcome.K6_ERROR, 4) == 4
    assert not_judged_exit_code(None, 1) == 1
    assert not_judged_exit_code("exploded", 143) == 143
    got = not_judged_exit_code(Outcome.INTERRUPTED, ExitCode.INTERRUPTED)
    assert got == 130 and type(got) is int


def test_an_orch_error_prints_its_message() -> None:
    error = ConfigError("orch.yaml: scenarios.x: unknown key; remove it")
    assert str(error) == "orch.yaml: scenarios.x: unknown key; remove it"
    assert error.message == str(error) and error.args == (error.message,)
    assert error.exit_code == ExitCode.CONFIG
    assert RefusedError("no").exit_code == ExitCode.REFUSED
    assert OrchError("bug").exit_code == ExitCode.INTERNAL

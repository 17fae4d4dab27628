"""The verdict and redaction rules that issue 14's hand-made mutants showed no test held:
a latency regression needs significance, an error-rate regression is flagged, secrets are
redacted longest first, and k6's exit 105 is an interrupted run. Fast: no k6, no Docker."""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.config import RegressionSettings
from orchestrator.config.secrets import Redactor
from orchestrator.core import ExitCode, Outcome
from orchestrator.execution.lifecycle import classify
from orchestrator.execution.runner import K6Outcome
from orchestrator.regression.compare import OVERALL, Side, compare_sides


def _side(label: str, p95: float, *, requests: int, failed: int, samples: Any) -> Side:
    figures = {
        "requests": requests,
        "failed": failed,
        "error_rate": failed / requests,
        "throughput_rps": 100.0,
        "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95 * 1.2},
    }
    return Side(
        label=label, kind="run", scenario="s", environment="e", profile="p",
        figures={OVERALL: figures}, samples={OVERALL: samples}, sample_kind="raw points",
    )  # fmt: skip


def test_a_p95_rise_beyond_tolerance_without_significance_is_not_a_regression() -> None:
    # the same latencies on both sides, but B's recorded p95 is 50 % higher: the raw
    # points give no evidence that B is slower, so nothing is flagged
    same = np.linspace(10.0, 100.0, 200)
    a = _side("a", 100.0, requests=1000, failed=0, samples=same)
    b = _side("b", 150.0, requests=1000, failed=0, samples=same.copy())
    cmp = compare_sides(a, b, RegressionSettings())
    assert not cmp.regressed
    assert any("not significant" in why for why in cmp.rows[0].reasons)


def test_a_significant_p95_rise_beyond_tolerance_is_a_regression() -> None:
    a_points = np.linspace(10.0, 100.0, 400)
    a = _side("a", 100.0, requests=1000, failed=0, samples=a_points)
    b = _side("b", 150.0, requests=1000, failed=0, samples=a_points * 1.5)
    cmp = compare_sides(a, b, RegressionSettings())
    assert cmp.rows[0].latency_regressed and cmp.regressed


def test_an_error_rate_up_by_many_points_is_a_regression() -> None:
    points = np.linspace(10.0, 100.0, 200)
    a = _side("a", 100.0, requests=1000, failed=0, samples=points)
    b = _side("b", 100.0, requests=1000, failed=100, samples=points.copy())
    cmp = compare_sides(a, b, RegressionSettings())
    row = cmp.rows[0]
    assert row.errors_regressed and not row.latency_regressed
    assert cmp.regressed


def test_an_error_rate_up_within_tolerance_is_not_a_regression() -> None:
    points = np.linspace(10.0, 100.0, 200)
    a = _side("a", 100.0, requests=1000, failed=0, samples=points)
    b = _side("b", 100.0, requests=1000, failed=3, samples=points.copy())  # +0.3 points
    assert not compare_sides(a, b, RegressionSettings()).regressed


def test_a_secret_that_extends_another_is_redacted_whole() -> None:
    redact = Redactor(["tok-1234", "tok-1234-extra"])
    out = redact("Authorization: tok-1234-extra and tok-1234")
    assert out == "Authorization: *** and ***"
    assert "extra" not in out


def test_k6_exit_105_is_an_interrupted_run() -> None:
    assert classify(K6Outcome(exit_code=105, interrupted=False)) == (
        Outcome.INTERRUPTED,
        ExitCode.INTERRUPTED,
    )


def test_k6_exit_codes_map_to_orch_outcomes() -> None:
    assert classify(K6Outcome(exit_code=0, interrupted=False)) == (Outcome.PASSED, ExitCode.OK)
    assert classify(K6Outcome(exit_code=99, interrupted=False)) == (
        Outcome.THRESHOLDS_FAILED,
        ExitCode.THRESHOLDS,
    )
    assert classify(K6Outcome(exit_code=None, interrupted=False)) == (
        Outcome.CRASHED,
        ExitCode.K6_ERROR,
    )
    assert classify(K6Outcome(exit_code=0, interrupted=False, io_error="disk full")) == (
        Outcome.IO_ERROR,
        ExitCode.SETUP,
    )


def test_a_secret_inside_a_longer_one_is_redacted_whatever_their_spelling() -> None:
    # the longer secret sorts before the shorter one alphabetically: length decides
    assert Redactor(["zzzz", "a-zzzz"])("key a-zzzz") == "key ***"


def test_a_four_character_secret_is_redacted_and_a_shorter_one_is_not() -> None:
    redact = Redactor(["abcd", "xyz", ""])
    assert redact("abcd xyz") == "*** xyz"

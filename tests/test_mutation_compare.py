"""The comparison's decision, figure by figure: what a row shows, where each tolerance
starts to flag, what the significance tests answer, and how run folders become sides.

Fast (no k6, no Docker): sides are built from figures and latency arrays, run folders from
the results models and a small k6 CSV. Every boundary is checked on both sides, with
numbers exact in binary so that "exactly the tolerance" is exact.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_results_model import endpoint

from orchestrator.config import RegressionSettings
from orchestrator.core import ConfigError, ExitCode, Outcome
from orchestrator.regression import compare
from orchestrator.regression.compare import (
    OVERALL,
    Row,
    Side,
    Significance,
    compare_sides,
    error_rate_p_value,
    figures_by_endpoint,
    latency_samples,
    latency_significance,
    load_run,
    read_results,
    run_outcome,
)
from orchestrator.results import ResultsDocument, RunFolder, RunManifest
from orchestrator.results.model import FlowFigures, RunInfo, Sources

TEST = "mann-whitney-u + bootstrap p95"
# B's latencies: A's times 1.5, so clearly slower (U p ~ 1e-40, bootstrap bound far above 0)
SLOWER_A = np.linspace(10.0, 100.0, 400)
SLOWER_B = SLOWER_A * 1.5


def figures(
    requests: Any = 1000,
    failed: Any = 0,
    error_rate: Any = 0.0,
    rps: Any = 50.0,
    p50: Any = 20.0,
    p95: Any = 40.0,
    p99: Any = 80.0,
) -> dict[str, Any]:
    """An endpoint's figures as results.json holds them (None leaves a key out)."""
    out = {"requests": requests, "failed": failed, "error_rate": error_rate,
           "throughput_rps": rps}  # fmt: skip
    out = {k: v for k, v in out.items() if v is not None}
    latency = {k: v for k, v in (("p50", p50), ("p95", p95), ("p99", p99)) if v is not None}
    return {**out, "latency_ms": latency}


def side(
    figs: dict[str, dict[str, Any]],
    samples: dict[str, Any] | None = None,
    *,
    label: str = "a",
    kind: str = "run",
    scenario: str | None = "s",
    environment: str | None = "local",
    profile: str | None = "smoke",
    sample_kind: str = "raw points",
    outcome: Outcome | None = None,
    exit_code: int | None = None,
) -> Side:
    return Side(label=label, kind=kind, scenario=scenario, environment=environment,
                profile=profile, figures=figs, samples=samples or {}, sample_kind=sample_kind,
                outcome=outcome, exit_code=exit_code)  # fmt: skip


def one_row(fa: dict[str, Any] | None, fb: dict[str, Any] | None, **kw: Any) -> Row:
    """The row of endpoint ``api`` with these figures on A and B (None: not on that side)."""
    samples_a, samples_b = kw.pop("samples_a", None), kw.pop("samples_b", None)
    a = side({} if fa is None else {"api": fa}, None if samples_a is None else {"api": samples_a})
    b = side({} if fb is None else {"api": fb}, None if samples_b is None else {"api": samples_b},
             label="b")  # fmt: skip
    cmp = compare_sides(a, b, RegressionSettings(**kw))
    (overall, row) = cmp.rows
    assert overall.name == OVERALL and not overall.in_a and not overall.in_b
    return row


# --- latency_significance -----------------------------------------------------------------


def test_fewer_than_two_points_on_either_side_gives_no_test() -> None:
    for a, b in (([1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [4.0]), ([], [])):
        assert latency_significance(a, b, alpha=0.01) == Significance(
            TEST, None, None, None, None, len(a), len(b), False
        )


def test_two_points_a_side_are_enough_for_a_test() -> None:
    s = latency_significance([1.0, 2.0], [1.0, 2.0], alpha=0.01)
    assert (s.test, s.n_a, s.n_b, s.significant) == (TEST, 2, 2, False)
    assert s.p_value == pytest.approx(0.6674972289489854)
    assert s.p95_diff_ms == 0.0 and s.p95_diff_low_ms == -1.0 and s.p95_diff_ci_ms == (-1.0, 1.0)


def test_the_u_test_is_asymptotic_and_one_sided() -> None:
    # 5 points a side without ties: scipy's default would be the exact test (p = 1/252)
    a, b = np.arange(1.0, 6.0), np.arange(6.0, 11.0)
    s = latency_significance(a, b, alpha=0.025)
    assert s.p_value == pytest.approx(0.006092890177672406)
    assert s.p95_diff_ms == pytest.approx(5.0)
    assert (s.p95_diff_low_ms, s.p95_diff_ci_ms, s.n_a, s.n_b) == (3.0, (3.0, 7.0), 5, 5)
    assert s.significant
    faster = latency_significance(b, a, alpha=0.025)  # B faster: no evidence B is slower
    assert faster.p_value == pytest.approx(1 - 0.006092890177672406 + 0.0, abs=0.01)
    assert faster.p_value is not None and faster.p_value > 0.99
    assert faster.p95_diff_ms == pytest.approx(-5.0) and not faster.significant


def test_the_p95_shift_and_its_bootstrap_bounds() -> None:
    rng = np.random.default_rng(5)
    a = rng.lognormal(np.log(40), 0.25, 300)
    b = a * 1.3
    s = latency_significance(a, b, alpha=0.025)
    assert s.p95_diff_ms == pytest.approx(float(np.percentile(b, 95) - np.percentile(a, 95)))
    assert s.p95_diff_ms == pytest.approx(18.07779979152773)
    assert s.p95_diff_ci_ms is not None and s.p95_diff_low_ms is not None
    low, high = s.p95_diff_ci_ms
    assert low < s.p95_diff_ms < high
    assert (low, high) == pytest.approx((11.394505619484324, 24.56744548342633))
    # at alpha 0.025 the one-sided (1 - alpha) bound is the two-sided 95 % interval's low end
    assert s.p95_diff_low_ms == pytest.approx(low, rel=1e-12)
    # at alpha 0.05 it is the 5th percentile of the same resamples: above that low end,
    # while the two-sided interval stays the 95 % one
    looser = latency_significance(a, b, alpha=0.05)
    assert looser.p95_diff_ci_ms == s.p95_diff_ci_ms
    assert looser.p95_diff_low_ms is not None and looser.p95_diff_low_ms > low
    assert looser.p95_diff_low_ms == pytest.approx(12.582080728669794)
    assert s.significant and looser.significant


def test_the_bootstrap_is_seeded_and_uses_the_resamples_asked_for() -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(40, 5, 200)
    b = rng.normal(46, 5, 200)
    first = latency_significance(a, b, alpha=0.01)
    assert first == latency_significance(a, b, alpha=0.01)
    fewer = latency_significance(a, b, alpha=0.01, resamples=50)
    assert fewer.p_value == first.p_value and fewer.p95_diff_ms == first.p95_diff_ms
    assert fewer.p95_diff_ci_ms != first.p95_diff_ci_ms


def test_the_bootstrap_interval_moves_with_the_p95_of_each_side() -> None:
    # A constant: every resample of A has p95 10. B: 93 points at 10 and 7 at 50, so a
    # resample's p95 is 10 (4 or fewer 50s) or jumps towards 50: the interval spans 0..40
    a = np.full(100, 10.0)
    b = np.array([10.0] * 93 + [50.0] * 7)
    s = latency_significance(a, b, alpha=0.05)
    assert s.p95_diff_ms == 40.0
    assert s.p95_diff_ci_ms == (0.0, 40.0)
    # U says B is slower, but the bound on the p95 shift is exactly 0: not significant
    assert s.p_value is not None and s.p_value < 0.05
    assert s.p95_diff_low_ms == 0.0 and not s.significant
    swapped = latency_significance(b, a, alpha=0.05)
    assert swapped.p95_diff_ms == -40.0 and swapped.p95_diff_ci_ms == (-40.0, 0.0)


def test_a_small_certain_p95_shift_is_significant() -> None:
    # a 0.8 ms shift on a tight sample: the bound is positive but below 1 ms
    a = np.linspace(10.0, 11.0, 400)
    s = latency_significance(a, a + 0.8, alpha=0.01)
    assert s.p95_diff_low_ms is not None and 0 < s.p95_diff_low_ms < 1
    assert s.significant


def test_u_alone_is_not_enough_when_the_p95_did_not_move() -> None:
    # B's bulk is 5 ms slower, its tail is A's: U is sure, the p95 bound is not
    a = np.concatenate([np.linspace(10, 20, 190), np.linspace(100, 110, 10)])
    b = np.concatenate([np.linspace(15, 25, 190), np.linspace(100, 110, 10)])
    s = latency_significance(a, b, alpha=0.01)
    assert s.p_value is not None and s.p_value < 1e-20
    assert s.p95_diff_low_ms is not None and s.p95_diff_low_ms < 0
    assert not s.significant


def test_a_p_value_equal_to_alpha_is_not_significant() -> None:
    # B's slowest 30 of 200 points are 50 ms slower: the p95 surely moved, U p ~ 0.35
    a = np.linspace(10.0, 20.0, 200)
    b = a.copy()
    b[-30:] += 50
    p = latency_significance(a, b, alpha=0.5).p_value
    assert p is not None and 0.3 < p < 0.4
    at = latency_significance(a, b, alpha=p)
    assert at.p95_diff_low_ms is not None and at.p95_diff_low_ms > 40
    assert not at.significant
    assert latency_significance(a, b, alpha=math.nextafter(p, 1.0)).significant


def test_samples_larger_than_the_bootstrap_limit_are_thinned_evenly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the bootstrap of samples over the limit runs on `limit` points spread evenly over the
    # sorted sample, both ends included; U and the observed shift use every point
    monkeypatch.setattr(compare, "BOOTSTRAP_MAX_POINTS", 40)
    rng = np.random.default_rng(7)
    a = rng.lognormal(np.log(40), 0.3, 1001)
    b = rng.lognormal(np.log(48), 0.3, 1003)

    def thinned(v: np.ndarray) -> np.ndarray:
        return np.sort(v)[np.linspace(0, v.size - 1, 40).round().astype(int)]

    full = latency_significance(a, b, alpha=0.05)
    small = latency_significance(thinned(a), thinned(b), alpha=0.05)
    assert (full.p95_diff_low_ms, full.p95_diff_ci_ms) == (
        small.p95_diff_low_ms,
        small.p95_diff_ci_ms,
    )
    assert (full.n_a, full.n_b) == (1001, 1003)
    assert full.p_value != small.p_value
    assert full.p95_diff_ms == pytest.approx(float(np.percentile(b, 95) - np.percentile(a, 95)))


# --- error_rate_p_value -------------------------------------------------------------------


def test_the_error_rate_z_test_matches_the_textbook_values() -> None:
    # pooled two-proportion z-test, one-sided (B higher); values from scipy's norm.sf
    assert error_rate_p_value(10, 100, 20, 100) == pytest.approx(0.023835190328080704)
    assert error_rate_p_value(10, 100, 60, 400) == pytest.approx(0.09872544042129644)
    assert error_rate_p_value(30, 200, 5, 100) == pytest.approx(0.9945113941812754)
    assert error_rate_p_value(1, 1, 0, 1) == pytest.approx(0.9213503964748574)
    assert error_rate_p_value(0, 1, 1, 1) == pytest.approx(0.0786496035251426)


def test_no_error_rate_test_without_requests_on_either_side() -> None:
    assert error_rate_p_value(0, 0, 1, 10) is None
    assert error_rate_p_value(0, 10, 0, 0) is None
    assert error_rate_p_value(0, -1, 0, 10) is None
    assert error_rate_p_value(0, 10, 0, -1) is None


def test_equal_error_rates_without_variance_give_p_one() -> None:
    assert error_rate_p_value(0, 10, 0, 20) == 1.0  # no failure anywhere
    assert error_rate_p_value(10, 10, 20, 20) == 1.0  # every request failed on both sides


# --- one row: the figures it shows ----------------------------------------------------------


def test_a_row_shows_both_sides_figures_and_their_changes() -> None:
    fa = figures(requests=1000, failed=10, error_rate=0.125, rps=50.0, p50=20.0, p95=40.0, p99=80.0)
    fb = figures(requests=1200, failed=12, error_rate=0.125, rps=60.0, p50=25.0, p95=42.0,
                 p99=100.0)  # fmt: skip
    row = one_row(fa, fb)
    assert row == Row(
        name="api",
        in_a=True,
        in_b=True,
        requests=(1000, 1200),
        throughput_rps=(50.0, 60.0),
        throughput_change_pct=20.0,
        error_rate=(0.125, 0.125),
        error_rate_change_points=0.0,
        error_p_value=0.5,  # 1 % on both sides
        latency_ms={"p50": (20.0, 25.0), "p95": (40.0, 42.0), "p99": (80.0, 100.0)},
        latency_change_ms={"p50": 5.0, "p95": 2.0, "p99": 20.0},
        latency_change_pct={"p50": 25.0, "p95": 5.0, "p99": 25.0},
        significance=None,
    )
    assert isinstance(row.requests[0], int) and isinstance(row.requests[1], int)
    assert not row.regressed and row.reasons == []


def test_changes_are_signed_b_minus_a_and_relative_to_a() -> None:
    row = one_row(figures(rps=1.0, error_rate=0.25, p50=1.0, p95=8.0, p99=2.0),
                  figures(rps=0.5, error_rate=0.125, p50=4.0, p95=6.0, p99=1.0))  # fmt: skip
    assert row.throughput_change_pct == -50.0
    assert row.error_rate_change_points == -12.5
    assert row.latency_change_ms == {"p50": 3.0, "p95": -2.0, "p99": -1.0}
    assert row.latency_change_pct == {"p50": 300.0, "p95": -25.0, "p99": -50.0}


def test_an_endpoint_on_one_side_only_shows_that_sides_figures() -> None:
    only_b = one_row(None, figures(requests=7, error_rate=0.25, rps=3.5, p50=1.0, p95=2.0,
                                   p99=4.0))  # fmt: skip
    assert only_b == Row(
        name="api", in_a=False, in_b=True, requests=(None, 7), throughput_rps=(None, 3.5),
        throughput_change_pct=None, error_rate=(None, 0.25), error_rate_change_points=None,
        error_p_value=None,
        latency_ms={"p50": (None, 1.0), "p95": (None, 2.0), "p99": (None, 4.0)},
        latency_change_ms={"p50": None, "p95": None, "p99": None},
        latency_change_pct={"p50": None, "p95": None, "p99": None}, significance=None,
    )  # fmt: skip
    only_a = one_row(figures(requests=9, rps=4.5), None)
    assert (only_a.in_a, only_a.in_b, only_a.requests) == (True, False, (9, None))
    assert only_a.throughput_rps == (4.5, None) and only_a.throughput_change_pct is None
    assert only_a.latency_ms["p95"] == (40.0, None) and only_a.error_rate == (0.0, None)


def test_an_endpoint_on_one_side_is_not_judged_even_with_points_on_both() -> None:
    # B has figures for `api`; A has latency points for it but no figures
    a = side({}, {"api": SLOWER_A})
    b = side({"api": figures(p95=400.0)}, {"api": SLOWER_B}, label="b")
    row = compare_sides(a, b).rows[1]
    assert row.significance is None and not row.regressed and row.reasons == []


def test_missing_figures_leave_their_changes_empty() -> None:
    fa = figures(requests=None, failed=None, error_rate=None, rps=None, p50=None, p99=12.0)
    fb = figures(requests=1000, failed=5, error_rate=0.5, rps=20.0, p50=8.0, p99=None)
    row = one_row(fa, fb)
    assert row.requests == (None, 1000) and row.throughput_rps == (None, 20.0)
    assert row.throughput_change_pct is None and row.error_rate == (None, 0.5)
    assert row.error_rate_change_points is None and row.error_p_value is None
    assert row.latency_ms == {"p50": (None, 8.0), "p95": (40.0, 40.0), "p99": (12.0, None)}
    assert row.latency_change_ms == {"p50": None, "p95": 0.0, "p99": None}
    assert row.latency_change_pct == {"p50": None, "p95": 0.0, "p99": None}
    swapped = one_row(fb, fa)
    assert swapped.throughput_change_pct is None and swapped.error_rate_change_points is None
    assert swapped.latency_change_ms == {"p50": None, "p95": 0.0, "p99": None}


def test_a_figure_that_is_not_a_number_counts_as_missing() -> None:
    fa = figures(requests=True, rps="12", error_rate=False)
    fa["latency_ms"] = {"p50": "1", "p95": None, "p99": [3]}
    row = one_row(fa, figures())
    assert row.requests == (None, 1000) and row.throughput_rps == (None, 50.0)
    assert row.error_rate == (None, 0.0)
    assert row.latency_ms == {"p50": (None, 20.0), "p95": (None, 40.0), "p99": (None, 80.0)}
    no_latency = figures()
    no_latency["latency_ms"] = None
    assert one_row(no_latency, figures()).latency_ms["p95"] == (None, 40.0)


def test_a_throughput_or_latency_of_zero_or_one_on_a() -> None:
    row = one_row(figures(rps=0.0, p50=1.0, p95=0.0), figures(rps=5.0, p50=3.0, p95=2.0))
    assert row.throughput_change_pct is None  # no relative change from zero
    assert row.latency_change_pct["p50"] == 200.0 and row.latency_change_pct["p95"] is None
    assert row.latency_change_ms["p95"] == 2.0


def test_samples_on_one_side_only_give_no_significance() -> None:
    assert one_row(figures(), figures(), samples_a=SLOWER_A).significance is None
    assert one_row(figures(), figures(), samples_b=SLOWER_B).significance is None
    both = one_row(figures(), figures(), samples_a=SLOWER_A, samples_b=SLOWER_B)
    assert both.significance == latency_significance(SLOWER_A, SLOWER_B, alpha=0.01)


# --- one row: the latency decision ----------------------------------------------------------


def slower(p95_a: float, p95_b: float, **settings: Any) -> Row:
    """The row of a B whose latency points are clearly slower, with these recorded p95s."""
    return one_row(figures(p95=p95_a), figures(p95=p95_b), samples_a=SLOWER_A,
                   samples_b=SLOWER_B, **settings)  # fmt: skip


def test_a_significant_p95_rise_beyond_both_tolerances_is_a_regression() -> None:
    row = slower(100.0, 150.0)
    assert row.significance is not None and row.significance.significant
    assert row.latency_regressed and row.regressed and not row.errors_regressed
    assert row.reasons == [
        f"p95 +50.0 % (+50.0 ms) > 10 %, significant (U p={row.significance.p_value:.2g})"
    ]


def test_a_p95_up_by_exactly_the_percent_tolerance_is_not_flagged() -> None:
    row = slower(100.0, 110.0)  # +10 %, +10 ms: the tolerance is "more than 10 %"
    assert row.latency_change_pct["p95"] == 10.0
    assert not row.latency_regressed and row.reasons == []
    assert slower(100.0, 110.5).latency_regressed


def test_a_p95_up_by_exactly_the_minimum_ms_is_flagged() -> None:
    row = slower(4.0, 5.0)  # +25 %, +1 ms: the minimum is "at least 1 ms"
    assert row.latency_change_ms["p95"] == 1.0 and row.latency_regressed
    assert row.reasons == [
        f"p95 +25.0 % (+1.0 ms) > 10 %, significant (U p={row.significance.p_value:.2g})"  # type: ignore[union-attr]
    ]
    below = slower(4.0, 4.75)  # +18.75 %, +0.75 ms
    assert not below.latency_regressed and below.reasons == []


def test_a_p95_up_by_many_ms_but_within_the_percent_tolerance_is_not_flagged() -> None:
    row = slower(1000.0, 1050.0)  # +5 %, +50 ms
    assert not row.latency_regressed and row.reasons == []


def test_custom_latency_tolerances_are_used() -> None:
    row = slower(100.0, 150.0, p95_increase_pct=50.0)
    assert not row.latency_regressed and row.reasons == []
    row = slower(100.0, 150.0, p95_min_increase_ms=50.0)
    assert row.latency_regressed
    assert not slower(100.0, 150.0, p95_min_increase_ms=50.5).latency_regressed


def test_a_p95_rise_without_latency_points_is_noted_not_flagged() -> None:
    row = one_row(figures(p95=100.0), figures(p95=150.0))
    assert row.significance is None and not row.latency_regressed
    assert row.reasons == ["p95 +50.0 % but not significant: not flagged"]


def test_a_missing_p95_decides_nothing() -> None:
    assert one_row(figures(p95=None), figures(p95=500.0), samples_a=SLOWER_A,
                   samples_b=SLOWER_B).reasons == []  # fmt: skip
    assert one_row(figures(p95=100.0), figures(p95=None), samples_a=SLOWER_A,
                   samples_b=SLOWER_B).reasons == []  # fmt: skip


# --- one row: the error-rate decision -------------------------------------------------------


def errors(rate_a: float, rate_b: float, requests: int = 1000, **settings: Any) -> Row:
    return one_row(
        figures(requests=requests, failed=round(rate_a * requests), error_rate=rate_a),
        figures(requests=requests, failed=round(rate_b * requests), error_rate=rate_b),
        **settings,
    )


def test_an_error_rate_up_beyond_the_tolerance_with_significance_is_a_regression() -> None:
    row = errors(0.0, 0.125)
    assert row.error_rate_change_points == 12.5
    assert row.error_p_value == pytest.approx(error_rate_p_value(0, 1000, 125, 1000))
    assert row.error_p_value is not None and row.error_p_value < 1e-20
    assert row.errors_regressed and row.regressed and not row.latency_regressed
    assert row.reasons == [
        f"error rate +12.50 points > 0.5, significant (z p={row.error_p_value:.2g})"
    ]


def test_the_error_p_value_is_b_against_a_with_each_sides_requests() -> None:
    fa = figures(requests=100, failed=10, error_rate=0.1)
    fb = figures(requests=400, failed=60, error_rate=0.15)
    assert one_row(fa, fb).error_p_value == pytest.approx(0.09872544042129644)
    assert one_row(fb, fa).error_p_value == pytest.approx(1 - 0.09872544042129644)


def test_an_error_rate_up_by_exactly_the_tolerance_is_not_flagged() -> None:
    row = errors(0.0, 0.25, error_rate_increase_points=25.0)
    assert row.error_rate_change_points == 25.0
    assert not row.errors_regressed and row.reasons == []
    assert errors(0.0, 0.25, error_rate_increase_points=24.9).errors_regressed


def test_an_error_p_value_equal_to_alpha_is_not_significant() -> None:
    p = error_rate_p_value(10, 100, 20, 100)
    assert p is not None
    row = errors(0.1, 0.2, requests=100, alpha=p)
    assert row.error_p_value == p and not row.errors_regressed
    assert row.reasons == ["error rate +10.00 points but not significant"]
    assert errors(0.1, 0.2, requests=100, alpha=math.nextafter(p, 1.0)).errors_regressed


def test_an_error_rate_rise_without_failure_counts_is_noted_not_flagged() -> None:
    row = one_row(figures(failed=None, error_rate=0.0), figures(failed=None, error_rate=0.5))
    assert row.error_rate_change_points == 50.0 and row.error_p_value is None
    assert not row.errors_regressed
    assert row.reasons == ["error rate +50.00 points but not significant"]


@pytest.mark.parametrize(
    ("fa", "fb"),
    [
        pytest.param({"requests": None}, {}, id="no-requests-on-A"),
        pytest.param({}, {"requests": None}, id="no-requests-on-B"),
        pytest.param({"requests": 0}, {}, id="zero-requests-on-A"),
        pytest.param({}, {"requests": 0}, id="zero-requests-on-B"),
        pytest.param({"failed": None}, {}, id="no-failures-on-A"),
        pytest.param({}, {"failed": None}, id="no-failures-on-B"),
        pytest.param({"error_rate": None}, {}, id="no-error-rate-on-A"),
        pytest.param({}, {"error_rate": None}, id="no-error-rate-on-B"),
    ],
)
def test_a_missing_count_leaves_the_error_rate_unjudged(
    fa: dict[str, Any], fb: dict[str, Any]
) -> None:
    row = one_row(figures(**{"failed": 0, "error_rate": 0.0, **fa}),
                  figures(**{"failed": 500, "error_rate": 0.5, **fb}))  # fmt: skip
    assert not row.errors_regressed
    if "error_rate" in fa or "error_rate" in fb:
        assert row.error_rate_change_points is None and row.reasons == []
    else:
        assert row.error_p_value is None
        assert row.reasons == ["error rate +50.00 points but not significant"]


# --- compare_sides --------------------------------------------------------------------------


def test_rows_are_all_requests_then_every_endpoint_of_either_side_by_name() -> None:
    a = side({OVERALL: figures(), "b-api": figures(), "z-api": figures()})
    b = side({OVERALL: figures(), "a-api": figures(), "b-api": figures()}, label="b")
    cmp = compare_sides(a, b)
    assert [r.name for r in cmp.rows] == [OVERALL, "a-api", "b-api", "z-api"]
    assert cmp.notes == ["a-api is only in B", "z-api is only in A"]
    assert cmp.a is a and cmp.b is b
    assert cmp.settings == RegressionSettings().model_dump()


def test_the_settings_given_are_the_ones_used_and_recorded() -> None:
    settings = RegressionSettings(p95_increase_pct=60.0, alpha=0.05)
    a = side({OVERALL: figures(p95=100.0)}, {OVERALL: SLOWER_A})
    b = side({OVERALL: figures(p95=150.0)}, {OVERALL: SLOWER_B}, label="b")
    cmp = compare_sides(a, b, settings)
    assert cmp.settings == settings.model_dump() and not cmp.regressed
    assert compare_sides(a, b).regressed


def test_a_row_on_neither_side_is_not_noted_as_only_in_b() -> None:
    # two runs without HTTP requests: no "all" figures on either side
    cmp = compare_sides(side({}), side({}, label="b"))
    assert [r.name for r in cmp.rows] == [OVERALL] and cmp.notes == []


def test_same_sides_have_no_notes() -> None:
    a = side({OVERALL: figures()})
    assert compare_sides(a, side({OVERALL: figures()}, label="b")).notes == []


def test_sides_that_differ_in_what_ran_are_noted() -> None:
    a = side({}, scenario="checkout", environment="local", profile="smoke")
    b = side({}, scenario="search", environment="staging", profile="smoke", label="b")
    assert compare_sides(a, b).notes == [
        "the two sides differ in scenario: checkout vs search",
        "the two sides differ in environment: local vs staging",
    ]
    unknown = side({}, scenario=None, environment=None, profile="")
    assert compare_sides(unknown, b).notes == []
    assert compare_sides(b, unknown).notes == []


@pytest.mark.parametrize(
    ("kind_a", "kind_b"), [("quantiles", "raw points"), ("raw points", "quantiles")]
)
def test_a_quantile_sample_on_either_side_is_noted(kind_a: str, kind_b: str) -> None:
    cmp = compare_sides(side({}, sample_kind=kind_a), side({}, sample_kind=kind_b))
    assert cmp.notes == [
        "the baseline's latencies are a quantile sample (see docs/ci.md), not raw points"
    ]


# --- the comparison as a whole --------------------------------------------------------------


def test_the_comparison_document() -> None:
    a = side({OVERALL: figures(p95=100.0), "api": figures(p95=100.0)}, label="run-a",
             outcome=Outcome.PASSED)  # fmt: skip
    a.started_at = "2026-01-02T10:00:00Z"
    b = side({OVERALL: figures(p95=100.0), "api": figures(p95=100.0, failed=125,
              error_rate=0.125)}, label="base", kind="baseline", scenario="s2",
             sample_kind="quantiles")  # fmt: skip
    cmp = compare_sides(a, b)
    doc = cmp.to_dict()
    assert doc["schema_version"] == 1
    assert doc["a"] == {
        "label": "run-a", "kind": "run", "scenario": "s", "environment": "local",
        "profile": "smoke", "started_at": "2026-01-02T10:00:00Z", "sample_kind": "raw points",
        "outcome": "passed",
    }  # fmt: skip
    assert doc["b"] == {
        "label": "base", "kind": "baseline", "scenario": "s2", "environment": "local",
        "profile": "smoke", "started_at": None, "sample_kind": "quantiles", "outcome": None,
    }  # fmt: skip
    assert doc["settings"] == RegressionSettings().model_dump()
    assert (doc["judged"], doc["not_judged"], doc["regressed"]) == (True, [], True)
    assert doc["regressed_endpoints"] == ["api"]
    assert doc["notes"] == cmp.notes and len(doc["notes"]) == 2
    overall, api = doc["rows"]
    assert overall["name"] == OVERALL and overall["regressed"] is False
    assert api["regressed"] is True and api["errors_regressed"] is True
    assert api["requests"] == [1000, 1000] and api["error_rate"] == [0.0, 0.125]
    assert api["latency_ms"] == {"p50": [20.0, 20.0], "p95": [100.0, 100.0], "p99": [80.0, 80.0]}
    # floats keep 6 significant digits; a NaN becomes null
    assert api["error_p_value"] == float(f"{api['error_p_value']:.6g}")
    assert api["error_p_value"] == pytest.approx(cmp.rows[1].error_p_value, rel=1e-5)
    cmp.rows[1].throughput_rps = (1 / 3, math.nan)
    assert cmp.to_dict()["rows"][1]["throughput_rps"] == [0.333333, None]


def test_a_comparison_with_a_side_that_did_not_complete_is_not_judged() -> None:
    a = side({OVERALL: figures()}, outcome=Outcome.INTERRUPTED, exit_code=None)
    b = side({OVERALL: figures(failed=500, error_rate=0.5)}, label="b",
             outcome=Outcome.REFUSED, exit_code=None)  # fmt: skip
    cmp = compare_sides(a, b)
    assert not cmp.judged and cmp.not_judged_exit_code() == ExitCode.REFUSED
    doc = cmp.to_dict()
    assert doc["judged"] is False and doc["regressed"] is None
    assert doc["not_judged"] == cmp.not_judged and len(doc["not_judged"]) == 2
    b.outcome = Outcome.PASSED
    assert cmp.not_judged_exit_code() == ExitCode.INTERRUPTED
    a.exit_code = 143
    assert cmp.not_judged_exit_code() == 143
    a.outcome = Outcome.THRESHOLDS_FAILED
    assert cmp.judged and cmp.not_judged_exit_code() is None
    assert cmp.to_dict()["regressed"] is True


# --- run folders as sides -------------------------------------------------------------------

CSV_HEADER = (
    "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,"
    "method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata"
)


def raw_csv(path: Path, points: list[tuple[str, str, float]]) -> Path:
    """A k6 CSV of http_req_duration points (endpoint, scenario, ms), one http_reqs each."""
    lines = [CSV_HEADER]
    for i, (name, scenario, ms) in enumerate(points):
        for metric, value in (("http_req_duration", ms), ("http_reqs", 1.0)):
            lines.append(f"{metric},{1_700_000_000 + i},{value},,,,true,,GET,{name},HTTP/1.1,"
                         f"{scenario},,200,,,http://127.0.0.1/{name},,")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_folder(
    folder: Path,
    *,
    outcome: Outcome | None = Outcome.PASSED,
    exit_code: int | None = 0,
    reported: Outcome | None = None,
    reported_code: int | None = None,
    raw_file: str | None = None,
    flows: list[str] = (),  # type: ignore[assignment]
    manifest: bool = True,
) -> Path:
    """A run folder: run.json (unless ``manifest`` is False) and results.json with
    endpoints ``api`` and ``search`` and the given flows."""
    folder.mkdir(parents=True, exist_ok=True)
    if manifest:
        RunManifest(scenario="checkout", outcome=outcome, exit_code=exit_code).save(folder)
    api, search = endpoint("api", 600, 30.0), endpoint("search", 400, 50.0, failed=4)
    doc = ResultsDocument(
        run=RunInfo(scenario="checkout", environment="local", profile="smoke",
                    started_at="2026-01-02T10:00:00Z", outcome=reported, exit_code=reported_code),
        sources=Sources(raw_file=raw_file),
        overall=endpoint("all", 1000, 45.0, failed=4),
        endpoints=[api, search, endpoint("", 1, 1.0), endpoint(OVERALL, 1000, 45.0)],
        flows=[FlowFigures(name=f, overall=endpoint(f"{f}-overall", 500, 40.0)) for f in flows],
    )  # fmt: skip
    RunFolder(folder).results_path.write_text(doc.to_json(), encoding="utf-8")
    return folder


# in time order: search before api, buy before browse (samples are listed by name)
POINTS = [("search", "buy", 55.0), ("api", "browse", 30.0), ("api", "buy", 10.0),
          ("search", "other", 40.0), ("api", "browse", 20.0)]  # fmt: skip


def test_a_run_folder_is_a_side_of_its_figures_and_raw_points(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run-1", flows=["browse", "buy"])
    raw_csv(folder / RunFolder.RAW_CSV, POINTS)
    got = load_run(folder)
    assert (got.label, got.kind, got.scenario, got.environment, got.profile) == (
        "run-1", "run", "checkout", "local", "smoke",
    )  # fmt: skip
    assert (got.sample_kind, got.started_at, got.outcome, got.exit_code) == (
        "raw points", "2026-01-02T10:00:00Z", Outcome.PASSED, 0,
    )  # fmt: skip
    assert list(got.figures) == [OVERALL, "api", "search", "flow:browse", "flow:buy"]
    assert got.figures[OVERALL]["requests"] == 1000 and got.figures[OVERALL]["name"] == "all"
    assert got.figures["search"]["failed"] == 4
    assert got.figures["search"]["latency_ms"]["p95"] == 50.0
    assert got.figures["flow:buy"]["name"] == "flow:buy"
    assert got.figures["flow:buy"]["requests"] == 500
    samples = {k: v.tolist() for k, v in got.samples.items()}
    assert list(samples) == [OVERALL, "api", "search", "flow:browse", "flow:buy"]
    assert samples == {
        OVERALL: [10.0, 20.0, 30.0, 40.0, 55.0],
        "api": [10.0, 20.0, 30.0],
        "search": [40.0, 55.0],
        "flow:browse": [20.0, 30.0],
        "flow:buy": [10.0, 55.0],
    }
    assert all(v.dtype == np.float64 for v in got.samples.values())


def test_a_run_without_flows_has_no_flow_rows(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    raw_csv(folder / RunFolder.RAW_CSV, POINTS)
    got = load_run(folder)
    assert list(got.figures) == [OVERALL, "api", "search"]
    assert list(got.samples) == [OVERALL, "api", "search"]


def test_the_raw_file_results_json_names_is_read(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run", raw_file="points.csv")
    raw_csv(folder / "points.csv", [("api", "default", 5.0), ("api", "default", 7.0)])
    raw_csv(folder / RunFolder.RAW_CSV, [("other", "default", 1.0)])
    results = read_results(folder)
    assert {k: v.tolist() for k, v in latency_samples(folder, results).items()} == {
        OVERALL: [5.0, 7.0], "api": [5.0, 7.0],
    }  # fmt: skip
    # a named file that is gone: the run folder's own raw file instead
    (folder / "points.csv").unlink()
    assert latency_samples(folder, results)[OVERALL].tolist() == [1.0]


def test_a_run_without_raw_points_has_no_samples(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run")
    assert latency_samples(folder, read_results(folder)) == {}
    (folder / RunFolder.RAW_CSV).write_text(CSV_HEADER + "\n", encoding="utf-8")
    assert latency_samples(folder, read_results(folder)) == {}
    assert load_run(folder).samples == {}


@pytest.mark.slow
def test_a_run_folder_without_results_json_is_reported_first(tmp_path: Path) -> None:
    # building the report draws its charts (~3 s): slow lane
    folder = tmp_path / "run"
    folder.mkdir()
    RunManifest(scenario="checkout", outcome=Outcome.PASSED, exit_code=0).save(folder)
    raw_csv(folder / RunFolder.RAW_CSV, POINTS)
    got = load_run(folder)
    assert RunFolder(folder).results_path.is_file()
    assert got.figures[OVERALL]["requests"] == 5
    # three k6 scenarios: each is a flow, as in a mix
    names = [OVERALL, "api", "search", "flow:browse", "flow:buy", "flow:other"]
    assert list(got.figures) == names and list(got.samples) == names
    assert got.samples["search"].tolist() == [40.0, 55.0]
    assert got.samples["flow:buy"].tolist() == [10.0, 55.0]


def test_figures_by_endpoint_skips_unnamed_and_overall_entries(tmp_path: Path) -> None:
    results = read_results(run_folder(tmp_path / "run"))
    got = figures_by_endpoint(results)
    assert list(got) == [OVERALL, "api", "search"]
    assert got["api"] == results.endpoints[0].model_dump()
    assert got[OVERALL] == results.overall.model_dump()  # type: ignore[union-attr]
    assert figures_by_endpoint(ResultsDocument()) == {}


def test_something_that_is_not_a_run_folder_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        read_results(missing)
    assert caught.value.message == (
        f"{missing} is not a run folder; pass a folder under results/ written by `orch run`"
    )
    file = tmp_path / "file.txt"
    file.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a run folder"):
        load_run(file)


@pytest.mark.parametrize(
    ("recorded", "code", "reported", "reported_code", "expected"),
    [
        pytest.param(Outcome.PASSED, 0, None, None, (Outcome.PASSED, 0), id="run.json"),
        pytest.param(Outcome.THRESHOLDS_FAILED, 99, Outcome.PASSED, 0,
                     (Outcome.THRESHOLDS_FAILED, 99), id="run.json-over-a-complete-report"),
        pytest.param(Outcome.PASSED, 0, Outcome.LOAD_NOT_DELIVERED, 10,
                     (Outcome.LOAD_NOT_DELIVERED, 10), id="report-says-not-complete"),
        pytest.param(Outcome.INTERRUPTED, 130, Outcome.K6_ERROR, 5,
                     (Outcome.INTERRUPTED, 130), id="both-incomplete-run.json-wins"),
        pytest.param(None, None, Outcome.CRASHED, 5, (Outcome.CRASHED, 5),
                     id="no-outcome-in-run.json"),
        pytest.param(None, 3, Outcome.PASSED, 0, (Outcome.PASSED, 0),
                     id="no-outcome-in-run.json-complete-report"),
    ],
)  # fmt: skip
def test_a_runs_outcome_is_run_jsons_unless_the_report_knows_worse(
    tmp_path: Path,
    recorded: Outcome | None,
    code: int | None,
    reported: Outcome | None,
    reported_code: int | None,
    expected: tuple[Outcome | None, int | None],
) -> None:
    folder = run_folder(tmp_path / "run", outcome=recorded, exit_code=code, reported=reported,
                        reported_code=reported_code)  # fmt: skip
    assert run_outcome(folder, read_results(folder)) == expected
    assert (load_run(folder).outcome, load_run(folder).exit_code) == expected


def test_a_folder_without_run_json_has_the_reports_outcome(tmp_path: Path) -> None:
    folder = run_folder(tmp_path / "run", manifest=False, reported=Outcome.INTERRUPTED,
                        reported_code=130)  # fmt: skip
    assert run_outcome(folder, read_results(folder)) == (Outcome.INTERRUPTED, 130)
    bare = run_folder(tmp_path / "bare", manifest=False)
    assert run_outcome(bare, read_results(bare)) == (None, None)

"""k6's scenario options as orch reads them: durations, the VUs each executor may use, how
long and how many iterations a scenario plans, and the options k6 would refuse.

The duration syntax is also checked against the real k6 (test_verdict_integrity.py); here
each rule is pinned to its value, so a change shows which one moved.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.config import max_vus, parse_duration, planned_seconds
from orchestrator.config.k6_options import K6OptionError, check_options, option_problems
from orchestrator.results.delivery import Counts, Rule, build_delivery, planned_iterations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0), (".5m", 30.0),
        ("1h1m1s1ms", 3661.001), ("90us", 90e-6), ("90µs", 90e-6), ("7ns", 7e-9),
        ("2d", 172800.0), ("1d12h", 129600.0), ("-1d", -86400.0), ("-1s", -1.0), ("+2s", 2.0),
        # a plain number, as a number or a string, is milliseconds
        (250, 0.25), ("250", 0.25), (1500.5, 1.5005), ("1e3", 1.0), (0, 0.0),
    ],
)  # fmt: skip
def test_a_duration_in_seconds(value: Any, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    "value", [None, True, [1], {"s": 1}, float("inf"), float("nan"), "", "s", "1 s", "1S",
              "1x", "1d-1h", "1.5d", "1h1d", "soon"]
)  # fmt: skip
def test_what_is_not_a_duration_says_what_is(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == (
        f"{value!r} is not a k6 duration (e.g. 30s, 500ms, 1m30s, 2h, 1d, or a number of "
        "milliseconds)"
    )


@pytest.mark.parametrize(
    ("options", "most"),
    [
        ({"executor": "constant-arrival-rate", "preAllocatedVUs": 2, "maxVUs": 10}, 10),
        ({"executor": "constant-arrival-rate", "preAllocatedVUs": 4}, 4),
        ({"executor": "ramping-arrival-rate", "preAllocatedVUs": 3,
          "stages": [{"duration": "1s", "target": 700}]}, 3),  # targets are rates, not VUs
        ({"executor": "ramping-vus", "startVUs": 9,
          "stages": [{"duration": "1s", "target": 2}, {"duration": "1s", "target": 5}]}, 9),
        ({"executor": "ramping-vus", "stages": [{"duration": "1s", "target": 5}, "junk"]}, 5),
        ({"executor": "constant-vus", "vus": 6, "duration": "1s"}, 6),
        ({"executor": "externally-controlled", "vus": 2, "maxVUs": 8}, 8),
        ({"executor": "per-vu-iterations", "vus": 3.0}, 3),
        ({"executor": "shared-iterations", "iterations": 10}, None),  # k6's default, unstated
        ({"executor": "constant-vus", "vus": True}, None),  # not a number
    ],
)  # fmt: skip
def test_the_most_vus_each_executor_may_use(options: dict[str, Any], most: int | None) -> None:
    assert max_vus(options) == most


@pytest.mark.parametrize(
    ("options", "seconds"),
    [
        ({"executor": "constant-vus", "duration": "1m30s"}, 90.0),
        ({"executor": "constant-vus", "duration": "30s", "startTime": "10s"}, 40.0),
        ({"executor": "constant-vus", "duration": 2000, "startTime": 500}, 2.5),
        ({"executor": "ramping-arrival-rate",
          "stages": [{"duration": "1m", "target": 1}, {"duration": "30s", "target": 0}]}, 90.0),
        ({"executor": "ramping-vus", "stages": [{"target": 3}]}, 0.0),
        ({"executor": "shared-iterations", "iterations": 10, "maxDuration": "10m"}, None),
        ({"executor": "per-vu-iterations", "startTime": "5s"}, None),
    ],
)  # fmt: skip
def test_how_long_a_scenario_is_planned_to_last(
    options: dict[str, Any], seconds: float | None
) -> None:
    assert planned_seconds(options) == seconds


def test_planned_seconds_refuses_a_bad_duration_as_parse_duration_does() -> None:
    with pytest.raises(ValueError, match="'soon' is not a k6 duration"):
        planned_seconds({"executor": "constant-vus", "duration": "soon"})


@pytest.mark.parametrize(
    ("options", "planned"),
    [
        ({"executor": "constant-arrival-rate", "rate": 3, "timeUnit": "7s", "duration": "10s"},
         30 / 7),
        ({"executor": "constant-arrival-rate", "rate": 5, "duration": 4000}, 20.0),
        ({"executor": "ramping-arrival-rate", "startRate": 4, "timeUnit": "1s",
          "stages": [{"target": 0, "duration": "3s"}]}, 6.0),
        ({"executor": "constant-arrival-rate", "rate": 5, "timeUnit": "0s", "duration": "4s"},
         None),
        ({"executor": "constant-arrival-rate", "rate": "5", "duration": "4s"}, None),
        ({"executor": "ramping-arrival-rate", "stages": [{"target": 2}]}, None),
        ({"executor": "per-vu-iterations", "vus": 3}, 3.0),  # one iteration each by default
        ({"executor": "shared-iterations"}, 1.0),
        ({"executor": "externally-controlled", "vus": 1, "duration": "1m"}, None),
    ],
)  # fmt: skip
def test_planned_iterations_of_edge_profiles(
    options: dict[str, Any], planned: float | None
) -> None:
    result = planned_iterations(options)
    assert result == (pytest.approx(planned) if planned is not None else None)


def _delivery(options: dict[str, Any], counts: Counts) -> Any:
    return build_delivery(
        load_profile=options, rule=Rule(), default_name="main", per_scenario={"main": counts},
        totals=None, source="raw points", vus_peak=None, vus_max_peak=None,
    )  # fmt: skip


def test_planned_figures_round_by_one_rule() -> None:
    """Planned iterations: whole when whole, else one decimal; planned requests: planned
    iterations x requests an iteration made, that ratio taken as whole within 5 %."""
    uneven = {"executor": "constant-arrival-rate", "rate": 3, "timeUnit": "7s", "duration": "10s"}
    doc = _delivery(uneven, Counts(iterations=4, dropped=0, requests=8))
    assert doc.planned_iterations == 4.3 and doc.scenarios[0].planned_iterations == 4.3
    assert doc.planned_requests == 9  # round(30/7 * 2)
    assert doc.headline == "8 of 9 requests"
    whole = {"executor": "constant-arrival-rate", "rate": 10, "duration": "10s"}
    doc = _delivery(whole, Counts(iterations=98, dropped=0, requests=200))
    assert doc.planned_iterations == 100 and isinstance(doc.planned_iterations, int)
    assert doc.planned_requests == 200  # 200 / 98 = 2.04, within 5 % of 2: taken as 2
    doc = _delivery(whole, Counts(iterations=90, dropped=10, requests=200))
    assert doc.planned_requests == 222  # 200 / 90 = 2.22, not within 5 %: kept
    assert doc.headline == "200 of 222 requests; 10 iterations dropped"
    none_made = _delivery(uneven, Counts())
    assert none_made.planned_requests is None
    assert none_made.headline == "0 of 4.3 iterations"


def test_a_scenario_ending_by_vus_plans_nothing_and_is_not_judged() -> None:
    doc = _delivery({"executor": "constant-vus", "vus": 2, "duration": "5s"}, Counts(50, 0, 50))
    assert doc.planned_iterations is None and doc.headline is None
    assert doc.delivered is None and doc.scenarios[0].delivered is None


def test_several_named_scenarios_are_judged_each_and_together() -> None:
    profile = {
        "browse": {"executor": "constant-arrival-rate", "rate": 10, "duration": "10s"},
        "buy": {"executor": "shared-iterations", "vus": 2, "iterations": 20},
    }
    doc = build_delivery(
        load_profile=profile, rule=Rule(), default_name="x", totals=None, source="raw points",
        per_scenario={"browse": Counts(100, 0, 100), "buy": Counts(12, 0, 24)},
        vus_peak=3, vus_max_peak=4,
    )  # fmt: skip
    assert [(s.name, s.delivered) for s in doc.scenarios] == [("browse", True), ("buy", False)]
    assert doc.delivered is False  # one scenario short is enough
    assert (doc.planned_iterations, doc.achieved_iterations) == (120, 112)
    assert doc.planned_requests == 100 + 40
    assert doc.scenarios[1].achieved_share == pytest.approx(0.6)


# --- options k6 would refuse ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("executor", "options", "problems"),
    [
        ("constant-arrival-rate", {},
         [("rate", "required by executor 'constant-arrival-rate'"),
          ("duration", "required by executor 'constant-arrival-rate'"),
          ("preAllocatedVUs", "required by executor 'constant-arrival-rate'")]),
        ("ramping-vus", {"stages": "x"}, [("stages", "must be a list of at least one "
                                           "{duration, target}")]),
        ("ramping-vus", {"stages": []}, [("stages", "must be a list of at least one "
                                          "{duration, target}")]),
        ("ramping-vus", {"stages": [3, {"duration": "1s", "target": 1, "extra": 2}, {}]},
         [("stages.0", "must be a mapping with duration and target"),
          ("stages.1.extra", "unknown key (a stage has duration, target)"),
          ("stages.2.duration", "required key is missing"),
          ("stages.2.target", "required key is missing")]),
        ("shared-iterations", {"vus": 5, "iterations": 2},
         [("iterations", "2 is less than vus (5)")]),
        ("shared-iterations", {"vus": 5}, [("iterations", "1 is less than vus (5)")]),
        ("externally-controlled", {"vus": 5, "maxVUs": 2, "duration": "1s"},
         [("vus", "5 is more than maxVUs (2)")]),
        ("constant-arrival-rate",
         {"rate": 1, "duration": "1s", "preAllocatedVUs": 5, "maxVUs": 2},
         [("maxVUs", "2 is less than preAllocatedVUs (5)")]),
        # a wrong type is named once, not again as a comparison
        ("constant-arrival-rate",
         {"rate": 1, "duration": "1s", "preAllocatedVUs": "x", "maxVUs": 2},
         [("preAllocatedVUs", "must be a whole number, not 'x'")]),
        ("constant-vus",
         {"duration": "1s", "startTime": "-1s", "env": {"A": 1}, "gracefulStop": "x"},
         [("startTime", "'-1s' is negative"),
          ("env", 'must map names to strings (quote numbers: "1")'),
          ("gracefulStop", "'x' is not a k6 duration (e.g. 30s, 500ms, 1m30s, 2h, 1d, or a "
                           "number of milliseconds)")]),
        ("per-vu-iterations", {"vus": 0, "iterations": True, "maxDuration": "0.5s"},
         [("vus", "must be 1 or more, not 0"), ("iterations", "must be a whole number, not True"),
          ("maxDuration", "'0.5s' is shorter than k6's minimum of 1s")]),
        ("constant-arrival-rate",
         {"rate": 2.0, "timeUnit": "1s", "duration": "1m", "preAllocatedVUs": 1, "maxVUs": 1},
         []),  # 2.0 is a whole number
        ("externally-controlled", {"duration": "0s"}, []),
    ],
)  # fmt: skip
def test_each_option_k6_would_refuse_is_named(
    executor: str, options: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    assert option_problems(executor, options) == problems
    if problems:
        with pytest.raises(K6OptionError) as caught:
            check_options(executor, options)
        assert caught.value.problems == problems
        assert str(caught.value) == "; ".join(f"{k}: {p}" for k, p in problems)
    else:
        check_options(executor, options)

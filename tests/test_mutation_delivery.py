"""The planned-against-delivered load judgement (``results.delivery``) and the verdict line
a person reads (``results.verdict``): planned iterations per executor, the delivery rule at
its boundaries, the run's delivery section and headline, the load generator of several k6
processes, and the line for every outcome. Fast: no k6."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import ExitCode, Outcome
from orchestrator.results.delivery import (
    DEFAULT_MAX_DROPPED,
    DEFAULT_MIN_ACHIEVED,
    Counts,
    Rule,
    build_delivery,
    combine_load_generators,
    configured_max_vus,
    headline,
    judge_outcome,
    k6_scenarios,
    load_generator,
    planned_iterations,
    scenario_delivery,
    seconds,
)
from orchestrator.results.model import Delivery, LoadGenerator, ResultsDocument
from orchestrator.results.verdict import verdict_line

RATE: dict[str, Any] = {
    "executor": "constant-arrival-rate", "rate": 10, "timeUnit": "1s", "duration": "10s",
    "preAllocatedVUs": 5, "maxVUs": 20,
}  # fmt: skip
RAMP: dict[str, Any] = {
    "executor": "ramping-arrival-rate", "startRate": 0, "timeUnit": "1s",
    "stages": [{"target": 10, "duration": "10s"}, {"target": 10, "duration": "10s"},
               {"target": 0, "duration": "10s"}],
}  # fmt: skip
VUS: dict[str, Any] = {"executor": "constant-vus", "vus": 5, "duration": "10s"}


# ------------------------------------------------------------------ the rule


def test_the_default_rule_is_95_percent_achieved_and_1_percent_dropped() -> None:
    assert (DEFAULT_MIN_ACHIEVED, DEFAULT_MAX_DROPPED) == (0.95, 0.01)
    assert Rule() == Rule(0.95, 0.01, True)


@pytest.mark.parametrize("recorded", [None, {}])
def test_a_folder_older_than_the_rule_is_judged_by_the_default(
    recorded: dict[str, Any] | None,
) -> None:
    assert Rule.of(recorded) == Rule(0.95, 0.01, True)


def test_an_opted_out_rule_is_not_judged_whatever_its_numbers() -> None:
    assert Rule.of({"judged": False, "min_achieved": 0.5}) == Rule(0.95, 0.01, False)


def test_the_recorded_numbers_are_read_each_with_its_own_default() -> None:
    assert Rule.of({"judged": True}) == Rule(0.95, 0.01, True)
    assert Rule.of({"min_achieved": 0.9}) == Rule(0.9, 0.01, True)
    assert Rule.of({"max_dropped": 0.05}) == Rule(0.95, 0.05, True)
    rule = Rule.of({"min_achieved": 1, "max_dropped": "0"})
    assert rule == Rule(1.0, 0.0, True)
    assert (type(rule.min_achieved), type(rule.max_dropped)) == (float, float)


# ------------------------------------------------------------------ planned iterations


def test_durations_are_read_by_k6s_rules_and_unreadable_ones_are_none() -> None:
    assert seconds("1m30s") == 90.0
    assert seconds(1500) == 1.5  # a number is milliseconds
    assert seconds("soon") is None
    assert seconds(None) is None


@pytest.mark.parametrize(
    ("options", "planned"),
    [
        (RATE, 100.0),
        ({**RATE, "timeUnit": "2s"}, 50.0),
        ({**RATE, "timeUnit": "1m", "rate": 600}, 100.0),
        ({k: v for k, v in RATE.items() if k != "timeUnit"}, 100.0),  # timeUnit 1s
        ({**RATE, "duration": 10000}, 100.0),  # milliseconds
        ({**RATE, "rate": 2.5}, 25.0),
        ({**RATE, "timeUnit": "0s"}, None),
        ({**RATE, "timeUnit": "often"}, None),
        ({**RATE, "rate": None}, None),
        ({**RATE, "rate": True}, None),
        ({**RATE, "rate": "10"}, None),
        ({k: v for k, v in RATE.items() if k != "rate"}, None),
        ({**RATE, "duration": "long"}, None),
        ({k: v for k, v in RATE.items() if k != "duration"}, None),
    ],
)
def test_a_constant_arrival_rate_plans_rate_times_duration_per_time_unit(
    options: dict[str, Any], planned: float | None
) -> None:
    assert planned_iterations(options) == planned


@pytest.mark.parametrize(
    ("options", "planned"),
    [
        (RAMP, 200.0),  # 50 + 100 + 50
        ({**RAMP, "startRate": 10}, 250.0),  # 100 + 100 + 50
        ({k: v for k, v in RAMP.items() if k != "startRate"}, 200.0),  # from 0
        ({**RAMP, "startRate": None}, 200.0),
        ({**RAMP, "startRate": True}, 200.0),  # not a number: from 0
        ({**RAMP, "timeUnit": "2s"}, 100.0),
        ({**RAMP, "timeUnit": "0s"}, None),
        ({**RAMP, "stages": [{"target": 20, "duration": "4s"}]}, 40.0),
        ({**RAMP, "startRate": 4, "stages": [{"target": 0, "duration": 3000}]}, 6.0),
        ({**RAMP, "stages": []}, 0.0),
        ({**RAMP, "stages": None}, 0.0),
        ({k: v for k, v in RAMP.items() if k != "stages"}, 0.0),
        ({**RAMP, "stages": [{"target": 10, "duration": "10s"}, "10s"]}, None),
        ({**RAMP, "stages": [{"duration": "10s"}]}, None),
        ({**RAMP, "stages": [{"target": False, "duration": "10s"}]}, None),
        ({**RAMP, "stages": [{"target": 10}]}, None),
        ({**RAMP, "stages": [{"target": 10, "duration": "later"}]}, None),
    ],
)
def test_a_ramping_arrival_rate_plans_the_integral_of_its_stages(
    options: dict[str, Any], planned: float | None
) -> None:
    assert planned_iterations(options) == planned


@pytest.mark.parametrize(
    ("options", "planned"),
    [
        ({"executor": "shared-iterations", "vus": 4, "iterations": 30}, 30.0),
        ({"executor": "shared-iterations", "vus": 4}, 1.0),
        ({"executor": "shared-iterations", "iterations": "30"}, None),
        ({"executor": "per-vu-iterations", "vus": 3, "iterations": 4}, 12.0),
        ({"executor": "per-vu-iterations", "iterations": 4}, 4.0),
        ({"executor": "per-vu-iterations", "vus": 3}, 3.0),
        ({"executor": "per-vu-iterations"}, 1.0),
        ({"executor": "per-vu-iterations", "vus": True, "iterations": 4}, None),
        ({"executor": "per-vu-iterations", "vus": 3, "iterations": None}, None),
        (VUS, None),
        ({"executor": "ramping-vus", "stages": [{"target": 5, "duration": "10s"}]}, None),
        ({"executor": "externally-controlled", "vus": 5}, None),
        ({}, None),
    ],
)
def test_the_iteration_executors_plan_their_count_and_the_vu_ones_none(
    options: dict[str, Any], planned: float | None
) -> None:
    result = planned_iterations(options)
    assert result == planned
    assert result is None or type(result) is float


def test_only_arrival_rate_executors_have_a_vu_ceiling() -> None:
    assert configured_max_vus(RATE) == 20
    assert configured_max_vus({**RAMP, "preAllocatedVUs": 7}) == 7
    assert configured_max_vus({**VUS, "maxVUs": 9}) is None
    assert configured_max_vus({"executor": "per-vu-iterations", "vus": 3}) is None


def test_the_k6_scenarios_of_a_load_profile_by_name() -> None:
    assert k6_scenarios(None, "default") == {}
    assert k6_scenarios({}, "default") == {}
    assert k6_scenarios([RATE], "default") == {}  # type: ignore[arg-type]
    assert k6_scenarios(RATE, "default") == {"default": RATE}
    several: dict[Any, Any] = {"a": RATE, 2: VUS, "note": "x", "bare": {"rate": 1}}
    assert k6_scenarios(several, "default") == {"a": RATE, "2": VUS}


# ------------------------------------------------------------------ one scenario


def _row(options: dict[str, Any], iterations: int, dropped: int = 0, requests: int | None = None,
         rule: Rule | None = None, peak: float | None = None) -> Any:  # fmt: skip
    counts = Counts(iterations, dropped, iterations if requests is None else requests)
    return scenario_delivery("api", options, counts, rule or Rule(), peak)


def test_a_scenarios_row_holds_planned_and_achieved() -> None:
    row = _row(RATE, 97, dropped=1, requests=194, peak=12)
    assert row.model_dump() == {
        "name": "api", "executor": "constant-arrival-rate", "planned_iterations": 100,
        "achieved_iterations": 97, "dropped_iterations": 1, "achieved_share": 0.97,
        "dropped_share": 0.01, "planned_requests": 200, "achieved_requests": 194,
        "max_vus": 20, "reached_max_vus": False, "delivered": True,
    }  # fmt: skip
    assert type(row.planned_iterations) is int


@pytest.mark.parametrize(
    ("iterations", "dropped", "delivered"),
    [(100, 0, True), (95, 0, True), (94, 0, False), (0, 0, False), (120, 0, True),
     (100, 1, True), (100, 2, False), (95, 1, True), (94, 1, False)],
)  # fmt: skip
def test_the_default_rule_at_its_boundaries(iterations: int, dropped: int, delivered: bool) -> None:
    assert _row(RATE, iterations, dropped).delivered is delivered


def test_a_stricter_rule_is_applied_on_both_sides() -> None:
    rule = Rule(0.99, 0.0)
    assert _row(RATE, 99, rule=rule).delivered is True
    assert _row(RATE, 98, rule=rule).delivered is False
    assert _row(RATE, 100, dropped=1, rule=rule).delivered is False
    assert _row(RATE, 100, dropped=0, rule=rule).delivered is True


def test_an_opted_out_rule_keeps_the_shares_but_gives_no_verdict() -> None:
    row = _row(RATE, 50, dropped=50, rule=Rule(judged=False))
    assert (row.achieved_share, row.dropped_share, row.delivered) == (0.5, 0.5, None)


@pytest.mark.parametrize("options", [VUS, {**RATE, "rate": 0}])
def test_a_scenario_that_plans_nothing_is_shown_not_judged(options: dict[str, Any]) -> None:
    row = _row(options, 40, dropped=3)
    assert (row.achieved_share, row.dropped_share, row.delivered) == (None, None, None)
    assert (row.achieved_iterations, row.dropped_iterations, row.achieved_requests) == (40, 3, 40)


def test_the_planned_figures_of_a_vu_executor_are_unknown() -> None:
    row = _row(VUS, 40)
    assert (row.planned_iterations, row.planned_requests, row.max_vus) == (None, None, None)
    assert row.executor == "constant-vus"


def test_a_rate_of_zero_plans_zero() -> None:
    row = _row({**RATE, "rate": 0}, 0)
    assert row.planned_iterations == 0 and type(row.planned_iterations) is int


def test_planned_iterations_are_shown_to_one_decimal() -> None:
    third = {**RATE, "rate": 1, "timeUnit": "3s"}  # 10 / 3 = 3.33...
    assert _row(third, 3).planned_iterations == 3.3
    assert _row({**RATE, "rate": 2.5, "duration": "1s"}, 2).planned_iterations == 2.5


@pytest.mark.parametrize(
    ("iterations", "requests", "planned_requests"),
    [
        (100, 300, 300),  # 3 per iteration
        (100, 295, 300),  # 2.95: within 5 % of 3
        (4, 19, 500),  # 4.75: exactly 5 % under 5, rounded
        (100, 284, 284),  # 2.84: more than 5 % from 3, kept
        (100, 316, 316),  # 3.16
        (100, 0, 0),
        (100, 40, 40),  # 0.4: no whole number near it
        (1, 3, 300),  # one completed iteration is enough to know
        (0, 0, None),  # no completed iteration: unknown
    ],
)
def test_planned_requests_scale_the_requests_an_iteration_made(
    iterations: int, requests: int, planned_requests: int | None
) -> None:
    row = _row(RATE, iterations, requests=requests)
    assert row.planned_requests == planned_requests
    assert planned_requests is None or type(row.planned_requests) is int


def test_planned_requests_of_a_fractional_plan_are_whole() -> None:
    third = {**RATE, "rate": 1, "timeUnit": "3s"}  # 3.33 iterations planned
    assert _row(third, 3, requests=6).planned_requests == 7  # round(6.67)


@pytest.mark.parametrize(("peak", "reached"), [(19, False), (19.5, False), (20, True), (21, True),
                                               (None, None)])  # fmt: skip
def test_reaching_max_vus_is_the_peak_against_the_ceiling(
    peak: float | None, reached: bool | None
) -> None:
    assert _row(RATE, 100, peak=peak).reached_max_vus is reached


def test_a_vu_executor_has_no_ceiling_to_reach() -> None:
    assert _row(VUS, 100, peak=50).reached_max_vus is None


# ------------------------------------------------------------------ the run's delivery


def _build(load_profile: Any, per: dict[str, Counts] | None = None, totals: Counts | None = None,
           rule: Rule | None = None, source: str | None = "raw points",
           vus_peak: float | None = 8, vus_max_peak: float | None = 20) -> Delivery:  # fmt: skip
    return build_delivery(
        load_profile=load_profile, rule=rule or Rule(), default_name="default",
        per_scenario=per, totals=totals, source=source, vus_peak=vus_peak,
        vus_max_peak=vus_max_peak,
    )  # fmt: skip


def test_one_scenario_is_named_by_its_k6_tag_and_counted_from_its_points() -> None:
    doc = _build(RATE, per={"ramp_api": Counts(90, 10, 180)}, totals=Counts(1, 1, 1))
    (row,) = doc.scenarios
    assert (row.name, row.achieved_iterations, row.dropped_iterations) == ("ramp_api", 90, 10)
    assert row.reached_max_vus is True  # the run's vus_max peak stands for its one scenario
    assert doc.model_dump() == {
        "judged": True, "min_achieved": 0.95, "max_dropped": 0.01, "delivered": False,
        "headline": "180 of 200 requests; 10 iterations dropped", "source": "raw points",
        "planned_iterations": 100, "achieved_iterations": 90, "dropped_iterations": 10,
        "planned_requests": 200, "achieved_requests": 180, "vus_peak": 8, "vus_max_peak": 20,
        "scenarios": [row.model_dump()],
    }  # fmt: skip


def test_one_scenario_without_points_is_counted_from_the_summary() -> None:
    doc = _build(RATE, per={"": Counts(5, 0, 5)}, totals=Counts(100, 0, 100))
    (row,) = doc.scenarios
    assert (row.name, row.achieved_iterations, row.delivered) == ("default", 100, True)
    assert doc.delivered is True and doc.headline == "100 of 100 requests"


def test_one_scenario_with_no_counts_at_all_achieved_nothing() -> None:
    doc = _build(RATE, per=None, totals=None)
    (row,) = doc.scenarios
    assert (row.name, row.achieved_iterations, row.delivered) == ("default", 0, False)
    assert doc.planned_requests is None
    assert doc.headline == "0 of 100 iterations"


def test_one_profile_scenario_named_in_a_mix_keeps_its_name() -> None:
    doc = _build({"checkout": RATE}, per={}, totals=Counts(100, 0, 100))
    assert [r.name for r in doc.scenarios] == ["checkout"]


def test_several_scenarios_are_counted_by_name_without_the_runs_vu_peak() -> None:
    profile = {"a": RATE, "b": {**RATE, "rate": 5}, "c": VUS}
    per = {"a": Counts(100, 0, 200), "b": Counts(30, 20, 30), "ignored": Counts(7, 7, 7)}
    doc = _build(profile, per=per, vus_max_peak=500)
    assert [(r.name, r.achieved_iterations, r.delivered) for r in doc.scenarios] == [
        ("a", 100, True), ("b", 30, False), ("c", 0, None)]  # fmt: skip
    assert [r.reached_max_vus for r in doc.scenarios] == [None, None, None]
    assert doc.delivered is False  # one not delivered
    assert doc.planned_iterations is None  # c plans no count
    assert (doc.achieved_iterations, doc.dropped_iterations, doc.achieved_requests) == (
        130, 20, 230)  # fmt: skip
    assert doc.planned_requests is None
    assert doc.headline is None


def test_one_planned_scenario_with_several_tags_seen_is_matched_by_name() -> None:
    doc = _build(RATE, per={"default": Counts(100, 0, 100), "other": Counts(5, 0, 5)})
    (row,) = doc.scenarios
    assert (row.name, row.achieved_iterations, row.reached_max_vus) == ("default", 100, None)


def test_the_runs_figures_add_up_over_its_scenarios() -> None:
    profile = {"a": RATE, "b": {**RATE, "rate": 2.5}}
    doc = _build(profile, per={"a": Counts(100, 1, 300), "b": Counts(25, 0, 25)})
    assert doc.delivered is True
    assert (doc.planned_iterations, doc.planned_requests) == (125, 325)
    assert type(doc.planned_iterations) is int
    assert doc.headline == "325 of 325 requests; 1 iterations dropped"


def test_a_scenario_that_plans_zero_adds_zero_to_the_runs_plan() -> None:
    profile = {"idle": {**RATE, "rate": 0}, "b": {**RATE, "rate": 2.5}}
    doc = _build(profile, per={"idle": Counts(1, 0, 0), "b": Counts(25, 0, 25)})
    assert [r.planned_requests for r in doc.scenarios] == [0, 25]
    assert (doc.planned_iterations, doc.planned_requests) == (25, 25)


def test_a_run_is_delivered_when_no_scenario_failed_and_one_was_judged() -> None:
    doc = _build({"a": RATE, "c": VUS}, per={"a": Counts(100, 0, 100), "c": Counts(9, 0, 9)})
    assert doc.delivered is True
    doc = _build({"c": VUS, "a": RATE}, per={"a": Counts(10, 0, 10), "c": Counts(9, 0, 9)})
    assert doc.delivered is False
    doc = _build({"c": VUS, "d": VUS}, per={"c": Counts(9, 0, 9), "d": Counts(1, 0, 1)})
    assert doc.delivered is None


def test_an_opted_out_run_records_no_rule_and_no_verdict() -> None:
    doc = _build(RATE, per={"default": Counts(10, 90, 10)}, rule=Rule(judged=False))
    assert (doc.judged, doc.min_achieved, doc.max_dropped, doc.delivered) == (
        False, None, None, None)  # fmt: skip
    assert doc.headline == "10 of 100 requests; 90 iterations dropped"


def test_a_run_without_a_load_profile_has_an_empty_delivery() -> None:
    doc = _build(None, per={"x": Counts(5, 0, 5)}, totals=Counts(5, 0, 5))
    assert doc.scenarios == []
    assert (doc.delivered, doc.source, doc.planned_iterations, doc.planned_requests) == (
        None, None, None, None)  # fmt: skip
    assert (doc.achieved_iterations, doc.achieved_requests, doc.headline) == (0, 0, None)
    assert (doc.vus_peak, doc.vus_max_peak) == (8, 20)


# ------------------------------------------------------------------ the headline


def test_the_headline_counts_requests_with_thousands_separators() -> None:
    doc = Delivery(planned_iterations=1000, planned_requests=20000, achieved_requests=8100,
                   achieved_iterations=405, dropped_iterations=1200)  # fmt: skip
    assert headline(doc) == "8,100 of 20,000 requests; 1,200 iterations dropped"


def test_the_headline_counts_iterations_when_requests_are_unknown() -> None:
    doc = Delivery(planned_iterations=1234.5, achieved_iterations=1000)
    assert headline(doc) == "1,000 of 1,234.5 iterations"
    doc = Delivery(planned_iterations=1234.56, achieved_iterations=1000)
    assert headline(doc) == "1,000 of 1,234.6 iterations"  # to one decimal
    doc = Delivery(planned_iterations=2000, achieved_iterations=1000, dropped_iterations=3)
    assert headline(doc) == "1,000 of 2,000 iterations; 3 iterations dropped"


def test_no_headline_without_a_plan() -> None:
    assert headline(Delivery(planned_requests=10, achieved_requests=5)) is None


# ------------------------------------------------------------------ the load generator


def test_run_jsons_load_generator_is_read_into_the_model() -> None:
    assert load_generator(None) is None
    assert load_generator({}) is None
    assert load_generator({"source": "psutil", "samples": 3}) == LoadGenerator(
        source="psutil", samples=3)  # fmt: skip


PART: dict[str, Any] = {
    "source": "psutil", "samples": 10, "interval_s": 0.5, "cpu_cores_available": 2,
    "cpu_avg_pct": 45.555, "cpu_max_pct": 80.055, "memory_avg_mib": 100.04,
    "memory_max_mib": 120.03, "saturated_share": 0.2, "saturated": False,
}  # fmt: skip


def test_no_load_generator_known_is_none_and_one_is_itself() -> None:
    assert combine_load_generators([]) is None
    assert combine_load_generators([None, {}]) is None
    one = combine_load_generators([None, PART])
    assert one == PART and one is not PART


def test_several_processes_add_up() -> None:
    other = {**PART, "source": "docker", "samples": 6, "interval_s": 1.0,
             "cpu_cores_available": 4, "saturated_share": 0.6}  # fmt: skip
    assert combine_load_generators([PART, None, other]) == {
        "source": "psutil, 2 processes", "samples": 16, "interval_s": 0.5,
        "cpu_cores_available": 4.0, "cpu_avg_pct": 91.1, "cpu_max_pct": 160.1,
        "memory_avg_mib": 200.1, "memory_max_mib": 240.1, "saturated_share": 0.6,
        "saturated": False,
    }  # fmt: skip


def test_missing_figures_count_as_zero() -> None:
    combined = combine_load_generators([{"source": "a", "samples": 2}, {"source": "b"}])
    assert combined == {
        "source": "a, 2 processes", "samples": 2, "interval_s": None,
        "cpu_cores_available": 0.0, "cpu_avg_pct": 0.0, "cpu_max_pct": 0.0,
        "memory_avg_mib": 0.0, "memory_max_mib": 0.0, "saturated_share": 0.0,
        "saturated": False,
    }


def _shards(avg_each: float, *, cores: float = 2, same_machine: bool = True,
            saturated: bool = False) -> bool:  # fmt: skip
    parts: list[dict[str, Any] | None] = [
        {**PART, "cpu_avg_pct": avg_each, "cpu_cores_available": cores, "saturated": s}
        for s in (False, saturated)
    ]
    combined = combine_load_generators(parts, same_machine=same_machine)
    assert combined is not None
    return bool(combined["saturated"])


def test_shards_on_one_machine_saturate_it_at_90_percent_of_its_cores_together() -> None:
    assert _shards(90.0) is True  # 180 % of 2 cores: exactly 90 %
    assert _shards(89.95) is False
    assert _shards(100.0) is True
    assert _shards(135.0, cores=3) is True and _shards(134.9, cores=3) is False


def test_separate_machines_are_saturated_only_when_one_was() -> None:
    assert _shards(90.0, same_machine=False) is False
    assert _shards(10.0, same_machine=False, saturated=True) is True
    assert _shards(10.0, saturated=True) is True
    assert combine_load_generators([PART, PART])["saturated"] is False  # type: ignore[index]


# ------------------------------------------------------------------ the outcome


def test_only_a_passed_run_short_of_its_load_becomes_load_not_delivered() -> None:
    assert judge_outcome(Outcome.PASSED, False) == (
        Outcome.LOAD_NOT_DELIVERED, ExitCode.LOAD_NOT_DELIVERED)  # fmt: skip
    assert int(ExitCode.LOAD_NOT_DELIVERED) == 10
    for delivered in (True, None):
        assert judge_outcome(Outcome.PASSED, delivered) is None
    for outcome in (Outcome.THRESHOLDS_FAILED, Outcome.K6_ERROR, None):
        assert judge_outcome(outcome, False) is None


# ------------------------------------------------------------------ the verdict line


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        (Outcome.PASSED, "PASSED: every threshold held"),
        (Outcome.THRESHOLDS_FAILED, "FAILED: thresholds crossed"),
        (Outcome.K6_ERROR, "ERROR: k6 failed (exit 107); see k6.log"),
        (Outcome.CRASHED, "ERROR: k6 crashed or was killed; see k6.log"),
        (Outcome.INTERRUPTED, "INTERRUPTED: the run was stopped; its files are kept"),
        (Outcome.TARGET_LOST,
         "INCONCLUSIVE: the sandbox stopped during the run; see run.json"),
        (Outcome.IO_ERROR,
         "ERROR: the run folder could not be written (a full disk?); k6 was stopped"),
        (Outcome.REFUSED, "REFUSED: k6 tried to reach a host outside the allow-list"),
        (Outcome.NOT_STARTED, "not_started"),
        (Outcome.DRY_RUN, "dry_run"),
    ],
)  # fmt: skip
def test_the_verdict_line_of_every_outcome(outcome: Outcome, line: str, tmp_path: Path) -> None:
    assert verdict_line(outcome, 107, tmp_path) == line


def test_a_k6_error_names_k6s_exit_code() -> None:
    assert verdict_line(Outcome.K6_ERROR, None, Path(".")) == (
        "ERROR: k6 failed (exit None); see k6.log")  # fmt: skip


def _results(run_dir: Path, delivery: Delivery) -> None:
    doc = ResultsDocument(delivery=delivery)
    (run_dir / "results.json").write_text(doc.to_json(), encoding="utf-8")


def test_undelivered_load_says_by_how_much_from_results_json(tmp_path: Path) -> None:
    _results(tmp_path, Delivery(headline="81 of 200 requests; 120 iterations dropped"))
    assert verdict_line(Outcome.LOAD_NOT_DELIVERED, 0, tmp_path) == (
        "INCONCLUSIVE: the load was not delivered (81 of 200 requests; 120 iterations dropped)"
    )


@pytest.mark.parametrize("results", [None, "{not json", "no headline", "empty headline"])
def test_undelivered_load_without_a_headline_says_only_that(
    results: str | None, tmp_path: Path
) -> None:
    if results == "no headline":
        _results(tmp_path, Delivery())
    elif results == "empty headline":
        _results(tmp_path, Delivery(headline=""))
    elif results is not None:
        (tmp_path / "results.json").write_text(results, encoding="utf-8")
    assert verdict_line(Outcome.LOAD_NOT_DELIVERED, 0, tmp_path) == (
        "INCONCLUSIVE: the load was not delivered")  # fmt: skip

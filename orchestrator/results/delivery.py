"""Load delivery: did k6 make the load the profile planned?

An arrival-rate executor short of VUs (or on a saturated machine) starts fewer iterations
than planned and counts the rest in ``dropped_iterations``; its thresholds can all pass
while the target saw a fraction of the load. This module sets what each k6 scenario
planned against what it did:

- **planned iterations**: ``constant-arrival-rate``: rate x duration / timeUnit;
  ``ramping-arrival-rate``: the integral of its stages (linear between targets, from
  ``startRate``); ``shared-iterations``: ``iterations``; ``per-vu-iterations``: vus x
  ``iterations``; the VU executors plan no count (what they did is shown, not judged);
- **achieved**: completed ``iterations``, and ``http_reqs``, per ``scenario`` tag from the
  raw points (else k6's summary for a run of one scenario);
- **planned requests**: planned iterations x the requests an iteration made (rounded to a
  whole number when within 5 % of one).

The rule (``delivery:`` in orch.yaml, recorded in run.json): delivered when achieved ≥
``min_achieved`` (default 0.95) of planned and dropped ≤ ``max_dropped`` (default 0.01) of
planned. :func:`judge_outcome` turns a ``passed`` run that was not delivered into
``load_not_delivered`` (exit 10); a threshold failure (99) keeps its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import ARRIVAL_RATE_EXECUTORS, max_vus, parse_duration
from orchestrator.core import ExitCode, Outcome
from orchestrator.results.model import Delivery, LoadGenerator, ScenarioDelivery

DEFAULT_MIN_ACHIEVED = 0.95
DEFAULT_MAX_DROPPED = 0.01
ARRIVAL_RATE = ARRIVAL_RATE_EXECUTORS
# The load generator (k6) is saturated when, in more than half of its samples, it used at
# least 90 % of the cores it could use (execution/loadgen.py samples it).
SATURATED_SHARE_OF_CORES = 0.9
SATURATED_SHARE_OF_RUN = 0.5


@dataclass(frozen=True)
class Rule:
    """The delivery rule a run is judged by; ``judged`` is False when it opted out."""

    min_achieved: float = DEFAULT_MIN_ACHIEVED
    max_dropped: float = DEFAULT_MAX_DROPPED
    judged: bool = True

    @classmethod
    def of(cls, recorded: dict[str, Any] | None) -> Rule:
        """The rule run.json records (``{}``: a folder older than the rule: the default)."""
        if not recorded:
            return cls()
        if recorded.get("judged") is False:
            return cls(judged=False)
        return cls(
            float(recorded.get("min_achieved", DEFAULT_MIN_ACHIEVED)),
            float(recorded.get("max_dropped", DEFAULT_MAX_DROPPED)),
        )


def seconds(value: Any) -> float | None:
    """A k6 duration in seconds, read by k6's rules (a number is milliseconds:
    :func:`orchestrator.config.k6_options.parse_duration`); None if unreadable."""
    try:
        return parse_duration(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def planned_iterations(options: dict[str, Any]) -> float | None:
    """The iterations a k6 scenario plans (see the module's docstring), or None."""
    executor = options.get("executor")
    if executor in ARRIVAL_RATE:
        unit = seconds(options.get("timeUnit", "1s"))
        if not unit:
            return None
        if executor == "constant-arrival-rate":
            rate, duration = _number(options.get("rate")), seconds(options.get("duration"))
            if rate is None or duration is None:
                return None
            return rate * duration / unit
        rate = _number(options.get("startRate")) or 0.0
        total = 0.0
        for stage in options.get("stages") or []:
            target = _number(stage.get("target")) if isinstance(stage, dict) else None
            duration = seconds(stage.get("duration")) if isinstance(stage, dict) else None
            if target is None or duration is None:
                return None
            total += (rate + target) / 2.0 * duration / unit
            rate = target
        return total
    if executor == "shared-iterations":
        return _number(options.get("iterations", 1))
    if executor == "per-vu-iterations":
        vus, each = _number(options.get("vus", 1)), _number(options.get("iterations", 1))
        return vus * each if vus is not None and each is not None else None
    return None


def configured_max_vus(options: dict[str, Any]) -> int | None:
    """The VUs an arrival-rate executor may grow to (``maxVUs``, else ``preAllocatedVUs``:
    :func:`orchestrator.config.k6_options.max_vus`); None for the other executors."""
    if options.get("executor") not in ARRIVAL_RATE:
        return None
    return max_vus(options)


def k6_scenarios(load_profile: dict[str, Any] | None, default_name: str) -> dict[str, Any]:
    """``{k6 scenario name: options}`` from run.json's ``load_profile`` (one scenario's
    options, or several by name)."""
    if not isinstance(load_profile, dict) or not load_profile:
        return {}
    if "executor" in load_profile:
        return {default_name: load_profile}
    return {str(k): v for k, v in load_profile.items() if isinstance(v, dict) and "executor" in v}


@dataclass
class Counts:
    """What k6 did in one scenario (or the whole run)."""

    iterations: int = 0
    dropped: int = 0
    requests: int = 0


def _per_request(planned: float | None, counts: Counts) -> int | None:
    """Planned requests: planned iterations x requests per completed iteration."""
    if planned is None or counts.iterations <= 0:
        return None
    per = counts.requests / counts.iterations
    whole = round(per)
    if whole and abs(per - whole) <= 0.05 * whole:
        per = float(whole)
    return round(planned * per)


def scenario_delivery(
    name: str, options: dict[str, Any], counts: Counts, rule: Rule, vus_max_peak: float | None
) -> ScenarioDelivery:
    """One scenario's planned against achieved, and whether it was delivered."""
    planned = planned_iterations(options)
    achieved_share = counts.iterations / planned if planned else None
    dropped_share = counts.dropped / planned if planned else None
    delivered: bool | None = None
    if rule.judged and planned:
        delivered = (achieved_share or 0.0) >= rule.min_achieved and (
            dropped_share or 0.0
        ) <= rule.max_dropped
    max_vus = configured_max_vus(options)
    reached = (
        vus_max_peak >= max_vus if max_vus is not None and vus_max_peak is not None else None
    )
    return ScenarioDelivery(
        name=name,
        executor=options.get("executor"),
        planned_iterations=_round(planned),
        achieved_iterations=counts.iterations,
        dropped_iterations=counts.dropped,
        achieved_share=achieved_share,
        dropped_share=dropped_share,
        planned_requests=_per_request(planned, counts),
        achieved_requests=counts.requests,
        max_vus=max_vus,
        reached_max_vus=reached,
        delivered=delivered,
    )


def _round(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 1)


def build_delivery(
    *,
    load_profile: dict[str, Any] | None,
    rule: Rule,
    default_name: str,
    per_scenario: dict[str, Counts] | None,
    totals: Counts | None,
    source: str | None,
    vus_peak: float | None,
    vus_max_peak: float | None,
) -> Delivery:
    """The ``delivery`` section of results.json.

    ``per_scenario`` (from the raw points, by ``scenario`` tag) is used when it has the
    planned scenarios; else ``totals`` (k6's summary) stand for a run of one scenario.
    """
    planned = k6_scenarios(load_profile, default_name)
    rows: list[ScenarioDelivery] = []
    seen = {k: v for k, v in (per_scenario or {}).items() if k}
    if len(planned) == 1 and len(seen) <= 1:
        # one scenario: its tag is whatever k6 named it (the script's own name)
        (name, options), counts = next(iter(planned.items())), next(iter(seen.values()), None)
        rows.append(
            scenario_delivery(
                next(iter(seen), name), options, counts or totals or Counts(), rule, vus_max_peak
            )
        )
    else:
        for name, options in planned.items():
            rows.append(scenario_delivery(name, options, seen.get(name, Counts()), rule, None))
    verdicts = [r.delivered for r in rows]
    delivered = False if False in verdicts else (True if True in verdicts else None)
    planned_total = [r.planned_iterations for r in rows]
    known = all(p is not None for p in planned_total) and rows
    requests_planned = [r.planned_requests for r in rows]
    doc = Delivery(
        judged=rule.judged,
        min_achieved=rule.min_achieved if rule.judged else None,
        max_dropped=rule.max_dropped if rule.judged else None,
        delivered=delivered,
        source=source if rows else None,
        planned_iterations=_round(sum(float(p or 0) for p in planned_total)) if known else None,
        achieved_iterations=sum(r.achieved_iterations for r in rows),
        dropped_iterations=sum(r.dropped_iterations for r in rows),
        planned_requests=(
            sum(int(p or 0) for p in requests_planned)
            if rows and all(p is not None for p in requests_planned)
            else None
        ),
        achieved_requests=sum(r.achieved_requests for r in rows),
        vus_peak=vus_peak,
        vus_max_peak=vus_max_peak,
        scenarios=rows,
    )
    doc.headline = headline(doc)
    return doc


def headline(doc: Delivery) -> str | None:
    """``81 of 200 requests; 120 iterations dropped`` (or iterations when the requests
    an iteration makes are unknown); None when nothing was planned."""
    if doc.planned_iterations is None:
        return None
    if doc.planned_requests is not None:
        text = f"{doc.achieved_requests:,} of {doc.planned_requests:,} requests"
    else:
        text = f"{doc.achieved_iterations:,} of {_count(doc.planned_iterations)} iterations"
    if doc.dropped_iterations:
        text += f"; {doc.dropped_iterations:,} iterations dropped"
    return text


def _count(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def load_generator(recorded: dict[str, Any] | None) -> LoadGenerator | None:
    """run.json's ``load_generator`` as the results.json model."""
    if not recorded:
        return None
    return LoadGenerator.model_validate(recorded)


def combine_load_generators(
    parts: list[dict[str, Any] | None], *, same_machine: bool = False
) -> dict[str, Any] | None:
    """One ``load_generator`` for several k6 processes: CPU and memory add up (the peaks
    are the sum of each process's peak, an upper bound). It is saturated when one of them
    was, or, for processes side by side on one machine (shards), when their average CPU
    together reached 90 % of its cores."""
    known = [p for p in parts if p]
    if not known:
        return None
    if len(known) == 1:
        return dict(known[0])
    cores_available = max(float(p.get("cpu_cores_available") or 0) for p in known)
    avg = sum(float(p.get("cpu_avg_pct") or 0) for p in known)
    together = same_machine and avg >= 100.0 * SATURATED_SHARE_OF_CORES * cores_available
    return {
        "source": f"{known[0].get('source')}, {len(known)} processes",
        "samples": sum(int(p.get("samples") or 0) for p in known),
        "interval_s": known[0].get("interval_s"),
        "cpu_cores_available": cores_available,
        "cpu_avg_pct": round(avg, 1),
        "cpu_max_pct": round(sum(float(p.get("cpu_max_pct") or 0) for p in known), 1),
        "memory_avg_mib": round(sum(float(p.get("memory_avg_mib") or 0) for p in known), 1),
        "memory_max_mib": round(sum(float(p.get("memory_max_mib") or 0) for p in known), 1),
        "saturated_share": max(float(p.get("saturated_share") or 0) for p in known),
        "saturated": together or any(bool(p.get("saturated")) for p in known),
    }


def judge_outcome(
    outcome: Outcome | None, delivered: bool | None
) -> tuple[Outcome, ExitCode] | None:
    """The outcome a run takes for its delivery: ``load_not_delivered`` (exit 10) for a
    ``passed`` run whose load was not delivered; None when the outcome stands."""
    if outcome == Outcome.PASSED and delivered is False:
        return Outcome.LOAD_NOT_DELIVERED, ExitCode.LOAD_NOT_DELIVERED
    return None

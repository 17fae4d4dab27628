"""Pace a scenario by a Claude API tier: cap its arrival rate at what the tier allows.

A scenario opts in with the variable ``claude_tier`` (a name under ``claude_tiers`` in the
config). The allowed rate is the smallest of the tier's requests/minute, its input
tokens/minute divided by the input tokens one request costs, and the same for output
tokens, times a headroom factor. Arrival-rate executors get their rates clamped (in
requests per minute); VU-based executors get a minimum iteration time per VU, which the
template enforces with ``pace()`` from ``k6_scripts/ratelimit.js``.
"""

from __future__ import annotations

import math
from typing import Any

from orchestrator.config.egress import normalize_host, url_host
from orchestrator.config.k6_options import ARRIVAL_RATE_EXECUTORS, max_vus, parse_duration
from orchestrator.config.model import ClaudeTier, LoadProfile, OrchConfig, ResolvedRun
from orchestrator.core import ConfigError

TOKENS_IN_VAR = "claude_input_tokens_per_request"
TOKENS_OUT_VAR = "claude_output_tokens_per_request"
HEADROOM_VAR = "claude_rate_headroom"

def duration_seconds(value: str | int | float) -> float:
    """Seconds in a k6 duration such as ``"1s"``, ``"500ms"`` or ``"1m30s"`` (k6's syntax:
    :func:`orchestrator.config.k6_options.parse_duration`)."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def allowed_per_minute(
    tier: ClaudeTier, tokens_in: float, tokens_out: float, headroom: float = 1.0
) -> int:
    """Requests/minute a tier allows when each request costs the given tokens."""
    limits = [float(tier.requests_per_minute)]
    if tokens_in > 0:
        limits.append(tier.input_tokens_per_minute / tokens_in)
    if tokens_out > 0:
        limits.append(tier.output_tokens_per_minute / tokens_out)
    return math.floor(min(limits) * headroom)


def cap_profile(options: dict[str, Any], cap_per_minute: int) -> tuple[dict[str, Any], float, bool]:
    """The k6 scenario options capped at ``cap_per_minute``.

    Returns the new options, the minimum seconds per iteration each VU must keep (0 for
    arrival-rate executors) and whether anything was lowered.
    """
    executor = options["executor"]
    if executor not in ARRIVAL_RATE_EXECUTORS:
        return dict(options), (max_vus(options) or 1) * 60.0 / cap_per_minute, True
    per_unit = duration_seconds(options.get("timeUnit", "1s"))
    factor = 60.0 / per_unit  # from the profile's time unit to per minute
    keys = ["rate"] if executor == "constant-arrival-rate" else ["startRate"]
    rates = [float(options.get(k) or 0) * factor for k in keys]
    stages = [dict(s) for s in options.get("stages") or []]
    rates += [float(s.get("target") or 0) * factor for s in stages]
    if max(rates, default=0) <= cap_per_minute:
        return dict(options), 0.0, False
    capped = dict(options, timeUnit="1m")
    for key in keys:
        capped[key] = min(math.floor(float(options.get(key) or 0) * factor), cap_per_minute)
    for stage in stages:
        stage["target"] = min(math.floor(float(stage.get("target") or 0) * factor), cap_per_minute)
    if stages:
        capped["stages"] = stages
    return capped, 0.0, True


def _number(run: ResolvedRun, name: str, default: float, low: float, high: float) -> float:
    value = run.vars.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(
            f"scenario {run.scenario_name!r}: vars.{name} must be a number from {low:g} to "
            f"{high:g}, got {value!r}"
        )
    return float(value)


def apply_claude_pacing(config: OrchConfig, run: ResolvedRun, share: int = 1) -> ResolvedRun:
    """``run`` with its load profile capped by its ``claude_tier`` (unchanged without one);
    ``share``: the tier's rate is shared by that many flows of a mix."""
    name = run.vars.get("claude_tier")
    if not name:
        return run
    tier = config.claude_tiers.get(str(name))
    if tier is None:
        raise ConfigError(
            f"scenario {run.scenario_name!r} in environment {run.environment_name!r} uses the "
            f"Claude tier {name!r}, which is not under claude_tiers "
            f"({', '.join(config.claude_tiers) or 'none declared'})"
        )
    tokens_in = _number(run, TOKENS_IN_VAR, 0, 0, 10_000_000)
    tokens_out = _number(run, TOKENS_OUT_VAR, 0, 0, 10_000_000)
    headroom = _number(run, HEADROOM_VAR, 1.0, 0.01, 1.0)
    cap = allowed_per_minute(tier, tokens_in, tokens_out, headroom) // max(share, 1)
    if cap < 1:
        raise ConfigError(
            f"Claude tier {name!r} allows less than one request per minute at "
            f"{tokens_in:g} input / {tokens_out:g} output tokens per request; lower the "
            f"token estimates ({TOKENS_IN_VAR}, {TOKENS_OUT_VAR}) or choose a higher tier"
        )
    options, pace_s, lowered = cap_profile(run.profile.k6_options(), cap)
    profile = LoadProfile.model_validate(
        {"description": run.profile.description, "thresholds": run.profile.thresholds, **options}
    )
    paced_vars = {
        **run.vars,
        "claude_tier_limits": {"name": str(name), **tier.model_dump()},
        "claude_rate_cap_per_minute": cap,
        "claude_rate_capped": lowered,
        "pace_iteration_s": round(pace_s, 3),
    }
    return run.model_copy(update={"profile": profile, "vars": paced_vars})


def apply_production_n8n_cap(run: ResolvedRun, share: int = 1) -> ResolvedRun:
    """``run`` with its arrival rate capped at its environment's production-N8N cap, when it
    sends to the production N8N (unchanged otherwise).

    Each iteration of a scenario that targets N8N is one webhook call, so the cap is on the
    arrival rate. A VU-based executor cannot be capped that way and is refused. ``share``:
    the cap is shared by that many flows of a mix.
    """
    shared = run.environment.production_n8n
    if shared is None or shared.max_requests_per_second is None:
        return run
    if url_host(run.n8n_base_url) != normalize_host(shared.host):
        return run
    options = run.profile.k6_options()
    if options["executor"] not in ARRIVAL_RATE_EXECUTORS:
        raise ConfigError(
            f"scenario {run.scenario_name!r} profile {run.profile_name!r} sends to the "
            f"production N8N, whose load is capped at {shared.max_requests_per_second:g} req/s; "
            f"only an arrival-rate executor (constant-arrival-rate, ramping-arrival-rate) can "
            f"be held to that cap"
        )
    cap = math.floor(shared.max_requests_per_second * 60 / max(share, 1))
    capped, _pace, lowered = cap_profile(options, max(cap, 1))
    if not lowered:
        return run
    profile = LoadProfile.model_validate(
        {"description": run.profile.description, "thresholds": run.profile.thresholds, **capped}
    )
    return run.model_copy(update={"profile": profile})

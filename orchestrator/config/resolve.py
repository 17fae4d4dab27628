"""Resolve one scenario for one environment: merge its overrides and profile, read its
URLs and secrets from the process environment, and pace it (Claude tier, production N8N cap).

Values such as ``${STAGING_API_BASE_URL}`` are read here, only for the environment selected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.config.egress import normalize_host, url_host
from orchestrator.config.model import (
    LoadProfile,
    MixFlow,
    OrchConfig,
    ResolvedRun,
    Scenario,
    deep_merge,
    expand_env_refs,
    flow_profile,
    merged_scenario,
    problems,
)
from orchestrator.config.outputs import resolve_outputs
from orchestrator.config.pacing import apply_claude_pacing, apply_production_n8n_cap
from orchestrator.config.secrets import provide_sandbox_secret
from orchestrator.core import ConfigError

# The scenario variable naming an N8N workflow export, relative to the config's folder
# (orchestrator.target.n8n.WEBHOOK_EXPORT_VAR; that package reads it).
WEBHOOK_EXPORT_VAR = "webhook_export"


def _expand_vars(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Expand ``${VAR}`` references in string template variables."""
    return {
        key: expand_env_refs(value, f"{where[:-1]}.{key})") if isinstance(value, str) else value
        for key, value in values.items()
    }


def environment_targets(config: OrchConfig, env_name: str) -> tuple[str, str, dict[str, str]]:
    """An environment's base URL, N8N base URL and secrets (k6 name -> value), read now."""
    environment = config.environment(env_name)
    where = f"environment {env_name!r} ({config.source}: environments.{env_name}"
    base_url = expand_env_refs(environment.base_url, f"{where}.base_url)").rstrip("/")
    n8n = environment.n8n_base_url
    n8n_base_url = expand_env_refs(n8n, f"{where}.n8n_base_url)").rstrip("/") if n8n else base_url
    provide_sandbox_secret(environment)
    secret_env: dict[str, str] = {}
    for k6_name, host_name in environment.secrets.items():
        value = os.environ.get(host_name)
        if not value:
            raise ConfigError(
                f"environment {env_name!r} needs the secret {k6_name}: set the environment "
                f"variable {host_name} (or put it in a git-ignored .env file)"
            )
        secret_env[k6_name] = value
    return base_url, n8n_base_url, secret_env


def resolve_script(
    config: OrchConfig,
    script: Path,
    scenarios: dict[str, Any],
    thresholds: dict[str, list[Any]],
    environment_name: str | None = None,
) -> ResolvedRun:
    """A k6 script of the user's as a run in an environment: its own k6 ``scenarios`` and
    ``thresholds`` (as k6 read them from the script), the environment's targets and secrets."""
    env_name = environment_name or config.defaults.environment
    environment = config.environment(env_name)
    base_url, n8n_base_url, secret_env = environment_targets(config, env_name)
    # stands for the script's own scenarios, which ``script_scenarios`` holds
    profile = LoadProfile(executor="shared-iterations", description="the script's own options")
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", script.stem).strip("-") or "script"
    return ResolvedRun(
        scenario_name=name,
        environment_name=env_name,
        profile_name="script",
        scenario=Scenario(
            description=f"the k6 script {script}",
            template="",
            thresholds=thresholds,
            profiles={"script": profile},
            default_profile="script",
        ),
        environment=environment,
        profile=profile,
        base_url=base_url,
        n8n_base_url=n8n_base_url,
        vars={},
        thresholds=thresholds,
        secret_env=secret_env,
        outputs=resolve_outputs(environment.outputs, env_name),
        script=str(script),
        script_scenarios=scenarios,
    )


def resolve_run(
    config: OrchConfig,
    scenario_name: str,
    environment_name: str | None = None,
    profile_name: str | None = None,
    *,
    flow: MixFlow | None = None,
    share: dict[str, int] | None = None,
) -> ResolvedRun:
    """Merge scenario, environment overrides and profile; read URLs and secrets from the env.

    ``flow``: the run is that flow of a mix (its k6 options go over the profile, before
    pacing); ``share``: how many flows of the mix share each cap (see :func:`resolve_mix`).
    """
    env_name = environment_name or config.defaults.environment
    environment = config.environment(env_name)
    base_scenario = config.scenario(scenario_name)
    override = environment.scenarios.get(scenario_name)
    scenario = base_scenario
    if override:  # validated with the config
        scenario = merged_scenario(base_scenario, override)
    chosen = profile_name or scenario.default_profile
    if chosen not in scenario.profiles:
        raise ConfigError(
            f"scenario {scenario_name!r} has no profile {chosen!r}; "
            f"choose one of: {', '.join(scenario.profiles)}"
        )
    profile = scenario.profiles[chosen]
    if flow is not None:
        try:
            profile = flow_profile(profile, flow)
        except ValidationError as exc:
            where = f"{config.source}: flow of scenario {scenario_name!r}"
            raise ConfigError(
                "; ".join(f"{where}: {path}: {msg}" for path, msg in problems(exc))
            ) from None
    where = f"environment {env_name!r} ({config.source}: environments.{env_name}"
    base_url, n8n_base_url, secret_env = environment_targets(config, env_name)
    thresholds = deep_merge(scenario.thresholds, profile.thresholds)
    values = _expand_vars(
        {**scenario.vars, **environment.vars, **((override or {}).get("vars") or {})},
        f"{where}.vars)",
    )
    export = values.get(WEBHOOK_EXPORT_VAR)
    if isinstance(export, str) and export:  # an N8N workflow export, relative to the config
        values[WEBHOOK_EXPORT_VAR] = str(config.root / export)
    resolved = ResolvedRun(
        scenario_name=scenario_name,
        environment_name=env_name,
        profile_name=chosen,
        scenario=scenario,
        environment=environment,
        profile=profile,
        base_url=base_url,
        n8n_base_url=n8n_base_url,
        vars=values,
        thresholds=thresholds,
        secret_env=secret_env,
        outputs=resolve_outputs(environment.outputs, env_name),
    )
    share = share or {}
    return apply_production_n8n_cap(
        apply_claude_pacing(config, resolved, share.get("claude", 1)), share.get("n8n", 1)
    )


def resolve_mix(
    config: OrchConfig, mix_name: str, environment_name: str | None = None
) -> ResolvedRun:
    """A mix as one run: each flow resolved as its scenario would be, with its profile and
    k6 options, and every threshold of a flow on that flow's samples only
    (``http_req_duration`` → ``http_req_duration{flow:NAME}``).

    Caps shared by several flows are shared out: flows paced by one Claude tier get an
    equal part of its rate each, and so do flows that send to a capped production N8N, so
    the mix as a whole stays within each cap.
    """
    mix = config.mix(mix_name)
    env_name = environment_name or config.defaults.environment

    def resolve(name: str, flow: MixFlow, share: dict[str, int] | None) -> ResolvedRun:
        run = resolve_run(
            config, flow.scenario or name, env_name, flow.profile, flow=flow, share=share
        )
        return run.model_copy(update={"flow_name": name})

    first = {name: resolve(name, flow, None) for name, flow in mix.flows.items()}
    tiers = [str(r.vars.get("claude_tier")) for r in first.values() if r.vars.get("claude_tier")]
    n8n_capped = sum(1 for r in first.values() if _sends_to_capped_n8n(r))
    flows: list[ResolvedRun] = []
    for name, flow in mix.flows.items():
        run = first[name]
        share = {
            "claude": tiers.count(str(run.vars.get("claude_tier"))) or 1,
            "n8n": n8n_capped if _sends_to_capped_n8n(run) else 1,
        }
        flows.append(resolve(name, flow, share) if max(share.values()) > 1 else run)
    thresholds: dict[str, list[Any]] = dict(mix.thresholds)
    for run in flows:
        for key, exprs in run.thresholds.items():
            thresholds[flow_metric_key(key, run.flow_name or "")] = list(exprs)
    lead = flows[0]
    scenario = Scenario(
        description=mix.description,
        template="",
        thresholds=mix.thresholds,
        delivery=mix.delivery,
        profiles={"mix": lead.profile},
        default_profile="mix",
    )
    secrets: dict[str, str] = {}
    for run in flows:
        secrets.update(run.secret_env)
    return ResolvedRun(
        scenario_name=mix_name,
        environment_name=env_name,
        profile_name="mix",
        scenario=scenario,
        environment=lead.environment,
        profile=lead.profile,
        base_url=lead.base_url,
        n8n_base_url=lead.n8n_base_url,
        vars={},
        thresholds=thresholds,
        secret_env=secrets,
        outputs=lead.outputs,
        flows=flows,
    )


def flow_metric_key(key: str, flow: str) -> str:
    """A threshold's metric key on one flow's samples: ``m`` → ``m{flow:F}``,
    ``m{name:x}`` → ``m{name:x,flow:F}`` (a key that names its flow already is kept)."""
    if "{" not in key:
        return f"{key}{{flow:{flow}}}"
    metric, _, rest = key.partition("{")
    tags = rest.rstrip("}").strip()
    if any(part.split(":", 1)[0].strip() == "flow" for part in tags.split(",")):
        return key
    return f"{metric}{{{tags + ',' if tags else ''}flow:{flow}}}"


def _sends_to_capped_n8n(run: ResolvedRun) -> bool:
    shared = run.environment.production_n8n
    return (
        shared is not None
        and shared.max_requests_per_second is not None
        and url_host(run.n8n_base_url) == normalize_host(shared.host)
    )

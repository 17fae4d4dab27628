"""Resolve one scenario for one environment: merge its overrides and profile, read its
URLs and secrets from the process environment, and pace it (Claude tier, production N8N cap).

Values such as ``${STAGING_API_BASE_URL}`` are read here, only for the environment selected.
"""

from __future__ import annotations

import os
from typing import Any

from orchestrator.config.model import (
    OrchConfig,
    ResolvedRun,
    deep_merge,
    expand_env_refs,
    merged_scenario,
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


def resolve_run(
    config: OrchConfig,
    scenario_name: str,
    environment_name: str | None = None,
    profile_name: str | None = None,
) -> ResolvedRun:
    """Merge scenario, environment overrides and profile; read URLs and secrets from the env."""
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
    return apply_production_n8n_cap(apply_claude_pacing(config, resolved))

"""orch.yaml: its validated model, one resolved run, the allow-list and the production guard.

``egress_http`` (orch's one HTTP client) is not re-exported: it loads httpx, so the few
callers that make HTTP calls import ``orchestrator.config.egress_http`` where they need it.

The names below are loaded from their module on first use (PEP 562): importing one, e.g.
``parse_duration`` for the report, does not load pydantic's config models, PyYAML and
python-dotenv (0.06 s of `orch report`, which needs none of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.core.lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.config.database import DatabaseSettings, DesiredIndex
    from orchestrator.config.egress import (
        EgressPolicy,
        Production,
        build_policy,
        normalize_host,
        pinned_conninfo,
        url_host,
    )
    from orchestrator.config.endpoints import ENDPOINT_SUFFIX, EndpointSpec, parse_endpoint
    from orchestrator.config.guard import (
        guard_database_target,
        guard_environment,
        guard_run,
        refuse_production_kind,
    )
    from orchestrator.config.k6_options import (
        ARRIVAL_RATE_EXECUTORS,
        max_vus,
        parse_duration,
        planned_seconds,
    )
    from orchestrator.config.model import (
        DEFAULT_DOCKER_IMAGE,
        ClaudeTier,
        Environment,
        LoadProfile,
        Mix,
        OrchConfig,
        RegressionSettings,
        ResolvedRun,
        Scenario,
        config_path,
        env_refs,
        expand_env_refs,
        is_test_domain,
        load_config,
    )
    from orchestrator.config.resolve import (
        flow_metric_key,
        resolve_mix,
        resolve_run,
        resolve_script,
    )
    from orchestrator.config.sandbox_settings import (
        ENDPOINT_NAMES,
        ENRICHMENT_ROUTES,
        N8N_ENRICHMENT_WORKFLOW,
        SandboxSettings,
        settings_from_mapping,
    )
    from orchestrator.config.secrets import (
        Redactor,
        load_dotenv,
        redact_url,
        sandbox_provided_variable,
    )

__getattr__, __dir__ = lazy_names(
    __name__,
    globals(),
    {
        "database": ("DatabaseSettings", "DesiredIndex"),
        "egress": (
            "EgressPolicy",
            "Production",
            "build_policy",
            "normalize_host",
            "pinned_conninfo",
            "url_host",
        ),
        "endpoints": ("ENDPOINT_SUFFIX", "EndpointSpec", "parse_endpoint"),
        "guard": (
            "guard_database_target",
            "guard_environment",
            "guard_run",
            "refuse_production_kind",
        ),
        "k6_options": ("ARRIVAL_RATE_EXECUTORS", "max_vus", "parse_duration", "planned_seconds"),
        "model": (
            "DEFAULT_DOCKER_IMAGE",
            "ClaudeTier",
            "Environment",
            "LoadProfile",
            "Mix",
            "OrchConfig",
            "RegressionSettings",
            "ResolvedRun",
            "Scenario",
            "config_path",
            "env_refs",
            "expand_env_refs",
            "is_test_domain",
            "load_config",
        ),
        "resolve": ("flow_metric_key", "resolve_mix", "resolve_run", "resolve_script"),
        "sandbox_settings": (
            "ENDPOINT_NAMES",
            "ENRICHMENT_ROUTES",
            "N8N_ENRICHMENT_WORKFLOW",
            "SandboxSettings",
            "settings_from_mapping",
        ),
        "secrets": ("Redactor", "load_dotenv", "redact_url", "sandbox_provided_variable"),
    },
)

__all__ = [
    "ARRIVAL_RATE_EXECUTORS",
    "DEFAULT_DOCKER_IMAGE",
    "ENDPOINT_NAMES",
    "ENDPOINT_SUFFIX",
    "ENRICHMENT_ROUTES",
    "N8N_ENRICHMENT_WORKFLOW",
    "ClaudeTier",
    "DatabaseSettings",
    "DesiredIndex",
    "EgressPolicy",
    "EndpointSpec",
    "Environment",
    "LoadProfile",
    "Mix",
    "OrchConfig",
    "Production",
    "Redactor",
    "RegressionSettings",
    "ResolvedRun",
    "SandboxSettings",
    "Scenario",
    "build_policy",
    "config_path",
    "env_refs",
    "expand_env_refs",
    "flow_metric_key",
    "guard_database_target",
    "guard_environment",
    "guard_run",
    "is_test_domain",
    "load_config",
    "load_dotenv",
    "max_vus",
    "normalize_host",
    "parse_duration",
    "parse_endpoint",
    "pinned_conninfo",
    "planned_seconds",
    "redact_url",
    "refuse_production_kind",
    "resolve_mix",
    "resolve_run",
    "resolve_script",
    "sandbox_provided_variable",
    "settings_from_mapping",
    "url_host",
]

"""The smaller settings of orch.yaml: endpoint specs, the sandbox's settings, the database's
tables and desired indexes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.config import (
    DatabaseSettings,
    DesiredIndex,
    SandboxSettings,
    parse_endpoint,
    settings_from_mapping,
)
from orchestrator.config.database import DEFAULT_DESIRED_INDEXES, DEFAULT_TABLES
from orchestrator.config.endpoints import DEFAULT_ENRICHMENT_CANDIDATES, check_vars
from orchestrator.core import ConfigError

# --- endpoints ----------------------------------------------------------------------------


def test_an_endpoint_goes_to_the_api_or_to_n8n_by_its_path() -> None:
    api = parse_endpoint("  POST /prospects/{id}/enrich ")
    assert (api.method, api.path, api.is_n8n, str(api)) == (
        "POST", "/prospects/{id}/enrich", False, "POST /prospects/{id}/enrich",
    )  # fmt: skip
    assert api.url("https://api.test/", "https://n8n.test", "p-7") == (
        "https://api.test/prospects/p-7/enrich"
    )
    hook = parse_endpoint("POST /webhook/prospect-enrichment/{id}")
    assert hook.is_n8n
    assert hook.url("https://api.test", "https://n8n.test/", "42") == (
        "https://n8n.test/webhook/prospect-enrichment/42"
    )
    # "/webhooks/…" is not N8N's prefix
    assert not parse_endpoint("GET /webhooks/x").is_n8n
    assert [str(parse_endpoint(c)) for c in DEFAULT_ENRICHMENT_CANDIDATES] == list(
        DEFAULT_ENRICHMENT_CANDIDATES
    )


@pytest.mark.parametrize(
    "text", ["post /x", "FETCH /x", "POST x", "POST", "/x", "POST /a b", "POST  /x", ""]
)
def test_a_malformed_endpoint_shows_the_form_to_write(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_endpoint(text)
    assert str(caught.value).startswith(f"{text!r} is not an endpoint; write it as 'METHOD /path'")
    assert "e.g. 'POST /prospects/{id}/enrich'" in str(caught.value)


def test_scenario_variables_are_checked_by_their_names() -> None:
    values: dict[str, Any] = {
        "enrich_endpoint": "POST /x",
        "status_endpoint": "",  # the API has none
        "other_endpoint": "${ORCH_ENDPOINT}",  # read when the run is resolved
        "numeric_endpoint": 5,  # not text: left to the template
        "bad_endpoint": "POST",
        "endpoint_count": "not an endpoint variable",
        "claude_tier": "tier-2",
    }
    assert check_vars(values, ["tier-1", "tier-2"], "scenarios.s.vars") == [
        "scenarios.s.vars.bad_endpoint: 'POST' is not an endpoint; write it as 'METHOD /path' "
        "with METHOD one of GET, POST, PUT, PATCH, DELETE and an optional {id}, e.g. "
        "'POST /prospects/{id}/enrich'"
    ]
    assert check_vars({"claude_tier": "tier-9"}, [], "x.vars") == [
        "x.vars.claude_tier: unknown Claude tier 'tier-9' (declared: none: add claude_tiers to "
        "the config)"
    ]
    assert check_vars({"claude_tier": "${T}"}, [], "x") == []
    assert check_vars({"claude_tier": ""}, [], "x") == []


# --- the sandbox's settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "bound", "url"),
    [
        ("localhost", "127.0.0.1", "http://127.0.0.1:9000"),
        ("LOCALHOST", "127.0.0.1", "http://127.0.0.1:9000"),
        ("127.0.0.9", "127.0.0.9", "http://127.0.0.9:9000"),
        ("::1", "::1", "http://[::1]:9000"),
        ("[::1]", "::1", "http://[::1]:9000"),
    ],
)
def test_the_sandbox_binds_loopback_only(host: str, bound: str, url: str) -> None:
    settings = SandboxSettings(host=host)
    assert settings.host == bound
    assert settings.url_for(9000) == url


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"host": "0.0.0.0"}, "host: host '0.0.0.0' is not a loopback address; the sandbox "
                              "binds loopback only (127.0.0.1, ::1 or localhost)"),
        ({"host": "sandbox.test"}, "host: host 'sandbox.test' is not an IP address"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"error_rate": 1.5}, "error_rate: Input should be less than or equal to 1"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute: Input should be greater than 0"),
        ({"rate_limited_endpoints": ["enrichment", "email"]},
         "rate_limited_endpoints: unknown endpoint 'email'; known: webhook, enrichment, "
         "email-enqueue, email-queue"),
        ({"endpoint_latency_ms": {"webhook": -1}},
         "endpoint_latency_ms: latency for 'webhook' must be ≥ 0 ms, got -1.0"),
        ({"enrichment_variant": "graphql"}, "enrichment_variant: Input should be "),
        ({"latency_ms_median": 10}, "(top level): latency_ms_p95 (6.0) must be ≥ "
                                    "latency_ms_median (10.0)"),
        ({"webhook_secret_env": ""}, "webhook_secret_env: String should have at least 1"),
        ({"seeds": 1}, "seeds: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_sandbox_settings_problems_are_one_line_each(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, "orch sandbox")
    assert caught.value.message.startswith(f"orch sandbox: {problem}")


def test_sandbox_settings_with_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"port": -1, "error_rate": 2, "host": "10.0.0.1"})
    message = caught.value.message
    assert re.findall(r"(?:^|; )sandbox settings: (\w+): ", message) == [
        "host", "port", "error_rate",
    ]  # fmt: skip


def test_the_sandbox_s_defaults() -> None:
    settings = settings_from_mapping({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8765)
    assert settings.latency_ms_p95 >= settings.latency_ms_median
    assert settings.rate_limit_per_minute is None and settings.rate_limited_endpoints == [
        "enrichment"
    ]


# --- the database's settings ----------------------------------------------------------------


def test_the_default_indexes_are_the_story_s_on_the_story_s_tables() -> None:
    settings = DatabaseSettings()
    assert settings.tables == DEFAULT_TABLES
    assert len(settings.desired_indexes) == 13
    assert {i.table for i in settings.desired_indexes} == set(DEFAULT_TABLES)
    assert len({i.name for i in settings.desired_indexes}) == 13
    assert settings.desired_indexes[3].describe() == "prospects(user_id, status)"
    # each settings object has its own copies: changing one leaves the defaults alone
    settings.desired_indexes[0].columns.append("status")
    assert DEFAULT_DESIRED_INDEXES[0].columns == ["user_id"]
    assert DatabaseSettings().desired_indexes[0].columns == ["user_id"]


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        ({"table": "t", "columns": [], "name": "i", "reason": "r"}, "at least 1 item"),
        ({"table": "t", "columns": ["a", " "], "name": "i", "reason": "r"},
         "column names must not be empty"),
        ({"table": "", "columns": ["a"], "name": "i", "reason": "r"}, "must not be empty"),
        ({"table": "t", "columns": ["a"], "name": "i"}, "reason\n  Field required"),
    ],
)  # fmt: skip
def test_a_desired_index_needs_a_table_columns_a_name_and_a_reason(
    index: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        DesiredIndex.model_validate(index)
    assert problem in str(caught.value)


def test_tables_may_be_narrowed_with_the_indexes_on_them() -> None:
    settings = DatabaseSettings.model_validate(
        {
            "schema_name": "app",
            "tables": ["prospects"],
            "desired_indexes": [
                {"table": "prospects", "columns": ["owner", "stage"], "name": "ix", "reason": "r"}
            ],
        }
    )
    assert settings.schema_name == "app"
    assert [i.describe() for i in settings.desired_indexes] == ["prospects(owner, stage)"]
    with pytest.raises(ValidationError, match=r"which is not in database\.tables"):
        DatabaseSettings.model_validate({"tables": ["prospects"]})  # the defaults need all four

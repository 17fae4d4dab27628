"""The production guard's checks on configuration text, held exactly: production kind is
refused, and a URL written in a base URL, a variable, an override, the profile's env or
an output is checked and named by where it was written. Fast: no k6, names answered by
tests/fake_dns.py (``.test`` names, loopback addresses)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.config import resolve_run
from orchestrator.config.egress import build_policy
from orchestrator.config.guard import (
    check_written_targets,
    guard_database_target,
    guard_environment,
    guard_run,
    refuse_production_kind,
)
from orchestrator.config.model import OrchConfig
from orchestrator.config.resolve import resolve_mix
from orchestrator.core import RefusedError
from tests import fake_dns

SEE = "(see `orch env check stg` for its allow-list; docs/staging.md)"
PROFILE = {"executor": "constant-vus", "vus": 1, "duration": "1s"}


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns.install(monkeypatch)


def make_config(stg: dict[str, Any] | None = None, **top: Any) -> OrchConfig:
    """A staging environment `stg` on stg.test, a production environment on prod.test."""
    staging = {"kind": "staging", "base_url": "http://stg.test", **(stg or {})}
    return OrchConfig.model_validate(
        {
            "defaults": {"environment": "stg"},
            "environments": {
                "stg": staging,
                "prod": {"kind": "production", "base_url": "https://prod.test"},
                "local": {"kind": "local", "base_url": "http://127.0.0.1:9"},
            },
            "scenarios": {
                "s": {"template": "t.js.j2", "default_profile": "p", "profiles": {"p": PROFILE}},
                "u": {
                    "template": "t.js.j2",
                    "default_profile": "p",
                    "vars": {"hook": "see http://prod.test/x"},
                    "profiles": {"p": PROFILE},
                },
            },
            **top,
        }
    )


def refused_for(host: str, where: str, action: str = "run") -> str:
    why = "it is declared as production"
    return f"refusing to {action}: stg may not reach {host}: {why} {SEE} (written in {where})"


def test_production_kind_is_refused_with_the_fix() -> None:
    with pytest.raises(RefusedError) as caught:
        refuse_production_kind("prod", "production", "seed data")
    assert caught.value.message == (
        "refusing to seed data: environment 'prod' is of kind production, and orch never "
        "sends load to or writes test data in production (there is no override); use a "
        "staging environment"
    )
    refuse_production_kind("stg", "staging", "run")
    refuse_production_kind("local", "local", "run")


def test_guard_environment_refuses_production_kind_first() -> None:
    with pytest.raises(RefusedError, match=r"^refusing to run: environment 'prod' is of kind"):
        guard_environment(make_config(), "prod", "run")


def test_guard_environment_returns_the_policy_when_nothing_points_at_production() -> None:
    config = make_config({"vars": {"callback": "http://stg.test/cb"}})
    policy = guard_environment(config, "stg", "run", extra={"notes": ["http://stg.test/x"]})
    assert policy.environment == "stg"
    assert policy.names == frozenset({"stg.test"})


@pytest.mark.parametrize(
    ("stg", "extra", "where"),
    [
        ({"vars": {"cb": ["ok", {"deep": "go to http://prod.test/cb."}]}}, None, "vars"),
        ({"scenarios": {"s": {"vars": {"u": "http://prod.test"}}}}, None, "scenario overrides"),
        ({}, {"the mix": {"x": "https://prod.test/y"}}, "the mix"),
    ],
)
def test_guard_environment_names_where_a_production_url_was_written(
    stg: dict[str, Any], extra: dict[str, Any] | None, where: str
) -> None:
    with pytest.raises(RefusedError) as caught:
        guard_environment(make_config(stg), "stg", "run", extra)
    assert caught.value.message == refused_for("prod.test", where)


def test_check_written_targets_checks_every_base_url_and_skips_empty_ones() -> None:
    policy = build_policy(make_config(), "stg", "run")
    check_written_targets(policy, "run", hosts={"a": "", "b": "http://stg.test"}, texts={})
    with pytest.raises(RefusedError) as caught:
        check_written_targets(
            policy,
            "run",
            hosts={"base_url": "http://stg.test", "n8n_base_url": "http://127.0.0.77:5678"},
            texts={"vars": "http://stg.test"},
        )
    assert caught.value.message == (
        f"refusing to run: stg may not reach 127.0.0.77: the address is outside this "
        f"environment's allow-list {SEE} (written in n8n_base_url)"
    )
    with pytest.raises(RefusedError) as caught:
        check_written_targets(
            policy, "run", hosts={}, texts={"a": "http://stg.test", "b": "ftp://stg.test/f"}
        )
    assert caught.value.message == (
        "refusing to run: 'ftp://stg.test/f' is not an http(s) URL (written in b)"
    )


def test_a_base_url_on_the_shared_production_n8n_is_checked_by_host_only() -> None:
    config = make_config(
        {
            "n8n_base_url": "http://n8n.prod.test",
            "production_n8n": {"host": "n8n.prod.test", "webhook_paths": ["/webhook/abc"]},
        },
        production={"hosts": ["n8n.prod.test"]},
    )
    policy = build_policy(config, "stg", "run")
    check_written_targets(policy, "run", hosts={"n8n_base_url": "http://n8n.prod.test/x"}, texts={})
    check_written_targets(
        policy, "run", hosts={}, texts={"vars": "http://n8n.prod.test/webhook/abc"}
    )
    with pytest.raises(
        RefusedError, match=r"n8n.prod.test/x: the production N8N .* \(written in vars\)$"
    ):
        check_written_targets(policy, "run", hosts={}, texts={"vars": "http://n8n.prod.test/x"})


def test_guard_run_passes_a_clean_run_and_returns_its_policy() -> None:
    config = make_config(
        {"vars": {"cb": "http://api.stg.test/x"}, "allow": {"hosts": ["api.stg.test"]}}
    )
    policy = guard_run(config, resolve_run(config, "s", "stg"), "run")
    assert policy.environment == "stg"
    assert policy.names == frozenset({"stg.test", "api.stg.test"})


@pytest.mark.parametrize(
    ("stg", "profile_env", "where"),
    [
        ({}, {"CB": "http://prod.test"}, "the profile's env"),
        (
            {"outputs": [{"kind": "experimental-prometheus-rw", "url": "http://127.0.0.9/w"}]},
            {},
            "environments.stg.outputs[0].url",
        ),
        (
            {
                "outputs": [
                    {
                        "kind": "experimental-opentelemetry",
                        "url": "http://stg.test:4318",
                        "settings": {"K6_OTEL_HEADERS": "x=http://127.0.0.9/"},
                    }
                ]
            },
            {},
            "environments.stg.outputs[0].settings",
        ),
    ],
)
def test_guard_run_names_where_each_target_was_written(
    stg: dict[str, Any], profile_env: dict[str, str], where: str
) -> None:
    config = make_config(stg)
    config.scenarios["s"].profiles["p"].env = profile_env  # type: ignore[attr-defined]
    with pytest.raises(RefusedError) as caught:
        guard_run(config, resolve_run(config, "s", "stg"), "run")
    message = caught.value.message
    assert message.endswith(f"(written in {where})"), message
    assert message.startswith("refusing to run: stg may not reach "), message


@pytest.mark.parametrize("key", ["base_url", "n8n_base_url"])
def test_guard_run_refuses_a_run_url_on_production(key: str) -> None:
    # resolve_run's URLs are the environment's (checked by the policy); here the run's
    # own fields are what guard_run reads
    config = make_config()
    run = resolve_run(config, "s", "stg").model_copy(update={key: "http://prod.test/"})
    with pytest.raises(RefusedError) as caught:
        guard_run(config, run, "run")
    assert caught.value.message == refused_for("prod.test", key)


def test_guard_run_checks_every_flow_of_a_mix() -> None:
    config = make_config(mixes={"m": {"flows": {"s": {}, "u": {}}}})
    mix = resolve_mix(config, "m", "stg")
    with pytest.raises(RefusedError) as caught:
        guard_run(config, mix, "run")
    assert caught.value.message == refused_for("prod.test", "vars")


def test_guard_database_target_pins_the_checked_address() -> None:
    config = make_config()
    pinned = guard_database_target(
        "postgresql://app@localhost:5433/app", config=config, environment_name="local"
    )
    assert pinned == "user=app dbname=app host=localhost port=5433 hostaddr=127.0.0.1"


def test_guard_database_target_refuses_with_its_default_action() -> None:
    with pytest.raises(RefusedError) as caught:
        guard_database_target(
            "postgresql://app@prod.test/app", config=make_config(), environment_name="stg"
        )
    assert caught.value.message == (
        f"refusing to connect to the database: stg may not reach prod.test: it is declared as "
        f"production {SEE}"
    )
    with pytest.raises(RefusedError, match=r"^refusing to seed: "):
        guard_database_target(
            "postgresql://app@prod.test/app",
            config=make_config(),
            environment_name="stg",
            action="seed",
        )


def test_guard_run_refuses_an_environment_variable_with_the_action() -> None:
    config = make_config({"vars": {"cb": "http://prod.test/cb"}})
    with pytest.raises(RefusedError) as caught:
        guard_run(config, resolve_run(config, "s", "stg"), "run")
    assert caught.value.message == refused_for("prod.test", "vars")


ALLOWS_PRODUCTION = {"allow": {"hosts": ["prod.test"]}}


def test_guard_environment_refuses_an_allowed_production_name_with_the_action() -> None:
    with pytest.raises(RefusedError) as caught:
        guard_environment(make_config(ALLOWS_PRODUCTION), "stg", "run")
    assert caught.value.message == (
        "refusing to run: environments.stg.allow.hosts[0] points at prod.test, which is "
        "declared as production (there is no override); point it at a staging or local host"
    )


def test_guard_database_target_names_its_action_when_the_environment_is_refused() -> None:
    config = make_config(ALLOWS_PRODUCTION)
    with pytest.raises(RefusedError, match=r"^refusing to connect to the database: environments"):
        guard_database_target(
            "postgresql://app@stg.test/app", config=config, environment_name="stg"
        )
    with pytest.raises(RefusedError, match=r"^refusing to seed: environments"):
        guard_database_target(
            "postgresql://app@stg.test/app", config=config, environment_name="stg", action="seed"
        )

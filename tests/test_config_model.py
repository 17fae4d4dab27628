"""orch.yaml's validation: every bad value is one ``file: key.path: what to fix`` line.

Each case edits the repository's own orch.yaml (``scenario_project.make_project``), writes
it, and reads it back with the real loader.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scenario_project import make_project

from orchestrator.config import (
    OrchConfig,
    config_path,
    env_refs,
    expand_env_refs,
    is_test_domain,
    load_config,
)
from orchestrator.config.model import DeliveryRule, delivery_rule
from orchestrator.core import DEFAULT_CONFIG, ConfigError, ExitCode

Edit = Callable[[dict[str, Any]], None]


def problem_of(tmp_path: Path, edit: Edit) -> str:
    """The loader's message for the shipped config changed by ``edit``, without the file
    name in front of each line."""
    config = make_project(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value.message.replace(f"{config.resolve()}: ", "").replace(f"{config}: ", "")


def _smoke(data: dict[str, Any]) -> dict[str, Any]:
    profile: dict[str, Any] = data["scenarios"]["linkedin-scrape"]["profiles"]["smoke"]
    return profile


def _set(path: str, value: Any) -> Edit:
    """An edit that sets the value at a dotted key path (creating mappings on the way)."""

    def edit(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


CASES: list[tuple[str, Edit, str]] = [
    ("unknown executor", lambda d: _smoke(d).update(executor="constant-rate"),
     "scenarios.linkedin-scrape.profiles.smoke: unknown executor 'constant-rate'; use one of "
     "shared-iterations, per-vu-iterations, constant-vus, ramping-vus, constant-arrival-rate"),
    ("option of another executor", lambda d: _smoke(d).update(vus=3),
     "scenarios.linkedin-scrape.profiles.smoke: option(s) vus are not valid for executor "
     "'constant-arrival-rate'; it takes duration, env, gracefulStop, maxVUs, preAllocatedVUs"),
    ("delivery of the wrong type", lambda d: _smoke(d).update(delivery="soon"),
     "scenarios.linkedin-scrape.profiles.smoke.delivery: write delivery: "
     "{min_achieved: 0.95, max_dropped: 0.01}, or false"),
    ("delivery out of range and misspelt",
     _set("scenarios.linkedin-scrape.delivery", {"min_achieved": 1.5, "max_droped": 0}),
     "scenarios.linkedin-scrape.delivery: min_achieved: Input should be less than or equal "
     "to 1; max_droped: unknown key (check its spelling)"),
    ("default profile not among the profiles",
     _set("scenarios.linkedin-scrape.default_profile", "nope"),
     "scenarios.linkedin-scrape: default_profile 'nope' is not among profiles "
     "(smoke, load, stress, soak)"),
    ("template missing", lambda d: d["scenarios"]["linkedin-scrape"].pop("template"),
     "scenarios.linkedin-scrape.template: required key is missing"),
    ("thresholds not a list", lambda d: _smoke(d).update(thresholds={"checks": "rate>0.9"}),
     "scenarios.linkedin-scrape.profiles.smoke.thresholds.checks: Input should be a valid list"),
    ("secret name with a dash", _set("environments.local.secrets", {"WEBHOOK-SECRET": "X"}),
     "environments.local.secrets: 'WEBHOOK-SECRET' is not a valid environment variable name"),
    ("environment kind", _set("environments.local.kind", "prod"),
     "environments.local.kind: Input should be 'local', 'staging' or 'production'"),
    ("runner", _set("environments.local.runner", "podman"),
     "environments.local.runner: Input should be 'auto', 'native' or 'docker'"),
    ("production N8N outside staging",
     _set("environments.local.production_n8n", {"host": "n8n.x", "webhook_paths": ["/webhook/a"]}),
     "environments.local: production_n8n: only a staging environment may use production N8N"),
    ("production N8N path with a wildcard",
     _set("environments.staging.production_n8n",
          {"host": "n8n.x", "webhook_paths": ["/webhook/*"]}),
     "environments.staging.production_n8n.webhook_paths: '/webhook/*': write an exact path "
     "starting with '/', without '..', '//' or '*'"),
    ("production N8N without paths",
     _set("environments.staging.production_n8n", {"host": "n8n.x", "webhook_paths": []}),
     "environments.staging.production_n8n.webhook_paths: List should have at least 1 item"),
    ("allow-list host that is a URL without a host",
     _set("environments.staging.allow", {"hosts": ["http://"]}),
     "environments.staging.allow.hosts: [0]: 'http://' is a URL without a host"),
    ("allow-list network that is no CIDR",
     _set("environments.staging.allow", {"networks": ["10.0.0.0/33"]}),
     "environments.staging.allow.networks: [0]: '10.0.0.0/33' is neither a host, a URL nor a "
     "CIDR such as 203.0.113.0/24"),
    ("sandbox endpoint name", _set("environments.local.sandbox.endpoint_latency_ms", {"webhok": 5}),
     "environments.local.sandbox: endpoint_latency_ms: unknown endpoint 'webhok'; known: "
     "webhook, enrichment, email-enqueue, email-queue"),
    ("sandbox on a public address", _set("environments.local.sandbox.host", "0.0.0.0"),
     "environments.local.sandbox: host: host '0.0.0.0' is not a loopback address"),
    ("default environment not declared", _set("defaults.environment", "qa"),
     "defaults.environment 'qa' is not a declared environment (local, staging, production)"),
    ("override of an unknown scenario", _set("environments.local.scenarios.nope", {"vars": {}}),
     "environments.local.scenarios.nope: no such scenario (declared: linkedin-scrape, "
     "email-queue, ai-enrichment)"),
    ("override that breaks the scenario",
     _set("environments.local.scenarios.linkedin-scrape", {"default_profile": "nope"}),
     "environments.local.scenarios.linkedin-scrape: default_profile 'nope' is not among profiles"),
    ("endpoint variable with an unknown method",
     _set("scenarios.email-queue.vars.email_enqueue_endpoint", "PUSH /x"),
     "scenarios.email-queue.vars.email_enqueue_endpoint: 'PUSH /x' is not an endpoint; write "
     "it as 'METHOD /path' with METHOD one of GET, POST, PUT, PATCH, DELETE"),
    ("unknown Claude tier in an override",
     _set("environments.staging.scenarios.ai-enrichment.vars.claude_tier", "tier-9"),
     "environments.staging.scenarios.ai-enrichment.vars.claude_tier: unknown Claude tier "
     "'tier-9' (declared: tier-1, tier-2, tier-3, tier-4, sandbox)"),
    ("Claude tier without requests", _set("claude_tiers.tier-1.requests_per_minute", 0),
     "claude_tiers.tier-1.requests_per_minute: Input should be greater than 0"),
    ("the moved verify.workflow_file", _set("verify.workflow_file", "w.json"),
     "verify.workflow_file: the N8N workflow export is named by each webhook scenario now: "
     "move it to scenarios.<name>.vars.webhook_export: w.json"),
    ("verify candidate without a path", _set("verify.enrichment_candidates", ["POST enrichment"]),
     "verify.enrichment_candidates: 'POST enrichment' is not an endpoint"),
    ("regression alpha of 1", _set("regression.alpha", 1),
     "regression.alpha: Input should be less than 1"),
    ("negative regression tolerance", _set("regression.p95_increase_pct", -5),
     "regression.p95_increase_pct: Input should be greater than or equal to 0"),
    ("test users on a real domain", _set("test_users.domain", "example.com"),
     "test_users.domain: 'example.com' is not a test domain: use one whose first label is "
     "'test' or that ends in .test, .example or .invalid"),
    ("no database table", _set("database.tables", []),
     "database.tables: List should have at least 1 item after validation, not 0"),
    ("desired index outside the tables",
     _set("database", {"tables": ["prospects"], "desired_indexes": [
         {"table": "campaigns", "columns": ["a"], "name": "x", "reason": "r"}]}),
     "database: desired_indexes[0] (x) is on table 'campaigns', which is not in "
     "database.tables ['prospects']; add it there"),
    ("desired index with a column twice",
     _set("database.desired_indexes", [
         {"table": "prospects", "columns": ["a", "a"], "name": "x", "reason": "r"}]),
     "database.desired_indexes.0.columns: a column appears twice"),
    ("two desired indexes of one name",
     _set("database.desired_indexes", [
         {"table": "prospects", "columns": ["a"], "name": "x", "reason": "r"},
         {"table": "meetings", "columns": ["b"], "name": "x", "reason": "r"}]),
     "database: desired_indexes[1]: the name 'x' is used twice"),
    ("desired index with a blank name",
     _set("database.desired_indexes", [
         {"table": "prospects", "columns": ["a"], "name": " ", "reason": "r"}]),
     "database.desired_indexes.0.name: must not be empty"),
    ("unknown top-level key", _set("defualts", {}), "defualts: unknown key (check its spelling)"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_bad_value_names_its_key_and_the_fix(
    tmp_path: Path, edit: Edit, expected: str
) -> None:
    message = problem_of(tmp_path, edit)
    assert expected in message
    assert "Traceback" not in message and "Value error" not in message


def test_a_sandbox_rule_between_two_keys_reads_as_one_sentence(tmp_path: Path) -> None:
    edit = _set("environments.local.sandbox", {"latency_ms_median": 9, "latency_ms_p95": 3})
    assert problem_of(tmp_path, edit) == (
        "environments.local.sandbox: latency_ms_p95 (3.0) must be ≥ latency_ms_median (9.0)"
    )


def test_several_problems_are_counted_and_each_has_its_line(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["test_users"] = {"domain": "example.com", "count": 0}
        data["regression"] = {"alpha": 0}

    config = make_project(tmp_path, edit)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    head, *lines = caught.value.message.split("\n  ")
    assert head == "3 problems in the configuration:"
    assert all(line.startswith(f"{config}: ") for line in lines)
    keys = sorted(line.split(": ")[1] for line in lines)
    assert keys == ["regression.alpha", "test_users.count", "test_users.domain"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the top level must be a mapping with 'environments' and 'scenarios'"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("environments: {}\n", "scenarios: required key is missing"),
        ("environments:\n  local: {kind: local}\nscenarios: {}\n",
         "environments.local.base_url: required key is missing"),
        ("a: 1\n\tb: 2\n", ":2:1: malformed YAML"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_config_says_so(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "orch.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(config) in caught.value.message
    assert expected in caught.value.message


def test_a_folder_given_as_the_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*: Is a directory"):
        load_config(tmp_path)


def test_the_shipped_config_loads_and_knows_its_folder(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path))
    assert isinstance(config, OrchConfig)
    assert config.source == (tmp_path / "orch.yaml").resolve()
    assert config.root == tmp_path.resolve()
    assert config.templates_dir == tmp_path.resolve() / "templates"
    assert config.results_dir == tmp_path.resolve() / "results"
    assert set(config.scenarios) == {"linkedin-scrape", "email-queue", "ai-enrichment"}
    smoke = config.scenarios["linkedin-scrape"].profiles["smoke"]
    assert smoke.k6_options() == {
        "executor": "constant-arrival-rate", "rate": 20, "timeUnit": "1s", "duration": "2s",
        "preAllocatedVUs": 5, "maxVUs": 20,
    }  # fmt: skip  # orch's own keys (description, thresholds, delivery) are not k6's


def test_unknown_names_list_the_declared_ones(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path))
    with pytest.raises(ConfigError) as env:
        config.environment("prod")
    assert env.value.message == (
        f"unknown environment 'prod' in {config.source}; choose one of: local, staging, production"
    )
    with pytest.raises(ConfigError) as scenario:
        config.scenario("linkedin")
    assert "unknown scenario 'linkedin'" in scenario.value.message
    assert scenario.value.message.endswith("linkedin-scrape, email-queue, ai-enrichment")


def test_the_config_file_is_the_option_then_orch_config_then_the_folder_s_then_orch_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCH_CONFIG", raising=False)
    assert config_path(None) == DEFAULT_CONFIG
    (tmp_path / "orch.yaml").write_text("{}", encoding="utf-8")
    assert config_path(None) == tmp_path / "orch.yaml"
    monkeypatch.setenv("ORCH_CONFIG", "/elsewhere/orch.yaml")
    assert config_path(None) == Path("/elsewhere/orch.yaml")
    assert config_path("given.yaml") == Path("given.yaml")
    with pytest.raises(ConfigError, match="does not exist; pass --config FILE or set ORCH_CONFIG"):
        load_config(None)


def test_env_references_are_read_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_refs("${A}://${B_2}/x/${A}") == ["A", "B_2", "A"]
    assert env_refs(None) == [] and env_refs("$A ${1A} ${}") == []
    monkeypatch.setenv("ORCH_T_HOST", "staging.test")
    assert expand_env_refs("https://${ORCH_T_HOST}/api", "here") == "https://staging.test/api"
    monkeypatch.setenv("ORCH_T_EMPTY", "")
    for name in ("ORCH_T_EMPTY", "ORCH_T_UNSET"):
        monkeypatch.delenv("ORCH_T_UNSET", raising=False)
        with pytest.raises(ConfigError) as caught:
            expand_env_refs(f"https://${{{name}}}", "environments.staging.base_url")
        assert caught.value.message == (
            f"environments.staging.base_url needs the environment variable {name}; set it "
            "(or put it in a git-ignored .env file)"
        )


def test_an_unused_environment_s_variables_are_not_needed_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("STAGING_API_BASE_URL", "STAGING_N8N_BASE_URL", "STAGING_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config(make_project(tmp_path))
    assert config.environments["staging"].base_url == "${STAGING_API_BASE_URL}"


@pytest.mark.parametrize(
    ("settings", "rule"),
    [
        ((), {"min_achieved": 0.95, "max_dropped": 0.01}),
        ((None, None), {"min_achieved": 0.95, "max_dropped": 0.01}),
        ((False,), None),
        ((False, True), {"min_achieved": 0.95, "max_dropped": 0.01}),
        ((True, False), None),
        ((DeliveryRule(min_achieved=0.5),), {"min_achieved": 0.5, "max_dropped": 0.01}),
        ((DeliveryRule(min_achieved=0.5), DeliveryRule(max_dropped=0.2)),
         {"min_achieved": 0.5, "max_dropped": 0.2}),
        ((False, DeliveryRule(max_dropped=0.2)), {"min_achieved": 0.95, "max_dropped": 0.2}),
    ],
)  # fmt: skip
def test_the_profile_s_delivery_rule_goes_over_the_scenario_s(
    settings: tuple[Any, ...], rule: dict[str, float] | None
) -> None:
    assert delivery_rule(*settings) == rule


def test_delivery_settings_read_from_the_file(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["scenarios"]["linkedin-scrape"]["delivery"] = {"min_achieved": 0.8}
        data["scenarios"]["linkedin-scrape"]["profiles"]["stress"]["delivery"] = False

    scenario = load_config(make_project(tmp_path, edit)).scenarios["linkedin-scrape"]
    assert delivery_rule(scenario.delivery, scenario.profiles["smoke"].delivery) == {
        "min_achieved": 0.8, "max_dropped": 0.01,
    }  # fmt: skip
    assert delivery_rule(scenario.delivery, scenario.profiles["stress"].delivery) is None


@pytest.mark.parametrize(
    ("domain", "is_test"),
    [("test.sales-machine.com", True), ("example.test", True), ("mail.EXAMPLE", True),
     ("x.invalid.", True), ("localhost", False), ("example.com", False),
     ("tests.sales-machine.com", False), ("test", False)],
)  # fmt: skip
def test_what_counts_as_a_test_domain(domain: str, is_test: bool) -> None:
    assert is_test_domain(domain) is is_test

"""One resolved run: the scenario, its environment's overrides and a profile merged, URLs
and secrets read from the process environment, and the load paced by a Claude tier or the
production N8N's cap. Every case loads the repository's own orch.yaml, edited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scenario_project import make_project

from orchestrator.config import OrchConfig, load_config, resolve_run
from orchestrator.config.pacing import apply_production_n8n_cap, cap_profile
from orchestrator.core import ConfigError

SANDBOX_SECRET = "ORCH_SANDBOX_WEBHOOK_SECRET"
STAGING = {
    "STAGING_API_BASE_URL": "https://api.staging.test/",
    "STAGING_N8N_BASE_URL": "https://n8n.staging.test//",
    "STAGING_N8N_API_KEY": "staging-key",
}


@pytest.fixture
def staging_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The staging environment's variables, set for one test."""
    for name, value in STAGING.items():
        monkeypatch.setenv(name, value)
    return STAGING


def _config(tmp_path: Path, edit: Any = None) -> OrchConfig:
    return load_config(make_project(tmp_path, edit))


def resolve_error(config: OrchConfig, *names: str | None) -> str:
    """The message of the ConfigError that resolving this run raises."""
    with pytest.raises(ConfigError) as caught:
        resolve_run(config, *names)  # type: ignore[arg-type]
    return caught.value.message


def test_urls_lose_their_trailing_slashes_and_n8n_has_its_own(
    tmp_path: Path, staging_env: dict[str, str]
) -> None:
    run = resolve_run(_config(tmp_path), "linkedin-scrape", "staging")
    assert run.base_url == "https://api.staging.test"
    assert run.n8n_base_url == "https://n8n.staging.test"
    assert run.secret_env == {"WEBHOOK_SECRET": "staging-key"}
    assert (run.environment_name, run.profile_name) == ("staging", "smoke")


def test_without_an_n8n_url_webhooks_go_to_the_base_url(
    tmp_path: Path, staging_env: dict[str, str]
) -> None:
    config = _config(tmp_path, lambda d: d["environments"]["staging"].pop("n8n_base_url"))
    run = resolve_run(config, "linkedin-scrape", "staging")
    assert run.n8n_base_url == run.base_url == "https://api.staging.test"


def test_an_unset_url_variable_names_the_environment_key_and_file(
    tmp_path: Path, staging_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path)
    monkeypatch.delenv("STAGING_N8N_BASE_URL")
    message = resolve_error(config, "linkedin-scrape", "staging")
    assert message == (
        f"environment 'staging' ({config.source}: environments.staging.n8n_base_url) needs "
        "the environment variable STAGING_N8N_BASE_URL; set it (or put it in a git-ignored "
        ".env file)"
    )


def test_an_unset_secret_names_its_variable_and_not_a_value(
    tmp_path: Path, staging_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_N8N_API_KEY", "")
    message = resolve_error(_config(tmp_path), "linkedin-scrape", "staging")
    assert message == (
        "environment 'staging' needs the secret WEBHOOK_SECRET: set the environment variable "
        "STAGING_N8N_API_KEY (or put it in a git-ignored .env file)"
    )


def test_variables_scenario_then_environment_then_its_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_T_PREFIX", "from-env")

    def edit(data: dict[str, Any]) -> None:
        data["scenarios"]["email-queue"]["vars"].update(status_every=5, emails_per_request=5)
        local = data["environments"]["local"]
        local["vars"].update(status_every=2, emails_per_request=3)
        local["scenarios"]["email-queue"] = {
            "vars": {"emails_per_request": 1, "campaign_prefix": "${ORCH_T_PREFIX}-c"}
        }

    run = resolve_run(_config(tmp_path, edit), "email-queue", "local")
    assert run.vars["status_every"] == 2  # the environment's over the scenario's
    assert run.vars["emails_per_request"] == 1  # the override's over both
    assert run.vars["campaign_prefix"] == "from-env-c"  # ${VAR} read now
    assert run.vars["recipient_domain"] == "test.sales-machine.com"  # the scenario's own


def test_an_unset_variable_in_a_template_value_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCH_T_UNSET", raising=False)
    config = _config(
        tmp_path, lambda d: d["environments"]["local"]["vars"].update(api_auth="${ORCH_T_UNSET}")
    )
    message = resolve_error(config, "email-queue", "local")
    assert message.startswith(
        f"environment 'local' ({config.source}: environments.local.vars.api_auth) needs the "
        "environment variable ORCH_T_UNSET"
    )


def test_the_webhook_export_is_found_beside_the_config(tmp_path: Path) -> None:
    run = resolve_run(_config(tmp_path), "linkedin-scrape", "local")
    export = Path(run.vars["webhook_export"])
    assert export == tmp_path.resolve() / "workflows" / "linkedin-scraper.json"
    assert export.is_file()


def test_an_override_merges_into_the_scenario_and_a_profile_s_thresholds_win(
    tmp_path: Path,
) -> None:
    def edit(data: dict[str, Any]) -> None:
        scenario = data["scenarios"]["linkedin-scrape"]
        scenario["profiles"]["load"]["thresholds"] = {"http_req_duration": ["p(95)<900"]}
        data["environments"]["local"]["scenarios"]["linkedin-scrape"] = {
            "default_profile": "load",
            "profiles": {"load": {"rate": 7}},
            "tags": {"team": "growth"},
        }

    run = resolve_run(_config(tmp_path, edit), "linkedin-scrape", "local")
    assert run.profile_name == "load"  # the override's default profile
    assert run.profile.k6_options()["rate"] == 7  # merged into the profile …
    assert run.profile.k6_options()["maxVUs"] == 100  # … keeping its other options
    assert run.scenario.tags == {"flow": "linkedin-scrape", "team": "growth"}
    assert run.thresholds["http_req_duration"] == ["p(95)<900"]  # the profile's, not both
    assert run.thresholds["http_req_failed"] == ["rate<0.01"]  # the scenario's others stay
    # the scenario itself is left as the file says
    assert resolve_run(_config(tmp_path / "b"), "linkedin-scrape", "local").profile_name == "smoke"


def test_unknown_profile_lists_the_profiles(tmp_path: Path) -> None:
    message = resolve_error(_config(tmp_path), "email-queue", "local", "spike")
    assert message == (
        "scenario 'email-queue' has no profile 'spike'; choose one of: smoke, load, stress, soak"
    )


def test_the_public_summary_names_secrets_without_their_values(
    tmp_path: Path, staging_env: dict[str, str]
) -> None:
    run = resolve_run(_config(tmp_path), "linkedin-scrape", "staging", "load")
    summary = run.public_summary()
    assert summary["secrets"] == {"WEBHOOK_SECRET": "***"}
    assert summary["environment_kind"] == "staging"
    assert summary["load_profile"]["rate"] == 100
    assert summary["template"] == "linkedin_scrape.js.j2"
    assert "staging-key" not in repr(summary) and "staging-key" not in repr(run)


def test_a_local_sandbox_that_checks_a_key_gets_one_made_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_SECRET, "placeholder")
    monkeypatch.delenv(SANDBOX_SECRET)  # restored to unset after the test
    config = _config(tmp_path)
    made = resolve_run(config, "linkedin-scrape", "local").secret_env["WEBHOOK_SECRET"]
    assert len(made) >= 32
    # the same key for the rest of the process, and an explicit one is never replaced
    assert resolve_run(config, "email-queue", "local").secret_env["WEBHOOK_SECRET"] == made
    monkeypatch.setenv(SANDBOX_SECRET, "mine")
    assert resolve_run(config, "linkedin-scrape", "local").secret_env == {"WEBHOOK_SECRET": "mine"}


# --- pacing -------------------------------------------------------------------------------


def test_a_claude_tier_caps_the_arrival_rate_at_what_its_tokens_allow(
    tmp_path: Path, staging_env: dict[str, str]
) -> None:
    # tier-1: 50 requests, 30000 input and 8000 output tokens a minute; 1500 and 400 tokens a
    # request and 90 % headroom: min(50, 20, 20) * 0.9 = 18 a minute
    run = resolve_run(_config(tmp_path), "ai-enrichment", "staging", "load")
    options = run.profile.k6_options()
    assert (options["rate"], options["timeUnit"]) == (18, "1m")  # was 20 a second
    assert options["duration"] == "2m" and options["maxVUs"] == 100
    assert run.vars["claude_rate_cap_per_minute"] == 18
    assert run.vars["claude_rate_capped"] is True
    assert run.vars["pace_iteration_s"] == 0.0  # an arrival-rate executor needs no pacing
    assert run.vars["claude_tier_limits"]["name"] == "tier-1"
    assert run.vars["claude_tier_limits"]["requests_per_minute"] == 50
    assert run.profile.thresholds == run.scenario.profiles["load"].thresholds


def test_a_profile_under_the_tier_s_rate_is_left_as_it_is(tmp_path: Path) -> None:
    # the local sandbox tier allows 3000 a minute; smoke asks for 5 a second
    run = resolve_run(_config(tmp_path), "ai-enrichment", "local")
    assert run.profile.k6_options() == run.scenario.profiles["smoke"].k6_options()
    assert run.vars["claude_rate_capped"] is False
    assert run.vars["claude_rate_cap_per_minute"] == 2700  # 3000 * 0.9 headroom


def test_a_scenario_without_a_tier_is_not_paced(tmp_path: Path) -> None:
    run = resolve_run(_config(tmp_path), "email-queue", "local")
    assert "claude_rate_cap_per_minute" not in run.vars and "pace_iteration_s" not in run.vars


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("claude_rate_headroom", 1.5, "vars.claude_rate_headroom must be a number from 0.01 to 1"),
        ("claude_rate_headroom", "most", "got 'most'"),
        ("claude_input_tokens_per_request", -1, "from 0 to 1e+07, got -1"),
        ("claude_output_tokens_per_request", True, "got True"),
    ],
)
def test_pacing_numbers_out_of_range_are_named(
    tmp_path: Path, var: str, value: Any, words: str
) -> None:
    config = _config(
        tmp_path, lambda d: d["scenarios"]["ai-enrichment"]["vars"].update({var: value})
    )
    message = resolve_error(config, "ai-enrichment", "local")
    assert message.startswith("scenario 'ai-enrichment': ")
    assert words in message


def test_a_tier_that_allows_under_one_request_a_minute_is_refused(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["scenarios"]["ai-enrichment"]["vars"]["claude_output_tokens_per_request"] = 9_500_000

    # the sandbox tier: 10M output tokens a minute / 9.5M a request * 0.9 headroom < 1
    problem, fix = resolve_error(_config(tmp_path, edit), "ai-enrichment", "local").split("; ")
    assert problem == (
        "Claude tier 'sandbox' allows less than one request per minute at 1500 input / "
        "9.5e+06 output tokens per request"
    )
    assert fix == "lower the token estimates (claude_input_tokens_per_request, " \
                  "claude_output_tokens_per_request) or choose a higher tier"  # fmt: skip


def test_a_tier_named_by_a_variable_is_checked_when_the_run_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_T_TIER", "tier-9")

    def edit(data: dict[str, Any]) -> None:
        data["environments"]["local"]["scenarios"]["ai-enrichment"]["vars"]["claude_tier"] = (
            "${ORCH_T_TIER}"
        )

    config = _config(tmp_path, edit)  # loads: the variable is read later
    message = resolve_error(config, "ai-enrichment", "local")
    assert message == (
        "scenario 'ai-enrichment' in environment 'local' uses the Claude tier 'tier-9', which "
        "is not under claude_tiers (tier-1, tier-2, tier-3, tier-4, sandbox)"
    )


@pytest.mark.parametrize(
    ("options", "cap", "expected", "pace"),
    [
        # a per-second rate over the cap: per minute, at the cap
        ({"executor": "constant-arrival-rate", "rate": 2, "timeUnit": "1s"}, 60,
         {"rate": 60, "timeUnit": "1m"}, 0.0),
        # a rate per 2 s: 3 each 2 s is 90 a minute, over 60
        ({"executor": "constant-arrival-rate", "rate": 3, "timeUnit": "2s"}, 60,
         {"rate": 60, "timeUnit": "1m"}, 0.0),
        # under the cap: nothing changes, not even the time unit
        ({"executor": "constant-arrival-rate", "rate": 1, "timeUnit": "1s"}, 60,
         {"rate": 1, "timeUnit": "1s"}, 0.0),
        # VU executors keep their options; each VU waits vus * 60 / cap seconds an iteration
        ({"executor": "constant-vus", "vus": 4, "duration": "1m"}, 120, {"vus": 4}, 2.0),
        ({"executor": "ramping-vus", "startVUs": 1,
          "stages": [{"duration": "1m", "target": 6}]}, 60, {"startVUs": 1}, 6.0),
        ({"executor": "shared-iterations", "iterations": 10}, 30, {"iterations": 10}, 2.0),
    ],
)  # fmt: skip
def test_cap_profile_per_executor(
    options: dict[str, Any], cap: int, expected: dict[str, Any], pace: float
) -> None:
    capped, pace_s, lowered = cap_profile(options, cap)
    assert {k: capped[k] for k in expected} == expected
    assert pace_s == pytest.approx(pace)
    assert lowered is (capped != options or pace > 0)
    assert capped is not options  # the caller's options are never changed in place


def test_the_production_n8n_cap_applies_only_to_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["production_n8n"] = {
            "host": "n8n.staging.test",
            "webhook_paths": ["/webhook/x"],
            "max_requests_per_second": 2.5,
        }

    for name, value in STAGING.items():
        monkeypatch.setenv(name, value)
    config = _config(tmp_path, edit)
    run = resolve_run(config, "linkedin-scrape", "staging", "load")  # 100 a second
    assert (run.profile.k6_options()["rate"], run.profile.k6_options()["timeUnit"]) == (150, "1m")
    # the API on another host is not the production N8N: the profile stands
    monkeypatch.setenv("STAGING_N8N_BASE_URL", "https://other.staging.test")
    uncapped = resolve_run(config, "linkedin-scrape", "staging", "load")
    assert uncapped.profile.k6_options()["rate"] == 100
    assert apply_production_n8n_cap(uncapped) is uncapped

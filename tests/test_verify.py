"""`orch verify` against real sandboxes: each enrichment variant, webhook auth on and off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from scenario_project import make_project, write_workflow

from orchestrator.cli import main
from orchestrator.config import load_config, resolve_run
from orchestrator.core import ExitCode
from orchestrator.target.verify import read_webhook_trigger, set_yaml_value, url_pattern

SECRET = "verify-sentinel-secret-4b1d"
SANDBOX_SECRET_VAR = "ORCH_SANDBOX_WEBHOOK_SECRET"
ROUTES = {
    "prospects-enrichment": "POST /prospects/{id}/enrichment",
    "prospects-enrich": "POST /prospects/{id}/enrich",
    "enrichment": "POST /enrichment",
    "n8n": "POST /webhook/prospect-enrichment/{id}",
}
N8N_AUTH = {"none": "none", "api-key": "headerAuth", "bearer": "jwtAuth"}


def project(root: Path, *, variant: str, sandbox_auth: str, config_auth: str) -> Path:
    """A project whose local sandbox serves ``variant`` and demands ``sandbox_auth``."""

    def edit(data: dict[str, Any]) -> None:
        local = data["environments"]["local"]
        local["sandbox"].update({"enrichment_variant": variant, "webhook_auth": sandbox_auth})
        local["vars"] = {"webhook_auth": config_auth}
        if config_auth != "none":
            local["secrets"] = {"WEBHOOK_SECRET": SANDBOX_SECRET_VAR}

    config = make_project(root, edit)
    write_workflow(root, N8N_AUTH[sandbox_auth])
    return config


def verify(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["verify", "local", "--config", str(config), *args], env={SANDBOX_SECRET_VAR: SECRET}
    )


def record_of(config: Path) -> str:
    (record,) = sorted((config.parent / "results").glob("verify_*_local.md"))
    return record.read_text()


def row(output: str, spec: str) -> str:
    return next(line for line in output.splitlines() if f" {spec} " in f" {line}")


def test_verify_confirms_the_shipped_local_setup(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    result = verify(config)
    assert result.exit_code == ExitCode.OK, result.output
    assert "webhook trigger (linkedin-scraper.json, node 'Webhook'): POST" in result.output
    assert "/webhook/linkedin-scraper/{uniqueId}" in result.output
    assert "exists (configured)" in row(result.output, ROUTES["prospects-enrichment"])
    for other in ("prospects-enrich", "enrichment", "n8n"):
        assert "absent" in row(result.output, ROUTES[other])
    assert "exists (configured)" in row(result.output, "POST /campaigns/{id}/emails")
    assert "exists (configured)" in row(result.output, "GET /campaigns/{id}/queue")
    record = record_of(config)
    assert "**Verdict:** all endpoints confirmed" in record
    assert "| with configured auth | 200 |" in record


@pytest.mark.parametrize(
    ("variant", "auth"), [("prospects-enrich", "none"), ("enrichment", "none"), ("n8n", "api-key")]
)
def test_verify_finds_each_enrichment_variant_and_writes_it(
    tmp_path: Path, variant: str, auth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_SECRET_VAR, SECRET)
    config = project(tmp_path, variant=variant, sandbox_auth=auth, config_auth=auth)
    text = "# hand-written comment that --write must keep\n" + config.read_text()
    config.write_text(text)
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED == 9, result.output
    assert "exists" in row(result.output, ROUTES[variant])
    assert "absent (configured)" in row(result.output, ROUTES["prospects-enrichment"])
    assert f"serves '{ROUTES[variant]}'; run with --write" in result.output

    written = verify(config, "--write")
    assert written.exit_code == ExitCode.OK, written.output
    assert f"wrote enrichment_endpoint: '{ROUTES[variant]}'" in written.output
    assert config.read_text().startswith("# hand-written comment that --write must keep\n")
    data = yaml.safe_load(config.read_text())
    override = data["environments"]["local"]["scenarios"]["ai-enrichment"]["vars"]
    assert override["enrichment_endpoint"] == ROUTES[variant]
    assert override["claude_tier"] == "sandbox"  # the rest of the override is kept
    resolved = resolve_run(load_config(config), "ai-enrichment", "local")
    assert resolved.vars["enrichment_endpoint"] == ROUTES[variant]

    again = verify(config)
    assert again.exit_code == ExitCode.OK, again.output
    # and the scenario now runs green against that variant
    run = CliRunner().invoke(
        main,
        ["run", "ai-enrichment", "--config", str(config), "--no-report"],
        env={SANDBOX_SECRET_VAR: SECRET},
    )
    assert run.exit_code == ExitCode.OK, run.output


@pytest.mark.parametrize("auth", ["none", "api-key", "bearer"])
def test_webhook_auth_is_sent_and_its_enforcement_reported(tmp_path: Path, auth: str) -> None:
    config = project(tmp_path, variant="prospects-enrichment", sandbox_auth=auth, config_auth=auth)
    result = verify(config)
    assert result.exit_code == ExitCode.OK, result.output
    with_auth = row(result.output, "webhook, auth")
    without = row(result.output, "webhook, no auth")
    assert "200 in" in with_auth and "accepted" in with_auth
    if auth == "none":
        assert "200 in" in without and "no auth required" in without
    else:
        assert "401 in" in without and "auth enforced" in without
    assert f"authentication {N8N_AUTH[auth]}" in result.output
    record = record_of(config)
    assert SECRET not in result.output and SECRET not in record


def test_rejected_auth_and_a_mismatched_export_are_not_confirmed(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="api-key", config_auth="none"
    )
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "the configured auth (none) was rejected (401)" in result.output
    assert "authentication is 'headerAuth' (api-key) but the config says webhook_auth: none" in (
        result.output
    )
    assert "**Verdict:** NOT confirmed" in record_of(config)


def test_a_webhook_that_does_not_take_post_is_reported(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    write_workflow(tmp_path, "none", httpMethod="GET")
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "the trigger accepts GET, but the scenario sends POST" in result.output


def test_a_missing_workflow_file_is_reported(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    (tmp_path / "workflows" / "linkedin-scraper.json").unlink()
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "linkedin-scraper.json does not exist; export the workflow from N8N" in result.output


def test_production_is_refused(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["prod"] = {"kind": "production", "base_url": "http://127.0.0.1:9"}

    config = make_project(tmp_path, edit)
    result = CliRunner().invoke(main, ["verify", "prod", "--config", str(config)])
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "production" in result.output


def test_read_webhook_trigger_and_url_pattern(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "jwtAuth")
    trigger = read_webhook_trigger(path, "linkedin-scraper")
    assert (trigger.method, trigger.auth_mode) == ("POST", "bearer")
    assert url_pattern("https://n8n.example.test/", trigger) == (
        "https://n8n.example.test/webhook/linkedin-scraper/{uniqueId}"
    )
    path.write_text('{"nodes": [{"type": "n8n-nodes-base.webhook", "parameters": {"path": "x"}}]}')
    assert read_webhook_trigger(path, "linkedin-scraper").method == "GET"  # N8N's default


YAML = """\
# top comment
environments:
  local:
    kind: local   # trailing comment
    base_url: http://127.0.0.1:1
    vars: {webhook_auth: none}
  staging:
    kind: staging
    base_url: x
    scenarios:
      ai-enrichment:
        vars:
          enrichment_endpoint: POST /prospects/{id}/enrichment  # old
          claude_tier: tier-1
scenarios: {}
"""


@pytest.mark.parametrize(
    ("keys", "expect_line"),
    [
        (
            [
                "environments",
                "staging",
                "scenarios",
                "ai-enrichment",
                "vars",
                "enrichment_endpoint",
            ],
            '          enrichment_endpoint: "POST /enrichment"  # old',
        ),
        (
            ["environments", "local", "scenarios", "ai-enrichment", "vars", "enrichment_endpoint"],
            '          enrichment_endpoint: "POST /enrichment"',
        ),
        (
            ["environments", "local", "vars", "enrichment_endpoint"],
            '    vars: {webhook_auth: none, enrichment_endpoint: "POST /enrichment"}',
        ),
    ],
)
def test_set_yaml_value_keeps_comments(keys: list[str], expect_line: str) -> None:
    text = set_yaml_value(YAML, keys, "POST /enrichment")
    assert expect_line in text.splitlines()
    assert "# top comment" in text and "# trailing comment" in text
    node: Any = yaml.safe_load(text)
    for key in keys:
        node = node[key]
    assert node == "POST /enrichment"
    assert (
        yaml.safe_load(text)["environments"]["staging"]["scenarios"]["ai-enrichment"]["vars"][
            "claude_tier"
        ]
        == "tier-1"
    )

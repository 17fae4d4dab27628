"""`orch verify` against real sandboxes: each enrichment variant, webhook auth on and off,
the N8N webhook derived from the workflow export and served from it by the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from scenario_project import make_project, write_workflow

from orchestrator.cli import main
from orchestrator.config import load_config, resolve_run
from orchestrator.core import PROJECT_ROOT, ConfigError, ExitCode
from orchestrator.target.n8n import read_export
from orchestrator.target.verify import N8N_AUTH_MODES, set_yaml_value

SECRET = "loadtest:verify-sentinel-secret-4b1d"  # user:password for basic auth
SANDBOX_SECRET_VAR = "ORCH_SANDBOX_WEBHOOK_SECRET"
# where N8N serves scenario_project.N8N_EXPORT's trigger (webhookId, then its path)
TEST_HOOK = "/webhook/7f3c2a4e-0000-4000-8000-000000000000/linkedin-scraper/:uniqueId"
SHIPPED_HOOK = "/webhook/7f3c2a4e-9b1d-4e6f-8a2c-3d5e7f9a1b2c/linkedin-scraper/:uniqueId"
ROUTES = {
    "prospects-enrichment": "POST /prospects/{id}/enrichment",
    "prospects-enrich": "POST /prospects/{id}/enrich",
    "enrichment": "POST /enrichment",
    "n8n": "POST /webhook/prospect-enrichment/{id}",
}
# The export's authentication for each scenario webhook_auth.
N8N_AUTH = {"none": "none", "api-key": "headerAuth", "basic": "basicAuth", "jwt": "jwtAuth"}


def project(root: Path, *, variant: str, sandbox_auth: str, config_auth: str) -> Path:
    """A project whose local sandbox serves ``variant`` and whose N8N export's trigger
    demands ``sandbox_auth`` (the n8n enrichment variant too, where the sandbox can)."""

    def edit(data: dict[str, Any]) -> None:
        local = data["environments"]["local"]
        enrichment_auth = sandbox_auth if sandbox_auth in ("none", "api-key") else "none"
        local["sandbox"].update({"enrichment_variant": variant, "webhook_auth": enrichment_auth})
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


@pytest.mark.slow
def test_verify_confirms_the_shipped_local_setup(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    result = verify(config)
    assert result.exit_code == ExitCode.OK, result.output
    assert "Workflow export: linkedin-scraper.json, workflow 'LinkedIn scraper', node " in (
        result.output
    )
    assert f"N8N serves: POST http://127.0.0.1:{port_of(config)}{TEST_HOOK} (" in result.output
    assert "The story's /webhook/{workflow}/{id}: no; N8N serves" in result.output
    assert "n8n 1.x–2.x, packages/workflow/src/node-helpers.ts" in result.output
    assert "exists (configured)" in row(result.output, ROUTES["prospects-enrichment"])
    for other in ("prospects-enrich", "enrichment", "n8n"):
        assert "absent" in row(result.output, ROUTES[other])
    assert "exists (configured)" in row(result.output, "POST /campaigns/{id}/emails")
    assert "exists (configured)" in row(result.output, "GET /campaigns/{id}/queue")
    record = record_of(config)
    assert "**Verdict:** all endpoints confirmed" in record
    assert "| with configured auth | 200 |" in record
    assert f"- N8N serves: POST `http://127.0.0.1:{port_of(config)}{TEST_HOOK}`" in record


def port_of(config: Path) -> int:
    return int(yaml.safe_load(config.read_text())["environments"]["local"]["base_url"][-5:])


@pytest.mark.slow
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


# What N8N answers a call without credentials: Header Auth 403, Basic Auth and JWT 401.
WITHOUT_AUTH = {"api-key": 403, "basic": 401, "jwt": 401}


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["none", "api-key", "basic", "jwt"])
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
        assert f"{WITHOUT_AUTH[auth]} in" in without and "auth enforced" in without
    assert f"Authentication: {N8N_AUTH[auth]} (sent as webhook_auth {auth}" in result.output
    record = record_of(config)
    assert SECRET not in result.output and SECRET not in record


@pytest.mark.slow
def test_rejected_auth_and_a_mismatched_export_are_not_confirmed(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="api-key", config_auth="none"
    )
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "the configured auth (none) was rejected (403)" in result.output
    assert "authentication is 'headerAuth' (api-key) but the config says webhook_auth: none" in (
        result.output
    )
    assert "**Verdict:** NOT confirmed" in record_of(config)


@pytest.mark.slow
def test_a_webhook_that_does_not_take_post_is_reported(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    write_workflow(tmp_path, "none", httpMethod="GET")
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "the trigger listens for GET, but the scenario sends POST" in result.output
    assert "404, not registered" in result.output  # the sandbox routes it as N8N would


@pytest.mark.slow
def test_a_missing_workflow_file_is_reported(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    (tmp_path / "workflows" / "linkedin-scraper.json").unlink()
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "linkedin-scraper.json does not exist; export the workflow from N8N" in result.output


@pytest.mark.slow
def test_verify_local_confirms_the_shipped_export_where_n8n_serves_it(tmp_path: Path) -> None:
    """The repository's own orch.yaml and export, unchanged: the sandbox serves the export's
    trigger where N8N would, with its Header Auth, and the scenario posts there."""
    config = make_project(tmp_path)
    result = verify(config)
    assert result.exit_code == ExitCode.OK, result.output
    port = port_of(config)
    assert f"N8N serves: POST http://127.0.0.1:{port}{SHIPPED_HOOK}" in result.output
    assert f"The scenario posts to: {SHIPPED_HOOK} (from the export)" in result.output
    assert "Authentication: headerAuth (sent as webhook_auth api-key)" in result.output
    called = SHIPPED_HOOK.replace(":uniqueId", "orch-verify-")
    assert "accepted" in row(result.output, "webhook, auth") and called in result.output
    assert "403 in" in row(result.output, "webhook, no auth")


def override(config: Path, path: str, *, export: bool = True) -> None:
    data = yaml.safe_load(config.read_text())
    hook_vars = data["scenarios"]["linkedin-scrape"]["vars"]
    hook_vars["webhook_path"] = path
    if not export:
        del hook_vars["webhook_export"]
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.slow
def test_an_override_that_disagrees_with_the_export_is_flagged_and_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_SECRET_VAR, SECRET)
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    override(config, "/webhook/linkedin-scraper/{id}")  # the story's assumption
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "vars.webhook_path is '/webhook/linkedin-scraper/{id}' but N8N serves" in result.output
    assert "The scenario posts to: /webhook/linkedin-scraper/{id} (from vars.webhook_path)" in (
        result.output
    )
    # the test call goes where N8N serves the export, and is accepted there
    assert "accepted" in row(result.output, "webhook, auth")

    written = verify(config, "--write")
    assert written.exit_code == ExitCode.OK, written.output
    assert f"wrote webhook_path: '{TEST_HOOK}'" in written.output
    data = yaml.safe_load(config.read_text())
    local = data["environments"]["local"]["scenarios"]["linkedin-scrape"]["vars"]
    assert local["webhook_path"] == TEST_HOOK
    resolved = resolve_run(load_config(config), "linkedin-scrape", "local")
    assert resolved.vars["webhook_path"] == TEST_HOOK
    again = verify(config)
    assert again.exit_code == ExitCode.OK, again.output


@pytest.mark.slow
def test_an_override_without_an_export_is_called_as_written(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    override(config, "/webhook/linkedin-scraper/{id}", export=False)
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "no workflow export: the URL is vars.webhook_path as written" in result.output
    # the sandbox serves what N8N would for the export: the assumed URL is not registered
    assert "/webhook/linkedin-scraper/orch-verify-" in result.output
    assert "404, not registered" in result.output


@pytest.mark.slow
def test_options_that_turn_a_load_test_away_are_reported(tmp_path: Path) -> None:
    config = project(
        tmp_path, variant="prospects-enrichment", sandbox_auth="none", config_auth="none"
    )
    write_workflow(
        tmp_path, "none", options={"ignoreBots": True, "allowedOrigins": "https://a.test"}
    )
    result = verify(config)
    assert result.exit_code == ExitCode.UNVERIFIED, result.output
    assert "option Ignore Bots is on" in result.output
    assert "Options: Ignore Bots; Allowed Origins https://a.test (CORS, browsers only)" in (
        result.output
    )
    assert "note: " in result.output and "turns no k6 request away" in result.output
    assert "403 in" in row(result.output, "webhook, auth")  # orch's client is a bot too

    write_workflow(tmp_path, "none", options={"ipWhitelist": "127.0.0.1"})
    allowed = verify(config)
    assert allowed.exit_code == ExitCode.OK, allowed.output
    assert "warning: " in allowed.output and "IP(s) Whitelist (127.0.0.1)" in allowed.output


def test_production_is_refused(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["environments"]["prod"] = {"kind": "production", "base_url": "http://127.0.0.1:9"}

    config = make_project(tmp_path, edit)
    result = CliRunner().invoke(main, ["verify", "prod", "--config", str(config)])
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "production" in result.output


def test_the_export_s_trigger_and_the_url_n8n_serves(tmp_path: Path) -> None:
    path = write_workflow(tmp_path, "jwtAuth")
    (trigger,) = read_export(path)
    assert trigger.methods == ("POST",)
    assert N8N_AUTH_MODES[trigger.authentication] == ("jwt", "bearer")
    assert trigger.url("https://n8n.example.test/") == f"https://n8n.example.test{TEST_HOOK}"
    path.write_text(
        '{"nodes": [{"type": "n8n-nodes-base.webhook", "webhookId": "h", "parameters": '
        '{"path": "x"}}]}'
    )
    (static,) = read_export(path)
    assert static.methods == ("GET",)  # N8N's default
    assert static.url("https://n8n.example.test") == "https://n8n.example.test/webhook/x"


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
            # the comment keeps its column
            '          enrichment_endpoint: "POST /enrichment"               # old',
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


def _inserted(text: str, after_line: str, *lines: str) -> str:
    head, tail = text.split(after_line + "\n", 1)
    return head + after_line + "\n" + "".join(f"{line}\n" for line in lines) + tail


@pytest.mark.slow
def test_set_yaml_value_changes_nothing_else_in_the_shipped_config() -> None:
    """orch.yaml as shipped: aligned comments, comment blocks after a mapping, a plain
    scalar over two lines, ``{ padded }`` flow mappings: all kept byte for byte."""
    text = (PROJECT_ROOT / "orch.yaml").read_text(encoding="utf-8")
    staging = ["environments", "staging", "scenarios", "ai-enrichment", "vars"]
    assert set_yaml_value(text, [*staging, "enrichment_endpoint"], "POST /enrichment") == (
        _inserted(
            text,
            "          claude_tier: tier-1",
            '          enrichment_endpoint: "POST /enrichment"',
        )
    )
    local = ["environments", "local", "scenarios", "linkedin-scrape", "vars", "webhook_path"]
    assert set_yaml_value(text, local, "/webhook/x/:id") == _inserted(
        text,
        "          claude_tier: sandbox",
        "      linkedin-scrape:",
        "        vars:",
        '          webhook_path: "/webhook/x/:id"',
    )
    production = ["environments", "production", "vars", "webhook_auth"]
    assert set_yaml_value(text, production, "none") == _inserted(
        text,
        "    n8n_base_url: https://n8n.srv997159.hstgr.cloud",
        "    vars:",
        '      webhook_auth: "none"',
    )
    stages = ["scenarios", "linkedin-scrape", "profiles", "stress", "startRate"]
    old = "        startRate: 50\n"
    assert set_yaml_value(text, stages, "60") == text.replace(old, '        startRate: "60"\n', 1)


def test_set_yaml_value_edge_cases_the_text_splice_got_wrong() -> None:
    literal = "environments:\n  local:\n    notes: |\n      two\n      lines\n  staging: {}\n"
    assert set_yaml_value(literal, ["environments", "local", "vars", "x"], "v") == (
        literal.replace("      lines\n", '      lines\n    vars:\n      x: "v"\n')
    )
    keys = ["environments", "local", "scenarios", "odd: name", "vars", "x"]
    text = set_yaml_value("environments:\n  local: {}\n", keys, "v")
    assert yaml.safe_load(text)["environments"]["local"]["scenarios"]["odd: name"] == {
        "vars": {"x": "v"}
    }
    four = "---\nenvironments:\n    local:\n        kind: local\n        hosts:\n        -   a\n"
    assert set_yaml_value(four, ["environments", "local", "vars", "x"], "v") == (
        four + '        vars:\n            x: "v"\n'
    )


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        ("", ["a", "b"], "the top level in the config is not a mapping"),
        ("a: 1\n", ["a", "b"], "a in the config is not a mapping"),
        ("a: {b: 1}\n", ["a"], "a in the config is not a single value"),
        ("a: {b: 1}\na: {c: 2}\n", ["a", "b"], 'line 2: found duplicate key "a"; fix it'),
    ],
)
def test_set_yaml_value_errors_name_the_place(
    text: str, keys: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        set_yaml_value(text, keys, "v")

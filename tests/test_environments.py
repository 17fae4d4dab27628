"""`orch env list|check` against a real sandbox and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import SandboxSettings
from orchestrator.core import ExitCode
from orchestrator.target import start_sandbox
from tests.conftest import free_port
from tests.test_db_support import fresh_db, pg_server  # noqa: F401  (fixtures)

STAGING = """\
  staging:
    kind: staging
    base_url: ${ORCH_T_API}
    n8n_base_url: ${ORCH_T_N8N}
    database_url: ${ORCH_T_DB}
    secrets:
      WEBHOOK_SECRET: ORCH_T_SECRET
"""


def staging_project(project: Callable[..., Path]) -> Path:
    config = project()
    text = config.read_text()
    head, rest = text.split("  staging:\n", 1)
    rest = rest.split("scenarios:\n", 1)[1]
    config.write_text(head + STAGING + "scenarios:\n" + rest)
    return config


def test_env_list(project: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["env", "list", "--config", str(project())])
    assert result.exit_code == 0
    assert "local (default)" in result.output
    assert "staging" in result.output


def test_local_is_ready_on_demand(project: Callable[..., Path]) -> None:
    result = CliRunner().invoke(main, ["env", "check", "--config", str(project())])
    assert result.exit_code == 0, result.output
    assert "on demand" in result.output
    assert "local: ready" in result.output


def test_staging_lists_what_is_missing(project: Callable[..., Path]) -> None:
    result = CliRunner().invoke(
        main, ["env", "check", "staging", "--config", str(staging_project(project))]
    )
    assert result.exit_code == ExitCode.SETUP
    for var in ("ORCH_T_API", "ORCH_T_N8N", "ORCH_T_DB", "ORCH_T_SECRET"):
        assert f"variable {var}" in result.output
        assert f"export {var}=" in result.output
    assert "staging: not ready" in result.output


@pytest.mark.slow
def test_staging_ready_then_migrations_pending(
    project: Callable[..., Path],
    fresh_db: str,  # noqa: F811
) -> None:
    config = staging_project(project)
    port = free_port()
    with start_sandbox(SandboxSettings(port=port)) as box:
        env = {
            "ORCH_T_API": box.url,
            "ORCH_T_N8N": box.url,
            "ORCH_T_DB": fresh_db,
            "ORCH_T_SECRET": "s3cret-value",
        }
        pending = CliRunner().invoke(
            main, ["env", "check", "staging", "--config", str(config)], env=env
        )
        assert pending.exit_code == ExitCode.SETUP, pending.output
        assert "migrations pending" in pending.output
        assert "orch db migrate --env staging" in pending.output
        api_line = next(line for line in pending.output.splitlines() if line.startswith("API"))
        assert api_line.split()[1] == "ok", api_line

        migrate = CliRunner().invoke(
            main, ["db", "migrate", "--env", "staging", "--config", str(config)], env=env
        )
        assert migrate.exit_code == 0, migrate.output
        ready = CliRunner().invoke(
            main, ["env", "check", "staging", "--config", str(config)], env=env
        )
    assert ready.exit_code == 0, ready.output
    assert "migrations applied" in ready.output
    assert "s3cret-value" not in ready.output
    assert "staging: ready" in ready.output


def test_unreachable_api_is_reported(project: Callable[..., Path]) -> None:
    config = staging_project(project)
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "ORCH_T_API": dead,
        "ORCH_T_N8N": dead,
        "ORCH_T_DB": "postgresql://u@127.0.0.1:1/x",
        "ORCH_T_SECRET": "x",
    }
    result = CliRunner().invoke(main, ["env", "check", "staging", "--config", str(config)], env=env)
    assert result.exit_code == ExitCode.SETUP
    assert "unreachable" in result.output


def test_env_check_refuses_production(project: Callable[..., Path]) -> None:
    config = project()
    config.write_text(
        config.read_text().replace(
            "environments:\n",
            "environments:\n  prod:\n    kind: production\n    base_url: https://api.example.com\n",
            1,
        )
    )
    result = CliRunner().invoke(main, ["env", "check", "prod", "--config", str(config)])
    assert result.exit_code == ExitCode.REFUSED

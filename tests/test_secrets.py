"""No secret leaks: every command runs with sentinel secret values, then every file written
and everything printed is scanned for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from tests.test_db_support import fresh_db, pg_server  # noqa: F401  (fixtures)

WEBHOOK_SENTINEL = "sentinel-webhook-9f1d2c7a"
DB_SENTINEL = "sentinel-dbpass-4b8e6a13"
SERVICE_SENTINEL = "sentinel-service-role-77c0e5"


@pytest.mark.slow
def test_no_sentinel_secret_leaks_anywhere(
    project: Callable[..., Path],
    fresh_db: str,  # noqa: F811
) -> None:
    from psycopg.conninfo import make_conninfo

    # the embedded server trusts local connections, so a password is accepted and ignored:
    # enough to prove orch never writes or prints it
    db_url = make_conninfo(fresh_db, password=DB_SENTINEL)
    config = project()
    text = config.read_text()
    text = text.replace(
        "    kind: local\n",
        "    kind: local\n"
        "    database_url: ${ORCH_T_DB_URL}\n"
        "    supabase_service_role_key: ORCH_T_SERVICE_KEY\n"
        "    secrets:\n      WEBHOOK_SECRET: ORCH_T_WEBHOOK_SECRET\n"
        "    vars:\n      webhook_auth: api-key\n",
        1,
    )
    text = text.replace(
        "      latency_ms_p95: 3\n",
        "      latency_ms_p95: 3\n"
        "      webhook_auth: api-key\n"
        "      webhook_secret_env: ORCH_T_WEBHOOK_SECRET\n",
        1,
    )
    config.write_text(text)
    env = {
        "ORCH_T_WEBHOOK_SECRET": WEBHOOK_SENTINEL,
        "ORCH_T_SERVICE_KEY": SERVICE_SENTINEL,
        "ORCH_T_DB_URL": db_url,
    }
    commands = [
        ["doctor"],
        ["scenarios"],
        ["env", "list"],
        ["db", "migrate"],
        ["env", "check"],
        ["render", "linkedin-scrape"],
        ["db", "indexes"],
        ["db", "plan"],
        ["db", "seed", "--scale", "200"],
        ["db", "explain"],
        ["users", "create", "--count", "2"],
        ["users", "list"],
        ["run", "linkedin-scrape"],
        ["users", "cleanup"],
    ]
    outputs = []
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, [*command, "--config", str(config)], env=env)
        outputs.append((command, result.exit_code, result.output))
    for command, code, output in outputs:
        # every command really ran (the run authenticated with the webhook secret)
        assert code == 0, (command, output)
    run_dirs = [p for p in (config.parent / "results").iterdir() if p.is_dir() and "_" in p.name]
    report = next(iter(run_dirs)).name
    result = runner.invoke(main, ["report", str(config.parent / "results" / report)], env=env)
    outputs.append((["report"], result.exit_code, result.output))

    sentinels = [WEBHOOK_SENTINEL, DB_SENTINEL, SERVICE_SENTINEL]
    for command, _, output in outputs:
        for sentinel in sentinels:
            assert sentinel not in output, (command, output)
    written = [p for p in config.parent.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written)
    assert any(p.name == "k6.log" for p in written)
    for path in written:
        content = path.read_bytes()
        for sentinel in sentinels:
            assert sentinel.encode() not in content, (path, sentinel)

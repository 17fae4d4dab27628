"""Test users: created once, one per VU, cleaned up with all their rows (real PostgreSQL,
real k6, real sandbox)."""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.core import ExitCode
from tests.test_db_support import fresh_db, pg_server  # noqa: F401  (fixtures)

PER_VU_TEMPLATE = """\
import { testUsers, userFor } from './k6_scripts/users.js';
export const options = {{ options | tojson }};
const USERS = testUsers();
export default function () {
  const user = userFor(USERS, __VU);
  console.log(`VU=${__VU} USER=${user.email} PW=${user.password}`);
}
"""


@pytest.fixture
def users_project(project: Callable[..., Path], fresh_db: str) -> Path:  # noqa: F811
    """A project whose local environment uses a fresh database with the migrations applied."""
    from orchestrator.core import PROJECT_ROOT
    from orchestrator.db import apply_migrations, connect

    with connect(fresh_db, autocommit=True) as conn:
        apply_migrations(conn, PROJECT_ROOT / "supabase" / "migrations")
    config = project(
        extra_yaml="""
  per-vu:
    template: per_vu.js.j2
    default_profile: five
    profiles:
      five: {executor: per-vu-iterations, vus: 5, iterations: 1}
"""
    )
    text = config.read_text().replace(
        "    kind: local\n", f"    kind: local\n    database_url: {fresh_db}\n", 1
    )
    text += """production:
  hosts: [api.sales-machine.com]
"""
    text = text.replace(
        "environments:\n",
        "environments:\n  production:\n    kind: production\n"
        "    base_url: https://api.sales-machine.com\n",
        1,
    )
    config.write_text(text)
    (config.parent / "templates" / "per_vu.js.j2").write_text(PER_VU_TEMPLATE)
    return config


def orch(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def credentials(config: Path) -> dict[str, object]:
    path = config.parent / "tests" / "load" / "data" / "test-users.json"
    return json.loads(path.read_text())


@pytest.mark.slow
def test_users_are_created_once(users_project: Path) -> None:
    first = orch(users_project, "users", "create", "--count", "3")
    assert first.exit_code == 0, first.output
    assert "created 3, reused 0" in first.output
    again = orch(users_project, "users", "create", "--count", "3")
    assert "created 0, reused 3" in again.output
    path = users_project.parent / "tests" / "load" / "data" / "test-users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = credentials(users_project)["environments"]["local"]["users"]  # type: ignore[index]
    assert [u["email"] for u in saved] == [
        f"loadtest-user-{i}@test.sales-machine.com" for i in (1, 2, 3)
    ]
    listed = orch(users_project, "users", "list")
    assert "3 test users in local" in listed.output
    assert listed.output.count("loadtest-user-") == 3


@pytest.mark.slow
def test_each_vu_gets_its_own_user_and_passwords_stay_out_of_files(users_project: Path) -> None:
    assert orch(users_project, "users", "create", "--count", "3").exit_code == 0
    saved = credentials(users_project)["environments"]["local"]["users"]  # type: ignore[index]
    result = orch(users_project, "run", "per-vu")
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (users_project.parent / "results").iterdir() if p.is_dir()]
    log = (run_dir / "k6.log").read_text()
    for vu in range(1, 6):
        expected = saved[(vu - 1) % 3]["email"]
        assert f"VU={vu} USER={expected} PW=***" in log
    manifest = json.loads((run_dir / "run.json").read_text())
    assert any("3 test users" in n and "5 VUs share them" in n for n in manifest["notes"])
    assert "5 VUs share them, wrapping round" in (run_dir / "report.md").read_text()
    passwords = [u["password"].encode() for u in saved]
    for path in run_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(p in content for p in passwords), path
    assert not any(p.decode() in result.output for p in passwords)


def _insert_rows(url: str, user_id: str, count: int) -> None:
    from orchestrator.db import connect

    with connect(url, autocommit=True) as conn:
        for i in range(count):
            campaign = conn.execute(
                "INSERT INTO campaigns (user_id, name) VALUES (%s, %s) RETURNING id",
                (user_id, f"c{i}"),
            ).fetchone()[0]
            prospect = conn.execute(
                "INSERT INTO prospects (user_id, campaign_id, linkedin_url, full_name) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (user_id, campaign, f"https://www.linkedin.com/in/p-{uuid.uuid4().hex}", "P"),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO meetings (user_id, prospect_id, scheduled_at) VALUES (%s, %s, now())",
                (user_id, prospect),
            )
            conn.execute(
                "INSERT INTO ai_conversation_log (user_id, prospect_id, role, model, content) "
                "VALUES (%s, %s, 'user', 'claude', 'hi')",
                (user_id, prospect),
            )


def _count(url: str, table: str, user_id: str) -> int:
    from orchestrator.db import connect

    with connect(url) as conn:
        return int(
            conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (user_id,)).fetchone()[
                0
            ]
        )


@pytest.mark.slow
def test_cleanup_deletes_test_users_and_their_rows_only(
    users_project: Path,
    fresh_db: str,  # noqa: F811
) -> None:
    from orchestrator.db import connect

    assert orch(users_project, "users", "create", "--count", "2").exit_code == 0
    saved = credentials(users_project)["environments"]["local"]["users"]  # type: ignore[index]
    for user in saved:
        _insert_rows(fresh_db, user["id"], 2)
    with connect(fresh_db, autocommit=True) as conn:
        real_user = conn.execute(
            "INSERT INTO auth.users (email, encrypted_password) "
            "VALUES ('ana@sales-machine.com', 'x') RETURNING id::text"
        ).fetchone()[0]
    _insert_rows(fresh_db, real_user, 3)

    dry = orch(users_project, "users", "cleanup", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 test users" in dry.output
    assert "prospects: would delete 4 rows" in dry.output
    assert _count(fresh_db, "prospects", saved[0]["id"]) == 2  # nothing deleted yet

    refused = orch(users_project, "users", "cleanup", "--id", real_user)
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    assert "not a test account" in refused.output

    done = orch(users_project, "users", "cleanup")
    assert done.exit_code == 0, done.output
    assert "deleted 2 test users" in done.output
    for table, expected in {
        "ai_conversation_log": 4,
        "meetings": 4,
        "prospects": 4,
        "campaigns": 4,
    }.items():
        assert f"{table}: deleted {expected} rows" in done.output
    for user in saved:
        for table in ("prospects", "campaigns", "meetings", "ai_conversation_log"):
            assert _count(fresh_db, table, user["id"]) == 0
    for table in ("prospects", "campaigns", "meetings", "ai_conversation_log"):
        assert _count(fresh_db, table, real_user) == 3  # the real user's rows stay
    with connect(fresh_db) as conn:
        emails = [r[0] for r in conn.execute("SELECT email FROM auth.users").fetchall()]
    assert emails == ["ana@sales-machine.com"]

    twice = orch(users_project, "users", "cleanup")
    assert twice.exit_code == 0 and "deleted 0 test users" in twice.output


@pytest.mark.slow
def test_users_commands_refuse_production(users_project: Path) -> None:
    for args in (("users", "create"), ("users", "list"), ("users", "cleanup")):
        result = orch(users_project, *args, "--env", "production")
        assert result.exit_code == ExitCode.REFUSED, (args, result.output)


@pytest.mark.slow
def test_a_non_test_domain_is_refused(users_project: Path) -> None:
    users_project.write_text(
        users_project.read_text() + "test_users:\n  domain: sales-machine.com\n"
    )
    result = orch(users_project, "users", "create")
    assert result.exit_code == ExitCode.CONFIG
    assert "not a test domain" in result.output

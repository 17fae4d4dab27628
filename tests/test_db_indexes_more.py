"""Index verification and planning on a real PostgreSQL, for the indexes that look like a
need but do not serve it (INVALID, partial, expression, GIN, INCLUDE, descending), a
schema of its own with quoted names, and the plan applied back to the database."""
# ruff: noqa: F811 - pytest fixtures are imported from test_db_support and used as arguments

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from test_db_support import fresh_db, pg_server  # noqa: F401

from orchestrator.config import DatabaseSettings, DesiredIndex
from orchestrator.core import ConfigError, DatabaseError
from orchestrator.db import apply_migrations, connect
from orchestrator.db.indexes import (
    ExistingIndex,
    Status,
    find_redundant,
    list_indexes,
    match_desired,
    relation_names,
    verify_indexes,
)
from orchestrator.db.migrations import list_migrations
from orchestrator.db.plan import indexes_in_file, render_statement, write_plan

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Schema "App" (quoted, mixed case) and a table whose indexes each miss a plain need.
ODD_SCHEMA = """
CREATE SCHEMA "App";
CREATE TABLE "App".leads (
    id bigint PRIMARY KEY,
    owner text NOT NULL,
    stage text,
    score int,
    tags text[],
    "Email" text,
    created_at timestamptz
);
INSERT INTO "App".leads (id, owner, stage, score, "Email")
    VALUES (1, 'u1', 'new', 1, 'a@test'), (2, 'u1', 'won', 1, 'a@test');
CREATE INDEX leads_stage_open ON "App".leads (stage) WHERE stage <> 'won';
CREATE INDEX leads_email_lower ON "App".leads (lower("Email"));
CREATE INDEX leads_tags_gin ON "App".leads USING gin (tags);
CREATE INDEX leads_owner_incl ON "App".leads (owner) INCLUDE (stage);
CREATE INDEX leads_owner_stage ON "App".leads (owner, stage);
CREATE INDEX leads_created_desc ON "App".leads (created_at DESC);
CREATE INDEX leads_created_desc_owner ON "App".leads (created_at, owner);
CREATE INDEX "Leads_Email" ON "App".leads ("Email");
"""


def _want(columns: list[str], name: str = "wanted", table: str = "leads") -> DesiredIndex:
    return DesiredIndex(table=table, columns=columns, name=name, reason="a test needs it")


@pytest.fixture
def odd_db(fresh_db: str) -> str:
    """The schema above, with an INVALID index left by a concurrent unique build that
    failed (two rows share a score), as a real failed migration leaves it."""
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute(ODD_SCHEMA)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute('CREATE UNIQUE INDEX CONCURRENTLY leads_score_uniq ON "App".leads (score)')
    return fresh_db


@pytest.fixture
def existing(odd_db: str) -> dict[str, ExistingIndex]:
    with connect(odd_db) as conn:
        return {index.name: index for index in list_indexes(conn, "App", ["leads"])}


def test_the_catalogue_says_what_each_index_is(existing: dict[str, ExistingIndex]) -> None:
    kinds = {name: index.kind() for name, index in existing.items()}
    assert kinds == {
        "leads_pkey": "primary key",
        "leads_score_uniq": "unique, INVALID",
        "leads_stage_open": "partial",
        "leads_email_lower": "expression",
        "leads_tags_gin": "gin",
        "leads_owner_incl": "plain",
        "leads_owner_stage": "plain",
        "leads_created_desc": "plain",
        "leads_created_desc_owner": "plain",
        "Leads_Email": "plain",
    }
    incl = existing["leads_owner_incl"]
    assert (incl.columns, incl.include) == (("owner",), ("stage",))
    assert existing["leads_created_desc"].descending == (True,)
    assert existing["leads_stage_open"].predicate == "(stage <> 'won'::text)"
    assert existing["leads_email_lower"].columns == ('lower("Email")',)
    assert existing["Leads_Email"].columns == ("Email",)
    assert existing["leads_score_uniq"].definition.startswith(
        "CREATE UNIQUE INDEX leads_score_uniq"
    )


@pytest.mark.parametrize(
    ("columns", "status", "by", "note"),
    [
        (["score"], Status.MISSING, None,
         "leads_score_uniq is INVALID (a failed CREATE INDEX CONCURRENTLY); drop and rebuild it"),
        (["stage"], Status.MISSING, None, "leads_stage_open is partial (WHERE (stage <> "
                                          "'won'::text))"),
        (["Email"], Status.PRESENT, "Leads_Email", None),
        (["tags"], Status.MISSING, None, "leads_tags_gin uses gin, not btree"),
        (["owner"], Status.PRESENT, "leads_owner_incl", None),  # INCLUDE adds, keys match
        (["created_at"], Status.PRESENT, "leads_created_desc", None),  # any order serves
        # a need that mentions a column of a partial index is told about it too
        (["created_at", "owner", "stage"], Status.MISSING, None,
         "leads_stage_open is partial (WHERE (stage <> 'won'::text))"),
    ],
)  # fmt: skip
def test_a_near_miss_is_missing_and_says_why(
    existing: dict[str, ExistingIndex],
    columns: list[str],
    status: Status,
    by: str | None,
    note: str | None,
) -> None:
    verdict = match_desired(_want(columns), existing.values())
    assert (verdict.status, verdict.by, verdict.note) == (status, by, note)


def test_an_expression_index_is_named_among_the_near_misses(
    existing: dict[str, ExistingIndex],
) -> None:
    # "Email" appears in lower("Email"): a plain index exists too, so only a new need misses
    verdict = match_desired(_want(["Email", "owner"]), existing.values())
    assert verdict.status is Status.MISSING
    assert verdict.note == "leads_email_lower indexes an expression"


def test_only_real_duplicates_and_prefixes_are_redundant(
    existing: dict[str, ExistingIndex],
) -> None:
    found = {(r.index, r.because_of, r.reason) for r in find_redundant(existing.values())}
    # leads_owner_incl is a prefix of leads_owner_stage, but its INCLUDE makes it an
    # index-only scan for other queries; leads_created_desc is DESC, the composite is ASC
    assert found == set()


def test_verification_in_a_schema_of_its_own(odd_db: str) -> None:
    settings = DatabaseSettings(
        schema_name="App",
        tables=["leads"],
        desired_indexes=[_want(["owner"], "ix_owner"), _want(["stage"], "leads_stage_open")],
    )
    with connect(odd_db) as conn:
        report = verify_indexes(conn, settings)
        taken = relation_names(conn, "App")
    assert report.schema == "App" and len(report.existing) == 10
    assert [s.status for s in report.statuses] == [Status.PRESENT, Status.MISSING]
    assert [s.desired.name for s in report.missing] == ["leads_stage_open"]
    assert {"leads", "leads_pkey", "Leads_Email"} <= taken


def test_a_table_or_column_that_is_not_there_is_named(odd_db: str) -> None:
    with connect(odd_db) as conn:
        with pytest.raises(DatabaseError) as table:
            verify_indexes(conn, DatabaseSettings(schema_name="App", tables=["leads", "deals"],
                                                  desired_indexes=[]))  # fmt: skip
        assert "table(s) App.deals do not exist" in table.value.message
        with pytest.raises(ConfigError) as column:
            wrong = [_want(["email"], "ix")]  # the column is "Email"
            verify_indexes(conn, DatabaseSettings(schema_name="App", tables=["leads"],
                                                  desired_indexes=wrong))  # fmt: skip
    assert column.value.message.startswith(
        "database.desired_indexes[0] (ix): column(s) email do not exist in App.leads (its "
        "columns: id, owner, stage, score, tags, Email, created_at)"
    )


def test_the_plan_renames_around_a_taken_name_and_applies_cleanly(
    odd_db: str, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20990101000000_later.sql").write_text("SELECT 1;\n", encoding="utf-8")
    settings = DatabaseSettings(
        schema_name="App",
        tables=["leads"],
        desired_indexes=[_want(["stage"], "leads_stage_open"), _want(["Email", "owner"], "ix_e")],
    )
    with connect(odd_db) as conn:
        report = verify_indexes(conn, settings)
        taken = relation_names(conn, "App")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    result = write_plan(report, migrations, applied=set(), taken_names=taken,
                        target="postgresql://u@127.0.0.1/test", now=now)  # fmt: skip
    assert result.path is not None
    # a version later than every existing migration, even one dated in the future
    assert result.path.name == "20990101000001_add_performance_indexes.sql"
    assert [p.name for p in result.planned] == ["leads_stage_open_v2", "ix_e"]
    text = result.path.read_text(encoding="utf-8")
    assert "-- present 0, covered by a composite index 0, missing 2." in text
    assert "from the indexes of postgresql://u@127.0.0.1/test." in text
    assert "-- Named leads_stage_open_v2 because leads_stage_open is taken" in text
    assert (
        "-- Not served today: leads_stage_open is partial (WHERE (stage <> 'won'::text))." in text
    )
    assert 'CREATE INDEX IF NOT EXISTS "ix_e" ON "App"."leads" ("Email", "owner");' in text
    [plan] = [m for m in list_migrations(migrations) if m.path == result.path]
    assert indexes_in_file(plan) == {("leads", ("stage",)), ("leads", ("Email", "owner"))}

    # planning again before it is applied writes nothing new
    again = write_plan(report, migrations, applied=set(), taken_names=taken, target="t", now=now)
    assert again.path is None and [d.name for d, _ in again.already_planned] == [
        "leads_stage_open", "ix_e",
    ]  # fmt: skip
    with connect(odd_db, autocommit=True) as conn:
        applied = apply_migrations(conn, migrations)
        after = verify_indexes(conn, settings)
    assert [m.path.name for m in applied] == [
        "20990101000000_later.sql", "20990101000001_add_performance_indexes.sql",
    ]  # fmt: skip
    assert [(s.status, s.by) for s in after.statuses] == [
        (Status.PRESENT, "leads_stage_open_v2"), (Status.PRESENT, "ix_e"),
    ]  # fmt: skip
    assert after.missing == [] and not again.nothing_missing


def test_nothing_missing_writes_no_file(odd_db: str, tmp_path: Path) -> None:
    settings = DatabaseSettings(schema_name="App", tables=["leads"],
                                desired_indexes=[_want(["owner", "stage"], "ix")])  # fmt: skip
    with connect(odd_db) as conn:
        report = verify_indexes(conn, settings)
    result = write_plan(report, tmp_path, applied=set(), taken_names=set(), target="t")
    assert result.path is None and result.planned == [] and result.nothing_missing
    assert list(tmp_path.iterdir()) == []


def test_statements_quote_what_needs_quoting() -> None:
    assert render_statement("public", "prospects", "ix", ["user_id", "status"],
                            concurrently=False) == (
        'CREATE INDEX IF NOT EXISTS "ix" ON "public"."prospects" ("user_id", "status")'
    )  # fmt: skip
    assert render_statement("App", "Lead List", 'ix "1"', ["Email"], concurrently=True) == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix ""1""" ON "App"."Lead List" ("Email")'
    )

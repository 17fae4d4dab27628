"""Supabase-style migration files: listing, splitting, applying and recording them.

Files are named ``YYYYMMDDHHMMSS_name.sql`` (Supabase's convention); the timestamp is the
version and files apply in version order. What was applied is recorded in Supabase's own
history table, ``supabase_migrations.schema_migrations``, when the database has it (so
``supabase migration list`` agrees with us), else in ``orch_migrations.applied``.

A file runs inside one transaction, as Supabase runs it, unless it carries the line
``-- orch:no-transaction``: then each statement runs on its own, outside a transaction, which
``CREATE INDEX CONCURRENTLY`` requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlparse

from orchestrator.core import ConfigError, DatabaseError

if TYPE_CHECKING:
    import psycopg

MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")
NO_TRANSACTION_MARK = "-- orch:no-transaction"
SUPABASE_HISTORY = ("supabase_migrations", "schema_migrations")
ORCH_HISTORY = ("orch_migrations", "applied")


@dataclass(frozen=True)
class MigrationFile:
    """One migration file on disk."""

    version: str
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def transactional(self) -> bool:
        return not any(
            line.strip().lower() == NO_TRANSACTION_MARK for line in self.text.splitlines()
        )


def list_migrations(migrations_dir: Path) -> list[MigrationFile]:
    """The ``*.sql`` migrations in ``migrations_dir``, in version order.

    Raises :class:`ConfigError` for a missing folder, a badly named file, or a version used twice.
    """
    if not migrations_dir.is_dir():
        raise ConfigError(
            f"the migrations folder {migrations_dir} does not exist; create it or fix "
            "database.migrations_dir in orch.yaml"
        )
    files: list[MigrationFile] = []
    seen: dict[str, Path] = {}
    for path in sorted(migrations_dir.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise ConfigError(
                f"the migration file {path} is not named YYYYMMDDHHMMSS_name.sql; rename it "
                "(Supabase applies only files named that way)"
            )
        version = match.group("version")
        if version in seen:
            raise ConfigError(
                f"the migrations {seen[version].name} and {path.name} share version {version}; "
                "give one of them a later timestamp"
            )
        seen[version] = path
        files.append(MigrationFile(version, match.group("name"), path))
    return sorted(files, key=lambda migration: migration.version)


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, without their closing semicolons.

    sqlparse splits it, so a semicolon inside a string (``'a;b'``, ``E'it\\'s;'``), a
    quoted identifier, a comment, a dollar-quoted body (``$$ … $$``, ``$fn$ … $fn$``) or a
    ``BEGIN ATOMIC … END`` function body does not end a statement. Comment-only chunks are
    dropped; each statement keeps its leading comment.
    """
    return [
        statement
        for statement in sqlparse.split(script, strip_semicolon=True)
        if sqlparse.format(statement, strip_comments=True).strip()
    ]


def _history_exists(conn: psycopg.Connection, table: tuple[str, str]) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"{table[0]}.{table[1]}",)).fetchone()
    return row is not None and row[0] is not None


def history_table(conn: psycopg.Connection) -> tuple[str, str]:
    """Supabase's history table when the database has one, else orch's own."""
    return SUPABASE_HISTORY if _history_exists(conn, SUPABASE_HISTORY) else ORCH_HISTORY


def _ensure_orch_history(conn: psycopg.Connection) -> None:
    from psycopg import sql

    schema, table = ORCH_HISTORY
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (version text PRIMARY KEY, name text NOT NULL, "
                "statements text[], applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(schema), sql.Identifier(table))
        )


def applied_versions(conn: psycopg.Connection) -> set[str]:
    """The versions recorded as applied (empty when no history table exists yet)."""
    from psycopg import sql

    table = history_table(conn)
    if not _history_exists(conn, table):
        return set()
    query = sql.SQL("SELECT version FROM {}.{}").format(*map(sql.Identifier, table))
    return {row[0] for row in conn.execute(query).fetchall()}


def pending_migrations(conn: psycopg.Connection, migrations_dir: Path) -> list[MigrationFile]:
    """The files in ``migrations_dir`` not recorded as applied, in version order."""
    done = applied_versions(conn)
    return [m for m in list_migrations(migrations_dir) if m.version not in done]


def _record(conn: psycopg.Connection, migration: MigrationFile, statements: list[str]) -> None:
    from psycopg import sql

    table = history_table(conn)
    conn.execute(
        sql.SQL("INSERT INTO {}.{} (version, name, statements) VALUES (%s, %s, %s)").format(
            *map(sql.Identifier, table)
        ),
        (migration.version, migration.name, statements),
    )


def apply_migrations(conn: psycopg.Connection, migrations_dir: Path) -> list[MigrationFile]:
    """Apply the pending migrations in order, recording each; return those applied.

    ``conn`` must be in autocommit mode (transactions are opened here, per file). A failing
    file raises :class:`DatabaseError` naming it; the files before it stay applied.
    """
    import psycopg

    if not conn.autocommit:
        raise ValueError("apply_migrations needs an autocommit connection")
    if history_table(conn) == ORCH_HISTORY:
        _ensure_orch_history(conn)
    applied = []
    for migration in pending_migrations(conn, migrations_dir):
        script = migration.text
        statements = split_statements(script)
        try:
            if migration.transactional:
                with conn.transaction():
                    conn.execute(script.encode("utf-8"))
                    _record(conn, migration, statements)
            else:
                for statement in statements:
                    conn.execute(statement.encode("utf-8"))
                with conn.transaction():
                    _record(conn, migration, statements)
        except psycopg.Error as exc:
            detail = " ".join(str(exc).split())
            rerun = (
                "it ran in one transaction, so nothing of it was applied"
                if migration.transactional
                else "it ran outside a transaction, so earlier statements may have been applied"
            )
            raise DatabaseError(
                f"migration {migration.path.name} failed: {detail} ({rerun}); fix the file and "
                "run `orch db migrate` again"
            ) from None
        applied.append(migration)
    return applied

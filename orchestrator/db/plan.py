"""Write the missing indexes, and only those, as a Supabase migration file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlparse

from orchestrator.config import DesiredIndex
from orchestrator.db.indexes import DesiredStatus, IndexReport, Status
from orchestrator.db.migrations import MigrationFile, list_migrations, split_statements

PLAN_NAME = "add_performance_indexes"

TRANSACTIONAL_NOTE = """\
-- Why plain CREATE INDEX and not CONCURRENTLY: Supabase (`supabase db push`, `supabase
-- migration up`) runs each migration file inside a transaction, and CREATE INDEX
-- CONCURRENTLY is an error inside a transaction. A plain build takes a SHARE lock on its
-- table: reads continue, but INSERT/UPDATE/DELETE on that table wait until the build
-- ends (about a second per million rows on a small machine). If that pause is not
-- acceptable on a large, busy table, regenerate with `orch db plan --concurrently` and
-- apply with `orch db migrate`, which runs such files statement by statement outside a
-- transaction."""

CONCURRENT_NOTE = """\
-- orch:no-transaction
-- Why CONCURRENTLY: the builds do not block writes to the tables. The price: CREATE INDEX
-- CONCURRENTLY cannot run inside a transaction, so `supabase db push` cannot apply this
-- file; apply it with `orch db migrate`, which sees the mark above and runs each statement
-- on its own. A concurrent build that fails leaves an INVALID index that IF NOT EXISTS
-- would then skip: `orch db indexes` reports it; drop it and run the migration again."""


@dataclass(frozen=True)
class PlannedIndex:
    """One statement of the plan."""

    desired: DesiredIndex
    name: str  # the index name used (the desired one unless that name is taken)
    statement: str
    comment: str


@dataclass
class PlanResult:
    """What :func:`write_plan` did."""

    path: Path | None  # the file written, or None
    planned: list[PlannedIndex] = field(default_factory=list)
    already_planned: list[tuple[DesiredIndex, Path]] = field(default_factory=list)

    @property
    def nothing_missing(self) -> bool:
        return self.path is None and not self.already_planned


_CREATE_INDEX = re.compile(
    r"""CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?
        (?:[\w"]+(?:\.[\w"]+)?\s+)?ON\s+(?:ONLY\s+)?(?P<table>[\w".]+)\s*
        (?:USING\s+btree\s*)?\((?P<columns>[^()]*)\)(?P<rest>[^;]*)""",
    re.I | re.X,
)


def _unquote(identifier: str) -> str:
    identifier = identifier.strip()
    if identifier.startswith('"') and identifier.endswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def indexes_in_file(migration: MigrationFile) -> set[tuple[str, tuple[str, ...]]]:
    """The plain b-tree ``(table, columns)`` pairs that a migration file creates."""
    found = set()
    for statement in split_statements(migration.text):
        code = sqlparse.format(statement, strip_comments=True)
        match = _CREATE_INDEX.search(code)
        if match is None or re.search(r"\bWHERE\b", match.group("rest"), re.I):
            continue
        table = _unquote(match.group("table").split(".")[-1])
        columns = tuple(_unquote(column) for column in match.group("columns").split(","))
        found.add((table, columns))
    return found


def _next_version(existing: list[MigrationFile], now: datetime) -> str:
    """A UTC timestamp version later than every existing one."""
    version = now.astimezone(UTC).replace(microsecond=0)
    if existing:
        latest = datetime.strptime(existing[-1].version, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        if version <= latest:
            version = latest + timedelta(seconds=1)
    return version.strftime("%Y%m%d%H%M%S")


def _free_name(wanted: str, taken: set[str]) -> str:
    if wanted not in taken:
        return wanted
    for suffix in range(2, 100):
        candidate = f"{wanted[:60]}_v{suffix}"
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free index name near {wanted}")


def render_statement(schema: str, table: str, name: str, columns: list[str], *,
                     concurrently: bool) -> str:
    """``CREATE INDEX [CONCURRENTLY] IF NOT EXISTS name ON schema.table (cols)``, quoted safely."""
    from psycopg import sql

    query = sql.SQL("CREATE INDEX {concurrently}IF NOT EXISTS {name} ON {schema}.{table} ({cols})")
    return query.format(
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        name=sql.Identifier(name),
        schema=sql.Identifier(schema),
        table=sql.Identifier(table),
        cols=sql.SQL(", ").join(sql.Identifier(column) for column in columns),
    ).as_string(None)


def plan_indexes(schema: str, missing: list[DesiredStatus], taken_names: set[str], *,
                 concurrently: bool = False) -> list[PlannedIndex]:
    """One commented ``CREATE INDEX IF NOT EXISTS`` per missing need, with a free name."""
    taken = set(taken_names)
    planned = []
    for status in missing:
        desired = status.desired
        name = _free_name(desired.name, taken)
        taken.add(name)
        comment = f"-- {desired.describe()}: {desired.reason}."
        if status.note:
            comment += f"\n-- Not served today: {status.note}."
        if name != desired.name:
            comment += (
                f"\n-- Named {name} because {desired.name} is taken by an index that does not "
                "serve this need (IF NOT EXISTS would skip it)."
            )
        statement = render_statement(schema, desired.table, name, desired.columns,
                                     concurrently=concurrently)
        planned.append(PlannedIndex(desired, name, statement, comment))
    return planned


def write_plan(
    report: IndexReport,
    migrations_dir: Path,
    *,
    applied: set[str],
    taken_names: set[str],
    target: str,
    concurrently: bool = False,
    now: datetime | None = None,
) -> PlanResult:
    """Write ``<UTC ts>_add_performance_indexes.sql`` with the missing indexes only.

    ``applied`` holds the versions already applied to the database: a missing index that a
    not-yet-applied file in ``migrations_dir`` already creates is reported as already
    planned, not written again, so running plan twice yields no second file for one gap.
    ``taken_names`` holds the relation names in the schema: a desired name already used by
    another relation (e.g. a partial index) gets a ``_v2`` suffix, because
    ``CREATE INDEX IF NOT EXISTS`` would otherwise silently do nothing.
    Writes nothing when nothing is missing. ``target`` (password-free) goes in the header.
    """
    existing = list_migrations(migrations_dir)
    pending = [migration for migration in existing if migration.version not in applied]
    pending_creates = {migration.path: indexes_in_file(migration) for migration in pending}
    result = PlanResult(path=None)
    to_plan = []
    for status in report.missing:
        desired = status.desired
        key = (desired.table, tuple(desired.columns))
        planned_in = next((path for path, keys in pending_creates.items() if key in keys), None)
        if planned_in is None:
            to_plan.append(status)
        else:
            result.already_planned.append((desired, planned_in))
    result.planned = plan_indexes(report.schema, to_plan, taken_names, concurrently=concurrently)
    if not result.planned:
        return result
    version = _next_version(existing, now or datetime.now(UTC))
    path = migrations_dir / f"{version}_{PLAN_NAME}.sql"
    path.write_text(render_plan(report, result.planned, target=target, concurrently=concurrently,
                                version=version), encoding="utf-8")
    result.path = path
    return result


def render_plan(report: IndexReport, planned: list[PlannedIndex], *, target: str,
                concurrently: bool, version: str) -> str:
    """The migration file: a header, the trade-off note, then one commented statement each."""
    counts = {kind: sum(1 for s in report.statuses if s.status is kind) for kind in Status}
    lines = [
        "-- Story 6.3, Task 6: add the performance indexes that are missing.",
        f"-- Generated by `orch db plan` (version {version}) from the indexes of {target}.",
        "-- Existing indexes were matched by definition, not by name. Of the "
        f"{len(report.statuses)} desired indexes:",
        f"-- present {counts[Status.PRESENT]}, covered by a composite index "
        f"{counts[Status.COVERED]}, missing {counts[Status.MISSING]}.",
        "-- Only the missing ones not already in a pending migration are created here.",
        "--",
        CONCURRENT_NOTE if concurrently else TRANSACTIONAL_NOTE,
        "",
    ]
    for item in planned:
        lines += [item.comment, item.statement + ";", ""]
    return "\n".join(lines)

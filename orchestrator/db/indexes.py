"""Index verification: what exists, which desired indexes it satisfies, what is redundant.

Matching is by definition, never by name. An existing index satisfies a desired one when
it is a valid, plain (no predicate, no expression) b-tree index on the same table whose key
columns start with the desired columns in the same order:

* key columns equal to the desired ones: the need is **present** (under whatever name);
* desired columns a strict prefix of the key columns: the need is **covered**, e.g. a
  composite ``(user_id, status)`` covers ``(user_id)``;
* otherwise the need is **missing**. A partial index (``WHERE ...``) or an expression index
  does not count, since the planner can use it only for queries that repeat its predicate
  or expression.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from orchestrator.config import DatabaseSettings, DesiredIndex
from orchestrator.core import ConfigError
from orchestrator.db.connection import check_tables

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class ExistingIndex:
    """One index as PostgreSQL's catalogue (pg_index, pg_indexes) describes it."""

    table: str
    name: str
    method: str  # access method: btree, hash, gin, ...
    columns: tuple[str, ...]  # key columns; an expression column appears as its text
    expression_positions: tuple[int, ...]  # positions in ``columns`` that are expressions
    descending: tuple[bool, ...]
    include: tuple[str, ...]  # INCLUDE (...) columns, not part of the key
    unique: bool
    primary: bool
    valid: bool
    predicate: str | None  # the WHERE of a partial index
    definition: str  # pg_get_indexdef(), the same text as pg_indexes.indexdef

    @property
    def is_plain(self) -> bool:
        """A valid b-tree index on plain columns with no predicate."""
        return (
            self.valid
            and self.method == "btree"
            and self.predicate is None
            and not self.expression_positions
        )

    @property
    def shape(self) -> tuple[object, ...]:
        """Everything that makes two indexes interchangeable (all but the name)."""
        return (
            self.table, self.method, self.columns, self.expression_positions, self.descending,
            self.include, self.predicate,
        )

    def kind(self) -> str:
        """A short label: primary key, unique, partial, expression, invalid, plain."""
        labels = []
        if self.primary:
            labels.append("primary key")
        elif self.unique:
            labels.append("unique")
        if self.method != "btree":
            labels.append(self.method)
        if self.predicate is not None:
            labels.append("partial")
        if self.expression_positions:
            labels.append("expression")
        if not self.valid:
            labels.append("INVALID")
        return ", ".join(labels) or "plain"


class Status(StrEnum):
    """What the database holds for one desired index."""

    PRESENT = "present"
    COVERED = "covered"
    MISSING = "missing"


@dataclass(frozen=True)
class DesiredStatus:
    """The verdict for one desired index."""

    desired: DesiredIndex
    status: Status
    by: str | None = None  # the existing index that provides it (present/covered)
    note: str | None = None  # e.g. "idx_x has these columns but is partial"


@dataclass(frozen=True)
class Redundancy:
    """An existing index that another one makes unnecessary."""

    index: str
    table: str
    because_of: str
    reason: str  # "duplicate" or "prefix"


@dataclass
class IndexReport:
    """The outcome of :func:`verify_indexes`."""

    schema: str
    existing: list[ExistingIndex]
    statuses: list[DesiredStatus]
    redundant: list[Redundancy] = field(default_factory=list)

    @property
    def missing(self) -> list[DesiredStatus]:
        return [status for status in self.statuses if status.status is Status.MISSING]


_INDEX_QUERY = """
SELECT c.relname AS table_name,
       i.relname AS index_name,
       am.amname AS method,
       x.indisunique, x.indisprimary, x.indisvalid,
       x.indnkeyatts,
       pg_get_expr(x.indpred, x.indrelid) AS predicate,
       pg_get_indexdef(x.indexrelid) AS definition,
       ARRAY(
           SELECT CASE WHEN k.attnum = 0
                       THEN pg_get_indexdef(x.indexrelid, k.ord::int, true)
                       ELSE a.attname::text END
           FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
           ORDER BY k.ord
       ) AS columns,
       ARRAY(
           SELECT k.attnum = 0
           FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           ORDER BY k.ord
       ) AS is_expression,
       ARRAY(
           SELECT (o.opt & 1) = 1
           FROM unnest(x.indoption::int2[]) WITH ORDINALITY AS o(opt, ord)
           ORDER BY o.ord
       ) AS descending
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname = %s AND c.relname = ANY(%s)
ORDER BY c.relname, i.relname
"""


def list_indexes(
    conn: psycopg.Connection, schema: str, tables: Iterable[str]
) -> list[ExistingIndex]:
    """Every index on ``tables`` in ``schema``, read from pg_index (columns, order, predicate)."""
    rows = conn.execute(_INDEX_QUERY, (schema, list(tables))).fetchall()
    result = []
    for (table, name, method, unique, primary, valid, nkey, predicate, definition,
         columns, is_expression, descending) in rows:
        key_columns = tuple(columns[:nkey])
        result.append(
            ExistingIndex(
                table=table,
                name=name,
                method=method,
                columns=key_columns,
                expression_positions=tuple(
                    position for position, flag in enumerate(is_expression[:nkey]) if flag
                ),
                descending=tuple(bool(flag) for flag in descending[:nkey]),
                include=tuple(columns[nkey:]),
                unique=bool(unique),
                primary=bool(primary),
                valid=bool(valid),
                predicate=predicate,
                definition=definition,
            )
        )
    return result


def match_desired(desired: DesiredIndex, existing: Iterable[ExistingIndex]) -> DesiredStatus:
    """Decide whether ``desired`` is present, covered or missing among ``existing``."""
    wanted = tuple(desired.columns)
    on_table = [index for index in existing if index.table == desired.table]
    exact = [index for index in on_table if index.is_plain and index.columns == wanted]
    if exact:
        best = _prefer(exact, desired.name)
        return DesiredStatus(desired, Status.PRESENT, by=best.name)
    covering = [
        index for index in on_table
        if index.is_plain and len(index.columns) > len(wanted)
        and index.columns[: len(wanted)] == wanted
    ]
    if covering:
        best = min(covering, key=lambda index: (len(index.columns), index.name))
        return DesiredStatus(desired, Status.COVERED, by=best.name)
    return DesiredStatus(desired, Status.MISSING, note=_why_not(wanted, on_table))


def _prefer(candidates: list[ExistingIndex], name: str) -> ExistingIndex:
    """The desired name if it is among the candidates, else the first by name."""
    for index in candidates:
        if index.name == name:
            return index
    return min(candidates, key=lambda index: index.name)


def _why_not(wanted: tuple[str, ...], on_table: list[ExistingIndex]) -> str | None:
    """Explain near misses: an index on the right columns that does not count, and why."""
    notes = []
    for index in on_table:
        starts_right = index.columns[: len(wanted)] == wanted
        mentions = any(column in " ".join(index.columns) for column in wanted)
        if index.is_plain or not (starts_right or mentions):
            continue
        if not index.valid:
            why = "is INVALID (a failed CREATE INDEX CONCURRENTLY); drop and rebuild it"
        elif index.predicate is not None:
            why = f"is partial (WHERE {index.predicate})"
        elif index.expression_positions:
            why = "indexes an expression"
        else:
            why = f"uses {index.method}, not btree"
        notes.append(f"{index.name} {why}")
    return "; ".join(notes) or None


def find_redundant(existing: Iterable[ExistingIndex]) -> list[Redundancy]:
    """Duplicates, and plain single-purpose indexes that are a prefix of a composite one.

    Unique and primary-key indexes are never reported: they enforce a constraint.
    """
    indexes = sorted(existing, key=lambda index: (index.table, index.name))
    found: list[Redundancy] = []
    reported: set[str] = set()
    for position, index in enumerate(indexes):
        for other in indexes[position + 1:]:
            if other.table != index.table or not (index.valid and other.valid):
                continue
            if index.shape == other.shape:
                keep, drop = (index, other) if _keeps(index, other) else (other, index)
                if drop.name not in reported and not drop.primary:
                    found.append(Redundancy(drop.name, drop.table, keep.name, "duplicate"))
                    reported.add(drop.name)
    for index in indexes:
        if index.name in reported or index.unique or not index.is_plain or index.include:
            continue
        for other in indexes:
            if (
                other is not index and other.table == index.table and other.is_plain
                and len(other.columns) > len(index.columns)
                and other.columns[: len(index.columns)] == index.columns
                and other.descending[: len(index.descending)] == index.descending
            ):
                found.append(Redundancy(index.name, index.table, other.name, "prefix"))
                reported.add(index.name)
                break
    return found


def _keeps(first: ExistingIndex, second: ExistingIndex) -> bool:
    """Of two identical indexes, keep the constraint-backed one, else the first by name."""
    return (first.primary, first.unique) >= (second.primary, second.unique)


def validate_desired_columns(settings: DatabaseSettings, columns: dict[str, list[str]]) -> None:
    """Raise :class:`ConfigError` if a desired index names a column its table lacks."""
    for position, desired in enumerate(settings.desired_indexes):
        known = columns.get(desired.table, [])
        unknown = [column for column in desired.columns if column not in known]
        if unknown:
            raise ConfigError(
                f"database.desired_indexes[{position}] ({desired.name}): column(s) "
                f"{', '.join(unknown)} do not exist in {settings.schema_name}.{desired.table} "
                f"(its columns: {', '.join(known)}); fix the column names in orch.yaml"
            )


def verify_indexes(conn: psycopg.Connection, settings: DatabaseSettings) -> IndexReport:
    """Compare the indexes in the database with ``settings.desired_indexes``.

    Raises :class:`DatabaseError` for a missing table and :class:`ConfigError` for a
    desired index on a column that does not exist.
    """
    columns = check_tables(conn, settings.schema_name, settings.tables)
    validate_desired_columns(settings, columns)
    existing = list_indexes(conn, settings.schema_name, settings.tables)
    statuses = [match_desired(desired, existing) for desired in settings.desired_indexes]
    return IndexReport(
        schema=settings.schema_name,
        existing=existing,
        statuses=statuses,
        redundant=find_redundant(existing),
    )


def relation_names(conn: psycopg.Connection, schema: str) -> set[str]:
    """Every relation name in ``schema`` (an index name must not clash with any of them)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s",
        (schema,),
    ).fetchall()
    return {row[0] for row in rows}

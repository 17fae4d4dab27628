"""EXPLAIN (ANALYZE, BUFFERS) of the product's representative queries, and before/after runs.

``compare_with_indexes`` measures the gain of the planned indexes without touching the
database: it copies it (``CREATE DATABASE ... TEMPLATE``), measures the copy, builds the
indexes there, measures again and drops the copy. Where a copy is impossible (other
sessions on the database, or no CREATEDB right) it measures inside a transaction on the
database itself that builds the indexes and is then rolled back; that mode blocks writes
to the tables while it runs, and the report says which mode was used.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, LiteralString

from orchestrator.core import DatabaseError
from orchestrator.db.connection import connect, with_database

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class RepresentativeQuery:
    """A query the product runs, with ``{schema}`` in place of its schema name."""

    name: str
    description: str
    text: LiteralString  # uses %(user_id)s, %(status)s, %(prospect_id)s


REPRESENTATIVE_QUERIES: list[RepresentativeQuery] = [
    RepresentativeQuery(
        "prospects_by_status",
        "a user's prospects with one status, newest first (dashboard list)",
        "SELECT id, full_name, company, status, created_at FROM {schema}.prospects "
        "WHERE user_id = %(user_id)s AND status = %(status)s ORDER BY created_at DESC LIMIT 50",
    ),
    RepresentativeQuery(
        "new_prospects",
        "prospects added in the last 24 hours, newest first",
        "SELECT id, user_id, full_name, created_at FROM {schema}.prospects "
        "WHERE created_at >= now() - interval '1 day' ORDER BY created_at DESC LIMIT 100",
    ),
    RepresentativeQuery(
        "recent_campaigns",
        "a user's campaigns of the last 90 days, newest first",
        "SELECT id, name, status, created_at FROM {schema}.campaigns "
        "WHERE user_id = %(user_id)s AND created_at >= now() - interval '90 days' "
        "ORDER BY created_at DESC LIMIT 20",
    ),
    RepresentativeQuery(
        "upcoming_meetings",
        "meetings in the next hour, for the reminder job",
        "SELECT id, user_id, prospect_id, scheduled_at, meeting_url FROM {schema}.meetings "
        "WHERE scheduled_at >= now() AND scheduled_at < now() + interval '1 hour' "
        "ORDER BY scheduled_at",
    ),
    RepresentativeQuery(
        "conversation_log",
        "a prospect's AI conversation log, in order",
        "SELECT id, role, model, content, created_at FROM {schema}.ai_conversation_log "
        "WHERE prospect_id = %(prospect_id)s ORDER BY created_at",
    ),
]


@dataclass(frozen=True)
class QueryPlan:
    """One representative query's measured plan."""

    name: str
    description: str
    execution_ms: float  # median of the measured runs
    planning_ms: float
    scans: tuple[str, ...]  # e.g. ("Seq Scan on prospects", "Index Scan using idx_x on meetings")
    rows: int
    shared_hit: int
    shared_read: int

    @property
    def seq_scan(self) -> bool:
        return any(scan.startswith("Seq Scan") for scan in self.scans)

    @property
    def shape(self) -> str:
        return " + ".join(self.scans) or "no table scan"


@dataclass(frozen=True)
class Comparison:
    """One query before and after the planned indexes."""

    before: QueryPlan
    after: QueryPlan

    @property
    def speedup(self) -> float:
        return self.before.execution_ms / max(self.after.execution_ms, 0.001)

    @property
    def seq_to_index(self) -> bool:
        return self.before.seq_scan and not self.after.seq_scan


@dataclass
class ComparisonReport:
    """The outcome of :func:`compare_with_indexes`."""

    mode: str  # "scratch copy" or "rolled-back transaction"
    statements: list[str]
    comparisons: list[Comparison] = field(default_factory=list)
    build_ms: float = 0.0


def _scans(node: dict[str, Any], found: list[str]) -> None:
    kind = node.get("Node Type", "")
    relation = node.get("Relation Name")
    index = node.get("Index Name")
    if kind.endswith("Scan") and (relation or index):
        text = kind
        if index:
            text += f" using {index}"
        if relation:
            text += f" on {relation}"
        if text not in found:
            found.append(text)
    for child in node.get("Plans", []):
        _scans(child, found)


def pick_parameters(conn: psycopg.Connection, schema: str) -> dict[str, Any]:
    """Realistic parameters from the data: the user with most prospects, one of their
    prospects that has a conversation log, and a common status.

    Raises :class:`DatabaseError` when the tables are empty.
    """
    from psycopg import sql

    def one(query: sql.Composed, params: tuple[Any, ...] = ()) -> Any:
        row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    table = sql.Identifier
    user_id = one(
        sql.SQL("SELECT user_id FROM {}.{} GROUP BY user_id ORDER BY count(*) DESC LIMIT 1")
        .format(table(schema), table("prospects"))
    )
    if user_id is None:
        raise DatabaseError(
            "the prospects table is empty, so EXPLAIN would measure nothing; fill it first with "
            "`orch db seed --scale 100000`"
        )
    prospect_id = one(
        sql.SQL("SELECT prospect_id FROM {}.{} WHERE user_id = %s AND prospect_id IS NOT NULL "
                "LIMIT 1").format(table(schema), table("ai_conversation_log")),
        (user_id,),
    )
    return {"user_id": user_id, "status": "contacted", "prospect_id": prospect_id}


def explain_queries(
    conn: psycopg.Connection,
    schema: str,
    params: dict[str, Any],
    *,
    queries: list[RepresentativeQuery] | None = None,
    repeat: int = 3,
) -> list[QueryPlan]:
    """Run each query with EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON): one warm-up, then
    ``repeat`` measured runs; report the median execution time and the last plan."""
    import psycopg
    from psycopg import sql

    results = []
    with psycopg.ClientCursor(conn) as cursor:
        for query in queries or REPRESENTATIVE_QUERIES:
            text = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ") + sql.SQL(query.text).format(
                schema=sql.Identifier(schema)
            )
            times, plan = [], {}
            for run in range(repeat + 1):
                cursor.execute(text, params)
                row = cursor.fetchone()
                assert row is not None
                plan = row[0][0]
                if run:
                    times.append(float(plan["Execution Time"]))
            top = plan["Plan"]
            found: list[str] = []
            _scans(top, found)
            results.append(
                QueryPlan(
                    name=query.name,
                    description=query.description,
                    execution_ms=statistics.median(times),
                    planning_ms=float(plan.get("Planning Time", 0.0)),
                    scans=tuple(found),
                    rows=int(top.get("Actual Rows", 0)),
                    shared_hit=int(top.get("Shared Hit Blocks", 0)),
                    shared_read=int(top.get("Shared Read Blocks", 0)),
                )
            )
    return results


def _analyze(conn: psycopg.Connection, schema: str, tables: list[str]) -> None:
    from psycopg import sql

    for name in tables:
        conn.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))


def compare_with_indexes(
    url: str,
    schema: str,
    tables: list[str],
    statements: list[str],
    *,
    repeat: int = 3,
) -> ComparisonReport:
    """Measure the representative queries before and after ``statements`` (CREATE INDEX ...)
    on a scratch copy of the database at ``url``; the database itself is left unchanged."""
    import time

    import psycopg
    from psycopg import sql

    with connect(url, autocommit=True) as conn:
        params = pick_parameters(conn, schema)
        source = conn.info.dbname
        version = conn.info.server_version
    scratch = f"orch_scratch_{os.getpid()}"
    admin_db = "postgres" if source != "postgres" else "template1"
    report = ComparisonReport(mode="scratch copy", statements=statements)
    try:
        with connect(with_database(url, admin_db), autocommit=True) as admin:
            busy = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()", (source,)
            ).fetchone()
            if busy and busy[0]:  # TEMPLATE needs a database nobody is connected to
                raise psycopg.errors.ObjectInUse(f"{busy[0]} other session(s) on {source}")
            strategy = sql.SQL(" STRATEGY FILE_COPY" if version >= 150000 else "")
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(scratch), sql.Identifier(source)
                ) + strategy
            )
    except (psycopg.errors.ObjectInUse, psycopg.errors.InsufficientPrivilege):
        report.mode = "rolled-back transaction"
    except DatabaseError:
        report.mode = "rolled-back transaction"

    def measure(conn: psycopg.Connection) -> None:
        before = explain_queries(conn, schema, params, repeat=repeat)
        started = time.perf_counter()
        for statement in statements:
            conn.execute(statement.encode("utf-8"))
        _analyze(conn, schema, tables)
        report.build_ms = (time.perf_counter() - started) * 1000
        after = explain_queries(conn, schema, params, repeat=repeat)
        report.comparisons = [Comparison(b, a) for b, a in zip(before, after, strict=True)]

    try:
        if report.mode == "scratch copy":
            with connect(with_database(url, scratch), autocommit=True) as conn:
                measure(conn)
        else:
            with connect(url) as conn:
                try:
                    measure(conn)
                finally:
                    conn.rollback()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"measuring the planned indexes failed: {' '.join(str(exc).split())}"
        ) from None
    finally:
        if report.mode == "scratch copy":
            with connect(with_database(url, admin_db), autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
    return report

"""``database`` in results.json: what the database did during the load, from the run
folder's ``database.json`` (written by ``orchestrator.db.sampling``).

The report answers three questions from it:

- **queries that got slower under load**: a query whose mean time during the run was at
  least :data:`SLOWER_FACTOR` times its mean before the run (and at least
  :data:`MIN_SLOWER_MS`), or, for a query that had not run before, at least
  :data:`SLOW_MEAN_MS` (pg_stat_statements only);
- **sequential scans on large tables**: a table of at least :data:`LARGE_TABLE_ROWS` live
  rows scanned sequentially during the run, with the index it lacks: the columns the run's
  queries filter it by (from pg_stat_statements' query text) that lead no index, else the
  table alone;
- **connections near the pool limit**: the peak of client connections against
  ``max_connections`` less the superuser reserve, near from :data:`NEAR_LIMIT_SHARE`.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

Number = int | float

SLOWER_FACTOR = 1.5
MIN_SLOWER_MS = 1.0
SLOW_MEAN_MS = 5.0
LARGE_TABLE_ROWS = 10_000
NEAR_LIMIT_SHARE = 0.8
PLAN_DOC = "docs/database.md#orch-db-plan-the-migration-file"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DatabaseConnections(_Part):
    """Client connections against the server's limit."""

    max_connections: int | None = None
    reserved_connections: int | None = None
    limit: int | None = None  # max_connections less the superuser reserve
    peak: int = 0
    peak_active: int = 0
    peak_idle_in_transaction: int = 0
    peak_share: Number | None = None
    near_limit: bool | None = None


class DatabaseQuery(_Part):
    """One query (pg_stat_statements) during the run."""

    query: str
    calls: int
    total_ms: Number
    mean_ms: Number
    calls_before: int = 0
    mean_before_ms: Number | None = None
    slower: bool = False
    why: str | None = None


class TableScans(_Part):
    """Scans of one table during the run."""

    table: str
    seq_scans: int = 0
    seq_rows_read: int = 0
    index_scans: int = 0
    live_rows: int = 0
    large: bool = False
    filter_columns: list[str] = []
    missing_index: str | None = None


class DatabasePoint(_Part):
    """One interval between two samples (``t``: Unix seconds at its end)."""

    t: Number
    connections: int = 0
    active: int = 0
    waiting_locks: int = 0
    cache_hit_ratio: Number | None = None
    seq_scans: int = 0
    index_scans: int = 0


class DatabaseFigures(_Part):
    """``database``: the database sampled during the load."""

    database: str | None = None
    server_version: str | None = None
    interval_s: Number | None = None
    samples: int = 0
    sample_cost_ms: Number | None = None
    pg_stat_statements: bool | None = None
    cache_hit_ratio: Number | None = None
    waiting_locks_max: int = 0
    connections: DatabaseConnections = DatabaseConnections()
    slower_queries: list[DatabaseQuery] = []
    top_queries: list[DatabaseQuery] = []
    large_table_rows: int = LARGE_TABLE_ROWS
    seq_scans_on_large_tables: list[TableScans] = []
    tables: list[TableScans] = []
    series: list[DatabasePoint] = []
    notes: list[str] = []


def read_database(path: Path) -> DatabaseFigures | None:
    """The figures of a run folder's ``database.json``; None without one. A file that cannot
    be read gives figures holding only a note that says so."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return database_figures(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return DatabaseFigures(notes=[f"{path.name} could not be read ({exc})"])


def database_figures(data: dict[str, Any]) -> DatabaseFigures:
    """The figures from what the sampler wrote."""
    samples: list[dict[str, Any]] = data.get("samples") or []
    statements = [_query(row) for row in data.get("statements") or []]
    tables = _tables(samples, statements, data.get("indexed_columns") or {})
    costs = [float(s["cost_ms"]) for s in samples if s.get("cost_ms") is not None]
    return DatabaseFigures(
        database=data.get("database"),
        server_version=data.get("server_version"),
        interval_s=data.get("interval_s"),
        samples=len(samples),
        sample_cost_ms=round(sum(costs) / len(costs), 2) if costs else None,
        pg_stat_statements=data.get("pg_stat_statements"),
        cache_hit_ratio=_hit_ratio(samples[0], samples[-1]) if len(samples) > 1 else None,
        waiting_locks_max=max((int(s.get("waiting_locks", 0)) for s in samples), default=0),
        connections=_connections(data, samples),
        slower_queries=[q for q in statements if q.slower],
        top_queries=statements[:10],
        seq_scans_on_large_tables=[t for t in tables if t.large and t.seq_scans > 0],
        tables=tables[:10],
        series=_series(samples),
        notes=list(data.get("notes") or []),
    )


def _query(row: dict[str, Any]) -> DatabaseQuery:
    query = DatabaseQuery.model_validate(row)
    mean, before = float(query.mean_ms), query.mean_before_ms
    if before is not None and before > 0:
        if mean >= SLOWER_FACTOR * float(before) and mean >= MIN_SLOWER_MS:
            query.slower = True
            query.why = f"{mean / float(before):.1f}× its mean before the run"
    elif mean >= SLOW_MEAN_MS:
        query.slower = True
        query.why = f"mean ≥ {SLOW_MEAN_MS:g} ms under load (not run before)"
    return query


def _hit_ratio(first: dict[str, Any], last: dict[str, Any]) -> float | None:
    hit = int(last.get("blks_hit", 0)) - int(first.get("blks_hit", 0))
    read = int(last.get("blks_read", 0)) - int(first.get("blks_read", 0))
    return round(hit / (hit + read), 4) if hit + read > 0 else None


def _connections(data: dict[str, Any], samples: list[dict[str, Any]]) -> DatabaseConnections:
    peak = max((sum(s["connections"].values()) for s in samples), default=0)
    maximum, reserved = data.get("max_connections"), data.get("reserved_connections") or 0
    limit = maximum - reserved if maximum else None
    share = round(peak / limit, 4) if limit else None
    return DatabaseConnections(
        max_connections=maximum,
        reserved_connections=data.get("reserved_connections"),
        limit=limit,
        peak=peak,
        peak_active=max((s["connections"].get("active", 0) for s in samples), default=0),
        peak_idle_in_transaction=max(
            (s["connections"].get("idle in transaction", 0) for s in samples), default=0
        ),
        peak_share=share,
        near_limit=share >= NEAR_LIMIT_SHARE if share is not None else None,
    )


def _series(samples: list[dict[str, Any]]) -> list[DatabasePoint]:
    points = []
    for before, after in itertools.pairwise(samples):
        seq = idx = 0
        for table, values in after["tables"].items():
            old = before["tables"].get(table, [0, 0, 0, 0])
            seq += values[0] - old[0]
            idx += values[2] - old[2]
        points.append(DatabasePoint(
            t=after["t"],
            connections=sum(after["connections"].values()),
            active=after["connections"].get("active", 0),
            waiting_locks=after.get("waiting_locks", 0),
            cache_hit_ratio=_hit_ratio(before, after),
            seq_scans=max(seq, 0),
            index_scans=max(idx, 0),
        ))  # fmt: skip
    return points


def _tables(
    samples: list[dict[str, Any]], statements: list[DatabaseQuery], indexed: dict[str, list[str]]
) -> list[TableScans]:
    """Scans per table between the first and the last sample, the most rows read
    sequentially first."""
    if len(samples) < 2:
        return []
    first, last = samples[0]["tables"], samples[-1]["tables"]
    rows = []
    for table, values in last.items():
        old = first.get(table, [0, 0, 0, 0])
        scans = TableScans(
            table=table,
            seq_scans=values[0] - old[0],
            seq_rows_read=values[1] - old[1],
            index_scans=values[2] - old[2],
            live_rows=values[3],
            large=values[3] >= LARGE_TABLE_ROWS,
        )
        if scans.seq_scans <= 0 and scans.index_scans <= 0:
            continue
        if scans.large and scans.seq_scans > 0:
            lead = set(indexed.get(table, []))
            scans.filter_columns = filter_columns(table, [q.query for q in statements])
            unindexed = [c for c in scans.filter_columns if c not in lead]
            short = table.split(".", 1)[-1]
            scans.missing_index = f"{short}({', '.join(unindexed)})" if unindexed else short
        rows.append(scans)
    rows.sort(key=lambda t: (t.seq_rows_read, t.seq_scans), reverse=True)
    return rows


_WHERE_END = re.compile(r"\b(ORDER\s+BY|GROUP\s+BY|LIMIT|OFFSET|HAVING|RETURNING|FOR\s+UPDATE)\b",
                        re.IGNORECASE)  # fmt: skip
_COMPARED = re.compile(
    r'(?:"?(?P<alias>\w+)"?\.)?"?(?P<column>[a-z_][\w$]*)"?\s*'
    r"(?:=|<>|!=|<=|>=|<|>|\bIN\b|\bLIKE\b|\bILIKE\b|\bBETWEEN\b|\bIS\b)",
    re.IGNORECASE,
)
_KEYWORDS = {"and", "or", "not", "where", "select", "from", "null", "true", "false", "exists"}


def filter_columns(table: str, queries: list[str]) -> list[str]:
    """The columns that the queries reading ``table`` (``schema.name``) compare in their
    WHERE clause, in order of first use; empty when none can be told."""
    short = table.split(".", 1)[-1]
    reads = re.compile(
        rf'\b(FROM|JOIN|UPDATE)\s+(?:"?\w+"?\.)?"?{re.escape(short)}"?(?=[\s,;)]|$)', re.IGNORECASE
    )
    found: dict[str, None] = {}
    for query in queries:
        if not reads.search(query):
            continue
        for where in re.split(r"\bWHERE\b", query, flags=re.IGNORECASE)[1:]:
            clause = _WHERE_END.split(where, maxsplit=1)[0]
            for match in _COMPARED.finditer(clause):
                column = match["column"].lower()
                if column not in _KEYWORDS and not column.startswith("$"):
                    found.setdefault(column, None)
    return list(found)

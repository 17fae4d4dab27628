"""The database watched during the load: a read-only sampler on one connection.

While k6 runs, :class:`DatabaseSampler` reads PostgreSQL's statistics views every
``database.sample_interval_s`` seconds (default 5) in a background thread: connections by
state (``pg_stat_activity``), lock requests waiting (``pg_locks``), the buffer cache's hits
and reads (``pg_stat_database``), and sequential against index scans per table
(``pg_stat_user_tables``). ``pg_stat_statements``, where the database has it, is read at
the start and at the end: its deltas are the queries' calls and times during the run.
What it saw is written to a JSON file in the run folder (``database.json``), which the
report reads.

The connection is read-only (``default_transaction_read_only``), has a short
``statement_timeout`` and ``lock_timeout``, and goes through the production guard and the
allow-list (:func:`orchestrator.config.guard_database_target`). Whatever it cannot read
(no extension, no privilege, an unreachable server) is said in the file's ``notes``; it
never stops the run.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config import expand_env_refs, guard_database_target
from orchestrator.core import OrchError
from orchestrator.db.connection import connect, describe_target, redact_url

if TYPE_CHECKING:
    import psycopg

    from orchestrator.config import OrchConfig

STATEMENT_TIMEOUT_MS = 2000
LOCK_TIMEOUT_MS = 500
TOP_STATEMENTS = 20
APPLICATION_NAME = "orch-db-sampler"
# statements of the sampler itself, and utility statements, are not the product's queries
# (a PostgreSQL regular expression: \y is a word boundary)
_OWN_QUERY = (
    r"(pg_stat_|pg_locks|pg_extension|current_setting|pg_index|"
    r"^\s*(SET|SHOW|BEGIN|COMMIT|ROLLBACK)\y)"
)

_CONNECTIONS = """
SELECT coalesce(state, 'unknown') AS state, count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1
"""
_WAITING_LOCKS = "SELECT count(*) FROM pg_locks WHERE NOT granted"
_CACHE = """
SELECT coalesce(blks_hit, 0), coalesce(blks_read, 0)
FROM pg_stat_database WHERE datname = current_database()
"""
# live rows: the planner's count (reltuples, set by VACUUM and ANALYZE) where there is one;
# n_live_tup can count a bulk load twice when VACUUM reports before the load's statistics
_TABLES = """
SELECT t.schemaname || '.' || t.relname, coalesce(t.seq_scan, 0), coalesce(t.seq_tup_read, 0),
       coalesce(t.idx_scan, 0),
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE coalesce(t.n_live_tup, 0) END
FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
"""
_STATEMENTS = f"""
SELECT s.queryid::text || ':' || s.userid::text, s.query, s.calls, s.total_exec_time, s.rows
FROM pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query !~* '{_OWN_QUERY}'
"""
_LEADING_INDEX_COLUMNS = """
SELECT n.nspname || '.' || c.relname, array_agg(DISTINCT a.attname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE i.indisvalid AND i.indpred IS NULL AND n.nspname || '.' || c.relname = ANY(%s)
GROUP BY 1
"""


class DatabaseSampler:
    """Samples one database every ``interval_s`` seconds until :meth:`stop`; then writes
    what it saw to ``out`` (JSON)."""

    def __init__(self, url: str, interval_s: float, out: Path) -> None:
        self.url, self.interval_s, self.out = url, interval_s, out
        self.notes: list[str] = []
        self.samples: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {"database": describe_target(url)}
        self.statements_before: dict[str, tuple[str, int, float, int]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="db-sampler")
        self._conn: psycopg.Connection | None = None
        self._statements = True  # pg_stat_statements readable

    def start(self) -> None:
        """Start sampling in the background (the connection is opened there)."""
        self._thread.start()

    def stop(self) -> Path:
        """Take a last sample, read the statements' deltas, write the file; return it."""
        self._stop.set()
        self._thread.join(timeout=2 * (STATEMENT_TIMEOUT_MS / 1000) + 10)
        conn = self._conn
        if conn is not None and not self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._sample(conn)
            self._finish(conn)
            with contextlib.suppress(Exception):
                conn.close()
        self.write()
        return self.out

    def write(self) -> None:
        """Write what was seen so far to ``out``."""
        document = {
            **self.info,
            "interval_s": self.interval_s,
            "samples": self.samples,
            "notes": self.notes,
        }
        self.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    # -- in the sampler's thread ---------------------------------------------------------

    def _loop(self) -> None:
        try:
            conn = connect(self.url, autocommit=True)
        except OrchError as exc:
            self.notes.append(f"the database was not sampled: {exc.message}")
            return
        try:
            self._setup(conn)
        except Exception as exc:
            self.notes.append(f"the database was not sampled: {_message(exc)}")
            conn.close()
            return
        self._conn = conn
        while True:
            try:
                self._sample(conn)
            except Exception as exc:
                if conn.closed or conn.broken:
                    lost = f"sampling stopped: the connection was lost ({_message(exc)})"
                    self.notes.append(lost)
                    self._conn = None
                    return
                self.notes.append(f"a sample failed: {_message(exc)}")
            if self._stop.wait(self.interval_s):
                return

    def _setup(self, conn: psycopg.Connection) -> None:
        """Read-only, short timeouts, named; the server's limits and the statements before."""
        conn.execute("SET default_transaction_read_only = on")
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        conn.execute(f"SET application_name = '{APPLICATION_NAME}'")
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
        ).fetchone()
        assert row is not None
        self.info.update(server_version=row[0], max_connections=row[1], reserved_connections=row[2])
        self.statements_before = self._read_statements(conn)
        self.info["pg_stat_statements"] = self.statements_before is not None

    def _sample(self, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        connections = {state: int(n) for state, n in conn.execute(_CONNECTIONS).fetchall()}
        waiting = conn.execute(_WAITING_LOCKS).fetchone()
        cache = conn.execute(_CACHE).fetchone() or (0, 0)
        tables = {row[0]: [int(v) for v in row[1:]] for row in conn.execute(_TABLES).fetchall()}
        self.samples.append({
            "t": round(time.time(), 3),
            "connections": connections,
            "waiting_locks": int(waiting[0]) if waiting else 0,
            "blks_hit": int(cache[0]),
            "blks_read": int(cache[1]),
            "tables": tables,  # seq_scan, seq_tup_read, idx_scan, n_live_tup (cumulative)
            "cost_ms": round(1000 * (time.monotonic() - started), 2),
        })
        if "unknown" in connections and "hidden_states" not in self.info:
            self.info["hidden_states"] = True
            self.notes.append(
                "the states of other roles' connections are hidden from this database user "
                "(counted as 'unknown'); grant it pg_read_all_stats to see them"
            )

    def _read_statements(
        self, conn: psycopg.Connection
    ) -> dict[str, tuple[str, int, float, int]] | None:
        """pg_stat_statements by query id (text, calls, total ms, rows); None, with a note,
        when the database does not have it or the user may not read it."""
        import psycopg

        if not self._statements:
            return None
        installed = conn.execute(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()
        reason = None
        if installed is None:
            reason = (
                "pg_stat_statements is not installed in this database, so the report cannot "
                "name slow queries; add it to shared_preload_libraries and run CREATE "
                "EXTENSION pg_stat_statements (Supabase has it)"
            )
        else:
            try:
                rows = conn.execute(_STATEMENTS).fetchall()
            except psycopg.Error as exc:
                reason = f"pg_stat_statements could not be read ({_message(exc)})"
            else:
                if any(text == "<insufficient privilege>" for _key, text, *_ in rows):
                    self.notes.append(
                        "some queries of other roles are hidden from this database user "
                        "(<insufficient privilege>); grant it pg_read_all_stats to see them"
                    )
                return {
                    key: (text, int(calls), float(total), int(n))
                    for key, text, calls, total, n in rows
                }
        self._statements = False
        self.info["pg_stat_statements_missing"] = reason
        self.notes.append(reason)
        return None

    def _finish(self, conn: psycopg.Connection) -> None:
        """The statements' deltas over the run and the indexed leading columns of the tables
        scanned sequentially."""
        try:
            after = self._read_statements(conn) if self.statements_before is not None else None
            if after is not None and self.statements_before is not None:
                self.info["statements"] = statement_deltas(self.statements_before, after)
            tables = scanned_sequentially(self.samples)
            if tables:
                rows = conn.execute(_LEADING_INDEX_COLUMNS, (tables,)).fetchall()
                indexed = {name: sorted(columns) for name, columns in rows}
                self.info["indexed_columns"] = {t: indexed.get(t, []) for t in tables}
        except Exception as exc:
            self.notes.append(f"the end of the run could not be read: {_message(exc)}")


def statement_deltas(
    before: dict[str, tuple[str, int, float, int]],
    after: dict[str, tuple[str, int, float, int]],
    top: int = TOP_STATEMENTS,
) -> list[dict[str, Any]]:
    """The ``top`` queries by total time during the run: calls, total and mean time in the
    run, and their mean before it (None when they had not run before)."""
    rows: list[dict[str, Any]] = []
    for key, (text, calls, total, n) in after.items():
        b_calls, b_total, b_rows = before.get(key, (text, 0, 0.0, 0))[1:]
        d_calls, d_total = calls - b_calls, total - b_total
        if d_calls <= 0:
            continue
        rows.append({
            "query": text,
            "calls": d_calls,
            "total_ms": round(d_total, 3),
            "mean_ms": round(d_total / d_calls, 4),
            "rows": n - b_rows,
            "calls_before": b_calls,
            "mean_before_ms": round(b_total / b_calls, 4) if b_calls else None,
        })
    rows.sort(key=lambda r: r["total_ms"], reverse=True)
    return rows[:top]


def scanned_sequentially(samples: list[dict[str, Any]]) -> list[str]:
    """The tables with sequential scans between the first and the last sample."""
    if len(samples) < 2:
        return []
    first, last = samples[0]["tables"], samples[-1]["tables"]
    return sorted(t for t, v in last.items() if v[0] > first.get(t, [0])[0])


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return redact_url(" ".join(text.split()))


@contextlib.contextmanager
def database_watch(
    config: OrchConfig, environment_name: str, out: Path, echo: Callable[[str], None]
) -> Iterator[DatabaseSampler | None]:
    """Sample the environment's database into ``out`` while the block runs; nothing when the
    environment has no ``database_url`` or ``database.sample_interval_s`` is 0.

    The URL is checked by the production guard and the allow-list first; a refusal or a
    missing variable is said (echo and ``out``) and the run goes on without sampling."""
    raw = config.environment(environment_name).database_url
    interval = config.database.sample_interval_s
    if not raw or interval <= 0:
        yield None
        return
    action = "sample the database during the load"
    try:
        url = expand_env_refs(raw, f"environments.{environment_name}.database_url")
        url = guard_database_target(
            url, config=config, environment_name=environment_name, action=action
        )
    except OrchError as exc:
        echo(f"warning: the database is not sampled: {exc.message}")
        with contextlib.suppress(OSError):  # the report then has no database section
            out.write_text(json.dumps({"notes": [f"not sampled: {exc.message}"]}) + "\n")
        yield None
        return
    sampler = DatabaseSampler(url, interval, out)
    echo(f"database: sampling {sampler.info['database']} every {interval:g} s (read-only)")
    sampler.start()
    try:
        yield sampler
    finally:
        try:
            sampler.stop()
        except OSError as exc:
            echo(f"warning: cannot write {out}: {exc.strerror or exc}")

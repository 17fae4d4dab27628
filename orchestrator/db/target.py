"""Which database a command talks to: resolved from --env, --database-url and orch.yaml.

Shared by `orch db` and `orch users`. A local environment without a URL gets the embedded
PostgreSQL, created on first use with the migrations applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config import (
    build_policy,
    expand_env_refs,
    load_config,
    load_dotenv,
    pinned_conninfo,
)
from orchestrator.core import ConfigError, DatabaseError
from orchestrator.db.connection import redact_url
from orchestrator.db.embedded import ensure_local_database

if TYPE_CHECKING:
    from orchestrator.config import DatabaseSettings


@dataclass(frozen=True)
class Target:
    """The resolved database target of one command."""

    url: str
    env_name: str
    settings: DatabaseSettings
    migrations_dir: Path
    embedded: bool
    env_kind: str = "local"
    config: Any = None  # the loaded OrchConfig, when there is a config file


def resolve_target(config_file: str | None, env_name: str | None, database_url: str | None,
                   migrations_dir: Path | None) -> Target:
    """Find the database URL and settings for this command (starting the embedded server
    for a local environment without a URL).

    The URL is checked against the environment's allow-list by libpq's own rules and comes
    back with every host pinned to its checked address (RefusedError, exit 6, otherwise):
    every `orch db` and `orch users` connection goes through here.
    """

    config = load_config(config_file)
    load_dotenv(config.root / ".env")
    settings = config.database
    name = env_name or config.defaults.environment
    environment = config.environment(name)
    action = "connect to the database"
    policy = build_policy(config, name, action)  # production is refused before anything
    folder = migrations_dir or config.root / settings.migrations_dir
    url = database_url
    if url is None and environment.database_url:
        url = expand_env_refs(environment.database_url, f"environments.{name}.database_url")
    embedded = url is None
    if url is None:
        if environment.kind != "local":
            raise ConfigError(
                f"environment {name!r} has no database URL; set environments.{name}.database_url "
                "in orch.yaml (e.g. ${STAGING_DATABASE_URL}), or pass --database-url / set "
                "DATABASE_URL"
            )

        with translate_db_errors():
            url = ensure_local_database(config.root / ".orch" / "pgdata", migrations_dir=folder)
    pinned = pinned_conninfo(policy, url, action)
    return Target(pinned, name, settings, folder, embedded, environment.kind, config)


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn driver errors raised mid-command into DatabaseError (passwords redacted)."""
    import psycopg

    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the database user lacks a privilege: {redact_url(' '.join(str(exc).split()))}; "
            "use a role that owns the tables"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"database error: {redact_url(' '.join(str(exc).split()))}") from None

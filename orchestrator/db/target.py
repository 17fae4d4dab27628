"""Which database a command talks to: resolved from --env, --database-url and orch.yaml.

Shared by `orch db` and `orch users`. A local environment without a URL gets the embedded
PostgreSQL, created on first use with the migrations applied.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ConfigError, DatabaseError

if TYPE_CHECKING:
    from orchestrator.db.settings import DatabaseSettings


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
    for a local environment without a URL)."""
    from orchestrator.config import config_path, expand_env_refs, load_config
    from orchestrator.db.settings import DatabaseSettings
    from orchestrator.paths import PROJECT_ROOT

    config = None
    if config_file is not None or os.environ.get("ORCH_CONFIG") or config_path(None).is_file():
        config = load_config(config_file)
        from orchestrator.secrets import load_dotenv

        load_dotenv(config.root / ".env")
    root = config.root if config is not None else PROJECT_ROOT
    settings = config.database if config is not None else DatabaseSettings()
    name = env_name or (config.defaults.environment if config else "local")
    folder = migrations_dir or root / settings.migrations_dir
    url = database_url
    kind = "local" if name == "local" else ""
    if config is not None:
        environment = config.environments.get(name)
        if environment is None:
            known = ", ".join(sorted(config.environments))
            raise ConfigError(f"unknown environment {name!r}; choose one of: {known}")
        kind = environment.kind
        if url is None and environment.database_url:
            url = expand_env_refs(environment.database_url, f"environments.{name}.database_url")
    if url is None:
        if kind != "local":
            raise ConfigError(
                f"environment {name!r} has no database URL; set environments.{name}.database_url "
                "in orch.yaml (e.g. ${STAGING_DATABASE_URL}), or pass --database-url / set "
                "DATABASE_URL"
            )
        from orchestrator.db.embedded import ensure_local_database

        with translate_db_errors():
            url = ensure_local_database(root / ".orch" / "pgdata", migrations_dir=folder)
        return Target(url, name, settings, folder, embedded=True, env_kind=kind, config=config)
    return Target(url, name, settings, folder, embedded=False, env_kind=kind, config=config)


def guard_target(target: Target, action: str) -> None:
    """The production guard's call site for commands that write to a database: refuses
    (RefusedError, exit 6) a production environment or a production host."""
    from orchestrator.guard import guard_database_target

    if target.config is None and target.embedded:
        return  # no config to declare production hosts; the embedded server is local
    guard_database_target(target.url, config=target.config, environment_name=target.env_name,
                          environment_kind=target.env_kind, action=action)


@contextmanager
def translate_db_errors() -> Iterator[None]:
    """Turn driver errors raised mid-command into DatabaseError (passwords redacted)."""
    import psycopg

    from orchestrator.db.connection import redact_url

    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the database user lacks a privilege: {redact_url(' '.join(str(exc).split()))}; "
            "use a role that owns the tables"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"database error: {redact_url(' '.join(str(exc).split()))}") from None

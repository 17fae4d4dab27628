"""`orch users`: create, list and clean up load-test users."""

from __future__ import annotations

import os
from typing import Any

import click

from orchestrator.cli.options import config_option, env_option, load_project
from orchestrator.core import ConfigError


def _context(config_file: str | None, env_name: str | None, action: str) -> tuple[Any, ...]:
    """Config, environment name, the user store, the database URL and the credentials file."""
    # lazy: keeps --help fast
    from orchestrator.config import expand_env_refs, guard_environment, refuse_production_kind
    from orchestrator.db import resolve_target
    from orchestrator.target import (
        USERS_FILE,
        CredentialsFile,
        LocalAuthStore,
        SupabaseAdminStore,
        UserStore,
    )

    config = load_project(config_file)
    name = env_name or config.defaults.environment
    environment = config.environment(name)
    refuse_production_kind(name, environment.kind, action)
    policy = guard_environment(config, name, action)
    target = resolve_target(str(config.source), name, None, None)
    store: UserStore
    if environment.kind == "local":
        store = LocalAuthStore(target.url)
    else:
        if not environment.supabase_url or not environment.supabase_service_role_key:
            raise ConfigError(
                f"environment {name!r} needs supabase_url and supabase_service_role_key (the "
                f"name of the variable holding the service-role key) to manage test users"
            )
        key_var = environment.supabase_service_role_key
        key = os.environ.get(key_var)
        if not key:
            raise ConfigError(f"set {key_var} to the service-role key of environment {name!r}")
        url = expand_env_refs(environment.supabase_url, f"environments.{name}.supabase_url")
        store = SupabaseAdminStore(url, key, policy)
    credentials = CredentialsFile.load(config.root / USERS_FILE)
    return config, name, store, target.url, credentials


@click.group("users")
def users_group() -> None:
    """Create, list and clean up load-test users (loadtest-user-N@<test domain>).

    Example:

        orch users create --count 20

        orch users cleanup --dry-run
    """


@users_group.command("create")
@env_option
@click.option("--count", type=click.IntRange(1, 10_000), default=None, help="Default: 20.")
@config_option
def create_command(env_name: str | None, count: int | None, config_file: str | None) -> None:
    """Create test users (reusing existing ones) and store their credentials (mode 0600).

    Example:

        orch users create --env staging --count 20
    """
    from orchestrator.target import create_users  # lazy: keeps --help fast

    config, name, store, _, credentials = _context(config_file, env_name, "create test users")
    result = create_users(
        store, credentials, name, count or config.test_users.count, config.test_users.domain
    )
    click.echo(
        f"{name}: created {len(result.created)}, reused {len(result.reused)}; "
        f"credentials in {result.path} (git-ignored, mode 0600)"
    )


@users_group.command("list")
@env_option
@config_option
def list_command(env_name: str | None, config_file: str | None) -> None:
    """Show the test users, the rows they own, and when a run last used them.

    Example:

        orch users list
    """
    from orchestrator.target import OWNED_TABLES, list_users  # lazy: keeps --help fast

    config, name, store, url, credentials = _context(config_file, env_name, "list test users")
    rows = list_users(store, url, credentials, name, config.test_users.domain)
    header = ["email", *OWNED_TABLES, "last used"]
    click.echo(" | ".join(header))
    for row in rows:
        counts = [str(row.rows[t]) for t in OWNED_TABLES]
        click.echo(" | ".join([row.email, *counts, row.last_used or "never"]))
    click.echo(f"{len(rows)} test users in {name}")


@users_group.command("cleanup")
@env_option
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--id", "user_ids", multiple=True, help="Only this user id (repeatable).")
@config_option
def cleanup_command(
    env_name: str | None, dry_run: bool, user_ids: tuple[str, ...], config_file: str | None
) -> None:
    """Delete test users and every row they own, one transaction per user.

    Refuses any account outside the test domain and naming pattern, even by --id.

    Example:

        orch users cleanup --env staging --dry-run
    """
    from orchestrator.target import cleanup_users  # lazy: keeps --help fast

    config, name, store, url, credentials = _context(
        config_file, env_name, "delete test users and their data"
    )
    result = cleanup_users(
        store,
        url,
        credentials,
        name,
        config.test_users.domain,
        only_ids=list(user_ids) or None,
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{name}: {verb} {len(result.users)} test users")
    for table, count in result.rows.items():
        click.echo(f"  {table}: {verb} {count} rows")


COMMANDS: list[click.Command] = [users_group]

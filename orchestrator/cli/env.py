"""`orch env`: list environments and check that one is ready."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.options import config_option, load_project
from orchestrator.core import ExitCode


@click.group("env")
def env_group() -> None:
    """List environments and check their readiness.

    Example:

        orch env list

        orch env check staging
    """


@env_group.command("list")
@config_option
def list_command(config_file: str | None) -> None:
    """List the environments: name, kind, API base URL, description.

    Example:

        orch env list
    """
    config = load_project(config_file)
    for name, env in config.environments.items():
        default = " (default)" if name == config.defaults.environment else ""
        label = f"{name}{default}"
        click.echo(f"{label:<20} {env.kind:<10} {env.base_url:<40} {env.description}")


@env_group.command("check")
@click.argument("env_name", required=False)
@config_option
def check_command(env_name: str | None, config_file: str | None) -> None:
    """Check variables, API, N8N and database of ENV; say what is missing and how to fix it.

    Exits 0 when the environment is ready, 4 otherwise (6 for production).

    Example:

        orch env check staging
    """
    from orchestrator.target import check_environment  # lazy: keeps --help fast

    config = load_project(config_file)
    name = env_name or config.defaults.environment
    checks = check_environment(config, name)
    width = max(len(c.item) for c in checks)
    click.echo(f"{'item':<{width}}  {'status':<11}  detail")
    for check in checks:
        fix = f"  → {check.fix}" if check.fix and not check.passed else ""
        click.echo(f"{check.item:<{width}}  {check.status:<11}  {check.detail}{fix}")
    ready = all(c.passed for c in checks)
    click.echo(f"{name}: {'ready' if ready else 'not ready'}")
    sys.exit(int(ExitCode.OK if ready else ExitCode.SETUP))


COMMANDS: list[click.Command] = [env_group]

"""Options and helpers shared by several commands.

Nothing here imports a domain package at module level: every command module imports this
one, and `orch --help` must not load pydantic, PyYAML or Jinja2 (see ``cli/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from orchestrator.config import OrchConfig

F = Callable[..., Any]


def config_option(func: F) -> F:
    """--config FILE (default: ORCH_CONFIG, ./orch.yaml, then orch's own orch.yaml)."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file (default: $ORCH_CONFIG, ./orch.yaml, orch's own orch.yaml).",
    )(func)


def env_option(func: F) -> F:
    """--env NAME."""
    return click.option(
        "--env", "env_name", default=None, help="Environment from the config (default: local)."
    )(func)


def load_project(config_file: str | None) -> OrchConfig:
    """The validated config, with the project's .env loaded."""
    from orchestrator.config import load_config, load_dotenv  # lazy: keeps --help fast

    config = load_config(config_file)
    load_dotenv(config.root / ".env")
    return config


def echo_err(message: str) -> None:
    """Print a progress or status line to stderr (stdout carries the result)."""
    click.echo(message, err=True)

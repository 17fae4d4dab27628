"""The `orch` command line: parse, call one library function, print, map errors to exits.

Each area's commands live in a module of this package and are registered below; options
shared by several commands are in ``options``. This is the only package that imports click.

The command modules import the domain packages (``orchestrator.config``, ``execution``,
``results``, ...) inside the command functions, each marked ``# lazy: keeps --help fast``:
importing them loads pydantic, PyYAML and Jinja2 (about 0.2 s), which `orch --help` and a
mistyped command line must not pay for. Only ``orchestrator.core`` is imported at the top.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator import __version__
from orchestrator.cli import (
    commands_run,
    compare,
    db,
    doctor,
    env,
    report,
    sandbox,
    users,
    verify,
)
from orchestrator.core import ExitCode, OrchError


class OrchGroup(click.Group):
    """A click group that turns :class:`OrchError` into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))


@click.group(cls=OrchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orch")
def main() -> None:
    """Render, run, check and report k6 load tests.

    Example:

        orch run linkedin-scrape          # against the embedded sandbox

        orch report results/<run-folder>  # rebuild a run's report
    """


for _module in (commands_run, compare, db, doctor, env, report, sandbox, users, verify):
    for _command in _module.COMMANDS:
        main.add_command(_command)

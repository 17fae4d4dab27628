"""The `orch` command line: parse, call one library function, print, map errors to exits.

Each area's commands live in a module of this package and are registered below. Command
modules import heavy libraries (pandas, duckdb, matplotlib, docker, psycopg) inside the
command functions, so `orch --help` and `orch run` start fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from orchestrator import __version__
from orchestrator.core.errors import ExitCode, OrchError


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


def _register() -> None:
    """Attach every area's commands to the main group."""
    from orchestrator.cli import commands_run, compare, db, env, report, sandbox, users, verify

    for module in (commands_run, compare, db, env, report, sandbox, users, verify):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

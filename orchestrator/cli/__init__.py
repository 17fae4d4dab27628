"""The `orch` command line: parse, call one library function, print, map errors to exits.

Each area's commands live in a module of this package and are registered below; options
shared by several commands are in ``options``. This is the only package that imports click.

The command modules import the domain packages (``orchestrator.config``, ``execution``,
``results``, ...) inside the command functions, each marked ``# lazy: keeps --help fast``:
importing them loads pydantic, PyYAML and Jinja2 (about 0.2 s), which `orch --help` and a
mistyped command line must not pay for. Only ``orchestrator.core`` is imported at the top.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import Any, NoReturn

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


def entry_point() -> NoReturn:
    """The `orch` console script: run the command, then end the process without tearing
    down the libraries it imported.

    Python's own shutdown frees every module one by one; with pandas, DuckDB and matplotlib
    loaded that took 0.25 s of wall time after the report was written (measured on
    `orch report`). The command's work is finished by then: the exit handlers still run,
    threads that are not daemons are waited for and the output is flushed, as in a normal
    exit; only the freeing is skipped.

    pydantic's plugins (none of which orch uses) are turned off unless the environment says
    otherwise: looking for them reads every installed package's metadata, 0.06 s of each
    command that builds a model (measured on `orch report`).
    """
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        main(standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or debugger writes its results after this returns
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away: as Python, exit 1 then
            code = code or 1
    os._exit(code)


def _exit_status(code: object) -> int:
    """The process status `sys.exit(code)` gives: None is 0, an int is itself, anything
    else is printed to stderr and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(OSError, ValueError):
        print(code, file=sys.stderr)
    return 1

"""`orch doctor`: what this machine and config can do, and what they still lack."""

from __future__ import annotations

import sys

import click

from orchestrator.cli.options import config_option
from orchestrator.core import ExitCode


@click.command()
@click.option("--k6", "k6_path", default=None, help="Path to the k6 binary (or set ORCH_K6).")
@click.option(
    "--clean-containers", is_flag=True, help="Remove containers left behind by killed runs."
)
@config_option
def doctor(k6_path: str | None, clean_containers: bool, config_file: str | None) -> None:
    """Check k6, Docker and the config, and say what is still missing.

    Exits 0 when a run can start on the default environment, 4 otherwise.

    Example:

        orch doctor
    """
    from orchestrator.execution import diagnose  # lazy: keeps --help fast

    report = diagnose(config_file, k6_path=k6_path, clean_containers=clean_containers)
    for section, lines in report.sections.items():
        click.echo(f"{section}:")
        for line in lines:
            click.echo(f"  {line}")
    if report.missing:
        click.echo("still missing:")
        for item in report.missing:
            click.echo(f"  - {item}")
    click.echo(f"verdict: {'ready' if report.ready else 'not ready'}")
    sys.exit(int(ExitCode.OK if report.ready else ExitCode.SETUP))


COMMANDS: list[click.Command] = [doctor]

"""`orch verify ENV`: confirm the endpoints the scenarios assume, before any load is sent."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import config_option, load_project
from orchestrator.core import ExitCode

if TYPE_CHECKING:
    from orchestrator.target import VerifyReport


@click.command()
@click.argument("env_name", metavar="ENV", required=False)
@click.option(
    "--write",
    is_flag=True,
    help="Record what was found in the config file, keeping its comments: the enrichment "
    "endpoint (environments.ENV.scenarios.SCENARIO.vars.enrichment_endpoint) and, where the "
    "scenario's webhook_path disagrees with its workflow export, the path N8N serves "
    "(…vars.webhook_path).",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for each answer.")
@config_option
def verify(env_name: str | None, write: bool, timeout: float, config_file: str | None) -> None:
    """Check the N8N webhook and the API endpoints the scenarios need in ENV.

    Derives from the scenario's N8N workflow export (vars.webhook_export), by N8N's own
    rules, the URL N8N serves, its methods, authentication and blocking options; says
    whether it is the story's /webhook/{workflow}/{id}; flags a webhook_path that disagrees;
    sends one test call with the configured auth and one without, and probes the
    enrichment candidates in order with OPTIONS or a deliberately invalid body. Writes a
    Markdown record to the results folder. Exits 0 when every endpoint is confirmed, 9
    when one is not.

    Example:

        orch verify local

        orch verify staging --write
    """
    # lazy: keeps --help fast
    from orchestrator.target import (
        save_record,
        verify_environment,
        write_enrichment_endpoint,
        write_webhook_path,
    )

    config = load_project(config_file)
    report = verify_environment(
        config, env_name, timeout=timeout, echo=lambda m: click.echo(m, err=True)
    )
    if write:
        for check in report.endpoints:
            if check.found and not check.confirmed and check.variable == "enrichment_endpoint":
                check.written_to = write_enrichment_endpoint(
                    config.source, report.environment, check.scenario, check.found
                )
                check.configured = check.found
        for hook in report.webhooks:
            hook.written_to = write_webhook_path(config.source, hook)
            if hook.written_to and hook.disagreement in hook.problems:
                hook.problems.remove(hook.disagreement)
    _print(report)
    record = save_record(report, config.results_dir)
    click.echo(f"record: {record}")
    if report.confirmed:
        click.echo("verdict: every endpoint the scenarios need is confirmed")
        sys.exit(int(ExitCode.OK))
    click.echo("verdict: NOT confirmed:")
    for problem in report.problems:
        click.echo(f"  - {problem}")
    sys.exit(int(ExitCode.UNVERIFIED))


def _print(report: VerifyReport) -> None:
    # lazy: keeps --help fast
    from orchestrator.target import webhook_lines

    click.echo(
        f"environment {report.environment} ({report.kind}): API {report.base_url}, "
        f"N8N {report.n8n_base_url}"
    )
    rows: list[tuple[str, str, str, str]] = []
    for hook in report.webhooks:
        click.echo(f"N8N webhook ({', '.join(hook.scenarios)}):")
        for line in webhook_lines(hook):
            click.echo(f"  {line}")
        if hook.written_to and hook.webhook:
            click.echo(f"wrote webhook_path: {hook.webhook.served!r} to {hook.written_to}")
        if hook.with_auth:
            accepted = "accepted" if hook.auth_accepted else "NOT accepted"
            rows.append(
                (
                    f"webhook, auth {hook.configured_auth}",
                    "POST " + hook.url,
                    hook.with_auth.shown,
                    accepted,
                )
            )
        if hook.without_auth:
            rows.append(
                ("webhook, no auth", "POST " + hook.url, hook.without_auth.shown, hook.auth_finding)
            )
        for warning in hook.warnings:
            click.echo(f"warning: {warning}")
        for note in hook.notes:
            click.echo(f"note: {note}")
    for check in report.endpoints:
        for p in check.probes:
            mark = {True: "exists", False: "absent", None: "unclear"}[p.exists]
            if p.spec == check.configured:
                mark += " (configured)"
            rows.append((f"{check.scenario}: {check.variable}", p.spec, p.how, mark))
        if check.written_to:
            click.echo(f"wrote {check.variable}: {check.found!r} to {check.written_to}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)] if rows else [0] * 4
    headers = ("check", "endpoint", "answer", "finding")
    widths = [max(w, len(h)) for w, h in zip(widths, headers, strict=True)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


COMMANDS: list[click.Command] = [verify]

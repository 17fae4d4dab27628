"""Commands that render and run scenarios: scenarios, render, run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.options import config_option, echo_err, env_option, load_project
from orchestrator.core import Outcome


@click.command()
@config_option
def scenarios(config_file: str | None) -> None:
    """List the scenarios with their description and load profiles, then the mixes.

    Example:

        orch scenarios
    """
    config = load_project(config_file)
    for name, scenario in config.scenarios.items():
        profiles = ", ".join(
            f"{p}*" if p == scenario.default_profile else p for p in scenario.profiles
        )
        click.echo(f"{name:<20} {scenario.description}")
        click.echo(f"{'':<20} profiles: {profiles}   (* = default)")
    for name, mix in config.mixes.items():
        click.echo(f"{name:<20} (mix) {mix.description}")
        flows = ", ".join(
            f"{flow}[{spec.profile or config.scenarios[spec.scenario or flow].default_profile}]"
            for flow, spec in mix.flows.items()
        )
        click.echo(f"{'':<20} flows: {flows}   (orch run --mix {name})")


@click.command()
@click.argument("scenario", required=False)
@env_option
@click.option("--profile", default=None, help="Load profile (default: the scenario's).")
@click.option("--mix", default=None, help="Render a mix of orch.yaml instead.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to write into (default: results/rendered/<scenario>_<env>).",
)
@config_option
def render(
    scenario: str | None,
    env_name: str | None,
    profile: str | None,
    mix: str | None,
    out_dir: str | None,
    config_file: str | None,
) -> None:
    """Render SCENARIO's k6 script (or a mix's: --mix NAME, with each flow's module) with its
    helper modules, and print its path.

    Secrets are not rendered: the script reads them from __ENV at run time.

    Example:

        orch render linkedin-scrape --env local

        orch render --mix peak-hour
    """
    # lazy: keeps --help fast
    from orchestrator.execution import RunRequest, render_script, resolve_request

    config = load_project(config_file)
    request = RunRequest(scenario=scenario, environment=env_name, profile=profile, mix=mix)
    run = resolve_request(config, request)
    target = (
        Path(out_dir)
        if out_dir
        else config.results_dir / "rendered" / f"{run.scenario_name}_{run.environment_name}"
    )
    rendered = render_script(config, run, target)
    click.echo(str(rendered.path))


@click.command()
@click.argument("scenario", required=False)
@env_option
@click.option("--profile", default=None, help="Load profile (default: the scenario's).")
@click.option(
    "--mix", default=None, help="Run a mix of orch.yaml (several flows at once) instead."
)
@click.option(
    "--runner",
    type=click.Choice(["auto", "native", "docker", "k8s"]),
    default=None,
    help="Where k6 runs (default: the config's, else auto: native k6 if usable, else Docker; "
    "k8s: a k6-operator TestRun on the current kubectl context).",
)
@click.option("--k6", "k6_path", default=None, help="Path to the k6 binary (or set ORCH_K6).")
@click.option("--no-report", is_flag=True, help="Skip the report (it can be built later).")
@click.option(
    "--shards", type=int, default=None, help="Split the test into N local k6 processes, merged."
)
@click.option("--parallelism", type=int, default=1, help="With --runner k8s: runner pods.")
@click.option("--dry-run", is_flag=True, help="With --runner k8s: write manifests, print kubectl.")
@click.option(
    "--against-baseline", is_flag=True, help="Compare with the baseline; exit 8 if regressed."
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Baseline file (implies --against-baseline; default: baselines/<scenario>_<env>.json).",
)
@config_option
def run(config_file: str | None, env_name: str | None, no_report: bool, **options: Any) -> None:
    """Run SCENARIO (or a mix: --mix NAME, or a k6 script of your own: a path ending in
    .js) with k6 into a new folder under results/, then report on it.

    A script runs with its own options; orch adds only the environment's allow-list (as
    k6 flags) and its outputs, and refuses a script that sets the protection itself.

    Exits 0 when every threshold held, 99 when one was crossed, 8 when it regressed
    against its baseline (--against-baseline; 99 wins over 8). See the README's exit
    code table.

    Example:

        orch run linkedin-scrape                 # local sandbox, default profile

        orch run linkedin-scrape --env staging --profile load

        orch run --mix peak-hour                 # linkedin, email and enrichment at once

        orch run tests/k6/shop.js --env staging  # any k6 script
    """
    # lazy: keeps --help fast
    from orchestrator.execution import RunRequest, run_scenario
    from orchestrator.results import verdict_line

    scenario = options.pop("scenario")
    if scenario is None and options.get("mix") is None:
        # a missing argument is a usage error (exit 2), as click gives for any other
        raise click.UsageError(
            "name a SCENARIO to run (`orch scenarios` lists them), or --mix NAME"
        )
    config = load_project(config_file)
    if scenario is not None and (scenario.endswith((".js", ".mjs", ".ts")) or "/" in scenario):
        options["script"] = Path(scenario)  # a k6 script of your own, run as it is
        scenario = None
    # the other options are named as RunRequest's fields
    request = RunRequest(
        scenario=scenario, environment=env_name, make_report=not no_report, **options
    )
    result = run_scenario(config, request, echo=echo_err)
    if result.outcome == Outcome.DRY_RUN:
        click.echo(f"manifests: {result.run_dir / 'k8s'}", err=True)
        click.echo("to run it by hand:", err=True)
        for command in result.commands:
            click.echo(f"  {command}", err=True)
    else:
        click.echo(verdict_line(result.outcome, result.k6_exit_code, result.run_dir), err=True)
    if result.report_path:
        click.echo(f"report: {result.report_path}", err=True)
    click.echo(str(result.run_dir))
    sys.exit(int(result.exit_code))


COMMANDS: list[click.Command] = [scenarios, render, run]

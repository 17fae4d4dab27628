"""Commands that look across runs: compare, baseline set|show, history."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.cli.options import config_option, env_option, load_project
from orchestrator.core import ConfigError, ExitCode


@click.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for compare.md, compare.json and compare_p95.png "
    "(default: results/compare/<A>__<B>).",
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 8 when B regressed against A; when A or B did not complete, exit with that "
    "run's own code (5 unfinished or k6 error, 130 interrupted, 6 refused, ...).",
)
@config_option
def compare(
    run_a: Path, run_b: Path, out_dir: Path | None, fail_on_regression: bool,
    config_file: str | None,
) -> None:  # fmt: skip
    """Compare run folder RUN_B against RUN_A (or against a baseline file as RUN_A).

    Prints a Markdown table (overall and per endpoint: p50/p95/p99, throughput, error
    rate, absolute and relative change, significance) and writes it with compare.json and
    a p95 chart. The tolerances come from the config's `regression:` block. A run that
    did not complete (outcome other than passed or thresholds_failed) is not judged: no
    "regression" and no "no regression" verdict.

    Example:

        orch compare results/<run-folder-A> results/<run-folder-B>

        orch compare baselines/email-queue_staging.json results/<run-folder>
    """
    # lazy: keeps --help fast
    from orchestrator.regression import compare_sides, load_side, render_markdown, write_comparison

    config = load_project(config_file)
    a, b = load_side(run_a), load_side(run_b)
    if b.kind != "run":
        raise ConfigError(f"{run_b} is a baseline file; RUN_B must be a run folder")
    comparison = compare_sides(a, b, config.regression)
    target = out_dir or config.results_dir / "compare" / f"{Path(run_a).stem}__{Path(run_b).name}"
    files = write_comparison(comparison, target)
    click.echo(render_markdown(comparison), nl=False)
    click.echo(f"written: {files.markdown}, {files.json}, {files.chart}", err=True)
    for why in comparison.not_judged:  # never "no regression" for a run that did not complete
        click.echo(f"not judged: {why}", err=True)
    code = comparison.not_judged_exit_code()
    if fail_on_regression and code is not None:
        sys.exit(code)
    if fail_on_regression and comparison.regressed:
        sys.exit(int(ExitCode.REGRESSION))


@click.group()
def baseline() -> None:
    """Keep a run's figures as the baseline of its scenario and environment.

    Example:

        orch baseline set results/<run-folder>

        orch baseline show email-queue --env staging
    """


@baseline.command("set")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Baseline file to write (default: baselines/<scenario>_<env>.json next to orch.yaml).",
)
@config_option
def baseline_set(run_dir: Path, out_file: Path | None, config_file: str | None) -> None:
    """Make RUN_DIR the baseline of its scenario and environment.

    Writes a small file to commit: the run's figures and a quantile sample of its
    latencies per endpoint (no raw data). Prints the file's path.

    Example:

        orch baseline set results/20250101T010000Z_email-queue_staging
    """
    from orchestrator.regression import (  # lazy: keeps --help fast
        baseline_path,
        make_baseline,
        set_baseline,
    )

    config = load_project(config_file)
    if out_file is None:
        document = make_baseline(run_dir)
        out_file = baseline_path(config, document["scenario"], document["environment"])
    path = set_baseline(run_dir, out_file)
    click.echo(str(path))


@baseline.command("show")
@click.argument("scenario")
@env_option
@config_option
def baseline_show(scenario: str, env_name: str | None, config_file: str | None) -> None:
    """Print the baseline of SCENARIO in an environment (figures, not samples).

    Example:

        orch baseline show email-queue --env staging
    """
    from orchestrator.regression import baseline_path, read_baseline  # lazy: keeps --help fast

    config = load_project(config_file)
    env = env_name or config.defaults.environment
    path = baseline_path(config, scenario, env)
    if not path.is_file():
        raise ConfigError(
            f"no baseline for {scenario} in {env} ({path}); set one with "
            "`orch baseline set RUN_DIR`"
        )
    data = read_baseline(path)
    click.echo(f"baseline: {path}")
    click.echo(f"from run: {data.get('source_run')} ({data.get('run_started_at')}), "
               f"profile {data.get('profile')}")  # fmt: skip
    rows = [data.get("overall") or {}, *(data.get("endpoints") or [])]
    click.echo(f"{'endpoint':<28} {'requests':>9} {'req/s':>9} {'errors':>8} {'p50':>9} "
               f"{'p95':>9} {'p99':>9}")  # fmt: skip
    for row in rows:
        lat = row.get("latency_ms") or {}
        cells = [lat.get(k) for k in ("p50", "p95", "p99")]
        click.echo(
            f"{row.get('name', '?'):<28} {row.get('requests') or 0:>9,} "
            f"{row.get('throughput_rps') or 0:>9.1f} {100 * (row.get('error_rate') or 0):>7.2f}% "
            + " ".join(f"{c:>9.1f}" if isinstance(c, int | float) else f"{'—':>9}" for c in cells)
        )


@click.command()
@click.argument("scenario")
@env_option
@click.option("--profile", default=None, help="Only runs of this load profile.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding run folders or their results.json, searched recursively "
    "(default: the results folder).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for history.png and history.md (default: results/history/<scenario>_<env>).",
)
@config_option
def history(
    scenario: str, env_name: str | None, profile: str | None, from_dir: Path | None,
    out_dir: Path | None, config_file: str | None,
) -> None:  # fmt: skip
    """Draw SCENARIO's (or a mix's) p95, throughput and error rate across runs, with a
    Markdown table.

    Without --env, runs of every environment are included.

    Example:

        orch history email-queue --env staging

        orch history email-queue --from downloaded-artifacts/
    """
    from orchestrator.regression import collect_history, write_history  # lazy: keeps --help fast

    config = load_project(config_file)
    if scenario not in config.mixes:  # a mix's runs are kept under its name
        config.scenario(scenario)  # an unknown scenario is an error naming the known ones
    source = from_dir or config.results_dir
    points = collect_history(source, scenario, env_name, profile)
    if not points:
        raise ConfigError(
            f"no run of {scenario}{' in ' + env_name if env_name else ''} under {source} "
            "has a results.json; run it with `orch run` first or point --from at its folders"
        )
    target = out_dir or config.results_dir / "history" / f"{scenario}_{env_name or 'all'}"
    chart, md = write_history(points, target, scenario, env_name)
    click.echo(md.read_text(encoding="utf-8"), nl=False)
    click.echo(f"written: {md}, {chart}", err=True)


COMMANDS: list[click.Command] = [compare, baseline, history]

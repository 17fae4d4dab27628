"""`orch report`: rebuild a run's results.json, charts and report.md, offline."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.core import (
    ConfigError,
    ExitCode,
    OrchError,
    not_judged_exit_code,
    not_judged_reason,
)


def _default_results_dir(config_file: str | None) -> Path:
    """The config's results folder, or ./results when no config can be loaded."""
    try:
        from orchestrator.config import load_config  # lazy: keeps --help fast

        return Path(load_config(config_file).results_dir)
    except (OrchError, ImportError, AttributeError):
        return Path.cwd() / "results"


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--merge",
    is_flag=True,
    help="Merge the runners' folders (or raw files) given into one run with one verdict.",
)
@click.option(
    "--from",
    "raw_from",
    type=click.Path(path_type=Path),
    default=None,
    help="A raw k6 file from elsewhere (--out json or --out csv, plain or .gz).",
)
@click.option(
    "--summary",
    type=click.Path(path_type=Path),
    default=None,
    help="With --from: k6's --summary-export file or handleSummary JSON.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="With --from or --merge: the run folder to create (default: a new one in results/).",
)
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), default=None,
    help="Config file, for its results folder (with --from).",
)  # fmt: skip
@click.option(
    "--fail-on-thresholds",
    is_flag=True,
    help="Exit 99 when a threshold was crossed (as `orch run` does); a run that did not "
    "complete exits with its own code (5 unfinished or k6 error, 130 interrupted, ...).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github"]),
    default="text",
    help="github: print the run's job summary (GitHub-flavoured Markdown, charts as Mermaid) "
    "to stdout, e.g. >> $GITHUB_STEP_SUMMARY; the verdict line then goes to stderr.",
)
def report_command(
    run_dirs: tuple[Path, ...],
    merge: bool,
    raw_from: Path | None,
    summary: Path | None,
    out_dir: Path | None,
    config_file: str | None,
    fail_on_thresholds: bool,
    output_format: str,
) -> None:
    """Rebuild RUN_DIR's results.json, charts/*.png, report.md, report.html and
    job-summary.md from its files.

    Works offline and gives the same files each time. With --from, first make a run
    folder from a raw k6 file written elsewhere (and its summary, if you have it); a file
    that is truncated or corrupt is refused (exit 3) and leaves no folder. A folder that
    holds neither run.json nor k6 output is refused (exit 3) and left untouched.

    Only a complete run (outcome passed or thresholds_failed in run.json) is judged; an
    unfinished or failed one is reported as NOT JUDGED.

    Example:

        orch report results/20260101T120000Z_linkedin-scrape_local

        orch report --from k6-raw.json.gz --summary summary.json --out /tmp/their-run

        orch report --merge results/RUN/shards/1 results/RUN/shards/2 --out merged

        orch report results/RUN --format github >> "$GITHUB_STEP_SUMMARY"
    """
    from orchestrator.results import build_report, report_import  # lazy: keeps --help fast

    if merge:
        _merge(run_dirs, out_dir, config_file, raw_from, summary)
    if len(run_dirs) > 1:
        raise ConfigError("give one run folder, or several with --merge")
    run_dir = run_dirs[0] if run_dirs else None
    if raw_from is not None:
        if run_dir is not None:
            raise ConfigError("give either RUN_DIR or --from FILE, not both")
        results_dir = _default_results_dir(config_file) if out_dir is None else None
        result = report_import(raw_from, summary=summary, out_dir=out_dir, results_dir=results_dir)
    elif run_dir is None:
        raise ConfigError("give a run folder (orch report RUN_DIR) or a raw file (--from FILE)")
    elif summary is not None or out_dir is not None:
        raise ConfigError("--summary and --out only apply with --from FILE")
    else:
        result = build_report(run_dir)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    github = output_format == "github"
    if github:
        click.echo(result.job_summary_path.read_text(encoding="utf-8"), nl=False)
    why = not_judged_reason(result.outcome)
    if why is not None:  # unfinished or failed: never PASSED, never a threshold verdict
        click.echo(f"NOT JUDGED: the run ended as {result.outcome}: {why}; "
                   f"report: {result.report_path}", err=github)  # fmt: skip
        if fail_on_thresholds:
            sys.exit(not_judged_exit_code(result.outcome, result.exit_code))
        return
    verdict = _verdict(result.thresholds_ok, result.thresholds_failed)
    click.echo(f"{verdict}; report: {result.report_path}", err=github)
    if fail_on_thresholds and result.thresholds_ok is False:
        sys.exit(int(ExitCode.THRESHOLDS))


def _verdict(thresholds_ok: bool | None, failed: int) -> str:
    """One phrase for the threshold verdict."""
    if thresholds_ok is None:
        return "no thresholds judged"
    return "thresholds passed" if thresholds_ok else f"{failed} threshold(s) crossed"


def _merge(
    inputs: tuple[Path, ...],
    out_dir: Path | None,
    config_file: str | None,
    raw_from: Path | None,
    summary: Path | None,
) -> None:
    """`orch report --merge`: one run folder and one exit code (99: a threshold crossed)."""
    from orchestrator.results import merge_runs  # lazy: keeps --help fast

    if raw_from is not None or summary is not None:
        raise ConfigError("--merge takes run folders or raw files as arguments, not --from")
    if not inputs:
        raise ConfigError("give the runners' folders to merge: orch report --merge DIR DIR ...")
    results_dir = _default_results_dir(config_file) if out_dir is None else None
    result = merge_runs(list(inputs), out_dir=out_dir, results_dir=results_dir)
    verdict = _verdict(result.thresholds_ok, result.thresholds_failed)
    click.echo(
        f"merged {result.points:,} points from {len(result.sources)} runners; {verdict}; "
        f"{result.outcome}; report: {result.report_path}",
        err=True,
    )
    click.echo(str(result.run_dir))
    sys.exit(int(result.exit_code))


COMMANDS: list[click.Command] = [report_command]

"""The one line that tells a person how a run ended, as `orch run` prints it and a
notification says it."""

from __future__ import annotations

from pathlib import Path

from orchestrator.core import OrchError, Outcome
from orchestrator.results.run_folder import RunFolder


def verdict_line(outcome: Outcome, k6_exit_code: int | None, run_dir: Path) -> str:
    """``PASSED: every threshold held``, ``FAILED: thresholds crossed``, … for ``outcome``
    (a run that did not deliver its load says by how much, from results.json)."""
    log = RunFolder.LOG
    verdicts = {
        Outcome.PASSED: "PASSED: every threshold held",
        Outcome.THRESHOLDS_FAILED: "FAILED: thresholds crossed",
        Outcome.K6_ERROR: f"ERROR: k6 failed (exit {k6_exit_code}); see {log}",
        Outcome.CRASHED: f"ERROR: k6 crashed or was killed; see {log}",
        Outcome.INTERRUPTED: "INTERRUPTED: the run was stopped; its files are kept",
        Outcome.TARGET_LOST: "INCONCLUSIVE: the sandbox stopped during the run; see run.json",
        Outcome.IO_ERROR: "ERROR: the run folder could not be written (a full disk?); k6 was "
        "stopped",
        Outcome.REFUSED: "REFUSED: k6 tried to reach a host outside the allow-list",
    }
    if outcome == Outcome.LOAD_NOT_DELIVERED:
        return "INCONCLUSIVE: the load was not delivered" + _delivery_numbers(run_dir)
    return verdicts.get(outcome, str(outcome))


def _delivery_numbers(run_dir: Path) -> str:
    """`` (81 of 200 requests; 120 iterations dropped)`` from results.json, or nothing."""
    try:
        headline = RunFolder(run_dir).read_results().delivery.headline
    except OrchError:
        return ""
    return f" ({headline})" if headline else ""

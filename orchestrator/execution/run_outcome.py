"""How k6's end becomes a run's outcome and orch's exit code.

:func:`classify` maps how the k6 process ended; :func:`record_outcome` adds what orch saw
around it (connections k6 refused outside the allow-list, counted by
:class:`BlockedConnections`; a run folder that could not be written; a sandbox that stopped)
and writes the verdict into run.json's manifest. The rest of a run's lifecycle is in
:mod:`~orchestrator.execution.lifecycle`.
"""

from __future__ import annotations

from orchestrator.config import Redactor
from orchestrator.core import ExitCode, Outcome
from orchestrator.execution.runner import K6Outcome
from orchestrator.results import RunManifest

# What k6 prints when its connect-time allow-list (blacklistIPs, blockHostnames) or the
# script's checked request function refuses a connection.
BLOCKED_MARKERS = ("is in a blacklisted range", "is in a blocked pattern", "orch egress: refused")


def classify(outcome: K6Outcome) -> tuple[Outcome, ExitCode]:
    """Map how k6 ended to run.json's outcome and orch's exit code."""
    if outcome.io_error:
        return Outcome.IO_ERROR, ExitCode.SETUP
    if outcome.interrupted or outcome.exit_code == 105:
        return Outcome.INTERRUPTED, ExitCode.INTERRUPTED
    if outcome.exit_code is None:
        return Outcome.CRASHED, ExitCode.K6_ERROR
    if outcome.exit_code == 0:
        return Outcome.PASSED, ExitCode.OK
    if outcome.exit_code == 99:
        return Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS
    return Outcome.K6_ERROR, ExitCode.K6_ERROR


class BlockedConnections:
    """Counts the connections k6 refused because they left the allow-list."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def see(self, line: str) -> None:
        if any(marker in line for marker in BLOCKED_MARKERS):
            self.count += 1
            if len(self.examples) < 3:
                self.examples.append(line.strip()[:300])


def record_outcome(
    manifest: RunManifest,
    outcome: K6Outcome,
    redact: Redactor,
    blocked: BlockedConnections | None = None,
    target_lost: str | None = None,
) -> ExitCode:
    """Write how k6 ended into the manifest (not yet saved); return orch's exit code.

    A run in which k6 refused a connection outside the allow-list is ``refused`` (exit 6),
    whatever its thresholds say: it tried to reach somewhere it may not. A write error in
    the run folder is ``io_error`` (exit 4). A run whose sandbox stopped (``target_lost``,
    the note naming it) is ``target_lost`` (exit 4) instead of passed or failed: its
    figures are not the target's.
    """
    name, code = classify(outcome)
    if blocked is not None and blocked.count and name != Outcome.INTERRUPTED:
        name, code = Outcome.REFUSED, ExitCode.REFUSED
        manifest.notes.append(
            f"k6 refused {blocked.count} connection(s) outside the allow-list (a redirect or "
            f"a URL leading elsewhere), e.g.: {redact(blocked.examples[0])}"
        )
    if outcome.io_error:
        manifest.notes.append(
            f"k6 was stopped because the run folder could not be written: {outcome.io_error}; "
            "what was written is kept (free space, then rebuild the report with `orch report`)"
        )
    if target_lost:
        manifest.notes.append(target_lost)
        if name in (Outcome.PASSED, Outcome.THRESHOLDS_FAILED):
            name, code = Outcome.TARGET_LOST, ExitCode.SETUP
    manifest.load_generator = outcome.resources
    manifest.command = [redact(part) for part in outcome.command]
    manifest.k6_exit_code = outcome.exit_code
    manifest.k6_signal = outcome.killed_by_signal
    manifest.outcome = name
    manifest.exit_code = int(code)
    return code

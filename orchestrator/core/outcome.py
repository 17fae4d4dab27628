"""How a run ended: the values of ``outcome`` in run.json and results.json.

:class:`Outcome` is a :class:`~enum.StrEnum`, so a member is its string everywhere: in
JSON, in f-strings, and in comparisons with the strings an older run.json holds.
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator.core.errors import ExitCode


class Outcome(StrEnum):
    """One run's outcome, as run.json records it."""

    RUNNING = "running"  # k6 has not ended yet (or orch itself was killed)
    PASSED = "passed"  # k6 exited 0: every threshold held
    THRESHOLDS_FAILED = "thresholds_failed"  # k6 exited 99
    K6_ERROR = "k6_error"  # k6 failed to start or exited with another code
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGINT or SIGTERM (or k6's own 105)
    CRASHED = "crashed"  # k6 was killed by a signal orch did not send
    REFUSED = "refused"  # k6 tried to leave the environment's allow-list
    DRY_RUN = "dry_run"  # `orch run --runner k8s --dry-run`: manifests only
    # thresholds held, but k6 fell short of the planned load (achieved or dropped iterations)
    LOAD_NOT_DELIVERED = "load_not_delivered"
    NOT_STARTED = "not_started"  # k6 never started (sandbox port, k6 binary, Docker, ...)
    IO_ERROR = "io_error"  # writing the run folder failed while k6 ran (e.g. a full disk)
    TARGET_LOST = "target_lost"  # the sandbox orch relied on stopped during the run

    @property
    def completed(self) -> bool:
        """Whether k6 ran the whole test (its figures can be judged and compared)."""
        return self in (Outcome.PASSED, Outcome.THRESHOLDS_FAILED)


# Why a run with this outcome cannot be judged, in words (any other outcome that is not
# complete reads "it ended as <outcome>").
_NOT_JUDGED = {
    Outcome.RUNNING: "the run is unfinished: run.json still says `running` (k6 is still "
    "running, or orch was stopped before it recorded how the run ended)",
    Outcome.K6_ERROR: "k6 reported an error, so the test did not run as planned",
    Outcome.CRASHED: "k6 crashed, so the figures cover only what was written before",
    Outcome.INTERRUPTED: "the run was interrupted before its planned end",
    Outcome.REFUSED: "k6 tried to reach a host outside the environment's allow-list",
    Outcome.DRY_RUN: "it is a dry run: nothing ran",
    Outcome.LOAD_NOT_DELIVERED: "k6 did not deliver the planned load, so the figures are "
    "not those of the test as planned",
    Outcome.NOT_STARTED: "k6 never started",
    Outcome.IO_ERROR: "writing the run folder failed while k6 ran (e.g. a full disk)",
    Outcome.TARGET_LOST: "the sandbox orch relied on stopped during the run",
}
# The exit code such a run stands for when its run.json records none (or records 0 or 99).
_NOT_JUDGED_EXIT = {
    Outcome.RUNNING: ExitCode.K6_ERROR,
    Outcome.K6_ERROR: ExitCode.K6_ERROR,
    Outcome.CRASHED: ExitCode.K6_ERROR,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
    Outcome.REFUSED: ExitCode.REFUSED,
    Outcome.DRY_RUN: ExitCode.CONFIG,
    Outcome.LOAD_NOT_DELIVERED: ExitCode.LOAD_NOT_DELIVERED,
    Outcome.NOT_STARTED: ExitCode.SETUP,
    Outcome.IO_ERROR: ExitCode.SETUP,
    Outcome.TARGET_LOST: ExitCode.SETUP,
}


def not_judged_reason(outcome: Outcome | str | None) -> str | None:
    """Why a run that ended so is not judged (never PASSED, never "no regression"), or None
    when it can be: it completed (``passed``, ``thresholds_failed``), or its outcome is
    unknown (a folder made by ``orch report --from`` from someone else's k6 output)."""
    if outcome is None:
        return None
    try:
        known = Outcome(outcome)
    except ValueError:
        return f"it ended as {outcome!r}, which this orch does not know"
    if known.completed:
        return None
    return _NOT_JUDGED.get(known, f"it ended as `{known}`")


def not_judged_exit_code(outcome: Outcome | str | None, recorded: int | None = None) -> int:
    """The exit code of a command given a run that is not judged: the run's own code as
    run.json records it, else the outcome's (README, "Exit codes"): 5 unfinished (``running``),
    k6 error or crash; 130 interrupted; 6 refused; 10 load not delivered; 4 not started, I/O
    error or target lost; 3 a dry run."""
    if recorded is not None and recorded not in (ExitCode.OK, ExitCode.THRESHOLDS):
        return int(recorded)
    if outcome is None:
        return int(ExitCode.K6_ERROR)
    try:
        return int(_NOT_JUDGED_EXIT.get(Outcome(outcome), ExitCode.K6_ERROR))
    except ValueError:
        return int(ExitCode.K6_ERROR)

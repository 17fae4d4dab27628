"""How a run ended: the values of ``outcome`` in run.json and results.json.

:class:`Outcome` is a :class:`~enum.StrEnum`, so a member is its string everywhere: in
JSON, in f-strings, and in comparisons with the strings an older run.json holds.
"""

from __future__ import annotations

from enum import StrEnum


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

"""Exit codes and the one exception hierarchy every module raises.

Every message says what went wrong and what to do next. The CLI prints the message on one
line and exits with the error's ``exit_code``; no traceback reaches the user.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """orch's process exit codes (documented in the README)."""

    OK = 0
    INTERNAL = 1  # a bug in orch: please report it
    USAGE = 2  # click's own code for a wrong command line
    CONFIG = 3  # orch.yaml, a template, a scenario/environment name or a secret is wrong
    SETUP = 4  # the machine lacks something: k6, a recent enough k6, Docker, an image, a folder
    K6_ERROR = 5  # k6 could not run the script (syntax/init error, bad option, crash)
    REFUSED = 6  # the production guard refused the target
    DATABASE = 7  # the database is unreachable, refuses us, or lacks what we need
    REGRESSION = 8  # the run regressed against its baseline
    UNVERIFIED = 9  # orch verify: an endpoint a scenario needs is not confirmed
    LOAD_NOT_DELIVERED = 10  # the run passed its thresholds but k6 did not deliver its load
    THRESHOLDS = 99  # the run crossed one or more thresholds (same as k6)
    INTERRUPTED = 130  # stopped by Ctrl-C / SIGINT / SIGTERM


class OrchError(Exception):
    """Base of all errors orch reports to users."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(OrchError):
    """The configuration, a template, or a name given on the command line is wrong."""

    exit_code = ExitCode.CONFIG


class SetupError(OrchError):
    """A tool or resource orch needs is missing or unusable on this machine."""

    exit_code = ExitCode.SETUP


class K6Error(OrchError):
    """k6 failed to run the test (not a threshold failure)."""

    exit_code = ExitCode.K6_ERROR


class RefusedError(OrchError):
    """The production guard refused to send traffic or write data."""

    exit_code = ExitCode.REFUSED


class DatabaseError(OrchError):
    """The database could not be reached or used."""

    exit_code = ExitCode.DATABASE

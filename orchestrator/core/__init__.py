"""The shared vocabulary of every package: errors and exit codes, run outcomes, orch's paths."""

from __future__ import annotations

from orchestrator.core.errors import (
    ConfigError,
    DatabaseError,
    ExitCode,
    K6Error,
    OrchError,
    RefusedError,
    SetupError,
)
from orchestrator.core.outcome import Outcome, not_judged_exit_code, not_judged_reason
from orchestrator.core.paths import (
    DEFAULT_CONFIG,
    K6_SCRIPTS_DIR,
    PACKAGE_DIR,
    PROJECT_ROOT,
    TEMPLATES_DIR,
)

__all__ = [
    "DEFAULT_CONFIG",
    "K6_SCRIPTS_DIR",
    "PACKAGE_DIR",
    "PROJECT_ROOT",
    "TEMPLATES_DIR",
    "ConfigError",
    "DatabaseError",
    "ExitCode",
    "K6Error",
    "OrchError",
    "Outcome",
    "RefusedError",
    "SetupError",
    "not_judged_exit_code",
    "not_judged_reason",
]

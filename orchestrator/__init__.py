"""orch: orchestrate k6 load tests from Python."""

from __future__ import annotations

__version__ = "0.1.0"

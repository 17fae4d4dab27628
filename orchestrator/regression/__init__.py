"""Runs against each other: comparisons (with significance), baselines and history."""

from __future__ import annotations

from orchestrator.regression.baseline import (
    baseline_path,
    check_against_baseline,
    conclude_run,
    load_side,
    make_baseline,
    read_baseline,
    resolve_baseline_file,
    set_baseline,
)
from orchestrator.regression.compare import Comparison, Side, compare_sides
from orchestrator.regression.compare_report import render_markdown, write_comparison
from orchestrator.regression.history import collect_history, write_history

__all__ = [
    "Comparison",
    "Side",
    "baseline_path",
    "check_against_baseline",
    "collect_history",
    "compare_sides",
    "conclude_run",
    "load_side",
    "make_baseline",
    "read_baseline",
    "render_markdown",
    "resolve_baseline_file",
    "set_baseline",
    "write_comparison",
    "write_history",
]

"""Runs against each other: comparisons, baselines and history."""

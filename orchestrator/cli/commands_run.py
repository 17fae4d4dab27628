"""Commands that render and run scenarios: render, run, doctor."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []

"""The README's two commands stay true: CI runs the same test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from orchestrator.cli import main
from orchestrator.core import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)[:2]


def test_readme_opens_with_two_commands() -> None:
    run_cmd, test_cmd = readme_commands()
    assert "orch run linkedin-scrape" in run_cmd
    assert "pytest" in test_cmd
    first_block = README.index("```bash")
    assert README[:first_block].count("\n") < 5  # the commands come first


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    _, test_cmd = readme_commands()
    assert test_cmd in ci.splitlines()


def test_every_exit_code_is_documented() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \|", README, re.MULTILINE), code


def test_every_command_is_documented() -> None:
    for name in main.commands:
        assert f"orch {name}" in README, name


def test_readme_documents_the_fast_lane() -> None:
    """The fast lane's command is in the README, with its measured time, and the marker it
    deselects is registered (--strict-markers refuses an unregistered one)."""
    found = re.search(r'`python -m pytest -m "not slow"`[^`]*? in (\d+) s\b', README)
    assert found, "the README must give the fast lane's command and its measured time"
    assert int(found.group(1)) < 60
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    markers = pyproject["tool"]["pytest"]["ini_options"]["markers"]
    assert any(marker.startswith("slow:") for marker in markers)

"""The `orch` console script ends the process itself (no library teardown): what a normal
exit does must still happen: exit handlers, threads waited for, output flushed, the status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each starts a Python process (about 0.5 s)

DRIVER = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
def late():
    time.sleep(0.3)
    out.with_suffix(".thread").write_text("done")
threading.Thread(target=late).start()
sys.stdout.write("buffered, not yet flushed")
sys.argv = ["orch", *sys.argv[2:]]
from orchestrator.cli import entry_point
entry_point()
"""


def _drive(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "mark"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_that_succeeds_exits_0_after_handlers_threads_and_output(
    tmp_path: Path,
) -> None:
    done = _drive(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("buffered, not yet flushed")
    assert "orch, version" in done.stdout
    assert (tmp_path / "mark.atexit").read_text() == "ran"
    assert (tmp_path / "mark.thread").read_text() == "done"


def test_a_usage_error_keeps_its_status_2(tmp_path: Path) -> None:
    done = _drive(tmp_path, "no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr
    assert (tmp_path / "mark.atexit").read_text() == "ran"

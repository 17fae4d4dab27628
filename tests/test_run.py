"""`orch run` end to end with the real k6 binary and the real embedded sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode


def run_dirs(config: Path) -> list[Path]:
    results = config.parent / "results"
    return sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []


@pytest.mark.slow
def test_run_writes_a_complete_run_folder(project: Callable[..., Path]) -> None:
    config = project()
    result = CliRunner().invoke(main, ["run", "linkedin-scrape", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # live progress from k6's REST API: elapsed/total, requests so far, error rate, VUs
    assert re.search(r"\d+/2s +\d+ requests +errors +0\.00% +VUs \d+ active/\d+", result.output)
    (run_dir,) = run_dirs(config)
    assert run_dir.name.endswith("_linkedin-scrape_local")
    assert (run_dir / "script" / "linkedin-scrape.js").is_file()
    assert (run_dir / "script" / "k6_scripts" / "checks.js").is_file()
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "k6.log").stat().st_size > 0
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "passed"
    assert manifest["k6_exit_code"] == 0
    assert manifest["exit_code"] == 0
    assert manifest["k6_version"].startswith("v")
    assert manifest["started_at"] < manifest["ended_at"]
    assert (run_dir / manifest["files"]["raw"]).is_file()
    resolved = json.loads((run_dir / "config.resolved.json").read_text())
    assert resolved["load_profile"]["executor"] == "constant-arrival-rate"
    summary = json.loads((run_dir / "summary.json").read_text())
    # 20 req/s for 2 s against the sandbox: every request answered
    assert summary["metrics"]["http_reqs"]["count"] >= 30
    assert summary["metrics"]["http_req_failed"]["value"] == 0


@pytest.mark.slow
def test_crossed_threshold_exits_99_and_keeps_files(project: Callable[..., Path]) -> None:
    config = project()
    result = CliRunner().invoke(
        main, ["run", "linkedin-scrape", "--profile", "impossible", "--config", str(config)]
    )
    assert result.exit_code == ExitCode.THRESHOLDS == 99, result.output
    (run_dir,) = run_dirs(config)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "thresholds_failed"
    assert manifest["k6_exit_code"] == 99
    assert (run_dir / "summary.json").is_file()


@pytest.mark.slow
def test_script_error_exits_5(project: Callable[..., Path]) -> None:
    config = project(
        extra_yaml="""
  broken:
    template: broken.js.j2
    default_profile: once
    profiles:
      once: {executor: shared-iterations, vus: 1, iterations: 1}
"""
    )
    (config.parent / "templates" / "broken.js.j2").write_text("export default function ( {\n")
    result = CliRunner().invoke(main, ["run", "broken", "--config", str(config)])
    assert result.exit_code == ExitCode.K6_ERROR, result.output
    (run_dir,) = run_dirs(config)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "k6_error"
    assert manifest["k6_exit_code"] == 107
    assert (
        "SyntaxError" in (run_dir / "k6.log").read_text()
        or "Unexpected" in (run_dir / "k6.log").read_text()
    )


def _start_orch(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            "linkedin-scrape",
            "--config",
            str(config),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        # a process group of its own, like a terminal's foreground job
        start_new_session=True,
    )


def _wait_for_progress(config: Path, timeout: float = 30.0) -> Path:
    """Wait until k6 has written raw output, i.e. the run is under way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in run_dirs(config):
            raw = run_dir / "raw.csv"
            if raw.is_file() and raw.stat().st_size > 500:
                return run_dir
        time.sleep(0.2)
    raise AssertionError("the run never started writing raw output")


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_marks_interrupted(project: Callable[..., Path]) -> None:
    config = project()
    proc = _start_orch(config, "--profile", "long")
    try:
        run_dir = _wait_for_progress(config)
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "interrupted"
    assert manifest["duration_s"] < 50
    # k6 stopped gracefully: it wrote its summary and its raw output is kept
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / manifest["files"]["raw"]).is_file()
    # the sandbox outlived k6 (it is not in the terminal's group): no request failed
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["metrics"]["http_req_failed"]["value"] == 0


@pytest.mark.slow
def test_sigterm_is_an_interrupt_too(project: Callable[..., Path]) -> None:
    config = project()
    proc = _start_orch(config, "--profile", "long")
    try:
        run_dir = _wait_for_progress(config)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert json.loads((run_dir / "run.json").read_text())["outcome"] == "interrupted"


@pytest.mark.slow
def test_k6_killed_mid_run_is_reported_as_crashed(
    project: Callable[..., Path], tmp_path: Path
) -> None:
    """A k6 that dies by SIGKILL leaves its outputs, and run.json says it crashed."""
    import shutil

    real_k6 = shutil.which("k6")
    assert real_k6
    pid_file = tmp_path / "k6.pid"
    wrapper = tmp_path / "k6-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho $$ > {pid_file}\nexec {real_k6} "$@"\n')
    wrapper.chmod(0o755)
    config = project()
    proc = _start_orch(config, "--profile", "long", "--k6", str(wrapper))
    try:
        run_dir = _wait_for_progress(config)
        os.kill(int(pid_file.read_text().split()[-1]), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.K6_ERROR, stderr
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["outcome"] == "crashed"
    assert manifest["k6_signal"] == signal.SIGKILL
    assert (run_dir / "k6.log").is_file()
    assert any((run_dir / name).is_file() for name in ("raw.csv", manifest["files"]["raw"]))


@pytest.mark.slow
def test_secrets_reach_k6_but_no_file(project: Callable[..., Path]) -> None:
    """A secret is available to the script through __ENV but lands in no written file."""
    sentinel = "sentinel-secret-7c1e9"
    config = project(
        extra_yaml="""
  echo-secret:
    template: echo_secret.js.j2
    default_profile: once
    profiles:
      once: {executor: shared-iterations, vus: 1, iterations: 1}
"""
    )
    text = config.read_text().replace(
        "    sandbox:\n", "    secrets:\n      MY_TOKEN: ORCH_TEST_TOKEN\n    sandbox:\n", 1
    )
    config.write_text(text)
    (config.parent / "templates" / "echo_secret.js.j2").write_text(
        "export const options = {{ options | tojson }};\n"
        "export default function () {\n"
        "  if (!__ENV.MY_TOKEN || __ENV.MY_TOKEN.length < 8) { throw new Error('no secret'); }\n"
        "  console.log(`token is ${__ENV.MY_TOKEN}`);\n"
        "}\n"
    )
    result = CliRunner().invoke(
        main,
        ["run", "echo-secret", "--config", str(config)],
        env={"ORCH_TEST_TOKEN": sentinel},
    )
    assert result.exit_code == 0, result.output
    assert sentinel not in result.output
    (run_dir,) = run_dirs(config)
    log = (run_dir / "k6.log").read_text()
    assert "token is ***" in log  # k6 saw it; the log shows it redacted
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), path

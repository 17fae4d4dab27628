"""How much wall time `orch run` adds beyond k6's own run (issue 2's target: < 2.5 s).

Runs the same rendered linkedin-scrape script at 500 req/s for 20 s against the embedded
sandbox (already running, on loopback), once as a plain `k6 run` and once as `orch run`
(which also renders, writes the run folder, compacts the raw output, computes the figures,
draws the charts and writes the report). Prints each wall time and the difference.

Usage: python benchmarks/run_overhead.py [--repeat N] [--rate R] [--duration 20s]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sandbox import open_webhook  # noqa: E402
from orchestrator.config import SandboxSettings  # noqa: E402
from orchestrator.execution.progress import free_loopback_port  # noqa: E402
from orchestrator.target import start_sandbox  # noqa: E402

BENCH_PROFILE = """
      bench:
        executor: constant-arrival-rate
        rate: {rate}
        timeUnit: 1s
        duration: {duration}
        preAllocatedVUs: 20
        maxVUs: 200
"""


def make_project(folder: Path, port: int, rate: int, duration: str) -> Path:
    """A copy of orch's project with the sandbox port and a `bench` profile."""
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copytree(ROOT / "k6_scripts", folder / "k6_scripts")
    shutil.copytree(ROOT / "workflows", folder / "workflows")  # the scenario's N8N export
    text = (ROOT / "orch.yaml").read_text()
    text = text.replace("http://127.0.0.1:8765", f"http://127.0.0.1:{port}")
    marker = "    profiles:\n"
    head, tail = text.split(marker, 1)
    text = head + marker + BENCH_PROFILE.format(rate=rate, duration=duration).lstrip("\n") + tail
    config = folder / "orch.yaml"
    config.write_text(text)
    return config


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 99):
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return elapsed, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()

    port = free_loopback_port()
    k6 = shutil.which("k6") or "k6"
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(
        SandboxSettings(port=port, latency_ms_median=1, latency_ms_p95=3),
        n8n=open_webhook(Path(tmp)),  # the shipped export, without auth: it accepts any key
    ) as sandbox:
        folder = Path(tmp)
        config = make_project(folder, port, args.rate, args.duration)
        env = {
            **os.environ,
            "ORCH_N8N_BASE_URL": sandbox.url,
            "ORCH_BASE_URL": sandbox.url,
            # the local environment sends an API key; this sandbox accepts any
            "WEBHOOK_SECRET": "benchmark-key",
            "ORCH_SANDBOX_WEBHOOK_SECRET": "benchmark-key",
        }
        rendered = subprocess.run(
            [sys.executable, "-m", "orchestrator", "render", "linkedin-scrape", "--profile",
             "bench", "--config", str(config), "--out", str(folder / "plain")],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.strip()
        plain: list[float] = []
        orch: list[float] = []
        for round_no in range(1, args.repeat + 1):
            seconds, code = timed([k6, "run", "--quiet", rendered], env)
            if code != 0:
                raise SystemExit(f"plain k6 run failed (exit {code}): the comparison is void")
            plain.append(seconds)
            print(f"round {round_no}: plain k6 run  {seconds:6.2f} s (exit {code})")
            seconds, code = timed(
                [sys.executable, "-m", "orchestrator", "run", "linkedin-scrape", "--profile",
                 "bench", "--runner", "native", "--config", str(config)],
                env,
            )
            orch.append(seconds)
            print(f"round {round_no}: orch run      {seconds:6.2f} s (exit {code})")
        runs = sorted((folder / "results").iterdir())
        raw = [p for p in runs[-1].iterdir() if p.name.startswith("raw.")]
        print(f"\n{args.rate} req/s for {args.duration}, {args.repeat} rounds (median):")
        print(f"  plain k6 run: {statistics.median(plain):6.2f} s")
        print(f"  orch run:     {statistics.median(orch):6.2f} s")
        print(f"  orch adds:    {statistics.median(orch) - statistics.median(plain):6.2f} s "
              f"(target < 2.5 s; Taurus 1.17 adds 2.8 s)")
        for path in raw:
            print(f"  raw output: {path.name}, {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

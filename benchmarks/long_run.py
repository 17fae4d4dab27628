"""A long orch run stays flat: folder size, ingest time and orch's memory (issue 15).

Runs ``orch run linkedin-scrape`` once at a constant arrival rate against an orch sandbox
on loopback (one that belongs to this benchmark), samples the memory of orch's process and
of the whole tree every 50 ms, and prints:

- the run folder's size and the raw file's, and the requests k6 made;
- orch's peak RSS while k6 runs, at each tenth of the run (flat means it does not grow
  with the run's length), and the whole tree's peak;
- the time from k6's end to orch's exit (raw compaction, figures, charts, report);
- the ingest time of the folder on its own (``ingest_raw`` of the compacted raw file, in a
  fresh process) and a full ``orch report`` with the charts drawn again.

The issue's two runs:

    python benchmarks/long_run.py --rate 1000 --duration 5m    # stress
    python benchmarks/long_run.py --rate 100 --duration 30m    # soak
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run_overhead import make_project  # noqa: E402
from benchmarks.sandbox import open_webhook  # noqa: E402
from orchestrator.config import SandboxSettings  # noqa: E402
from orchestrator.execution.progress import free_loopback_port  # noqa: E402
from orchestrator.target import start_sandbox  # noqa: E402

MB = 1024 * 1024
INGEST = """
import sys, time
from pathlib import Path
started = time.perf_counter()
from orchestrator.results.ingest import ingest_raw
imported = time.perf_counter()
agg = ingest_raw(Path(sys.argv[1]))
done = time.perf_counter()
print(f"{imported - started:.3f} {done - imported:.3f} {agg.total_points}")
"""


@dataclass
class _Trace:
    """orch's RSS while k6 runs (time, MB), the whole tree's peak, and k6's end."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    others: list[tuple[float, float]] = field(default_factory=list)  # orch's other processes
    tree_peak: float = 0.0
    k6_ended_at: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        root = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                kids = root.children(recursive=True)
                rss = root.memory_info().rss
            except psutil.Error:
                break
            total, k6_running, others = rss, False, 0.0
            for kid in kids:
                try:
                    total += kid.memory_info().rss
                    if kid.name() == "k6":
                        k6_running = True
                    else:  # the report worker (a fork: its PSS counts shared pages once)
                        others += kid.memory_full_info().pss
                except psutil.Error:
                    pass
            now = time.perf_counter()
            self.tree_peak = max(self.tree_peak, total / MB)
            if k6_running:  # the last sample with k6 (orch also runs `k6 version` first)
                self.k6_ended_at = now
                self.samples.append((now, rss / MB))
                self.others.append((now, others / MB))
            time.sleep(0.05)


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / MB


def _tenths(samples: list[tuple[float, float]]) -> list[float]:
    """orch's peak RSS in each tenth of k6's run."""
    if not samples:
        return []
    start, end = samples[0][0], samples[-1][0]
    width = (end - start) / 10 or 1.0
    peaks = [0.0] * 10
    for at, rss in samples:
        slot = min(int((at - start) / width), 9)
        peaks[slot] = max(peaks[slot], rss)
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", default="5m")
    args = parser.parse_args()

    port = free_loopback_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_sandbox(
            SandboxSettings(port=port, latency_ms_median=1, latency_ms_p95=3),
            n8n=open_webhook(Path(tmp)),
        ) as sandbox,
    ):
        folder = Path(tmp)
        config = make_project(folder, port, args.rate, args.duration)
        env = {**os.environ, "ORCH_N8N_BASE_URL": sandbox.url, "ORCH_BASE_URL": sandbox.url,
               "WEBHOOK_SECRET": "benchmark-key", "ORCH_SANDBOX_WEBHOOK_SECRET": "benchmark-key",
               "MPLBACKEND": "Agg"}  # fmt: skip
        command = [sys.executable, "-m", "orchestrator", "run", "linkedin-scrape", "--profile",
                   "bench", "--runner", "native", "--config", str(config)]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        trace = _Trace(proc.pid)
        sampler = threading.Thread(target=trace.run, daemon=True)
        sampler.start()
        out, err = proc.communicate()
        ended = time.perf_counter()
        trace.stop.set()
        sampler.join()
        if proc.returncode not in (0, 99):
            print(out.decode()[-1500:], err.decode()[-1500:], file=sys.stderr)
        run_dir = sorted(p for p in (folder / "results").iterdir() if p.is_dir())[-1]
        results = json.loads((run_dir / "results.json").read_text())
        raw = next(run_dir.glob("raw.*"))

        ingest = subprocess.run(
            [sys.executable, "-c", INGEST, str(raw)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        (run_dir / "charts" / ".inputs.json").unlink(missing_ok=True)
        report_started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "orchestrator", "report", str(run_dir)], env=env,
                       capture_output=True, check=True)  # fmt: skip
        report_s = time.perf_counter() - report_started

        tail = ended - trace.k6_ended_at if trace.k6_ended_at else float("nan")
        tenths = _tenths(trace.samples)
        requests = results["overall"]["requests"]
        print(f"{args.rate} req/s for {args.duration}: orch exit {proc.returncode}, "
              f"{requests:,} requests, wall {ended - started:.1f} s")  # fmt: skip
        print(f"run folder {_size_mb(run_dir):.1f} MB, {raw.name} {raw.stat().st_size / MB:.1f} MB"
              f" ({int(ingest[2]):,} points)")  # fmt: skip
        print("orch's RSS while k6 runs, peak per tenth of the run, MB: "
              + " ".join(f"{p:.0f}" for p in tenths))  # fmt: skip
        print("orch's other processes (report worker), PSS while k6 runs, peak per tenth, MB: "
              + " ".join(f"{p:.0f}" for p in _tenths(trace.others)))  # fmt: skip
        print(f"whole tree's peak RSS {trace.tree_peak:.0f} MB")
        print(f"k6's end to orch's exit {tail:.2f} s (compaction, figures, charts, report)")
        print(f"ingest of {raw.name} alone: {float(ingest[1]):.2f} s (+ {float(ingest[0]):.2f} s"
              f" of imports); orch report, charts redrawn: {report_s:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()

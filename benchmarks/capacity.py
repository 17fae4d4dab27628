"""Load capacity of orch against k6 writing the same raw output, paired round by round.

Issue 15's capacity benchmark on its own: 20 VUs with no sleep for a fixed time
(constant-vus) against an orch sandbox on loopback, arms alternated in each round:
k6 ``--out csv`` (the raw output orch needs for exact percentiles), ``orch run``, and
``orch run`` with ``ORCH_REPORT_WORKER=0`` (no report worker warming up while k6 runs).
Prints each arm's requests per round and its ratio to k6 ``--out csv`` of the same round
(plain k6 varies by ±10 % between rounds; the paired ratio less). The machine must be
otherwise idle.

    python benchmarks/capacity.py [--rounds 5] [--duration 10s]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.peer import (  # noqa: E402
    bench_project,
    render_plain,
    requests_of_k6,
    requests_of_orch,
)

ARMS: dict[str, dict[str, str] | None] = {
    "k6 --out csv": None,
    "orch run": {},
    "orch run, ORCH_REPORT_WORKER=0": {"ORCH_REPORT_WORKER": "0"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", default="10s")
    args = parser.parse_args()

    k6 = shutil.which("k6") or "k6"
    with bench_project(500, "20s", args.duration) as (folder, config, env):
        script = render_plain(config, "capacity", folder, env)
        summary, csv = folder / "summary.json", folder / "capacity.csv"
        requests: dict[str, list[int]] = {arm: [] for arm in ARMS}
        for round_no in range(1, args.rounds + 1):
            for arm, extra in ARMS.items():
                if extra is None:
                    requests[arm].append(requests_of_k6(
                        [k6, "run", "--quiet", "--summary-export", str(summary), "--out",
                         f"csv={csv}", script], summary, env))  # fmt: skip
                    csv.unlink(missing_ok=True)
                else:
                    requests[arm].append(requests_of_orch("capacity", config, {**env, **extra}))
            print(f"round {round_no}: " + ", ".join(f"{a} {v[-1]:,}" for a, v in requests.items()))

    base = requests["k6 --out csv"]
    print(f"\n20 VUs, no sleep, {args.duration}, {args.rounds} rounds; × k6 --out csv, same round:")
    for arm, values in requests.items():
        if arm == "k6 --out csv":
            continue
        paired = sorted(v / b for v, b in zip(values, base, strict=True))
        print(f"  {arm:<32} {', '.join(f'{r:.3f}' for r in paired)}; median "
              f"{statistics.median(paired):.3f}×")  # fmt: skip


if __name__ == "__main__":
    main()

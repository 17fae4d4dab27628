"""The cost of the allow-list options on k6's throughput: the same script with and without
the `blacklistIPs`/`blockHostnames` that orch renders, alternating, several rounds.

Target (issue 12): under 2 % fewer requests/s with the options. Two cases: connections
kept alive (what the scenarios do: the list is checked when a connection is opened) and
`noConnectionReuse` (a new connection per request: the list is checked every time).

    python benchmarks/egress_options.py [--rounds 3] [--vus 10] [--duration 8s] [--k6 PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sandbox import HOOK, cpu_idle_share, open_webhook
from orchestrator.config import SandboxSettings
from orchestrator.config.egress import LOOPBACK_NETWORKS, EgressPolicy, Production, complement
from orchestrator.target import start_sandbox

TARGET_LOSS = 0.02

SCRIPT = """
import http from 'k6/http';

export const options = %s;
const url = `${__ENV.HOOK_URL}/${__VU}-`;  // the N8N webhook the shipped export serves
const body = JSON.stringify({ profileUrl: 'https://www.linkedin.com/in/prospect' });
const params = { headers: { 'Content-Type': 'application/json' }, tags: { name: 'webhook' } };

export default function () {
  http.post(url + __ITER, body, params);
}
"""


def allow_list_options() -> dict[str, list[str]]:
    """The options orch renders for a local environment with production declared as a
    name and an address (the shipped config's shape)."""
    policy = EgressPolicy(
        environment="local",
        kind="local",
        names=frozenset(),
        networks=LOOPBACK_NETWORKS,
        production=Production(
            names=frozenset({"api.sales-machine.com", "n8n.srv997159.hstgr.cloud"}),
            declared=True,
        ),
    )
    return policy.k6_options()


def run_once(k6: str, script: Path, hook_url: str, vus: int, duration: str) -> float:
    summary = script.with_suffix(".summary.json")
    command = [
        k6, "run", "--quiet", "--no-color", "--vus", str(vus), "--duration", duration,
        "--summary-export", str(summary), "-e", f"HOOK_URL={hook_url}", str(script),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"k6 exited {done.returncode}: {done.stdout}{done.stderr}")
    metrics = json.loads(summary.read_text())["metrics"]
    if metrics["http_req_failed"]["value"]:
        raise SystemExit("requests failed: the options blocked the target")
    return float(metrics["http_reqs"]["rate"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vus", type=int, default=10)
    parser.add_argument("--duration", default="8s")
    parser.add_argument("--k6", default=os.environ.get("ORCH_K6") or shutil.which("k6"))
    args = parser.parse_args()
    if not args.k6:
        print("k6 not found: put it on PATH or set ORCH_K6", file=sys.stderr)
        return 2
    idle = cpu_idle_share()
    if idle is not None:
        print(f"CPU idle before the run: {idle:.0%} (other load skews the figures)")
    guarded = allow_list_options()
    print(
        f"allow-list options: {len(guarded['blacklistIPs'])} blocked networks, "
        f"{len(guarded.get('blockHostnames', []))} blocked names "
        f"(complement of {len(complement(LOOPBACK_NETWORKS))} pieces)"
    )
    settings = SandboxSettings(port=0, latency_ms_median=0, latency_ms_p95=0)
    verdicts = []
    with (
        tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp,
        start_sandbox(
            settings, log_path=Path(tmp, "sandbox.log"), n8n=open_webhook(Path(tmp))
        ) as sandbox,
    ):
        for reuse in (True, False):
            extra = {} if reuse else {"noConnectionReuse": True}
            arms = {"plain": dict(extra), "allow-list": {**extra, **guarded}}
            scripts = {}
            for name, options in arms.items():
                scripts[name] = Path(tmp, f"{name}-{reuse}.js")
                scripts[name].write_text(SCRIPT % json.dumps(options))
            rates: dict[str, list[float]] = {name: [] for name in arms}
            for _ in range(args.rounds):
                for name in arms:
                    rates[name].append(
                        run_once(
                            args.k6, scripts[name], sandbox.url + HOOK, args.vus, args.duration
                        )
                    )
            plain = statistics.median(rates["plain"])
            listed = statistics.median(rates["allow-list"])
            loss = 1 - listed / plain
            label = "keep-alive" if reuse else "noConnectionReuse"
            print(
                f"{label:18s} plain {plain:8,.0f} req/s   with allow-list {listed:8,.0f} "
                f"req/s   change {-loss:+.1%}   (rounds: "
                + ", ".join(
                    f"{a:,.0f}/{b:,.0f}"
                    for a, b in zip(rates["plain"], rates["allow-list"], strict=True)
                )
                + ")"
            )
            verdicts.append(loss < TARGET_LOSS)
    verdict = "PASS" if all(verdicts) else "MISS"
    print(f"verdict {verdict} (target: under {TARGET_LOSS:.0%} loss)")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

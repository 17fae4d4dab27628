"""The cost of sampling the database during the load: the target's latency with and
without it, the same load alternating, several rounds.

A throw-away PostgreSQL 15 with pg_stat_statements (tests/pg15.py), a loopback service
that looks customers up by an indexed e-mail (tests/db_service.py: one query of about
0.1 ms, so that any cost of the sampler would show), and `orch run` at a constant arrival
rate with `database.sample_interval_s` 0 (off), 5 (the default) and 1, in turn (each in
each position, round by round). Prints the median p50/p95/mean latency of each setting,
the time of one sample, and the per-round differences against no sampling.

    python benchmarks/db_sampling.py [--rounds 3] [--rate 100] [--duration 8s]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import K6_SCRIPTS_DIR
from orchestrator.results import read_results
from tests.conftest import free_port
from tests.db_service import customer_service
from tests.pg15 import start_cluster

ROWS = 200_000
TEMPLATE = """\
import { request } from './k6_scripts/http.js';
export const options = {{ options | tojson }};
const BASE = __ENV[{{ base_url_var }}] || {{ base_url }};
export default function () {
  const n = (__VU * 7919 + __ITER * 31) % %ROWS%;
  request('GET', `${BASE}/customer?email=user${n}@example.com`, null, { tags: { name: 'c' } });
}
"""
PROJECT = """\
defaults: {{environment: local, results_dir: results, runner: native}}
database: {{sample_interval_s: {interval}}}
environments:
  local: {{kind: local, base_url: "{base_url}", database_url: "{database_url}"}}
scenarios:
  lookup:
    template: lookup.js.j2
    default_profile: p
    profiles:
      p: {{executor: constant-arrival-rate, rate: {rate}, timeUnit: 1s, duration: {duration},
          preAllocatedVUs: 10, maxVUs: 20}}
"""


def prepare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("CREATE TABLE customers (id bigint PRIMARY KEY, email text, name text)")
        conn.execute(
            "INSERT INTO customers SELECT i, 'user' || i || '@example.com', 'Customer ' || i "
            "FROM generate_series(0, %s) AS i", (ROWS - 1,),
        )  # fmt: skip
        conn.execute("CREATE INDEX ON customers (email)")
        conn.execute("VACUUM ANALYZE customers")


def one_run(root: Path, interval: float, base_url: str, database_url: str, args: argparse.Namespace
            ) -> dict[str, float | None]:  # fmt: skip
    config = root / "orch.yaml"
    text = PROJECT.format(interval=interval, base_url=base_url, rate=args.rate,
                          database_url=database_url, duration=args.duration)  # fmt: skip
    config.write_text(text)
    before = set((root / "results").glob("*")) if (root / "results").exists() else set()
    result = CliRunner().invoke(main, ["run", "lookup", "--config", str(config)])
    if result.exit_code != 0:
        raise SystemExit(f"orch run failed ({result.exit_code}):\n{result.output}")
    (run_dir,) = set((root / "results").glob("*")) - before
    doc = read_results(run_dir / "results.json")
    assert doc.overall is not None
    lat = doc.overall.latency_ms
    cost = doc.database.sample_cost_ms if doc.database else None
    if interval > 0 and cost is None:
        notes = doc.database.notes if doc.database else ["no database.json"]
        raise SystemExit(f"the database was not sampled in {run_dir}: {notes}")
    shutil.rmtree(run_dir)
    return {"p50": lat.p50, "p95": lat.p95, "avg": lat.avg, "sample_ms": cost}


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--duration", default="8s")
    args = parser.parse_args()
    cluster = start_cluster(free_port())
    root = Path(tempfile.mkdtemp(prefix="orch-bench-db-"))
    try:
        prepare(cluster.url())
        shutil.copytree(K6_SCRIPTS_DIR, root / "k6_scripts")
        (root / "templates").mkdir()
        (root / "templates" / "lookup.js.j2").write_text(TEMPLATE.replace("%ROWS%", str(ROWS)))
        settings = (0.0, 5.0, 1.0)
        seen: dict[float, list[dict[str, float | None]]] = {s: [] for s in settings}
        with customer_service(cluster.url()) as service:
            for round_ in range(args.rounds):
                shift = round_ % len(settings)  # each setting in each position, in turn
                for interval in settings[shift:] + settings[:shift]:
                    figures = one_run(root, interval, service.url, cluster.url(), args)
                    seen[interval].append(figures)
                    print(f"round {round_ + 1} interval {interval:g}: {json.dumps(figures)}")
        print(f"\n{args.rate} req/s for {args.duration}, {args.rounds} rounds, medians:")
        print(f"{'sampling':>12} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'1 sample ms':>12}")
        for interval in settings:
            rows = seen[interval]

            def med(key: str, rows: list[dict[str, float | None]] = rows) -> float:
                values = [float(r[key]) for r in rows if r[key] is not None]
                return statistics.median(values) if values else float("nan")

            name = "off" if interval == 0 else f"every {interval:g} s"
            print(f"{name:>12} {med('p50'):8.3f} {med('p95'):8.3f} {med('avg'):8.3f} "
                  f"{med('sample_ms'):12.2f}")  # fmt: skip
        print("\npaired by round, against off (median difference, and the rounds' range):")
        for interval in settings[1:]:
            for key in ("p50", "p95"):
                diffs = sorted(float(on[key] or 0) - float(off[key] or 0)
                               for on, off in zip(seen[interval], seen[0.0], strict=True))
                print(f"  every {interval:g} s {key}: {statistics.median(diffs):+.3f} ms "
                      f"({diffs[0]:+.3f} .. {diffs[-1]:+.3f})")  # fmt: skip
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main_()

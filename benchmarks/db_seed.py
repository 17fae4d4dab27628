"""Benchmark `orch db seed`: load N prospects (default 1,000,000) into a fresh embedded
PostgreSQL and print the time per table. Target: at least 1M prospects in under 60 s.

Run by hand:  python benchmarks/db_seed.py [--scale 1000000] [--compare]

With --compare it then runs `explain --compare` on the seeded data and prints the
before/after table that docs/database.md quotes.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
import time
from pathlib import Path

from orchestrator.config import DatabaseSettings
from orchestrator.db import (
    compare_with_indexes,
    connect,
    ensure_local_database,
    plan_indexes,
    relation_names,
    seed_database,
    start_embedded_server,
    verify_indexes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    settings = DatabaseSettings()
    tmp = tempfile.mkdtemp(prefix="orch-bench-")
    atexit.register(shutil.rmtree, tmp, True)  # after pgserver has stopped the server
    # pgserver stops the server and deletes its folder when this process exits
    start_embedded_server(Path(tmp) / "pgdata", cleanup_mode="delete")
    url = ensure_local_database(Path(tmp) / "pgdata")
    with connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        result = seed_database(conn, settings.schema_name, args.scale)
        elapsed = time.perf_counter() - started
    for table, rows in result.rows.items():
        print(f"{table:22s} {rows:>10,d} rows  {result.seconds[table]:6.1f} s")
    print(f"{'vacuum analyze':22s} {'':>10s}       {result.seconds['vacuum_analyze']:6.1f} s")
    print(f"foreign-key checks skipped during COPY: {result.skipped_row_triggers}")
    print(f"total {elapsed:.1f} s for {args.scale:,d} prospects "
          f"({'OK' if elapsed < 60 else 'SLOWER THAN'} the 60 s target)")
    if args.compare:
        with connect(url) as conn:
            report = verify_indexes(conn, settings)
            taken = relation_names(conn, settings.schema_name)
        planned = plan_indexes(settings.schema_name, report.missing, taken)
        comparison = compare_with_indexes(
            url, settings.schema_name, settings.tables, [p.statement for p in planned]
        )
        print(f"\nmode: {comparison.mode}; index build + ANALYZE {comparison.build_ms:.0f} ms")
        print("| query | before (ms) | after (ms) | speed-up | plan before | plan after |")
        print("|---|---:|---:|---:|---|---|")
        for item in comparison.comparisons:
            print(f"| {item.before.name} | {item.before.execution_ms:.2f} | "
                  f"{item.after.execution_ms:.2f} | {item.speedup:.1f}× | "
                  f"{item.before.shape} | {item.after.shape} |")


if __name__ == "__main__":
    main()

"""Ingest speed and memory, by hand: `python benchmarks/ingest.py [--points 5000000]`.

Generates realistic k6 raw output of the requested size in both of k6's formats, by
repeating the lines of a real k6 run (from a short run of the real k6 binary against a
loopback target, or ``--sample DIR`` holding ``raw.csv`` and ``raw.json``) with their
timestamps shifted, so the file looks like one long run. Then times, each in a fresh child
process so peak RSS figures do not pollute each other:

- ``finalize_raw`` (CSV → the compressed file ``orch run`` keeps);
- the project's ingest of that file (target: 5M points ≤ 2.5 s, peak RSS < 512 MiB);
- the project's ingest of NDJSON from elsewhere (target: 5M lines ≤ 4 s, < 768 MiB);
- the same at twice the size (the peak must not double);
- the naive ``pd.read_json(lines=True)`` on 1M NDJSON lines (ours must be at least 15 times faster).

Generated files go to a temporary folder under /tmp and are deleted at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

_TIME_RE = re.compile(r'"time":"([^"]+)"')


def _sample(sample_dir: Path | None) -> Path:
    """A folder with raw.csv and raw.json from one real k6 run."""
    if sample_dir is not None:
        return sample_dir
    from k6_outputs import NORMAL_OPTIONS, run_k6

    folder = Path(tempfile.mkdtemp(prefix="ingestbench-sample-", dir="/tmp"))
    run = run_k6(folder, "sample", NORMAL_OPTIONS)
    if run.exit_code != 0:
        raise SystemExit(f"the sample k6 run failed with exit code {run.exit_code}")
    return folder


def _parse_rfc3339(text: str) -> float:
    """Epoch seconds from k6's RFC 3339 time with up to 9 fraction digits."""
    main, _, rest = text.partition(".")
    frac = rest.rstrip("Z")
    stamp = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return stamp + (float("0." + frac) if frac else 0.0)


def _format_rfc3339(epoch: float) -> str:
    """k6-style RFC 3339 UTC time with nanosecond digits."""
    whole = int(epoch)
    nanos = round((epoch - whole) * 1e9)
    base = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def generate_ndjson(sample: Path, out: Path, lines: int) -> None:
    """Write ``lines`` NDJSON lines: k6's Metric lines once, then its Point lines repeated."""
    metric_lines: list[str] = []
    points: list[tuple[float, str, str]] = []
    with open(sample / "raw.json", encoding="utf-8") as fh:
        for line in fh:
            if '"type":"Metric"' in line:
                metric_lines.append(line)
                continue
            m = _TIME_RE.search(line)
            if m is None:
                continue
            points.append((_parse_rfc3339(m.group(1)), line[: m.start(1)], line[m.end(1) :]))
    t0 = min(p[0] for p in points)
    span = max(p[0] for p in points) - t0 + 0.001
    rel = [(p[0] - t0, p[1], p[2]) for p in points]
    written = 0
    block = 0
    with open(out, "w", encoding="utf-8") as fh:
        fh.writelines(metric_lines)
        written += len(metric_lines)
        while written < lines:
            shift = t0 + block * span
            chunk = []
            for offset, head, tail in rel:
                chunk.append(f"{head}{_format_rfc3339(shift + offset)}{tail}")
                written += 1
                if written >= lines:
                    break
            fh.writelines(chunk)
            block += 1


def generate_csv(sample: Path, out: Path, lines: int) -> None:
    """Write ``lines`` CSV data rows: k6's rows repeated with their seconds shifted."""
    with open(sample / "raw.csv", encoding="utf-8") as fh:
        header = fh.readline()
        rows: list[tuple[str, int, str]] = []
        for line in fh:
            metric, stamp_text, rest = line.split(",", 2)
            rows.append((metric, int(stamp_text), rest))
    t0 = min(r[1] for r in rows)
    span = max(r[1] for r in rows) - t0 + 1
    written = 0
    block = 0
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(header)
        while written < lines:
            shift = block * span
            chunk = []
            for metric, stamp, rest in rows:
                chunk.append(f"{metric},{stamp + shift},{rest}")
                written += 1
                if written >= lines:
                    break
            fh.writelines(chunk)
            block += 1


def _child(task: str, path: str) -> None:
    """Run one measured task in this (child) process and print a JSON line."""
    start = time.perf_counter()
    if task == "ours":
        from orchestrator.results import ingest_raw

        agg = ingest_raw(Path(path))
        detail = f"{agg.total_points} points, {agg.requests} requests"
    elif task == "finalize":
        from orchestrator.results import finalize_raw

        out = finalize_raw(Path(path))
        detail = f"{out.name}, {out.stat().st_size / 1e6:.1f} MB"
    elif task == "naive":
        import pandas as pd

        frame = pd.read_json(path, lines=True)
        detail = f"{len(frame)} rows"
    else:
        raise SystemExit(f"unknown task {task}")
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"seconds": seconds, "detail": f"{detail}; cpu {cpu:.2f} s"}))


def _peak_of(task: str, path: Path) -> tuple[float, float, str]:
    """Measure in a grandchild so RUSAGE_CHILDREN holds exactly that one process's peak."""
    code = (
        "import resource, subprocess, sys, json\n"
        f"p = subprocess.run([sys.executable, {__file__!r}, '--child', {task!r}, {str(path)!r}],"
        " capture_output=True, text=True)\n"
        "if p.returncode: sys.stderr.write(p.stderr); sys.exit(1)\n"
        "r = json.loads(p.stdout.strip().splitlines()[-1])\n"
        "r['peak_kib'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps(r))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{task} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), result["peak_kib"] / 1024.0, str(result["detail"])


def main() -> None:
    """Generate files, time every reader, print a table, delete the files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--naive-lines", type=int, default=1_000_000)
    parser.add_argument("--sample", type=Path, default=None)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    work = Path(tempfile.mkdtemp(prefix="ingestbench-", dir="/tmp"))
    sample = _sample(args.sample)
    rows: list[tuple[str, float, float, str]] = []

    class _Rows(list[tuple[str, float, float, str]]):
        def append(self, row: tuple[str, float, float, str]) -> None:
            super().append(row)
            print(f"  {row[0]:<44} {row[1]:8.2f} s {row[2]:8.0f} MiB  {row[3]}", flush=True)

    rows = _Rows()
    try:
        n = args.points
        for size in (n, 2 * n):
            run_dir = work / f"run{size}"
            run_dir.mkdir()
            t = time.perf_counter()
            generate_csv(sample, run_dir / "raw.csv", size)
            print(f"generated {size} CSV rows in {time.perf_counter() - t:.1f} s", flush=True)
            sec, peak, detail = _peak_of("finalize", run_dir)
            rows.append((f"finalize_raw, {size:,} CSV rows", sec, peak, detail))
            kept = next(p for p in run_dir.iterdir() if p.name.startswith("raw."))
            sec, peak, detail = _peak_of("ours", kept)
            rows.append((f"ingest {kept.name}, {size:,} points", sec, peak, detail))
            shutil.rmtree(run_dir)

            ndjson = work / f"raw{size}.json"
            t = time.perf_counter()
            generate_ndjson(sample, ndjson, size)
            print(f"generated {size} NDJSON lines in {time.perf_counter() - t:.1f} s", flush=True)
            sec, peak, detail = _peak_of("ours", ndjson)
            rows.append((f"ingest NDJSON, {size:,} lines", sec, peak, detail))
            gz = work / f"raw{size}.json.gz"
            with open(ndjson, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            ndjson.unlink()
            sec, peak, detail = _peak_of("ours", gz)
            rows.append((f"ingest NDJSON.gz, {size:,} lines", sec, peak, detail))
            gz.unlink()

        ndjson = work / "naive.json"
        generate_ndjson(sample, ndjson, args.naive_lines)
        ours, ours_peak, _ = _peak_of("ours", ndjson)
        rows.append((f"ingest NDJSON, {args.naive_lines:,} lines", ours, ours_peak, ""))
        if not args.skip_naive:
            sec, peak, detail = _peak_of("naive", ndjson)
            rows.append((f"naive pd.read_json, {args.naive_lines:,} lines", sec, peak, detail))
            print(f"speed-up vs naive on {args.naive_lines:,} NDJSON lines: {sec / ours:.1f}×")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.sample is None:
            shutil.rmtree(sample, ignore_errors=True)

    print(f"\n{'task':<44} {'seconds':>8} {'peak RSS MiB':>13}  detail")
    for label, sec, peak, detail in rows:
        print(f"{label:<44} {sec:8.2f} {peak:13.0f}  {detail}")
    print(f"(cpu count: {os.cpu_count()})")


if __name__ == "__main__":
    main()

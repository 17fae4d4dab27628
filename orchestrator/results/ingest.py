"""Read k6's raw time series fast: aggregate in DuckDB, hand small tables to the report.

k6 writes either NDJSON (``--out json``) or CSV (``--out csv``), plain or gzipped; ``orch
run`` keeps its CSV as zstd Parquet (:func:`finalize_raw`), which reads 6 times faster than the
CSV. One scan projects the points the report needs into a DuckDB table; every figure is then
an SQL aggregate over that table, so memory follows the number of HTTP points, not the file
size, and pandas (slow to import) is only touched by :func:`load_points`.

Malformed lines (a truncated last line when k6 was killed), points without a time or value,
and null tags never stop the ingest: they are counted in :attr:`RawAggregates.skipped`.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.core import ConfigError, SetupError
from orchestrator.results.run_folder import RunFolder
from orchestrator.results.summary import (
    BUILTIN_TYPES,
    ThresholdExpr,
    parse_metric_key,
    parse_threshold,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# k6's CSV columns (v0.4x to v1.x), in file order.
CSV_COLUMNS = (
    "metric_name", "timestamp", "metric_value", "check", "error", "error_code",
    "expected_response", "group", "method", "name", "proto", "scenario", "service", "status",
    "subproto", "tls_version", "url", "extra_tags", "metadata",
)  # fmt: skip
# Tags k6 gives their own CSV column; any other tag is "custom" (CSV: extra_tags a=1&b=2).
SYSTEM_TAGS = {
    "check": "check_name", "error": "error", "error_code": "error_code",
    "expected_response": "expected_response", "group": "grp", "method": "method",
    "name": "name", "scenario": "scenario", "status": "status", "url": "url",
    "proto": "proto", "service": "service", "subproto": "subproto",
    "tls_version": "tls_version",
}  # fmt: skip
# Metrics every report needs.
CORE_METRICS = ("http_reqs", "http_req_duration", "http_req_failed", "checks", "vus", "vus_max")
# Metrics the load-delivery figures need besides those (per k6 scenario).
DELIVERY_METRICS = ("iterations", "dropped_iterations")
# The phases of a request, in order (k6's http_req_* timings), for the timing breakdown:
# waiting for a connection, connecting, TLS, sending, the server's time, receiving.
TIMING_METRICS = (
    "http_req_blocked", "http_req_connecting", "http_req_tls_handshaking", "http_req_sending",
    "http_req_waiting", "http_req_receiving",
)  # fmt: skip
PARQUET_NAME = RunFolder.RAW_PARQUET
# Candidate raw files in a run folder, fastest to read first.
RAW_CANDIDATES = (
    PARQUET_NAME, f"{RunFolder.RAW_CSV}.gz", RunFolder.RAW_CSV, "raw.json.gz", "raw.ndjson.gz",
    "raw.json", "raw.ndjson",
)  # fmt: skip
QUANTILES = (0.5, 0.9, 0.95, 0.99)
HISTOGRAM_BINS = 60
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass
class LatencyStats:
    """Latency of a set of requests in milliseconds, from the raw points (exact)."""

    count: int = 0
    avg: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass
class EndpointFigures:
    """Request figures for one endpoint (or all requests)."""

    name: str
    methods: list[str]
    requests: int
    failed: int  # http_req_failed (k6: not an expected response; includes 429)
    rate_limited: int  # status 429
    server_errors: int  # status 5xx
    network_errors: int  # status 0 (no response)
    latency: LatencyStats
    # 429s among `failed`: all of them by default, none when the script declared 429 an
    # expected response (a rate-limit-aware script, e.g. ai-enrichment)
    failed_rate_limited: int = 0
    # average ms of each phase, by its name without ``http_req_`` (see TIMING_METRICS)
    timing: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ErrorGroup:
    """Failed requests of one endpoint with one status and error code."""

    endpoint: str
    status: str
    error_code: str
    count: int
    message: str


@dataclass
class Bucket:
    """One time bucket of the run (``bucket_s`` wide)."""

    t: float  # seconds since the first point
    requests: int
    failed_not_429: int  # http_req_failed points whose status is not 429
    rate_limited: int  # responses with status 429 (failed for k6 or not)
    p50: float | None
    p95: float | None
    p99: float | None
    vus: float | None
    vus_max: float | None = None


@dataclass
class ScenarioCounts:
    """What one k6 scenario (its ``scenario`` tag) did: for the load-delivery figures."""

    iterations: int = 0  # completed iterations
    dropped_iterations: int = 0
    requests: int = 0


@dataclass
class RawAggregates:
    """Everything the report needs from the raw points, as small Python tables."""

    path: Path
    fmt: str  # "parquet", "csv" or "ndjson"
    compressed: bool
    total_points: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int | None] = field(default_factory=dict)  # None: declared, not counted
    metric_types: dict[str, str] = field(default_factory=dict)  # declared in NDJSON
    declared_thresholds: dict[str, list[str]] = field(default_factory=dict)  # NDJSON only
    first_ts: float | None = None
    last_ts: float | None = None
    integer_seconds: bool = False  # CSV time stamps have whole-second resolution
    untagged_http_points: int = 0
    overall: EndpointFigures | None = None
    endpoints: list[EndpointFigures] = field(default_factory=list)
    errors: list[ErrorGroup] = field(default_factory=list)
    checks: list[tuple[str, int, int]] = field(default_factory=list)  # name, passes, fails
    bucket_s: int = 1
    buckets: list[Bucket] = field(default_factory=list)
    histogram_edges: list[float] = field(default_factory=list)
    histogram_counts: list[int] = field(default_factory=list)
    histogram_overflow: int = 0
    histogram_underflow: int = 0
    measured: dict[tuple[str, str], float | None] = field(default_factory=dict)
    scenarios: dict[str, ScenarioCounts] = field(default_factory=dict)  # by scenario tag
    # a run of several k6 scenarios (a mix's flows): the figures of each, and of each
    # endpoint within each (by scenario tag); empty for a run of one
    by_scenario: dict[str, EndpointFigures] = field(default_factory=dict)
    scenario_endpoints: dict[str, list[EndpointFigures]] = field(default_factory=dict)
    vus_peak: float | None = None  # the most VUs active at once
    vus_max_peak: float | None = None  # the most VUs allocated at once

    @property
    def requests(self) -> int:
        """Total HTTP requests seen in the raw points."""
        return self.overall.requests if self.overall else 0

    @property
    def span_s(self) -> float | None:
        """Seconds covered by the points (whole-second stamps count their last second)."""
        if self.first_ts is None or self.last_ts is None:
            return None
        return self.last_ts - self.first_ts + (1.0 if self.integer_seconds else 0.0)


def _connect() -> duckdb.DuckDBPyConnection:
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - a dependency of orch
        raise SetupError("duckdb is not installed; run `pip install orch`") from exc
    con = duckdb.connect(config={"threads": min(2, os.cpu_count() or 1)})
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET enable_progress_bar=false")
    # Bounded memory: past this DuckDB spills to temp_directory instead of growing.
    con.execute("SET memory_limit='256MB'")
    con.execute(f"SET temp_directory='{_sql_str(tempfile.gettempdir())}/orch-duckdb'")
    return con


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def detect_format(path: Path) -> tuple[str, bool]:
    """(format, gzipped) of a raw file, sniffed from its content, not its name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            compressed = head[:2] == b"\x1f\x8b"
            if head == b"PAR1":
                return "parquet", False
        opener = gzip.open if compressed else open
        with opener(path, "rb") as fh:
            start = fh.read(4096).lstrip()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ConfigError(f"{path} is a truncated or corrupt gzip file ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the raw file {path}: {exc}") from exc
    if start.startswith(b"{"):
        return "ndjson", compressed
    if start.startswith(b"metric_name"):
        return "csv", compressed
    if not start:
        return "empty", compressed
    raise ConfigError(
        f"{path} is neither k6 NDJSON (--out json) nor k6 CSV (--out csv); "
        "pass the raw file k6 wrote"
    )


def verify_raw(path: Path) -> tuple[str, bool]:
    """Read a raw file through once; return (format, gzipped) as :func:`detect_format` does.

    Reads a gzip stream to its end (its
    length and CRC checked), every column of a Parquet file. Raises :class:`ConfigError`
    naming the file when it is truncated or corrupt, so nothing is made from half a file."""
    fmt, compressed = detect_format(path)
    if compressed:
        try:
            with gzip.open(path, "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(
                f"{path} is a truncated or corrupt gzip file ({exc}); copy it again from "
                "where k6 wrote it"
            ) from None
    elif fmt == "parquet":
        con = _connect()
        try:
            con.execute("SELECT count(COLUMNS(*)) FROM read_parquet(?)", [str(path)]).fetchall()
        except Exception as exc:
            raise ConfigError(
                f"{path} is a truncated or corrupt Parquet file ({_first_line(exc)}); copy it "
                "again, or report on the raw.csv it was made from"
            ) from None
        finally:
            con.close()
    return fmt, compressed


def _first_line(exc: BaseException) -> str:
    """An error's first line (DuckDB's messages go on with the whole query)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_raw(run_dir: Path) -> Path | None:
    """The raw time-series file in a run folder, preferring the fastest format."""
    for name in RAW_CANDIDATES:
        candidate = run_dir / name
        if candidate.is_file():
            return candidate
    return None


def csv_header(path: Path, compressed: bool) -> tuple[str, ...]:
    """The columns of a k6 CSV file, from its first line.

    k6 writes a column only for the system tags it records: a script's ``systemTags`` (or
    ``--system-tags``) leaves out the others, orch's own scripts among them.
    """
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            line = fh.readline(64 * 1024)
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"cannot read the raw file {path}: {exc}; is it truncated?") from None
    names = tuple(name.strip().strip('"') for name in line.rstrip("\r\n").split(","))
    if names[:3] != CSV_COLUMNS[:3] or len(set(names)) != len(names):
        raise ConfigError(
            f"{path} has an unexpected k6 CSV header ({line.strip()[:200]!r}); pass the file "
            "k6 wrote with --out csv"
        )
    return names


def _csv_column(name: str, header: tuple[str, ...]) -> str:
    """A CSV column by name, or NULL when k6 did not write it (a tag it did not record)."""
    return f'"{name}"' if name in header else "NULL::VARCHAR"


def _csv_reader(path: Path, compressed: bool, header: tuple[str, ...]) -> str:
    cols = ", ".join(
        f"'{_sql_str(c)}': '{'DOUBLE' if c == 'metric_value' else 'VARCHAR'}'" for c in header
    )
    return (
        f"read_csv('{_sql_str(str(path))}', header=true, columns={{{cols}}}, "
        f"compression='{'gzip' if compressed else 'none'}', ignore_errors=true, "
        "store_rejects=true, quote='\"', escape='\"', delim=',', strict_mode=false)"
    )


# Unix seconds by default; timeFormat= may give ms/µs/ns or RFC 3339.
_CSV_TS = (
    "CASE WHEN try_cast(timestamp AS DOUBLE) IS NULL "
    "THEN epoch(try_cast(timestamp AS TIMESTAMPTZ)) "
    "WHEN try_cast(timestamp AS DOUBLE) > 1e17 THEN try_cast(timestamp AS DOUBLE) / 1e9 "
    "WHEN try_cast(timestamp AS DOUBLE) > 1e14 THEN try_cast(timestamp AS DOUBLE) / 1e6 "
    "WHEN try_cast(timestamp AS DOUBLE) > 1e11 THEN try_cast(timestamp AS DOUBLE) / 1e3 "
    "ELSE try_cast(timestamp AS DOUBLE) END"
)


def finalize_raw(run_dir: Path) -> Path:
    """Convert ``run_dir/raw.csv`` to zstd Parquet; delete the CSV only after success.

    Returns the raw file to keep: the Parquet file, or the CSV when it is absent, empty or
    could not be converted. A truncated last line is dropped and counted in the Parquet
    file's metadata (``orch.skipped_lines``).
    """
    csv_path = run_dir / RunFolder.RAW_CSV
    if not csv_path.is_file() or csv_path.stat().st_size == 0:
        return csv_path
    out = run_dir / PARQUET_NAME
    tmp = run_dir / (PARQUET_NAME + ".part")
    try:
        fmt, compressed = detect_format(csv_path)
        if fmt != "csv":
            return csv_path
        con = _connect()
        try:
            header = csv_header(csv_path, compressed)
            select = ", ".join(
                f"{_CSV_TS} AS timestamp"
                if c == "timestamp"
                else f'{_csv_column(c, header)} AS "{c}"'
                for c in CSV_COLUMNS
            )
            query = f"SELECT {select} FROM {_csv_reader(csv_path, compressed, header)}"
            # Stream CSV -> Parquet. The skipped-line count goes into the file's metadata; it
            # is guessed from the last byte (a killed k6 leaves a partial last line) and the
            # copy is redone in the rare case DuckDB rejected other lines too.
            guess = 0 if compressed or _ends_with_newline(csv_path) else 1
            for _attempt in range(2):
                con.execute("DROP TABLE IF EXISTS reject_errors")
                con.execute("DROP TABLE IF EXISTS reject_scans")
                con.execute(
                    f"COPY ({query}) TO '{_sql_str(str(tmp))}' (FORMAT parquet, "
                    f"COMPRESSION zstd, KV_METADATA {{'orch.skipped_lines': '{guess}'}})"
                )
                rejected = _rejected_lines(con)
                if rejected == guess:
                    break
                guess = rejected
        finally:
            con.close()
        os.replace(tmp, out)
    except BaseException as exc:  # a failure or Ctrl-C: the CSV stays, no half Parquet file
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, Exception):
            raise
        return csv_path
    csv_path.unlink()
    return out


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _rejected_lines(con: duckdb.DuckDBPyConnection) -> int:
    try:
        row = con.execute("SELECT count(DISTINCT (file_id, line)) FROM reject_errors").fetchone()
    except Exception:
        return 0
    return int(row[0]) if row else 0


def _sniff_ndjson(path: Path, compressed: bool) -> tuple[set[str], dict[str, Any]]:
    """Tag keys and Metric declarations seen in the first lines of an NDJSON file."""
    keys: set[str] = set()
    declared: dict[str, Any] = {}
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh):
                if i >= 5000:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                data = obj.get("data") if isinstance(obj, dict) else None
                if not isinstance(data, dict):
                    continue
                if obj.get("type") == "Metric":
                    declared[str(data.get("name") or obj.get("metric"))] = data
                elif isinstance(data.get("tags"), dict):
                    keys.update(data["tags"])
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"cannot read the raw file {path}: {exc}; is it truncated?") from None
    return keys, declared


# Tags the report reads; other system tags (proto, tls_version, ...) are left in the file.
_USED_TAGS = {
    k: v for k, v in SYSTEM_TAGS.items() if k not in ("proto", "service", "subproto", "tls_version")
}
_ENDPOINT = "coalesce(nullif({name}, ''), nullif({url}, ''), '(untagged)')"
# Tags every report needs; threshold tag filters add theirs (fewer columns, less memory).
_REPORT_TAGS = frozenset(
    {"method", "status", "error_code", "expected_response", "check", "error", "scenario"}
)
# Every tag k6 can put on a sample by itself (``systemTags``); vu, iter, ip and ocsp_status
# are off unless asked for.
K6_SYSTEM_TAGS = frozenset(SYSTEM_TAGS) | {"vu", "iter", "ip", "ocsp_status"}


def recorded_system_tags(filter_tags: set[str]) -> list[str]:
    """The ``systemTags`` of orch's own scripts: what the report reads, and any system tag
    a threshold filters on (``filter_tags``).

    k6 writes each on every sample of every request. Its defaults add url (the name tag
    holds the URL unless a request names itself), proto, subproto, tls_version and
    service, which no report reads: leaving them out made 20 VUs with no sleep send 3 %
    more requests with ``--out csv`` (benchmarks/peer.py).
    """
    return sorted(_REPORT_TAGS | {"name", "group"} | (filter_tags & K6_SYSTEM_TAGS))


def _projected(tags: set[str] | None) -> tuple[dict[str, str], bool]:
    """(tag -> column alias to project, whether to build extra_tags) for a set of tag keys."""
    if tags is None:
        return dict(_USED_TAGS), True
    wanted = _REPORT_TAGS | tags
    cols = {k: v for k, v in _USED_TAGS.items() if k in wanted}
    return cols, any(k not in SYSTEM_TAGS for k in tags)


@dataclass(frozen=True)
class _Source:
    """How to read one raw file: a select list, a FROM clause and a metric filter column.

    The filter must sit in the same SELECT as the reader so DuckDB prunes rows before it
    parses time stamps (a nested subquery made the NDJSON scan 1.8 times slower).
    """

    select: str
    reader: str
    metric_col: str
    not_point: str  # SQL true for rows that are not points (NDJSON Metric lines, bad lines)

    def query(self, metrics: list[str] | None) -> str:
        """The projected points (plus non-point lines, to count them) of some metrics."""
        if metrics is None:
            return f"SELECT {self.select} FROM {self.reader}"
        wanted = ", ".join(f"'{_sql_str(m)}'" for m in metrics)
        return (
            f"SELECT {self.select} FROM {self.reader} "
            f"WHERE {self.not_point} OR {self.metric_col} IN ({wanted})"
        )


def _ndjson_source(
    path: Path, compressed: bool, custom: list[str], tags: set[str] | None = None
) -> _Source:
    projected, with_extra = _projected(tags)
    custom = custom if with_extra else []
    tag_fields = sorted(set(projected) | {"name", "url"} | set(custom))
    struct_tags = ", ".join(f'"{k}" VARCHAR' for k in tag_fields)
    columns = (
        "{'type': 'VARCHAR', 'metric': 'VARCHAR', 'data': 'STRUCT(time VARCHAR, value DOUBLE, "
        f"tags STRUCT({_sql_str(struct_tags)}))'}}"
    )
    reader = (
        f"read_json('{_sql_str(str(path))}', format='newline_delimited', columns={columns}, "
        f"compression='{'gzip' if compressed else 'none'}', ignore_errors=true)"
    )
    extra = (
        "concat_ws('&', "
        + ", ".join(
            f'CASE WHEN data.tags."{k}" IS NOT NULL THEN \'{k}=\' || data.tags."{k}" END'
            for k in custom
        )
        + ")"
        if custom
        else "NULL"
    )
    cols = ", ".join(f'data.tags."{k}" AS {alias}' for k, alias in projected.items())
    endpoint = _ENDPOINT.format(name='data.tags."name"', url='data.tags."url"')
    select = (
        "type AS line_type, metric, epoch(try_cast(data.time AS TIMESTAMPTZ)) AS ts, "
        f"data.value AS value, {endpoint} AS endpoint, {cols}, "
        f"nullif({extra}, '')::VARCHAR AS extra_tags"
    )
    return _Source(select, reader, "metric", "type IS DISTINCT FROM 'Point'")


def _tabular_source(
    path: Path, fmt: str, compressed: bool, tags: set[str] | None = None
) -> _Source:
    projected, with_extra = _projected(tags)
    if fmt == "parquet":  # orch's own: every column of CSV_COLUMNS
        reader = f"read_parquet('{_sql_str(str(path))}')"
        ts = "try_cast(timestamp AS DOUBLE)"
        header: tuple[str, ...] = CSV_COLUMNS
    else:
        header = csv_header(path, compressed)
        reader = _csv_reader(path, compressed, header)
        ts = _CSV_TS
    cols = ", ".join(f"{_csv_column(k, header)} AS {alias}" for k, alias in projected.items())
    endpoint = _ENDPOINT.format(name=_csv_column("name", header), url=_csv_column("url", header))
    extra = _csv_column("extra_tags", header) if with_extra else "NULL::VARCHAR"
    select = (
        f"CASE WHEN metric_name IS NULL THEN NULL ELSE 'Point' END AS line_type, "
        f"metric_name AS metric, {ts} AS ts, try_cast(metric_value AS DOUBLE) AS value, "
        f"{endpoint} AS endpoint, {cols}, {extra} AS extra_tags"
    )
    return _Source(select, reader, "metric_name", "metric_name IS NULL")


def _selector_tags(thresholds: dict[str, list[str]]) -> set[str]:
    """Tag keys the thresholds' metric keys filter on (``{name:x,flow:y}``)."""
    keys: set[str] = set()
    for key in thresholds:
        keys.update(parse_metric_key(key)[1])
    return keys


def _tag_condition(tags: dict[str, str]) -> tuple[str, list[str]]:
    """SQL condition and parameters selecting points with the given tag values."""
    parts: list[str] = []
    params: list[str] = []
    for key, value in tags.items():
        column = SYSTEM_TAGS.get(key)
        if key in ("name", "url"):
            parts.append(f"coalesce({column}, '') = ?")
            params.append(value)
        elif key == "expected_response":
            parts.append("lower(coalesce(expected_response, '')) = lower(?)")
            params.append(value)
        elif column is not None:
            parts.append(f"coalesce({column}, '') = ?")
            params.append(value)
        else:
            parts.append("('&' || coalesce(extra_tags, '') || '&') LIKE ?")
            params.append(f"%&{key}={value}&%")
    return (" AND ".join(parts) or "TRUE"), params


class _Scan:
    """A DuckDB connection holding the projected points of one raw file as table ``pts``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, agg: RawAggregates) -> None:
        self.con = con
        self.agg = agg

    def one(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
        row = self.con.execute(sql, params or []).fetchone()
        return tuple(row) if row else ()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.con.execute(sql, params or []).fetchall()]


_STATUS_429 = "status = '429'"
_STATUS_5XX = "(status >= '500' AND status < '600' AND length(status) = 3)"


def _figures_sql(group: str) -> str:
    qs = ", ".join(str(q) for q in QUANTILES)
    timings = ", ".join(f"avg(value) FILTER (WHERE metric = '{m}')" for m in TIMING_METRICS)
    phases = ", ".join(f"'{m}'" for m in TIMING_METRICS)
    select_group = f"{group} AS endpoint," if group else "'all' AS endpoint,"
    group_by = "GROUP BY 1" if group else ""
    return f"""
        SELECT {select_group}
          string_agg(DISTINCT method, ',' ORDER BY method) FILTER (WHERE metric = 'http_reqs'),
          coalesce(sum(value) FILTER (WHERE metric = 'http_reqs'), 0),
          coalesce(sum(value) FILTER (WHERE metric = 'http_req_failed'), 0),
          count(*) FILTER (WHERE metric = 'http_reqs' AND {_STATUS_429}),
          count(*) FILTER (WHERE metric = 'http_reqs' AND {_STATUS_5XX}),
          count(*) FILTER (WHERE metric = 'http_reqs' AND status = '0'),
          count(*) FILTER (WHERE metric = 'http_req_duration'),
          avg(value) FILTER (WHERE metric = 'http_req_duration'),
          min(value) FILTER (WHERE metric = 'http_req_duration'),
          quantile_cont(value, [{qs}]) FILTER (WHERE metric = 'http_req_duration'),
          max(value) FILTER (WHERE metric = 'http_req_duration'),
          coalesce(sum(value) FILTER (WHERE metric = 'http_req_failed' AND {_STATUS_429}), 0),
          {timings}
        FROM pts WHERE metric IN ('http_reqs', 'http_req_failed', 'http_req_duration', {phases})
        {group_by}
    """


def _figures_of(row: tuple[Any, ...]) -> EndpointFigures:
    quantiles = row[10] or [None] * len(QUANTILES)
    return EndpointFigures(
        name=str(row[0]),
        methods=[m for m in (row[1] or "").split(",") if m],
        requests=int(row[2] or 0),
        failed=int(row[3] or 0),
        rate_limited=int(row[4] or 0),
        server_errors=int(row[5] or 0),
        network_errors=int(row[6] or 0),
        latency=LatencyStats(
            count=int(row[7] or 0),
            avg=row[8],
            min=row[9],
            p50=quantiles[0],
            p90=quantiles[1],
            p95=quantiles[2],
            p99=quantiles[3],
            max=row[11],
        ),
        failed_rate_limited=int(row[12] or 0),
        timing={
            metric.removeprefix("http_req_"): value
            for metric, value in zip(TIMING_METRICS, row[13:], strict=True)
        },
    )


def _measure(
    scan: _Scan, metric_key: str, expr: ThresholdExpr, duration_s: float | None
) -> float | None:
    """One threshold statistic computed from the raw points, or None when not computable."""
    metric, tags = parse_metric_key(metric_key)
    cond, params = _tag_condition(tags)
    where = f"metric = ? AND {cond}"
    params = [metric, *params]
    kind = scan.agg.metric_types.get(metric) or BUILTIN_TYPES.get(metric)
    stat = expr.stat
    if stat.startswith("p("):
        sql = f"SELECT quantile_cont(value, {float(expr.percentile or 0) / 100.0}) FROM pts"
    elif stat == "med":
        sql = "SELECT quantile_cont(value, 0.5) FROM pts"
    elif stat in ("avg", "min", "max"):
        sql = f"SELECT {stat}(value) FROM pts"
    elif stat == "count":
        sql = "SELECT sum(value) FROM pts"
    elif stat == "value":
        sql = "SELECT arg_max(value, ts) FROM pts"
    elif stat == "rate" and kind == "counter":
        if not duration_s:
            return None
        sql = f"SELECT sum(value) / {float(duration_s)} FROM pts"
    elif stat == "rate":
        sql = "SELECT avg(CASE WHEN value != 0 THEN 1.0 ELSE 0.0 END) FROM pts"
    else:
        return None
    row = scan.one(f"{sql} WHERE {where}", params)
    if not row or row[0] is None:
        return 0.0 if stat in ("count",) and kind == "counter" else None
    return float(row[0])


def ingest_raw(
    path: Path,
    *,
    thresholds: dict[str, list[str]] | None = None,
    duration_s: float | None = None,
    metric_types: dict[str, str] | None = None,
) -> RawAggregates:
    """Aggregate one raw k6 file (any format, plain or gzipped) for the report.

    ``thresholds`` maps metric keys (``http_req_duration{name:ok}``) to expressions whose
    statistic is measured from the raw points too (``measured[(key, expr)]``).
    ``duration_s`` (the test's own duration, when known) turns counts into rates.
    ``metric_types`` (e.g. from the run's summary) names the types of custom metrics,
    which CSV and Parquet do not carry; NDJSON declarations take precedence.
    """

    fmt, compressed = detect_format(path)
    agg = RawAggregates(path=path, fmt=fmt, compressed=compressed)
    agg.metric_types.update(
        {k: v for k, v in (metric_types or {}).items() if "{" not in k and isinstance(v, str)}
    )
    if fmt == "empty":
        return agg
    thresholds = dict(thresholds or {})
    custom: list[str] = []
    if fmt == "ndjson":
        keys, declared = _sniff_ndjson(path, compressed)
        for name, data in declared.items():
            if isinstance(data.get("type"), str):
                agg.metric_types[name] = data["type"]
            exprs = [t for t in data.get("thresholds") or [] if isinstance(t, str)]
            if exprs:
                agg.declared_thresholds[name] = exprs
                thresholds.setdefault(name, [])
                thresholds[name] = list(dict.fromkeys([*thresholds[name], *exprs]))
            for sub in data.get("submetrics") or []:
                if isinstance(sub, dict) and isinstance(sub.get("tags"), dict):
                    keys.update(sub["tags"])
        for key in thresholds:
            keys.update(parse_metric_key(key)[1])
        custom = sorted(k for k in keys if k not in SYSTEM_TAGS and _SAFE_KEY.match(k))[:64]
        source = _ndjson_source(path, compressed, custom, _selector_tags(thresholds))
    else:
        source = _tabular_source(path, fmt, compressed, _selector_tags(thresholds))

    wanted = sorted(
        set(CORE_METRICS)
        | set(DELIVERY_METRICS)
        | set(TIMING_METRICS)
        | {parse_metric_key(k)[0] for k in thresholds}
    )
    con = _connect()
    try:
        scan = _Scan(con, agg)
        con.execute(f"CREATE TEMP TABLE scanned AS {source.query(wanted)}")
        # Split the few non-point rows off so `pts` holds only usable points.
        con.execute(
            "CREATE TEMP VIEW pts AS SELECT * FROM scanned WHERE line_type = 'Point' "
            "AND ts IS NOT NULL AND value IS NOT NULL"
        )
        bad = scan.one(
            "SELECT count(*) FILTER (WHERE line_type IS NULL OR metric IS NULL), "
            "count(*) FILTER (WHERE line_type = 'Point' AND metric IS NOT NULL "
            "AND (ts IS NULL OR value IS NULL)) FROM scanned"
        )
        malformed = int(bad[0] or 0)
        if fmt == "csv":
            malformed += _rejected_lines(con)
        elif fmt == "parquet":
            malformed += _parquet_skipped(con, path)
        agg.skipped = {"malformed_lines": malformed, "points_without_time_or_value": int(bad[1])}

        if fmt == "ndjson":
            agg.metrics = {
                m: int(c) for m, c in scan.rows("SELECT metric, count(*) FROM pts GROUP BY 1")
            }
            for name in agg.metric_types:
                agg.metrics.setdefault(name, None)
            agg.total_points = sum(c or 0 for c in agg.metrics.values())
        else:
            # A second, cheap scan of the metric column counts every metric's points.
            counted = scan.rows(
                f"SELECT {source.metric_col}, count(*) FROM {source.reader} "
                f"WHERE {source.metric_col} IS NOT NULL GROUP BY 1"
            )
            agg.metrics = {m: int(c) for m, c in counted}
            agg.total_points = sum(c or 0 for c in agg.metrics.values())
            if fmt == "csv":
                # the second scan logged the same rejects again
                agg.skipped["malformed_lines"] = malformed
        first, last, whole = scan.one("SELECT min(ts), max(ts), bool_and(ts = floor(ts)) FROM pts")
        agg.first_ts, agg.last_ts = first, last
        agg.integer_seconds = bool(whole)
        agg.untagged_http_points = int(
            scan.one(
                "SELECT count(*) FROM pts WHERE metric = 'http_reqs' AND endpoint = '(untagged)'"
            )[0]
        )
        overall_rows = scan.rows(_figures_sql(""))
        agg.overall = _figures_of(overall_rows[0]) if overall_rows else None
        agg.endpoints = sorted(
            (_figures_of(r) for r in scan.rows(_figures_sql("endpoint"))),
            key=lambda e: (-e.requests, e.name),
        )
        agg.endpoints = [e for e in agg.endpoints if e.requests or e.latency.count]
        agg.errors = [
            ErrorGroup(str(r[0]), str(r[1] or ""), str(r[2] or ""), int(r[3]), str(r[4] or ""))
            for r in scan.rows(
                "SELECT endpoint, status, error_code, count(*), any_value(error) FROM pts "
                "WHERE metric = 'http_reqs' AND (lower(expected_response) = 'false' OR "
                "(expected_response IS NULL AND (status = '0' OR status >= '400'))) "
                "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3"
            )
        ]
        agg.checks = [
            (str(r[0]), int(r[1]), int(r[2]))
            for r in scan.rows(
                "SELECT coalesce(check_name, '(unnamed)'), "
                "count(*) FILTER (WHERE value != 0), count(*) FILTER (WHERE value = 0) "
                "FROM pts WHERE metric = 'checks' GROUP BY 1 ORDER BY 1"
            )
        ]
        _time_series(scan, agg)
        _histogram(scan, agg)
        _delivery_counts(scan, agg)
        _scenario_figures(scan, agg)
        span = duration_s or agg.span_s
        for key, exprs in thresholds.items():
            for text in exprs:
                expr = parse_threshold(text)
                agg.measured[(key, text)] = _measure(scan, key, expr, span) if expr else None
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot read the raw file {path}: {_first_line(exc)}; is it truncated or corrupt?"
        ) from None
    finally:
        con.close()
    return agg


def _scenario_figures(scan: _Scan, agg: RawAggregates) -> None:
    """Each k6 scenario's figures, overall and by endpoint, when requests came from more
    than one."""
    names = scan.rows(
        "SELECT DISTINCT scenario FROM pts WHERE metric = 'http_reqs' AND scenario IS NOT NULL"
    )
    if len(names) < 2:
        return
    rows = scan.rows(_figures_sql("coalesce(scenario, '')"))
    agg.by_scenario = {f.name: f for f in map(_figures_of, rows) if f.requests or f.latency.count}
    for row in scan.rows(_figures_sql("coalesce(scenario, '') || chr(31) || endpoint")):
        figures = _figures_of(row)
        scenario, _, figures.name = figures.name.partition("\x1f")
        if figures.requests or figures.latency.count:
            agg.scenario_endpoints.setdefault(scenario, []).append(figures)
    for endpoints in agg.scenario_endpoints.values():
        endpoints.sort(key=lambda e: (-e.requests, e.name))


def _parquet_skipped(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    try:
        rows = con.execute(
            "SELECT value::VARCHAR FROM parquet_kv_metadata(?) "
            "WHERE key::VARCHAR = 'orch.skipped_lines'",
            [str(path)],
        ).fetchall()
    except Exception:
        return 0
    return sum(int(r[0]) for r in rows if str(r[0]).isdigit())


def _time_series(scan: _Scan, agg: RawAggregates) -> None:
    span = agg.span_s
    if agg.first_ts is None or span is None:
        return
    # At most ~900 buckets: 1 s up to 15 minutes, wider for soaks.
    agg.bucket_s = max(1, math.ceil(span / 900.0))
    width = float(agg.bucket_s)
    rows = scan.rows(
        f"""
        SELECT floor((ts - {agg.first_ts}) / {width}) AS b,
          coalesce(sum(value) FILTER (WHERE metric = 'http_reqs'), 0),
          coalesce(sum(value) FILTER (
            WHERE metric = 'http_req_failed' AND coalesce(status, '') <> '429'), 0),
          count(*) FILTER (WHERE metric = 'http_reqs' AND {_STATUS_429}),
          quantile_cont(value, [0.5, 0.95, 0.99]) FILTER (WHERE metric = 'http_req_duration'),
          max(value) FILTER (WHERE metric = 'vus'),
          max(value) FILTER (WHERE metric = 'vus_max')
        FROM pts GROUP BY 1 ORDER BY 1
        """
    )
    for b, reqs, failed, limited, qs, vus, vus_max in rows:
        q = qs or [None, None, None]
        agg.buckets.append(
            Bucket(
                float(b) * width,
                int(reqs),
                int(failed),
                int(limited),
                q[0],
                q[1],
                q[2],
                vus,
                vus_max,
            )
        )


def _delivery_counts(scan: _Scan, agg: RawAggregates) -> None:
    """Iterations, dropped iterations and requests per k6 scenario; peak VUs."""
    for name, iterations, dropped, requests in scan.rows(
        "SELECT coalesce(scenario, ''), "
        "coalesce(sum(value) FILTER (WHERE metric = 'iterations'), 0), "
        "coalesce(sum(value) FILTER (WHERE metric = 'dropped_iterations'), 0), "
        "coalesce(sum(value) FILTER (WHERE metric = 'http_reqs'), 0) "
        "FROM pts WHERE metric IN ('iterations', 'dropped_iterations', 'http_reqs') "
        "GROUP BY 1 ORDER BY 1"
    ):
        agg.scenarios[str(name)] = ScenarioCounts(int(iterations), int(dropped), int(requests))
    row = scan.one(
        "SELECT max(value) FILTER (WHERE metric = 'vus'), "
        "max(value) FILTER (WHERE metric = 'vus_max') FROM pts"
    )
    if row:
        agg.vus_peak, agg.vus_max_peak = row[0], row[1]


def _histogram(scan: _Scan, agg: RawAggregates) -> None:
    # Bins span the 0.1th to 99.9th percentile, so one outlier cannot squash the picture;
    # what lies outside is counted (underflow, overflow) and named on the chart.
    row = scan.one(
        "SELECT quantile_cont(value, 0.001), quantile_cont(value, 0.999), max(value) FROM pts "
        "WHERE metric = 'http_req_duration'"
    )
    if not row or row[0] is None:
        return
    low, high, top = float(row[0]), float(row[1]), float(row[2])
    if high <= low:
        high = top if top > low else low + 1.0
    width = (high - low) / HISTOGRAM_BINS
    counts = [0] * HISTOGRAM_BINS
    for b, n in scan.rows(
        f"SELECT floor((value - {low}) / {width})::BIGINT, count(*) "
        "FROM pts WHERE metric = 'http_req_duration' GROUP BY 1"
    ):
        if int(b) < 0:
            agg.histogram_underflow += int(n)
        elif int(b) >= HISTOGRAM_BINS:
            if float(b) * width + low <= high:  # the upper edge belongs to the last bin
                counts[-1] += int(n)
            else:
                agg.histogram_overflow += int(n)
        else:
            counts[int(b)] += int(n)
    agg.histogram_edges = [low + i * width for i in range(HISTOGRAM_BINS + 1)]
    agg.histogram_counts = counts


def load_points(path: Path, metrics: tuple[str, ...] = CORE_METRICS) -> pd.DataFrame:
    """The raw points of some metrics as a pandas DataFrame, from any raw format.

    Columns: time (UTC), metric, value, endpoint, scenario, method, status, error_code,
    expected_response, group, check, extra_tags (custom tags as ``a=1&b=2``).
    """
    fmt, compressed = detect_format(path)
    import pandas as pd

    columns = [
        "time", "metric", "value", "endpoint", "scenario", "method", "status", "error_code",
        "expected_response", "group", "check", "extra_tags",
    ]  # fmt: skip
    if fmt == "empty":
        return pd.DataFrame(columns=columns)
    if fmt == "ndjson":
        keys, _ = _sniff_ndjson(path, compressed)
        custom = sorted(k for k in keys if k not in SYSTEM_TAGS and _SAFE_KEY.match(k))
        source = _ndjson_source(path, compressed, custom)
    else:
        source = _tabular_source(path, fmt, compressed)
    con = _connect()
    try:
        frame = con.execute(
            "SELECT to_timestamp(ts) AS time, metric, value, endpoint, scenario, method, "
            'status, error_code, expected_response, grp AS "group", check_name AS "check", '
            f"extra_tags FROM ({source.query(list(metrics))}) WHERE line_type = 'Point' "
            "AND ts IS NOT NULL AND value IS NOT NULL ORDER BY ts"
        ).fetchdf()
    except Exception as exc:
        raise ConfigError(
            f"cannot read the raw file {path}: {_first_line(exc)}; is it truncated or corrupt?"
        ) from None
    finally:
        con.close()
    return frame

"""``results.json`` as typed models: what :mod:`orchestrator.results.figures` builds and what every
reader (report, junit, merge, compare, baseline, history) reads.

The document is described field by field in ``docs/results-json.md``; a test checks that
the doc and these models name the same keys. Readers ignore keys they do not know (a newer
orch may add some). Numbers keep the type they were measured with (a count stays an
integer, ``3.0`` stays a float), so a document read and written again gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic import ValidationError as _ValidationError

from orchestrator.core import ConfigError, Outcome
from orchestrator.results.database import DatabaseFigures

SCHEMA_VERSION = 1
# int or float, kept as given (pydantic's smart union does not turn 3 into 3.0)
Number = int | float


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunInfo(_Part):
    """``run``: what ran, copied from run.json (any key may be null for a folder made
    elsewhere)."""

    folder: str | None = None
    scenario: str | None = None
    environment: str | None = None
    profile: str | None = None
    runner: str | None = None
    orch_version: str | None = None
    k6_version: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: Number | None = None
    outcome: Outcome | None = None
    k6_exit_code: int | None = None
    exit_code: int | None = None
    base_url: str | None = None
    load_profile: dict[str, Any] | None = None


class Sources(_Part):
    """``sources``: the files read."""

    raw_file: str | None = None
    raw_format: str | None = None
    summary_file: str | None = None
    summary_shape: str | None = None


class Ingest(_Part):
    """``ingest``: what the raw file held and what was skipped."""

    points: int = 0
    skipped: dict[str, int] = {}
    untagged_http_points: int = 0
    metrics: dict[str, int | None] = {}
    first_point_at: Number | None = None
    last_point_at: Number | None = None


class Verdict(_Part):
    """``verdict``: the overall threshold verdict."""

    thresholds_ok: bool | None = None
    thresholds_total: int = 0
    thresholds_failed: int = 0
    thresholds_unjudged: int = 0

    @classmethod
    def of(cls, rows: list[ThresholdRow]) -> Verdict:
        """The verdict over threshold rows: None when none could be judged."""
        judged = [r for r in rows if r.ok is not None]
        failed = [r for r in judged if not r.ok]
        return cls(
            thresholds_ok=(not failed) if judged else None,
            thresholds_total=len(rows),
            thresholds_failed=len(failed),
            thresholds_unjudged=len(rows) - len(judged),
        )


class ThresholdRow(_Part):
    """One threshold expression with its verdict and measured value."""

    metric: str
    base_metric: str
    tags: dict[str, str] = {}
    expression: str
    stat: str | None = None
    operator: str | None = None
    target: Number | None = None
    unit: str = ""
    measured: Number | None = None
    measured_source: str | None = None
    ok: bool | None = None
    verdict_source: str | None = None


class Latency(_Part):
    """``latency_ms``: ``http_req_duration`` statistics in milliseconds."""

    avg: Number | None = None
    min: Number | None = None
    p50: Number | None = None
    p90: Number | None = None
    p95: Number | None = None
    p99: Number | None = None
    max: Number | None = None


class Timing(_Part):
    """``timing_ms``: the average time of each phase of a request, in ms (k6's
    ``http_req_blocked`` … ``http_req_receiving``); None when no point was recorded."""

    blocked: Number | None = None
    connecting: Number | None = None
    tls_handshaking: Number | None = None
    sending: Number | None = None
    waiting: Number | None = None
    receiving: Number | None = None


class EndpointFigures(_Part):
    """The figures of one endpoint, or of all requests (``name: "all"``)."""

    name: str
    methods: list[str] = []
    requests: int = 0
    throughput_rps: Number | None = None
    failed: int = 0
    error_rate: Number | None = None
    rate_limited: int = 0
    failed_excluding_429: int = 0
    error_rate_excluding_429: Number | None = None
    server_errors: int = 0
    network_errors: int = 0
    latency_ms: Latency = Latency()
    timing_ms: Timing = Timing()


class ErrorGroup(_Part):
    """Failed requests of one endpoint with one status and k6 error code."""

    endpoint: str
    status: str
    error_code: str
    count: int
    rate_limited: bool
    message: str


class RateLimitShare(_Part):
    """The 429 responses of one endpoint."""

    endpoint: str
    count: int
    share_of_requests: Number


# present only when the scenario paced itself by a Claude tier
PACING_KEYS = ("allowed_per_minute", "tier", "tier_requests_per_minute")


class RateLimits(_Part):
    """``rate_limits``: HTTP 429 responses, and the allowed rate of a paced scenario."""

    total: int = 0
    by_endpoint: list[RateLimitShare] = []
    allowed_per_minute: Number | None = None
    tier: str | None = None
    tier_requests_per_minute: Number | None = None

    @model_serializer(mode="wrap")
    def _without_unset_pacing(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An unpaced run has no pacing keys at all (not nulls)."""
        data: dict[str, Any] = handler(self)
        for key in PACING_KEYS:
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data


class CheckFigures(_Part):
    """One k6 check's passes and fails."""

    name: str
    passes: int
    fails: int
    pass_rate: Number | None = None


class ScenarioDelivery(_Part):
    """One k6 scenario's planned load against what k6 did."""

    name: str
    executor: str | None = None
    planned_iterations: Number | None = None
    achieved_iterations: int = 0
    dropped_iterations: int = 0
    achieved_share: Number | None = None
    dropped_share: Number | None = None
    planned_requests: int | None = None
    achieved_requests: int = 0
    max_vus: int | None = None
    reached_max_vus: bool | None = None
    delivered: bool | None = None


class Delivery(_Part):
    """``delivery``: whether k6 made the load the profile planned (results/delivery.py)."""

    judged: bool = True
    min_achieved: Number | None = None
    max_dropped: Number | None = None
    delivered: bool | None = None
    headline: str | None = None
    source: str | None = None
    planned_iterations: Number | None = None
    achieved_iterations: int = 0
    dropped_iterations: int = 0
    planned_requests: int | None = None
    achieved_requests: int = 0
    vus_peak: Number | None = None
    vus_max_peak: Number | None = None
    scenarios: list[ScenarioDelivery] = []


class LoadGenerator(_Part):
    """``load_generator``: k6's own CPU and memory while it ran (execution/loadgen.py)."""

    source: str | None = None
    samples: int = 0
    interval_s: Number | None = None
    cpu_cores_available: Number | None = None
    cpu_avg_pct: Number | None = None
    cpu_max_pct: Number | None = None
    memory_avg_mib: Number | None = None
    memory_max_mib: Number | None = None
    saturated_share: Number | None = None
    saturated: bool | None = None


class FlowFigures(_Part):
    """One k6 scenario of a run of several (a mix's flow): its own figures, thresholds and
    delivery."""

    name: str
    overall: EndpointFigures
    endpoints: list[EndpointFigures] = []
    thresholds: list[ThresholdRow] = []
    delivery: ScenarioDelivery | None = None


class ChartEntry(_Part):
    """One chart of the report; ``file`` is relative to the run folder."""

    key: str
    title: str
    file: str


class ResultsDocument(_Part):
    """The whole ``results.json``."""

    schema_version: int = SCHEMA_VERSION
    generated_by: str | None = None
    run: RunInfo = RunInfo()
    sources: Sources = Sources()
    ingest: Ingest = Ingest()
    verdict: Verdict = Verdict()
    thresholds: list[ThresholdRow] = []
    overall: EndpointFigures | None = None
    endpoints: list[EndpointFigures] = []
    errors: list[ErrorGroup] = []
    rate_limits: RateLimits = RateLimits()
    checks: list[CheckFigures] = []
    checks_source: str | None = None
    delivery: Delivery = Delivery()
    flows: list[FlowFigures] = []
    load_generator: LoadGenerator | None = None
    database: DatabaseFigures | None = None  # the database during the load (database.json)
    charts: list[ChartEntry] = []
    notes: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        """The document as written: JSON types, floats to 10 significant digits."""
        data: dict[str, Any] = stable(self.model_dump())
        return data

    def to_json(self) -> str:
        """The bytes of results.json (the same document always gives the same text)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def stable(value: Any) -> Any:
    """Floats to 10 significant digits: DuckDB's parallel sums differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stable(v) for v in value]
    return value


def read_results(path: Path) -> ResultsDocument:
    """A results.json file as the model.

    Raises :class:`ConfigError` naming the file when it cannot be read, is not JSON, is of
    another schema_version or does not match the model.
    """
    rebuild = f"rebuild it with `orch report {Path(path).parent}`"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; {rebuild}") from exc
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"{path} is not a results.json of schema_version {SCHEMA_VERSION}; {rebuild}"
        )
    try:
        return ResultsDocument.model_validate(data)
    except _ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise ConfigError(f"{path}: {where}; {rebuild}") from None

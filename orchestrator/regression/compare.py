"""Compare two runs (or a run and a baseline): figures side by side, and what regressed.

A *side* is a run folder (its ``results.json`` plus the raw latency points) or a baseline
file (figures plus a compact quantile sample, see :mod:`orchestrator.regression.baseline`,
whose :func:`~orchestrator.regression.baseline.load_side` reads either).
:func:`compare_sides` puts two sides next to each other per endpoint and decides, per
endpoint, whether B regressed against A:

- latency regressed: p95 worse by more than ``p95_increase_pct`` percent **and** by at
  least ``p95_min_increase_ms``, **and** significant: a one-sided Mann-Whitney U test on
  the raw latencies (B slower than A) gives p < ``alpha`` and the one-sided bootstrap
  confidence bound on p95(B) - p95(A) is above zero;
- errors regressed: error rate up by more than ``error_rate_increase_points`` percentage
  points **and** a one-sided two-proportion z-test gives p < ``alpha``.

With 100k points a test flags shifts far too small to matter, so significance alone never
flags anything: the practical tolerance has to be exceeded too (docs/ci.md, "Statistics").
Nothing here prints or writes: :mod:`orchestrator.regression.compare_report` renders a
comparison (``compare.md``, ``compare.json`` and a chart).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config import RegressionSettings
from orchestrator.core import ConfigError, Outcome, not_judged_exit_code, not_judged_reason
from orchestrator.results import ResultsDocument, RunFolder, build_report, find_raw, load_points

if TYPE_CHECKING:
    import numpy as np

    from orchestrator.config import RegressionSettings

OVERALL = "all"
COMPARE_SCHEMA_VERSION = 1
BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_MAX_POINTS = 20_000  # larger samples are thinned (deterministically) first
BOOTSTRAP_SEED = 20240607


@dataclass
class Side:
    """One side of a comparison: figures per endpoint and latency samples per endpoint."""

    label: str
    kind: str  # "run" or "baseline"
    scenario: str | None
    environment: str | None
    profile: str | None
    figures: dict[str, dict[str, Any]]  # endpoint (or "all") -> endpoint figures
    samples: dict[str, np.ndarray]  # endpoint (or "all") -> latencies in ms
    sample_kind: str  # "raw points" or "quantiles"
    started_at: str | None = None
    outcome: Outcome | None = None  # a run's outcome (None: a baseline, or unknown)
    exit_code: int | None = None  # the run's exit code as run.json records it

    @property
    def not_judged(self) -> str | None:
        """Why this side cannot be judged (a run that did not complete), or None."""
        return not_judged_reason(self.outcome)


@dataclass
class Significance:
    """The significance check on two latency samples (B against A)."""

    test: str
    p_value: float | None
    p95_diff_ms: float | None
    p95_diff_low_ms: float | None  # one-sided (1 - alpha) bootstrap lower bound
    p95_diff_ci_ms: tuple[float, float] | None  # two-sided 95 % bootstrap interval
    n_a: int
    n_b: int
    significant: bool


@dataclass
class Row:
    """One endpoint (or "all") of a comparison."""

    name: str
    in_a: bool
    in_b: bool
    requests: tuple[int | None, int | None]
    throughput_rps: tuple[float | None, float | None]
    throughput_change_pct: float | None
    error_rate: tuple[float | None, float | None]
    error_rate_change_points: float | None
    error_p_value: float | None
    latency_ms: dict[str, tuple[float | None, float | None]]  # p50/p95/p99 -> (a, b)
    latency_change_ms: dict[str, float | None]
    latency_change_pct: dict[str, float | None]
    significance: Significance | None
    latency_regressed: bool = False
    errors_regressed: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """Whether this endpoint regressed in latency or errors."""
        return self.latency_regressed or self.errors_regressed


@dataclass
class Comparison:
    """Two sides compared: one row for all requests, then one per endpoint."""

    a: Side
    b: Side
    settings: dict[str, float]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """Whether anything regressed."""
        return any(r.regressed for r in self.rows)

    @property
    def regressed_endpoints(self) -> list[str]:
        """Names of the endpoints (not "all") that regressed."""
        return [r.name for r in self.rows if r.regressed and r.name != OVERALL]

    @property
    def not_judged(self) -> list[str]:
        """Why no regression verdict is given: one line per side that is a run that did not
        complete (unfinished, failed, interrupted, ...). Empty when both can be judged."""
        return [
            f"{name} (`{side.label}`) ended as `{side.outcome}`: {why}"
            for name, side in (("B", self.b), ("A", self.a))
            if (why := side.not_judged) is not None
        ]

    @property
    def judged(self) -> bool:
        """Whether a regression verdict is given (both sides complete runs or baselines)."""
        return not self.not_judged

    def not_judged_exit_code(self) -> int | None:
        """The exit code of a comparison without a verdict: the run's own (B's first, then
        A's; e.g. 5 for k6_error, crashed or unfinished, 130 interrupted, 6 refused), or
        None when the comparison is judged."""
        for side in (self.b, self.a):
            if side.not_judged is not None:
                return not_judged_exit_code(side.outcome, side.exit_code)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The comparison as the ``compare.json`` document."""
        return _stable(
            {
                "schema_version": COMPARE_SCHEMA_VERSION,
                "a": _side_dict(self.a),
                "b": _side_dict(self.b),
                "settings": self.settings,
                "judged": self.judged,
                "not_judged": self.not_judged,
                "regressed": self.regressed if self.judged else None,
                "regressed_endpoints": self.regressed_endpoints,
                "rows": [{**asdict(r), "regressed": r.regressed} for r in self.rows],
                "notes": self.notes,
            }
        )


def _side_dict(side: Side) -> dict[str, Any]:
    return {
        "label": side.label,
        "kind": side.kind,
        "scenario": side.scenario,
        "environment": side.environment,
        "profile": side.profile,
        "started_at": side.started_at,
        "sample_kind": side.sample_kind,
        "outcome": side.outcome,
    }


def _stable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


# --- loading sides ------------------------------------------------------------------------


# The rows of a mix's flows, beside its endpoints: ``flow:linkedin-scrape``.
FLOW_PREFIX = "flow:"


def read_results(run_dir: Path) -> ResultsDocument:
    """A run folder's results.json, built first (``orch report``) when it is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(
            f"{run_dir} is not a run folder; pass a folder under results/ written by `orch run`"
        )
    folder = RunFolder(run_dir)
    if not folder.results_path.is_file():
        build_report(run_dir)
    return folder.read_results()


def figures_by_endpoint(results: ResultsDocument) -> dict[str, dict[str, Any]]:
    """``{"all": overall, endpoint: figures, ...}`` from a results.json document, each
    endpoint's figures as in the file."""
    out: dict[str, dict[str, Any]] = {}
    if results.overall is not None:
        out[OVERALL] = results.overall.model_dump()
    for entry in results.endpoints:
        if entry.name and entry.name != OVERALL:
            out[entry.name] = entry.model_dump()
    for flow in results.flows:  # a mix's flows (k6 scenarios), each as a whole
        name = FLOW_PREFIX + flow.name
        out[name] = {**flow.overall.model_dump(), "name": name}
    return out


def latency_samples(run_dir: Path, results: ResultsDocument) -> dict[str, np.ndarray]:
    """Every ``http_req_duration`` point of a run, in ms, per endpoint and for "all"."""
    import numpy as np

    raw_name = results.sources.raw_file
    raw = run_dir / raw_name if raw_name is not None else None
    if raw is None or not raw.is_file():
        raw = find_raw(run_dir)
    if raw is None:
        return {}
    frame = load_points(raw, metrics=("http_req_duration",))
    if frame.empty:
        return {}
    samples: dict[str, np.ndarray] = {OVERALL: np.sort(frame["value"].to_numpy(dtype=float))}
    for name, group in frame.groupby("endpoint", sort=True):
        samples[str(name)] = np.sort(group["value"].to_numpy(dtype=float))
    flows = {flow.name for flow in results.flows}
    if flows:
        for name, group in frame.groupby("scenario", sort=True):
            if str(name) in flows:
                samples[FLOW_PREFIX + str(name)] = np.sort(group["value"].to_numpy(dtype=float))
    return samples


def load_run(run_dir: Path) -> Side:
    """A run folder as a side: its results.json figures and its raw latency points."""
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    outcome, exit_code = run_outcome(run_dir, results)
    return Side(
        label=run_dir.name,
        kind="run",
        scenario=results.run.scenario,
        environment=results.run.environment,
        profile=results.run.profile,
        figures=figures_by_endpoint(results),
        samples=latency_samples(run_dir, results),
        sample_kind="raw points",
        started_at=results.run.started_at,
        outcome=outcome,
        exit_code=exit_code,
    )


def run_outcome(run_dir: Path, results: ResultsDocument) -> tuple[Outcome | None, int | None]:
    """A run's outcome and exit code: run.json's, unless results.json (written later, by
    the report) says the run did not complete while run.json does not."""
    manifest = RunFolder(run_dir).read_manifest()
    recorded = (manifest.outcome, manifest.exit_code) if manifest is not None else (None, None)
    reported = (results.run.outcome, results.run.exit_code)
    if not_judged_reason(recorded[0]) is None and not_judged_reason(reported[0]) is not None:
        return reported
    return recorded if recorded[0] is not None else reported


# --- statistics ---------------------------------------------------------------------------


def _thin(values: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` values spread evenly over a sorted array (keeps its shape)."""
    import numpy as np

    if values.size <= limit:
        return values
    index = np.linspace(0, values.size - 1, limit).round().astype(int)
    return np.sort(values)[index]


def latency_significance(
    a: np.ndarray, b: np.ndarray, *, alpha: float, resamples: int = BOOTSTRAP_RESAMPLES
) -> Significance:
    """Is B slower than A? Mann-Whitney U (one-sided) and a bootstrap bound on the p95 shift.

    Significant when both agree: U's p-value is below ``alpha`` and the one-sided
    (1 - alpha) bootstrap lower bound of p95(B) - p95(A) is above zero (scipy's percentile
    bootstrap). The bootstrap is seeded, so the same inputs always give the same answer.
    """
    import numpy as np
    from scipy.stats import bootstrap, mannwhitneyu

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        return Significance("mann-whitney-u + bootstrap p95", None, None, None, None,
                            int(a.size), int(b.size), False)  # fmt: skip
    p_value = float(mannwhitneyu(b, a, alternative="greater", method="asymptotic").pvalue)
    diff = float(np.percentile(b, 95) - np.percentile(a, 95))
    tb, ta = _thin(b, BOOTSTRAP_MAX_POINTS), _thin(a, BOOTSTRAP_MAX_POINTS)

    def p95_shift(b: np.ndarray, a: np.ndarray, axis: int) -> np.ndarray:
        return np.percentile(b, 95, axis=axis) - np.percentile(a, 95, axis=axis)

    one_sided = bootstrap(
        (tb, ta),
        p95_shift,
        n_resamples=resamples,
        batch=max(1, 2_000_000 // max(ta.size, tb.size)),  # ≤ 2M resampled points a side
        vectorized=True,
        confidence_level=1 - alpha,
        alternative="greater",
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    # the same resamples, read as a two-sided 95 % interval
    two_sided = bootstrap(
        (tb, ta), p95_shift, n_resamples=0, vectorized=True, method="percentile",
        bootstrap_result=one_sided,
    )  # fmt: skip
    low = float(one_sided.confidence_interval.low)
    ci = (float(two_sided.confidence_interval.low), float(two_sided.confidence_interval.high))
    return Significance(
        test="mann-whitney-u + bootstrap p95",
        p_value=p_value,
        p95_diff_ms=diff,
        p95_diff_low_ms=low,
        p95_diff_ci_ms=ci,
        n_a=int(a.size),
        n_b=int(b.size),
        significant=p_value < alpha and low > 0,
    )


def error_rate_p_value(failed_a: int, total_a: int, failed_b: int, total_b: int) -> float | None:
    """One-sided two-proportion z-test: is B's error rate higher than A's?"""
    if total_a <= 0 or total_b <= 0:
        return None
    pa, pb = failed_a / total_a, failed_b / total_b
    pooled = (failed_a + failed_b) / (total_a + total_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if se == 0:
        return 1.0 if pb <= pa else 0.0
    z = (pb - pa) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


# --- comparing ----------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _pct_change(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a == 0:
        return None
    return 100.0 * (b - a) / a


def _row(
    name: str, fa: dict[str, Any] | None, fb: dict[str, Any] | None, a: Side, b: Side,
    settings: RegressionSettings,
) -> Row:  # fmt: skip
    def get(f: dict[str, Any] | None, key: str) -> float | None:
        return _num(f.get(key)) if f else None

    def lat(f: dict[str, Any] | None, key: str) -> float | None:
        return _num((f.get("latency_ms") or {}).get(key)) if f else None

    latency = {k: (lat(fa, k), lat(fb, k)) for k in ("p50", "p95", "p99")}
    change_ms = {
        k: (vb - va if va is not None and vb is not None else None)
        for k, (va, vb) in latency.items()
    }
    change_pct = {k: _pct_change(va, vb) for k, (va, vb) in latency.items()}
    ta, tb = get(fa, "throughput_rps"), get(fb, "throughput_rps")
    ea, eb = get(fa, "error_rate"), get(fb, "error_rate")
    ra, rb = get(fa, "requests"), get(fb, "requests")
    row = Row(
        name=name,
        in_a=fa is not None,
        in_b=fb is not None,
        requests=(int(ra) if ra is not None else None, int(rb) if rb is not None else None),
        throughput_rps=(ta, tb),
        throughput_change_pct=_pct_change(ta, tb),
        error_rate=(ea, eb),
        error_rate_change_points=(100.0 * (eb - ea) if ea is not None and eb is not None else None),
        error_p_value=None,
        latency_ms=latency,
        latency_change_ms=change_ms,
        latency_change_pct=change_pct,
        significance=None,
    )
    if fa is None or fb is None:
        return row
    sa, sb = a.samples.get(name), b.samples.get(name)
    if sa is not None and sb is not None:
        row.significance = latency_significance(sa, sb, alpha=settings.alpha)
    pct, ms = change_pct["p95"], change_ms["p95"]
    if (
        pct is not None
        and ms is not None
        and pct > settings.p95_increase_pct
        and ms >= settings.p95_min_increase_ms
    ):
        if row.significance is not None and row.significance.significant:
            row.latency_regressed = True
            row.reasons.append(
                f"p95 {pct:+.1f} % ({ms:+.1f} ms) > {settings.p95_increase_pct:g} %, "
                f"significant (U p={row.significance.p_value:.2g})"
            )
        else:
            row.reasons.append(f"p95 {pct:+.1f} % but not significant: not flagged")
    fails_a, fails_b = get(fa, "failed"), get(fb, "failed")
    if ra and rb and fails_a is not None and fails_b is not None:
        row.error_p_value = error_rate_p_value(int(fails_a), int(ra), int(fails_b), int(rb))
    points = row.error_rate_change_points
    if points is not None and points > settings.error_rate_increase_points:
        if row.error_p_value is not None and row.error_p_value < settings.alpha:
            row.errors_regressed = True
            row.reasons.append(
                f"error rate {points:+.2f} points > {settings.error_rate_increase_points:g}, "
                f"significant (z p={row.error_p_value:.2g})"
            )
        else:
            row.reasons.append(f"error rate {points:+.2f} points but not significant")
    return row


def compare_sides(a: Side, b: Side, settings: RegressionSettings | None = None) -> Comparison:
    """Compare B against A: one row for all requests, then one per endpoint, by name."""

    settings = settings or RegressionSettings()
    names = [OVERALL, *sorted((set(a.figures) | set(b.figures)) - {OVERALL})]
    rows = [_row(n, a.figures.get(n), b.figures.get(n), a, b, settings) for n in names]
    notes: list[str] = []
    for attr in ("scenario", "environment", "profile"):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va and vb and va != vb:
            notes.append(f"the two sides differ in {attr}: {va} vs {vb}")
    for row in rows:  # "all" may be on neither side (a run without HTTP requests)
        if row.in_b and not row.in_a:
            notes.append(f"{row.name} is only in B")
        elif row.in_a and not row.in_b:
            notes.append(f"{row.name} is only in A")
    if a.sample_kind == "quantiles" or b.sample_kind == "quantiles":
        notes.append(
            "the baseline's latencies are a quantile sample (see docs/ci.md), not raw points"
        )
    return Comparison(a, b, settings.model_dump(), rows, notes)

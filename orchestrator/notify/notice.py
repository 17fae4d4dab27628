"""What a notification says about a run, read from its folder: :class:`Notice`.

Everything comes from files orch already wrote with secrets redacted (run.json,
results.json, compare.json), plus the outcome and exit code the run ended with.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.config.notifications import events_of
from orchestrator.core import OrchError, Outcome
from orchestrator.results import RunFolder, RunManifest, verdict_line

NOTICE_SCHEMA_VERSION = 1
# How many crossed thresholds and regressed endpoints a notification names (the worst).
MOST_LISTED = 3


@dataclass(frozen=True)
class Notice:
    """One run's ending, as every kind of notification tells it (the generic webhook's JSON
    is :meth:`to_json`; README, "Notifications")."""

    scenario: str | None
    environment: str | None
    profile: str | None
    outcome: str
    events: list[str]
    exit_code: int
    k6_exit_code: int | None
    verdict: str
    started_at: str | None
    duration_s: float | None
    run_folder: str
    run_url: str | None
    figures: dict[str, Any] | None = None  # requests, error_rate, p95_ms, throughput_rps
    failed_thresholds: list[dict[str, Any]] = field(default_factory=list)
    regressions: list[dict[str, Any]] = field(default_factory=list)  # the worst first
    baseline: str | None = None

    @property
    def status(self) -> str:
        """One word: PASSED, FAILED, REGRESSED, ERROR, INCONCLUSIVE, …"""
        if "regressed" in self.events and self.outcome == Outcome.PASSED:
            return "REGRESSED"
        return self.verdict.split(":", 1)[0]

    @property
    def title(self) -> str:
        """``FAILED: linkedin-scrape on staging [load]``."""
        return f"{self.status}: {self.scenario} on {self.environment} [{self.profile}]"

    def details(self) -> list[str]:
        """The crossed thresholds and worst regressions, one plain line each."""
        return [_threshold_line(t) for t in self.failed_thresholds] + [
            _regression_line(r) for r in self.regressions
        ]

    def to_json(self) -> dict[str, Any]:
        """The generic webhook's body."""
        return {
            "schema_version": NOTICE_SCHEMA_VERSION,
            "source": f"orch {__version__}",
            **asdict(self),
            "title": self.title,
        }


def _threshold_line(row: dict[str, Any]) -> str:
    """``threshold http_req_duration{name:x}: p(95)<500 crossed (measured 812 ms)``."""
    measured = row["measured"]
    unit = f" {row['unit']}" if row["unit"] else ""
    shown = f" (measured {measured:g}{unit})" if isinstance(measured, int | float) else ""
    return f"threshold {row['metric']}: {row['expression']} crossed{shown}"


def _regression_line(row: dict[str, Any]) -> str:
    """``regressed: linkedin_webhook: p95 3.1 → 9.8 ms (+216%), error rate +1.20 points``."""
    changes = []
    a, b = row["p95_ms"]
    if row["p95_change_pct"] is not None and a is not None and b is not None:
        changes.append(f"p95 {a:.1f} → {b:.1f} ms ({row['p95_change_pct']:+.0f}%)")
    if row["error_rate_change_points"]:
        changes.append(f"error rate {row['error_rate_change_points']:+.2f} points")
    return f"regressed: {row['endpoint']}" + (f": {', '.join(changes)}" if changes else "")


def read_notice(
    run_dir: Path,
    outcome: Outcome,
    exit_code: int,
    k6_exit_code: int | None,
    environ: Mapping[str, str] | None = None,
) -> Notice:
    """The notice of the run in ``run_dir`` that ended with ``outcome`` and ``exit_code``
    (a missing or unreadable results.json or compare.json leaves its part out)."""
    folder = RunFolder(run_dir)
    try:
        manifest = folder.read_manifest() or RunManifest()
    except OrchError:
        manifest = RunManifest()
    baseline = manifest.baseline or {}
    figures, failed = _figures(folder)
    return Notice(
        scenario=manifest.scenario,
        environment=manifest.environment,
        profile=manifest.profile,
        outcome=str(outcome),
        events=sorted(events_of(outcome, bool(baseline.get("regressed")))),
        exit_code=int(exit_code),
        k6_exit_code=k6_exit_code,
        verdict=verdict_line(outcome, k6_exit_code, run_dir),
        started_at=manifest.started_at,
        duration_s=manifest.duration_s,
        run_folder=str(run_dir.resolve()),
        run_url=run_link(os.environ if environ is None else environ),
        figures=figures,
        failed_thresholds=failed,
        regressions=_regressions(folder) if baseline.get("regressed") else [],
        baseline=baseline.get("file"),
    )


def run_link(environ: Mapping[str, str]) -> str | None:
    """A link to the CI run: ``ORCH_RUN_URL`` when set, else GitHub Actions' run
    (``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``), else a GitLab
    job's ``CI_JOB_URL``; None outside CI."""
    if environ.get("ORCH_RUN_URL"):
        return environ["ORCH_RUN_URL"]
    github = [environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        server, repository, run_id = github
        return f"{server}/{repository}/actions/runs/{run_id}"
    return environ.get("CI_JOB_URL") or None


def _figures(folder: RunFolder) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The overall figures and the crossed thresholds, from results.json (none without)."""
    try:
        results = folder.read_results()
    except OrchError:
        return None, []
    overall = results.overall
    figures = None
    if overall is not None:
        figures = {
            "requests": overall.requests,
            "error_rate": overall.error_rate,
            "p95_ms": overall.latency_ms.p95,
            "throughput_rps": overall.throughput_rps,
        }
    failed = [
        {"metric": t.metric, "expression": t.expression, "measured": t.measured, "unit": t.unit}
        for t in results.thresholds
        if t.ok is False
    ][:MOST_LISTED]
    return figures, failed


def _regressions(folder: RunFolder) -> list[dict[str, Any]]:
    """The regressed rows of compare.json, the largest p95 increase first."""
    try:
        data = json.loads(folder.compare_json_path.read_text(encoding="utf-8"))
        rows = [row for row in data.get("rows", []) if row.get("regressed")]
    except (OSError, ValueError, AttributeError):
        return []
    found = []
    for row in rows:
        p95 = (row.get("latency_ms") or {}).get("p95") or [None, None]
        found.append(
            {
                "endpoint": row.get("name"),
                "p95_ms": list(p95),
                "p95_change_pct": (row.get("latency_change_pct") or {}).get("p95"),
                "error_rate": list(row.get("error_rate") or [None, None]),
                "error_rate_change_points": row.get("error_rate_change_points"),
                "reasons": list(row.get("reasons") or []),
            }
        )
    found.sort(key=lambda r: -(r["p95_change_pct"] or 0.0))
    return found[:MOST_LISTED]

"""The run folder: its name, its layout, and the `run.json` manifest.

Layout of ``results/<UTC timestamp>_<scenario>_<env>/``::

    script/<scenario>.js, script/k6_scripts/   the exact script k6 ran, with its helpers
    config.resolved.json                      the resolved configuration, secrets redacted
    k6.log                                    everything k6 printed (secrets redacted)
    summary.json                              k6's --summary-export
    raw.parquet (or raw.csv if not compacted) k6's raw time series
    run.json                                  this manifest
    results.json, report.md, charts/*.png     the figures, report and charts
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import __version__
from orchestrator.errors import SetupError
from orchestrator.outcome import Outcome

MANIFEST = "run.json"
LOG_FILE = "k6.log"
CONFIG_FILE = "config.resolved.json"
SCRIPT_DIR = "script"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_run_dir(results_dir: Path, scenario: str, environment: str) -> Path:
    """Make a new, empty run folder; fail clearly when the results folder is not writable."""
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}_{scenario}_{environment}"
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(100):
            candidate = results_dir / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as exc:
        raise SetupError(
            f"cannot create a run folder in {results_dir}: {exc.strerror}; make it writable "
            f"or set defaults.results_dir in the config to a writable folder"
        ) from None
    raise SetupError(f"too many runs named {base} in {results_dir}")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunManifest:
    """What `run.json` records about one run."""

    scenario: str
    environment: str
    profile: str
    runner: str
    k6_version: str
    started_at: str
    orch_version: str = __version__
    command: list[str] = field(default_factory=list)
    ended_at: str | None = None
    duration_s: float | None = None
    k6_exit_code: int | None = None
    k6_signal: int | None = None
    outcome: Outcome = Outcome.RUNNING
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    load_profile: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    egress: dict[str, Any] = field(default_factory=dict)  # the allow-list the run had
    dropped_environment: list[str] = field(default_factory=list)  # K6_*/proxy names not given

    def save(self, run_dir: Path) -> None:
        write_json(run_dir / MANIFEST, asdict(self))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run folder as a dict (empty when there is none)."""
    path = run_dir / MANIFEST
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data

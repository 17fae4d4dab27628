"""The run folder: its name, its layout, and the `run.json` manifest.

Layout of ``results/<UTC timestamp>_<scenario>_<env>/`` (:class:`RunFolder` names each)::

    script/<scenario>.js, script/k6_scripts/   the exact script k6 ran, with its helpers
    config.resolved.json                      the resolved configuration, secrets redacted
    k6.log                                    everything k6 printed (secrets redacted)
    summary.json                              k6's --summary-export
    raw.parquet (or raw.csv if not compacted) k6's raw time series
    run.json                                  this manifest (:class:`RunManifest`)
    results.json, report.md, charts/*.png     the figures, report and charts
    junit.xml                                 the run, thresholds and checks for CI
    compare.md, compare.json                  the comparison with a baseline, if any
    dashboard.html                            k6's web-dashboard report, if asked for

run.json carries a ``schema_version``. A run.json written before it existed reads as
version 1 (the same keys); one of a newer version is refused with a message, not misread.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator import __version__
from orchestrator.core import ConfigError, Outcome, SetupError
from orchestrator.results.model import ResultsDocument, read_results

MANIFEST_SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it over the
    old one: a crash or a full disk leaves the old file or the new one, never half of one
    (the temporary file is removed when writing it fails)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a crash or a full disk never leaves half a file)."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


# Keys only some run folders have (imported, merged, compared): left out while unset.
_OCCASIONAL_KEYS = ("imported_from", "merged_from", "baseline")


class RunManifest(BaseModel):
    """What `run.json` records about one run (README, "The run folder").

    Every key may be absent from a run.json made elsewhere (``orch report --from``, a
    hand-made folder), so each has a default; :meth:`start` makes the manifest of a new run.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    schema_version: int = MANIFEST_SCHEMA_VERSION
    scenario: str | None = None
    environment: str | None = None
    profile: str | None = None
    runner: str | None = None
    k6_version: str | None = None
    started_at: str | None = None
    orch_version: str | None = None
    command: list[str] = []
    ended_at: str | None = None
    duration_s: float | None = None
    k6_exit_code: int | None = None
    k6_signal: int | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    notes: list[str] = []
    files: dict[str, str] = {}
    load_profile: dict[str, Any] | None = None
    thresholds: dict[str, Any] = {}
    target: dict[str, Any] = {}
    egress: dict[str, Any] = {}  # the allow-list the run had
    dropped_environment: list[str] = []  # K6_*/proxy names not given to k6
    # the load-delivery rule judged ({"min_achieved", "max_dropped"}; {"judged": false} when
    # the profile opted out; empty in a folder older than the rule: the default applies)
    delivery: dict[str, Any] = {}
    load_generator: dict[str, Any] | None = None  # k6's CPU and memory (execution.loadgen)
    imported_from: dict[str, Any] | None = None  # `orch report --from`: the files read
    merged_from: list[dict[str, Any]] | None = None  # `orch report --merge`: the runners
    baseline: dict[str, Any] | None = None  # `--against-baseline`: what it was compared with

    @classmethod
    def start(cls, **fields: Any) -> RunManifest:
        """The manifest of a run that starts now with this orch: outcome ``running``."""
        return cls(**{"orch_version": __version__, "outcome": Outcome.RUNNING, **fields})

    def to_json(self) -> dict[str, Any]:
        """run.json's content (the occasional keys only when set)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for key in _OCCASIONAL_KEYS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    def save(self, run_dir: Path) -> None:
        """Write run.json into ``run_dir`` (atomically)."""
        RunFolder(run_dir).write_manifest(self)


def _upgraded(data: dict[str, Any], source: Path) -> dict[str, Any]:
    """run.json data in the current schema: a file without ``schema_version`` predates it
    and has version 1's keys; a newer version is refused rather than misread."""
    version = data.get("schema_version", 1)
    if version == MANIFEST_SCHEMA_VERSION:
        return data
    raise ConfigError(
        f"{source}: schema_version {version!r} is not one this orch reads "
        f"({MANIFEST_SCHEMA_VERSION}); read the folder with the orch that wrote it"
    )


class RunFolder:
    """One run folder: the names of its files, its creation, and its run.json."""

    MANIFEST = "run.json"
    RESULTS = "results.json"
    REPORT = "report.md"
    REPORT_HTML = "report.html"  # report.md as one self-contained page (charts inside)
    JOB_SUMMARY = "job-summary.md"  # report.md for a CI job summary (charts as Mermaid)
    SUMMARY = "summary.json"
    MERGED_SUMMARY = "merged-summary.json"  # a merged run's durations and metric types
    RAW_PARQUET = "raw.parquet"
    RAW_CSV = "raw.csv"  # what k6 writes (--out csv); compacted into raw.parquet
    LOG = "k6.log"
    CONFIG = "config.resolved.json"
    JUNIT = "junit.xml"
    COMPARE_MD = "compare.md"
    COMPARE_JSON = "compare.json"
    CHARTS = "charts"
    SCRIPT = "script"
    DATABASE = "database.json"  # the database sampled during the load (db.sampling)
    DASHBOARD = "dashboard.html"  # k6's web-dashboard export (web_dashboard_export: true)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @classmethod
    def create(cls, results_dir: Path, scenario: str, environment: str) -> RunFolder:
        """Make a new, empty run folder named ``<UTC timestamp>_<scenario>_<environment>``;
        fail clearly when the results folder is not writable."""
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
                return cls(candidate)
        except OSError as exc:
            raise SetupError(
                f"cannot create a run folder in {results_dir}: {exc.strerror}; make it writable "
                f"or set defaults.results_dir in the config to a writable folder"
            ) from None
        raise SetupError(f"too many runs named {base} in {results_dir}")

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def manifest_path(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def results_path(self) -> Path:
        return self.path / self.RESULTS

    @property
    def report_path(self) -> Path:
        return self.path / self.REPORT

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def raw_csv_path(self) -> Path:
        return self.path / self.RAW_CSV

    @property
    def raw_parquet_path(self) -> Path:
        return self.path / self.RAW_PARQUET

    @property
    def log_path(self) -> Path:
        return self.path / self.LOG

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def junit_path(self) -> Path:
        return self.path / self.JUNIT

    @property
    def compare_json_path(self) -> Path:
        return self.path / self.COMPARE_JSON

    @property
    def charts_dir(self) -> Path:
        return self.path / self.CHARTS

    @property
    def script_dir(self) -> Path:
        return self.path / self.SCRIPT

    def read_manifest(self) -> RunManifest | None:
        """run.json as the model; None when the folder has none (or it is not a JSON object).

        Raises :class:`ConfigError` naming the file and key when it holds a wrong value.
        """
        path = self.manifest_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        try:
            return RunManifest.model_validate(_upgraded(data, path))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
            )
            raise ConfigError(f"{path}: {problems}; correct or remove that key") from None

    def write_manifest(self, manifest: RunManifest) -> None:
        """Write run.json (atomically)."""
        write_json(self.manifest_path, manifest.to_json())

    def read_results(self) -> ResultsDocument:
        """results.json as the model (:func:`orchestrator.results.model.read_results`)."""
        return read_results(self.results_path)

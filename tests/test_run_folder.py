"""The run folder's typed records: run.json (RunManifest), results.json (ResultsDocument),
the Outcome enum, and the docs that describe them."""

from __future__ import annotations

import io
import json
import re
import tokenize
import types
import typing
from pathlib import Path

import pytest
from k6_outputs import K6Run, k6_binary, real_runs
from pydantic import BaseModel, ValidationError
from test_report import make_run_dir

from orchestrator.core import ConfigError, Outcome
from orchestrator.results import build_junit, build_report
from orchestrator.results.database import (
    DatabaseConnections,
    DatabaseFigures,
    DatabasePoint,
    DatabaseQuery,
    TableScans,
)
from orchestrator.results.model import (
    ChartEntry,
    CheckFigures,
    Delivery,
    EndpointFigures,
    ErrorGroup,
    FlowFigures,
    Ingest,
    Latency,
    LoadGenerator,
    RateLimits,
    RateLimitShare,
    ResultsDocument,
    RunInfo,
    ScenarioDelivery,
    Sources,
    ThresholdRow,
    Timing,
    Verdict,
    read_results,
)
from orchestrator.results.run_folder import MANIFEST_SCHEMA_VERSION, RunFolder, RunManifest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"

# docs/results-json.md's sections, each describing one model
RESULTS_SECTIONS: dict[str, type[BaseModel]] = {
    "Top level": ResultsDocument,
    "run": RunInfo,
    "sources": Sources,
    "ingest": Ingest,
    "verdict": Verdict,
    "thresholds": ThresholdRow,
    "endpoint figures": EndpointFigures,
    "latency_ms": Latency,
    "timing_ms": Timing,
    "errors": ErrorGroup,
    "rate_limits": RateLimits,
    "by_endpoint": RateLimitShare,
    "checks": CheckFigures,
    "delivery": Delivery,
    "scenarios": ScenarioDelivery,
    "flows": FlowFigures,
    "load_generator": LoadGenerator,
    "database": DatabaseFigures,
    "connections": DatabaseConnections,
    "database queries": DatabaseQuery,
    "database tables": TableScans,
    "series": DatabasePoint,
    "charts": ChartEntry,
}


def _tables(text: str) -> list[tuple[str, list[str]]]:
    """Markdown tables as (the heading above them, their rows without the header)."""
    tables: list[tuple[str, list[str]]] = []
    heading, rows = "", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            tables.append((heading, rows))
            rows = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return tables


def _keys(row: str) -> set[str]:
    """The keys a table row documents: the backticked names of its first cell (a dotted
    name such as ``skipped.malformed_lines`` documents ``skipped``)."""
    first = row.split("|")[1]
    return {key.split(".")[0] for key in re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", first)}


def _documented(text: str, header: str) -> dict[str, set[str]]:
    """Per heading, the keys of the tables whose header row starts with ``header``."""
    found: dict[str, set[str]] = {}
    for heading, rows in _tables(text):
        if rows[0].split("|")[1].strip().lower() != header:
            continue
        for row in rows[2:]:  # the header and the |---| line
            found.setdefault(heading, set()).update(_keys(row))
    return found


def _nested_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The models a model's fields hold, at any depth (through lists, unions, None)."""
    found: set[type[BaseModel]] = set()

    def visit(annotation: object) -> None:
        model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if model and annotation not in found:
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
            found.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for arg in typing.get_args(annotation):
            visit(arg)
        if isinstance(annotation, types.UnionType):
            for arg in annotation.__args__:
                visit(arg)

    visit(model)
    return found


def test_results_doc_and_model_name_the_same_keys() -> None:
    text = (ROOT / "docs" / "results-json.md").read_text(encoding="utf-8")
    documented = _documented(text, "key")
    expected = {name: set(model.model_fields) for name, model in RESULTS_SECTIONS.items()}
    assert documented == expected


def test_every_part_of_the_results_model_has_a_doc_section() -> None:
    assert _nested_models(ResultsDocument) == set(RESULTS_SECTIONS.values())


def test_readme_lists_exactly_the_run_json_keys() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The run folder", 1)[1].split("\n## ", 1)[0]
    documented = set().union(*_documented(section, "key").values())
    assert documented == set(RunManifest.model_fields)


# --- Outcome ------------------------------------------------------------------------------


def test_outcomes_are_their_strings() -> None:
    assert json.dumps({"outcome": Outcome.THRESHOLDS_FAILED}) == '{"outcome": "thresholds_failed"}'
    assert f"{Outcome.K6_ERROR}" == str(Outcome.K6_ERROR) == "k6_error"
    assert Outcome("passed") is Outcome.PASSED
    assert [o for o in Outcome if o.completed] == [Outcome.PASSED, Outcome.THRESHOLDS_FAILED]


# Docker's own container states, which are not run outcomes
NOT_OUTCOMES = {("execution/docker.py", "running")}


def test_no_outcome_string_outside_the_enum() -> None:
    values = {o.value for o in Outcome}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name == "core/outcome.py":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        for token in tokens:
            if token.type != tokenize.STRING:
                continue
            text = token.string.lstrip("rbuRBU")
            value = text[1:-1] if text[:1] in "'\"" else None
            if value in values and (name, value) not in NOT_OUTCOMES:
                found.append(f"{path.relative_to(ROOT)}:{token.start[0]}: {token.string}")
    assert found == []


# --- run.json -----------------------------------------------------------------------------


def test_a_new_run_json_carries_its_schema_version(tmp_path: Path) -> None:
    manifest = RunManifest.start(scenario="s", environment="local", profile="smoke")
    manifest.save(tmp_path)
    data = json.loads((tmp_path / RunFolder.MANIFEST).read_text(encoding="utf-8"))
    assert next(iter(data)) == "schema_version"
    assert data["schema_version"] == MANIFEST_SCHEMA_VERSION == 1
    assert data["outcome"] == "running"
    assert data["orch_version"]
    # keys only some folders have are left out while unset
    assert not {"imported_from", "merged_from", "baseline"} & set(data)
    assert RunFolder(tmp_path).read_manifest() == manifest


def test_a_run_json_older_than_schema_version_reads_as_version_1(tmp_path: Path) -> None:
    old = {
        "scenario": "linkedin-scrape",
        "environment": "local",
        "outcome": "thresholds_failed",
        "k6_exit_code": 99,
        "duration_s": 20,
        "files": {"raw": "raw.parquet"},
        "a_key_of_a_newer_orch": {"ignored": True},
    }
    (tmp_path / "run.json").write_text(json.dumps(old), encoding="utf-8")
    manifest = RunFolder(tmp_path).read_manifest()
    assert manifest is not None
    assert manifest.schema_version == 1
    assert manifest.outcome is Outcome.THRESHOLDS_FAILED
    assert (manifest.k6_exit_code, manifest.duration_s) == (99, 20.0)
    assert manifest.files == {"raw": "raw.parquet"}
    # what it does not say stays unknown, not made up
    assert (manifest.profile, manifest.orch_version, manifest.load_profile) == (None, None, None)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"schema_version": 2}, "schema_version 2 is not one this orch reads"),
        ({"duration_s": "long"}, "duration_s: Input should be a valid number"),
        ({"outcome": "finished"}, "outcome: Input should be"),
    ],
)
def test_a_run_json_orch_cannot_read_is_an_error_naming_file_and_key(
    tmp_path: Path, content: dict[str, object], problem: str
) -> None:
    (tmp_path / "run.json").write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        RunFolder(tmp_path).read_manifest()
    assert str(tmp_path / "run.json") in caught.value.message
    assert problem in caught.value.message


@pytest.mark.parametrize("content", [None, "not json {", "[1, 2]"])
def test_no_run_json_reads_as_none(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "run.json").write_text(content, encoding="utf-8")
    assert RunFolder(tmp_path).read_manifest() is None


def test_an_assigned_outcome_is_checked() -> None:
    manifest = RunManifest.start(scenario="s")
    manifest.outcome = "passed"  # type: ignore[assignment]  # a plain string still works
    assert manifest.outcome is Outcome.PASSED
    with pytest.raises(ValidationError):
        manifest.outcome = "finished"  # type: ignore[assignment]


def test_a_run_folder_is_named_and_made_once(tmp_path: Path) -> None:
    first = RunFolder.create(tmp_path / "results", "linkedin-scrape", "local")
    second = RunFolder.create(tmp_path / "results", "linkedin-scrape", "local")
    assert first.path.is_dir() and second.path.is_dir() and first.path != second.path
    assert re.fullmatch(r"\d{8}T\d{6}Z_linkedin-scrape_local(-1)?", first.name)
    assert first.manifest_path == first.path / "run.json"
    assert first.results_path == first.path / "results.json"


# --- results.json -------------------------------------------------------------------------


def test_pacing_keys_appear_only_for_a_paced_run() -> None:
    assert "tier" not in RateLimits(total=3).model_dump()
    paced = RateLimits(total=3, allowed_per_minute=40, tier=None, tier_requests_per_minute=50)
    assert paced.model_dump()["tier"] is None
    pacing = ["allowed_per_minute", "tier", "tier_requests_per_minute"]
    assert list(paced.model_dump())[-3:] == pacing


def test_numbers_keep_their_type() -> None:
    doc = ResultsDocument(run=RunInfo(duration_s=3), ingest=Ingest(first_point_at=1.0))
    data = doc.to_dict()
    assert data["run"]["duration_s"] == 3 and isinstance(data["run"]["duration_s"], int)
    assert isinstance(data["ingest"]["first_point_at"], float)
    assert ResultsDocument.model_validate_json(doc.to_json()).to_json() == doc.to_json()


def test_a_results_json_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 2}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a results\.json of schema_version 1"):
        read_results(path)
    path.write_text(json.dumps({"schema_version": 1, "verdict": {"thresholds_total": "x"}}))
    with pytest.raises(ConfigError, match=r"verdict\.thresholds_total"):
        read_results(path)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, K6Run]:
    """The real k6 runs of test_report.py (made once per session)."""
    return real_runs(tmp_path_factory.getbasetemp() / "k6-runs")


@pytest.mark.slow
@pytest.mark.skipif(k6_binary() is None, reason="k6 is not on PATH")
@pytest.mark.parametrize("name", ["normal", "failing", "limited", "interrupted"])
def test_results_json_read_and_written_again_is_the_same_bytes(
    runs: dict[str, K6Run], tmp_path: Path, name: str
) -> None:
    run_dir = make_run_dir(runs[name], tmp_path / "run")
    result = build_report(run_dir)
    written = result.results_path.read_text(encoding="utf-8")
    document = read_results(result.results_path)
    assert document.to_json() == written
    assert document.run.outcome is not None and document.verdict.thresholds_total >= 1
    junit = build_junit(run_dir).getroot()
    assert int(junit.get("tests") or 0) == 1 + len(document.thresholds) + len(document.checks)

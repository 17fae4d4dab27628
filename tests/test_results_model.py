"""results.json as a model: the verdict over thresholds, rounding, reading errors; and
:func:`write_run_folder`, a run folder written from the model for the readers' tests
(junit, history, baseline)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core import ConfigError, Outcome
from orchestrator.results import ResultsDocument, RunFolder, RunManifest, read_results
from orchestrator.results.model import (
    CheckFigures,
    EndpointFigures,
    Latency,
    RunInfo,
    ThresholdRow,
    Verdict,
    stable,
)


def threshold(
    metric: str, expression: str, ok: bool | None, measured: float | None
) -> ThresholdRow:
    """One threshold row as figures.py writes it (a ``<`` expression on milliseconds)."""
    base, _, rest = metric.partition("{")
    tags = dict([rest.rstrip("}").split(":", 1)]) if rest else {}
    stat, _, target = expression.partition("<")
    return ThresholdRow(
        metric=metric, base_metric=base, tags=tags, expression=expression, stat=stat,
        operator="<", target=float(target), unit="ms", measured=measured,
        measured_source="k6 summary" if measured is not None else None, ok=ok,
        verdict_source="k6" if ok is not None else None,
    )  # fmt: skip


def endpoint(
    name: str, requests: int, p95: float, failed: int = 0, limited: int = 0
) -> EndpointFigures:
    """An endpoint's figures over a 10 s run."""
    return EndpointFigures(
        name=name, methods=["GET"], requests=requests, throughput_rps=requests / 10,
        failed=failed, error_rate=failed / requests, rate_limited=limited,
        failed_excluding_429=failed - limited,
        error_rate_excluding_429=(failed - limited) / requests,
        latency_ms=Latency(avg=p95 / 2, min=1.0, p50=p95 / 2, p90=p95 * 0.9, p95=p95, p99=p95 * 1.5,
                           max=p95 * 2),
    )  # fmt: skip


def write_run_folder(
    folder: Path,
    *,
    scenario: str | None = "checkout",
    environment: str | None = "local",
    profile: str | None = "smoke",
    started_at: str = "2026-01-02T10:00:00.000Z",
    outcome: Outcome | None = Outcome.PASSED,
    p95: float = 120.0,
    requests: int = 1000,
    thresholds: list[ThresholdRow] | None = None,
    checks: list[CheckFigures] | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """A run folder with run.json and results.json made from the models (no raw points):
    one endpoint ``api`` that carries every request."""
    fields: dict[str, Any] = {
        "scenario": scenario, "environment": environment, "profile": profile,
        "started_at": started_at, "outcome": outcome, "duration_s": 10.0,
        "k6_exit_code": 0 if outcome == Outcome.PASSED else 99,
    }  # fmt: skip
    run_manifest = RunManifest(**{**fields, **(manifest or {})})
    rows = (
        thresholds
        if thresholds is not None
        else [threshold("http_req_duration", "p(95)<500", True, p95)]
    )
    figures = endpoint("api", requests, p95)
    doc = ResultsDocument(
        generated_by="orch test",
        run=RunInfo(
            folder=folder.name, scenario=scenario, environment=environment, profile=profile,
            started_at=started_at, outcome=outcome, duration_s=10.0,
            k6_exit_code=run_manifest.k6_exit_code,
        ),
        verdict=Verdict.of(rows), thresholds=rows,
        overall=figures.model_copy(update={"name": "all"}), endpoints=[figures],
        checks=checks or [],
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    run_manifest.save(folder)
    RunFolder(folder).results_path.write_text(doc.to_json(), encoding="utf-8")
    return folder


def reading_error(path: Path, content: str | None, read: Callable[[Path], object]) -> str:
    """The ConfigError message of ``read`` on ``path`` holding ``content`` (None: no file)."""
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read(path)
    return caught.value.message


@pytest.mark.parametrize(
    ("oks", "verdict"),
    [
        ([], (None, 0, 0, 0)),
        ([None, None], (None, 2, 0, 2)),
        ([True, None], (True, 2, 0, 1)),
        ([True, False, None, False], (False, 4, 2, 1)),
        ([True, True], (True, 2, 0, 0)),
    ],
)
def test_the_verdict_over_threshold_rows(
    oks: list[bool | None], verdict: tuple[bool | None, int, int, int]
) -> None:
    rows = [threshold("http_req_duration", f"p(95)<{i + 1}", ok, None) for i, ok in enumerate(oks)]
    got = Verdict.of(rows)
    assert (
        got.thresholds_ok,
        got.thresholds_total,
        got.thresholds_failed,
        got.thresholds_unjudged,
    ) == verdict


def test_floats_keep_ten_significant_digits_and_the_rest_is_untouched() -> None:
    assert stable(0.1 + 0.2) == 0.3
    assert stable(123456.78901234567) == 123456.789
    assert stable(1e-12 / 3) == 3.333333333e-13
    nested = {"a": [1.00000000004, 2, "x", None, True], "b": (0.5,)}
    assert stable(nested) == {"a": [1.0, 2, "x", None, True], "b": [0.5]}
    assert stable(True) is True and isinstance(stable(3), int)


def test_a_document_is_written_as_the_same_bytes_whatever_the_last_bits(tmp_path: Path) -> None:
    a = write_run_folder(tmp_path / "a", p95=120.00000000001)
    b = write_run_folder(tmp_path / "b", p95=119.99999999999)
    text_a = RunFolder(a).results_path.read_text(encoding="utf-8")
    text_b = RunFolder(b).results_path.read_text(encoding="utf-8").replace('"b"', '"a"')
    assert text_a == text_b
    assert json.loads(text_a)["overall"]["latency_ms"]["p95"] == 120.0


def test_a_written_folder_reads_back_as_it_was_made(tmp_path: Path) -> None:
    folder = write_run_folder(
        tmp_path / "run",
        thresholds=[threshold("http_req_duration{name:api}", "p(95)<100", False, 120.0)],
        checks=[CheckFigures(name="status 200", passes=9, fails=1, pass_rate=0.9)],
    )
    doc = read_results(RunFolder(folder).results_path)
    assert doc.verdict == Verdict(thresholds_ok=False, thresholds_total=1, thresholds_failed=1)
    assert doc.thresholds[0].tags == {"name": "api"} and doc.thresholds[0].target == 100.0
    assert doc.overall is not None and doc.overall.name == "all" and doc.overall.requests == 1000
    assert doc.checks[0].pass_rate == 0.9
    assert doc.run.outcome is Outcome.PASSED and doc.run.folder == "run"
    manifest = RunFolder(folder).read_manifest()
    assert manifest is not None and manifest.scenario == "checkout"


def test_keys_of_a_newer_orch_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    data = ResultsDocument(run=RunInfo(scenario="s")).to_dict()
    data["a_new_section"] = {"x": 1}
    data["run"]["a_new_key"] = 2
    path.write_text(json.dumps(data), encoding="utf-8")
    doc = read_results(path)
    assert doc.run.scenario == "s"
    assert "a_new_section" not in doc.to_dict() and "a_new_key" not in doc.to_dict()["run"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {path}: [Errno 2] No such file or directory"),
        ("{not json", "cannot read {path}: Expecting property name"),
        ("[1]", "{path} is not a results.json of schema_version 1"),
        ('{"verdict": {}}', "{path} is not a results.json of schema_version 1"),
        ('{"schema_version": "1"}', "{path} is not a results.json of schema_version 1"),
        ('{"schema_version": 1, "run": {"outcome": "finished"}}', "{path}: run.outcome: Input"),
        ('{"schema_version": 1, "thresholds": [{"metric": "m"}]}',
         "{path}: thresholds.0.base_metric: Field required; thresholds.0.expression: Field"),
    ],
)  # fmt: skip
def test_a_results_json_that_cannot_be_read_says_how_to_rebuild_it(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "results.json"
    message = reading_error(path, content, read_results)
    assert message.startswith(problem.format(path=path))
    assert message.endswith(f"rebuild it with `orch report {tmp_path}`")

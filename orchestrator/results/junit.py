"""``junit.xml`` for a run folder, so CI systems show a run's failures natively.

One test suite per kind: the run itself (did k6 complete), one test case per threshold
expression (failure when crossed, skipped when it could not be judged), one per check
(failure when any of its checks failed) and, when the run was compared with a baseline
(``compare.json``), one per compared endpoint (failure when it regressed). Everything is
read from the folder's ``run.json``, ``results.json`` and ``compare.json``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from orchestrator.core import ConfigError, SetupError
from orchestrator.results.model import CheckFigures, ResultsDocument, ThresholdRow
from orchestrator.results.run_folder import RunFolder, RunManifest

JUNIT_FILE = RunFolder.JUNIT


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _results(folder: RunFolder) -> ResultsDocument | None:
    """The folder's results.json, or None when it has no readable one."""
    try:
        return folder.read_results()
    except ConfigError:
        return None


def _suite(root: ET.Element, name: str, cases: list[ET.Element]) -> None:
    suite = ET.SubElement(root, "testsuite", name=name)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.extend(cases)


def _case(classname: str, name: str, duration: float = 0.0) -> ET.Element:
    return ET.Element("testcase", classname=classname, name=name, time=f"{duration:.3f}")


def _measured(row: ThresholdRow) -> str:
    value, unit = row.measured, row.unit
    if value is None:
        return "not measured"
    if unit == "ms":
        return f"{float(value):.2f} ms"
    if unit == "ratio":
        return f"{100 * float(value):.3f} %"
    if unit == "per_second":
        return f"{float(value):.2f}/s"
    return f"{value}"


def _threshold_cases(prefix: str, results: ResultsDocument) -> list[ET.Element]:
    cases = []
    for row, written in zip(results.thresholds, results.to_dict()["thresholds"], strict=True):
        case = _case(f"{prefix}.thresholds", f"{row.metric}: {row.expression}")
        measured = _measured(row)
        if row.ok is False:
            failure = ET.SubElement(
                case,
                "failure",
                type="threshold",
                message=f"crossed: {row.expression} (measured {measured})",
            )
            failure.text = json.dumps(written, indent=1)
        elif row.ok is None:
            ET.SubElement(case, "skipped", message=f"not judged (measured {measured})")
        else:
            ET.SubElement(case, "system-out").text = f"held: measured {measured}"
        cases.append(case)
    return cases


def _check_cases(prefix: str, checks: list[CheckFigures]) -> list[ET.Element]:
    cases = []
    for check in checks:
        case = _case(f"{prefix}.checks", check.name)
        passes, fails = check.passes, check.fails
        if fails:
            ET.SubElement(
                case,
                "failure",
                type="check",
                message=f"{fails} of {passes + fails} failed "
                f"(pass rate {100 * passes / (passes + fails):.2f} %)",
            )
        else:
            ET.SubElement(case, "system-out").text = f"{passes} passed"
        cases.append(case)
    return cases


def _regression_cases(prefix: str, compare: dict[str, Any]) -> list[ET.Element]:
    cases = []
    label = (compare.get("a") or {}).get("label")
    for row in compare.get("rows") or []:
        case = _case(f"{prefix}.regression", f"{row.get('name')} against {label}")
        if row.get("regressed"):
            ET.SubElement(
                case, "failure", type="regression", message="; ".join(row.get("reasons") or [])
            )
        else:
            ET.SubElement(case, "system-out").text = "; ".join(row.get("reasons") or []) or "ok"
        cases.append(case)
    return cases


def build_junit(run_dir: Path) -> ET.ElementTree:
    """The JUnit XML tree of a run folder."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    manifest = folder.read_manifest() or RunManifest()
    results = _results(folder)
    compare = _read(folder.compare_json_path)
    prefix = f"orch.{manifest.scenario or 'run'}.{manifest.environment or '-'}"
    duration = float(manifest.duration_s or 0.0)
    root = ET.Element("testsuites", name=f"orch {run_dir.name}")

    run_case = _case(f"{prefix}.run", "k6 ran to completion", duration)
    outcome = manifest.outcome
    if outcome is None or not outcome.completed:
        # the outcome's plain string in quotes, as before the enum
        shown = repr(None if outcome is None else outcome.value)
        error = ET.SubElement(
            run_case,
            "error",
            type=str(outcome),
            message=f"the run ended as {shown} (k6 exit {manifest.k6_exit_code}); "
            f"see {RunFolder.LOG}",
        )
        error.text = "\n".join(manifest.notes)
    if results is None:
        ET.SubElement(
            run_case,
            "error",
            type="no-results",
            message=f"no readable {RunFolder.RESULTS}; rebuild it with `orch report {run_dir}`",
        )
    _suite(root, f"{prefix}.run", [run_case])
    if results is not None:
        _suite(root, f"{prefix}.thresholds", _threshold_cases(prefix, results))
        _suite(root, f"{prefix}.checks", _check_cases(prefix, results.checks))
    if compare is not None:
        _suite(root, f"{prefix}.regression", _regression_cases(prefix, compare))
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr) or 0) for s in root)))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(run_dir: Path) -> Path:
    """Write (or rewrite) ``run_dir/junit.xml`` and return its path."""
    path = Path(run_dir) / JUNIT_FILE
    try:
        build_junit(run_dir).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise SetupError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path

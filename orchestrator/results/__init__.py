"""A run's folder and what is made from it: ingest, figures, charts, report, JUnit, merge.

pandas, DuckDB, matplotlib and Jinja2 are imported inside the functions that use them, so
importing this package stays cheap.
"""

from __future__ import annotations

from orchestrator.results.ingest import finalize_raw, find_raw, ingest_raw, load_points
from orchestrator.results.junit import build_junit, write_junit
from orchestrator.results.merge import (
    MergeSource,
    combined_outcome,
    find_sources,
    judge_merged,
    merge_into,
    merge_runs,
)
from orchestrator.results.model import ResultsDocument, read_results
from orchestrator.results.pages import markdown_to_html, write_html
from orchestrator.results.report import ReportResult, build_report, import_raw, report_import
from orchestrator.results.run_folder import (
    RunFolder,
    RunManifest,
    iso,
    utc_now,
    write_json,
    write_text_atomic,
)
from orchestrator.results.verdict import verdict_line

__all__ = [
    "MergeSource",
    "ReportResult",
    "ResultsDocument",
    "RunFolder",
    "RunManifest",
    "build_junit",
    "build_report",
    "combined_outcome",
    "finalize_raw",
    "find_raw",
    "find_sources",
    "import_raw",
    "ingest_raw",
    "iso",
    "judge_merged",
    "load_points",
    "markdown_to_html",
    "merge_into",
    "merge_runs",
    "read_results",
    "report_import",
    "utc_now",
    "verdict_line",
    "write_html",
    "write_json",
    "write_junit",
    "write_text_atomic",
]

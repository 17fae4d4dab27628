"""report.md against results.json: every section is there and says the same numbers.

The figures come from a real k6 run (tests/k6_outputs.py); the wording cases render
results documents made from the model.
"""
# ruff: noqa: F811 - the session's k6 runs are a fixture imported from test_report

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from k6_outputs import NORMAL_OPTIONS, K6Run, k6_binary
from test_history import ERROR_RED, P95_BLUE, colours
from test_report import _png_size, make_run_dir, runs  # noqa: F401
from test_results_model import endpoint

from orchestrator.core import Outcome
from orchestrator.results import ResultsDocument, build_report
from orchestrator.results.charts import p95_limits
from orchestrator.results.model import LoadGenerator, RateLimits, RunInfo, ThresholdRow
from orchestrator.results.report import render_markdown

needs_k6 = pytest.mark.skipif(k6_binary() is None, reason="k6 is not on PATH")

SECTIONS = ["## Verdict against the thresholds (NFR targets)", "## Load delivery",
            "## Endpoints", "## Errors", "## Rate limits (HTTP 429)", "## Checks", "## Charts",
            "## Run context"]  # fmt: skip


def section(text: str, heading: str) -> str:
    """The text under a ``## heading``, up to the next one."""
    return text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def table(text: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``text``, without header and rule, as cells."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row[1:-1])] for row in rows[2:]]


@pytest.fixture
def normal_report(runs: dict[str, K6Run], tmp_path: Path) -> tuple[str, dict[str, Any], Path]:
    """report.md and results.json of the normal run, with its real load profile recorded."""
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    manifest["load_profile"] = NORMAL_OPTIONS["scenarios"]["main"]  # type: ignore[index]
    (run_dir / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = build_report(run_dir)
    text = result.report_path.read_text(encoding="utf-8")
    return text, json.loads(result.results_path.read_text(encoding="utf-8")), run_dir


@pytest.mark.slow
@needs_k6
def test_every_section_in_order(normal_report: tuple[str, dict[str, Any], Path]) -> None:
    text, _results, _ = normal_report
    positions = [text.index(heading + "\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    assert text.splitlines()[2] == "# Load test report: test-normal on local"


@pytest.mark.slow
@needs_k6
def test_the_endpoint_table_says_what_results_json_says(
    normal_report: tuple[str, dict[str, Any], Path],
) -> None:
    text, results, _ = normal_report
    rows = table(section(text, "## Endpoints"))
    endpoints = results["endpoints"]
    assert len(rows) == len(endpoints) + 1  # and the bold "all" row
    for row, figures in zip(rows, endpoints, strict=False):
        latency = figures["latency_ms"]
        assert row[0] == f"`{figures['name']}`"
        assert row[1] == ", ".join(figures["methods"])
        assert row[2] == f"{figures['requests']:,}"
        assert row[3] == f"{figures['throughput_rps']:,.1f}"
        assert row[6:] == [f"{latency[k]:,.1f} ms" for k in ("p50", "p90", "p95", "p99", "max")]
    by_name = {e["name"]: e for e in endpoints}
    assert by_name["fail"]["error_rate"] == pytest.approx(0.2)
    assert [r[4] for r in rows if r[0] == "`fail`"] == ["20.0 %"]
    overall = results["overall"]
    assert rows[-1][:3] == ["**all**", "", f"**{overall['requests']:,}**"]
    assert rows[-1][8] == f"**{overall['latency_ms']['p95']:,.1f} ms**"
    headline = f"**{overall['requests']:,} requests** in "
    assert headline in section(text, "## Verdict against the thresholds (NFR targets)")


@pytest.mark.slow
@needs_k6
def test_errors_checks_and_delivery_match_the_run(
    runs: dict[str, K6Run], normal_report: tuple[str, dict[str, Any], Path]
) -> None:
    text, results, _ = normal_report
    errors = table(section(text, "## Errors"))
    assert [(r[0], r[1], r[3], r[4]) for r in errors] == [
        (f"`{e['endpoint']}`", e["status"], f"{e['count']:,}", "server error")
        for e in results["errors"]
    ]
    assert sum(e["count"] for e in results["errors"]) == runs["normal"].sent[("/api/fail", 500)]
    checks = {r[0]: r[1:] for r in table(section(text, "## Checks"))}
    for check in results["checks"]:
        mark = "✅" if check["fails"] == 0 else "❌"
        assert checks[f"{mark} {check['name']}"][:2] == [
            f"{check['passes']:,}", f"{check['fails']:,}",
        ]  # fmt: skip
    delivery = section(text, "## Load delivery")
    assert delivery.startswith("\n**✅ Delivered**: delivered means at least 95.0 % of the planned")
    (row,) = table(delivery)
    peak = results["delivery"]["vus_max_peak"]  # k6 samples VUs each second: a short run may not
    assert row == ["`main`", "shared-iterations", "300", "300 (100.0 %)", "0", "1,200", "1,200",
                   f"{'—' if peak is None else f'{peak:,}'} / —", "✅"]  # fmt: skip
    assert text.splitlines()[0] == (
        "**✅ PASSED**: every threshold held and the load was delivered (1,200 of 1,200 requests)."
    )


@pytest.mark.slow
@needs_k6
def test_charts_are_linked_drawn_and_carry_the_threshold_line(
    normal_report: tuple[str, dict[str, Any], Path],
) -> None:
    text, results, run_dir = normal_report
    charts = section(text, "## Charts")
    assert [c["key"] for c in results["charts"]] == [
        "latency", "throughput", "vus", "endpoint_p95", "histogram",
    ]  # fmt: skip
    for chart in results["charts"]:
        assert f"### {chart['title']}\n\n![{chart['title']}]({chart['file']})" in charts
        width, height = _png_size(run_dir / chart["file"])
        assert width == 1200 and height >= 600  # 10 inches at 120 dpi, panels stacked
    latency = colours(run_dir / "charts" / "latency_over_time.png")
    throughput = colours(run_dir / "charts" / "throughput_errors.png")
    assert P95_BLUE in latency and ERROR_RED in throughput  # lines, not empty frames


@pytest.mark.slow
@needs_k6
def test_the_run_context_names_the_files_and_points(
    normal_report: tuple[str, dict[str, Any], Path],
) -> None:
    text, results, _ = normal_report
    context = dict((r[0], r[1]) for r in table(section(text, "## Run context")))
    assert context["Scenario"] == "test-normal" and context["Runner"] == "native"
    assert context["Outcome"] == "passed (k6 exit code 0)"
    assert (
        context["Points in raw file"] == f"{results['ingest']['points']:,} (raw.parquet, parquet)"
    )
    assert context["Summary"] == "summary.json (summary-export)"
    assert context["Duration"] == f"{results['run']['duration_s']:.1f} s"
    assert context["Load profile"].startswith("shared-iterations: vus=3, iterations=300")
    assert '"maxDuration": "20s"' in text  # the k6 options, in full, in a details block


# --- wording, from results documents made from the model ---------------------------------


@pytest.mark.parametrize(
    ("outcome", "first"),
    [
        (Outcome.LOAD_NOT_DELIVERED, "**⚠️ INCONCLUSIVE: the load was not delivered.** The "
                                     "thresholds held, but over less load than the profile "
                                     "planned (exit 10)."),
        (Outcome.TARGET_LOST, "**⚠️ INCONCLUSIVE: the sandbox stopped during the run**"),
        (Outcome.IO_ERROR, "**⚠️ INCOMPLETE: the run folder could not be written while k6 ran**"),
        (Outcome.NOT_STARTED, "**⚪ NOT STARTED**: k6 never started (see the notes)."),
        (Outcome.K6_ERROR, "**❌ K6 ERROR**: k6 could not run the script as intended (exit code "
                           "107)."),
        (Outcome.REFUSED, "**⛔ REFUSED**: k6 tried to reach a host outside the environment's "
                          "allow-list."),
        (Outcome.RUNNING, "**⏳ UNFINISHED**: run.json still says `running`"),
        (Outcome.DRY_RUN, "**DRY_RUN**"),
        (None, "**⚪ NO RUN RECORD**: raw k6 output without orch's run.json; no threshold could "
               "be judged."),
    ],
)  # fmt: skip
def test_the_first_line_says_how_the_run_ended(outcome: Outcome | None, first: str) -> None:
    doc = ResultsDocument(run=RunInfo(scenario="s", outcome=outcome, k6_exit_code=107))
    text = render_markdown(doc)
    assert text.splitlines()[0].startswith(first)
    assert "PASSED" not in text
    assert "No HTTP requests were recorded in the raw time series." in text
    assert "The script ran no checks." in text and "No failed requests." in text


def test_cells_are_escaped_and_durations_read_as_time() -> None:
    doc = ResultsDocument(
        run=RunInfo(scenario="s", outcome=Outcome.PASSED, duration_s=3725, base_url=None),
        endpoints=[endpoint("GET /a|b\nc", 10, 80.0)],
        overall=endpoint("all", 10, 80.0),
    )
    text = render_markdown(doc)
    assert "| `GET /a\\|b c` | GET | 10 |" in text
    assert "in 1 h 02 min 05 s (" in text
    context = dict((r[0], r[1]) for r in table(section(text, "## Run context")))
    assert context["Target"] == "—" and context["Duration"] == "1 h 02 min 05 s"
    assert "Load generator: k6's CPU and memory were not sampled." in text
    assert "No load profile is recorded" in text
    assert "### Notes" not in text


def test_pacing_saturation_and_notes_are_said_when_there_are_any() -> None:
    doc = ResultsDocument(
        run=RunInfo(scenario="s", outcome=Outcome.PASSED, duration_s=150),
        rate_limits=RateLimits(total=0, allowed_per_minute=18, tier="tier-1",
                               tier_requests_per_minute=50),
        load_generator=LoadGenerator(source="/proc", samples=40, cpu_cores_available=2,
                                     cpu_avg_pct=185, cpu_max_pct=199, memory_avg_mib=80,
                                     memory_max_mib=96, saturated_share=0.8, saturated=True),
        notes=["3 malformed line(s) skipped", "a | b"],
    )  # fmt: skip
    text = render_markdown(doc)
    assert (
        "Paced by the Claude tier `tier-1`: the effective allowed rate was **18 "
        "requests/minute** (the tier allows 50 requests/minute" in text
    )
    assert "> **The load generator was saturated**: k6 used at least 90 % of its 2 core(s) " \
           "for 80.0 % of the run." in text  # fmt: skip
    assert "CPU 185 % of one core on average, 199 % at peak, of 2 core(s)" in text
    assert text.endswith("### Notes\n\n- 3 malformed line(s) skipped\n- a | b\n")
    unpaced = render_markdown(ResultsDocument(run=RunInfo(outcome=Outcome.PASSED)))
    assert "Paced by" not in unpaced and "saturated" not in unpaced
    assert unpaced.splitlines()[2] == "# Load test report: imported run"


def _p95_row(metric: str, expression: str) -> ThresholdRow:
    base, _, rest = metric.partition("{")
    tags = dict(p.split(":", 1) for p in rest.rstrip("}").split(",")) if rest else {}
    operator = "<=" if "<=" in expression else ("<" if "<" in expression else ">")
    stat, target = expression.split(operator)
    return ThresholdRow(metric=metric, base_metric=base, tags=tags, expression=expression,
                        stat=stat, operator=operator, target=float(target))  # fmt: skip


def test_the_p95_limit_drawn_for_each_endpoint() -> None:
    rows = [
        _p95_row("http_req_duration", "p(95)<500"),
        _p95_row("http_req_duration", "p(95)<400"),  # the stricter of two
        _p95_row("http_req_duration{name:api}", "p(95)<=200"),
        _p95_row("http_req_duration{url:http://x/y}", "p(95)<300"),
        _p95_row("http_req_duration{name:api,status:200}", "p(95)<50"),  # not one endpoint
        _p95_row("http_req_duration{name:api}", "p(99)<100"),  # not a p95
        _p95_row("http_req_duration{name:api}", "p(95)>1"),  # a floor, not a limit
        _p95_row("http_req_waiting{name:api}", "p(95)<10"),  # another metric
    ]
    assert p95_limits(rows) == {"*": 400.0, "api": 200.0, "http://x/y": 300.0}

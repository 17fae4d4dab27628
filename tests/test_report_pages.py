"""report.html (one self-contained file, checked in a real headless Chromium) and
job-summary.md (GitHub-flavoured Markdown, charts as Mermaid), both from report.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import chromium, open_page
from k6_outputs import K6Run
from test_report import make_run_dir, runs  # noqa: F401  (the shared real k6 runs)

from orchestrator.results import RunFolder, build_report, markdown_to_html
from orchestrator.results.pages import SUMMARY_LIMIT_BYTES, fit_summary

SORT_ENDPOINTS_BY_P95 = """
(() => {
  const table = [...document.querySelectorAll("table")]
    .find(t => t.rows[0].cells[0].textContent.trim() === "Endpoint"
               && t.rows[0].cells[2].textContent.trim() === "Requests");
  const header = [...table.rows[0].cells].find(c => c.textContent.trim() === "p95");
  const names = () => [...table.tBodies[0].rows].map(
    r => [r.cells[0].textContent.trim(), r.cells[header.cellIndex].textContent.trim()]);
  header.click();
  const up = names();
  header.click();
  return {before_first: up, after_second: names(), sort: header.getAttribute("aria-sort"),
          first: document.querySelector("main > p").textContent,
          images: [...document.images].map(i => [i.src.slice(0, 22), i.naturalWidth])};
})()
"""


@pytest.fixture
def normal_run(runs: dict[str, K6Run], tmp_path: Path) -> Path:  # noqa: F811
    run_dir = make_run_dir(runs["normal"], tmp_path / "run")
    build_report(run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="needs chromium (Debian: apt-get install chromium)")
def test_report_html_loads_offline_in_chromium_with_no_error_and_no_fetch(
    normal_run: Path, tmp_path: Path
) -> None:
    html_path = normal_run / RunFolder.REPORT_HTML
    assert html_path.is_file()
    page, seen = open_page(html_path, tmp_path / "profile", script=SORT_ENDPOINTS_BY_P95)
    (tmp_path / "report.png").write_bytes(page.screenshot)
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(page.screenshot) > 50_000
    assert page.errors == [], page.errors
    # the page itself and its embedded images only: nothing from a network
    assert [u for u in page.requests if not u.startswith(("file:", "data:"))] == []
    # the verdict first, as in report.md
    assert seen["first"].startswith("✅ PASSED")
    # every chart embedded and decoded
    results = json.loads((normal_run / RunFolder.RESULTS).read_text())
    assert len(seen["images"]) == len(results["charts"]) >= 4
    assert all(src == "data:image/png;base64," and width > 300 for src, width in seen["images"])
    # the endpoint table sorts by a column (its numbers as numbers), and back
    names = {e["name"] for e in results["endpoints"]}
    for rows, descending in ((seen["before_first"], False), (seen["after_second"], True)):
        assert {name.strip("`") for name, _ in rows[:-1]} == names and rows[-1][0] == "all"
        values = [float(text.split()[0].replace(",", "")) for _, text in rows[:-1]]
        assert values == sorted(values, reverse=descending) and len(set(values)) > 1
    assert seen["sort"] == "descending"  # the total row stays last either way


@pytest.mark.slow
def test_report_html_is_report_md_with_its_charts_inside(normal_run: Path) -> None:
    page = (normal_run / RunFolder.REPORT_HTML).read_text()
    markdown = (normal_run / RunFolder.REPORT).read_text()
    # the same sections in the same order
    md_headings = re.findall(r"^#{1,3} (.+)$", markdown, flags=re.M)
    html_headings = re.findall(r"<h[123]>(.+?)</h[123]>", page)
    assert [h.replace("&amp;", "&") for h in html_headings] == md_headings
    assert "charts/" not in re.sub(r'alt="[^"]*"', "", page)  # no link to a file beside it
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert "prefers-color-scheme: dark" in page


def test_markup_in_the_report_text_stays_text(tmp_path: Path) -> None:
    body = markdown_to_html(
        "| Endpoint |\n|---|\n| `<script>alert(1)</script>` |\n\n<img src=x onerror=alert(1)>\n\n"
        "> [!WARNING]\n> **careful**\n\n<details><summary>Load profile</summary>\n\n"
        "```json\n{}\n```\n\n</details>\n"
    )
    assert "<script>" not in body and "<img src=x" not in body
    assert "&lt;script&gt;" in body
    assert '<blockquote class="alert warning"><p><strong>Warning</strong>' in body
    assert "<details><summary>Load profile</summary>" in body and "</details>" in body


@pytest.mark.slow
def test_job_summary_renders_on_github_without_the_run_folder(normal_run: Path) -> None:
    text = (normal_run / RunFolder.JOB_SUMMARY).read_text()
    assert text.splitlines()[0].startswith("**✅ PASSED**")
    # no image a job summary could not reach; the charts as Mermaid xy-charts instead
    assert "](charts/" not in text and "<img" not in text
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        assert block.startswith('%%{init: {"themeVariables"')
        assert "\nxychart-beta\n" in block
        axis = re.search(r"x-axis .*\[(.*)\]", block)
        assert axis is not None
        points = len(axis.group(1).split(","))
        for series in re.findall(r"(?:line|bar) \[(.*)\]", block):
            assert len(series.split(",")) == points
    for section in ("## Verdict against the thresholds", "## Endpoints", "## Errors",
                    "## Rate limits (HTTP 429)", "## Timing breakdown"):  # fmt: skip
        assert section in text
    assert len(text.encode()) < SUMMARY_LIMIT_BYTES


def test_long_tables_and_texts_are_cut_to_fit_a_job_summary() -> None:
    text = "**verdict**\n" + "| row |\n" * 100_000
    cut = fit_summary(text, limit=10_000)
    assert len(cut.encode()) <= 10_000
    assert cut.startswith("**verdict**") and cut.rstrip().endswith("`report.html`)*")
    assert fit_summary("short\n") == "short\n"


@pytest.mark.slow
def test_the_timing_breakdown_adds_up_to_the_request_duration(normal_run: Path) -> None:
    results = json.loads((normal_run / RunFolder.RESULTS).read_text())
    for endpoint in results["endpoints"]:
        timing, latency = endpoint["timing_ms"], endpoint["latency_ms"]
        assert set(timing) == {"blocked", "connecting", "tls_handshaking", "sending",
                               "waiting", "receiving"}  # fmt: skip
        assert all(v is not None and v >= 0 for v in timing.values())
        # k6: http_req_duration = sending + waiting + receiving
        assert timing["sending"] + timing["waiting"] + timing["receiving"] == pytest.approx(
            latency["avg"], rel=0.01
        )
    report = (normal_run / RunFolder.REPORT).read_text()
    assert "## Timing breakdown" in report and "| Waiting (server) |" in report


@pytest.mark.slow
def test_the_baseline_comparison_reaches_all_three_forms(
    normal_run: Path, tmp_path: Path
) -> None:
    from orchestrator.config import RegressionSettings
    from orchestrator.regression import conclude_run, make_baseline

    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(make_baseline(normal_run)))
    said: list[str] = []
    code = conclude_run(normal_run, 0, settings=RegressionSettings(), baseline=baseline,
                        against_baseline=True, echo=said.append)  # fmt: skip
    assert code == 0 and any("no regression" in line for line in said)
    report = (normal_run / RunFolder.REPORT).read_text()
    summary = (normal_run / RunFolder.JOB_SUMMARY).read_text()
    page = (normal_run / RunFolder.REPORT_HTML).read_text()
    assert "## Against the baseline:" in report and "## Against the baseline:" in summary
    assert "<h2>Against the baseline:" in page
    # the comparison chart: a file link in report.md, embedded in the page, none in the summary
    assert "](charts/compare_p95.png)" in report
    assert "](charts/" not in summary
    assert page.count('src="data:image/png;base64,') == report.count("![")


@pytest.mark.slow
def test_orch_report_prints_the_job_summary_for_github(normal_run: Path) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    result = CliRunner().invoke(main, ["report", str(normal_run), "--format", "github"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (normal_run / RunFolder.JOB_SUMMARY).read_text()
    assert "thresholds passed; report:" in result.stderr
    assert "thresholds passed" not in result.stdout

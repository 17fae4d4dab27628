"""report.md in two more forms: ``report.html`` (one self-contained file) and
``job-summary.md`` (GitHub-flavoured Markdown for a CI job summary).

Both come from report.md's one template, so they can never disagree with it:

- report.html is report.md's own text turned into HTML (markdown-it, raw HTML escaped, so
  an endpoint name cannot inject markup), its charts embedded as ``data:`` images, tables
  sortable, light and dark. A Content-Security-Policy forbids every fetch: it works
  offline and from an e-mail attachment.
- job-summary.md is the template rendered for GitHub: a job summary cannot reach the run's
  files, so the charts become Mermaid ``xychart-beta`` blocks (GitHub renders Mermaid in
  job summaries) drawn from the same time series, and long tables are cut. It stays far
  below GitHub's 1 MiB summary limit (:data:`SUMMARY_LIMIT_BYTES`).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path

from orchestrator.core import SetupError
from orchestrator.results.ingest import Bucket
from orchestrator.results.run_folder import RunFolder, write_text_atomic

# GitHub refuses a step summary over 1 MiB; several runs share one step in the workflow.
SUMMARY_LIMIT_BYTES = 200_000
MERMAID_POINTS = 40  # points per Mermaid line: enough for a trend, small to render
_IMAGE = re.compile(r'<img src="(?P<src>[^"]+)" alt="(?P<alt>[^"]*)"[^>]*>')
_ALERT = re.compile(
    r"<blockquote>\s*<p>\[!(?P<kind>NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*", re.IGNORECASE
)
_DETAILS_OPEN = re.compile(
    r"<p>&lt;details&gt;&lt;summary&gt;(?P<title>[^&<]*)&lt;/summary&gt;</p>"
)
_DETAILS_CLOSE = "<p>&lt;/details&gt;</p>"


def write_html(run_dir: Path) -> Path:
    """Write ``report.html`` from the folder's report.md and charts; return its path."""
    folder = RunFolder(run_dir)
    markdown = folder.report_path.read_text(encoding="utf-8")
    title = next(
        (line[2:] for line in markdown.splitlines() if line.startswith("# ")), "Load test report"
    )
    body = _embed_images(markdown_to_html(markdown), run_dir)
    page = _PAGE.format(title=html.escape(title), body=body, style=_STYLE, script=_SCRIPT)
    path = run_dir / RunFolder.REPORT_HTML
    try:
        write_text_atomic(path, page)
    except OSError as exc:
        raise SetupError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def markdown_to_html(markdown: str) -> str:
    """report.md's Markdown as HTML: CommonMark with tables; raw HTML in the text escaped,
    but for the report's own ``<details>`` and GitHub's alert blockquotes."""
    from markdown_it import MarkdownIt  # lazy: only reports need it

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    body = _ALERT.sub(
        lambda m: f'<blockquote class="alert {m["kind"].lower()}"><p>'
        f"<strong>{m['kind'].capitalize()}</strong> ",
        body,
    )
    body = _DETAILS_OPEN.sub(lambda m: f"<details><summary>{m['title']}</summary>", body)
    return body.replace(_DETAILS_CLOSE, "</details>")


def _embed_images(body: str, run_dir: Path) -> str:
    """Each ``<img src="charts/x.png">`` of the run folder as a ``data:`` URI; an image
    outside the folder or missing becomes its alt text."""
    root = run_dir.resolve()

    def inline(match: re.Match[str]) -> str:
        src, alt = html.unescape(match["src"]), match["alt"]
        if src.startswith("data:image/"):
            return match[0]
        path = (run_dir / src).resolve()
        if not path.is_relative_to(root) or not path.is_file() or path.suffix != ".png":
            return f'<span class="missing">[{alt}: {html.escape(src)} not found]</span>'
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{alt}">'

    return _IMAGE.sub(inline, body)


def fit_summary(text: str, limit: int = SUMMARY_LIMIT_BYTES) -> str:
    """``text`` cut at a line to at most ``limit`` bytes, saying so at its end."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[: limit - 200].decode("utf-8", errors="ignore").rsplit("\n", 1)[0]
    return cut + "\n\n*(cut to fit a job summary: the whole report is `report.html`)*\n"


def mermaid_charts(buckets: list[Bucket], bucket_s: int) -> dict[str, str]:
    """Mermaid ``xychart-beta`` blocks of the run's time series, by chart key (latency,
    throughput); none without points."""
    if not buckets:
        return {}
    groups = _groups(buckets)
    seconds = [round(group[0].t) for group in groups]
    width = bucket_s * len(groups[0])
    p95 = [_top(b.p95 for b in group) for group in groups]
    p50 = [_top(b.p50 for b in group) for group in groups]
    rps = [sum(b.requests for b in group) / (bucket_s * len(group)) for group in groups]
    errors = [
        sum(b.failed_not_429 + b.rate_limited for b in group) / (bucket_s * len(group))
        for group in groups
    ]
    axis = f'x-axis "seconds since the start" [{", ".join(str(s) for s in seconds)}]'
    return {
        "latency": _block(
            "#ff7f0e, #1f77b4",
            f"Latency, ms (upper line p95, lower line p50; {width} s buckets)",
            axis,
            'y-axis "ms"',
            [f"line [{_values(p95)}]", f"line [{_values(p50)}]"],
        ),
        "throughput": _block(
            "#1f77b4, #d62728",
            f"Requests per second (bars), failed or rate-limited per second (line; {width} s "
            "buckets)",
            axis,
            'y-axis "req/s"',
            [f"bar [{_values(rps)}]", f"line [{_values(errors)}]"],
        ),
    }


def _groups(buckets: list[Bucket]) -> list[list[Bucket]]:
    size = max(1, -(-len(buckets) // MERMAID_POINTS))
    return [buckets[i : i + size] for i in range(0, len(buckets), size)]


def _top(values: Iterable[float | None]) -> float:
    """The highest of a group's values (a p95 line must not hide a spike), 0 without any."""
    present = [float(v) for v in values if v is not None]
    return max(present) if present else 0.0


def _values(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _block(palette: str, title: str, *lines: str | list[str]) -> str:
    """One ``xychart-beta`` block, its series in the colours of ``palette`` (the PNG
    charts' colours, in series order)."""
    rows: list[str] = []
    for line in lines:
        rows += line if isinstance(line, list) else [line]
    body = "\n".join(f"    {row}" for row in rows)
    theme = json.dumps({"themeVariables": {"xyChart": {"plotColorPalette": palette}}})
    return f'```mermaid\n%%{{init: {theme}}}%%\nxychart-beta\n    title "{title}"\n{body}\n```'


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
{body}
</main>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
:root { --fg: #1f2328; --bg: #ffffff; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa;
  --warn: #9a6700; --bad: #d1242f; --note: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --head: #151b23;
    --warn: #d29922; --bad: #f85149; --note: #4493f8; }
}
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1, h2 { border-bottom: 1px solid var(--line); padding-bottom: .3em; }
table { border-collapse: collapse; margin: 12px 0; display: block; overflow-x: auto; }
th, td { border: 1px solid var(--line); padding: 4px 10px; }
th { background: var(--head); cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: var(--head); }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
pre { background: var(--head); padding: 12px; overflow-x: auto; }
img { max-width: 100%; background: #fff; border-radius: 6px; padding: 4px; }
blockquote { margin: 12px 0; padding: 4px 16px; border-left: 4px solid var(--line);
  color: var(--muted); }
blockquote.alert.warning, blockquote.alert.important { border-color: var(--warn); }
blockquote.alert.caution { border-color: var(--bad); }
blockquote.alert.note, blockquote.alert.tip { border-color: var(--note); }
.missing { color: var(--bad); }
"""

# Click a column's header to sort the table by it (numbers as numbers: "1,234", "4.1 ms",
# "0.54 %"; "—" last); click again to reverse. The total row ("all") stays last.
_SCRIPT = """
(function () {
  function key(text) {
    var t = text.trim().replace(/,/g, "");
    var m = t.match(/^-?\\d+(\\.\\d+)?/);
    return m ? parseFloat(m[0]) : (t === "\\u2014" || t === "" ? null : t.toLowerCase());
  }
  function compare(a, b) {
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : 1;
    return typeof a === "number" ? -1 : 1;
  }
  document.querySelectorAll("table").forEach(function (table) {
    var body = table.tBodies[0];
    if (!body) return;
    table.querySelectorAll("th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        var total = rows.filter(function (r) { return r.cells[0].textContent.trim() === "all"; });
        rows = rows.filter(function (r) { return total.indexOf(r) < 0; });
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[column].textContent), key(r2.cells[column].textContent));
          return up ? c : -c;
        });
        rows.concat(total).forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""

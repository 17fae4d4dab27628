"""The database watched during the load, against real PostgreSQL servers and real k6.

A missing index in PostgreSQL 15 with pg_stat_statements: a loopback service looks
customers up by an unindexed e-mail column, orch loads it for a few seconds, and the
report names the sequential scan, the missing index and the slow query; once the index is
added, the next run's report names neither. The embedded server (no pg_stat_statements)
shows that the section degrades and says why.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.core import K6_SCRIPTS_DIR
from orchestrator.results import read_results
from tests.conftest import new_run_dirs
from tests.db_service import LOOKUP, customer_service
from tests.pg15 import Cluster
from tests.test_db_support import fresh_db, pg_server  # noqa: F401  (fixtures)

ROWS = 200_000

TEMPLATE = """\
// Rendered by orch: scenario {{ scenario }}; customers looked up by e-mail.
import { request } from './k6_scripts/http.js';

export const options = {{ options | tojson }};
const BASE = __ENV[{{ base_url_var }}] || {{ base_url }};

export default function () {
  const n = (__VU * 7919 + __ITER * 31) % {{ rows }};
  const url = `${BASE}/customer?email=user${n}@example.com`;
  request('GET', url, null, { tags: { name: 'customer' } });
}
"""

PROJECT = """\
defaults:
  environment: local
  results_dir: results
  runner: native
database:
  sample_interval_s: 1
environments:
  local:
    kind: local
    base_url: {base_url}
    database_url: {database_url}
scenarios:
  lookup:
    template: lookup.js.j2
    vars:
      rows: {rows}
    thresholds:
      http_req_failed: ["rate<0.01"]
    default_profile: short
    profiles:
      short:
        executor: constant-arrival-rate
        rate: 15
        timeUnit: 1s
        duration: 4s
        preAllocatedVUs: 4
        maxVUs: 8
"""


def make_customers(url: str, rows: int = ROWS) -> None:
    """``customers`` with ``rows`` rows and no index on ``email``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text)"
        )
        conn.execute(
            "INSERT INTO customers SELECT i, 'user' || i || '@example.com', 'Customer ' || i "
            "FROM generate_series(0, %s) AS i",
            (rows - 1,),
        )
        conn.execute("VACUUM ANALYZE customers")


@pytest.fixture
def shop(pg15: Cluster) -> Iterator[str]:
    """A new database ``shop_<n>`` on the PostgreSQL 15 cluster, with pg_stat_statements
    and the customers table; dropped afterwards."""
    name = f"shop_{abs(hash(object())) % 10**8}"
    with psycopg.connect(pg15.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg15.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    make_customers(url)
    yield url
    with psycopg.connect(pg15.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def load_project(root: Path, base_url: str, database_url: str, rows: int = ROWS) -> Path:
    """An orch project whose one scenario looks customers up at ``base_url``."""
    (root / "templates").mkdir(parents=True, exist_ok=True)
    shutil.copytree(K6_SCRIPTS_DIR, root / "k6_scripts", dirs_exist_ok=True)
    (root / "templates" / "lookup.js.j2").write_text(TEMPLATE.replace("{{ rows }}", str(rows)))
    config = root / "orch.yaml"
    config.write_text(
        PROJECT.format(base_url=base_url, database_url=json.dumps(database_url), rows=rows),
        encoding="utf-8",
    )
    return config


def run_load(config: Path) -> tuple[Path, str]:
    """``orch run lookup``; the new run folder and its report.md."""
    before = set(new_run_dirs(config))
    result = CliRunner().invoke(main, ["run", "lookup", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (run_dir,) = new_run_dirs(config, before)
    return run_dir, (run_dir / "report.md").read_text(encoding="utf-8")


def section(report: str, title: str) -> str:
    """The text of the report's ``### title`` section."""
    return report.split(f"### {title}\n", 1)[1].split("\n#", 1)[0]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_missing_index_is_named_and_gone_once_added(shop: str, tmp_path: Path) -> None:
    with customer_service(shop) as service:
        config = load_project(tmp_path, service.url, shop)
        run_dir, report = run_load(config)

        scans = section(report, "Sequential scans on large tables during the run")
        assert "`public.customers`" in scans and "`customers(email)`" in scans, report
        assert "orch db plan" in scans
        slower = section(report, "Queries that got slower under load")
        assert "SELECT id, name FROM customers WHERE email = $1" in slower, report
        assert "Connections near the pool limit" in report
        doc = read_results(run_dir / "results.json")
        assert doc.database is not None and doc.database.samples >= 3
        (table,) = doc.database.seq_scans_on_large_tables
        assert table.live_rows >= ROWS * 0.9 and table.seq_scans > 10
        assert table.filter_columns == ["email"]
        assert (run_dir / "charts" / "database.png").stat().st_size > 10_000
        assert "The database during the load" in (run_dir / "report.html").read_text()

        with psycopg.connect(shop, autocommit=True) as conn:
            conn.execute("CREATE INDEX customers_email_idx ON customers (email)")
            conn.execute("ANALYZE customers")
        _run_dir, report = run_load(config)

    scans = section(report, "Sequential scans on large tables during the run")
    assert scans.strip().startswith("None: no table of 10,000 rows"), report
    slower = section(report, "Queries that got slower under load")
    assert LOOKUP.replace("%s", "$1") not in slower and slower.strip().startswith("None"), report


@pytest.mark.slow
@pytest.mark.postgres
def test_without_pg_stat_statements_the_report_says_so(
    fresh_db: str,  # noqa: F811 - the fixture of tests/test_db_support.py
    tmp_path: Path,
) -> None:
    make_customers(fresh_db, rows=20_000)
    with customer_service(fresh_db) as service:
        config = load_project(tmp_path, service.url, fresh_db, rows=20_000)
        run_dir, report = run_load(config)

    slower = section(report, "Queries that got slower under load")
    assert "Not known: `pg_stat_statements` is not available" in slower, report
    assert "pg_stat_statements is not installed in this database" in report
    # the views every PostgreSQL has are still read: the scans are named, by table only
    scans = section(report, "Sequential scans on large tables during the run")
    assert "`customers` (columns not known: no query text)" in scans, report
    doc = read_results(run_dir / "results.json")
    assert doc.database is not None and doc.database.pg_stat_statements is False


def test_filter_columns_are_read_from_the_query_text() -> None:
    from orchestrator.results.database import filter_columns

    queries = [
        "SELECT id FROM public.orders o WHERE o.customer_id = $1 AND status IN ($2, $3) "
        "ORDER BY created_at DESC LIMIT $4",
        'SELECT * FROM "orders" WHERE total > $1',
        "SELECT * FROM order_lines WHERE sku = $1",
    ]
    assert filter_columns("public.orders", queries) == ["customer_id", "status", "total"]
    assert filter_columns("public.invoices", queries) == []




UNREACHABLE = """\
defaults: {{environment: local}}
environments:
  local: {{kind: local, base_url: "http://127.0.0.1:9", database_url: "{local}"}}
  staging: {{kind: staging, base_url: "http://127.0.0.1:9", database_url: "{staging}"}}
  production: {{kind: production, base_url: "http://127.0.0.9:9",
                database_url: "postgresql://u@127.0.0.9:5432/prod"}}
scenarios: {{}}
"""


@pytest.mark.parametrize(
    ("environment", "said"),
    [
        ("local", "not sampled: refusing to sample the database during the load: the local "
                  "environment 'local' names db.example.com"),
        ("production", "not sampled: refusing to sample the database during the load"),
        ("staging", "the database was not sampled: cannot reach the database at "
                    "u@127.0.0.1:{port}/x"),
    ],
)
def test_a_database_that_cannot_be_sampled_is_said_in_the_report(
    tmp_path: Path, environment: str, said: str
) -> None:
    from orchestrator.config import load_config
    from orchestrator.db import database_watch
    from orchestrator.results import ResultsDocument
    from orchestrator.results.database import read_database
    from orchestrator.results.report import render_markdown
    from tests.conftest import free_port

    port = free_port()  # nothing listens there
    config = tmp_path / "orch.yaml"
    config.write_text(UNREACHABLE.format(
        local="postgresql://u@db.example.com:5432/x", staging=f"postgresql://u:pw@127.0.0.1:{port}/x"
    ))  # fmt: skip
    out, echoed = tmp_path / "database.json", []
    with database_watch(load_config(str(config)), environment, out, echoed.append):
        pass

    figures = read_database(out)
    assert figures is not None and figures.samples == 0
    assert figures.notes[0].startswith(said.format(port=port)), figures.notes
    assert "pw" not in out.read_text()
    report = render_markdown(ResultsDocument(database=figures))
    assert "The database was not sampled (see below)." in report
    assert "### Queries that got slower under load" not in report
    assert f"- {figures.notes[0]}" in report


@pytest.mark.slow
@pytest.mark.postgres
def test_connections_near_the_limit_are_reported(shop: str, tmp_path: Path) -> None:
    from orchestrator.db import DatabaseSampler
    from orchestrator.results import ResultsDocument
    from orchestrator.results.database import read_database
    from orchestrator.results.report import render_markdown

    held = [psycopg.connect(shop, autocommit=True) for _ in range(31)]  # no service here
    try:
        held[0].execute("BEGIN")
        held[0].execute("SELECT count(*) FROM customers")  # one idle in transaction
        sampler = DatabaseSampler(shop, 0.5, tmp_path / "database.json")
        sampler.start()
        threading.Event().wait(1.2)
        sampler.stop()
    finally:
        for conn in held:
            conn.close()

    figures = read_database(tmp_path / "database.json")
    assert figures is not None and figures.samples >= 3
    c = figures.connections
    assert (c.max_connections, c.reserved_connections, c.limit) == (40, 3, 37)
    assert c.peak == 31 and c.peak_idle_in_transaction == 1 and c.near_limit is True
    report = render_markdown(ResultsDocument(database=figures))
    assert "**Yes: 31 client connections at the peak, 83.8 % of the 37 allowed**" in report


def test_a_query_is_slower_from_one_and_a_half_times_its_mean_before() -> None:
    from orchestrator.results.database import database_figures

    def row(query: str, mean: float, before: float | None) -> dict[str, object]:
        return {"query": query, "calls": 10, "total_ms": 10 * mean, "mean_ms": mean,
                "calls_before": 5 if before is not None else 0, "mean_before_ms": before}

    figures = database_figures({"statements": [
        row("a", 3.0, 2.0),  # 1.5 times: slower
        row("b", 2.9, 2.0),  # 1.45 times: not
        row("c", 0.9, 0.3),  # 3 times but under 1 ms: not
        row("d", 5.0, None),  # 5 ms without a before: slower
        row("e", 4.9, None),  # not
    ]})  # fmt: skip
    assert [(q.query, q.why) for q in figures.slower_queries] == [
        ("a", "1.5× its mean before the run"),
        ("d", "mean ≥ 5 ms under load (not run before)"),
    ]

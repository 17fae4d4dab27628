"""Shared fixtures: a throw-away orch project wired to the real k6 and the real sandbox."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.core import K6_SCRIPTS_DIR, PROJECT_ROOT, TEMPLATES_DIR

# Every test measures its raw files itself (some replace the ingest to test what follows);
# tests/test_ingest_cache.py turns the per-user figures cache on in a folder of its own.
os.environ["ORCH_CACHE_DIR"] = "off"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SHORT_PROJECT_YAML = """\
defaults:
  environment: local
  results_dir: results
  runner: native
environments:
  local:
    kind: local
    base_url: http://127.0.0.1:{port}
    n8n_base_url: http://127.0.0.1:{port}
    sandbox:
      latency_ms_median: 1
      latency_ms_p95: 3
  staging:
    kind: staging
    base_url: ${{ORCH_TEST_STAGING_URL}}
    secrets:
      WEBHOOK_SECRET: ORCH_TEST_STAGING_SECRET
scenarios:
  linkedin-scrape:
    description: LinkedIn scrape jobs POSTed to the N8N webhook
    template: linkedin_scrape.js.j2
    tags:
      flow: linkedin-scrape
    vars:
      webhook_export: workflows/linkedin-scraper.json
      webhook_auth: none
      webhook_auth_header: X-N8N-API-KEY
      webhook_secret_var: WEBHOOK_SECRET
      profiles_file: linkedin-profiles.json
    thresholds:
      http_req_failed: ["rate<0.01"]
      "http_req_duration{{name:linkedin_webhook}}": ["p(95)<500"]
    default_profile: smoke
    profiles:
      smoke:
        executor: constant-arrival-rate
        rate: 20
        timeUnit: 1s
        duration: 2s
        preAllocatedVUs: 2
        maxVUs: 10
      impossible:
        executor: shared-iterations
        vus: 2
        iterations: 20
        thresholds:
          "http_req_duration{{name:linkedin_webhook}}": ["p(95)<0.001"]
      long:
        executor: constant-arrival-rate
        rate: 10
        timeUnit: 1s
        duration: 60s
        preAllocatedVUs: 2
        maxVUs: 5
"""


def add_to_local_environment(config: Path, block: str) -> Path:
    """Add ``block`` (YAML at an environment key's indentation) to the short project's
    local environment."""
    last = "      latency_ms_p95: 3\n"  # the local environment's last line
    config.write_text(config.read_text().replace(last, last + block, 1), encoding="utf-8")
    return config


def invoke_run(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``orch run linkedin-scrape --config CONFIG ARGS…`` in this process (CliRunner)."""
    return CliRunner().invoke(
        main, ["run", "linkedin-scrape", "--config", str(config), *args], env=env
    )


def new_run_dirs(config: Path, before: set[Path] | None = None) -> list[Path]:
    """The project's run folders (those not in ``before``), oldest first."""
    results = config.parent / "results"
    found = sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []
    return [p for p in found if p not in (before or set())]


# Where N8N serves the test export's trigger (its webhookId, its path): by N8N's rules.
TEST_WEBHOOK_PATH = "/webhook/7f3c2a4e-9b1d-4e6f-8a2c-3d5e7f9a1b2c/linkedin-scraper/:uniqueId"


def write_test_export(root: Path, authentication: str = "none") -> Path:
    """The shipped N8N export with its trigger's authentication set (none by default: the
    short project's sandbox checks no key), as ``root/workflows/linkedin-scraper.json``."""
    data = json.loads((PROJECT_ROOT / "workflows" / "linkedin-scraper.json").read_text())
    trigger = data["nodes"][0]
    trigger["parameters"]["authentication"] = authentication
    if authentication == "none":
        trigger.pop("credentials", None)
    path = root / "workflows" / "linkedin-scraper.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Make a project folder with orch's templates and a short-profile orch.yaml.

    Call it with ``extra_yaml`` to append text, or ``yaml`` to replace the config entirely.
    The N8N export the scenario names is written beside it (:func:`write_test_export`).
    Returns the config file's path.
    """

    def make(yaml: str | None = None, extra_yaml: str = "") -> Path:
        shutil.copytree(TEMPLATES_DIR, tmp_path / "templates", dirs_exist_ok=True)
        shutil.copytree(K6_SCRIPTS_DIR, tmp_path / "k6_scripts", dirs_exist_ok=True)
        migrations = PROJECT_ROOT / "supabase" / "migrations"
        shutil.copytree(migrations, tmp_path / "supabase" / "migrations", dirs_exist_ok=True)
        write_test_export(tmp_path)
        text = yaml if yaml is not None else SHORT_PROJECT_YAML.format(port=free_port())
        config = tmp_path / "orch.yaml"
        config.write_text(text + extra_yaml, encoding="utf-8")
        return config

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under ORCH_FAIL_ON_SKIP=1 (set by .ci/run) a skipped test counts as failed."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("ORCH_FAIL_ON_SKIP") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every component must be present: {report.longrepr}"


@pytest.fixture(scope="session")
def pg15():  # type: ignore[no-untyped-def]
    """A PostgreSQL 15 cluster with pg_stat_statements preloaded, for the session
    (tests/pg15.py); skipped where it cannot start, failed under CI=true or
    ORCH_FAIL_ON_SKIP=1."""
    from tests.pg15 import ClusterUnavailable, start_cluster

    try:
        cluster = start_cluster(free_port())
    except ClusterUnavailable as exc:
        if os.environ.get("CI") == "true" or os.environ.get("ORCH_FAIL_ON_SKIP") == "1":
            pytest.fail(f"PostgreSQL 15 is required here: {exc}")
        pytest.skip(f"PostgreSQL 15 is not available: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()

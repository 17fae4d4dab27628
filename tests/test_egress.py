"""The allow-list itself: its networks, the production-N8N exception (Python side and k6
side), the load cap, k6's explicit environment, and what env check and doctor say.

Every connection here is to loopback. "Production" is `localhost` or 127.0.0.2.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import SandboxSettings, load_config, resolve_run
from orchestrator.config.egress import build_policy, complement, normalize_host
from orchestrator.core import ExitCode, RefusedError
from orchestrator.target import N8NWorkflows, start_sandbox
from tests.conftest import TEST_WEBHOOK_PATH, free_port


def add_environment(config: Path, text: str, top: str = "") -> Path:
    """Insert an environment block (and optional top-level keys) into a test project."""
    head, scenarios = config.read_text().split("scenarios:\n", 1)
    config.write_text(head + text + "scenarios:\n" + scenarios + top)
    return config


def test_complement_blocks_everything_outside_the_allowed_networks() -> None:
    allowed = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"),
               ipaddress.ip_network("198.51.100.7/32")]  # fmt: skip
    blocked = complement(allowed)
    rng = random.Random(12)
    for _ in range(2000):
        address = ipaddress.ip_address(rng.getrandbits(32))
        inside = any(address in net for net in allowed if net.version == 4)
        assert inside != any(address in net for net in blocked if net.version == 4), address
    for _ in range(2000):
        address = ipaddress.ip_address(rng.getrandbits(128))
        inside = any(address in net for net in allowed if net.version == 6)
        assert inside != any(address in net for net in blocked if net.version == 6), address
    assert complement([]) == [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("127．0．0．2", "127.0.0.2"),  # full-width dots
        ("127%2e0%2e0%2e2", "127.0.0.2"),  # percent-encoded dots
        ("API.Sales-Machine.COM.", "api.sales-machine.com"),
        ("[::ffff:127.0.0.2]", "127.0.0.2"),
        ("2130706434", "127.0.0.2"),
        ("0x7f.0.0.2", "127.0.0.2"),
        ("0", "0.0.0.0"),
        ("ａｐｉ.sales-machine.com", "api.sales-machine.com"),  # full-width letters
    ],
)
def test_hosts_reduce_to_one_spelling(written: str, normal: str) -> None:
    assert normalize_host(written) == normal


SHARED_N8N = """\
  shared:
    kind: staging
    base_url: http://127.0.0.1:{port}
    n8n_base_url: http://localhost:{port}
    production_n8n:
      host: localhost
      webhook_paths: ["{hook}"]
      max_requests_per_second: 4
"""
PRODUCTION_IS_LOCALHOST = "production:\n  hosts: [localhost]\n"


def shared_project(project: Callable[..., Path], port: int) -> Path:
    """A staging environment on the production N8N's webhook path of the test export."""
    block = SHARED_N8N.format(port=port, hook=TEST_WEBHOOK_PATH)
    return add_environment(project(), block, PRODUCTION_IS_LOCALHOST)


def n8n_of(config: Path) -> N8NWorkflows:
    """The test project's N8N export, for a sandbox started by hand."""
    return N8NWorkflows((str(config.parent / "workflows" / "linkedin-scraper.json"),))


def test_shared_production_n8n_allows_only_its_webhook_paths(
    project: Callable[..., Path],
) -> None:
    config = load_config(shared_project(project, 9))
    policy = build_policy(config, "shared")
    hook = TEST_WEBHOOK_PATH.removesuffix("/:uniqueId")
    policy.check_url(f"http://localhost:9{hook}/abc", "test")
    for path in (
        "/webhook/other/abc",
        "/webhook/linkedin-scraper/abc",  # the story's assumption: not the path N8N serves
        f"{hook}/abc/extra",
        f"{hook}/..",
        f"{hook}/a%2fb",
        hook.replace("/webhook/", "/webhook//") + "/abc",
        "/rest/workflows",
        "/",
    ):
        with pytest.raises(RefusedError, match="webhook paths"):
            policy.check_url(f"http://localhost:9{path}", "test")
    # the same host without the declaration is simply production
    config.environments["shared"].production_n8n = None
    with pytest.raises(RefusedError, match="production"):
        build_policy(config, "shared")


def test_the_load_on_a_shared_production_n8n_is_capped(project: Callable[..., Path]) -> None:
    config = load_config(shared_project(project, 9))
    run = resolve_run(config, "linkedin-scrape", "shared", "smoke")  # 20/s in the profile
    options = run.profile.k6_options()
    assert options["timeUnit"] == "1m" and options["rate"] == 4 * 60
    with pytest.raises(Exception, match="arrival-rate"):
        resolve_run(config, "linkedin-scrape", "shared", "impossible")  # shared-iterations


def orch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_k6_refuses_another_path_on_the_shared_production_n8n(
    project: Callable[..., Path],
) -> None:
    """The Python side cannot see the path the script builds; the script's one request
    function can, and the run ends refused (exit 6), not passed."""
    port = free_port()
    config = shared_project(project, port)
    text = config.read_text().replace(
        "webhook_export: workflows/linkedin-scraper.json",
        "webhook_export: workflows/linkedin-scraper.json\n      webhook_path: /webhook/admin/:id",
    )
    config.write_text(text)
    settings = SandboxSettings(port=port, latency_ms_median=0, latency_ms_p95=0)
    with start_sandbox(settings, n8n=n8n_of(config)):
        done = orch("run", "linkedin-scrape", "--env", "shared", "--config", str(config))
    assert done.returncode == ExitCode.REFUSED, done.stderr
    run_json = json.loads(next((config.parent / "results").glob("*/run.json")).read_text())
    assert run_json["outcome"] == "refused"
    assert any("production N8N" in note for note in run_json["notes"])
    assert any("refused" in note and "admin" in note for note in run_json["notes"])
    assert run_json["egress"]["production_n8n"]["host"] == "localhost"


@pytest.mark.slow
def test_a_shared_production_n8n_run_on_its_paths_passes_and_says_so(
    project: Callable[..., Path],
) -> None:
    port = free_port()
    config = shared_project(project, port)
    settings = SandboxSettings(port=port, latency_ms_median=0, latency_ms_p95=0)
    with start_sandbox(settings, n8n=n8n_of(config)):
        done = orch("run", "linkedin-scrape", "--env", "shared", "--config", str(config))
    assert done.returncode == ExitCode.OK, done.stderr
    run_dir = next((config.parent / "results").glob("*_shared"))
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["outcome"] == "passed"
    assert run_json["load_profile"]["rate"] == 240 and run_json["load_profile"]["timeUnit"] == "1m"
    assert (
        "production N8N (localhost) used with test workflows" in (run_dir / "report.md").read_text()
    )


@pytest.mark.slow
def test_k6_gets_no_k6_or_proxy_variable_from_orch(project: Callable[..., Path]) -> None:
    """K6_* variables override a script's options (its block lists too): k6 never sees them."""
    config = project()
    done = orch(
        "run", "linkedin-scrape", "--config", str(config),
        env={"K6_BLACKLIST_IPS": "", "K6_VUS": "50", "K6_ITERATIONS": "1",
             "HTTP_PROXY": "http://127.0.0.2:9", "http_proxy": "http://127.0.0.2:9"},
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stderr
    run_dir = next((config.parent / "results").glob("*"))
    run_json = json.loads((run_dir / "run.json").read_text())
    dropped = run_json["dropped_environment"]
    for name in ("K6_BLACKLIST_IPS", "K6_VUS", "K6_ITERATIONS", "HTTP_PROXY", "http_proxy"):
        assert name in dropped
    assert any("K6_VUS" in note for note in run_json["notes"])
    results = json.loads((run_dir / "results.json").read_text())
    assert results["overall"]["requests"] > 1  # K6_ITERATIONS=1 did not reach k6


@pytest.mark.slow
def test_env_check_shows_the_allow_list_and_warns_without_production(
    project: Callable[..., Path],
) -> None:
    port = free_port()
    config = add_environment(
        project(), f"  stage2:\n    kind: staging\n    base_url: http://localhost:{port}\n"
    )
    with start_sandbox(SandboxSettings(port=port)):
        result = CliRunner().invoke(main, ["env", "check", "stage2", "--config", str(config)])
    assert "allow-list" in result.output and "localhost" in result.output
    assert "127.0.0.1" in result.output
    assert "NO PRODUCTION IS DECLARED" in result.output
    doctor = CliRunner().invoke(main, ["doctor", "--config", str(config)])
    assert "NO PRODUCTION IS DECLARED" in doctor.output


@pytest.mark.slow
def test_an_unset_variable_in_a_production_declaration_fails_closed(
    project: Callable[..., Path],
) -> None:
    config = add_environment(project(), "", "production:\n  hosts: ['${ORCH_T_PROD_HOST}']\n")
    done = orch("run", "linkedin-scrape", "--config", str(config), env={"ORCH_T_PROD_HOST": ""})
    assert done.returncode == ExitCode.REFUSED, done.stderr
    assert "ORCH_T_PROD_HOST" in done.stderr
    assert not (config.parent / "results").exists()

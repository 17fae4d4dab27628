"""The production guard refuses every disguise of production, and k6 blocks it too.

No test here sends traffic anywhere but loopback: refused runs stop before k6 starts, and
the k6 blocking test aims a blocked name that would resolve to loopback anyway.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.config.egress import database_hosts, normalize_host, url_host
from orchestrator.core import ExitCode

ENVIRONMENTS_YAML = """\
  production:
    kind: production
    base_url: https://api.sales-machine.com
    n8n_base_url: https://n8n.srv997159.hstgr.cloud
  disguised:
    kind: staging
    base_url: {base_url}
    vars:
      callback: {callback}
"""
DECLARED_YAML = """\
production:
  hosts: [api-prod.sales-machine.com]
  addresses: [203.0.113.10]
"""


def config_with(project: Callable[..., Path], base_url: str, callback: str = "none") -> Path:
    """A project with a production environment, declared production hosts, and a staging
    environment `disguised` whose base_url and vars the test chooses."""
    config = project()
    head, scenarios = config.read_text().split("scenarios:\n", 1)
    environments = ENVIRONMENTS_YAML.format(base_url=base_url, callback=callback)
    config.write_text(head + environments + "scenarios:\n" + scenarios + DECLARED_YAML)
    return config


def orch_run(config: Path, env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            "linkedin-scrape",
            "--env",
            env,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(done: subprocess.CompletedProcess[str], config: Path, *needles: str) -> None:
    assert done.returncode == ExitCode.REFUSED, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    assert "refusing" in done.stderr
    for needle in needles:
        assert needle in done.stderr
    results = config.parent / "results"
    assert not results.exists() or not any(results.iterdir()), "a refused run wrote a folder"


@pytest.mark.slow
def test_production_kind_is_refused(project: Callable[..., Path]) -> None:
    config = config_with(project, "http://127.0.0.1:9")
    assert_refused(orch_run(config, "production"), config, "kind production", "no override")


@pytest.mark.slow
@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.sales-machine.com",
        "https://API.Sales-Machine.COM./v1",  # case and trailing dot
        "https://api.sales-machine.com:443",  # default port
        "http://api.sales-machine.com:8443",  # another port
        "https://api-prod.sales-machine.com",  # a declared alias
        "http://203.0.113.10:8080",  # an IP literal
        "http://[::ffff:203.0.113.10]/",  # the same address, IPv4-mapped IPv6
        "http://0xcb.0x00.0x71.0x0a/",  # the same address, hex
        "http://3405803786/",  # the same address, one integer
        "https://n8n.srv997159.hstgr.cloud",  # production's N8N host
    ],
)
def test_disguised_production_hosts_are_refused(
    project: Callable[..., Path], base_url: str
) -> None:
    config = config_with(project, base_url)
    assert_refused(orch_run(config, "disguised"), config, "production")


@pytest.mark.slow
def test_production_host_hidden_in_a_staging_variable_is_refused(
    project: Callable[..., Path],
) -> None:
    config = config_with(
        project, "http://127.0.0.1:9", callback="https://api.sales-machine.com/callback"
    )
    assert_refused(orch_run(config, "disguised"), config, "vars", "api.sales-machine.com")


@pytest.mark.slow
def test_production_database_in_a_staging_entry_is_refused(project: Callable[..., Path]) -> None:
    config = config_with(project, "http://127.0.0.1:9")
    config.write_text(
        config.read_text().replace(
            "  disguised:\n    kind: staging\n",
            "  disguised:\n    kind: staging\n    database_url: postgresql://u@API.sales-machine.com:5432/db\n",
        )
    )
    assert_refused(orch_run(config, "disguised"), config, "database_url")


def test_normalisation() -> None:
    assert normalize_host("API.Example.COM.") == "api.example.com"
    assert normalize_host("127.1") == "127.0.0.1"
    assert normalize_host("[::FFFF:7f00:1]") == "127.0.0.1"
    assert normalize_host("0177.0.0.1") == "127.0.0.1"
    assert url_host("postgresql://user:pw@DB.example.com:6543/postgres") == "db.example.com"
    _params, hosts = database_hosts("host=db.example.com port=5432 dbname=x")
    assert [h.host for h in hosts] == ["db.example.com"]


def render_to(config: Path, out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "render",
            "linkedin-scrape",
            "--out",
            str(out),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_rendered_scripts_carry_k6_block_options(project: Callable[..., Path]) -> None:
    config = config_with(project, "http://127.0.0.1:9")
    out = config.parent / "rendered"
    render_to(config, out)
    script = (out / "linkedin-scrape.js").read_text()
    options = json.loads(script.split("export const options = ", 1)[1].split(";\n", 1)[0])
    assert options["blockHostnames"] == [
        "api-prod.sales-machine.com",
        "api.sales-machine.com",
        "n8n.srv997159.hstgr.cloud",
    ]
    import ipaddress

    blocked = [ipaddress.ip_network(n) for n in options["blacklistIPs"]]
    assert ipaddress.ip_network("203.0.113.10/32") in blocked
    # the local environment reaches loopback only: everything else is blocked
    for address in ("10.0.0.1", "192.168.1.1", "0.0.0.0", "8.8.8.8", "::2", "fe80::1"):
        assert any(ipaddress.ip_address(address) in net for net in blocked), address
    for address in ("127.0.0.1", "127.1.2.3", "::1"):
        assert not any(ipaddress.ip_address(address) in net for net in blocked), address


@pytest.mark.slow
def test_k6_itself_blocks_a_production_host(project: Callable[..., Path]) -> None:
    """A hand-edited script aimed at a production host is stopped by k6, not only by orch.

    The blocked name is `localhost`, so that even a broken block would only reach loopback.
    """
    from orchestrator.config import SandboxSettings
    from orchestrator.target import start_sandbox
    from tests.conftest import free_port

    config = project()
    # localhost shares 127.0.0.1 with the local sandbox: declared shared, so the name decides
    config.write_text(
        config.read_text()
        + "production:\n  hosts: [localhost]\n  shared_addresses: [127.0.0.1]\n"
    )
    out = config.parent / "rendered"
    render_to(config, out)
    port = free_port()
    script = out / "linkedin-scrape.js"
    # the hand edit: aim the webhook at the "production" host
    script.write_text(
        script.read_text().replace(
            'const N8N_BASE_URL = __ENV["ORCH_N8N_BASE_URL"] ||',
            f"const N8N_BASE_URL = 'http://localhost:{port}' ||",
        )
    )
    with start_sandbox(SandboxSettings(port=port, latency_ms_median=0, latency_ms_p95=0)) as box:
        done = subprocess.run(
            [
                "k6",
                "run",
                "--quiet",
                "--no-summary",
                "--iterations",
                "3",
                "--vus",
                "1",
                str(script),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "ORCH_N8N_BASE_URL": box.url},
        )
        import urllib.request

        with urllib.request.urlopen(f"{box.url}/__sandbox/stats") as response:
            stats = json.load(response)
    output = done.stdout + done.stderr
    assert "blocked" in output, output
    assert "webhook" not in stats["by_endpoint"], stats


LOOPBACK_PRODUCTION = """\
  disguised:
    kind: staging
    base_url: http://127.0.0.2:9
    n8n_base_url: http://127.0.0.2:9
    database_url: postgresql://loadtest@127.0.0.2:9/app
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["run", "linkedin-scrape", "--env", "disguised"],
        ["verify", "disguised"],
        ["env", "check", "disguised"],
        ["users", "create", "--env", "disguised"],
        ["users", "cleanup", "--env", "disguised"],
        ["db", "migrate", "--env", "disguised"],
        ["db", "seed", "--scale", "10", "--env", "disguised"],
    ],
)
def test_every_command_that_sends_traffic_or_writes_passes_the_guard(
    project: Callable[..., Path], command: list[str]
) -> None:
    """Production is declared as 127.0.0.2 (loopback, nothing listens), so a guard that
    failed would only meet a refused connection, never a real host."""
    config = project()
    head, scenarios = config.read_text().split("scenarios:\n", 1)
    config.write_text(
        head
        + LOOPBACK_PRODUCTION
        + "scenarios:\n"
        + scenarios
        + "production:\n  addresses: [127.0.0.2]\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ExitCode.REFUSED, (command, done.returncode, done.stderr)
    assert "refusing" in done.stderr

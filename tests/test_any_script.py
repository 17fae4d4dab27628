"""Any k6 script (``orch run path/to/script.js``): a script written without orch runs with
its own options through orch's pipeline against a loopback server, its figures equal k6's
own summary, and a script that would undo the protection is refused."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import free_port

from orchestrator.cli import main
from orchestrator.core import ExitCode

FIXTURE = Path(__file__).parent / "fixtures" / "foreign_script"
SCRIPT = FIXTURE / "shop.js"


class Shop:
    """A loopback server answering every GET with a small JSON body, counting paths."""

    def __init__(self) -> None:
        self.paths: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    state = Shop()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.paths[self.path] += 1
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def project(root: Path, url: str) -> Path:
    """An orch.yaml with one local environment (no sandbox) at ``url`` and no scenario."""
    config = root / "orch.yaml"
    config.write_text(
        "defaults: {environment: shop, results_dir: results, runner: native}\n"
        f"environments:\n  shop: {{kind: local, base_url: '{url}'}}\n"
        "scenarios: {}\n",
        encoding="utf-8",
    )
    return config


def orch(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    return result.exit_code, result.stdout, result.output


def k6_check_counts(summary: dict[str, Any]) -> dict[str, int]:
    """Requests per endpoint by k6's own summary: each request of the script makes one
    check named ``<endpoint> is 200``, found in the groups of k6's summary."""
    counts: dict[str, int] = {}

    def walk(group: dict[str, Any]) -> None:
        for check in group.get("checks") or []:
            name = check["name"].removesuffix(" is 200")
            counts[name] = counts.get(name, 0) + check["passes"] + check["fails"]
        for sub in group.get("groups") or []:
            walk(sub)

    walk(summary["root_group"])
    return counts


@pytest.fixture(scope="module")
def script_runs(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fixture script run once, made the baseline, and run again against it."""
    root = tmp_path_factory.mktemp("script")
    config = project(root, shop.url)
    code, out, output = orch(config, "run", str(SCRIPT))
    first = Path(out.strip().splitlines()[-1])
    paths = Counter(shop.paths)
    base = orch(config, "baseline", "set", str(first))
    code2, out2, output2 = orch(config, "run", str(SCRIPT), "--against-baseline")
    return {
        "config": config,
        "first": (code, output, first),
        "paths": paths,
        "baseline": base,
        "second": (code2, output2, Path(out2.strip().splitlines()[-1])),
    }


@pytest.mark.slow
def test_a_foreign_script_runs_with_its_own_options(script_runs: dict[str, Any]) -> None:
    code, output, run_dir = script_runs["first"]
    assert code == ExitCode.OK, output
    assert "PASSED" in output
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["scenario"] == "shop" and manifest["profile"] == "script"
    # the script's own scenarios and thresholds, as k6 read them
    assert set(manifest["load_profile"]) == {"browse", "checkout"}
    assert manifest["load_profile"]["checkout"]["startTime"] == "1s"
    assert manifest["thresholds"]["http_req_duration{scenario:browse}"] == ["p(95)<800"]
    # only the protection was added, as k6 flags
    command = manifest["command"]
    assert "--blacklist-ip" in command and "--no-usage-report" in command
    assert command[-1] == str(SCRIPT)
    assert (run_dir / "script" / "shop.js").read_text() == SCRIPT.read_text()


@pytest.mark.slow
def test_its_report_counts_equal_k6s_own_summary(script_runs: dict[str, Any]) -> None:
    _, _, run_dir = script_runs["first"]
    results = json.loads((run_dir / "results.json").read_text())
    ours = {e["name"]: e["requests"] for e in results["endpoints"]}
    # the script's handleSummary wrote k6's own summary into the run folder (k6's cwd)
    summary = json.loads((run_dir / "k6-summary.json").read_text())
    assert ours == k6_check_counts(summary)
    assert results["overall"]["requests"] == summary["metrics"]["http_reqs"]["values"]["count"]
    # and the server saw as many; the data file beside the script gave the item ids
    paths = script_runs["paths"]
    assert sum(paths.values()) == results["overall"]["requests"]
    assert {p for p in paths if p.startswith("/shop/items/")} == {
        "/shop/items/a1",
        "/shop/items/b2",
        "/shop/items/c3",
    }
    assert ours["item"] == sum(n for p, n in paths.items() if p.startswith("/shop/items/"))
    assert ours["pay"] == paths["/shop/pay"] == 10  # per-vu-iterations: 2 VUs x 5
    # its two scenarios are reported each in its own section
    flows = {f["name"]: f for f in results["flows"]}
    assert flows["checkout"]["overall"]["requests"] == 30
    assert flows["browse"]["overall"]["requests"] == ours["item"]
    assert [t["metric"] for t in flows["browse"]["thresholds"]] == [
        "http_req_duration{scenario:browse}"
    ]
    assert results["delivery"]["delivered"] is True
    report = (run_dir / "report.md").read_text()
    assert "### Flow: browse" in report and "### Flow: checkout" in report


@pytest.mark.slow
def test_baseline_and_compare_work_for_a_script(script_runs: dict[str, Any]) -> None:
    config: Path = script_runs["config"]
    base_code, _, base_output = script_runs["baseline"]
    assert base_code == 0, base_output
    baseline = config.parent / "baselines" / "shop_shop.json"
    assert json.loads(baseline.read_text())["scenario"] == "shop"
    code, output, second = script_runs["second"]
    assert code == ExitCode.OK, output
    assert f"baseline: no regression against {baseline}" in output
    _, _, first = script_runs["first"]
    code, _, output = orch(config, "compare", str(first), str(second))
    assert code == 0, output
    assert "| cart_total |" in output


UNSAFE = {
    "blacklist-off": (
        "export const options = { blacklistIPs: [], iterations: 1 };\n",
        "its options set blacklistIPs",
    ),
    "blockhostnames": (
        "export const options = { blockHostnames: ['nothing.invalid'], iterations: 1 };\n",
        "its options set blockHostnames",
    ),
    "hosts": (
        "export const options = { hosts: { 'shop.test': '127.0.0.1' }, iterations: 1 };\n",
        "its options set hosts",
    ),
    "production-url": (
        "export const options = { iterations: 1 };\n"
        "const API = 'https://api.sales-machine.com/prospects';\n",
        "may not reach api.sales-machine.com",
    ),
    "outside-url": (
        "export const options = { iterations: 1 };\nconst API = 'https://example.org/x';\n",
        "may not reach example.org",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(UNSAFE))
def test_a_script_that_cannot_run_safely_is_refused(tmp_path: Path, case: str) -> None:
    head, reason = UNSAFE[case]
    script = tmp_path / "unsafe.js"
    script.write_text(
        "import http from 'k6/http';\n" + head + "export default function () {\n"
        "  http.get(`${__ENV.ORCH_BASE_URL}/x`);\n}\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.REFUSED, output
    assert reason in output
    assert not (tmp_path / "results").exists()  # refused before any run folder


@pytest.mark.slow
def test_a_url_in_a_helper_module_beside_the_script_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "api.js").write_text(
        "// https://grafana.com/docs/k6/ (a comment is not a target)\n"
        "export const API = 'https://api.sales-machine.com';\n",
        encoding="utf-8",
    )
    script = tmp_path / "main.js"
    script.write_text(
        "import { API } from './lib/api.js';\nexport const options = { iterations: 1 };\n"
        "export default function () {}\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.REFUSED, output
    assert "lib/api.js" in output and "api.sales-machine.com" in output


def test_a_missing_script_is_a_clear_error(tmp_path: Path) -> None:
    config = project(tmp_path, "http://127.0.0.1:9")
    code, _, output = orch(config, "run", str(tmp_path / "nope.js"))
    assert code == ExitCode.CONFIG, output
    assert "is not a file; pass the path of a k6 script" in output


def test_a_script_takes_no_profile(tmp_path: Path) -> None:
    config = project(tmp_path, "http://127.0.0.1:9")
    code, _, output = orch(config, "run", str(SCRIPT), "--profile", "load")
    assert code == ExitCode.CONFIG, output
    assert "a k6 script runs with its own options" in output


def test_a_script_is_not_sent_to_the_k6_operator(tmp_path: Path) -> None:
    config = project(tmp_path, "http://127.0.0.1:9")
    code, _, output = orch(config, "run", str(SCRIPT), "--runner", "k8s", "--dry-run")
    assert code == ExitCode.CONFIG, output
    assert "--runner k8s runs orch's scenarios and mixes" in output


@pytest.mark.slow
@pytest.mark.docker
def test_a_foreign_script_runs_in_docker_with_its_folder_mounted(
    shop: Shop, tmp_path: Path
) -> None:
    from orchestrator.execution.docker import DEFAULT_IMAGE, docker_status, image_status
    from tests.test_docker_runner import _require_or_skip  # skip, or fail where CI needs Docker

    if not docker_status().reachable or not image_status(DEFAULT_IMAGE).present:
        _require_or_skip(f"no Docker engine, or no image {DEFAULT_IMAGE}")
    config = project(tmp_path, shop.url)
    code, out, output = orch(config, "run", str(SCRIPT), "--runner", "docker")
    assert code == ExitCode.OK, output
    run_dir = Path(out.strip().splitlines()[-1])
    results = json.loads((run_dir / "results.json").read_text())
    summary = json.loads((run_dir / "k6-summary.json").read_text())
    assert {e["name"]: e["requests"] for e in results["endpoints"]} == k6_check_counts(summary)
    assert json.loads((run_dir / "run.json").read_text())["runner"] == "docker"


@pytest.mark.slow
def test_the_allow_list_holds_at_connect_time_for_a_url_the_text_check_cannot_see(
    tmp_path: Path,
) -> None:
    """A script that builds its target at run time passes the text check; k6 itself then
    refuses the connection (the block lists given as flags), and the run ends refused."""
    script = tmp_path / "hidden.js"
    script.write_text(
        "import http from 'k6/http';\n"
        "export const options = { iterations: 1 };\n"
        "export default function () {\n"
        "  const host = ['10', '255', '255', '1'].join('.');\n"
        "  http.get('http' + '://' + host + '/', { timeout: '3s' });\n}\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.REFUSED, output
    run_dir = next((tmp_path / "results").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["outcome"] == "refused"
    assert "blacklisted range" in (run_dir / "k6.log").read_text()


@pytest.mark.slow
def test_a_remote_module_import_is_refused_before_k6_fetches_it(tmp_path: Path) -> None:
    script = tmp_path / "remote.js"
    script.write_text(
        "import { randomItem } from 'https://jslib.k6.io/k6-utils/1.4.0/index.js';\n"
        "export default function () { randomItem([1]); }\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{free_port()}")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.REFUSED, output
    assert "imports the remote module https://jslib.k6.io/k6-utils/1.4.0/index.js" in output
    assert "download it beside the script" in output


@pytest.mark.slow
def test_options_built_from_the_environment_are_read_as_the_run_sees_them(
    shop: Shop, tmp_path: Path
) -> None:
    """k6 inspect leaves the process environment out of __ENV by default while k6 run puts
    it in: a script whose options depend on ORCH_BASE_URL must be planned as it will run."""
    script = tmp_path / "env_options.js"
    script.write_text(
        "import http from 'k6/http';\n"
        "export const options = { scenarios: { paced: { executor: 'shared-iterations',\n"
        "  vus: 1, iterations: __ENV.ORCH_BASE_URL ? 6 : 1 } } };\n"
        "export default function () { http.get(`${__ENV.ORCH_BASE_URL}/env`); }\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{shop.port}")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.OK, output
    run_dir = next((tmp_path / "results").iterdir())
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["load_profile"]["paced"]["iterations"] == 6
    results = json.loads((run_dir / "results.json").read_text())
    assert results["overall"]["requests"] == 6


@pytest.mark.slow
def test_a_secret_the_script_throws_while_its_options_are_read_is_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """k6 inspect runs the script's init code with the run's secrets in __ENV: an error it
    throws must not carry a secret into orch's message (a CI log)."""
    secret = "inspect-secret-7f3a9c"
    monkeypatch.setenv("SHOP_TOKEN_VALUE", secret)
    script = tmp_path / "leaky.js"
    script.write_text(
        "export const options = { iterations: 1 };\n"
        "throw new Error('token is ' + __ENV.SHOP_TOKEN);\n"
        "export default function () {}\n",
        encoding="utf-8",
    )
    config = project(tmp_path, f"http://127.0.0.1:{free_port()}")
    text = config.read_text(encoding="utf-8").replace(
        "kind: local,", "kind: local, secrets: {SHOP_TOKEN: SHOP_TOKEN_VALUE},"
    )
    config.write_text(text, encoding="utf-8")
    code, _, output = orch(config, "run", str(script))
    assert code == ExitCode.CONFIG, output
    assert "k6 cannot read the script" in output and "token is ***" in output
    assert secret not in output

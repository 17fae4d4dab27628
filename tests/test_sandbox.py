"""The embedded sandbox, served for real on loopback and called over HTTP (urllib and k6)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import write_test_export
from pydantic import ValidationError

from orchestrator.cli import main
from orchestrator.config import ENRICHMENT_ROUTES, SandboxSettings
from orchestrator.core import ExitCode, SetupError
from orchestrator.target import N8NWorkflows, SandboxProcess, is_listening, start_sandbox

SECRET = "loadtest:sandbox-test-sentinel-7c41e9"  # also user:password for basic auth
SECRET_VAR = "ORCH_TEST_SANDBOX_SECRET"
# The LinkedIn scraper's trigger where N8N serves it: /webhook/{webhookId}/{path} (the export
# written by the `start` fixture is the shipped one, its path linkedin-scraper/:uniqueId).
HOOK = "/webhook/7f3c2a4e-9b1d-4e6f-8a2c-3d5e7f9a1b2c/linkedin-scraper"
ROUTE = f"POST {HOOK}/:uniqueId"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


class Answer:
    """Status, headers and JSON body of one HTTP exchange."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = body
        self.json: Any = json.loads(body) if body else None


def call(
    url: str, method: str = "POST", body: Any = None, headers: dict[str, str] | None = None
) -> Answer:
    """One real HTTP request; ``body`` is JSON-encoded unless it is bytes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(request, timeout=5) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          response.read())  # fmt: skip
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def stats(box: SandboxProcess) -> dict[str, Any]:
    result: dict[str, Any] = call(box.url + "/__sandbox/stats", "GET").json
    return result


def status_count(box: SandboxProcess, endpoint: str, status: int) -> int:
    entry = stats(box)["by_endpoint"].get(endpoint, {"by_status": {}})
    return int(entry["by_status"].get(str(status), 0))


def answers_as(url: str, pid: int) -> bool:
    """True when a sandbox with this process id answers /health at ``url``."""
    try:
        return bool(call(url + "/health", "GET").json.get("pid") == pid)
    except (OSError, ValueError, AttributeError):
        return False


Start = Callable[..., SandboxProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start real sandboxes on free loopback ports (no added latency unless asked)."""
    with ExitStack() as stack:
        started: list[SandboxProcess] = []

        def _start(n8n_auth: str = "none", **settings: Any) -> SandboxProcess:
            """A sandbox serving the shipped N8N export, its trigger's auth ``n8n_auth``."""
            values = {"port": 0, "latency_ms_median": 0, "latency_ms_p95": 0, **settings}
            log = tmp_path / f"sandbox-{len(started)}.log"
            export = write_test_export(tmp_path / f"export-{len(started)}", n8n_auth)
            n8n = N8NWorkflows((str(export),))
            box = start_sandbox(SandboxSettings(**values), log_path=log, n8n=n8n)
            started.append(stack.enter_context(box))
            return started[-1]

        yield _start


def jwt(secret: str, claims: dict[str, Any]) -> str:
    """An HS256 JWT."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


# --------------------------------------------------------------------------- webhook


@pytest.mark.slow
def test_webhook_without_auth(start: Start) -> None:
    box = start()
    hook = box.url + HOOK + "/abc-1"
    answer = call(hook, body={"profileUrl": "https://www.linkedin.com/in/someone"})
    assert answer.status == 200
    assert answer.json["status"] == "queued" and answer.json["params"] == {"uniqueId": "abc-1"}
    assert answer.json["executionId"].isdigit()

    options = call(hook, "OPTIONS")
    assert options.status == 204 and options.headers["allow"] == "POST, OPTIONS"
    wrong_method = call(hook, "GET")  # N8N: 404, naming the method it does take
    assert wrong_method.status == 404
    assert (
        "not registered for GET requests. Did you mean to make a POST"
        in (wrong_method.json["message"])
    )
    assert call(hook, body=b'{"profileUrl": ').status == 400  # exists, but no work done
    unknown = call(box.url + "/webhook/other-workflow/abc-1", body={})
    assert unknown.status == 404 and "is not registered" in unknown.json["message"]
    # the URL the story assumed is not where N8N serves this export
    assert call(box.url + "/webhook/linkedin-scraper/abc-1", body={}).status == 404

    counts = stats(box)
    assert counts["work"]["webhook_executions"] == 1
    assert counts["by_endpoint"]["webhook"]["by_status"] == {"200": 1, "204": 1, "400": 1}
    assert counts["by_endpoint"]["unmatched"]["by_status"] == {"404": 3}
    assert counts["n8n_webhooks"] == {ROUTE: {"total": 2, "by_status": {"200": 1, "400": 1}}}


@pytest.mark.slow
def test_webhook_header_auth(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """Header Auth as N8N checks it: a missing or wrong header is 403."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    box = start("headerAuth", webhook_api_key_header="X-Custom-Key", webhook_secret_env=SECRET_VAR)
    hook = box.url + HOOK + "/u1"
    payload = {"profileUrl": "https://www.linkedin.com/in/x"}
    missing = call(hook, body=payload)
    assert missing.status == 403 and missing.json["message"] == "Authorization data is wrong!"
    assert call(hook, body=payload, headers={"X-Custom-Key": "wrong"}).status == 403
    assert call(hook, body=payload, headers={"X-N8N-API-KEY": SECRET}).status == 403
    assert call(hook, body=payload, headers={"X-Custom-Key": SECRET}).status == 200
    assert call(hook, "OPTIONS").status == 204  # probing needs no credentials
    assert stats(box)["work"]["webhook_executions"] == 1
    assert box.log_path is not None
    assert SECRET not in box.log_path.read_text() + json.dumps(stats(box))


@pytest.mark.slow
def test_webhook_basic_auth(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    box = start("basicAuth", webhook_secret_env=SECRET_VAR)
    hook = box.url + HOOK + "/u3"

    def status(user_password: str | None) -> int:
        encoded = base64.b64encode(user_password.encode()).decode() if user_password else ""
        headers = {"Authorization": f"Basic {encoded}"} if user_password else {}
        return call(hook, body={}, headers=headers).status

    assert status(None) == 401
    assert status("loadtest:wrong") == 403
    assert status(SECRET) == 200


@pytest.mark.slow
def test_webhook_jwt_auth(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """JWT Auth (an HS256 passphrase): no token 401, anything but a valid JWT 403."""
    monkeypatch.setenv(SECRET_VAR, SECRET)
    box = start("jwtAuth", webhook_secret_env=SECRET_VAR)
    hook = box.url + HOOK + "/u2"

    def status(authorization: str | None) -> int:
        headers = {"Authorization": authorization} if authorization else {}
        return call(hook, body={}, headers=headers).status

    assert status(None) == 401
    assert status("Bearer wrong-token") == 403
    assert status(f"Bearer {SECRET}") == 403  # the passphrase itself is not a JWT
    assert status(f"Bearer {jwt(SECRET, {'sub': 'loadtest', 'exp': time.time() + 600})}") == 200
    assert status(f"Bearer {jwt(SECRET, {'sub': 'loadtest', 'exp': time.time() - 5})}") == 403
    assert status(f"Bearer {jwt('another-secret', {'sub': 'loadtest'})}") == 403


def test_webhook_auth_needs_its_secret_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(SECRET_VAR, raising=False)
    settings = SandboxSettings(port=0, webhook_auth="api-key", webhook_secret_env=SECRET_VAR)
    with pytest.raises(SetupError, match=SECRET_VAR):
        start_sandbox(settings)
    export = write_test_export(tmp_path, "headerAuth")
    plain = SandboxSettings(port=0, webhook_secret_env=SECRET_VAR)
    needs = f"uses headerAuth but the environment variable {SECRET_VAR} "
    with pytest.raises(SetupError, match=needs):
        start_sandbox(plain, n8n=N8NWorkflows((str(export),)))


# --------------------------------------------------------------------------- enrichment


def enrichment_urls(base: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Per variant: the URL a call goes to and a valid body."""
    return {
        "prospects-enrichment": (f"{base}/prospects/p-7/enrichment", {}),
        "prospects-enrich": (f"{base}/prospects/p-7/enrich", {}),
        "enrichment": (f"{base}/enrichment", {"prospectId": "p-7"}),
        "n8n": (f"{base}/webhook/prospect-enrichment/p-7", {}),
    }


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(ENRICHMENT_ROUTES))
def test_only_the_configured_enrichment_variant_exists(start: Start, variant: str) -> None:
    box = start(enrichment_variant=variant)
    for name, (url, body) in enrichment_urls(box.url).items():
        answer = call(url, body=body)
        options = call(url, "OPTIONS")
        if name == variant:
            assert answer.status == 202, name
            assert answer.json["prospectId"] == "p-7" and answer.json["status"] == "queued"
            assert answer.json["enrichmentId"]
            assert options.status == 204 and "POST" in options.headers["allow"]
            assert call(url, body=b"{not json").status == 400
        else:
            assert (answer.status, options.status) == (404, 404), name
    assert stats(box)["work"]["enrichments"] == 1
    assert status_count(box, "enrichment", 202) == 1


@pytest.mark.slow
def test_enrichment_endpoint_needs_a_prospect_id(start: Start) -> None:
    box = start(enrichment_variant="enrichment")
    assert call(box.url + "/enrichment", body={"other": 1}).status == 400
    assert call(box.url + "/enrichment", body={"prospectId": 42}).json["prospectId"] == "42"


@pytest.mark.slow
def test_n8n_enrichment_is_a_webhook_with_the_webhook_auth(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    box = start(enrichment_variant="n8n", webhook_auth="api-key", webhook_secret_env=SECRET_VAR)
    url = box.url + "/webhook/prospect-enrichment/p-9"
    assert call(url, body={}).status == 401
    answer = call(url, body={}, headers={"X-N8N-API-KEY": SECRET})
    assert answer.status == 202 and answer.json["executionId"]
    bearer = start(enrichment_variant="n8n", webhook_auth="bearer", webhook_secret_env=SECRET_VAR)
    url = bearer.url + "/webhook/prospect-enrichment/p-9"
    assert call(url, body={}, headers={"Authorization": "Bearer wrong"}).status == 403
    assert call(url, body={}, headers={"Authorization": f"Bearer {SECRET}"}).status == 202


# --------------------------------------------------------------------------- rate limit


@pytest.mark.slow
def test_rate_limit_answers_429_with_retry_after(start: Start) -> None:
    box = start(rate_limit_per_minute=6, rate_limit_burst=3)  # one token per 10 s
    url = box.url + "/prospects/p-1/enrichment"
    answers = [call(url, body={}) for _ in range(5)]
    assert [a.status for a in answers] == [202, 202, 202, 429, 429]
    limited = answers[3]
    assert limited.json["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert limited.headers["anthropic-ratelimit-requests-limit"] == "6"
    assert call(box.url + HOOK + "/x", body={}).status == 200  # not limited
    counts = stats(box)
    assert counts["rate_limited"] == 2 == status_count(box, "enrichment", 429)
    assert counts["work"]["enrichments"] == 3


@pytest.mark.slow
def test_reset_zeroes_the_counters(start: Start) -> None:
    box = start()
    call(box.url + HOOK + "/x", body={})
    assert stats(box)["total"] == 1
    assert call(box.url + "/__sandbox/reset").json == {"reset": True}
    after = stats(box)
    assert (
        after["total"] == 0
        and after["by_endpoint"] == {}
        and after["work"]["webhook_executions"] == 0
    )


K6_SCRIPT = """
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const enr = {
  202: new Counter('enrichment_202'), 429: new Counter('enrichment_429'),
  500: new Counter('enrichment_500'),
};
const hook = { 200: new Counter('webhook_200'), 500: new Counter('webhook_500') };

export const options = {
  scenarios: { mix: { executor: 'shared-iterations', vus: 2, iterations: 60, maxDuration: '20s' } },
};

export default function () {
  const params = { headers: { 'Content-Type': 'application/json' }, tags: { name: 'enrichment' } };
  const e = http.post(`${__ENV.BASE_URL}/prospects/p-${__ITER}/enrichment`, '{}', params);
  enr[e.status].add(1);
  if (e.status === 429) {
    check(e, { 'Retry-After in seconds': (r) => parseInt(r.headers['Retry-After'], 10) >= 1 });
  }
  params.tags.name = 'webhook';
  const w = http.post(`${__ENV.BASE_URL}${__ENV.HOOK}/k6-${__ITER}`, '{}', params);
  hook[w.status].add(1);
}
"""


def k6_binary() -> str:
    found = os.environ.get("ORCH_K6") or shutil.which("k6")
    assert found, "k6 is needed: put it on PATH or set ORCH_K6"
    return found


@pytest.mark.slow
def test_k6_counts_agree_with_the_sandbox(start: Start, tmp_path: Path) -> None:
    box = start(rate_limit_per_minute=60, rate_limit_burst=10, error_rate=0.25, seed=7)
    script = tmp_path / "mix.js"
    script.write_text(K6_SCRIPT)
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [k6_binary(), "run", "--quiet", "--no-color", "--summary-export", str(summary),
         "-e", f"BASE_URL={box.url}", "-e", f"HOOK={HOOK}", str(script)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads(summary.read_text())["metrics"]

    def k6_count(name: str) -> int:
        return int(metrics.get(name, {}).get("count", 0))

    counts = stats(box)
    assert counts["total"] == k6_count("http_reqs") == 120
    for status in (202, 429, 500):
        assert status_count(box, "enrichment", status) == k6_count(f"enrichment_{status}")
    for status in (200, 500):
        assert status_count(box, "webhook", status) == k6_count(f"webhook_{status}")
    assert counts["rate_limited"] == k6_count("enrichment_429") >= 40  # 10 burst + ~1/s
    assert metrics["checks"]["passes"] == k6_count("enrichment_429")
    assert metrics["checks"]["fails"] == 0
    injected = k6_count("enrichment_500") + k6_count("webhook_500")
    assert counts["errors_injected"] == injected > 0


@pytest.mark.slow
def test_error_rate_share(start: Start) -> None:
    box = start(error_rate=0.3, seed=11)
    statuses = [call(f"{box.url}{HOOK}/{i}", body={}).status for i in range(300)]
    errors = statuses.count(500)
    assert set(statuses) == {200, 500}
    assert 50 <= errors <= 130  # 90 expected; ±5 standard deviations
    assert stats(box)["errors_injected"] == errors == status_count(box, "webhook", 500)
    always = start(error_rate=1.0)
    assert call(always.url + "/campaigns/c/emails", body={}).status == 500
    assert call(always.url + "/health", "GET").status == 200  # health is never failed


# --------------------------------------------------------------------------- queue, latency


@pytest.mark.slow
def test_email_queue(start: Start) -> None:
    box = start(email_send_rate_per_second=0.01)
    first = call(box.url + "/campaigns/c-1/emails", body={"emails": [{"to": "a"}, {"to": "b"}]})
    assert first.status == 202 and first.json == {"campaignId": "c-1", "queued": 2, "queueDepth": 2}
    assert call(box.url + "/campaigns/c-1/emails", body={"to": "c"}).json["queueDepth"] == 3
    queue = call(box.url + "/campaigns/c-1/queue", "GET")
    assert queue.status == 200
    assert queue.json["queueDepth"] == 3 and queue.json["status"] == "processing"
    assert call(box.url + "/campaigns/other/queue", "GET").json["status"] == "idle"
    assert call(box.url + "/campaigns/c-1/queue", "OPTIONS").headers["allow"] == "GET, OPTIONS"
    assert call(box.url + "/campaigns/c-1/queue", body={}).status == 405
    assert stats(box)["work"]["emails_queued"] == 3


@pytest.mark.slow
def test_endpoint_latency_is_added_to_that_endpoint(start: Start) -> None:
    box = start(endpoint_latency_ms={"enrichment": 300})
    began = time.monotonic()
    assert call(box.url + "/prospects/p/enrichment", body={}).status == 202
    assert time.monotonic() - began >= 0.3


# --------------------------------------------------------------------------- settings, process


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com", "192.168.1.5"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="loopback"):
        SandboxSettings(host=host)


def test_loopback_hosts_and_strict_keys() -> None:
    assert SandboxSettings(host="localhost").host == "127.0.0.1"
    assert SandboxSettings(host="::1").url_for(80) == "http://[::1]:80"
    assert SandboxSettings(host="127.0.0.2").host == "127.0.0.2"
    with pytest.raises(ValidationError, match="extra"):
        SandboxSettings.model_validate({"rate_limit_per_minut": 5})
    with pytest.raises(ValidationError, match="unknown endpoint"):
        SandboxSettings(endpoint_latency_ms={"enrich": 5})
    with pytest.raises(ValidationError, match="latency_ms_p95"):
        SandboxSettings(latency_ms_median=5, latency_ms_p95=2)


def test_port_in_use_is_a_setup_error_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert is_listening(f"http://127.0.0.1:{port}")
        with pytest.raises(SetupError, match=f"port {port}"):
            start_sandbox(SandboxSettings(port=port))


@pytest.mark.slow
def test_stop_ends_the_process(start: Start) -> None:
    box = start()
    assert is_listening(box.url)
    assert call(box.url + "/health", "GET").json["pid"] == box.pid
    code = box.stop()
    assert code is not None and box.process.poll() is not None
    # the port is closed, or (rarely, on a shared machine) already reused by someone else
    assert not is_listening(box.url) or not answers_as(box.url, box.pid)


# --------------------------------------------------------------------------- CLI


def test_cli_help() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "--enrichment-variant" in result.output and "--rate-limit-per-minute" in result.output


def test_cli_refuses_a_non_loopback_host() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--host", "0.0.0.0"])
    assert result.exit_code == ExitCode.CONFIG
    assert "not a loopback address" in result.output


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_cli_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "sandbox", "--port", "0", "--error-rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("orch sandbox listening on http://127.0.0.1:"), line
        url = line.split()[4]
        assert call(url + "/health", "GET").status == 200
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0 and "stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="the parent watch is POSIX-only")
def test_sandbox_stops_when_its_parent_is_killed() -> None:
    parent = (
        "import os, signal\n"
        "from orchestrator.config import SandboxSettings\n"
        "from orchestrator.target import start_sandbox\n"
        "box = start_sandbox(SandboxSettings(port=0))\n"
        "print(box.url, box.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=30
    )
    url, pid = done.stdout.split()
    assert done.returncode == -signal.SIGKILL and url.startswith("http://127.0.0.1:"), done
    deadline = time.monotonic() + 10
    while answers_as(url, int(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not answers_as(url, int(pid)), f"the orphaned sandbox still serves {url}"

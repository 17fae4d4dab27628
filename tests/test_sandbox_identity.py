"""How orch tells its own sandbox from anything else on a port: the identity endpoint of a
real sandbox (a uvicorn child on loopback), its proof, and this user's identity file."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port

from orchestrator.config import SandboxSettings
from orchestrator.target.sandbox import (
    IDENTITY_PATH,
    SandboxProcess,
    identify,
    identity_file,
    identity_proof,
    known_sandbox,
    start_sandbox,
)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxProcess]:
    """A real sandbox on a free loopback port, its identity file under this test's folder."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    settings = SandboxSettings(port=0, latency_ms_median=0, latency_ms_p95=0)
    with start_sandbox(settings, log_path=tmp_path / "sandbox.log") as box:
        yield box


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_the_proof_is_an_hmac_of_the_nonce_under_the_token(sandbox: SandboxProcess) -> None:
    assert sandbox.token is not None
    nonce = "n" * 16
    status, body = _get(f"{sandbox.url}{IDENTITY_PATH}?nonce={nonce}")
    assert status == 200
    expected = hmac.new(sandbox.token.encode(), nonce.encode(), hashlib.sha256).hexdigest()
    assert body["proof"] == expected == identity_proof(sandbox.token.encode(), nonce)
    assert body["pid"] == sandbox.pid and body["service"]
    # another nonce, another proof: an answer cannot be replayed
    assert _get(f"{sandbox.url}{IDENTITY_PATH}?nonce={'m' * 16}")[1]["proof"] != expected


@pytest.mark.slow
@pytest.mark.parametrize("query", ["", "?nonce=short", "?nonce=" + "x" * 129, "?other=1"])
def test_a_nonce_of_the_wrong_size_is_refused(sandbox: SandboxProcess, query: str) -> None:
    assert _get(f"{sandbox.url}{IDENTITY_PATH}{query}") == (
        400, {"error": "give ?nonce= (16 to 128 characters)"},
    )  # fmt: skip


@pytest.mark.slow
def test_only_the_holder_of_the_token_is_identified(sandbox: SandboxProcess) -> None:
    assert sandbox.token is not None
    assert identify(sandbox.url, sandbox.token) == sandbox.pid
    assert identify(sandbox.url, "0" * 32) is None  # another sandbox's token
    assert identify(sandbox.url.rsplit(":", 1)[0] + f":{free_port()}", sandbox.token) is None
    assert identify("not a url", sandbox.token) is None


@pytest.mark.slow
def test_this_user_s_identity_file_names_the_sandbox_while_it_serves(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    port = int(sandbox.url.rsplit(":", 1)[1])
    path = identity_file("127.0.0.1", port)
    assert path.parent == tmp_path / "runtime" / "orch"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"pid": sandbox.pid, "host": "127.0.0.1", "port": port, "token": sandbox.token}
    known = known_sandbox(sandbox.url)
    assert known is not None and (known.pid, known.token) == (sandbox.pid, sandbox.token)
    # a file whose token the server does not hold is not believed
    path.write_text(json.dumps({**data, "token": "f" * 32}), encoding="utf-8")
    assert known_sandbox(sandbox.url) is None
    path.write_text(json.dumps(data), encoding="utf-8")
    sandbox.stop()
    assert not path.exists()  # removed by the sandbox as it stopped
    assert known_sandbox(sandbox.url) is None


def test_identity_files_are_named_per_host_and_port() -> None:
    assert identity_file("127.0.0.1", 8765).name == "sandbox-127.0.0.1-8765.json"
    assert identity_file("[::1]", 8765).name == "sandbox-__1-8765.json"
    assert identity_file("127.0.0.1", 8765) != identity_file("127.0.0.2", 8765)

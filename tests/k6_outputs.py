"""Real k6 outputs for the results tests: a tiny loopback HTTP target and a k6 driver.

The target answers by path, and counts every response it sends per (path, status), so a
test can compare the report's error counts with what the server actually produced:

- ``/api/ok``       200 after ``ms`` milliseconds (query ``?ms=``, default 0)
- ``/api/fail``     500 on every ``every``-th request (query ``?every=``), else 200
- ``/api/limited``  429 with ``Retry-After: 1`` except on every ``every``-th request

Everything binds to 127.0.0.1 only, and every k6 run is bounded in time and iterations.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: TargetServer

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: k6 sends thousands of requests."""

    def _answer(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = self.server.decide(url.path, query)
        delay_ms = float(query.get("ms", "0"))
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        body = b'{"ok":true}' if status == 200 else b'{"error":"x"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer


class TargetServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 that counts the responses it sends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sent: Counter[tuple[str, int]] = Counter()
        self._per_path: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL k6 scripts use to reach this server."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def decide(self, path: str, query: dict[str, str]) -> int:
        """Choose the status for one request and count it."""
        every = max(1, int(query.get("every", "4")))
        with self._lock:
            self._per_path[path] += 1
            nth = self._per_path[path]
            if path == "/api/fail":
                status = 500 if nth % every == 0 else 200
            elif path == "/api/limited":
                status = 200 if nth % every == 0 else 429
            elif path.startswith("/api/"):
                status = 200
            else:
                status = 404
            self.sent[(path, status)] += 1
        return status

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when k6 drops a connection (it does so when interrupted)."""

    def start(self) -> TargetServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()


SCRIPT = """
import http from 'k6/http';
import { check, group } from 'k6';

const BASE = __ENV.BASE_URL;
const MODE = __ENV.MODE || 'normal';

export const options = JSON.parse(__ENV.OPTIONS_JSON);

export default function () {
  if (MODE === 'limited') {
    const r = http.get(`${BASE}/api/limited?every=4`, { tags: { name: 'limited' } });
    check(r, { 'limited: not 5xx': (x) => x.status < 500 });
    http.get(`${BASE}/api/ok`, { tags: { name: 'ok' } });
    return;
  }
  group('browse', function () {
    const r = http.get(`${BASE}/api/ok`, { tags: { name: 'ok', flow: 'browse' } });
    check(r, { 'ok: status 200': (x) => x.status === 200 });
  });
  const f = http.post(`${BASE}/api/fail?every=5`, '{"a":1}', { tags: { name: 'fail' } });
  check(f, { 'fail: status 200': (x) => x.status === 200 });
  http.get(`${BASE}/api/ok?ms=${MODE === 'slow' ? 15 : 2}`, { tags: { name: 'slow' } });
  // an untagged request: the report must fall back to the URL
  http.get(`${BASE}/api/plain`);
}

export function handleSummary(data) {
  return { [__ENV.HANDLE_SUMMARY_FILE]: JSON.stringify(data) };
}
"""


@dataclass
class K6Run:
    """What one real k6 run left behind."""

    name: str
    folder: Path
    exit_code: int
    sent: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def csv(self) -> Path:
        """k6's ``--out csv`` file."""
        return self.folder / "raw.csv"

    @property
    def ndjson(self) -> Path:
        """k6's ``--out json`` file."""
        return self.folder / "raw.json"

    @property
    def summary_export(self) -> Path:
        """k6's ``--summary-export`` file."""
        return self.folder / "summary.json"

    @property
    def handle_summary(self) -> Path:
        """The ``handleSummary`` data object as JSON."""
        return self.folder / "handle_summary.json"


def k6_binary() -> str | None:
    """The k6 on PATH (or ORCH_K6), if any."""
    return os.environ.get("ORCH_K6") or shutil.which("k6")


def run_k6(
    folder: Path,
    name: str,
    options: dict[str, object],
    *,
    mode: str = "normal",
    interrupt_after_s: float | None = None,
    timeout_s: float = 60.0,
) -> K6Run:
    """Run the real k6 against a fresh loopback target and keep every output in ``folder``.

    Writes ``raw.csv`` and ``raw.json`` from the same run, the ``--summary-export`` file,
    the ``handleSummary`` object, the script and k6's log. With ``interrupt_after_s`` the
    run is stopped with SIGINT, as Ctrl-C would.
    """
    import json

    k6 = k6_binary()
    if k6 is None:
        raise RuntimeError("k6 is not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "script.js"
    script.write_text(SCRIPT, encoding="utf-8")
    server = TargetServer().start()
    env = dict(os.environ)
    env.update(
        BASE_URL=server.base_url,
        MODE=mode,
        OPTIONS_JSON=json.dumps(options),
        HANDLE_SUMMARY_FILE=str(folder / "handle_summary.json"),
        K6_NO_USAGE_REPORT="true",
    )
    cmd = [
        k6, "run", "--quiet", "--no-color",
        "--summary-export", str(folder / "summary.json"),
        "--out", f"csv={folder / 'raw.csv'}",
        "--out", f"json={folder / 'raw.json'}",
        str(script),
    ]  # fmt: skip
    try:
        with open(folder / "k6.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                if interrupt_after_s is not None:
                    time.sleep(interrupt_after_s)
                    proc.send_signal(signal.SIGINT)
                code = proc.wait(timeout=timeout_s)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        # Let handler threads finish counting the last responses.
        time.sleep(0.2)
    finally:
        server.stop()
    return K6Run(name=name, folder=folder, exit_code=code, sent=Counter(server.sent))


NORMAL_OPTIONS: dict[str, object] = {
    "scenarios": {
        "main": {
            "executor": "shared-iterations",
            "vus": 3,
            "iterations": 300,
            "maxDuration": "20s",
        }
    },
    "thresholds": {
        "http_req_duration": ["p(95)<2000", "avg<1000"],
        "http_req_duration{name:ok}": ["p(95)<1000"],
        "checks": ["rate>0.5"],
        "http_reqs": ["count>100"],
    },
}

FAILING_OPTIONS: dict[str, object] = {
    "scenarios": {
        "main": {
            "executor": "constant-vus",
            "vus": 3,
            "duration": "2s",
        }
    },
    "thresholds": {
        "http_req_duration{name:slow}": ["p(95)<5"],
        "http_req_failed": ["rate<0.01"],
        "http_req_duration": ["p(99)<3000"],
    },
}

LIMITED_OPTIONS: dict[str, object] = {
    "scenarios": {
        "main": {
            "executor": "constant-arrival-rate",
            "rate": 100,
            "timeUnit": "1s",
            "duration": "2s",
            "preAllocatedVUs": 5,
            "maxVUs": 10,
        }
    },
    "thresholds": {"http_req_failed{name:ok}": ["rate<0.01"]},
}

INTERRUPTED_OPTIONS: dict[str, object] = {
    "scenarios": {
        "main": {
            "executor": "ramping-vus",
            "startVUs": 1,
            "stages": [{"duration": "3s", "target": 4}, {"duration": "27s", "target": 4}],
        }
    },
    "thresholds": {"http_req_duration": ["p(95)<2000"]},
}


_RUNS: dict[Path, dict[str, K6Run]] = {}


def real_runs(base: Path) -> dict[str, K6Run]:
    """The four real k6 runs the results tests read, made once per test session.

    - ``normal``: 300 iterations of 4 requests (1 in 5 POST /api/fail gets a 500), passes;
    - ``failing``: a p95 threshold of 5 ms on a 15 ms endpoint and a 1 % error budget: 99;
    - ``limited``: 100 iterations/s for 2 s, 3 of 4 requests to /api/limited get a 429;
    - ``interrupted``: a 30 s ramping run stopped with SIGINT after 2.5 s: 105.
    """
    if base not in _RUNS:
        _RUNS[base] = {
            "normal": run_k6(base / "normal", "normal", NORMAL_OPTIONS),
            "failing": run_k6(base / "failing", "failing", FAILING_OPTIONS, mode="slow"),
            "limited": run_k6(base / "limited", "limited", LIMITED_OPTIONS, mode="limited"),
            "interrupted": run_k6(
                base / "interrupted", "interrupted", INTERRUPTED_OPTIONS, interrupt_after_s=2.5
            ),
        }
    return _RUNS[base]

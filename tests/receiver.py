"""A loopback HTTP receiver that records every POST: what k6's outputs and orch's
notifications send (Prometheus remote write, InfluxDB's /write, OTLP/HTTP, webhooks).

It binds 127.0.0.1 on a free port, answers ``status`` (or ``statuses[path]``), and keeps
each request's path, headers and body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 204
    statuses: dict[str, int] = field(default_factory=dict)  # path -> status
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        """The requests received on ``path`` (its query left out)."""
        with self.lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: k6 pushes every second."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver = self.server.receiver
        with receiver.lock:
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
        path = self.path.split("?", 1)[0]
        status = receiver.statuses.get(path, receiver.status)
        answer = b'{"results":[{}]}' if path == "/query" else b""  # InfluxDB's CREATE DATABASE
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@contextmanager
def receiver(status: int = 204, statuses: dict[str, int] | None = None) -> Iterator[Receiver]:
    """A running receiver on 127.0.0.1; stopped on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(
        f"http://127.0.0.1:{server.server_address[1]}", status, dict(statuses or {})
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

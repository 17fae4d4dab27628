"""Loopback servers for the red-team suite: a production stand-in that counts every
connection and logs every request, and an allowed server that redirects into it.

Everything binds loopback only (127.0.0.0/8). "Production" lives on 127.0.0.2 (HTTP on
18443, a database port on 15432) and on 127.0.0.1:18444 (production's N8N, reached by the
/etc/hosts name ``vm``, and production "declared as 127.0.0.1").
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PRODUCTION_HOST = "127.0.0.2"
PRODUCTION_HTTP_PORT = 18443
PRODUCTION_DB_PORT = 15432
PRODUCTION_N8N_HOST = "127.0.0.1"  # what `vm` and `localhost` resolve to here
PRODUCTION_N8N_PORT = 18444
PRODUCTION_URL = f"http://{PRODUCTION_HOST}:{PRODUCTION_HTTP_PORT}"
PRODUCTION_DB_URL = f"postgresql://u@{PRODUCTION_HOST}:{PRODUCTION_DB_PORT}/app"


@dataclass
class Log:
    """What reached one or more listeners: connections and requests (headers, body)."""

    connections: list[tuple[str, str]] = field(default_factory=list)  # (listener, peer)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self, listener: str, peer: Any) -> None:
        with self.lock:
            self.connections.append((listener, str(peer)))

    def request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)

    def reset(self) -> None:
        with self.lock:
            self.connections.clear()
            self.requests.clear()

    def text(self) -> str:
        """Everything received, as one text, to look for secrets in."""
        with self.lock:
            return "\n".join(repr(r) for r in self.requests)


class _Handler(BaseHTTPRequestHandler):
    """Answers anything; the server decides what (``answer``)."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._any
        raise AttributeError(name)

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.log.request(
            {
                "listener": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
        )
        status, headers, payload = self.server.answer(self.path)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], name: str, log: Log, answer: Any) -> None:
        super().__init__(address, _Handler)
        self.name = name
        self.log = log
        self.answer = answer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, peer = super().get_request()
        self.log.connection(self.name, peer)
        return sock, peer


def _production_answer(path: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, b'{"executionId":"x","users":[]}'


class _RawListener:
    """A TCP listener that counts connections, reads what the client sends first, closes."""

    def __init__(self, host: str, port: int, name: str, log: Log) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.name = name
        self.log = log
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.log.connection(self.name, peer)
            with conn:
                conn.settimeout(0.5)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                self.log.request({"listener": self.name, "raw": data.decode("latin-1")})

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.thread.join(timeout=2)


@dataclass
class StandIn:
    """The production stand-in: every listener shares one log."""

    log: Log

    @property
    def connections(self) -> list[tuple[str, str]]:
        with self.log.lock:
            return list(self.log.connections)


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    return thread


@contextmanager
def production_standin() -> Iterator[StandIn]:
    """Production's API/N8N/Supabase on 127.0.0.2:18443, its database on 127.0.0.2:15432,
    its N8N (by name) on 127.0.0.1:18444; all counted in one log."""
    log = Log()
    http = _Server((PRODUCTION_HOST, PRODUCTION_HTTP_PORT), "production-http", log,
                   _production_answer)  # fmt: skip
    n8n = _Server((PRODUCTION_N8N_HOST, PRODUCTION_N8N_PORT), "production-n8n", log,
                  _production_answer)  # fmt: skip
    database = _RawListener(PRODUCTION_HOST, PRODUCTION_DB_PORT, "production-db", log)
    threads = [_serve(http), _serve(n8n)]
    try:
        yield StandIn(log)
    finally:
        for server in (http, n8n):
            server.shutdown()
            server.server_close()
        database.close()
        for thread in threads:
            thread.join(timeout=2)


@dataclass
class Redirector:
    """An allowed server (127.0.0.1, or another loopback address) answering every request
    with a 302 to ``location`` (the request's path appended), logging what it received."""

    url: str
    log: Log
    server: _Server

    def redirect_to(self, location: str) -> None:
        self.server.answer = lambda path: (302, {"Location": location + path}, b"")


@contextmanager
def redirector(location: str, host: str = "127.0.0.1") -> Iterator[Redirector]:
    log = Log()
    server = _Server((host, 0), "redirector", log, None)
    found = Redirector(f"http://{host}:{server.server_address[1]}", log, server)
    found.redirect_to(location)
    thread = _serve(server)
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)

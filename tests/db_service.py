"""A small HTTP service on loopback backed by a real PostgreSQL: ``GET /customer?email=…``
looks a customer up by e-mail (``SELECT … FROM customers WHERE email = %s``), one
database connection per HTTP connection (each is served by its own thread). Loaded by
orch in tests/test_db_sampling.py and benchmarks/db_sampling.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

LOOKUP = "SELECT id, name FROM customers WHERE email = %s"


class CustomerService(ThreadingHTTPServer):
    """The service: its database URL and the connections its threads opened."""

    daemon_threads = True

    def __init__(self, database_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.database_url = database_url
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def connection(self) -> psycopg.Connection[Any]:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = psycopg.connect(self.database_url, autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def release(self) -> None:
        """Close this thread's connection (its HTTP connection has ended)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._lock:
                self._connections.remove(conn)
            with contextlib.suppress(Exception):
                conn.close()

    def close_connections(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CustomerService

    def do_GET(self) -> None:  # http.server's name
        parts = urlsplit(self.path)
        email = parse_qs(parts.query).get("email", [""])[0]
        if parts.path != "/customer" or not email:
            self._send(404, {"error": "GET /customer?email=..."})
            return
        row = self.server.connection().execute(LOOKUP, (email,)).fetchone()
        if row is None:
            self._send(404, {"error": "no such customer"})
        else:
            self._send(200, {"id": row[0], "name": row[1]})

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.release()

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass


@contextlib.contextmanager
def customer_service(database_url: str) -> Iterator[CustomerService]:
    """The service serving in a thread while the block runs."""
    service = CustomerService(database_url)
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.shutdown()
        service.server_close()
        service.close_connections()
        thread.join(timeout=5)

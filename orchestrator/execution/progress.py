"""Live progress of a running k6, read from its REST API on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# k6's durations are read in one place; planned_seconds is imported from here by the runs
from orchestrator.config import planned_seconds as planned_seconds

# k6's REST API listens on loopback: no proxy variable (HTTP_PROXY, ...) may send these
# requests to another host, so the opener has no proxy handler at all.
LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ProgressSnapshot:
    """What the REST API said at one moment."""

    elapsed_s: float
    requests: int
    error_rate: float
    vus: int  # active now
    vus_max: int = 0  # allocated


class ProgressMonitor:
    """Polls k6's REST API in a thread and reports snapshots to a callback."""

    def __init__(
        self,
        api_address: str,
        on_snapshot: Callable[[ProgressSnapshot], None],
        interval_s: float = 1.0,
    ) -> None:
        self._base = f"http://{api_address}/v1"
        self._on_snapshot = on_snapshot
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="k6-progress")
        self._started = time.monotonic()
        self.last: ProgressSnapshot | None = None

    def __enter__(self) -> ProgressMonitor:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _get(self, path: str) -> dict[str, Any]:
        with LOOPBACK_OPENER.open(f"{self._base}/{path}", timeout=0.5) as response:
            body: dict[str, Any] = json.load(response)
            return body["data"]["attributes"]

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                reqs = self._get("metrics/http_reqs")["sample"].get("count", 0)
                failed = self._get("metrics/http_req_failed")["sample"].get("rate", 0.0)
                status = self._get("status")
            except (OSError, urllib.error.URLError, KeyError, ValueError):
                continue  # not up yet, no requests yet, or already gone
            self.last = ProgressSnapshot(
                elapsed_s=time.monotonic() - self._started,
                requests=int(reqs),
                error_rate=float(failed),
                vus=int(status.get("vus", 0)),
                vus_max=int(status.get("vus-max", 0)),
            )
            self._on_snapshot(self.last)

"""A real headless Chromium, driven through the DevTools protocol, for the HTML report.

:func:`open_page` loads a file and returns what a person's browser would show and log:
a screenshot, the console messages and uncaught errors, and every request the page made.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium() -> str | None:
    """The path of a Chromium on PATH, or None."""
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@dataclass
class PageReport:
    """What loading one page showed and logged."""

    screenshot: bytes
    console: list[str] = field(default_factory=list)  # every console message, "level: text"
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    requests: list[str] = field(default_factory=list)  # every URL the page requested


class _Session:
    """A DevTools-protocol session on one page target, over the browser's WebSocket."""

    def __init__(self, socket: Any, session_id: str) -> None:
        self.socket, self.session_id = socket, session_id
        self.ids = itertools.count(100)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        message = {"id": call_id, "method": method, "params": params, "sessionId": self.session_id}
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == call_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout:.0f} s")
            self.events.append(json.loads(self.socket.recv(timeout=remaining)))


@contextlib.contextmanager
def _browser(profile: Path) -> Iterator[str]:
    """Start a headless Chromium on a loopback DevTools port; yield its WebSocket URL."""
    binary = chromium()
    assert binary, "no chromium on PATH (Debian: apt-get install chromium)"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-default-apps", "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", f"--user-data-dir={profile}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [binary, *flags, "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
    )
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            match = _LISTENING.search(line)
            url = match.group(1) if match else None
        assert url, "chromium did not open its DevTools port"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_page(
    path: Path, profile: Path, *, width: int = 1200, script: str | None = None
) -> tuple[PageReport, Any]:
    """Load ``path`` in a fresh headless Chromium; return what it showed and logged, and the
    value of ``script`` (a JavaScript expression) evaluated once the page has loaded."""
    from websockets.sync.client import connect

    with _browser(profile) as url, connect(url, max_size=64 * 1024 * 1024) as socket:
        socket.send(json.dumps({"id": 1, "method": "Target.createTarget",
                                "params": {"url": "about:blank"}}))  # fmt: skip
        target = _result(socket, 1)["targetId"]
        socket.send(json.dumps({"id": 2, "method": "Target.attachToTarget",
                                "params": {"targetId": target, "flatten": True}}))  # fmt: skip
        page = _Session(socket, _result(socket, 2)["sessionId"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        page.call("Page.navigate", url=path.resolve().as_uri())
        page.wait_for("Page.loadEventFired")
        value = None
        if script is not None:
            value = page.call("Runtime.evaluate", expression=script, returnByValue=True)
            value = value.get("result", {}).get("value")
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        report = PageReport(screenshot=base64.b64decode(shot["data"]))
        for event in page.events:
            _note(event, report)
        return report, value


def _result(socket: Any, call_id: int) -> dict[str, Any]:
    while True:
        reply = json.loads(socket.recv(timeout=30))
        if reply.get("id") == call_id:
            return dict(reply["result"])


def _note(event: dict[str, Any], report: PageReport) -> None:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        report.console.append(f"{params['type']}: {text}")
        if params["type"] in ("error", "assert"):
            report.errors.append(text)
    elif method == "Runtime.exceptionThrown":
        report.errors.append(str(params["exceptionDetails"].get("text")))
    elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
        report.errors.append(params["entry"]["text"])
    elif method == "Network.requestWillBeSent":
        report.requests.append(params["request"]["url"])

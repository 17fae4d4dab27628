"""Run k6: the one boundary between orch and the k6 process (native or in Docker).

A runner takes a :class:`K6Invocation` (what to run, where outputs go, which environment
variables k6 sees) and returns a :class:`K6Outcome`. It streams every line k6 prints to a
callback, writes nothing but what k6 writes, and turns Ctrl-C into a graceful stop:
SIGINT first, then a kill after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.core import SetupError
from orchestrator.execution.loadgen import process_sampler
from orchestrator.results import RunFolder

LineSink = Callable[[str], None]

# What a native k6 inherits from orch's environment, besides the run's own variables:
# nothing that can change k6's options (K6_*) or where it connects (proxy variables).
INHERITED_VARIABLES = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP")
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def k6_environment(run_env: dict[str, str]) -> dict[str, str]:
    """The whole environment a k6 process gets: PATH, HOME (and the temp folder) plus the
    run's variables."""
    inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    return {**inherited, **run_env}


def dropped_variables() -> list[str]:
    """Names of orch's ``K6_*`` and proxy variables, which k6 is not given."""
    return sorted(
        name
        for name in os.environ
        if name.upper().startswith("K6_") or name.lower() in _PROXY_VARIABLES
    )

# Seconds k6 gets to finish after SIGINT (it writes its summary) before it is killed.
STOP_GRACE_SECONDS = 15.0
# The same after a write error in the run folder (a full disk): there is little to save.
IO_STOP_GRACE_SECONDS = 3.0
# What k6 prints when it cannot write its outputs (raw points, summary) into the run folder.
WRITE_FAILURE_MARKERS = (
    "Error writing to file",
    "no space left on device",
    "read-only file system",
)


@dataclass(frozen=True)
class K6Invocation:
    """Everything a runner needs to start one `k6 run`, independent of where k6 runs.

    Output file names are relative to ``run_dir``; each runner maps them to its own view
    of the filesystem (a container sees ``run_dir`` at a mount point).
    """

    script_dir: Path  # folder with the rendered script and its helper modules (read-only)
    script_name: str  # the script's file name inside script_dir
    run_dir: Path  # writable folder for every output
    env: dict[str, str]  # variables k6 sees in __ENV (secrets included; never logged)
    extra_args: list[str] = field(default_factory=list)  # further `k6 run` options
    summary_file: str = RunFolder.SUMMARY  # --summary-export target
    raw_file: str = RunFolder.RAW_CSV  # --out csv= target
    api_address: str | None = None  # host:port for k6's REST API (live progress)

    def k6_args(self, script_path: str, out_dir: str) -> list[str]:
        """The `k6 run ...` argument list, with paths as the k6 process sees them."""
        # --no-usage-report: k6 would otherwise send usage statistics to stats.grafana.org,
        # a connection outside every allow-list
        args = ["run", "--quiet", "--no-color", "--no-usage-report"]
        args += ["--summary-export", f"{out_dir}/{self.summary_file}"]
        args += ["--out", f"csv={out_dir}/{self.raw_file}"]
        if self.api_address:
            args += ["--address", self.api_address]
        args += self.extra_args
        args.append(script_path)
        return args


@dataclass(frozen=True)
class K6Outcome:
    """How the k6 process ended."""

    exit_code: int | None  # k6's exit code; None when it was killed by a signal
    interrupted: bool  # orch stopped it because of Ctrl-C / SIGTERM
    killed_by_signal: int | None = None  # the signal that ended k6, if any
    command: list[str] = field(default_factory=list)  # the command as logged (no secrets)
    io_error: str | None = None  # orch stopped k6 because the run folder could not be written
    resources: dict[str, Any] | None = None  # k6's CPU and memory (loadgen.summarize)


class LinePump:
    """Forwards k6's output lines to a sink and notices when the run folder cannot be
    written: the sink failing (k6.log on a full disk) or k6 saying it cannot write its
    output. After that it drains k6's output without forwarding it, so k6 never blocks on
    a full pipe, and :attr:`failed` tells the runner to stop k6. :attr:`changed` is set
    on a failure and when k6 closes its output (it is ending), to wake the runner at once."""

    def __init__(self, on_line: LineSink) -> None:
        self._on_line = on_line
        self.failed = threading.Event()
        self.closed = threading.Event()
        self.changed = threading.Event()
        self.problem: str | None = None

    def close(self) -> None:
        """k6's output has ended."""
        self.closed.set()
        self.changed.set()

    def feed(self, line: str) -> None:
        if self.failed.is_set():
            return
        if any(marker in line for marker in WRITE_FAILURE_MARKERS):
            self._fail(f"k6 could not write its output: {line.strip()[:240]}")
        try:
            self._on_line(line)
        except Exception as exc:  # any failure of the sink must end the run, not hang it
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self._fail(f"writing {RunFolder.LOG} failed: {reason}")

    def _fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.failed.set()
        self.changed.set()


class K6Runner(Protocol):
    """A way to run k6: natively or through Docker."""

    name: str

    def version(self) -> str:
        """The k6 version this runner uses, e.g. ``v1.1.0``."""
        ...

    def run(self, invocation: K6Invocation, on_line: LineSink) -> K6Outcome:
        """Run k6 to completion, streaming its output lines to ``on_line``; Ctrl-C in the
        calling thread, or :meth:`stop` from another, stops k6 gracefully."""
        ...

    def stop(self) -> None:
        """Ask every run in progress (in other threads) to stop as if Ctrl-C was pressed."""
        ...


class NativeRunner:
    """Runs a k6 binary on this machine as a subprocess."""

    name = "native"

    def __init__(self, k6_path: Path, k6_version: str) -> None:
        self.k6_path = k6_path
        self._version = k6_version
        self._stop = threading.Event()

    def version(self) -> str:
        """The binary's version, as checked at discovery."""
        return self._version

    def stop(self) -> None:
        """Ask every run in progress (in other threads) to stop as if Ctrl-C was pressed."""
        self._stop.set()

    def run(self, invocation: K6Invocation, on_line: LineSink) -> K6Outcome:
        """Start k6, pump its output, and stop it gracefully on Ctrl-C or :meth:`stop`."""
        args = invocation.k6_args(
            str(invocation.script_dir / invocation.script_name), str(invocation.run_dir)
        )
        command = [str(self.k6_path), *args]
        env = k6_environment(invocation.env)
        try:
            proc = subprocess.Popen(
                command,
                cwd=invocation.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                # k6 gets its own process group: a terminal's Ctrl-C reaches orch only,
                # and orch decides how k6 stops.
                start_new_session=True,
            )
        except OSError as exc:
            raise SetupError(f"could not start k6 at {self.k6_path}: {exc}") from exc
        sampler = process_sampler(proc.pid)
        if sampler is not None:
            sampler.start()
        lines = LinePump(on_line)
        pump = threading.Thread(target=_pump_lines, args=(proc, lines), daemon=True)
        pump.start()
        interrupted = False
        try:
            while proc.poll() is None:
                if lines.failed.is_set():
                    _stop_gracefully(proc, IO_STOP_GRACE_SECONDS)
                    break
                if self._stop.is_set():
                    raise KeyboardInterrupt
                if lines.closed.is_set():  # k6 is ending: notice its exit without delay
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.1)
                else:
                    lines.changed.wait(0.1)
        except KeyboardInterrupt:
            interrupted = True
            _stop_gracefully(proc)
        proc.wait()
        pump.join(timeout=5)
        if sampler is not None:
            sampler.stop()
        code = proc.returncode
        return K6Outcome(
            exit_code=code if code is not None and code >= 0 else None,
            interrupted=interrupted,
            killed_by_signal=-code if code is not None and code < 0 else None,
            command=command,
            io_error=lines.problem,
            resources=sampler.summary() if sampler is not None else None,
        )


def _pump_lines(proc: subprocess.Popen[str], lines: LinePump) -> None:
    """Forward each output line of ``proc`` until it closes its output."""
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.feed(line.rstrip("\n"))
    finally:
        lines.close()


def _stop_gracefully(proc: subprocess.Popen[str], grace_s: float = STOP_GRACE_SECONDS) -> None:
    """SIGINT k6 so it writes its summary; kill it if it does not end in time."""
    deadline = time.monotonic() + grace_s
    with ignoring_sigint():
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def ignoring_sigint() -> Iterator[None]:
    """Ignore further Ctrl-C while k6 shuts down, so a second press does not orphan it.

    Only the main thread may change signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

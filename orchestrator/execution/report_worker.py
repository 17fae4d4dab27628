"""A forked process that loads the report's libraries while k6 runs, then does the report.

When k6 has ended, orch compacts the raw output and builds the report with DuckDB,
matplotlib, Jinja2 and markdown-it (not pandas). Importing them took about 0.7 s of wall
time after the load, on top of the work itself. The worker is forked before k6 starts.
One of its threads imports those libraries at the lowest CPU priority, so k6 keeps the
cores; its main thread waits.
In a long run it imports them only in the run's last half minute (about 60 MB).
When k6 has ended, :meth:`ReportWorker.finish` hands it the job's arguments, and it does
the job and sends back the result and the lines it would have printed.

No run depends on the worker. Where there is no ``fork`` (Windows), where
``ORCH_REPORT_WORKER=0`` is set, or when the worker fails or dies, :meth:`finish` returns
None and the caller does the job itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")
# The job: (its arguments, a sink for the lines it would print) -> its result (picklable).
Job = Callable[[Any, Callable[[str], None]], Result]

# What the report imports lazily; loading them is the worker's head start. ``module:name``
# also calls ``module.name()`` (what the module builds on first use).
WARM_MODULES = (
    "duckdb",
    "numpy",
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.ticker",
    "matplotlib.backends.backend_agg",
    "jinja2",
    "markdown_it",
    "orchestrator.results.ingest_cache:prepare",
)
# Kept short: after a Ctrl-C the worker needs only to note the interruption in run.json.
INTERRUPT_GRACE_S = 5.0
_HEADER = struct.Struct("!Q")


def enabled() -> bool:
    """Whether runs use a worker: ``fork`` exists and ``ORCH_REPORT_WORKER`` is not 0."""
    return hasattr(os, "fork") and os.environ.get("ORCH_REPORT_WORKER", "1") != "0"


class ReportWorker(Generic[Result]):
    """One forked worker, used at most once: :meth:`finish` or :meth:`close`."""

    def __init__(self, pid: int, to_worker: int, from_worker: int) -> None:
        self.pid = pid
        self._to_worker: int | None = to_worker
        self._from_worker: int | None = from_worker

    @classmethod
    def fork(
        cls,
        job: Job[Result],
        *,
        warm_after_s: float = 0.0,
        warm_modules: tuple[str, ...] = WARM_MODULES,
    ) -> ReportWorker[Result] | None:
        """Fork a worker that will run ``job``; None when it cannot (no fork, disabled,
        or the fork failed).

        It imports ``warm_modules`` after ``warm_after_s`` (or when its job comes, if that
        is sooner): a long run does not hold their memory for its whole length.
        """
        if not enabled():
            return None
        try:
            inbox_r, inbox_w = os.pipe()
            outbox_r, outbox_w = os.pipe()
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            for fd in (inbox_r, inbox_w, outbox_r, outbox_w):
                os.close(fd)
            return None
        if pid == 0:  # the worker: never returns into the caller's code
            status = 1
            try:
                os.close(inbox_w)
                os.close(outbox_r)
                status = _serve(job, inbox_r, outbox_w, warm_after_s, warm_modules)
            finally:
                os._exit(status)
        os.close(inbox_r)
        os.close(outbox_w)
        return cls(pid, inbox_w, outbox_r)

    def finish(self, args: Any) -> tuple[Result, list[str]] | None:
        """Run the job in the worker: (its result, the lines it printed), or None when the
        worker failed, died or raised (the caller then runs the job itself).

        A Ctrl-C while the worker works is passed on to it; the worker notes the
        interruption as the job would, and the KeyboardInterrupt is raised here.
        """
        if self._to_worker is None or self._from_worker is None:
            return None
        try:
            try:
                _send(self._to_worker, args)
            except OSError:
                return None
            finally:
                self._close_inbox()
            try:
                answer = _receive(self._from_worker)
            except KeyboardInterrupt:
                self._interrupt()
                raise
            except (OSError, EOFError, pickle.UnpicklingError):
                return None
        finally:
            self.close()
        kind, value, lines = answer
        if kind != "ok":
            return None
        return value, lines

    def close(self) -> None:
        """End the worker if it has no job (it exits when its inbox closes) and reap it."""
        self._close_inbox()
        if self._from_worker is not None:
            with contextlib.suppress(OSError):
                os.close(self._from_worker)
            self._from_worker = None
        if self.pid:
            _reap(self.pid, deadline=time.monotonic() + INTERRUPT_GRACE_S)
            self.pid = 0

    def _close_inbox(self) -> None:
        if self._to_worker is not None:
            with contextlib.suppress(OSError):
                os.close(self._to_worker)
            self._to_worker = None

    def _interrupt(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGINT)  # a Ctrl-C at the terminal reached it already
        _reap(self.pid, deadline=time.monotonic() + INTERRUPT_GRACE_S)
        self.pid = 0


def _serve(
    job: Job[Any], inbox: int, outbox: int, warm_after_s: float, warm_modules: tuple[str, ...]
) -> int:
    """The worker's life: warm up, wait for the job (or the end of the inbox), do it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C during the load is the run's
    job_came = threading.Event()
    threading.Thread(
        target=_warm_up, args=(warm_modules, warm_after_s, job_came), daemon=True
    ).start()
    try:
        args = _receive(inbox)
    except (OSError, EOFError, pickle.UnpicklingError):
        return 0  # the run ended without a job for it
    job_came.set()  # the job imports what it needs itself
    signal.signal(signal.SIGINT, signal.default_int_handler)
    lines: list[str] = []
    try:
        answer: tuple[str, Any, list[str]] = ("ok", job(args, lines.append), lines)
    except BaseException as exc:  # the caller runs the job itself, or sees the Ctrl-C
        answer = ("failed", f"{type(exc).__name__}: {exc}", lines)
    try:
        _send(outbox, answer)
    except (OSError, pickle.PicklingError):
        return 1
    return 0


def _warm_up(modules: tuple[str, ...], after_s: float, job_came: threading.Event) -> None:
    """Import ``modules`` at the lowest priority (Linux: this thread only), ``after_s``
    from now, unless the job comes first."""
    if after_s > 0 and job_came.wait(after_s):
        return
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    for name in modules:
        module_name, _, function = name.partition(":")
        with contextlib.suppress(Exception):
            module = importlib.import_module(module_name)
            if function:
                getattr(module, function)()
    with contextlib.suppress(Exception):
        if "matplotlib" in sys.modules:
            sys.modules["matplotlib"].use("Agg", force=False)


def _send(fd: int, value: Any) -> None:
    data = pickle.dumps(value)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size))
    return pickle.loads(_read_exactly(fd, size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _reap(pid: int, deadline: float) -> None:
    """Wait for our own child ``pid`` to exit; past ``deadline`` kill it (by its PID)."""
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if time.monotonic() >= deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return
        time.sleep(0.01)

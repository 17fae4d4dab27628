"""The report worker: a forked process that does a job for the run and answers, and that
never leaves the run without a report: any failure gives None, and the caller does it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.execution.report_worker import ReportWorker

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker needs fork")


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False  # reaped already
    return done == 0


@pytest.fixture
def workers() -> Iterator[list[ReportWorker[Any]]]:
    made: list[ReportWorker[Any]] = []
    yield made
    for worker in made:
        worker.close()


def _fork(job: Callable[[Any, Callable[[str], None]], Any], made: list[ReportWorker[Any]]
          ) -> ReportWorker[Any]:  # fmt: skip
    worker = ReportWorker.fork(job)
    assert worker is not None
    made.append(worker)
    return worker


def _double(args: Any, echo: Callable[[str], None]) -> Any:
    echo(f"doubling {args}")
    return {"twice": args * 2, "pid": os.getpid()}


def test_the_worker_does_the_job_in_another_process_and_returns_result_and_lines(
    workers: list[ReportWorker[Any]],
) -> None:
    worker = _fork(_double, workers)
    pid = worker.pid
    done = worker.finish(21)
    assert done is not None
    result, lines = done
    assert result["twice"] == 42
    assert result["pid"] == pid != os.getpid()
    assert lines == ["doubling 21"]
    assert not _alive(pid)  # it exits after answering and is reaped


def test_a_job_that_raises_gives_none(workers: list[ReportWorker[Any]]) -> None:
    def fails(args: Any, echo: Callable[[str], None]) -> Any:
        echo("about to fail")
        raise RuntimeError("no report")

    assert _fork(fails, workers).finish(None) is None


def test_a_worker_that_died_gives_none(workers: list[ReportWorker[Any]]) -> None:
    worker = _fork(_double, workers)
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(0.1)
    assert worker.finish(1) is None


def test_close_without_a_job_ends_and_reaps_the_worker(
    workers: list[ReportWorker[Any]],
) -> None:
    worker = _fork(_double, workers)
    pid = worker.pid
    assert _alive(pid)
    worker.close()
    assert not _alive(pid)
    assert worker.finish(1) is None  # used at most once


def test_orch_report_worker_0_turns_the_worker_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_REPORT_WORKER", "0")
    assert ReportWorker.fork(_double) is None


def _wait_until_sigint_ignored(pid: int) -> None:
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ignored = next(line for line in status.read_text().splitlines()
                       if line.startswith("SigIgn:"))  # fmt: skip
        if int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)):
            return
        time.sleep(0.01)
    raise AssertionError("the worker never ignored SIGINT")


@pytest.mark.slow  # about 0.6 s
def test_ctrl_c_during_the_job_reaches_the_worker_and_is_raised_here(
    workers: list[ReportWorker[Any]], tmp_path: Path
) -> None:
    """The job sees the KeyboardInterrupt (the real report notes it in run.json)."""
    noted = tmp_path / "interrupted"

    def slow(args: Any, echo: Callable[[str], None]) -> Any:
        try:
            time.sleep(30)
        except KeyboardInterrupt:
            noted.write_text("noted")
            raise

    worker = _fork(slow, workers)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        worker.finish(None)
    timer.join()
    assert time.monotonic() - started < 10
    assert noted.read_text() == "noted"


def test_ctrl_c_while_waiting_for_its_job_does_not_end_the_worker(
    workers: list[ReportWorker[Any]],
) -> None:
    """Ctrl-C at the terminal reaches the whole process group during the load; the run
    still needs its report afterwards."""
    worker = _fork(_double, workers)
    _wait_until_sigint_ignored(worker.pid)
    os.kill(worker.pid, signal.SIGINT)
    time.sleep(0.1)
    done = worker.finish(2)
    assert done is not None and done[0]["twice"] == 4


def _warmed(args: Any, echo: Callable[[str], None]) -> Any:
    return [name in sys.modules for name in args]


@pytest.mark.parametrize(("warm_after_s", "warmed"), [(0.0, True), (60.0, False)])
def test_a_long_run_s_worker_imports_its_libraries_only_near_the_end(
    workers: list[ReportWorker[Any]], warm_after_s: float, warmed: bool
) -> None:
    """A worker holds the report's libraries only from ``warm_after_s`` on (stdlib modules
    nothing here imports stand in for them)."""
    modules = ("tabnanny", "wave")
    assert not any(name in sys.modules for name in modules)
    worker = ReportWorker.fork(_warmed, warm_after_s=warm_after_s, warm_modules=modules)
    assert worker is not None
    workers.append(worker)
    time.sleep(1.0)  # far longer than importing two small modules takes
    done = worker.finish(modules)
    assert done is not None
    assert done[0] == [warmed, warmed]


def _adapter_built(args: Any, echo: Callable[[str], None]) -> Any:
    from orchestrator.results import ingest_cache

    return ingest_cache._adapter.cache_info().currsize


def test_a_worker_calls_what_its_warm_list_names(workers: list[ReportWorker[Any]]) -> None:
    """``module:function`` in the warm list is imported and called (the figures cache's
    validator is built while k6 runs, not after)."""
    from orchestrator.results import ingest_cache

    ingest_cache._adapter.cache_clear()
    worker = ReportWorker.fork(
        _adapter_built, warm_after_s=0.0,
        warm_modules=("orchestrator.results.ingest_cache:prepare",),
    )  # fmt: skip
    assert worker is not None
    workers.append(worker)
    time.sleep(1.0)
    done = worker.finish(None)
    assert done is not None and done[0] == 1
    assert ingest_cache._adapter.cache_info().currsize == 0  # built in the worker only

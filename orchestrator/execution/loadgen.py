"""The load generator's own health: k6's CPU and memory, sampled while it runs.

A k6 that has used up its CPU cannot start iterations on time, and what it then measures
is its own queueing, not the target's latency. :class:`ResourceSampler` reads k6's
cumulative CPU time and its memory every half second, from ``/proc/<pid>`` (Linux), psutil
(elsewhere, when installed) or the Docker engine's stats stream (``--runner docker``), and
:meth:`ResourceSampler.summary` gives what run.json records as ``load_generator``.

A generator is **saturated** when, for more than half of the samples, k6 used at least
90 % of the cores it could use (the machine's, or the container's). Cores are counted
whole: 100 % is one core busy for the whole interval.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.results.delivery import SATURATED_SHARE_OF_CORES, SATURATED_SHARE_OF_RUN

SAMPLE_INTERVAL_S = 0.5
_MIB = 1024 * 1024

# (monotonic time of the reading, cumulative CPU seconds, resident memory in bytes) of the
# generator, or None when it has ended
Reading = tuple[float, float, int] | None


@dataclass(frozen=True)
class Sample:
    """One reading: cores in use over the last interval, and memory."""

    t: float  # monotonic seconds
    cores: float  # 1.0 = one core busy for the whole interval
    rss_bytes: int


class ResourceSampler:
    """Samples one process (or container) in a thread until :meth:`stop`."""

    def __init__(
        self,
        read: Callable[[], Reading],
        *,
        source: str,
        cores_available: Callable[[], float | None] | float | None = None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self._read = read
        self.source = source
        self._cores = cores_available
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="k6-resources")

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    @property
    def cores_available(self) -> float:
        """The cores the generator may use (the machine's, its CPU affinity's, a container's)."""
        cores = self._cores() if callable(self._cores) else self._cores
        return float(cores or os.cpu_count() or 1)

    def _loop(self) -> None:
        previous: tuple[float, float] | None = None  # (monotonic, cpu seconds)
        while True:
            try:
                reading = self._read()
            except Exception:  # a vanished process or engine: stop sampling, never crash
                reading = None
            if reading is None:
                if previous is not None:
                    return  # the process ended
            else:
                at, cpu_s, rss = reading
                if previous is not None and at > previous[0]:
                    cores = max(0.0, (cpu_s - previous[1]) / (at - previous[0]))
                    self.samples.append(Sample(at, cores, rss))
                if previous is None or at > previous[0]:
                    previous = (at, cpu_s)
            if self._stop.wait(self.interval_s):
                return

    def summary(self) -> dict[str, Any] | None:
        """What run.json records as ``load_generator``; None without any sample."""
        return summarize(self.samples, self.source, self.cores_available, self.interval_s)


def summarize(
    samples: list[Sample], source: str, cores_available: float, interval_s: float
) -> dict[str, Any] | None:
    """The summary of a list of samples (see the module's docstring for *saturated*)."""
    if not samples:
        return None
    cores = [s.cores for s in samples]
    memory = [s.rss_bytes for s in samples]
    busy = sum(1 for c in cores if c >= SATURATED_SHARE_OF_CORES * cores_available)
    share = busy / len(samples)
    return {
        "source": source,
        "samples": len(samples),
        "interval_s": interval_s,
        "cpu_cores_available": round(cores_available, 2),
        "cpu_avg_pct": round(100.0 * sum(cores) / len(cores), 1),
        "cpu_max_pct": round(100.0 * max(cores), 1),
        "memory_avg_mib": round(sum(memory) / len(memory) / _MIB, 1),
        "memory_max_mib": round(max(memory) / _MIB, 1),
        "saturated_share": round(share, 3),
        "saturated": share > SATURATED_SHARE_OF_RUN,
    }


# --------------------------------------------------------------------------- native k6


def process_sampler(pid: int) -> ResourceSampler | None:
    """A sampler of a local process: /proc on Linux, else psutil when it is installed."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

        def read_proc() -> Reading:
            try:
                stat = (proc / "stat").read_text()
                statm = (proc / "statm").read_text().split()
            except OSError:
                return None
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] == "Z":  # a zombie: ended, not yet reaped
                return None
            cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
            return time.monotonic(), cpu, int(statm[1]) * page

        return ResourceSampler(read_proc, source="/proc", cores_available=_affinity_cores())
    try:
        import psutil
    except ImportError:
        return None
    try:
        handle = psutil.Process(pid)
    except psutil.Error:
        return None

    def read_psutil() -> Reading:
        try:
            times = handle.cpu_times()
            cpu = float(times.user + times.system)
            return time.monotonic(), cpu, int(handle.memory_info().rss)
        except psutil.Error:
            return None

    return ResourceSampler(read_psutil, source="psutil")


def _affinity_cores() -> float:
    with contextlib.suppress(AttributeError, OSError):
        return float(len(os.sched_getaffinity(0)))
    return float(os.cpu_count() or 1)


# --------------------------------------------------------------------------- Docker


class DockerStatsReader:
    """Reads a container's cumulative CPU time and memory from the engine's stats stream
    (one decoded JSON object per second), in its own thread."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self._latest: Reading = None
        self._ended = False
        self.cores_available: float | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True, name="docker-stats")
        self._thread.start()

    def _follow(self) -> None:
        try:
            stream: Iterator[dict[str, Any]] = self._container.stats(stream=True, decode=True)
            for item in stream:
                cpu = (item.get("cpu_stats") or {}).get("cpu_usage") or {}
                total_ns = cpu.get("total_usage")
                if total_ns is None:
                    continue
                online = (item.get("cpu_stats") or {}).get("online_cpus")
                if online and self.cores_available is None:
                    self.cores_available = float(online)
                memory = item.get("memory_stats") or {}
                usage = int(memory.get("usage") or 0)
                cache = (memory.get("stats") or {}).get("inactive_file") or 0
                self._latest = (time.monotonic(), total_ns / 1e9, max(0, usage - int(cache)))
        except Exception:
            pass  # the container ended or the engine went away
        self._ended = True

    def read(self) -> Reading:
        if self._ended:
            return None
        return self._latest


def container_sampler(container: Any) -> ResourceSampler:
    """A sampler of a running container through the Docker engine's stats API (which
    reports about once a second)."""
    reader = DockerStatsReader(container)
    return ResourceSampler(
        reader.read,
        source="docker stats",
        cores_available=lambda: reader.cores_available,
        interval_s=0.5,
    )

"""A throw-away PostgreSQL 15 cluster with pg_stat_statements, for the tests of the
database sampled during a load.

Debian's ``postgresql-15`` (``.ci/run`` installs it) is started in a temporary folder on a
free loopback port, as the ``postgres`` user when the tests run as root (PostgreSQL
refuses to run as root), and stopped by the PID in its ``postmaster.pid``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(os.environ.get("ORCH_TEST_PG15_BIN", "/usr/lib/postgresql/15/bin"))


class ClusterUnavailable(Exception):
    """PostgreSQL 15 is not installed here or would not start."""


@dataclass
class Cluster:
    """A running cluster: its folder, port and postmaster PID."""

    root: Path
    port: int
    pid: int

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL of ``dbname`` as the superuser ``postgres``, over TCP on loopback."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then remove the folder."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_postgres(args: list[str]) -> list[str]:
    """The command run as the ``postgres`` user when this process is root."""
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        raise ClusterUnavailable("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *args]


def start_cluster(port: int) -> Cluster:
    """initdb and start a cluster on 127.0.0.1:``port`` with pg_stat_statements preloaded
    (trust authentication on loopback only); raise :class:`ClusterUnavailable` otherwise."""
    if not (BIN / "postgres").is_file():
        raise ClusterUnavailable(f"PostgreSQL 15 is not installed ({BIN}/postgres missing)")
    root = Path(tempfile.mkdtemp(prefix="orch-pg15-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    run = dict(capture_output=True, text=True, timeout=120, check=False)
    init = subprocess.run(  # a fixed binary, our own arguments
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "--no-sync", "-E", "UTF8"]), **run,  # type: ignore[call-overload]
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 "
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
    )
    start = subprocess.run(
        _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                      "-t", "60", "-o", options, "start"]), **run,  # type: ignore[call-overload]
    )  # fmt: skip
    pid_file = data / "postmaster.pid"
    if start.returncode != 0 or not pid_file.is_file():
        log = (root / "log").read_text(errors="replace")[-800:] if (root / "log").is_file() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise ClusterUnavailable(f"PostgreSQL 15 did not start: {start.stderr.strip()} {log}")
    pid = int(pid_file.read_text().splitlines()[0])
    return Cluster(root, port, pid)

"""A verdict CI can trust (issue 13), against the real k6 and real loopback servers:
load that was not delivered, a port squatter, a sandbox that dies, a full disk, and a k6
that never started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import free_port

from orchestrator.cli import main
from orchestrator.core import ExitCode
from orchestrator.target.sandbox import identity_file

SLOW_MS = 200


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request (after ``server.delay_s``) and records what it was sent."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.seen.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers)}
            )
        time.sleep(self.server.delay_s)
        body = b'{"executionId":"1","status":"queued"}'
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_OPTIONS = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, delay_s: float, status: int = 200) -> None:
        super().__init__(("127.0.0.1", port), _Recorder)
        self.delay_s, self.status = delay_s, status
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()


@contextmanager
def loopback_server(port: int, *, delay_s: float = 0.0, status: int = 200) -> Iterator[_Server]:
    server = _Server(port, delay_s, status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# A scenario of one GET per iteration (the sandbox's /health, or any path of a test
# server), with the NFR thresholds: independent of the product scenarios' templates.
PING_TEMPLATE = """\
import { getJson } from './k6_scripts/http.js';
import { checkJson } from './k6_scripts/checks.js';

export const options = {{ options | tojson }};
const BASE_URL = __ENV[{{ base_url_var }}] || {{ base_url }};

export default function () {
  const res = getJson(`${BASE_URL}/health`, { name: 'ping' });
  checkJson(res, 'ping', { statuses: [200] });
}
"""
PING_SCENARIO = """
  ping:
    template: ping.js.j2
    thresholds:
      http_req_failed: ["rate<0.01"]
      "http_req_duration{name:ping}": ["p(95)<500"]
    default_profile: smoke
    profiles:
      smoke:
        executor: constant-arrival-rate
        rate: 20
        timeUnit: 1s
        duration: 2s
        preAllocatedVUs: 2
        maxVUs: 10
      dying:
        executor: constant-arrival-rate
        rate: 20
        timeUnit: 1s
        duration: 4s
        preAllocatedVUs: 2
        maxVUs: 10
      flood:
        executor: constant-arrival-rate
        rate: 2000
        timeUnit: 1s
        duration: 30s
        preAllocatedVUs: 20
        maxVUs: 40
      under:
        executor: constant-arrival-rate
        rate: 20
        timeUnit: 1s
        duration: 3s
        preAllocatedVUs: 2
        maxVUs: 2
      under-stress:
        executor: constant-arrival-rate
        rate: 20
        timeUnit: 1s
        duration: 3s
        preAllocatedVUs: 2
        maxVUs: 2
        delivery: false
"""
# An environment without a sandbox, pointing at a slow loopback server: the `under`
# profile needs 20 iterations/s from at most 2 VUs, which make about 10/s at 200 ms.
SLOW_YAML = """
  slow:
    kind: local
    base_url: http://127.0.0.1:{port}
    n8n_base_url: http://127.0.0.1:{port}
"""


def ping_project(project: Callable[..., Path], slow_port: int | None = None) -> Path:
    """The short test project with the `ping` scenario (and the `slow` environment)."""
    config = project(extra_yaml=PING_SCENARIO)
    (config.parent / "templates" / "ping.js.j2").write_text(PING_TEMPLATE)
    if slow_port is not None:
        text = config.read_text()
        slow = SLOW_YAML.format(port=slow_port)
        config.write_text(text.replace("\n  staging:\n", slow + "  staging:\n", 1))
    return config


def slow_project(project: Callable[..., Path], port: int) -> Path:
    return ping_project(project, port)


def the_run(config: Path) -> Path:
    (run_dir,) = [p for p in (config.parent / "results").iterdir() if p.is_dir()]
    return run_dir


def read(run_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / name).read_text())
    return data


@pytest.mark.slow
def test_load_not_delivered_has_its_own_outcome_exit_code_and_first_line(
    project: Callable[..., Path],
) -> None:
    port = free_port()
    config = slow_project(project, port)
    with loopback_server(port, delay_s=SLOW_MS / 1000):
        result = CliRunner().invoke(
            main, ["run", "ping", "--env", "slow", "--profile", "under",
                   "--config", str(config)],
        )  # fmt: skip
    assert result.exit_code == ExitCode.LOAD_NOT_DELIVERED == 10, result.output
    run_dir = the_run(config)
    run_json = read(run_dir, "run.json")
    assert run_json["outcome"] == "load_not_delivered"
    assert run_json["exit_code"] == 10 and run_json["k6_exit_code"] == 0
    assert run_json["delivery"] == {"min_achieved": 0.95, "max_dropped": 0.01}
    results = read(run_dir, "results.json")
    assert results["verdict"]["thresholds_ok"] is True  # the thresholds alone would pass
    delivery = results["delivery"]
    (row,) = delivery["scenarios"]
    assert row["executor"] == "constant-arrival-rate"
    assert row["planned_iterations"] == 60  # 20/s for 3 s
    assert row["planned_requests"] == 60  # one request per iteration
    # 2 VUs x 3 s / 0.2 s: about 30 iterations; the rest was dropped
    assert 15 <= row["achieved_iterations"] <= 40, row
    assert row["dropped_iterations"] >= 15, row
    assert row["achieved_iterations"] + row["dropped_iterations"] <= 62
    assert row["max_vus"] == 2 and row["reached_max_vus"] is True
    assert row["delivered"] is False and delivery["delivered"] is False
    assert delivery["vus_max_peak"] == 2
    # the summary agrees with the raw points
    metrics = read(run_dir, "summary.json")["metrics"]
    assert metrics["dropped_iterations"]["count"] == row["dropped_iterations"]
    assert metrics["iterations"]["count"] == row["achieved_iterations"]
    generator = results["load_generator"]
    assert generator["samples"] >= 3 and generator["memory_max_mib"] > 5
    assert generator["saturated"] is False
    report = (run_dir / "report.md").read_text()
    first = report.splitlines()[0]
    requests, dropped = row["achieved_requests"], row["dropped_iterations"]
    assert first.startswith("**⚠️ INCONCLUSIVE: the load was not delivered (")
    assert f"({requests} of 60 requests; {dropped} iterations dropped)" in first
    assert "PASSED" not in report
    assert "## Load delivery" in report and "**(all in use)**" in report
    assert "Load generator (k6, /proc)" in report
    assert f"INCONCLUSIVE: the load was not delivered ({requests} of 60 requests" in result.output


@pytest.mark.slow
def test_without_a_report_the_delivery_is_judged_from_k6s_summary(
    project: Callable[..., Path],
) -> None:
    port = free_port()
    config = slow_project(project, port)
    with loopback_server(port, delay_s=SLOW_MS / 1000):
        result = CliRunner().invoke(
            main, ["run", "ping", "--env", "slow", "--profile", "under", "--no-report",
                   "--config", str(config)],
        )  # fmt: skip
    assert result.exit_code == ExitCode.LOAD_NOT_DELIVERED, result.output
    run_dir = the_run(config)
    assert read(run_dir, "run.json")["outcome"] == "load_not_delivered"
    assert not (run_dir / "report.md").exists()


@pytest.mark.slow
def test_a_sharded_run_is_judged_on_its_merged_delivery(project: Callable[..., Path]) -> None:
    port = free_port()
    config = slow_project(project, port)
    with loopback_server(port, delay_s=SLOW_MS / 1000):
        result = CliRunner().invoke(
            main, ["run", "ping", "--env", "slow", "--profile", "under", "--shards", "2",
                   "--config", str(config)],
        )  # fmt: skip
    assert result.exit_code == ExitCode.LOAD_NOT_DELIVERED, result.output
    run_dir = the_run(config)
    run_json = read(run_dir, "run.json")
    assert run_json["outcome"] == "load_not_delivered" and run_json["exit_code"] == 10
    assert run_json["load_generator"]["source"] == "/proc, 2 processes"
    delivery = read(run_dir, "results.json")["delivery"]
    # each shard had 10/s and one VU: together about the same shortfall as one process
    assert delivery["planned_iterations"] == 60 and delivery["delivered"] is False
    assert delivery["dropped_iterations"] >= 15
    shards = sorted((run_dir / "shards").iterdir())
    # each k6 passed its own thresholds; the merged run did not deliver
    assert [read(d, "run.json")["outcome"] for d in shards] == ["passed", "passed"]
    assert (run_dir / "report.md").read_text().startswith(
        "**⚠️ INCONCLUSIVE: the load was not delivered ("
    )


@pytest.mark.slow
def test_an_opted_out_profile_passes_and_still_shows_its_delivery(
    project: Callable[..., Path],
) -> None:
    port = free_port()
    config = slow_project(project, port)
    with loopback_server(port, delay_s=SLOW_MS / 1000):
        result = CliRunner().invoke(
            main, ["run", "ping", "--env", "slow", "--profile", "under-stress",
                   "--config", str(config)],
        )  # fmt: skip
    assert result.exit_code == ExitCode.OK, result.output
    run_dir = the_run(config)
    assert read(run_dir, "run.json")["outcome"] == "passed"
    assert read(run_dir, "run.json")["delivery"] == {"judged": False}
    delivery = read(run_dir, "results.json")["delivery"]
    assert delivery["judged"] is False and delivery["delivered"] is None
    assert delivery["dropped_iterations"] > 0
    report = (run_dir / "report.md").read_text()
    assert report.splitlines()[0] == "**✅ PASSED**: every threshold held."
    assert "the profile opted out (`delivery: false`)" in report


@pytest.mark.slow
def test_a_delivered_run_passes_with_its_numbers(project: Callable[..., Path]) -> None:
    config = ping_project(project)
    result = CliRunner().invoke(main, ["run", "ping", "--config", str(config)])
    assert result.exit_code == ExitCode.OK, result.output
    run_dir = the_run(config)
    delivery = read(run_dir, "results.json")["delivery"]
    assert delivery["delivered"] is True and delivery["planned_iterations"] == 40
    assert delivery["achieved_iterations"] >= 38 and delivery["dropped_iterations"] == 0
    first = (run_dir / "report.md").read_text().splitlines()[0]
    assert first.startswith("**✅ PASSED**: every threshold held and the load was delivered (")


def _port_of(config: Path) -> int:
    return int(config.read_text().split("base_url: http://127.0.0.1:", 1)[1].split("\n")[0])


@pytest.mark.slow
def test_a_port_squatter_is_refused_and_sent_no_secret(project: Callable[..., Path]) -> None:
    """A plain HTTP server on the sandbox port: exit 4, and all it got was one identity
    check without any auth header (the environment has a webhook secret to send)."""
    config = ping_project(project)
    config.write_text(
        config.read_text().replace(
            "    sandbox:\n",
            "    secrets:\n      WEBHOOK_SECRET: ORCH_TEST_SQUAT_SECRET\n    sandbox:\n",
            1,
        )
    )
    port = _port_of(config)
    stale = identity_file("127.0.0.1", port)
    with loopback_server(port, status=501) as squatter:
        # no orch sandbox ever served there: orch sends nothing at all
        first = CliRunner().invoke(
            main, ["run", "ping", "--config", str(config)],
            env={"ORCH_TEST_SQUAT_SECRET": "s3cret-never-sent"},
        )  # fmt: skip
        assert squatter.seen == []
        # an identity file left by a sandbox killed earlier: one plain identity check
        stale.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stale.write_text(json.dumps({"pid": os.getpid(), "port": port, "token": "0" * 32}))
        try:
            result = CliRunner().invoke(
                main, ["run", "ping", "--config", str(config)],
                env={"ORCH_TEST_SQUAT_SECRET": "s3cret-never-sent"},
            )  # fmt: skip
        finally:
            stale.unlink(missing_ok=True)
    for done in (first, result):
        assert done.exit_code == ExitCode.SETUP == 4, done.output
        assert f"port {port} on 127.0.0.1 is taken by another program" in done.output
        assert "environments.local.base_url" in done.output
    assert [s["path"].split("?")[0] for s in squatter.seen] == ["/__sandbox/identity"]
    for request in squatter.seen:
        names = {name.lower() for name in request["headers"]}
        assert not names & {"authorization", "x-n8n-api-key", "cookie"}, request
        assert "s3cret" not in json.dumps(request)
    for run_dir in (config.parent / "results").iterdir():
        run_json = read(run_dir, "run.json")
        assert run_json["outcome"] == "not_started" and run_json["exit_code"] == 4
        assert any("taken by another program" in note for note in run_json["notes"])


@pytest.mark.slow
def test_an_orch_sandbox_already_serving_is_recognised_and_used(
    project: Callable[..., Path],
) -> None:
    from orchestrator.target.sandbox import SandboxSettings, start_sandbox

    config = ping_project(project)
    port = _port_of(config)
    settings = SandboxSettings(port=port, latency_ms_median=0, latency_ms_p95=0)
    with start_sandbox(settings) as box:
        result = CliRunner().invoke(main, ["run", "ping", "--config", str(config)])
        assert box.process.poll() is None  # orch did not stop a sandbox it did not start
    assert result.exit_code == ExitCode.OK, result.output
    assert f"the orch sandbox already serving at http://127.0.0.1:{port} (pid {box.pid})" in (
        result.output
    )


def _orch(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "ping", "--config", str(config), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


@pytest.mark.slow
def test_a_sandbox_that_dies_mid_run_is_named_in_the_outcome_and_report(
    project: Callable[..., Path],
) -> None:
    config = ping_project(project)
    proc = _orch(config, "--profile", "dying")
    assert proc.stderr is not None
    pid = None
    started = time.monotonic()
    for line in proc.stderr:
        if "started the embedded sandbox" in line:
            pid = int(line.rsplit("(pid ", 1)[1].split(")")[0])
            break
    assert pid is not None, "the sandbox never started"
    time.sleep(1.5)  # k6 is under way
    os.kill(pid, signal.SIGKILL)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.SETUP, rest
    assert time.monotonic() - started < 30
    run_dir = the_run(config)
    run_json = read(run_dir, "run.json")
    assert run_json["outcome"] == "target_lost" and run_json["exit_code"] == 4
    (note,) = [n for n in run_json["notes"] if "stopped" in n and f"pid {pid}" in n]
    assert "s after the run began" in note and "exit code -9" in note
    report = (run_dir / "report.md").read_text()
    assert report.splitlines()[0].startswith("**⚠️ INCONCLUSIVE: the sandbox stopped")
    assert f"(pid {pid}) stopped" in report
    assert "Traceback" not in rest


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_k6_and_ends_with_exit_4_within_seconds(
    project: Callable[..., Path], tmp_path: Path
) -> None:
    config = ping_project(project)
    full = tmp_path / "full"
    config.write_text(config.read_text().replace("results_dir: results", f"results_dir: {full}"))
    with tmpfs(full, "2m") as results:
        started = time.monotonic()
        proc = _orch(config, "--profile", "flood")
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        elapsed = time.monotonic() - started
        assert proc.returncode == ExitCode.SETUP, err
        assert elapsed < 20, elapsed  # the profile lasts 30 s
        assert "Traceback" not in err
        assert "could not be written" in err
        (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
        run_json = json.loads((run_dir / "run.json").read_text())  # whole, not half-written
        assert run_json["outcome"] == "io_error" and run_json["exit_code"] == 4
        assert any("k6 was stopped" in note for note in run_json["notes"])
        assert (run_dir / "raw.csv").stat().st_size > 100_000  # what k6 wrote is kept
        assert not list(run_dir.glob(".*.tmp"))
        assert not (run_dir / ".orch-reserve").exists()


@pytest.mark.slow
def test_a_sandbox_that_cannot_bind_means_k6_never_started(
    project: Callable[..., Path],
) -> None:
    """A socket bound to the port but not listening: the port looks free, and the sandbox
    cannot bind it."""
    config = ping_project(project)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", _port_of(config)))
    try:
        result = CliRunner().invoke(main, ["run", "ping", "--config", str(config)])
    finally:
        blocker.close()
    assert result.exit_code == ExitCode.SETUP, result.output
    run_json = read(the_run(config), "run.json")
    assert run_json["outcome"] == "not_started" and run_json["exit_code"] == 4
    assert run_json["k6_exit_code"] is None
    assert any(note.startswith("k6 did not start: ") for note in run_json["notes"])


@pytest.mark.slow
def test_a_sandbox_started_with_orch_sandbox_is_recognised(project: Callable[..., Path]) -> None:
    """`orch sandbox` records its token for this user; `orch run` learns it and uses it."""
    config = ping_project(project)
    port = _port_of(config)
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "sandbox", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert "listening on" in server.stdout.readline()
        assert identity_file("127.0.0.1", port).is_file()
        result = CliRunner().invoke(main, ["run", "ping", "--config", str(config)])
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert result.exit_code == ExitCode.OK, result.output
    assert f"the orch sandbox already serving at http://127.0.0.1:{port} (pid {server.pid})" in (
        result.output
    )
    assert not identity_file("127.0.0.1", port).exists()  # removed when it stopped


# --- the rules, without k6 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "planned"),
    [
        ({"executor": "constant-arrival-rate", "rate": 20, "duration": "10s"}, 200),
        ({"executor": "constant-arrival-rate", "rate": 120, "timeUnit": "1m",
          "duration": "1m30s"}, 180),
        ({"executor": "ramping-arrival-rate", "startRate": 0, "timeUnit": "1s",
          "stages": [{"target": 10, "duration": "10s"}, {"target": 10, "duration": "5s"},
                     {"target": 0, "duration": "2s"}]}, 50 + 50 + 10),
        ({"executor": "shared-iterations", "vus": 4, "iterations": 30}, 30),
        ({"executor": "per-vu-iterations", "vus": 4, "iterations": 30}, 120),
        ({"executor": "constant-vus", "vus": 4, "duration": "10s"}, None),
        ({"executor": "ramping-vus", "stages": [{"target": 4, "duration": "10s"}]}, None),
    ],
)  # fmt: skip
def test_what_each_executor_plans(options: dict[str, Any], planned: float | None) -> None:
    from orchestrator.results.delivery import planned_iterations

    assert planned_iterations(options) == planned


def test_the_delivery_rule_and_its_numbers() -> None:
    from orchestrator.results.delivery import Counts, Rule, build_delivery

    def delivery(rule: Rule, counts: Counts) -> Any:
        return build_delivery(
            load_profile={"executor": "constant-arrival-rate", "rate": 20, "duration": "10s",
                          "maxVUs": 2},
            rule=rule, default_name="s", per_scenario={"s": counts}, totals=None,
            source="raw points", vus_peak=2, vus_max_peak=2,
        )  # fmt: skip

    short = delivery(Rule(), Counts(iterations=80, dropped=120, requests=81))
    assert short.delivered is False
    assert short.headline == "81 of 200 requests; 120 iterations dropped"
    assert short.scenarios[0].reached_max_vus is True
    # 95 % made and 1 % dropped is still delivered; one more dropped is not
    assert delivery(Rule(), Counts(190, 2, 190)).delivered is True
    assert delivery(Rule(), Counts(190, 3, 190)).delivered is False
    assert delivery(Rule(), Counts(189, 0, 189)).delivered is False
    relaxed = Rule.of({"min_achieved": 0.4, "max_dropped": 0.6})
    assert delivery(relaxed, Counts(80, 120, 81)).delivered is True
    opted_out = delivery(Rule.of({"judged": False}), Counts(80, 120, 81))
    assert opted_out.delivered is None and opted_out.judged is False
    assert Rule.of({}) == Rule()  # a run.json older than the rule: the default


def test_thresholds_come_before_delivery_and_faults_before_both() -> None:
    from orchestrator.core import Outcome
    from orchestrator.results import combined_outcome
    from orchestrator.results.delivery import judge_outcome

    assert judge_outcome(Outcome.PASSED, False) == (Outcome.LOAD_NOT_DELIVERED, 10)
    assert judge_outcome(Outcome.THRESHOLDS_FAILED, False) is None  # stays 99
    assert judge_outcome(Outcome.PASSED, None) is None
    assert combined_outcome([Outcome.PASSED] * 2, True, False) == (Outcome.LOAD_NOT_DELIVERED, 10)
    assert combined_outcome([Outcome.PASSED] * 2, False, False)[1] == 99
    assert combined_outcome([Outcome.PASSED, Outcome.IO_ERROR], True, True)[1] == 4
    assert combined_outcome([Outcome.TARGET_LOST] * 2, False, False)[0] == Outcome.TARGET_LOST


def test_a_saturated_generator_is_named_as_such() -> None:
    from orchestrator.execution.loadgen import Sample, summarize
    from orchestrator.results.delivery import combine_load_generators

    busy = [Sample(t=i, cores=1.85, rss_bytes=80 << 20) for i in range(6)]
    idle = [Sample(t=i, cores=0.2, rss_bytes=40 << 20) for i in range(4)]
    hot = summarize(busy + idle, "/proc", 2.0, 0.5)
    assert hot is not None
    assert (hot["saturated_share"], hot["saturated"], hot["cpu_max_pct"]) == (0.6, True, 185.0)
    cool = summarize(busy[:4] + idle, "/proc", 2.0, 0.5)
    assert cool is not None and cool["saturated"] is False
    # two shards on one machine, each at 0.95 of a core on average: 95 % of 2 cores
    half = {**cool, "cpu_avg_pct": 95.0, "saturated": False}
    assert combine_load_generators([half, half], same_machine=True)["saturated"] is True
    assert combine_load_generators([half, half])["saturated"] is False  # separate machines

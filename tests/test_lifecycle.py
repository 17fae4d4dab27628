"""One run lifecycle for every runner, and `run_scenario`, the entry point that applies the
run's rules, used without the command line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.config import OrchConfig, ResolvedRun, load_config, resolve_run
from orchestrator.core import ConfigError, ExitCode, Outcome, RefusedError, SetupError
from orchestrator.execution import (
    K6OperatorRun,
    RunLifecycle,
    RunRequest,
    RunResult,
    ShardedRun,
    SingleRun,
    carry_out,
    find_k6,
    run_scenario,
)
from orchestrator.execution.lifecycle import PreparedRun, RunEnding
from orchestrator.execution.runner import NativeRunner
from orchestrator.results import RunFolder, RunManifest


def _config(project: Callable[..., Path], extra_yaml: str = "") -> OrchConfig:
    return load_config(project(extra_yaml=extra_yaml))


class Recorder(RunLifecycle):
    """A lifecycle that runs no load: it records the steps the driver calls, and can fail
    or be interrupted at one of them."""

    def __init__(self, fail_at: str | None = None, interrupt_at: str | None = None) -> None:
        self.steps: list[str] = []
        self.ending: RunEnding | None = None
        self.fail_at, self.interrupt_at = fail_at, interrupt_at
        self.run_dir: Path | None = None

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if self.fail_at == name:
            raise SetupError(f"{name} failed")
        if self.interrupt_at == name:
            raise KeyboardInterrupt

    def plan(self, prepared: PreparedRun, run: ResolvedRun) -> None:
        self.run_dir = prepared.run_dir
        RunManifest.start(runner="recorder").save(prepared.run_dir)
        self._step("plan")

    def start(self) -> None:
        self._step("start")

    def wait(self) -> bool:
        self._step("wait")
        return self.interrupt_at == "wait-returns"

    def collect(self, ending: RunEnding) -> None:
        self.steps.append("collect")
        self.ending = ending

    def finish(self) -> RunResult:
        self.steps.append("finish")
        assert self.run_dir is not None and self.ending is not None
        outcome = Outcome.INTERRUPTED if self.ending.interrupted else Outcome.PASSED
        code = ExitCode.INTERRUPTED if self.ending.interrupted else ExitCode.OK
        return RunResult(self.run_dir, outcome, code, None, None)


def _resolved(config: OrchConfig) -> ResolvedRun:
    return resolve_run(config, "linkedin-scrape", "local", None)


@pytest.mark.slow
def test_the_driver_calls_each_step_once_in_order(project: Callable[..., Path]) -> None:
    config = _config(project)
    recorder = Recorder()
    echoed: list[str] = []
    result = carry_out(recorder, config, _resolved(config), echo=echoed.append)
    assert recorder.steps == ["plan", "start", "wait", "collect", "finish"]
    assert recorder.ending is not None and not recorder.ending.interrupted
    assert recorder.ending.problem is None and recorder.ending.duration_s >= 0
    assert result.outcome == Outcome.PASSED
    # the target was the embedded sandbox, started for the load and stopped after it
    assert any("started the embedded sandbox" in line for line in echoed)
    assert (result.run_dir / "sandbox.log").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("fail_at", [None, "start"])
def test_the_sandbox_stops_while_the_report_is_made_and_is_gone_when_the_run_returns(
    project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, fail_at: str | None
) -> None:
    """Its shutdown (about 0.3 s) overlaps the report: signalled when the load ends, waited
    for after ``finish``, also when a step fails."""
    from orchestrator.target.sandbox import SandboxProcess

    config = _config(project)
    recorder = Recorder(fail_at=fail_at)
    terminate, stop = SandboxProcess.terminate, SandboxProcess.stop

    def signalled(self: SandboxProcess) -> None:
        recorder.steps.append("sandbox signalled")
        terminate(self)

    def stopped(self: SandboxProcess, timeout: float = 5.0) -> int | None:
        code = stop(self, timeout)
        recorder.steps.append("sandbox stopped")
        return code

    monkeypatch.setattr(SandboxProcess, "terminate", signalled)
    monkeypatch.setattr(SandboxProcess, "stop", stopped)
    echoed: list[str] = []
    try:
        carry_out(recorder, config, _resolved(config), echo=echoed.append)
    except SetupError:
        assert fail_at == "start"
    steps = recorder.steps
    assert steps.index("sandbox signalled") < steps.index("collect")
    last = "finish" if fail_at is None else "collect"
    assert steps[-1] == "sandbox stopped" and steps.index(last) < len(steps) - 1
    (line,) = [x for x in echoed if "started the embedded sandbox" in x]
    pid = int(line.rsplit("(pid ", 1)[1].rstrip(")"))
    with pytest.raises(ProcessLookupError):  # exited and reaped, not a zombie
        os.kill(pid, 0)


@pytest.mark.slow
def test_a_failing_step_is_collected_then_raised_and_nothing_is_finished(
    project: Callable[..., Path],
) -> None:
    config = _config(project)
    recorder = Recorder(fail_at="start")
    with pytest.raises(SetupError, match="start failed"):
        carry_out(recorder, config, _resolved(config), echo=lambda line: None)
    assert recorder.steps == ["plan", "start", "collect"]
    assert recorder.ending is not None and isinstance(recorder.ending.problem, SetupError)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["start", "wait", "wait-returns"])
def test_ctrl_c_anywhere_in_the_load_is_an_interrupted_run(
    project: Callable[..., Path], where: str
) -> None:
    config = _config(project)
    recorder = Recorder(interrupt_at=where)
    result = carry_out(recorder, config, _resolved(config), echo=lambda line: None)
    assert recorder.steps[-2:] == ["collect", "finish"]
    assert recorder.ending is not None and recorder.ending.interrupted
    assert recorder.ending.problem is None
    assert (result.outcome, result.exit_code) == (Outcome.INTERRUPTED, ExitCode.INTERRUPTED)


def _with_environment(config: OrchConfig, yaml_lines: str) -> OrchConfig:
    """``config`` with one more environment (its YAML lines under ``environments:``)."""
    path = config.root / "orch.yaml"
    path.write_text(path.read_text().replace("environments:\n", "environments:\n" + yaml_lines, 1))
    return load_config(path)


def _no_run_folder(config: OrchConfig) -> bool:
    return not config.results_dir.exists() or not any(config.results_dir.iterdir())


def test_a_refused_run_writes_no_folder_and_calls_no_step(project: Callable[..., Path]) -> None:
    # the allow-list is checked in prepare, before the folder exists
    config = _with_environment(
        _config(project), "  rogue:\n    kind: local\n    base_url: http://10.1.2.3:8080\n"
    )
    recorder = Recorder()
    with pytest.raises(RefusedError):
        carry_out(
            recorder,
            config,
            resolve_run(config, "linkedin-scrape", "rogue", None),
            echo=lambda line: None,
        )
    assert recorder.steps == []
    assert _no_run_folder(config)


@pytest.mark.slow
def test_run_scenario_runs_and_judges_without_the_command_line(
    project: Callable[..., Path],
) -> None:
    config = _config(project)
    echoed: list[str] = []
    result = run_scenario(config, RunRequest("linkedin-scrape"), echo=echoed.append)
    assert (result.outcome, result.exit_code, result.k6_exit_code) == (
        Outcome.PASSED,
        ExitCode.OK,
        0,
    )
    manifest = RunFolder(result.run_dir).read_manifest()
    assert manifest is not None and manifest.outcome == Outcome.PASSED
    assert manifest.runner == "native"
    # k6 sends no usage report to Grafana Labs: a connection outside the allow-list
    assert "--no-usage-report" in manifest.command
    assert result.report_path is not None and result.report_path.is_file()
    # conclude_run ran: junit.xml beside the report
    assert (result.run_dir / "junit.xml").is_file()
    assert any(line.startswith("run folder: ") for line in echoed)


@pytest.mark.slow
def test_run_scenario_gives_the_thresholds_verdict(project: Callable[..., Path]) -> None:
    config = _config(project)
    result = run_scenario(
        config, RunRequest("linkedin-scrape", profile="impossible"), echo=lambda line: None
    )
    assert (result.outcome, result.exit_code) == (Outcome.THRESHOLDS_FAILED, ExitCode.THRESHOLDS)
    data = json.loads((result.run_dir / RunFolder.MANIFEST).read_text())
    assert data["outcome"] == "thresholds_failed" and data["exit_code"] == 99


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest("linkedin-scrape", dry_run=True), "--runner k8s only"),
        (RunRequest("linkedin-scrape", parallelism=3), "--runner k8s only"),
        (RunRequest("linkedin-scrape", runner="k8s", shards=2), "--shards is for local runs"),
        (RunRequest("linkedin-scrape", runner="cloud"), "unknown runner 'cloud'"),
        (RunRequest("linkedin-scrape", shards=0), "--shards must be between 1 and 64"),
        (RunRequest("linkedin-scrape", runner="docker", shards=2), "use --runner native"),
        (RunRequest("no-such-scenario"), "no-such-scenario"),
    ],
)
def test_options_that_do_not_go_together_are_refused_before_any_folder(
    project: Callable[..., Path], request_: RunRequest, message: str
) -> None:
    config = _config(project)
    with pytest.raises(ConfigError, match=message):
        run_scenario(config, request_, echo=lambda line: None)
    assert _no_run_folder(config)


def test_production_is_refused_before_its_variables_are_read(
    project: Callable[..., Path],
) -> None:
    config = _with_environment(
        _config(project),
        "  production:\n    kind: production\n    base_url: ${ORCH_TEST_UNSET_PRODUCTION_URL}\n",
    )
    with pytest.raises(RefusedError, match="production"):
        run_scenario(
            config, RunRequest("linkedin-scrape", environment="production"), echo=print
        )


def test_every_way_of_running_is_a_lifecycle(project: Callable[..., Path]) -> None:
    binary = find_k6(None)
    runner = NativeRunner(binary.path, binary.version_text)
    for lifecycle in (
        SingleRun(runner, print),
        ShardedRun(runner, print, shards=2),
        K6OperatorRun(parallelism=2, dry_run=True, echo=print),
    ):
        assert isinstance(lifecycle, RunLifecycle)


@pytest.mark.slow
def test_sharded_run_through_the_entry_point_merges_one_verdict(
    project: Callable[..., Path],
) -> None:
    config = _config(project)
    result = run_scenario(config, RunRequest("linkedin-scrape", shards=2), echo=lambda line: None)
    assert (result.outcome, result.exit_code) == (Outcome.PASSED, ExitCode.OK)
    for index in (1, 2):
        shard = RunFolder(result.run_dir / "shards" / str(index)).read_manifest()
        assert shard is not None and shard.outcome == Outcome.PASSED
    manifest = RunFolder(result.run_dir).read_manifest()
    assert manifest is not None and manifest.runner == "native x2 shards"
    assert any("shards' k6 exit codes: 1: 0, 2: 0" in note for note in manifest.notes)

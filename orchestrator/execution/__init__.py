"""Running k6: finding it, rendering the script, and one run's lifecycle on each runner
(native, Docker, local shards, k6-operator), plus `orch doctor`.

:func:`run_scenario` is the entry point of a load test. The Docker SDK is imported inside
the functions that use it; Jinja2 loads with the package.
"""

from __future__ import annotations

from orchestrator.execution.docker import DockerRunner, docker_status, image_status
from orchestrator.execution.doctor import Diagnosis, diagnose
from orchestrator.execution.k6bin import K6Binary, find_k6
from orchestrator.execution.k8s import K6OperatorRun
from orchestrator.execution.lifecycle import RunLifecycle, RunResult, carry_out
from orchestrator.execution.local import SingleRun
from orchestrator.execution.render import RenderedScript, render_script
from orchestrator.execution.runner import K6Invocation, K6Outcome, K6Runner, NativeRunner
from orchestrator.execution.scenario import (
    RunRequest,
    resolve_request,
    run_scenario,
    select_runner,
)
from orchestrator.execution.shards import ShardedRun

__all__ = [
    "Diagnosis",
    "DockerRunner",
    "K6Binary",
    "K6Invocation",
    "K6OperatorRun",
    "K6Outcome",
    "K6Runner",
    "NativeRunner",
    "RenderedScript",
    "RunLifecycle",
    "RunRequest",
    "RunResult",
    "ShardedRun",
    "SingleRun",
    "carry_out",
    "diagnose",
    "docker_status",
    "find_k6",
    "image_status",
    "render_script",
    "resolve_request",
    "run_scenario",
    "select_runner",
]

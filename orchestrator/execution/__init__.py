"""Running k6: finding it, rendering the script, and one run's lifecycle on each runner
(native, Docker, local shards, k6-operator), plus `orch doctor`.

The Docker SDK is imported inside the functions that use it; Jinja2 loads with the package.
"""

from __future__ import annotations

from orchestrator.execution.docker import DockerRunner, docker_status, image_status
from orchestrator.execution.doctor import Diagnosis, diagnose
from orchestrator.execution.k6bin import K6Binary, find_k6
from orchestrator.execution.k8s import K8sResult, execute_k8s_run
from orchestrator.execution.lifecycle import RunResult, execute_run, select_runner
from orchestrator.execution.render import RenderedScript, render_script
from orchestrator.execution.runner import K6Invocation, K6Outcome, K6Runner, NativeRunner
from orchestrator.execution.shards import execute_sharded_run

__all__ = [
    "Diagnosis",
    "DockerRunner",
    "K6Binary",
    "K6Invocation",
    "K6Outcome",
    "K6Runner",
    "K8sResult",
    "NativeRunner",
    "RenderedScript",
    "RunResult",
    "diagnose",
    "docker_status",
    "execute_k8s_run",
    "execute_run",
    "execute_sharded_run",
    "find_k6",
    "image_status",
    "render_script",
    "select_runner",
]

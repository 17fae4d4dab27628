"""What one local k6 is given besides the raw CSV orch reads: the environment's own outputs
(``outputs:``: Prometheus remote write, InfluxDB, OpenTelemetry) and the web dashboard's
HTML export (``web_dashboard_export: true``).

Everything goes through variables, not k6's command line (where ``ps`` shows it): the
outputs' endpoints and settings were read and checked against the allow-list when the
run was resolved (``config.outputs``, ``config.guard_run``). The dashboard's port is -1:
k6 1.1.0 otherwise serves the dashboard on every interface (``*:5665``, measured) for
the time of the run; with -1 it serves nothing and still writes the export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.config import ResolvedRun, planned_seconds
from orchestrator.results import RunFolder

# k6 aggregates the dashboard every period (10 s by default) and skips the export of a run
# shorter than a few periods ("The test run was short, report generation was skipped").
DASHBOARD_PERIOD_S = (0.2, 10.0)


@dataclass(frozen=True)
class ExtraOutputs:
    """The ``k6 run`` options, variables and run-folder files of the extra outputs."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # run.json's files, by role
    notes: list[str] = field(default_factory=list)  # what run.json says about them


def extra_outputs(run: ResolvedRun) -> ExtraOutputs:
    """What one k6 process of ``run`` gets for its environment's outputs and dashboard.

    The export's path is relative: k6 runs in its run folder (natively, in Docker, or a
    shard in its own folder), so the file lands there.
    """
    args: list[str] = []
    env: dict[str, str] = {}
    for output in run.outputs:
        args += ["--out", output.kind]
        env.update(output.env)
    notes = [
        f"k6 also sent its metrics to {output.kind} ({output.where})" for output in run.outputs
    ]
    files: dict[str, str] = {}
    if run.environment.web_dashboard_export:
        env.update(dashboard_env(planned_seconds(run.load_profile())))
        files["dashboard"] = RunFolder.DASHBOARD
    return ExtraOutputs(args, env, files, notes)


def dashboard_env(planned_s: float | None) -> dict[str, str]:
    """k6's variables for a web-dashboard export into ``dashboard.html`` and no server; the
    period a tenth of the planned duration, between 0.2 and 10 s, so a short run is exported
    too: k6 writes no file from fewer than 2 periods' snapshots, and a 2 s run at a 1 s
    period was cut to one now and then on a busy machine."""
    env = {
        "K6_WEB_DASHBOARD": "true",
        "K6_WEB_DASHBOARD_PORT": "-1",
        "K6_WEB_DASHBOARD_EXPORT": RunFolder.DASHBOARD,
    }
    if planned_s:
        low, high = DASHBOARD_PERIOD_S
        period_ms = round(1000 * min(high, max(low, planned_s / 10)))
        env["K6_WEB_DASHBOARD_PERIOD"] = f"{period_ms}ms"
    return env


def outputs_not_sent(run: ResolvedRun) -> str | None:
    """What a k6-operator run says when its environment asks for outputs or a dashboard:
    its runner pods get neither (their network is the cluster's, not this allow-list's)."""
    asked = [output.kind for output in run.outputs]
    if run.environment.web_dashboard_export:
        asked.append("web_dashboard_export")
    if not asked:
        return None
    return (
        f"{', '.join(asked)}: applied to local runs only (native, Docker, --shards); the "
        "k6-operator's runner pods got none of them"
    )

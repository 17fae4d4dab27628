"""The production guard: what each connecting command checks before it starts.

There is no override. Every command that connects builds its environment's
:class:`~orchestrator.config.egress.EgressPolicy` (the allow-list, resolved now, with production
refused inside it) and hands it to whatever connects: k6's options, orch's HTTP client,
the database connection. The checks here on configuration text (a URL hidden in a
variable, a profile's ``env``) come on top, so a refusal is early and names where the
address was written; they are not what keeps production safe.
"""

from __future__ import annotations

from typing import Any

from orchestrator.config.egress import EgressPolicy, build_policy, pinned_conninfo, urls_in
from orchestrator.core import RefusedError


def refuse_production_kind(environment_name: str, environment_kind: str, action: str) -> None:
    """Refuse any environment whose declared kind is production."""
    if environment_kind == "production":
        raise RefusedError(
            f"refusing to {action}: environment {environment_name!r} is of kind production, "
            f"and orch never sends load to or writes test data in production (there is no "
            f"override); use a staging environment"
        )


def check_written_targets(
    policy: EgressPolicy, action: str, *, hosts: dict[str, str], texts: dict[str, Any]
) -> None:
    """Refuse base URLs (``hosts``) and URLs written anywhere in ``texts`` that the policy
    does not allow, naming where each was written."""
    for label, url in hosts.items():
        if url:
            _labelled(label, lambda url=url: policy.check_url(url, action, base=True))
    for label, value in texts.items():
        for url in urls_in(value):
            _labelled(label, lambda url=url: policy.check_url(url, action))


def _labelled(label: str, check: Any) -> None:
    try:
        check()
    except RefusedError as exc:
        raise RefusedError(f"{exc} (written in {label})") from None


def guard_environment(
    config: Any, environment_name: str, action: str, extra: dict[str, Any] | None = None
) -> EgressPolicy:
    """The environment's policy, after checking every URL its configuration writes."""
    environment = config.environment(environment_name)
    refuse_production_kind(environment_name, environment.kind, action)
    policy = build_policy(config, environment_name, action)
    texts: dict[str, Any] = {
        "vars": environment.vars,
        "scenario overrides": environment.scenarios,
        **(extra or {}),
    }
    check_written_targets(policy, action, hosts={}, texts=texts)
    return policy


def guard_run(config: Any, run: Any, action: str) -> EgressPolicy:
    """The policy of a resolved run (`config.ResolvedRun`), its targets and variables checked
    (a mix's: every flow's)."""
    policy = guard_environment(config, run.environment_name, action)
    for flow in run.flows:
        guard_run(config, flow, action)
    check_written_targets(
        policy,
        action,
        hosts={
            "base_url": run.base_url,
            "n8n_base_url": run.n8n_base_url,
            # k6's own outputs (Prometheus, InfluxDB, OpenTelemetry) go where they say
            **{f"{output.where}.url": output.url for output in run.outputs},
        },
        texts={
            "vars": run.vars,
            "the profile's env": run.profile.k6_options().get("env", {}),
            **{f"{output.where}.settings": output.env for output in run.outputs},
        },
    )
    return policy


def guard_database_target(
    url: str, *, config: Any, environment_name: str, action: str = "connect to the database"
) -> str:
    """The database URL with every host checked and pinned to its checked address.

    libpq's own rules decide the hosts (several hosts, ``hostaddr``, ``?host=``, ``PG*``
    variables); the result names the addresses, so libpq resolves nothing itself.
    """
    policy = build_policy(config, environment_name, action)
    return pinned_conninfo(policy, url, action)

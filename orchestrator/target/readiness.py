"""`orch env check`: is an environment ready for a load test, and if not, what to fix."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.config import (
    EgressPolicy,
    OrchConfig,
    env_refs,
    expand_env_refs,
    guard_environment,
    pinned_conninfo,
    refuse_production_kind,
    sandbox_provided_variable,
    url_host,
)
from orchestrator.core import ConfigError, OrchError, RefusedError
from orchestrator.db import pending_migrations
from orchestrator.db.connection import connect, redact_url

if TYPE_CHECKING:
    from orchestrator.config.egress_http import CheckedClient

OK, MISSING, UNREACHABLE, ON_DEMAND = "ok", "missing", "unreachable", "on demand"
WARNING = "WARNING"
ACTION = "check the environment"


@dataclass(frozen=True)
class Check:
    """One line of the readiness table."""

    item: str
    status: str
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status in (OK, ON_DEMAND, WARNING)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def required_variables(config: OrchConfig, name: str) -> list[tuple[str, str]]:
    """(variable, what needs it) for every variable the environment refers to."""
    env = config.environment(name)
    needed: dict[str, str] = {}
    for key in ("base_url", "n8n_base_url", "database_url", "supabase_url"):
        for var in env_refs(getattr(env, key)):
            needed.setdefault(var, key)
    for value in _strings(env.vars) + _strings(env.scenarios):
        for var in env_refs(value):
            needed.setdefault(var, "a template variable")
    provided = sandbox_provided_variable(env)
    for k6_name, host_name in env.secrets.items():
        if host_name != provided:  # orch gives the local sandbox's key itself
            needed.setdefault(host_name, f"the secret {k6_name}")
    if env.supabase_service_role_key:
        needed.setdefault(env.supabase_service_role_key, "the Supabase service-role key")
    return list(needed.items())


def http_reachable(client: CheckedClient, url: str) -> tuple[bool, str]:
    """Whether anything answers HTTP at ``url`` (any status counts; a redirect is not
    followed), and what it said."""
    import httpx

    started = time.perf_counter()
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return False, f"no answer ({exc})"
    where = f", redirect to {response.headers.get('Location')} not followed" if (
        response.is_redirect
    ) else ""
    elapsed = (time.perf_counter() - started) * 1000
    return True, f"HTTP {response.status_code} in {elapsed:.0f} ms{where}"


def egress_checks(config: OrchConfig, name: str, policy: EgressPolicy) -> list[Check]:
    """The allow-list as it was resolved, and a loud warning when production is unknown."""
    env = config.environment(name)
    shown = policy.describe()
    checks = [
        Check(
            "allow-list",
            OK,
            "loopback only"
            if env.kind == "local"
            else "hosts: " + (", ".join(shown["allowed_hosts"]) or "none")
            + "; addresses: " + (", ".join(shown["allowed_networks"]) or "none resolved"),
        )
    ]
    if policy.shared_n8n:
        shared = policy.shared_n8n
        cap = shared.max_requests_per_second
        checks.append(
            Check(
                "production N8N",
                WARNING,
                f"{shared.host} is production, used with test workflows: only "
                f"{', '.join(shared.paths)}" + (f", at most {cap:g} req/s" if cap else ""),
            )
        )
    if env.kind != "local" and not policy.production.declared:
        checks.append(
            Check(
                "production",
                WARNING,
                "NO PRODUCTION IS DECLARED: orch cannot tell production apart from this "
                "environment; declare it under production: or as an environment of kind "
                "production (docs/staging.md)",
            )
        )
    return checks


def check_environment(config: OrchConfig, name: str) -> list[Check]:
    """Variables, the allow-list, API and N8N reachability, database reachability and
    migrations. Every connection goes through the environment's allow-list."""
    from orchestrator.config.egress_http import http_client  # lazy: loads httpx

    env = config.environment(name)
    refuse_production_kind(name, env.kind, ACTION)
    checks: list[Check] = []
    for var, purpose in required_variables(config, name):
        if os.environ.get(var):
            checks.append(Check(f"variable {var}", OK, f"set (for {purpose})"))
        else:
            checks.append(
                Check(
                    f"variable {var}",
                    MISSING,
                    f"needed for {purpose}",
                    f"export {var}=… or add it to a git-ignored .env",
                )
            )
    try:
        policy = guard_environment(config, name, ACTION)
    except ConfigError:
        return checks  # a variable is missing: listed above, nothing can be reached yet
    checks += egress_checks(config, name, policy)
    with http_client(policy, ACTION, timeout=3.0) as client:
        checks += _reachability(config, name, client)
    checks.append(_database_check(config, name, policy))
    return checks


def _reachability(config: OrchConfig, name: str, client: CheckedClient) -> list[Check]:
    env = config.environment(name)
    checks: list[Check] = []
    for key, label in (("base_url", "API"), ("n8n_base_url", "N8N")):
        raw = getattr(env, key)
        if raw is None:
            continue
        try:
            url = expand_env_refs(raw, key)
        except OrchError:
            checks.append(
                Check(label, MISSING, f"{key} needs an unset variable", "set the variable above")
            )
            continue
        shared = client.policy.shared_n8n
        if shared and url_host(url) == shared.host:
            # only the test workflows' webhook paths may be called there; `orch verify` does
            checks.append(
                Check(
                    label,
                    WARNING,
                    f"{url}: the production N8N, not probed (only the declared webhook paths "
                    f"may be called; `orch verify {name}` calls them)",
                )
            )
            continue
        reachable, detail = http_reachable(client, url)
        if reachable:
            checks.append(Check(label, OK, f"{url}: {detail}"))
        elif env.kind == "local" and env.sandbox is not None:
            checks.append(
                Check(
                    label,
                    ON_DEMAND,
                    f"{url}: not running",
                    "`orch run` starts the embedded sandbox",
                )
            )
        else:
            checks.append(
                Check(
                    label,
                    UNREACHABLE,
                    f"{url}: {detail}",
                    f"deploy it or fix environments.{name}.{key}",
                )
            )
    return checks


def _database_check(config: OrchConfig, name: str, policy: EgressPolicy) -> Check:
    env = config.environment(name)
    if env.database_url is None:
        if env.kind == "local":
            data = config.root / ".orch" / "pgdata"
            state = "exists" if data.is_dir() else "created on first use"
            return Check(
                "database",
                ON_DEMAND,
                f"embedded PostgreSQL ({data}: {state})",
                "`orch db migrate` applies the migrations",
            )
        return Check(
            "database",
            MISSING,
            "no database_url",
            f"set environments.{name}.database_url (e.g. ${{STAGING_DATABASE_URL}})",
        )
    try:
        url = expand_env_refs(env.database_url, "database_url")
        settings = config.database
        with connect(pinned_conninfo(policy, url, ACTION)) as conn:
            pending = pending_migrations(conn, config.root / settings.migrations_dir)
    except RefusedError:
        raise
    except OrchError as exc:
        return Check("database", UNREACHABLE, exc.message, "check database_url and credentials")
    if pending:
        names = ", ".join(m.version for m in pending[:3])
        return Check(
            "database",
            MISSING,
            f"{redact_url(url)}: {len(pending)} migrations pending ({names}…)",
            f"run `orch db migrate --env {name}`",
        )
    return Check("database", OK, f"{redact_url(url)}: reachable, migrations applied")

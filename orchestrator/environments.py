"""`orch env check`: is an environment ready for a load test, and if not, what to fix."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from orchestrator.config import OrchConfig, env_refs, expand_env_refs
from orchestrator.errors import OrchError
from orchestrator.secrets import sandbox_provided_variable

OK, MISSING, UNREACHABLE, ON_DEMAND = "ok", "missing", "unreachable", "on demand"


@dataclass(frozen=True)
class Check:
    """One line of the readiness table."""

    item: str
    status: str
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status in (OK, ON_DEMAND)


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


def http_reachable(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Whether anything answers HTTP at ``url`` (any status counts), and what it said."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no answer ({reason})"
    return True, f"HTTP {status} in {(time.perf_counter() - started) * 1000:.0f} ms"


def check_environment(config: OrchConfig, name: str) -> list[Check]:
    """Variables, API and N8N reachability, database reachability and migrations."""
    from orchestrator.guard import guard_environment

    env = config.environment(name)
    guard_environment(config, name, "check the environment")
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
        reachable, detail = http_reachable(url)
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
    checks.append(_database_check(config, name))
    return checks


def _database_check(config: OrchConfig, name: str) -> Check:
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
        from orchestrator.db.connection import connect, redact_url
        from orchestrator.db.migrations import pending_migrations

        url = expand_env_refs(env.database_url, "database_url")
        settings = config.database
        with connect(url) as conn:
            pending = pending_migrations(conn, config.root / settings.migrations_dir)
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

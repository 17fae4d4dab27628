"""The production guard: no command sends traffic to, or writes data in, production.

There is no override. A target is refused when its environment's kind is ``production``,
or when any host it would reach matches a production host declared anywhere in the config
(an environment of kind ``production``, or the top-level ``production.hosts`` and
``production.addresses`` lists). Hosts compare after normalisation: case, trailing dots,
brackets, IPv4 written in odd forms (``0x7f.1``, ``2130706433``, leading zeros) and
IPv4-mapped IPv6. Ports do not matter: production on any port is still production.

Every rendered script also carries k6's ``blockHostnames`` (and ``blacklistIPs``) for the
production hosts, so a redirect or a hand-edited URL is stopped by k6 itself.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orchestrator.errors import RefusedError

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_LIBPQ_HOST = re.compile(r"\bhost\s*=\s*([^\s]+)")


def normalize_host(host: str) -> str:
    """A canonical form of a host name or IP literal, for comparison."""
    value = host.strip().lower().strip("[]").rstrip(".")
    if not value:
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None and re.fullmatch(r"[0-9a-fx.]+", value) and any(c.isdigit() for c in value):
        # IPv4 in the forms inet_aton accepts: 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1
        try:
            address = ipaddress.ip_address(socket.inet_aton(value))
        except OSError:
            address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address) if address is not None else value


def host_of(target: str) -> str | None:
    """The normalised host of a URL, a libpq ``host=`` string, or a bare host[:port]."""
    text = target.strip()
    if not text:
        return None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:
            return None
        return normalize_host(host) if host else None
    libpq = _LIBPQ_HOST.search(text)
    if libpq:
        return normalize_host(libpq.group(1))
    if re.fullmatch(r"\[?[A-Za-z0-9_.:-]+\]?(:\d+)?", text) and ("." in text or ":" in text):
        if text.count(":") == 1:  # host:port
            text = text.split(":", 1)[0]
        return normalize_host(text)
    return None


def hosts_in(value: Any) -> Iterator[str]:
    """Every host named by a URL (or libpq host=) in a nested structure of strings."""
    if isinstance(value, str):
        for match in _URL.finditer(value):
            host = host_of(match.group(0))
            if host:
                yield host
        libpq = _LIBPQ_HOST.search(value)
        if libpq:
            yield normalize_host(libpq.group(1))
    elif isinstance(value, dict):
        for item in value.values():
            yield from hosts_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from hosts_in(item)


@dataclass(frozen=True)
class ProductionHosts:
    """Everything the config says is production."""

    hosts: frozenset[str]
    addresses: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.hosts | self.addresses

    def matches(self, host: str) -> bool:
        normal = normalize_host(host)
        return normal in self.all

    def k6_block_options(self) -> dict[str, list[str]]:
        """k6 options that make k6 itself refuse production hosts."""
        names = sorted(h for h in self.all if not _is_ip(h))
        ips = sorted(f"{h}/32" if ":" not in h else f"{h}/128" for h in self.all if _is_ip(h))
        options: dict[str, list[str]] = {}
        if names:
            options["blockHostnames"] = names
        if ips:
            options["blacklistIPs"] = ips
        return options


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def production_hosts(
    environments: dict[str, Any], declared_hosts: Iterable[str], declared_addresses: Iterable[str]
) -> ProductionHosts:
    """Collect production hosts from production environments and the declared lists.

    ``environments`` maps names to objects with ``kind`` and URL attributes (or dicts).
    """
    hosts = {normalize_host(h) for h in declared_hosts if h}
    addresses = {normalize_host(a) for a in declared_addresses if a}
    for env in environments.values():
        data = env.model_dump() if hasattr(env, "model_dump") else dict(env)
        if data.get("kind") != "production":
            continue
        for key in ("base_url", "n8n_base_url", "database_url"):
            value = data.get(key)
            if isinstance(value, str) and "${" not in value:
                host = host_of(value)
                if host:
                    hosts.add(host)
    ips = {h for h in hosts if _is_ip(h)}
    return ProductionHosts(hosts=frozenset(hosts - ips), addresses=frozenset(addresses | ips))


def refuse_production_kind(environment_name: str, environment_kind: str, action: str) -> None:
    """Refuse any environment whose declared kind is production."""
    if environment_kind == "production":
        raise RefusedError(
            f"refusing to {action}: environment {environment_name!r} is of kind production, "
            f"and orch never sends load to or writes test data in production (there is no "
            f"override); use a staging environment"
        )


def check_target(
    production: ProductionHosts,
    *,
    environment_name: str,
    environment_kind: str,
    targets: dict[str, Any],
    action: str,
) -> None:
    """Refuse (RefusedError, no override) when anything in ``targets`` is production.

    ``targets`` maps a label (e.g. ``base_url``, ``vars``) to a URL or a nested structure
    that may hold URLs; every host found in it is checked.
    """
    refuse_production_kind(environment_name, environment_kind, action)
    for label, value in targets.items():
        candidates = list(hosts_in(value))
        if isinstance(value, str) and not candidates:
            bare = host_of(value)
            candidates = [bare] if bare else []
        for host in candidates:
            if production.matches(host):
                raise RefusedError(
                    f"refusing to {action}: {environment_name}'s {label} points at {host}, "
                    f"which the config declares as production (there is no override); "
                    f"point {label} at a staging or local host"
                )


def _expand_known(value: str) -> str:
    """Expand ``${VAR}`` from the environment; unset variables become empty."""
    import os

    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ.get(m.group(1), ""), value
    )


def guard_environment(
    config: Any, environment_name: str, action: str, extra: dict[str, Any] | None = None
) -> None:
    """Apply the guard to every target an environment declares (plus ``extra`` ones)."""
    environment = config.environment(environment_name)
    targets: dict[str, Any] = {
        key: _expand_known(value)
        for key in ("base_url", "n8n_base_url", "database_url", "supabase_url")
        if isinstance(value := getattr(environment, key), str)
    }
    targets["vars"] = environment.vars
    targets["scenario overrides"] = environment.scenarios
    targets.update(extra or {})
    check_target(
        config.production_hosts(),
        environment_name=environment_name,
        environment_kind=environment.kind,
        targets=targets,
        action=action,
    )


def guard_run(config: Any, run: Any, action: str) -> None:
    """Apply the guard to a resolved run (`config.OrchConfig`, `config.ResolvedRun`)."""
    guard_environment(
        config,
        run.environment_name,
        action,
        {"base_url": run.base_url, "n8n_base_url": run.n8n_base_url, "vars": run.vars},
    )


def guard_database_target(
    url: str,
    *,
    config: Any | None = None,
    environment_name: str = "database",
    environment_kind: str = "",
    action: str = "write to the database",
) -> None:
    """Apply the guard to a database URL (used by `orch db migrate|seed` and `orch users`).

    Without a config, the default one (``--config`` rules: ORCH_CONFIG, ./orch.yaml, orch's
    own) supplies the production hosts.
    """
    if config is None:
        from orchestrator.config import load_config

        config = load_config()
    check_target(
        config.production_hosts(),
        environment_name=environment_name,
        environment_kind=environment_kind,
        targets={"database_url": url},
        action=action,
    )

"""Where orch may connect: an allow-list per environment, production as a deny-list, and
the one check every connection goes through.

The rule is enforced where connections are made, not on configuration text:

- k6 gets ``blacklistIPs`` as the complement of the allowed addresses (IPv4 and IPv6) and
  ``blockHostnames`` for production names, so a redirect, a hand-edited URL or a DNS change
  cannot reach anything outside the list (:meth:`EgressPolicy.k6_options`);
- orch's own HTTP client resolves a name, checks every address, and connects only to a
  checked address, and never follows a redirect (:func:`http_client`);
- database connections are parsed with libpq's rules (psycopg's conninfo, ``PG*``
  variables, several hosts, ``hostaddr``), every host and address is checked, and libpq is
  handed the checked addresses so it resolves nothing itself (:func:`pinned_conninfo`).

A ``local`` environment may reach loopback only. Any other environment may reach the hosts
of its own URLs plus what its ``allow:`` block adds. Production (every URL of a production
environment and the top-level ``production:`` block) is refused everywhere, even inside an
allowed network; the only exception is a production N8N declared for test workflows, and
then only for the exact webhook paths declared.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from orchestrator.config.secrets import redact_url
from orchestrator.core import ConfigError, RefusedError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
_ALL_V6 = ipaddress.ip_network("::/0")
# 0.0.0.0 and :: are no host: connecting to them reaches this machine, on any of its
# addresses, so they are never a target and k6 always blocks them.
UNSPECIFIED_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>`]+")
_SUPABASE_REF = re.compile(r"^(?:db\.)?([a-z0-9]{20})\.supabase\.(?:co|com|in)$")
# libpq parameters that decide where a connection goes
_PG_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER"}


# --------------------------------------------------------------------------- names


def normalize_host(host: str) -> str:
    """A canonical form of a host name or IP literal, for comparison.

    Percent-encoding, full-width and other compatibility characters (NFKC), case, brackets,
    trailing dots, IPv4 in the forms ``inet_aton`` accepts (``127.1``, ``0x7f.1``,
    ``2130706433``) and IPv4-mapped IPv6 all reduce to one spelling.
    """
    value = unicodedata.normalize("NFKC", unquote(host)).strip().lower()
    value = value.replace("\u3002", ".").strip("[]").rstrip(".")
    if "%" in value and ":" in value:  # IPv6 zone id: fe80::1%eth0
        value = value.split("%", 1)[0]
    if not value:
        return value
    address = parse_address(value)
    return str(address) if address is not None else value


def parse_address(value: str) -> Address | None:
    """An IP address written in any form the system resolver accepts, else None."""
    text = value.strip().strip("[]").lower()
    try:
        address: Address = ipaddress.ip_address(text)
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", text) or not any(c.isdigit() for c in text):
            return None
        try:  # 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1
            address = ipaddress.ip_address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def url_host(url: str) -> str | None:
    """The normalised host of a URL, or None when it has none."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None


@dataclass(frozen=True)
class Place:
    """A host name, an address or a network, parsed from a URL, host[:port] or CIDR."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()


def parse_place(text: str, where: str) -> Place:
    """Parse a declaration: a URL, ``host``, ``host:port``, an IP, or a CIDR.

    Raises ConfigError naming ``where`` when it is none of these.
    """
    value = text.strip()
    if not value:
        raise ConfigError(f"{where}: an empty host")
    if "://" in value:
        host = url_host(value)
        if not host:
            raise ConfigError(f"{where}: {value!r} is a URL without a host")
        return _place_of_host(host)
    if "/" in value:
        try:
            network = ipaddress.ip_network(value.strip("[]"), strict=False)
        except ValueError:
            raise ConfigError(
                f"{where}: {value!r} is neither a host, a URL nor a CIDR such as 203.0.113.0/24"
            ) from None
        return Place(networks=(network,))
    if value.count(":") == 1 and not value.startswith("["):
        value = value.split(":", 1)[0]  # host:port
    elif value.startswith("[") and "]:" in value:
        value = value.split("]:", 1)[0] + "]"
    host = normalize_host(value)
    if not re.fullmatch(r"[a-z0-9_.:-]+", host):
        raise ConfigError(f"{where}: {text!r} is not a host name, an IP address or a CIDR")
    return _place_of_host(host)


def _place_of_host(host: str) -> Place:
    address = parse_address(host)
    if address is not None:
        return Place(networks=(ipaddress.ip_network(address),))
    return Place(names=frozenset({host}))


def expand_refs(value: str, where: str, *, production: bool = False) -> str:
    """``${VAR}`` replaced from the environment (and `.env`, already loaded).

    An unset variable in a production declaration is a RefusedError: a production orch
    cannot read is one it cannot tell apart, so it fails closed. Elsewhere it is a
    ConfigError, as for any target whose variable is missing.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found:
            return found
        if production:
            raise RefusedError(
                f"{where} refers to ${{{name}}}, which is not set, so orch cannot tell "
                f"production apart and refuses to connect anywhere; set {name} (or put it in "
                f"a git-ignored .env)"
            )
        raise ConfigError(
            f"{where} needs the environment variable {name}; set it (or put it in a "
            f"git-ignored .env file)"
        )

    return _ENV_REF.sub(replace, value)


def urls_in(value: Any) -> Iterator[str]:
    """Every URL written anywhere in a nested structure of strings."""
    if isinstance(value, str):
        yield from (m.group(0).rstrip(".,;)") for m in _URL_IN_TEXT.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from urls_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from urls_in(item)


# --------------------------------------------------------------------------- databases


@dataclass(frozen=True)
class DatabaseHost:
    """One host a libpq connection string may connect to."""

    host: str  # a name, an IP, or a socket directory (starting with '/' or '@')
    hostaddr: str | None
    port: str | None

    @property
    def is_socket(self) -> bool:
        return self.host.startswith(("/", "@"))


def database_hosts(
    conninfo: str, where: str = "the database URL"
) -> tuple[dict[str, str], list[DatabaseHost]]:
    """Every host a connection string leads to, by libpq's own rules.

    URI and ``key=value`` forms, ``?host=`` in a URI, several hosts, ``hostaddr`` and the
    ``PG*`` variables that libpq reads for what the string leaves out. A service file
    (``service=``, ``PGSERVICE``) is refused: orch cannot check where it leads.
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    except Exception as exc:  # psycopg.ProgrammingError for a malformed string
        message = str(exc).split("\n")[0]
        raise ConfigError(f"{where} is malformed ({redact_url(message)})") from None
    if params.get("service") or os.environ.get("PGSERVICE"):
        raise RefusedError(
            f"{where} uses a libpq service (service= or PGSERVICE), whose host orch cannot "
            f"check; write host= (and port=) in the URL instead"
        )
    for key, variable in _PG_ENV.items():
        if key not in params and os.environ.get(variable):
            params[key] = os.environ[variable]
    hosts = params.get("host", "").split(",") if params.get("host") else []
    addrs = params.get("hostaddr", "").split(",") if params.get("hostaddr") else []
    ports = params.get("port", "").split(",") if params.get("port") else []
    count = max(len(hosts), len(addrs), 1)
    found = []
    for index in range(count):
        host = hosts[index] if index < len(hosts) else (hosts[0] if len(hosts) == 1 else "")
        addr = addrs[index] if index < len(addrs) else None
        port = ports[index] if index < len(ports) else (ports[0] if len(ports) == 1 else None)
        found.append(DatabaseHost(host.strip() or "/var/run/postgresql", addr or None, port))
    return params, found


def supabase_ref(user: str | None, host: str | None) -> str | None:
    """The Supabase project ref a connection names: ``postgres.<ref>`` on the shared
    pooler, or ``db.<ref>.supabase.co``."""
    if user and "." in user:
        ref = user.rsplit(".", 1)[1].lower()
        if re.fullmatch(r"[a-z0-9]{20}", ref):
            return ref
    match = _SUPABASE_REF.match(normalize_host(host or ""))
    return match.group(1) if match else None


# --------------------------------------------------------------------------- production


@dataclass(frozen=True)
class Production:
    """Everything the config says is production."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    supabase_refs: frozenset[str] = frozenset()
    shared_networks: tuple[Network, ...] = ()  # addresses production shares with staging
    declared: bool = False  # whether anything at all is declared
    resolved_names: tuple[tuple[str, str], ...] = ()  # (address, production name) found now

    def why(self, address: Address) -> str:
        """Why an address is production: declared, or what a production name resolves to."""
        for text, name in self.resolved_names:
            if text == str(address):
                return f"it is an address of production's {name}"
        return "it is a production address"

    def has_name(self, host: str) -> bool:
        return normalize_host(host) in self.names

    def has_address(self, address: Address) -> bool:
        if any(address in net for net in self.shared_networks if net.version == address.version):
            return False  # shared: the name decides
        return any(address in net for net in self.networks if net.version == address.version)

    def matches(self, host: str) -> bool:
        """Whether a host (name or IP literal) is production."""
        address = parse_address(host)
        return self.has_address(address) if address is not None else self.has_name(host)


@dataclass(frozen=True)
class SharedN8N:
    """A production N8N used with test workflows: one host, exact webhook paths."""

    host: str
    paths: tuple[str, ...]
    max_requests_per_second: float | None

    def path_allowed(self, path: str) -> bool:
        return any(_path_pattern(p).fullmatch(_clean_path(path)) for p in self.paths)

    def js_rule(self) -> dict[str, Any]:
        """The rule the script's checked request function applies."""
        return {"host": self.host, "paths": [_path_pattern(p).pattern for p in self.paths]}


def _path_pattern(template: str) -> re.Pattern[str]:
    """``/webhook/{id}/x`` or ``/webhook/:id/x``: each parameter matches one segment."""
    parts = []
    for segment in template.strip().split("/"):
        if re.fullmatch(r"\{[^/{}]+\}|:[A-Za-z_][A-Za-z0-9_]*", segment):
            parts.append(r"[^/?#%]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("/".join(parts))


def _clean_path(path: str) -> str:
    """A request path as a server routes it; anything that could climb or hide a segment
    makes it unmatchable."""
    raw = path.split("?", 1)[0].split("#", 1)[0] or "/"
    lowered = raw.lower()
    if "%2f" in lowered or "%5c" in lowered or "%2e" in lowered or "\\" in raw or "//" in raw:
        return "\x00"
    if any(part in {".", ".."} for part in raw.split("/")):
        return "\x00"
    return raw


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class EgressPolicy:
    """Where one environment may connect, resolved at the start of a command."""

    environment: str
    kind: str
    names: frozenset[str]  # allowed host names
    networks: tuple[Network, ...]  # allowed addresses
    production: Production
    shared_n8n: SharedN8N | None = None
    resolved: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> addresses

    # ---- checks

    def check_host(self, host: str, action: str) -> None:
        """Refuse a name or IP literal outside the allow-list, or production."""
        normal = normalize_host(host)
        address = parse_address(normal)
        if address is not None:
            self.check_address(normal, address, action)
            return
        if self.shared_n8n and normal == self.shared_n8n.host:
            return  # allowed on declared paths only: check_url decides
        if self.production.has_name(normal):
            raise self._refusal(action, normal, "it is declared as production")
        if self.kind == "local":
            if normal not in LOOPBACK_NAMES:
                raise self._refusal(action, normal, "a local environment reaches loopback only")
        elif normal not in self.names:
            raise self._refusal(action, normal, "it is not in this environment's allow-list")

    def check_address(self, host: str, address: Address | str, action: str) -> None:
        """Refuse an address that is production or outside the allowed networks."""
        ip = parse_address(str(address))
        if ip is None:
            raise self._refusal(action, host, f"{address} is not an IP address")
        shown = host if str(ip) == host else f"{host} ({ip})"
        if ip.is_unspecified:
            raise self._refusal(action, shown, _UNSPECIFIED_WHY)
        if self.production.has_address(ip):
            raise self._refusal(action, shown, self.production.why(ip))
        if self.shared_n8n and normalize_host(host) == self.shared_n8n.host:
            return
        if not any(ip in net for net in self.networks if net.version == ip.version):
            raise self._refusal(
                action, shown, "the address is outside this environment's allow-list"
            )

    def check_url(self, url: str, action: str, *, base: bool = False) -> None:
        """Refuse a URL whose host is not allowed, or a path the shared N8N does not allow
        (``base``: a base URL, whose host alone is checked)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            raise RefusedError(f"refusing to {action}: {url!r} is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise RefusedError(f"refusing to {action}: {url!r} is not an http(s) URL")
        normal = normalize_host(host)
        self.check_host(normal, action)
        shared = self.shared_n8n
        if shared and normal == shared.host and not base and not shared.path_allowed(parts.path):
            raise self._refusal(
                action,
                f"{normal}{parts.path}",
                "the production N8N is reachable only on the test workflows' declared "
                "webhook paths",
            )

    def resolve(self, host: str, port: int, action: str) -> list[str]:
        """Resolve a name and check every address; return the checked addresses."""
        self.check_host(host, action)
        normal = normalize_host(host)
        if parse_address(normal) is not None:
            return [str(parse_address(normal))]
        try:
            found = resolve_name(normal, port)
        except OSError as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        for canonical, address in found:
            if canonical != normal and self.production.has_name(canonical):
                raise self._refusal(action, normal, f"it is an alias of production's {canonical}")
            self.check_address(normal, address, action)
        return list(dict.fromkeys(address for _canonical, address in found))

    def _refusal(self, action: str, host: str, why: str) -> RefusedError:
        return RefusedError(
            f"refusing to {action}: {self.environment} may not reach {host}: {why} "
            f"(see `orch env check {self.environment}` for its allow-list; docs/staging.md)"
        )

    # ---- what k6 is given

    def k6_options(self) -> dict[str, list[str]]:
        """``blacklistIPs`` (every address outside the allowed set, and production inside
        it) and ``blockHostnames`` (production names), for the script's options."""
        allowed = list(self.networks)
        if self.shared_n8n:
            shared = self.resolved.get(self.shared_n8n.host, ())
            allowed += [ipaddress.ip_network(a) for a in shared]
        blocked = complement(allowed) + list(UNSPECIFIED_NETWORKS) + [
            net for net in self.production.networks if net not in self.production.shared_networks
        ]
        names = sorted(
            n for n in self.production.names if not (self.shared_n8n and n == self.shared_n8n.host)
        )
        options = {"blacklistIPs": sorted({str(n) for n in blocked}, key=_network_key)}
        if names:
            options["blockHostnames"] = names
        return options

    def describe(self) -> dict[str, Any]:
        """The allow-list as run.json and `orch env check` show it."""
        shown: dict[str, Any] = {
            "environment": self.environment,
            "allowed_hosts": sorted(self.names) if self.kind != "local" else ["loopback only"],
            "allowed_networks": [str(n) for n in self.networks],
            "production_declared": self.production.declared,
        }
        if self.shared_n8n:
            shown["production_n8n"] = {
                "host": self.shared_n8n.host,
                "webhook_paths": list(self.shared_n8n.paths),
                "max_requests_per_second": self.shared_n8n.max_requests_per_second,
            }
        return shown


def _network_key(text: str) -> tuple[int, int, int]:
    net = ipaddress.ip_network(text)
    return (net.version, int(net.network_address), net.prefixlen)


def complement(allowed: Iterable[Network]) -> list[Network]:
    """Every network outside ``allowed``, IPv4 and IPv6 (the whole space when empty)."""
    result: list[Network] = []
    for whole in (_ALL_V4, _ALL_V6):
        keep: list[Network] = [whole]
        for net in (n for n in allowed if n.version == whole.version):
            keep = [piece for block in keep for piece in _without(block, net)]
        result += keep
    return result


def _without(block: Network, net: Network) -> list[Network]:
    """``block`` less ``net`` (same IP version)."""
    if not block.overlaps(net):
        return [block]
    if _subnet(block, net):
        return []
    return list(block.address_exclude(net))  # type: ignore[arg-type]


def _subnet(inner: Network, outer: Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _collapse(networks: Iterable[Network]) -> tuple[Network, ...]:
    nets = list(networks)
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))


def resolve_name(name: str, port: int | None = None) -> list[tuple[str, str]]:
    """(canonical name, address) for every address a name resolves to (OSError if none)."""
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME)
    except UnicodeError as exc:
        raise OSError(str(exc)) from None
    canonical = normalize_host(infos[0][3]) if infos and infos[0][3] else name
    found = []
    for info in infos:
        address = parse_address(str(info[4][0]))
        if address is not None:
            found.append((canonical, str(address)))
    return found


# --------------------------------------------------------------------------- building


def production_of(config: Any) -> Production:
    """Production as the config declares it: every URL of every production environment
    (``${VAR}`` expanded), and the top-level ``production:`` block."""
    names: set[str] = set()
    networks: list[Network] = []
    refs: set[str] = set()
    declaration = config.production

    def add(place: Place) -> None:
        names.update(place.names)
        networks.extend(place.networks)

    for index, text in enumerate(declaration.hosts):
        where = f"production.hosts[{index}]"
        add(parse_place(expand_refs(text, where, production=True), where))
    for index, text in enumerate(declaration.addresses):
        where = f"production.addresses[{index}]"
        add(parse_place(expand_refs(text, where, production=True), where))
    refs.update(r.lower() for r in declaration.supabase_project_refs)
    for env_name, env in config.environments.items():
        if env.kind != "production":
            continue
        for key in ("base_url", "n8n_base_url", "supabase_url"):
            value = getattr(env, key)
            if value:
                where = f"environments.{env_name}.{key}"
                place = parse_place(expand_refs(value, where, production=True), where)
                add(place)
                for name in place.names:
                    if ref := supabase_ref(None, name.removeprefix("db.")):
                        refs.add(ref)
        if env.database_url:
            where = f"environments.{env_name}.database_url"
            text = expand_refs(env.database_url, where, production=True)
            params, hosts = database_hosts(text, where)
            for host in hosts:
                if not host.is_socket:
                    add(_place_of_host(normalize_host(host.host)))
                if host.hostaddr:
                    add(_place_of_host(normalize_host(host.hostaddr)))
                if ref := supabase_ref(params.get("user"), host.host):
                    refs.add(ref)
    shared: list[Network] = []
    for index, text in enumerate(declaration.shared_addresses):
        shared.extend(parse_place(text, f"production.shared_addresses[{index}]").networks)
    return Production(
        names=frozenset(names),
        networks=tuple(networks),
        supabase_refs=frozenset(refs),
        shared_networks=tuple(shared),
        declared=bool(names or networks or refs),
    )


def resolved_production(production: Production, exempt: str | None = None) -> Production:
    """Production with the addresses its names resolve to now: a production host written
    as its address (or as another name of that address) is production too. Addresses
    declared under ``shared_addresses`` stay out (there the names decide), and so does
    ``exempt``, a production N8N declared for test workflows."""
    found: list[tuple[str, str]] = []
    for name in sorted(production.names - {exempt}):
        try:
            addresses = resolve_name(name)
        except OSError:
            continue  # unknown here: nothing reaches it by this name either
        for _canonical, text in addresses:
            ip = parse_address(text)
            if ip is None or any(
                ip in net for net in production.shared_networks if net.version == ip.version
            ):
                continue
            found.append((str(ip), name))
    if not found:
        return production
    networks = [ipaddress.ip_network(address) for address, _name in found]
    return replace(
        production,
        networks=production.networks + tuple(networks),
        resolved_names=tuple(dict.fromkeys(found)),
    )


_UNSPECIFIED_WHY = (
    "0.0.0.0 and :: are no host but this machine on any of its addresses; write the "
    "address meant"
)


def environment_places(
    config: Any, env_name: str, production: Production | None = None
) -> tuple[dict[str, str], list[Network]]:
    """The names (each with the key that wrote it) and networks an environment's own URLs
    and ``allow:`` block name; RefusedError for a network inside ``production`` (by
    default, as declared) or for 0.0.0.0 / ::."""
    env = config.environment(env_name)
    names: dict[str, str] = {}
    networks: list[Network] = []
    where = ""

    def add(place: Place) -> None:
        for name in place.names:
            names.setdefault(name, where)
        for net in place.networks:
            if net.num_addresses == 1 and net.network_address.is_unspecified:
                raise RefusedError(
                    f"refusing to connect: {where} names {net.network_address}: "
                    f"{_UNSPECIFIED_WHY}"
                )
            inside = [p for p in production_networks if _subnet(net, p)]
            if inside:
                why = (
                    deny.why(net.network_address)
                    if net.num_addresses == 1
                    else "it is a production address"
                )
                raise RefusedError(
                    f"refusing to connect: {where} names {net}, which is production: {why} "
                    f"(there is no override)"
                )
        networks.extend(place.networks)

    deny = production if production is not None else production_of(config)
    production_networks = [net for net in deny.networks if net not in deny.shared_networks]

    for key in ("base_url", "n8n_base_url", "supabase_url"):
        value = getattr(env, key)
        if value:
            where = f"environments.{env_name}.{key}"
            add(parse_place(expand_refs(value, where), where))
    if env.database_url:
        where = f"environments.{env_name}.database_url"
        _params, hosts = database_hosts(expand_refs(env.database_url, where), where)
        for host in hosts:
            if not host.is_socket:
                add(_place_of_host(normalize_host(host.host)))
            if host.hostaddr:
                add(_place_of_host(normalize_host(host.hostaddr)))
    allow = env.allow
    for index, text in enumerate(allow.hosts):
        where = f"environments.{env_name}.allow.hosts[{index}]"
        add(parse_place(expand_refs(text, where), where))
    for index, text in enumerate(allow.networks):
        where = f"environments.{env_name}.allow.networks[{index}]"
        add(parse_place(expand_refs(text, where), where))
    return names, networks


def build_policy(config: Any, env_name: str, action: str = "connect") -> EgressPolicy:
    """Resolve an environment's allow-list now, refusing (exit 6) when the environment is
    production, names production, or has a name that resolves to production."""
    env = config.environment(env_name)
    if env.kind == "production":
        raise RefusedError(
            f"refusing to {action}: environment {env_name!r} is of kind production, and orch "
            f"never sends load to or writes test data in production (there is no override); "
            f"use a staging environment"
        )
    shared = _shared_n8n(env, env_name)
    production = resolved_production(production_of(config), shared.host if shared else None)
    written, networks = environment_places(config, env_name, production)
    if shared:
        written.pop(shared.host, None)
    names = set(written)
    if env.kind == "local":
        _local_only(names, networks, env_name, action)
        allowed: list[Network] = list(LOOPBACK_NETWORKS)
    else:
        allowed = list(networks)
    resolved: dict[str, tuple[str, ...]] = {}
    for name in sorted(names | ({shared.host} if shared else set())):
        if production.has_name(name) and not (shared and name == shared.host):
            raise RefusedError(
                f"refusing to {action}: {written.get(name, env_name)} points at {name}, which "
                f"is declared as production (there is no override); point it at a staging or "
                f"local host"
            )
        resolved[name] = _checked_addresses(name, production, env_name, action)
        if env.kind != "local" and not (shared and name == shared.host):
            allowed += [ipaddress.ip_network(a) for a in resolved[name]]
    policy = EgressPolicy(
        environment=env_name,
        kind=env.kind,
        names=frozenset(names),
        networks=_collapse(allowed),
        production=production,
        shared_n8n=shared,
        resolved=resolved,
    )
    _check_database_ref(env_name, env, policy, action)
    return policy


def _local_only(names: set[str], networks: list[Network], env_name: str, action: str) -> None:
    outside = [
        str(n) for n in networks if not any(_subnet(n, loop) for loop in LOOPBACK_NETWORKS)
    ]
    named = sorted(n for n in names if n not in LOOPBACK_NAMES) + outside
    if named:
        raise RefusedError(
            f"refusing to {action}: the local environment {env_name!r} names {named[0]}, but a "
            f"local environment reaches loopback only; use a staging environment for that"
        )


def _checked_addresses(
    name: str, production: Production, env_name: str, action: str
) -> tuple[str, ...]:
    """The addresses an allowed name resolves to now, none of them production's."""
    try:
        found = resolve_name(name)
    except OSError:
        return ()  # cannot resolve now: allowed by name, with no address (k6 blocks it)
    for canonical, address in found:
        if canonical != name and production.has_name(canonical):
            raise RefusedError(
                f"refusing to {action}: {env_name}'s {name} is an alias of production's "
                f"{canonical}; point it at a staging or local host"
            )
        ip = parse_address(address)
        if ip is not None and ip.is_unspecified:
            raise RefusedError(
                f"refusing to {action}: {env_name}'s {name} resolves to {address}: "
                f"{_UNSPECIFIED_WHY}"
            )
        if ip is not None and production.has_address(ip):
            raise RefusedError(
                f"refusing to {action}: {env_name}'s {name} resolves to {address}, a production "
                f"address ({production.why(ip).removeprefix('it is ')}); point it at a staging "
                f"or local host (or, if staging really shares that address, declare it under "
                f"production.shared_addresses)"
            )
    return tuple(dict.fromkeys(address for _canonical, address in found))


def _shared_n8n(env: Any, env_name: str) -> SharedN8N | None:
    declared = getattr(env, "production_n8n", None)
    if declared is None:
        return None
    host = parse_place(declared.host, f"environments.{env_name}.production_n8n.host")
    if not host.names:
        raise ConfigError(
            f"environments.{env_name}.production_n8n.host: give the N8N host name, not an address"
        )
    return SharedN8N(
        host=next(iter(host.names)),
        paths=tuple(declared.webhook_paths),
        max_requests_per_second=declared.max_requests_per_second,
    )


def _check_database_ref(env_name: str, env: Any, policy: EgressPolicy, action: str) -> None:
    if not env.database_url or not policy.production.supabase_refs:
        return
    where = f"environments.{env_name}.database_url"
    params, hosts = database_hosts(expand_refs(env.database_url, where), where)
    for host in hosts:
        ref = supabase_ref(params.get("user"), host.host)
        if ref and ref in policy.production.supabase_refs:
            raise RefusedError(
                f"refusing to {action}: {env_name}'s database names the production Supabase "
                f"project {ref} (user or host); use the staging project's"
            )


# --------------------------------------------------------------------------- clients


def pinned_conninfo(policy: EgressPolicy, conninfo: str, action: str) -> str:
    """The connection string with every host checked and its address pinned (``hostaddr``),
    so libpq connects only where the policy allows; RefusedError otherwise.

    Socket folders (a host starting with ``/``) stay as they are: they reach this machine.
    """
    from psycopg.conninfo import make_conninfo

    params, hosts = database_hosts(conninfo)
    names: list[str] = []
    addrs: list[str] = []
    ports: list[str] = []
    for host in hosts:
        ref = supabase_ref(params.get("user"), host.host)
        if ref and ref in policy.production.supabase_refs:
            raise RefusedError(
                f"refusing to {action}: the database names the production Supabase project "
                f"{ref} (in its user or host); use the staging project's"
            )
        port = int(host.port) if host.port and host.port.isdigit() else 5432
        if host.is_socket and not host.hostaddr:
            address = ""
        elif host.hostaddr:
            if not host.is_socket and parse_address(host.host) is None:
                policy.check_host(host.host, action)
            address = str(parse_address(host.hostaddr) or host.hostaddr)
            policy.check_address(host.host, address, action)
        else:
            address = policy.resolve(host.host, port, action)[0]
        names.append(host.host)
        addrs.append(address)
        ports.append(str(port))
    pinned = {"host": ",".join(names), "port": ",".join(ports)}
    if any(addrs):
        pinned["hostaddr"] = ",".join(addrs)
    return make_conninfo(conninfo, **pinned)

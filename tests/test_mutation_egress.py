"""The egress rules, held exactly: how hosts are spelled and parsed, what production is,
what an environment may reach, what k6 is told to block, and how a database connection
is checked and pinned. Fast: no k6, no connection; names are answered by
tests/fake_dns.py (``.test`` names, loopback addresses)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import pytest

from orchestrator.config.egress import (
    DatabaseHost,
    EgressPolicy,
    Place,
    Production,
    SharedN8N,
    build_policy,
    complement,
    database_hosts,
    environment_places,
    expand_refs,
    normalize_host,
    parse_address,
    parse_place,
    pinned_conninfo,
    production_of,
    resolve_name,
    resolved_production,
    supabase_ref,
    url_host,
    urls_in,
)
from orchestrator.config.model import OrchConfig
from orchestrator.core import ConfigError, RefusedError
from tests import fake_dns

net = ipaddress.ip_network
ip = ipaddress.ip_address
REF = "abcdefghij0123456789"  # a Supabase project ref: 20 of [a-z0-9]
OTHER_REF = "zyxwvutsrq9876543210"
SEE = "(see `orch env check stg` for its allow-list; docs/staging.md)"
UNSPECIFIED = (
    "0.0.0.0 and :: are no host but this machine on any of its addresses; write the address meant"
)


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    for name in ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGSERVICE", "MUT_HOST"):
        monkeypatch.delenv(name, raising=False)
    return fake_dns.install(monkeypatch)


def make_config(
    stg: dict[str, Any] | None = None,
    production: dict[str, Any] | None = None,
    **environments: Any,
) -> OrchConfig:
    """A staging environment `stg` on stg.test, a production environment on prod.test."""
    envs = {
        "stg": {"kind": "staging", "base_url": "http://stg.test", **(stg or {})},
        "prod": {"kind": "production", "base_url": "https://prod.test"},
        "local": {"kind": "local", "base_url": "http://127.0.0.1:9"},
        **environments,
    }
    return OrchConfig.model_validate(
        {
            "defaults": {"environment": "stg"},
            "environments": envs,
            "scenarios": {},
            "production": production or {},
        }
    )


def policy_of(
    kind: str = "staging",
    names: tuple[str, ...] = ("stg.test",),
    networks: tuple[str, ...] = ("127.0.0.5/32",),
    production: Production | None = None,
    shared: SharedN8N | None = None,
    resolved: dict[str, tuple[str, ...]] | None = None,
) -> EgressPolicy:
    return EgressPolicy(
        environment="stg",
        kind=kind,
        names=frozenset(names),
        networks=tuple(net(n) for n in networks),
        production=production or Production(),
        shared_n8n=shared,
        resolved=resolved or {},
    )


def refused(host: str, why: str, action: str = "run") -> str:
    return f"refusing to {action}: stg may not reach {host}: {why} {SEE}"


def message_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(RefusedError) as caught:
        call(*args, **kwargs)
    return caught.value.message


def config_message_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)
    return caught.value.message


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("API.Stg.TEST", "api.stg.test"),
        (" stg.test.. ", "stg.test"),
        ("stg%2Etest", "stg.test"),
        ("stg\u3002test", "stg.test"),  # ideographic full stop
        ("ｓｔｇ.test", "stg.test"),  # full-width letters
        ("[::1]", "::1"),
        ("[::FFFF:127.0.0.2]", "127.0.0.2"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("host%25x", "host%x"),  # '%' without ':' is no zone id
        ("127.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("", ""),
        ("[]", ""),
        (".", ""),
    ],
)
def test_hosts_reduce_to_one_spelling(written: str, normal: str) -> None:
    assert normalize_host(written) == normal


@pytest.mark.parametrize(
    ("written", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        (" [::1] ", "::1"),
        ("::ffff:127.0.0.2", "127.0.0.2"),
        ("::ffff:7f00:2", "127.0.0.2"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("10", "0.0.0.10"),
    ],
)
def test_addresses_in_every_resolver_form_are_parsed(written: str, address: str) -> None:
    assert parse_address(written) == ip(address)


def test_an_ipv6_address_stays_ipv6() -> None:
    assert parse_address("::1") == ipaddress.IPv6Address("::1")
    assert parse_address("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")


@pytest.mark.parametrize(
    "written", ["stg.test", "abc", "face", "x", "1a", "0x", "1.2.3.4.5", "", "1-2"]
)
def test_names_are_not_addresses(written: str) -> None:
    assert parse_address(written) is None


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://API.stg.test:8080/x", "api.stg.test"),
        ("  https://stg.test/  ", "stg.test"),
        ("http://[::1]:80/", "::1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http:///path", None),
        ("not a url", None),
        ("http://[::1/", None),  # ValueError inside urlsplit
    ],
)
def test_url_host(url: str, host: str | None) -> None:
    assert url_host(url) == host


# --------------------------------------------------------------------------- declarations


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("https://API.stg.test:443/v1", Place(names=frozenset({"api.stg.test"}))),
        ("http://127.0.0.5:80/", Place(networks=(net("127.0.0.5/32"),))),
        ("stg.test", Place(names=frozenset({"stg.test"}))),
        ("  stg.test:8080 ", Place(names=frozenset({"stg.test"}))),
        ("127.0.0.5:8080", Place(networks=(net("127.0.0.5/32"),))),
        ("[::1]:8080", Place(networks=(net("::1/128"),))),
        ("[::1]", Place(networks=(net("::1/128"),))),
        ("::1", Place(networks=(net("::1/128"),))),
        ("203.0.113.7/24", Place(networks=(net("203.0.113.0/24"),))),
        ("2001:db8::/32", Place(networks=(net("2001:db8::/32"),))),
        ("under_score-1.test", Place(names=frozenset({"under_score-1.test"}))),
    ],
)
def test_places_are_parsed(text: str, place: Place) -> None:
    assert parse_place(text, "W") == place


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "W: an empty host"),
        ("   ", "W: an empty host"),
        ("http://", "W: 'http://' is a URL without a host"),
        ("http://:80/x", "W: 'http://:80/x' is a URL without a host"),
        (
            "stg.test/path",
            "W: 'stg.test/path' is neither a host, a URL nor a CIDR such as 203.0.113.0/24",
        ),
        ("bad host!", "W: 'bad host!' is not a host name, an IP address or a CIDR"),
        (" a b ", "W: ' a b ' is not a host name, an IP address or a CIDR"),
        ("[::1]x", "W: '[::1]x' is not a host name, an IP address or a CIDR"),
    ],
)
def test_bad_places_say_where_and_what(text: str, message: str) -> None:
    assert config_message_of(parse_place, text, "W") == message


def test_expand_refs_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUT_HOST", "stg.test")
    assert expand_refs("http://${MUT_HOST}:${MUT_HOST}/$MUT_HOST", "W") == (
        "http://stg.test:stg.test/$MUT_HOST"
    )
    assert expand_refs("no refs", "W", production=True) == "no refs"


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_variable_is_a_config_error_or_in_production_a_refusal(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is not None:
        monkeypatch.setenv("MUT_HOST", value)
    assert config_message_of(expand_refs, "http://${MUT_HOST}", "W") == (
        "W needs the environment variable MUT_HOST; set it (or put it in a git-ignored .env file)"
    )
    assert message_of(expand_refs, "http://${MUT_HOST}", "W", production=True) == (
        "W refers to ${MUT_HOST}, which is not set, so orch cannot tell production apart and "
        "refuses to connect anywhere; set MUT_HOST (or put it in a git-ignored .env)"
    )


def test_urls_in_finds_every_url_in_nested_text() -> None:
    value = {
        "a": "see http://a.test/x. and (https://b.test/y), then ftp://c.test;",
        "b": ["http://d.test/'quoted'", ("x", {"c": 'k="http://e.test/z"'})],
        "c": 12,
        "d": None,
    }
    assert list(urls_in(value)) == [
        "http://a.test/x",
        "https://b.test/y",
        "ftp://c.test",
        "http://d.test/",
        "http://e.test/z",
    ]
    assert list(urls_in("no url here")) == []
    assert list(urls_in(("http://f.test",))) == ["http://f.test"]


# --------------------------------------------------------------------------- databases


def test_database_hosts_of_a_uri_and_of_key_value() -> None:
    params, hosts = database_hosts("postgresql://app:pw@db1.test:5433,db2.test/app")
    assert params["user"] == "app"
    assert hosts == [DatabaseHost("db1.test", None, "5433"), DatabaseHost("db2.test", None, "")]
    _, hosts = database_hosts("host=a.test,b.test port=6000 hostaddr=127.0.0.1,127.0.0.2")
    assert hosts == [
        DatabaseHost("a.test", "127.0.0.1", "6000"),
        DatabaseHost("b.test", "127.0.0.2", "6000"),
    ]
    _, hosts = database_hosts("hostaddr=127.0.0.1,127.0.0.2 port=1,2")
    assert hosts == [
        DatabaseHost("/var/run/postgresql", "127.0.0.1", "1"),
        DatabaseHost("/var/run/postgresql", "127.0.0.2", "2"),
    ]
    _, hosts = database_hosts("host=a.test hostaddr=127.0.0.1,127.0.0.2")
    assert hosts == [
        DatabaseHost("a.test", "127.0.0.1", None),
        DatabaseHost("a.test", "127.0.0.2", None),
    ]
    _, hosts = database_hosts("host=a.test,b.test,c.test hostaddr=127.0.0.1 port=1,2")
    assert hosts == [
        DatabaseHost("a.test", "127.0.0.1", "1"),
        DatabaseHost("b.test", None, "2"),
        DatabaseHost("c.test", None, None),
    ]
    assert database_hosts("dbname=x") == (
        {"dbname": "x"},
        [DatabaseHost("/var/run/postgresql", None, None)],
    )
    _, hosts = database_hosts("host=' a.test '")
    assert hosts == [DatabaseHost("a.test", None, None)]


def test_database_hosts_read_libpq_variables_for_what_the_string_leaves_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGHOST", "env.test")
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.7")
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("PGUSER", "postgres." + REF)
    params, hosts = database_hosts("dbname=app")
    assert params == {
        "dbname": "app",
        "host": "env.test",
        "hostaddr": "127.0.0.7",
        "port": "6543",
        "user": "postgres." + REF,
    }
    assert hosts == [DatabaseHost("env.test", "127.0.0.7", "6543")]
    params, hosts = database_hosts("host=own.test port=1 user=me")
    assert hosts == [DatabaseHost("own.test", "127.0.0.7", "1")]
    assert params["user"] == "me"
    monkeypatch.setenv("PGHOST", "")
    monkeypatch.delenv("PGHOSTADDR")
    assert database_hosts("dbname=app")[1] == [DatabaseHost("/var/run/postgresql", None, "6543")]


def test_a_malformed_database_url_is_named_without_its_password() -> None:
    assert config_message_of(database_hosts, "postgresql://u:s3cret@[::1/d", "W") == (
        'W is malformed (end of string reached when looking for matching "]" in IPv6 host '
        'address in URI: "postgresql://u:***@[::1/d")'
    )
    assert config_message_of(database_hosts, "host") == (
        'the database URL is malformed (missing "=" after "host" in connection info string)'
    )


def test_a_libpq_service_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    why = (
        "W uses a libpq service (service= or PGSERVICE), whose host orch cannot check; "
        "write host= (and port=) in the URL instead"
    )
    assert message_of(database_hosts, "service=prod", "W") == why
    monkeypatch.setenv("PGSERVICE", "prod")
    assert message_of(database_hosts, "host=stg.test", "W") == why
    monkeypatch.setenv("PGSERVICE", "")
    assert database_hosts("host=stg.test")[1] == [DatabaseHost("stg.test", None, None)]


def test_socket_hosts() -> None:
    assert DatabaseHost("/tmp", None, None).is_socket
    assert DatabaseHost("@abstract", None, None).is_socket
    assert not DatabaseHost("db.test", None, None).is_socket


@pytest.mark.parametrize(
    ("user", "host", "ref"),
    [
        ("postgres." + REF, None, REF),
        ("postgres." + REF.upper(), "x.test", REF),
        ("a.b.postgres." + REF, None, REF),
        ("postgres.short", f"db.{REF}.supabase.co", REF),
        (None, f"DB.{REF}.supabase.co.", REF),
        ("postgres", f"{REF}.supabase.com", REF),
        (None, f"{REF}.supabase.in", REF),
        (None, f"{REF}.supabase.org", None),
        (None, f"x{REF}.supabase.co", None),
        ("postgres" + REF, None, None),
        (None, None, None),
        ("", "", None),
    ],
)
def test_supabase_ref(user: str | None, host: str | None, ref: str | None) -> None:
    assert supabase_ref(user, host) == ref


# --------------------------------------------------------------------------- production


def test_production_names_addresses_and_shared_addresses() -> None:
    production = Production(
        names=frozenset({"prod.test"}),
        networks=(net("127.0.0.8/29"), net("::1/128"), net("127.0.0.20/32")),
        shared_networks=(net("127.0.0.20/32"), net("::2/128")),
        resolved_names=(("127.0.0.9", "prod.test"),),
    )
    assert production.has_name("PROD.test.")
    assert not production.has_name("stg.test")
    assert production.has_address(ip("127.0.0.8")) and production.has_address(ip("127.0.0.15"))
    assert not production.has_address(ip("127.0.0.16"))
    assert not production.has_address(ip("127.0.0.7"))
    assert production.has_address(ip("::1"))
    assert not production.has_address(ip("127.0.0.20"))  # shared: the name decides
    assert production.matches("127.0.0.9") and production.matches("[::1]")
    assert production.matches("Prod.Test") and not production.matches("127.0.0.20")
    assert not production.matches("stg.test")
    assert production.why(ip("127.0.0.9")) == "it is an address of production's prod.test"
    assert production.why(ip("127.0.0.10")) == "it is a production address"


def test_a_shared_address_of_the_other_ip_version_does_not_hide_production() -> None:
    production = Production(networks=(net("127.0.0.9/32"),), shared_networks=(net("::/0"),))
    assert production.has_address(ip("127.0.0.9"))
    production = Production(networks=(net("::/0"),), shared_networks=(net("0.0.0.0/0"),))
    assert production.has_address(ip("::1"))


def test_shared_n8n_paths() -> None:
    shared = SharedN8N("n8n.prod.test", ("/webhook/{id}/run", "/webhook/:key", " /hook.x "), 4.0)
    assert shared.path_allowed("/webhook/abc/run")
    assert shared.path_allowed("/webhook/abc/run?x=1#frag")
    assert shared.path_allowed("/webhook/k-1")
    assert shared.path_allowed("/hook.x")
    for path in (
        "/webhook/a/b/run",
        "/webhook//run",
        "/webhook/abc/run/",
        "/webhook/abc/run/x",
        "/webhook/a%2fb/run",
        "/webhook/a%2Fb/run",
        "/webhook/a%5Cb/run",
        "/webhook/%2E%2E/run",
        "/webhook/a\\b/run",
        "/webhook/./run",
        "/webhook/../webhook/k",
        "/webhook/k/.",
        "/hookax",
        "/webhook/a%3Fb/run",
        "",
    ):
        assert not shared.path_allowed(path), path
    assert shared.js_rule() == {
        "host": "n8n.prod.test",
        "paths": [r"/webhook/[^/?#%]+/run", r"/webhook/[^/?#%]+", r"/hook\.x"],
    }
    assert SharedN8N("h", ("/",), None).path_allowed("")  # an empty path is '/'
    assert SharedN8N("h", ("/",), None).path_allowed("?q")
    assert SharedN8N("h", ("/a/{x}",), None).path_allowed("/a/b#frag")
    assert not SharedN8N("h", ("/a/{x}y",), None).path_allowed("/a/by")
    assert not SharedN8N("h", ("/a/:9x",), None).path_allowed("/a/b")
    assert SharedN8N("h", ("/a/:9x",), None).path_allowed("/a/:9x")


# --------------------------------------------------------------------------- the checks


def test_check_host_on_a_staging_allow_list() -> None:
    production = Production(names=frozenset({"prod.test"}), networks=(net("127.0.0.9/32"),))
    policy = policy_of(production=production)
    policy.check_host("STG.test.", "run")
    policy.check_host("127.0.0.5", "run")
    assert message_of(policy.check_host, "prod.test", "run") == refused(
        "prod.test", "it is declared as production"
    )
    assert message_of(policy.check_host, "other.test", "run") == refused(
        "other.test", "it is not in this environment's allow-list"
    )
    assert message_of(policy.check_host, "localhost", "run") == refused(
        "localhost", "it is not in this environment's allow-list"
    )
    assert message_of(policy.check_host, "0x7f.0.0.9", "seed") == refused(
        "127.0.0.9", "it is a production address", "seed"
    )


def test_check_host_on_a_local_environment_reaches_loopback_names_only() -> None:
    policy = policy_of(kind="local", names=(), networks=("127.0.0.0/8", "::1/128"))
    for name in ("localhost", "LOCALHOST.localdomain", "ip6-localhost"):
        policy.check_host(name, "run")
    policy.check_host("127.0.0.42", "run")
    assert message_of(policy.check_host, "stg.test", "run") == refused(
        "stg.test", "a local environment reaches loopback only"
    )
    production = Production(names=frozenset({"localhost"}))
    assert message_of(
        policy_of(kind="local", production=production).check_host, "localhost", "run"
    ) == (refused("localhost", "it is declared as production"))


def test_check_address() -> None:
    production = Production(networks=(net("127.0.0.9/32"),))
    policy = policy_of(networks=("127.0.0.5/32", "::1/128"), production=production)
    policy.check_address("stg.test", "127.0.0.5", "run")
    policy.check_address("stg.test", ip("::1"), "run")
    assert message_of(policy.check_address, "stg.test", "stg.test", "run") == refused(
        "stg.test", "stg.test is not an IP address"
    )
    assert message_of(policy.check_address, "stg.test", "127.0.0.6", "run") == refused(
        "stg.test (127.0.0.6)", "the address is outside this environment's allow-list"
    )
    assert message_of(policy.check_address, "127.0.0.6", "127.0.0.6", "run") == refused(
        "127.0.0.6", "the address is outside this environment's allow-list"
    )
    assert message_of(policy.check_address, "x.test", "0.0.0.0", "run") == refused(
        "x.test (0.0.0.0)", UNSPECIFIED
    )
    assert message_of(policy.check_address, "::", "::", "run") == refused("::", UNSPECIFIED)
    assert message_of(policy.check_address, "x.test", "127.0.0.9", "run") == refused(
        "x.test (127.0.0.9)", "it is a production address"
    )
    assert message_of(policy.check_address, "x.test", "::2", "run") == refused(
        "x.test (::2)", "the address is outside this environment's allow-list"
    )


def test_an_allowed_network_of_the_other_version_allows_nothing() -> None:
    policy = policy_of(networks=("::/0",))
    assert "outside" in message_of(policy.check_address, "a", "127.0.0.5", "run")


SHARED = SharedN8N("n8n.prod.test", ("/webhook/{id}",), 4.0)
SHARED_PRODUCTION = Production(
    names=frozenset({"n8n.prod.test", "prod.test"}), networks=(net("127.0.0.9/32"),)
)


def shared_policy() -> EgressPolicy:
    return policy_of(
        production=SHARED_PRODUCTION, shared=SHARED, resolved={"n8n.prod.test": ("127.0.0.30",)}
    )


def test_the_shared_n8n_host_is_reached_on_its_paths_only() -> None:
    policy = shared_policy()
    policy.check_host("N8N.prod.test", "run")
    policy.check_address("n8n.prod.test", "127.0.0.30", "run")
    policy.check_address("N8N.prod.test.", "127.0.0.31", "run")  # its address: the path decides
    assert "outside" in message_of(policy.check_address, "stg.test", "127.0.0.30", "run")
    assert "production address" in message_of(
        policy.check_address, "n8n.prod.test", "127.0.0.9", "run"
    )
    policy.check_url("https://n8n.prod.test/webhook/abc", "run")
    policy.check_url("https://n8n.prod.test/other", "run", base=True)
    assert message_of(policy.check_url, "https://N8N.prod.test/other?x", "run") == refused(
        "n8n.prod.test/other",
        "the production N8N is reachable only on the test workflows' declared webhook paths",
    )
    policy.check_url("http://stg.test/other", "run")
    assert "declared as production" in message_of(policy.check_host, "prod.test", "run")


def test_check_url() -> None:
    policy = policy_of()
    policy.check_url("http://stg.test/x", "run")
    policy.check_url("HTTPS://stg.test:8443/x", "run", base=True)
    assert message_of(policy.check_url, "http://[::1/", "run") == (
        "refusing to run: 'http://[::1/' is not a valid URL"
    )
    for url in ("ftp://stg.test/x", "http:///x", "stg.test/x", "https://"):
        assert message_of(policy.check_url, url, "run") == (
            f"refusing to run: {url!r} is not an http(s) URL"
        )
    assert message_of(policy.check_url, "http://other.test/", "run") == refused(
        "other.test", "it is not in this environment's allow-list"
    )


def test_resolve_checks_every_address(dns: list[Any]) -> None:
    production = Production(names=frozenset({"prod.test"}), networks=(net("127.0.0.9/32"),))
    policy = policy_of(
        names=("stg.test", "api.stg.test", "alias.test", "cname.stg.test", "gone.test"),
        networks=("127.0.0.4/30",),
        production=production,
    )
    assert policy.resolve("API.stg.test", 443, "run") == ["127.0.0.5", "127.0.0.6"]
    assert dns[-1] == ("api.stg.test", 443, socket.SOCK_STREAM, socket.AI_CANONNAME)
    assert policy.resolve("cname.stg.test", 80, "run") == ["127.0.0.5"]
    assert policy.resolve("0x7f.0.0.5", 80, "run") == ["127.0.0.5"]
    assert message_of(policy.resolve, "alias.test", 80, "run") == refused(
        "alias.test", "it is an alias of production's prod.test"
    )
    assert message_of(policy.resolve, "other.test", 80, "run") == refused(
        "other.test", "it is not in this environment's allow-list"
    )
    with pytest.raises(OSError) as caught:
        policy.resolve("gone.test", 80, "run")
    assert str(caught.value) == "cannot resolve gone.test: [Errno -2] Name or service not known"
    narrow = policy_of(names=("api.stg.test",), networks=("127.0.0.5/32",))
    assert message_of(narrow.resolve, "api.stg.test", 80, "run") == refused(
        "api.stg.test (127.0.0.6)", "the address is outside this environment's allow-list"
    )


def test_resolve_name(dns: list[Any]) -> None:
    assert resolve_name("api.stg.test") == [
        ("api.stg.test", "127.0.0.5"),
        ("api.stg.test", "127.0.0.6"),
        ("api.stg.test", "127.0.0.5"),
    ]
    assert dns[-1] == ("api.stg.test", None, socket.SOCK_STREAM, socket.AI_CANONNAME)
    assert resolve_name("alias.test", 5432) == [("prod.test", "127.0.0.9")]
    assert dns[-1] == ("alias.test", 5432, socket.SOCK_STREAM, socket.AI_CANONNAME)
    assert resolve_name("v6.test") == [("v6.test", "::1")]
    with pytest.raises(OSError, match=r"^label too long$"):
        resolve_name("a" * 254)
    with pytest.raises(OSError):
        resolve_name("gone.test")


def test_resolve_name_without_a_canonical_name(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns.install(monkeypatch, {"plain.test": ("", ("127.0.0.5",))})
    assert resolve_name("plain.test") == [("plain.test", "127.0.0.5")]
    fake_dns.install(monkeypatch, {"plain.test": ("PLAIN.test.", ("127.0.0.5", "not-an-ip"))})
    assert resolve_name("plain.test") == [("plain.test", "127.0.0.5")]
    fake_dns.install(monkeypatch, {"none.test": ("none.test", ())})
    assert resolve_name("none.test") == []


# --------------------------------------------------------------------------- k6 and describe


def test_k6_blocks_everything_outside_the_allow_list_and_production_inside_it() -> None:
    production = Production(
        names=frozenset({"prod.test", "a.prod.test"}),
        networks=(net("127.0.0.9/32"), net("127.0.0.20/32")),
        shared_networks=(net("127.0.0.20/32"),),
    )
    policy = policy_of(networks=("127.0.0.0/8", "::1/128"), production=production)
    options = policy.k6_options()
    assert options["blockHostnames"] == ["a.prod.test", "prod.test"]
    blocked = options["blacklistIPs"]
    assert blocked[:3] == ["0.0.0.0/2", "0.0.0.0/32", "64.0.0.0/3"]
    assert "127.0.0.9/32" in blocked and "127.0.0.8/32" not in blocked
    assert "127.0.0.20/32" not in blocked
    assert "128.0.0.0/1" in blocked and "::/128" in blocked and "::2/127" in blocked
    assert blocked[-1] == "8000::/1"
    assert blocked.index("::/128") < blocked.index("::2/127") < blocked.index("8000::/1")
    assert policy_of(networks=()).k6_options() == {
        "blacklistIPs": ["0.0.0.0/0", "0.0.0.0/32", "::/0", "::/128"]
    }


def test_k6_reaches_the_shared_n8n_by_its_resolved_addresses_but_no_other_production() -> None:
    options = shared_policy().k6_options()
    assert options["blockHostnames"] == ["prod.test"]
    assert "127.0.0.30/32" not in options["blacklistIPs"]
    assert "127.0.0.31/32" in options["blacklistIPs"]
    assert "127.0.0.9/32" in options["blacklistIPs"]
    unresolved = policy_of(shared=SHARED, production=Production(names=frozenset({"n8n.prod.test"})))
    assert "blockHostnames" not in unresolved.k6_options()
    assert "127.0.0.30/32" not in shared_policy().k6_options()["blacklistIPs"]


def test_describe() -> None:
    production = Production(declared=True)
    policy = policy_of(
        names=("b.test", "a.test"), networks=("127.0.0.5/32",), production=production
    )
    assert policy.describe() == {
        "environment": "stg",
        "allowed_hosts": ["a.test", "b.test"],
        "allowed_networks": ["127.0.0.5/32"],
        "production_declared": True,
    }
    local = policy_of(kind="local", networks=("127.0.0.0/8",)).describe()
    assert local["allowed_hosts"] == ["loopback only"]
    assert local["production_declared"] is False
    assert shared_policy().describe()["production_n8n"] == {
        "host": "n8n.prod.test",
        "webhook_paths": ["/webhook/{id}"],
        "max_requests_per_second": 4.0,
    }


def test_complement() -> None:
    assert complement([net("0.0.0.0/1")]) == [net("128.0.0.0/1"), net("::/0")]
    assert complement([net("0.0.0.0/0"), net("::/0")]) == []
    assert complement([net("::/1"), net("10.0.0.0/8")])[-1] == net("8000::/1")
    assert complement([net("128.0.0.0/2"), net("128.0.0.0/1")])[:1] == [net("0.0.0.0/1")]
    assert complement([net("::/1")]) == [net("0.0.0.0/0"), net("8000::/1")]


# --------------------------------------------------------------------------- building


def test_production_of_collects_every_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUT_HOST", "prod-db.test")
    config = make_config(
        production={
            "hosts": ["https://Alias2.Prod.test/x", "${MUT_HOST}"],
            "addresses": ["127.0.0.40", "127.0.1.0/24"],
            "shared_addresses": ["127.0.0.20"],
            "supabase_project_refs": [OTHER_REF.upper()],
        },
        prod2={
            "kind": "production",
            "base_url": f"https://{REF}.supabase.co",
            "n8n_base_url": "http://127.0.0.41:5678",
            "supabase_url": f"https://db.{OTHER_REF[:-1]}x.supabase.co",
            "database_url": "postgresql://postgres@pooler.test,/tmp/s:5432/app?hostaddr=127.0.0.20,127.0.0.42",
        },
        prod3={
            "kind": "production",
            "base_url": "https://prod3.test",
            "database_url": f"postgresql://postgres.{REF[:-1]}y@pool.test/app",
        },
    )
    production = production_of(config)
    assert production.names == frozenset(
        {
            "alias2.prod.test",
            "prod-db.test",
            "prod.test",
            f"{REF}.supabase.co",
            f"db.{OTHER_REF[:-1]}x.supabase.co",
            "pooler.test",
            "prod3.test",
            "pool.test",
        }
    )
    assert set(production.networks) == {
        net("127.0.0.40/32"),
        net("127.0.1.0/24"),
        net("127.0.0.41/32"),
        net("127.0.0.20/32"),
        net("127.0.0.42/32"),
    }
    assert production.networks[:2] == (net("127.0.0.40/32"), net("127.0.1.0/24"))
    assert production.supabase_refs == frozenset(
        {OTHER_REF, REF, OTHER_REF[:-1] + "x", REF[:-1] + "y"}
    )
    assert production.shared_networks == (net("127.0.0.20/32"),)
    assert production.declared is True
    assert production.resolved_names == ()


def test_production_of_without_declarations() -> None:
    config = OrchConfig.model_validate(
        {
            "environments": {"local": {"kind": "local", "base_url": "http://127.0.0.1:9"}},
            "scenarios": {},
        }
    )
    assert production_of(config) == Production()
    refs_only = make_config(production={"supabase_project_refs": [REF]})
    assert production_of(refs_only).declared is True


def test_production_of_names_the_key_that_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUT_HOST", "bad host")
    config = make_config(production={"hosts": ["x.test", "${MUT_HOST}"]})
    assert config_message_of(production_of, config) == (
        "production.hosts[1]: 'bad host' is not a host name, an IP address or a CIDR"
    )
    config = make_config(production={"addresses": ["127.0.0.1", "${MUT_HOST}"]})
    assert config_message_of(production_of, config) == (
        "production.addresses[1]: 'bad host' is not a host name, an IP address or a CIDR"
    )
    config = make_config(production={"addresses": ["${MUT_NOPE}"]})
    assert message_of(production_of, config).startswith(
        "production.addresses[0] refers to ${MUT_NOPE}"
    )
    config = make_config(prod={"kind": "production", "base_url": "https://${MUT_NOPE}"})
    assert message_of(production_of, config).startswith("environments.prod.base_url refers to")
    config = make_config(
        prod={"kind": "production", "base_url": "https://prod.test", "database_url": "${MUT_NOPE}"}
    )
    assert message_of(production_of, config).startswith("environments.prod.database_url refers to")
    config = make_config(
        prod={"kind": "production", "base_url": "https://prod.test", "database_url": "host"}
    )
    assert config_message_of(production_of, config).startswith(
        "environments.prod.database_url is malformed"
    )


def test_resolved_production_adds_what_production_names_resolve_to() -> None:
    production = Production(
        names=frozenset({"prod.test", "pooler.test", "gone.test", "n8n.prod.test", "api.stg.test"}),
        networks=(net("127.0.0.40/32"),),
        shared_networks=(net("127.0.0.20/32"), net("::/0")),
    )
    found = resolved_production(production, exempt="n8n.prod.test")
    assert found.networks == (
        net("127.0.0.40/32"),
        net("127.0.0.5/32"),
        net("127.0.0.6/32"),
        net("127.0.0.5/32"),
        net("127.0.0.9/32"),
    )
    assert found.resolved_names == (
        ("127.0.0.5", "api.stg.test"),
        ("127.0.0.6", "api.stg.test"),
        ("127.0.0.9", "prod.test"),
    )
    assert found.names == production.names and found.shared_networks == production.shared_networks
    assert resolved_production(Production(names=frozenset({"gone.test"}))) == Production(
        names=frozenset({"gone.test"})
    )
    both = resolved_production(Production(names=frozenset({"n8n.prod.test"})))
    assert both.resolved_names == (("127.0.0.30", "n8n.prod.test"),)


def test_environment_places(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUT_HOST", "api.stg.test")
    config = make_config(
        {
            "n8n_base_url": "http://127.0.0.5:5678",
            "supabase_url": "https://${MUT_HOST}",
            "database_url": "postgresql://u@db.stg.test,/tmp:5432/app?hostaddr=127.0.0.7,127.0.0.8",
            "allow": {"hosts": ["stg.test", "cdn.stg.test"], "networks": ["127.0.2.0/24"]},
        }
    )
    names, networks = environment_places(config, "stg")
    assert names == {
        "stg.test": "environments.stg.base_url",
        "api.stg.test": "environments.stg.supabase_url",
        "db.stg.test": "environments.stg.database_url",
        "cdn.stg.test": "environments.stg.allow.hosts[1]",
    }
    assert networks == [
        net("127.0.0.5/32"),
        net("127.0.0.7/32"),
        net("127.0.0.8/32"),
        net("127.0.2.0/24"),
    ]


@pytest.mark.parametrize(
    ("stg", "message"),
    [
        (
            {"allow": {"networks": ["127.0.0.52/30"]}},
            "refusing to connect: environments.stg.allow.networks[0] names 127.0.0.52/30, which "
            "is production: it is a production address (there is no override)",
        ),
        (
            {"n8n_base_url": "http://127.0.0.9:1"},
            "refusing to connect: environments.stg.n8n_base_url names 127.0.0.9/32, which is "
            "production: it is an address of production's prod.test (there is no override)",
        ),
        (
            {"allow": {"hosts": ["127.0.0.50"]}},
            "refusing to connect: environments.stg.allow.hosts[0] names 127.0.0.50/32, which is "
            "production: it is a production address (there is no override)",
        ),
        (
            {"database_url": "host=x.test hostaddr=0.0.0.0"},
            f"refusing to connect: environments.stg.database_url names 0.0.0.0: {UNSPECIFIED}",
        ),
        (
            {"database_url": "host=127.0.0.9"},
            "refusing to connect: environments.stg.database_url names 127.0.0.9/32, which is "
            "production: it is an address of production's prod.test (there is no override)",
        ),
        (
            {"allow": {"networks": ["::/128"]}},
            f"refusing to connect: environments.stg.allow.networks[0] names ::: {UNSPECIFIED}",
        ),
    ],
)
def test_environment_places_refuse_production_and_unspecified_addresses(
    stg: dict[str, Any], message: str
) -> None:
    config = make_config(stg, production={"addresses": ["127.0.0.48/29"]})
    production = resolved_production(production_of(config))
    assert message_of(environment_places, config, "stg", production) == message


def test_environment_places_default_to_production_as_declared() -> None:
    config = make_config(
        {"allow": {"networks": ["127.0.0.0/16"]}}, {"addresses": ["127.0.0.48/29"]}
    )
    assert environment_places(config, "stg")[1] == [net("127.0.0.0/16")]  # wider: not inside
    config = make_config(
        {"allow": {"networks": ["127.0.0.50/31"]}}, {"addresses": ["127.0.0.48/29"]}
    )
    assert "which is production" in message_of(environment_places, config, "stg")
    config = make_config(
        {"allow": {"networks": ["127.0.0.50/31", "0.0.0.0/0"]}},
        {"addresses": ["127.0.0.48/29"], "shared_addresses": ["127.0.0.48/29"]},
    )
    assert environment_places(config, "stg")[1] == [net("127.0.0.50/31"), net("0.0.0.0/0")]
    config = make_config({"database_url": "${MUT_NOPE}"})
    assert config_message_of(environment_places, config, "stg").startswith(
        "environments.stg.database_url needs the environment variable MUT_NOPE"
    )


def test_build_policy_for_staging() -> None:
    config = make_config(
        {
            "database_url": "postgresql://u@api.stg.test/app",
            "allow": {"hosts": ["gone.test"], "networks": ["127.0.3.0/24", "::1"]},
        },
        {"hosts": ["other-prod.test"]},
    )
    policy = build_policy(config, "stg", "run")
    assert policy.environment == "stg" and policy.kind == "staging"
    assert policy.names == frozenset({"stg.test", "api.stg.test", "gone.test"})
    assert policy.resolved == {
        "api.stg.test": ("127.0.0.5", "127.0.0.6"),
        "gone.test": (),
        "stg.test": ("127.0.0.5",),
    }
    assert policy.networks == (
        net("127.0.0.5/32"),
        net("127.0.0.6/32"),
        net("127.0.3.0/24"),
        net("::1/128"),
    )
    assert policy.production.names == frozenset({"prod.test", "other-prod.test"})
    assert policy.production.resolved_names == (("127.0.0.9", "prod.test"),)
    assert policy.shared_n8n is None


def test_build_policy_for_local() -> None:
    config = make_config(
        local={
            "kind": "local",
            "base_url": "http://localhost:9",
            "allow": {"networks": ["127.0.0.0/24"]},
        }
    )
    policy = build_policy(config, "local")
    assert policy.kind == "local"
    assert policy.names == frozenset({"localhost"})
    assert policy.networks == (net("127.0.0.0/8"), net("::1/128"))
    assert policy.resolved == {"localhost": ("127.0.0.1",)}


@pytest.mark.parametrize(
    ("local", "named"),
    [
        ({"base_url": "http://stg.test"}, "stg.test"),
        ({"base_url": "http://127.0.0.1", "allow": {"networks": ["10.0.0.0/8"]}}, "10.0.0.0/8"),
        ({"base_url": "http://127.0.0.1", "allow": {"networks": ["127.0.0.0/7"]}}, "126.0.0.0/7"),
        ({"base_url": "http://[::2]"}, "::2/128"),
        (
            {"base_url": "http://b.test", "allow": {"hosts": ["a.test"], "networks": ["10.0.0.1"]}},
            "a.test",
        ),
    ],
)
def test_a_local_environment_names_loopback_only(local: dict[str, Any], named: str) -> None:
    config = make_config(local={"kind": "local", **local})
    assert message_of(build_policy, config, "local", "seed") == (
        f"refusing to seed: the local environment 'local' names {named}, but a local "
        f"environment reaches loopback only; use a staging environment for that"
    )


def test_build_policy_refuses_production_kind() -> None:
    assert message_of(build_policy, make_config(), "prod") == (
        "refusing to connect: environment 'prod' is of kind production, and orch never sends "
        "load to or writes test data in production (there is no override); use a staging "
        "environment"
    )


@pytest.mark.parametrize(
    ("stg", "production", "message"),
    [
        (
            {"base_url": "http://alias.test"},
            None,
            "refusing to run: stg's alias.test is an alias of production's prod.test; point it "
            "at a staging or local host",
        ),
        (
            {"base_url": "http://anywhere.test"},
            None,
            f"refusing to run: stg's anywhere.test resolves to 0.0.0.0: {UNSPECIFIED}",
        ),
        (
            {"allow": {"hosts": ["prod-db.test"]}},
            {"addresses": ["127.0.0.10"]},
            "refusing to run: stg's prod-db.test resolves to 127.0.0.10, a production address "
            "(a production address); point it at a staging or local host (or, if staging "
            "really shares that address, declare it under production.shared_addresses)",
        ),
        (
            {"base_url": "http://stg.test"},
            {"hosts": ["stg.test"]},
            "refusing to run: environments.stg.base_url points at stg.test, which is declared "
            "as production (there is no override); point it at a staging or local host",
        ),
        (
            {"allow": {"hosts": ["https://api.stg.test"]}},
            {"hosts": ["other.test"], "addresses": ["127.0.0.6"]},
            "refusing to run: stg's api.stg.test resolves to 127.0.0.6, a production address "
            "(a production address); point it at a staging or local host (or, if staging "
            "really shares that address, declare it under production.shared_addresses)",
        ),
        (
            {"allow": {"hosts": ["api.stg.test"]}},
            {"hosts": ["cname.stg.test"]},
            "refusing to run: stg's api.stg.test resolves to 127.0.0.5, a production address "
            "(an address of production's cname.stg.test); point it at a staging or local host "
            "(or, if staging really shares that address, declare it under "
            "production.shared_addresses)",
        ),
    ],
)
def test_build_policy_refuses_a_name_that_leads_to_production(
    stg: dict[str, Any], production: dict[str, Any] | None, message: str
) -> None:
    config = make_config(stg, production)
    if "base_url" not in stg:
        config.environments["stg"].base_url = "http://127.0.0.77"
    assert message_of(build_policy, config, "stg", "run") == message


def test_a_shared_address_lets_the_name_decide() -> None:
    config = make_config(
        {"base_url": "http://api.stg.test"},
        {"hosts": ["pooler.test"], "addresses": ["127.0.0.6"], "shared_addresses": ["127.0.0.6"]},
    )
    policy = build_policy(config, "stg")
    assert net("127.0.0.6/32") in policy.networks
    assert "127.0.0.6/32" not in policy.k6_options()["blacklistIPs"]
    assert policy.k6_options()["blockHostnames"] == ["pooler.test", "prod.test"]


def test_a_staging_name_that_is_a_cname_of_another_staging_name_is_allowed() -> None:
    policy = build_policy(make_config({"base_url": "http://cname.stg.test"}), "stg")
    assert policy.resolved == {"cname.stg.test": ("127.0.0.5",)}


def test_build_policy_with_the_shared_production_n8n() -> None:
    config = make_config(
        {
            "n8n_base_url": "http://n8n.prod.test:5678",
            "production_n8n": {
                "host": "https://N8N.prod.test/",
                "webhook_paths": ["/webhook/{id}"],
                "max_requests_per_second": 4,
            },
        },
        {"hosts": ["n8n.prod.test"]},
    )
    policy = build_policy(config, "stg")
    assert policy.shared_n8n == SharedN8N("n8n.prod.test", ("/webhook/{id}",), 4)
    assert policy.names == frozenset({"stg.test"})
    assert policy.resolved == {"n8n.prod.test": ("127.0.0.30",), "stg.test": ("127.0.0.5",)}
    assert policy.networks == (net("127.0.0.5/32"),)
    assert policy.production.resolved_names == (("127.0.0.9", "prod.test"),)
    options = policy.k6_options()
    assert "127.0.0.30/32" not in options["blacklistIPs"]
    assert options["blockHostnames"] == ["prod.test"]
    config.environments["stg"].production_n8n.host = "127.0.0.30"  # type: ignore[union-attr]
    assert config_message_of(build_policy, config, "stg") == (
        "environments.stg.production_n8n.host: give the N8N host name, not an address"
    )


def test_the_shared_n8n_host_written_elsewhere_is_still_only_the_shared_host() -> None:
    config = make_config(
        {
            "allow": {"hosts": ["n8n.prod.test"]},
            "production_n8n": {"host": "n8n.prod.test", "webhook_paths": ["/webhook/{id}"]},
        },
        {"hosts": ["n8n.prod.test"]},
    )
    policy = build_policy(config, "stg")
    assert policy.names == frozenset({"stg.test"})
    assert policy.networks == (net("127.0.0.5/32"),)


def test_build_policy_refuses_a_production_supabase_database() -> None:
    stg = {"database_url": f"postgresql://postgres.{REF}@pooler.stg.test,other.stg.test/app"}
    config = make_config(stg, {"supabase_project_refs": [REF]})
    assert message_of(build_policy, config, "stg", "run") == (
        f"refusing to run: stg's database names the production Supabase project {REF} (user "
        f"or host); use the staging project's"
    )
    config = make_config(
        {"database_url": f"postgresql://postgres@db.{REF}.supabase.co/app"},
        {"supabase_project_refs": [REF]},
    )
    assert "production Supabase project" in message_of(build_policy, config, "stg", "run")
    config = make_config(
        {"database_url": f"postgresql://postgres.{OTHER_REF}@x.test/app"},
        {"supabase_project_refs": [REF]},
    )
    assert build_policy(config, "stg").production.supabase_refs == frozenset({REF})
    config = make_config({"database_url": f"postgresql://postgres.{REF}@x.test/app"})
    assert build_policy(config, "stg").production.supabase_refs == frozenset()


# --------------------------------------------------------------------------- pinned_conninfo


def test_pinned_conninfo_pins_every_host() -> None:
    policy = policy_of(names=("stg.test", "api.stg.test"), networks=("127.0.0.4/30", "::1/128"))
    assert pinned_conninfo(policy, "postgresql://u@api.stg.test/app", "seed") == (
        "user=u dbname=app host=api.stg.test port=5432 hostaddr=127.0.0.5"
    )
    assert pinned_conninfo(
        policy, "host=stg.test,127.0.0.6,[::1] port=6000,x,7 dbname=a", "seed"
    ) == (
        "dbname=a host=stg.test,127.0.0.6,[::1] port=6000,5432,7 hostaddr=127.0.0.5,127.0.0.6,::1"
    )
    assert pinned_conninfo(policy, "host=/tmp port=5433", "seed") == "host=/tmp port=5433"
    assert pinned_conninfo(policy, "host=/tmp,stg.test", "seed") == (
        "host=/tmp,stg.test port=5432,5432 hostaddr=,127.0.0.5"
    )
    assert pinned_conninfo(policy, "host=stg.test hostaddr=0x7f.0.0.6", "seed") == (
        "host=stg.test hostaddr=127.0.0.6 port=5432"
    )
    assert pinned_conninfo(policy, "host=127.0.0.5 hostaddr=127.0.0.6", "seed") == (
        "host=127.0.0.5 hostaddr=127.0.0.6 port=5432"
    )
    assert pinned_conninfo(policy, "host=/tmp hostaddr=127.0.0.6", "seed") == (
        "host=/tmp hostaddr=127.0.0.6 port=5432"
    )


def test_pinned_conninfo_refuses() -> None:
    production = Production(names=frozenset({"prod.test"}), supabase_refs=frozenset({REF}))
    policy = policy_of(production=production)
    assert message_of(
        pinned_conninfo, policy, f"postgresql://postgres.{REF}@stg.test/a", "seed"
    ) == (
        f"refusing to seed: the database names the production Supabase project {REF} (in its "
        f"user or host); use the staging project's"
    )
    assert pinned_conninfo(
        policy, f"postgresql://postgres.{OTHER_REF}@stg.test/a", "seed"
    ).endswith("hostaddr=127.0.0.5")
    assert message_of(pinned_conninfo, policy, "host=prod.test hostaddr=127.0.0.5", "seed") == (
        refused("prod.test", "it is declared as production", "seed")
    )
    assert message_of(pinned_conninfo, policy, "host=stg.test hostaddr=127.0.0.9", "seed") == (
        refused(
            "stg.test (127.0.0.9)", "the address is outside this environment's allow-list", "seed"
        )
    )
    assert message_of(pinned_conninfo, policy, "host=stg.test hostaddr=nowhere", "seed") == (
        refused("stg.test", "nowhere is not an IP address", "seed")
    )
    assert message_of(pinned_conninfo, policy, "host=/tmp hostaddr=127.0.0.9", "seed") == (
        refused("/tmp (127.0.0.9)", "the address is outside this environment's allow-list", "seed")
    )
    assert message_of(pinned_conninfo, policy, "host=other.test", "seed") == refused(
        "other.test", "it is not in this environment's allow-list", "seed"
    )


def test_environment_is_untouched() -> None:
    assert "PGHOST" not in os.environ


# --------------------------------------------------------------------------- edges


def test_edges_of_spelling() -> None:
    assert normalize_host("fe80::1%25eth0%25x") == "fe80::1"  # the zone id starts at the first %
    assert parse_address("X10") is None  # only brackets are stripped
    assert parse_address("127.0.0.9 x") is None  # inet_aton would read 127.0.0.9
    assert parse_place("[10.0.0.0/8]", "W") == Place(networks=(net("10.0.0.0/8"),))
    assert "neither a host" in config_message_of(parse_place, "10.0.0.0/8X", "W")
    assert parse_place("[h:1", "W") == Place(names=frozenset({"h:1"}))  # no host:port split
    assert "is not a host name" in config_message_of(parse_place, "a]:b:80", "W")
    assert list(urls_in("http://a.test/X")) == ["http://a.test/X"]


def test_a_parameter_named_in_capitals_matches_one_segment() -> None:
    assert SharedN8N("h", ("/a/:Id",), None).path_allowed("/a/b")


def test_only_the_first_query_or_fragment_mark_ends_the_path() -> None:
    shared = SharedN8N("h", ("/webhook/:id",), None)
    assert shared.path_allowed("/webhook/abc#x#y")
    assert shared.path_allowed("/webhook/abc?x?y")
    assert shared.path_allowed("/webhook/abc?x#y")
    assert not shared.path_allowed("/webhook/..")
    assert not shared.path_allowed("/webhook/.")


@pytest.mark.parametrize(
    "declared", ["/a%2fb", "/a%2Fb", "/a%5cb", "/a%5Cb", "/a%2eb", "/a%2Eb", "/a//b", "/a\\b"]
)
def test_a_declared_path_with_an_encoded_or_doubled_separator_matches_nothing(
    declared: str,
) -> None:
    assert not SharedN8N("h", (declared,), None).path_allowed(declared)


def test_a_production_address_found_by_name_is_named() -> None:
    production = Production(
        networks=(net("127.0.0.9/32"),), resolved_names=(("127.0.0.9", "prod.test"),)
    )
    assert message_of(
        policy_of(production=production).check_address, "x.test", "127.0.0.9", "run"
    ) == (refused("x.test (127.0.0.9)", "it is an address of production's prod.test"))


def blocks(options: dict[str, list[str]], address: str) -> bool:
    return any(
        ip(address) in net(n)
        for n in options["blacklistIPs"]
        if net(n).version == ip(address).version
    )


def test_k6_with_a_shared_n8n_still_reaches_the_allowed_networks() -> None:
    options = shared_policy().k6_options()
    assert not blocks(options, "127.0.0.5")
    assert not blocks(options, "127.0.0.30")
    assert blocks(options, "127.0.0.6") and blocks(options, "127.0.0.9")


def test_production_of_refuses_an_unset_variable_in_production_hosts() -> None:
    config = make_config(production={"hosts": ["${MUT_NOPE}"]})
    assert message_of(production_of, config).startswith("production.hosts[0] refers to ${MUT_NOPE}")


def test_production_of_names_a_bad_production_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUT_HOST", "bad host")
    config = make_config(prod={"kind": "production", "base_url": "${MUT_HOST}"})
    assert config_message_of(production_of, config) == (
        "environments.prod.base_url: 'bad host' is not a host name, an IP address or a CIDR"
    )


def test_production_of_reads_supabase_refs_from_database_hosts_and_db_names() -> None:
    config = make_config(
        prod={
            "kind": "production",
            "base_url": f"https://db.db.{OTHER_REF}.supabase.co",
            "database_url": f"postgresql://postgres@db.{REF}.supabase.co/app",
        }
    )
    assert production_of(config).supabase_refs == frozenset({REF, OTHER_REF})


@pytest.mark.parametrize("production", [{"hosts": ["prod2.test"]}, {"addresses": ["127.0.0.40"]}])
def test_production_is_declared_by_names_or_by_addresses_alone(production: dict[str, Any]) -> None:
    config = OrchConfig.model_validate(
        {
            "environments": {"local": {"kind": "local", "base_url": "http://127.0.0.1:9"}},
            "scenarios": {},
            "production": production,
        }
    )
    assert production_of(config).declared is True


def test_a_shared_address_skips_only_that_address_of_a_production_name() -> None:
    production = Production(
        names=frozenset({"api.stg.test"}), shared_networks=(net("127.0.0.5/32"),)
    )
    assert resolved_production(production).resolved_names == (("127.0.0.6", "api.stg.test"),)


def test_a_network_inside_production_is_named_as_a_production_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns.install(monkeypatch, {"prod8.test": ("prod8.test", ("127.0.0.8",))})
    config = make_config(
        {"allow": {"networks": ["127.0.0.8/30"]}},
        {"hosts": ["prod8.test"], "addresses": ["127.0.0.8/29"]},
    )
    assert message_of(build_policy, config, "stg") == (
        "refusing to connect: environments.stg.allow.networks[0] names 127.0.0.8/30, which is "
        "production: it is a production address (there is no override)"
    )


@pytest.mark.parametrize(
    ("stg", "where"),
    [
        ({"base_url": "${MUT_X}"}, "environments.stg.base_url"),
        ({"supabase_url": "${MUT_X}"}, "environments.stg.supabase_url"),
        ({"allow": {"hosts": ["stg.test", "${MUT_X}"]}}, "environments.stg.allow.hosts[1]"),
        ({"allow": {"networks": ["${MUT_X}"]}}, "environments.stg.allow.networks[0]"),
    ],
)
def test_environment_places_name_the_key_that_fails(
    monkeypatch: pytest.MonkeyPatch, stg: dict[str, Any], where: str
) -> None:
    config = make_config(stg)
    monkeypatch.delenv("MUT_X", raising=False)
    assert config_message_of(environment_places, config, "stg") == (
        f"{where} needs the environment variable MUT_X; set it (or put it in a git-ignored "
        ".env file)"
    )
    monkeypatch.setenv("MUT_X", "bad host")
    assert config_message_of(environment_places, config, "stg").startswith(f"{where}: ")


def test_environment_places_name_a_malformed_database_url() -> None:
    config = make_config({"database_url": "host"})
    assert config_message_of(environment_places, config, "stg") == (
        'environments.stg.database_url is malformed (missing "=" after "host" in connection '
        "info string)"
    )


def test_build_policy_refuses_an_allowed_address_that_a_production_name_resolves_to() -> None:
    config = make_config({"allow": {"networks": ["127.0.0.9"]}})
    assert message_of(build_policy, config, "stg") == (
        "refusing to connect: environments.stg.allow.networks[0] names 127.0.0.9/32, which is "
        "production: it is an address of production's prod.test (there is no override)"
    )


def test_a_shared_n8n_no_url_names_is_still_allowed_on_its_paths() -> None:
    config = make_config(
        {"production_n8n": {"host": "n8n.prod.test", "webhook_paths": ["/webhook/{id}"]}},
        {"hosts": ["n8n.prod.test"]},
    )
    policy = build_policy(config, "stg")
    assert policy.resolved == {"n8n.prod.test": ("127.0.0.30",), "stg.test": ("127.0.0.5",)}
    policy.check_url("http://n8n.prod.test/webhook/abc", "run")


def test_a_bad_shared_n8n_host_is_named() -> None:
    config = make_config(
        {"production_n8n": {"host": "bad host", "webhook_paths": ["/webhook/{id}"]}}
    )
    assert config_message_of(build_policy, config, "stg") == (
        "environments.stg.production_n8n.host: 'bad host' is not a host name, an IP address or "
        "a CIDR"
    )


def test_a_local_environment_reaches_loopback_only_whatever_localhost_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns.install(monkeypatch, {"localhost": ("localhost", ("127.0.0.1", "10.0.0.1"))})
    config = make_config(local={"kind": "local", "base_url": "http://localhost:9"})
    assert build_policy(config, "local").networks == (net("127.0.0.0/8"), net("::1/128"))


def test_supabase_refs_without_a_database_url() -> None:
    policy = build_policy(make_config(production={"supabase_project_refs": [REF]}), "stg")
    assert policy.production.supabase_refs == frozenset({REF})


def test_pinned_conninfo_refuses_a_production_supabase_host() -> None:
    policy = policy_of(
        names=(f"db.{REF}.supabase.co",), production=Production(supabase_refs=frozenset({REF}))
    )
    assert "production Supabase project" in message_of(
        pinned_conninfo, policy, f"postgresql://postgres@db.{REF}.supabase.co/a", "seed"
    )

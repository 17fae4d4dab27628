"""Red team: production disguised every way we could think of, against every command that
connects, with a loopback production stand-in that counts connections.

Production is 127.0.0.2 (HTTP on 18443, a database port on 15432) and, where a case needs a
name, the /etc/hosts name ``vm`` (127.0.0.1:18444); see tests/standin.py. Only loopback is
ever bound or connected to. Every case asserts: exit 6 (refused), the refusal names the host
(or the variable), no traceback, and **zero** connections reached the stand-in. The
redirect cases aim an allowed server's 302 at production: k6 must end ``refused`` (never
passed) and orch's own clients must not follow it, nor carry a secret there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.core import ExitCode
from tests.conftest import TEST_WEBHOOK_PATH
from tests.standin import (
    PRODUCTION_DB_PORT,
    PRODUCTION_DB_URL,
    PRODUCTION_HTTP_PORT,
    PRODUCTION_N8N_PORT,
    PRODUCTION_URL,
    StandIn,
    production_standin,
    redirector,
)
from tests.test_db_support import fresh_db, pg_server  # noqa: F401  (fixtures)

WEBHOOK_SECRET = "SENTINEL-SECRET-webhook-5d1e9a"
SERVICE_KEY = "SENTINEL-SECRET-service-role-b7c402"
SECRETS = (WEBHOOK_SECRET, SERVICE_KEY)
P = PRODUCTION_HTTP_PORT
N = PRODUCTION_N8N_PORT
D = PRODUCTION_DB_PORT

# Production as an environment of kind production: API, N8N and Supabase on the stand-in,
# its database on the stand-in's database port.
PRODUCTION_ENV: dict[str, Any] = {
    "kind": "production",
    "base_url": PRODUCTION_URL,
    "n8n_base_url": PRODUCTION_URL,
    "supabase_url": PRODUCTION_URL,
    "database_url": PRODUCTION_DB_URL,
}
# The same, with its N8N by the /etc/hosts name `vm` (127.0.0.1:18444). `vm` shares
# 127.0.0.1 with the allowed loopback servers, so configs that have both declare that
# address shared (the names decide there); others keep staging off 127.0.0.1.
PRODUCTION_WITH_N8N_NAME: dict[str, Any] = {**PRODUCTION_ENV, "n8n_base_url": f"http://vm:{N}"}
SHARED_LOOPBACK = {"shared_addresses": ["127.0.0.1"]}

COMMANDS: dict[str, list[str]] = {
    "run": ["run", "linkedin-scrape", "--env", "staging", "--no-report"],
    "verify": ["verify", "staging"],
    "env-check": ["env", "check", "staging"],
    "users-create": ["users", "create", "--env", "staging", "--count", "1"],
    "users-list": ["users", "list", "--env", "staging"],
    "users-cleanup": ["users", "cleanup", "--env", "staging"],
    "db-indexes": ["db", "indexes", "--env", "staging"],
    "db-plan": ["db", "plan", "--env", "staging"],
    "db-migrate": ["db", "migrate", "--env", "staging"],
    "db-explain": ["db", "explain", "--env", "staging", "--repeat", "1"],
    "db-seed": ["db", "seed", "--scale", "10", "--env", "staging"],
}
HTTP = ("run", "verify", "env-check")
EVERY = tuple(COMMANDS)


@dataclass(frozen=True)
class Disguise:
    """One way of pointing staging at production, and the commands it is tried with."""

    id: str
    staging: dict[str, Any]  # environments.staging, besides kind and secrets
    needle: str  # the refusal names this (the host, or the variable)
    commands: tuple[str, ...] = HTTP
    production: dict[str, Any] | None = field(default_factory=lambda: dict(PRODUCTION_ENV))
    declared: dict[str, Any] | None = None  # the top-level production: block
    env: dict[str, str] = field(default_factory=dict)  # the shell's environment
    dotenv: dict[str, str] = field(default_factory=dict)  # .env next to orch.yaml
    profile_env: dict[str, str] | None = None  # the profile's own k6 env:
    args: tuple[str, ...] = ()  # more command-line arguments
    environment: str = "staging"  # the environment `staging` describes, and commands use


def api(url: str, **more: Any) -> dict[str, Any]:
    return {"base_url": url, "n8n_base_url": "http://127.0.0.1:9", **more}


def n8n(url: str, **more: Any) -> dict[str, Any]:
    return {"base_url": "http://127.0.0.1:9", "n8n_base_url": url, **more}


def db(url: str, **more: Any) -> dict[str, Any]:
    return {"base_url": "http://127.0.0.1:9", "database_url": url, **more}


SERVICE_FILE = "[rt_prod]\nhost=127.0.0.2\nport=15432\nuser=u\ndbname=app\n"
AS_127_0_0_1 = {"addresses": ["127.0.0.1"]}  # production declared as 127.0.0.1 (stand-in N8N)

RV, RE, VE = ("run", "verify"), ("run", "env-check"), ("verify", "env-check")

DISGUISES = [
    # ---- the target written so that a text comparison misses it
    Disguise("full-width-dots", api(f"http://127．0．0．2:{P}"), "127.0.0.2", RV),
    Disguise("ideographic-dots", n8n(f"http://127。0。0。2:{P}/"), "127.0.0.2", RE),
    Disguise("percent-encoded-dots", api(f"http://127%2e0%2e0%2e2:{P}"), "127.0.0.2", VE),
    Disguise("integer-ipv4", api(f"http://2130706434:{P}"), "127.0.0.2", RV),
    Disguise("hex-ipv4", n8n(f"http://0x7f.0.0.2:{P}"), "127.0.0.2", RE),
    Disguise("octal-ipv4", api(f"http://0177.0.0.02:{P}"), "127.0.0.2", VE),
    Disguise("short-ipv4", api(f"http://127.2:{P}"), "127.0.0.2", RV),
    Disguise("ipv4-mapped-ipv6", n8n(f"http://[::ffff:127.0.0.2]:{P}"), "127.0.0.2", RE),
    Disguise("ipv4-mapped-ipv6-hex", api(f"http://[::FFFF:7f00:2]:{P}"), "127.0.0.2", RV),
    Disguise("userinfo-in-front", api(f"http://prod.example@127.0.0.2:{P}/"), "127.0.0.2", VE),
    # ---- one host under another name or address
    Disguise("localhost-vs-declared-127.0.0.1", {"base_url": f"http://localhost:{N}"},
             "localhost", RV, production=None, declared=AS_127_0_0_1),
    Disguise("etc-hosts-alias-vs-declared-127.0.0.1",
             {"base_url": "http://127.0.0.5:9", "n8n_base_url": f"http://vm:{N}"}, "vm", RE,
             production=None, declared=AS_127_0_0_1),
    Disguise("declared-name-reached-by-its-address",
             {"base_url": "http://127.0.0.5:9", "n8n_base_url": f"http://127.0.0.1:{N}"},
             "127.0.0.1", RV, production=None, declared={"hosts": ["localhost"]}),
    Disguise("declared-name-reached-by-mapped-address",
             {"base_url": f"http://[::ffff:7f00:1]:{N}", "n8n_base_url": "http://127.0.0.5:9"},
             "127.0.0.1", VE, production=PRODUCTION_WITH_N8N_NAME),
    Disguise("declared-name-reached-by-another-name",
             {"base_url": "http://127.0.0.5:9", "n8n_base_url": f"http://vm:{N}"}, "vm", RE,
             production=None, declared={"hosts": ["localhost"]}),
    Disguise("zero-address", {"base_url": f"http://0.0.0.0:{N}"}, "0.0.0.0", RV,
             production=None, declared=AS_127_0_0_1),
    Disguise("zero-as-integer", {"base_url": "http://127.0.0.5:9", "n8n_base_url": f"http://0:{N}"},
             "0.0.0.0", RE, production=None, declared=AS_127_0_0_1),
    # ---- production declared in ways a text comparison cannot read
    Disguise("declared-with-a-variable", api(f"http://127.2:{P}"), "127.0.0.2", RV,
             production={"kind": "production", "base_url": "${RT_PROD_API}"},
             env={"RT_PROD_API": PRODUCTION_URL}),
    Disguise("declared-with-a-variable-from-dotenv", db(f"postgresql://u@2130706434:{D}/app"),
             "127.0.0.2", ("run", "db-indexes", "users-list"),
             production={"kind": "production", "base_url": "http://prod.invalid",
                         "database_url": "${RT_PROD_DB}"},
             dotenv={"RT_PROD_DB": PRODUCTION_DB_URL}),
    Disguise("declared-with-an-unset-variable", api("http://127.0.0.1:9"), "RT_PROD_API", EVERY,
             production={"kind": "production", "base_url": "${RT_PROD_API}"}),
    Disguise("production-supabase-url",
             {"base_url": "http://127.0.0.1:9", "supabase_url": f"http://[::ffff:127.0.0.2]:{P}"},
             "127.0.0.2", ("users-create", "users-cleanup", "env-check"),
             production={"kind": "production", "base_url": "http://prod.invalid",
                         "supabase_url": PRODUCTION_URL}),
    Disguise("declared-as-a-url", api(f"http://2130706434:{P}"), "127.0.0.2", RE,
             production=None, declared={"hosts": [f"{PRODUCTION_URL}/"]}),
    Disguise("declared-as-cidr-32", n8n(f"http://127.0.0.2:{P}"), "127.0.0.2", RV,
             production=None, declared={"addresses": ["127.0.0.2/32"]}),
    Disguise("declared-as-cidr-30", {"base_url": "http://127.0.0.5:9",
                                     "n8n_base_url": f"http://0x7f000002:{P}"},
             "127.0.0.2", RE, production=None, declared={"addresses": ["127.0.0.0/30"]}),
    # ---- production hidden where no base URL is
    Disguise("url-in-vars",
             api("http://127.0.0.1:9", vars={"callback": f"http://[::ffff:127.0.0.2]:{P}/cb"}),
             "127.0.0.2", VE),
    Disguise("url-in-scenario-override",
             api("http://127.0.0.1:9", scenarios={"linkedin-scrape": {"vars": {
                 "callback": f"see http://2130706434:{P}/x"}}}),
             "127.0.0.2", RV),
    # (a profile's env reaches k6 only: env check, which runs no scenario, has nothing to refuse)
    Disguise("url-in-profile-env", api("http://127.0.0.1:9"), "127.0.0.2", RV,
             profile_env={"CALLBACK": f"http://127%2e0%2e0%2e2:{P}/"}),
    Disguise("allow-networks-containing-production",
             n8n(f"http://127.0.0.2:{P}", allow={"networks": ["127.0.0.0/8"]}), "127.0.0.2", RE),
    Disguise("allow-hosts-naming-production",
             api("http://127.0.0.1:9", allow={"hosts": [f"http://[::ffff:7f00:2]:{P}"]}),
             "127.0.0.2", EVERY),
    Disguise("production-n8n-undeclared",
             {"base_url": "http://127.0.0.5:9", "n8n_base_url": f"http://VM.:{N}/"}, "vm", RV,
             production=PRODUCTION_WITH_N8N_NAME),
    # ---- the production database, by libpq's rules
    Disguise("libpq-quoted-host", db(f"host='127.0.0.2' port={D} user=u dbname=app"),
             "127.0.0.2", ("db-indexes", "db-migrate", "users-list")),
    Disguise("libpq-hostaddr-with-innocent-name",
             db(f"host=staging-db.invalid hostaddr=127.0.0.2 port={D} user=u dbname=app"),
             "127.0.0.2", ("db-plan", "db-explain", "db-seed")),
    Disguise("uri-hostaddr-parameter",
             db(f"postgresql://u@staging-db.invalid:{D}/app?hostaddr=127.0.0.2"),
             "127.0.0.2", ("db-indexes", "env-check")),
    Disguise("multi-host-uri", db(f"postgresql://u@127.0.0.1:9,127.0.0.2:{D}/app"),
             "127.0.0.2", ("db-migrate", "users-cleanup", "run")),
    Disguise("uri-host-parameter", db(f"postgresql://u@/app?host=127.0.0.2&port={D}"),
             "127.0.0.2", ("db-plan", "db-seed", "env-check")),
    Disguise("pghost-in-environment", db("postgresql:///app?user=u"), "127.0.0.2",
             ("db-explain", "users-list"), env={"PGHOST": "127.0.0.2", "PGPORT": str(D)}),
    Disguise("pghostaddr-in-environment", db(f"postgresql://u@staging-db.invalid:{D}/app"),
             "127.0.0.2", ("db-migrate", "run"), env={"PGHOSTADDR": "127.0.0.2"}),
    Disguise("pghost-in-dotenv", db("dbname=app user=u"), "127.0.0.2",
             ("db-indexes", "db-seed", "env-check"),
             dotenv={"PGHOST": "0x7f.0.0.2", "PGPORT": str(D)}),
    Disguise("pghostaddr-in-dotenv", db("host=staging-db.invalid dbname=app user=u"),
             "127.0.0.2", ("db-explain", "verify"),
             dotenv={"PGHOSTADDR": "127.0.0.2", "PGPORT": str(D)}),
    Disguise("libpq-service", db("service=rt_prod"), "service", ("db-indexes", "users-list"),
             env={"PGSERVICEFILE": "{tmp}/pg_service.conf"}),
    Disguise("pgservice-in-environment", db("dbname=app user=u"), "PGSERVICE",
             ("db-seed", "run"),
             env={"PGSERVICE": "rt_prod", "PGSERVICEFILE": "{tmp}/pg_service.conf"}),
    Disguise("pgservice-in-dotenv", db("dbname=app user=u"), "PGSERVICE",
             ("db-plan", "users-cleanup"),
             dotenv={"PGSERVICE": "rt_prod", "PGSERVICEFILE": "{tmp}/pg_service.conf"}),
    Disguise("database-url-variable-for-db-commands", api("http://127.0.0.1:9"), "127.0.0.2",
             ("db-indexes", "db-migrate", "db-seed"),
             env={"DATABASE_URL": f"postgresql://u@[::ffff:127.0.0.2]:{D}/app"}),
    Disguise("database-url-option", api("http://127.0.0.1:9"), "127.0.0.2",
             ("db-explain", "db-plan"), args=("--database-url", f"postgresql://u@2130706434:{D}/app")),
    Disguise("production-supabase-ref-on-a-shared-address",
             db(f"postgresql://postgres.abcdefghij0123456789@127.0.0.2:{D}/postgres"),
             "abcdefghij0123456789", ("db-indexes", "users-list", "run"), production=None,
             declared={"shared_addresses": ["127.0.0.2"],
                       "supabase_project_refs": ["abcdefghij0123456789"]}),
    # ---- a local environment reaches loopback only, and production is inside loopback here
    Disguise("local-environment-at-a-production-loopback-address",
             {"base_url": f"http://127.2:{P}"}, "127.0.0.2", RE, environment="local"),
    Disguise("local-environment-given-a-production-database",
             {"base_url": "http://127.0.0.1:9"}, "127.0.0.2",
             ("db-indexes", "db-explain", "db-migrate"), environment="local",
             args=("--database-url", f"host=127.0.0.1,0x7f.0.0.2 port=9,{D} user=u dbname=app")),
]  # fmt: skip


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def _standin() -> Iterator[StandIn]:
    with production_standin() as found:
        yield found


@pytest.fixture
def standin(_standin: StandIn) -> Iterator[StandIn]:
    """The production stand-in, its log emptied for this test."""
    _standin.log.reset()
    yield _standin


def scenario(profile_env: dict[str, str] | None = None) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "executor": "constant-arrival-rate",
        "rate": 5,
        "timeUnit": "1s",
        "duration": "1s",
        "preAllocatedVUs": 2,
        "maxVUs": 5,
    }
    if profile_env:
        profile["env"] = profile_env
    return {
        "template": "linkedin_scrape.js.j2",
        "vars": {
            "webhook_export": "workflows/linkedin-scraper.json",
            "webhook_auth": "api-key",
            "webhook_auth_header": "X-N8N-API-KEY",
            "webhook_secret_var": "WEBHOOK_SECRET",
            "profiles_file": "linkedin-profiles.json",
        },
        "default_profile": "smoke",
        "profiles": {"smoke": profile},
    }


def write_project(
    project: Callable[..., Path],
    staging: dict[str, Any],
    *,
    production: dict[str, Any] | None = None,
    declared: dict[str, Any] | None = None,
    profile_env: dict[str, str] | None = None,
    dotenv: dict[str, str] | None = None,
    environment: str = "staging",
) -> Path:
    """A project with `local`, `production` (when given) and `staging` environments; the
    fields in ``staging`` go to ``environment``."""
    environments: dict[str, Any] = {"local": {"kind": "local", "base_url": "http://127.0.0.1:9"}}
    if production:
        environments["production"] = production
    environments["staging"] = {
        "kind": "staging",
        "secrets": {"WEBHOOK_SECRET": "RT_WEBHOOK_SECRET"},
        "supabase_service_role_key": "RT_SERVICE_KEY",
        **({"base_url": "http://127.0.0.5:9"} if environment != "staging" else staging),
    }
    if environment != "staging":
        environments[environment].update(staging)
    data: dict[str, Any] = {
        "defaults": {"environment": "local", "results_dir": "results", "runner": "native"},
        "environments": environments,
        "scenarios": {"linkedin-scrape": scenario(profile_env)},
    }
    if declared:
        data["production"] = declared
    config: Path = project(yaml=yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    if dotenv:
        text = "".join(f"{k}={v}\n" for k, v in dotenv.items())
        (config.parent / ".env").write_text(text.replace("{tmp}", str(config.parent)))
    (config.parent / "pg_service.conf").write_text(SERVICE_FILE)
    return config


_SCRUBBED = ("PG", "K6_", "ORCH_", "RT_")
_PROXIES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "database_url"}


def process_env(config: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """orch's environment: this one without PG*/K6_*/proxy/orch variables, plus the
    sentinel secrets and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(_SCRUBBED) and k.lower() not in _PROXIES
    }
    env.update({"RT_WEBHOOK_SECRET": WEBHOOK_SECRET, "RT_SERVICE_KEY": SERVICE_KEY})
    for key, value in (extra or {}).items():
        env[key] = value.replace("{tmp}", str(config.parent))
    return env


def orch(
    config: Path, args: list[str], env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=config.parent,
    )


def assert_nothing_reached(standin: StandIn) -> None:
    assert standin.connections == [], f"production stand-in reached: {standin.connections}"
    received = standin.log.text()
    for secret in SECRETS:
        assert secret not in received, "a secret reached the production stand-in"


def run_json(config: Path) -> dict[str, Any]:
    found = list((config.parent / "results").glob("*/run.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


# --------------------------------------------------------------------------- refusals


def test_there_are_at_least_thirty_disguises() -> None:
    assert len({d.id for d in DISGUISES}) == len(DISGUISES) >= 30
    covered = {c for d in DISGUISES for c in d.commands}
    assert covered == set(COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("case", DISGUISES, ids=lambda d: d.id)
def test_disguised_production_is_refused(
    project: Callable[..., Path], standin: StandIn, case: Disguise
) -> None:
    config = write_project(
        project,
        case.staging,
        production=case.production,
        declared=case.declared,
        profile_env=case.profile_env,
        dotenv=case.dotenv,
        environment=case.environment,
    )
    env = process_env(config, case.env)

    def attempt(command: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        args = [case.environment if a == "staging" else a for a in COMMANDS[command]]
        return command, orch(config, [*args, *case.args], env)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, case.commands))
    for command, done in results:
        shown = f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.returncode == ExitCode.REFUSED, shown
        assert "Traceback" not in done.stderr, shown
        assert case.needle in done.stderr, shown
    assert_nothing_reached(standin)
    assert not (config.parent / "results").exists() or not any(
        (config.parent / "results").glob("*/run.json")
    ), "a refused run started"


# --------------------------------------------------------------------------- k6 at connect time


def staging_behind(url: str, **more: Any) -> dict[str, Any]:
    """A staging environment whose API, N8N and Supabase are ``url`` (an allowed server)."""
    return {"base_url": url, "n8n_base_url": url, "supabase_url": url, **more}


# (Go reads only dotted-decimal IPv4: a redirect to 2130706434 or 0x7f.0.0.2 is a name
# lookup that fails, so those disguises are left to the Python side above.)
REDIRECTS = [
    pytest.param(f"http://127.0.0.2:{P}", PRODUCTION_ENV, None, "127.0.0.1",
                 id="to-production-address"),
    pytest.param(f"http://[::ffff:127.0.0.2]:{P}", PRODUCTION_ENV, None, "127.0.0.1",
                 id="to-mapped-ipv6"),
    pytest.param(f"http://localhost:{N}", None, AS_127_0_0_1, "127.0.0.3",
                 id="to-a-name-of-a-production-address"),
    pytest.param(f"http://vm:{N}", PRODUCTION_WITH_N8N_NAME, SHARED_LOOPBACK, "127.0.0.1",
                 id="to-production-name-on-a-shared-address"),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("location", "production", "declared", "host"), REDIRECTS)
def test_k6_does_not_follow_a_redirect_into_production(
    project: Callable[..., Path],
    standin: StandIn,
    location: str,
    production: dict[str, Any] | None,
    declared: dict[str, Any] | None,
    host: str,
) -> None:
    with redirector(location, host) as server:
        config = write_project(
            project, staging_behind(server.url), production=production, declared=declared
        )
        done = orch(config, COMMANDS["run"], process_env(config))
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == ExitCode.REFUSED, shown
    assert "Traceback" not in done.stderr
    assert "PASSED" not in done.stdout + done.stderr
    manifest = run_json(config)
    assert manifest["outcome"] == "refused", manifest
    refused = [note for note in manifest["notes"] if "outside the allow-list" in note]
    assert refused and location.split("//", 1)[1] in refused[0], manifest["notes"]
    assert server.log.requests, "k6 never reached the allowed server: the test proves nothing"
    assert WEBHOOK_SECRET in server.log.text()  # the allowed server did get the secret
    assert_nothing_reached(standin)


K6_HOSTILE_ENV = {
    "K6_BLACKLIST_IPS": "192.0.2.0/24",
    "K6_BLOCK_HOSTNAMES": "nothing.invalid",
    "K6_VUS": "20",
    "K6_ITERATIONS": "1",
    "K6_HOSTS": json.dumps({"staging.invalid": "127.0.0.2"}),
    "HTTP_PROXY": f"http://127.0.0.2:{P}",
    "HTTPS_PROXY": f"http://127.0.0.2:{P}",
    "http_proxy": f"http://127.0.0.2:{P}",
    "ALL_PROXY": f"http://127.0.0.2:{P}",
}
# orch's own variable names for the targets: k6 gets orch's values, never the shell's
TARGET_OVERRIDES = {"ORCH_BASE_URL": PRODUCTION_URL, "ORCH_N8N_BASE_URL": PRODUCTION_URL}


@pytest.mark.slow
@pytest.mark.parametrize("where", ["shell", "dotenv"])
def test_k6_and_proxy_variables_cannot_loosen_k6(
    project: Callable[..., Path], standin: StandIn, where: str
) -> None:
    """K6_* in the shell or .env would override the script's block lists; a proxy variable
    would send every request through production; ORCH_*_BASE_URL would move the targets.
    k6 gets none of them, and run.json lists the K6_* and proxy names it dropped."""
    hostile = {**K6_HOSTILE_ENV, **TARGET_OVERRIDES}
    with redirector(f"http://127.0.0.2:{P}") as server:
        config = write_project(
            project,
            staging_behind(server.url),
            production=PRODUCTION_ENV,
            dotenv=hostile if where == "dotenv" else None,
        )
        env = process_env(config, hostile if where == "shell" else None)
        done = orch(config, COMMANDS["run"], env)
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == ExitCode.REFUSED, shown
    assert "Traceback" not in done.stderr
    manifest = run_json(config)
    assert manifest["outcome"] == "refused"
    dropped = set(manifest["dropped_environment"])
    assert set(K6_HOSTILE_ENV) <= dropped, dropped
    assert len(server.log.requests) > 1, "K6_ITERATIONS=1 reached k6"
    assert_nothing_reached(standin)


SHARED_N8N_PATHS = [TEST_WEBHOOK_PATH]  # where N8N serves the test export's trigger
HOOK = TEST_WEBHOOK_PATH.removesuffix("/:uniqueId")


def shared_n8n_staging(**more: Any) -> dict[str, Any]:
    return {
        "base_url": "http://127.0.0.3:9",
        "n8n_base_url": f"http://vm:{N}",
        "production_n8n": {"host": "vm", "webhook_paths": SHARED_N8N_PATHS},
        **more,
    }


# Scenario webhook paths (the explicit override) outside the declared test workflows.
BAD_PATHS = [
    pytest.param({"webhook_path": "/webhook/admin/:id"}, id="another-workflow"),
    pytest.param({"webhook_path": f"{HOOK}/x/../../../rest/workflows"}, id="dot-dot"),
    pytest.param({"webhook_path": f"{HOOK}/x%2f..%2f..%2frest"}, id="encoded-slash"),
    pytest.param(
        {"webhook_path": HOOK.replace("/webhook/", "/webhook//") + "/:id"}, id="double-slash"
    ),
    pytest.param({"webhook_path": f"{HOOK}/:id/extra"}, id="extra-segment"),
    pytest.param({"webhook_path": "/webhook/linkedin-scraper/:id"}, id="story-assumption"),
]


@pytest.mark.slow
@pytest.mark.parametrize("bad_vars", BAD_PATHS)
@pytest.mark.parametrize("command", ["verify", "run"])
def test_production_n8n_is_reached_only_on_its_declared_paths(
    project: Callable[..., Path], standin: StandIn, bad_vars: dict[str, str], command: str
) -> None:
    """A declared production N8N: orch's client refuses before sending; the script's one
    request function aborts before k6 connects (a refused run, never passed)."""
    staging = shared_n8n_staging(scenarios={"linkedin-scrape": {"vars": bad_vars}})
    config = write_project(project, staging, production=PRODUCTION_WITH_N8N_NAME)
    done = orch(config, COMMANDS[command], process_env(config))
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == ExitCode.REFUSED, shown
    assert "Traceback" not in done.stderr
    if command == "run":
        assert run_json(config)["outcome"] == "refused"
    else:
        assert "vm" in done.stderr and "webhook paths" in done.stderr, shown
    assert_nothing_reached(standin)


@pytest.mark.slow
def test_production_n8n_by_its_address_is_refused(
    project: Callable[..., Path], standin: StandIn
) -> None:
    """The exception is for the name on its paths: the same host by address is not in it."""
    staging = shared_n8n_staging(vars={"callback": f"http://127.0.0.1:{N}/rest/workflows"})
    config = write_project(project, staging, production=PRODUCTION_WITH_N8N_NAME)
    env = process_env(config)
    for command in HTTP:
        done = orch(config, COMMANDS[command], env)
        shown = f"{command}: exit {done.returncode}\n{done.stderr}"
        assert done.returncode == ExitCode.REFUSED, shown
        assert "127.0.0.1" in done.stderr, shown
    assert_nothing_reached(standin)


@pytest.mark.slow
def test_env_check_does_not_probe_a_shared_production_n8n(
    project: Callable[..., Path], standin: StandIn
) -> None:
    """env check says the production N8N is used with test workflows, and sends it nothing
    (its root is not a declared webhook path)."""
    config = write_project(project, shared_n8n_staging(), production=PRODUCTION_WITH_N8N_NAME)
    done = orch(config, COMMANDS["env-check"], process_env(config))
    assert done.returncode == ExitCode.SETUP, done.stdout + done.stderr  # API is down
    assert "production N8N" in done.stdout and "not probed" in done.stdout, done.stdout
    assert_nothing_reached(standin)


# --------------------------------------------------------------------------- orch's own clients


PROXIES = {name: f"http://127.0.0.2:{P}" for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "expected_exit", "says"),
    [
        pytest.param("verify", ExitCode.UNVERIFIED, "302", id="verify"),
        pytest.param("env-check", ExitCode.SETUP, "not followed", id="env-check"),
        pytest.param("users-create", ExitCode.SETUP, "not followed", id="users-create"),
        pytest.param("users-cleanup", ExitCode.SETUP, "not followed", id="users-cleanup"),
    ],
)
def test_orch_clients_do_not_follow_a_redirect_into_production(
    project: Callable[..., Path],
    standin: StandIn,
    command: str,
    expected_exit: ExitCode | None,
    says: str,
) -> None:
    """The allowed server gets the secret (it is allowed); its 302 to production is never
    followed, and no proxy variable takes a request there either."""
    with redirector(f"http://127.0.0.2:{P}") as server:
        config = write_project(
            project,
            staging_behind(server.url, database_url="postgresql://u@127.0.0.1:9/app"),
            production=PRODUCTION_ENV,
        )
        done = orch(config, COMMANDS[command], process_env(config, PROXIES))
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, shown
    if expected_exit is not None:
        assert done.returncode == expected_exit, shown
    assert says in done.stdout + done.stderr, shown
    assert server.log.requests, "the allowed server was never called: the test proves nothing"
    secret = WEBHOOK_SECRET if command == "verify" else SERVICE_KEY
    if command != "env-check":
        assert secret in server.log.text()
    assert_nothing_reached(standin)


@pytest.mark.slow
@pytest.mark.postgres
def test_users_list_does_not_follow_a_redirect_into_production(
    project: Callable[..., Path],
    standin: StandIn,
    fresh_db: str,  # noqa: F811
) -> None:
    """`users list` reads a real database first, then calls the (redirecting) admin API."""
    from orchestrator.core import PROJECT_ROOT
    from orchestrator.db import apply_migrations, connect

    with connect(fresh_db, autocommit=True) as conn:
        apply_migrations(conn, PROJECT_ROOT / "supabase" / "migrations")
    with redirector(f"http://127.0.0.2:{P}") as server:
        config = write_project(
            project, staging_behind(server.url, database_url=fresh_db), production=PRODUCTION_ENV
        )
        done = orch(config, COMMANDS["users-list"], process_env(config, PROXIES))
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == ExitCode.SETUP, shown
    assert "not followed" in done.stderr and "Traceback" not in done.stderr, shown
    assert SERVICE_KEY in server.log.text()
    assert_nothing_reached(standin)

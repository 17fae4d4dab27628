"""`orch verify ENV`: check the endpoints the scenarios assume against the real target.

For every scenario of the config, resolved for the environment:

- an N8N webhook (``webhook_export``, or a ``webhook_path`` override): derive from the
  workflow export, by N8N's own rules (:mod:`orchestrator.target.n8n`), the URL N8N serves,
  its methods, authentication and the node options that would turn a load test away; say
  whether that is the story's assumed ``/webhook/{workflow}/{id}``; flag an override that
  disagrees with the export; then send one real test call with the configured auth and one
  without;
- each endpoint variable (``*_endpoint``, ``"METHOD /path"``): probe it with the least
  intrusive request that tells existence apart: ``OPTIONS``, else the method with a
  deliberately invalid JSON body (never a real enrichment); ``enrichment_endpoint`` probes
  every candidate of ``verify.enrichment_candidates`` in order and reports which exists.

:func:`verify_environment` returns a :class:`VerifyReport` and prints nothing;
:func:`write_scenario_var` records a finding (the enrichment endpoint, the webhook path N8N
serves) in the config file with a targeted edit that keeps its comments and layout.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from orchestrator.config import (
    ENDPOINT_SUFFIX,
    EndpointSpec,
    OrchConfig,
    Redactor,
    ResolvedRun,
    guard_run,
    load_config,
    parse_endpoint,
    refuse_production_kind,
    resolve_run,
)
from orchestrator.core import ConfigError, SetupError
from orchestrator.target.n8n import (
    N8N_ENDPOINT_VAR,
    N8N_RULES,
    STORY_FORMAT,
    TEST_ENDPOINT,
    WEBHOOK_EXPORT_VAR,
    WEBHOOK_PATH_VAR,
    WEBHOOK_TRIGGER_VAR,
    ScenarioWebhook,
    Trigger,
    fill_route,
    is_webhook_scenario,
    read_export,
    scenario_webhook,
)
from orchestrator.target.sandbox import target_for

if TYPE_CHECKING:
    from orchestrator.config.egress_http import CheckedClient

ENRICHMENT_VAR = "enrichment_endpoint"
PROBE_ID = "orch-verify-probe"
INVALID_BODY = b'{"orchVerify": "deliberately invalid JSON'
# N8N's Webhook node authentications and the scenario's webhook_auth that sends each.
N8N_AUTH_MODES: dict[str, tuple[str, ...]] = {
    "none": ("none",),
    "headerAuth": ("api-key",),
    "basicAuth": ("basic",),
    "jwtAuth": ("jwt", "bearer"),  # jwt: signed by orch with the passphrase; bearer: a token
}
AUTH_STATUSES = (401, 403)

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Call:
    """One HTTP exchange: what was sent and what came back (no header values kept)."""

    method: str
    url: str
    status: int | None
    latency_ms: float | None
    allow: str = ""
    body: str = ""
    error: str = ""

    @property
    def shown(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status} in {self.latency_ms:.0f} ms"


@dataclass
class Probe:
    """Whether one endpoint exists, and the request that told."""

    spec: str
    url: str
    exists: bool | None  # None: the answers did not tell
    how: str
    calls: list[Call] = field(default_factory=list)


@dataclass
class EndpointCheck:
    """An endpoint a scenario needs (``variable``), and what probing found."""

    scenario: str
    variable: str
    configured: str
    probes: list[Probe]
    found: str | None
    written_to: Path | None = None

    @property
    def confirmed(self) -> bool:
        return self.found is not None and self.found == self.configured

    @property
    def problems(self) -> list[str]:
        if self.confirmed:
            return []
        if self.found is None:
            return [f"{self.scenario}: {self.variable} {self.configured!r}: no candidate exists"]
        return [
            f"{self.scenario}: {self.variable} is {self.configured!r} but the target serves "
            f"{self.found!r}; run with --write to record it"
        ]


@dataclass
class WebhookCheck:
    """An N8N webhook scenarios post to: what N8N serves for its export, and two live calls."""

    scenarios: list[str]
    environment: str
    url: str
    configured_auth: str
    webhook: ScenarioWebhook | None = None
    served_url: str = ""  # what N8N serves for the export's trigger, route parameters as :name
    test_url: str = ""  # the same while the editor listens (webhook-test)
    story_format: bool | None = None  # whether that is the story's /webhook/{workflow}/{id}
    with_auth: Call | None = None
    without_auth: Call | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    disagreement: str | None = None  # the scenario's webhook_path disagrees with the export
    written_to: Path | None = None

    @property
    def posts_to(self) -> str:
        """The path the scenario posts to, and where it comes from."""
        if self.webhook is None:
            return ""
        source = f"vars.{WEBHOOK_PATH_VAR}" if self.webhook.override else "the export"
        return f"{self.webhook.path} (from {source})"

    @property
    def auth_accepted(self) -> bool:
        return bool(self.with_auth and self.with_auth.status and 200 <= self.with_auth.status < 300)

    @property
    def auth_enforced(self) -> bool | None:
        if self.without_auth is None or self.without_auth.status is None:
            return None
        return self.without_auth.status in AUTH_STATUSES

    @property
    def auth_finding(self) -> str:
        """What the call without auth showed, in words."""
        enforced = self.auth_enforced
        if enforced is None:
            return "unknown (no answer)"
        if enforced:
            return "auth enforced"
        return "no auth required" if self.configured_auth == "none" else "auth NOT enforced"

    @property
    def confirmed(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    """Everything `orch verify` found for one environment."""

    environment: str
    kind: str
    base_url: str
    n8n_base_url: str
    started_at: str
    webhooks: list[WebhookCheck] = field(default_factory=list)
    endpoints: list[EndpointCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = [p for w in self.webhooks for p in w.problems]
        return found + [p for e in self.endpoints for p in e.problems]

    @property
    def confirmed(self) -> bool:
        """True when every endpoint a scenario needs is confirmed."""
        return not self.problems


# --------------------------------------------------------------------------- HTTP


def send(
    client: CheckedClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Call:
    """Send one request through orch's checked client; never raises for HTTP errors or
    unreachable hosts (a host outside the allow-list is a RefusedError, exit 6).

    A redirect is reported, never followed.
    """
    import httpx  # lazy: httpx loads only for commands that make HTTP calls

    started = time.perf_counter()
    try:
        response = client.request(method, url, headers=headers or {}, content=body)
    except httpx.HTTPError as exc:
        return Call(method, url, None, None, error=str(exc) or type(exc).__name__)
    latency = (time.perf_counter() - started) * 1000
    text = response.content[:4096].decode("utf-8", "replace")
    if response.is_redirect:
        text = f"redirect to {response.headers.get('Location', '?')} (not followed)"
    return Call(
        method,
        url,
        response.status_code,
        round(latency, 1),
        allow=response.headers.get("Allow", ""),
        body=text,
    )


def probe(client: CheckedClient, spec: EndpointSpec, url: str, *, headers: dict[str, str]) -> Probe:
    """Tell whether ``spec`` exists at ``url`` with the least intrusive request.

    OPTIONS first: 2xx with the method allowed means it exists, 404/410 that it does not.
    Otherwise the method itself with an invalid JSON body (GET without a body), where
    400/415/422 (rejected body), 401/403 (auth) and 429 mean it exists.
    """
    options = send(client, "OPTIONS", url, headers=headers)
    result = Probe(str(spec), url, None, "", [options])
    if options.status is not None and 200 <= options.status < 300:
        allowed = {m.strip().upper() for m in options.allow.split(",") if m.strip()}
        if not allowed or spec.method in allowed:
            result.exists, result.how = (
                True,
                f"OPTIONS {options.status}"
                + (f", Allow: {options.allow}" if options.allow else ""),
            )
            return result
        result.exists, result.how = False, f"OPTIONS {options.status}: Allow lacks {spec.method}"
        return result
    if options.status in (404, 410):
        result.exists, result.how = False, f"OPTIONS {options.status}"
        return result
    if spec.method == "DELETE":
        result.how = f"OPTIONS {options.shown}; DELETE is never sent to probe"
        return result
    body = None if spec.method == "GET" else INVALID_BODY
    sent = {"Content-Type": "application/json", **headers} if body else headers
    call = send(client, spec.method, url, headers=sent, body=body)
    result.calls.append(call)
    label = f"{spec.method} {'(invalid body) ' if body else ''}{call.shown}"
    status = call.status
    if status is None:
        result.how = f"OPTIONS {options.shown}; {label}"
    elif status in (404, 410):
        result.exists, result.how = False, label
    elif status == 405:
        result.exists, result.how = False, f"{label}: method not allowed"
    elif status < 300 or status in (400, 415, 422, 429, *AUTH_STATUSES):
        result.exists, result.how = True, label
    else:
        result.how = label
    return result


# --------------------------------------------------------------------------- N8N webhook


def _hs256_jwt(secret: str) -> str:
    """An HS256 JWT signed with ``secret`` (as ``k6_scripts/auth.js`` signs for jwt)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps({"sub": "orch-verify", "iat": now, "exp": now + 600}).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


def _auth_headers(run: ResolvedRun, mode: str, header: str, secret_var: str) -> dict[str, str]:
    """The headers the scenario sends for ``mode``; ConfigError when the secret is missing."""
    if mode == "none":
        return {}
    secret = run.secret_env.get(secret_var)
    if not secret:
        raise ConfigError(
            f"environment {run.environment_name!r}: webhook auth {mode!r} needs the secret "
            f"{secret_var}; declare it under environments.{run.environment_name}.secrets"
        )
    if mode == "api-key":
        return {header: secret}
    if mode == "bearer":
        return {"Authorization": f"Bearer {secret}"}
    if mode == "basic":
        return {"Authorization": f"Basic {base64.b64encode(secret.encode()).decode()}"}
    if mode == "jwt":
        return {"Authorization": f"Bearer {_hs256_jwt(secret)}"}
    raise ConfigError(f"unknown webhook_auth {mode!r}; use none, api-key, bearer, basic or jwt")


def _webhook_of(run: ResolvedRun, check: WebhookCheck) -> ScenarioWebhook | None:
    """The scenario's webhook; with an export orch cannot use, its override alone (if any),
    the export's problem recorded."""
    where = f"scenario {run.scenario_name!r} (environment {run.environment_name!r})"
    try:
        return scenario_webhook(run.vars, where)
    except ConfigError as exc:
        check.problems.append(exc.message)
    override = run.vars.get(WEBHOOK_PATH_VAR)
    if not override:
        return None
    try:
        return scenario_webhook({**run.vars, WEBHOOK_EXPORT_VAR: None}, where)
    except ConfigError:
        return None


def check_webhook(run: ResolvedRun, scenarios: list[str], *, client: CheckedClient) -> WebhookCheck:
    """What N8N serves for the scenario's workflow export (by N8N's rules), whether the
    scenario agrees, then one call with the configured auth and one without.

    The calls go to the URL N8N serves for the export (the scenario's own URL when it has
    no export), with the route parameters filled; the scenario's own URL is checked against
    the environment's allow-list first, as the run's script would check it.
    """
    values = run.vars
    mode = str(values.get("webhook_auth") or "none")
    check = WebhookCheck(scenarios, run.environment_name, "", mode)
    webhook = _webhook_of(run, check)
    if webhook is None:
        return check
    check.webhook = webhook
    base = run.n8n_base_url.rstrip("/")
    probe_id = f"orch-verify-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    own_url = base + fill_route(webhook.path, probe_id)
    client.policy.check_url(own_url, client.action)  # refused as the run would be
    trigger = webhook.trigger
    if trigger is None:
        check.url = own_url
        check.warnings.append(
            f"no workflow export: the URL is vars.{WEBHOOK_PATH_VAR} as written ({webhook.path}); "
            "name the export in vars.webhook_export so orch derives and checks it"
        )
    else:
        check.served_url = trigger.url(base, webhook.endpoint)
        check.test_url = trigger.url(base, TEST_ENDPOINT)
        check.story_format = trigger.story_format(webhook.endpoint)
        check.url = base + fill_route(trigger.served_path(webhook.endpoint), probe_id)
        for finding in trigger.findings("POST"):
            {"blocks": check.problems, "warning": check.warnings, "note": check.notes}[
                finding.severity
            ].append(f"{trigger.label}: {finding.text}")
        modes = N8N_AUTH_MODES.get(trigger.authentication)
        if modes is not None and mode not in modes:
            check.problems.append(
                f"the trigger's authentication is {trigger.authentication!r} "
                f"({' or '.join(modes)}) but the config says webhook_auth: {mode}"
            )
        check.disagreement = webhook.disagreement
        if check.disagreement:
            check.problems.append(check.disagreement)
    headers = _auth_headers(
        run,
        mode,
        str(values.get("webhook_auth_header") or "X-N8N-API-KEY"),
        str(values.get("webhook_secret_var") or "WEBHOOK_SECRET"),
    )
    payload = json.dumps(
        {
            "profileUrl": "https://www.linkedin.com/in/loadtest-prospect-001",
            "requestedBy": "orch-verify",
            "runId": probe_id.removeprefix("orch-"),
            "test": True,
        }
    ).encode()
    json_type = {"Content-Type": "application/json"}
    url = check.url
    check.with_auth = send(client, "POST", url, headers={**json_type, **headers}, body=payload)
    check.without_auth = send(client, "POST", url, headers=json_type, body=payload)
    status = check.with_auth.status
    if status is None:
        check.problems.append(f"webhook {url}: no answer ({check.with_auth.error})")
    elif status in AUTH_STATUSES:
        check.problems.append(
            f"webhook {url}: the configured auth ({mode}) was rejected ({status})"
        )
    elif status == 404:
        check.problems.append(f"webhook {url}: 404, not registered (is the workflow active?)")
    elif not 200 <= status < 300:
        check.problems.append(f"webhook {url}: answered {status}")
    elif not _has_field(check.with_auth.body, "executionId"):
        check.problems.append(
            f"webhook {url}: the answer has no executionId, which the scenario's check expects"
        )
    if mode != "none" and check.auth_enforced is False:
        check.warnings.append(
            f"webhook {url} accepted a call without auth ({check.without_auth.shown}): "
            "auth is not enforced"
        )
    return check


def _has_field(body: str, name: str) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get(name) not in (None, "")


# --------------------------------------------------------------------------- endpoints


def check_endpoint(
    config: OrchConfig, run: ResolvedRun, variable: str, *, client: CheckedClient
) -> EndpointCheck:
    """Probe the endpoint in ``variable`` (and, for enrichment, every candidate in order)."""
    configured = str(parse_endpoint(str(run.vars[variable])))
    specs = [configured]
    if variable == ENRICHMENT_VAR:
        candidates = [str(parse_endpoint(c)) for c in config.verify.enrichment_candidates]
        specs = candidates + ([configured] if configured not in candidates else [])
    probes = []
    for text in specs:
        spec = parse_endpoint(text)
        url = spec.url(run.base_url, run.n8n_base_url, PROBE_ID)
        probes.append(probe(client, spec, url, headers={}))
    found = next((p.spec for p in probes if p.exists), None)
    return EndpointCheck(run.scenario_name, variable, configured, probes, found)


# --------------------------------------------------------------------------- the whole check


@contextlib.contextmanager
def _target(runs: list[ResolvedRun], echo: Echo) -> Iterator[None]:
    """For a local environment with a sandbox, start it when nothing listens (as `orch run`),
    serving the N8N webhooks of every workflow export the scenarios name that can be read
    (one that cannot is a problem the webhook check reports)."""
    exports = []
    for run in runs:
        export = run.vars.get(WEBHOOK_EXPORT_VAR)
        if export and str(export) not in exports:
            try:
                read_export(Path(str(export)))
            except ConfigError:
                continue
            exports.append(str(export))
    with (
        tempfile.TemporaryDirectory(prefix="orch-verify-") as tmp,
        target_for(runs[0], Path(tmp), echo, workflows=tuple(exports)),
    ):
        yield


def verify_environment(
    config: OrchConfig, env_name: str | None = None, *, timeout: float = 10.0, echo: Echo = print
) -> VerifyReport:
    """Check every endpoint the config's scenarios need in ``env_name``."""
    name = env_name or config.defaults.environment
    environment = config.environment(name)
    refuse_production_kind(name, environment.kind, "verify endpoints")
    runs = [resolve_run(config, scenario, name) for scenario in config.scenarios]
    policy = None
    for run in runs:
        policy = guard_run(config, run, "verify endpoints")
    if not runs:
        raise ConfigError(f"{config.source} declares no scenarios, so there is nothing to verify")
    first = runs[0]
    report = VerifyReport(
        environment=name,
        kind=environment.kind,
        base_url=first.base_url,
        n8n_base_url=first.n8n_base_url,
        started_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    redact = Redactor([v for run in runs for v in run.secret_env.values()])
    assert policy is not None
    # lazy: orch's HTTP client loads httpx, which only commands that make HTTP calls need
    from orchestrator.config.egress_http import http_client

    with _target(runs, echo), http_client(policy, "verify endpoints", timeout=timeout) as client:
        webhooks: dict[str, tuple[ResolvedRun, list[str]]] = {}
        for run in runs:
            if is_webhook_scenario(run.vars):
                same = (WEBHOOK_EXPORT_VAR, WEBHOOK_TRIGGER_VAR, WEBHOOK_PATH_VAR, N8N_ENDPOINT_VAR)
                key = json.dumps([run.vars.get(k) for k in same], default=str)
                webhooks.setdefault(key, (run, []))[1].append(run.scenario_name)
        for run, scenarios in webhooks.values():
            report.webhooks.append(check_webhook(run, scenarios, client=client))
        for run in runs:
            for variable, value in run.vars.items():
                if variable.endswith(ENDPOINT_SUFFIX) and value:
                    report.endpoints.append(check_endpoint(config, run, variable, client=client))
    for webhook in report.webhooks:
        webhook.problems = [redact(p) for p in webhook.problems]
        webhook.disagreement = webhook.disagreement and redact(webhook.disagreement)
    return report


# --------------------------------------------------------------------------- --write


def write_enrichment_endpoint(config_file: Path, env_name: str, scenario: str, value: str) -> Path:
    """Set ``environments.ENV.scenarios.SCENARIO.vars.enrichment_endpoint`` in the config file."""
    return write_scenario_var(config_file, env_name, scenario, ENRICHMENT_VAR, value)


def write_webhook_path(config_file: Path, check: WebhookCheck) -> Path | None:
    """Record the path N8N serves for the export as ``environments.ENV.scenarios.SCENARIO
    .vars.webhook_path`` of each of the check's scenarios, where the scenario's own path
    disagrees with it; None when there is nothing to record."""
    webhook = check.webhook
    if not check.disagreement or webhook is None or webhook.served is None:
        return None
    for scenario in check.scenarios:
        write_scenario_var(
            config_file, check.environment, scenario, WEBHOOK_PATH_VAR, webhook.served
        )
    return config_file


def write_scenario_var(
    config_file: Path, env_name: str, scenario: str, variable: str, value: str
) -> Path:
    """Set ``environments.ENV.scenarios.SCENARIO.vars.VARIABLE`` in the config file.

    A targeted edit, so comments and layout stay as they were; the result must read as the
    old file with that one value set, and is validated, before it replaces the file.
    """
    keys = ["environments", env_name, "scenarios", scenario, "vars", variable]
    text = config_file.read_text(encoding="utf-8")
    new_text = set_yaml_value(text, keys, value)
    expected = node = yaml.safe_load(text)
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    if yaml.safe_load(new_text) != expected:
        raise SetupError(
            f"could not record {value!r} in {config_file}; set {'.'.join(keys)} by hand"
        )
    tmp = config_file.with_name(f".{config_file.name}.verify-tmp")
    tmp.write_text(new_text, encoding="utf-8")
    try:
        load_config(tmp)
        os.replace(tmp, config_file)
    finally:
        tmp.unlink(missing_ok=True)
    return config_file


def set_yaml_value(text: str, keys: list[str], value: str) -> str:
    """``text`` with the scalar at ``keys`` set to ``value`` (double-quoted), creating
    missing mappings at the end of their parent.

    ruamel.yaml's round trip makes the edit: it finds the keys, quotes a key that needs
    it, writes a new mapping in its parent's block or flow style, keeps comments and
    their columns. Only the lines around the edit are taken from its output: ruamel lays
    a few things out its own way (``{ a: 1 }`` loses its inner spaces, a plain scalar
    over several lines is joined), and every other line stays as written.
    """
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # no re-folding of long lines
    try:
        data, sequence, offset = load_yaml_guess_indent(text, yaml=rt)
    except MarkedYAMLError as exc:  # a duplicate key, say, which PyYAML lets pass
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(
            f"cannot edit the config: line {line}: {str(exc.problem).split(' with value')[0]}; "
            f"fix it, or set {'.'.join(keys)} by hand"
        ) from None
    mapping = _mapping_indent(data)
    rt.indent(mapping=mapping, sequence=sequence or mapping, offset=offset or 0)
    before = _dump(rt, data)
    node = data
    for depth, key in enumerate(keys):
        if not isinstance(node, CommentedMap):
            where = ".".join(keys[:depth]) or "the top level"
            raise ConfigError(f"{where} in the config is not a mapping")
        if key not in node:
            new: Any = DoubleQuotedScalarString(value)
            for inner in reversed(keys[depth + 1 :]):
                new = CommentedMap({inner: new})
            _append(node, key, new)
            break
        if depth < len(keys) - 1:
            node = node[key]
        elif isinstance(node[key], CommentedMap | CommentedSeq):
            raise ConfigError(f"{'.'.join(keys)} in the config is not a single value")
        else:
            node[key] = DoubleQuotedScalarString(value)
    after = _dump(rt, data)
    kept = _around_edit(text, before, after)
    try:
        same = yaml.safe_load(kept) == yaml.safe_load(after)
    except yaml.YAMLError:
        same = False
    return kept if same else after  # ruamel's whole file where the lines do not fit


def _dump(rt: YAML, data: Any) -> str:
    out = io.StringIO()
    rt.dump(data, out)
    return out.getvalue()


def _mapping_indent(data: Any) -> int:
    """How far the file indents a nested block mapping (2 when it has none)."""
    for key, value in data.items() if isinstance(data, CommentedMap) else ():
        if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
            return int(value.lc.key(next(iter(value)))[1] - data.lc.key(key)[1])
    return 2


def _last_entry(node: Any) -> tuple[Any, Any] | None:
    """The innermost last entry (collection, key or index) of a block collection: ruamel
    keeps the comment lines that follow the collection with it."""
    found = None
    while isinstance(node, CommentedMap | CommentedSeq) and node and not node.fa.flow_style():
        key = next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1
        found, node = (node, key), node[key]
    return found


def _append(mapping: CommentedMap, key: str, value: Any) -> None:
    """``mapping[key] = value`` as its last entry, placed before the comment lines that
    followed the mapping (ruamel would write it after them)."""
    last = _last_entry(mapping)
    mapping[key] = value
    if last is None:
        return
    collection, at = last
    slot = 2 if isinstance(collection, CommentedMap) else 0  # ruamel's place for it
    comment = (collection.ca.items.get(at) or [None] * 4)[slot]
    own, _, following = comment.value.partition("\n") if comment else ("", "", "")
    if following:
        comment.value = own + "\n"
        collection, at = _last_entry(mapping) or (mapping, key)
        moved = CommentToken("\n" + following, CommentMark(0), None)
        collection.ca.items[at] = [None, None, moved, None]


def _around_edit(original: str, before: str, after: str) -> str:
    """``original`` with the lines ruamel changed from ``before`` to ``after``, widened to
    the nearest lines ruamel wrote as they were in ``original``."""
    lines, old, new = (t.splitlines(keepends=True) for t in (original, before, after))
    same: dict[int, int] = {}  # a line of ``before`` -> the same line of the original
    for a, b, size in SequenceMatcher(None, lines, old, autojunk=False).get_matching_blocks():
        same.update((b + i, a + i) for i in range(size))

    def at(gap: int) -> int | None:
        """Where the gap before line ``gap`` of ``before`` is in the original, if known."""
        if gap == 0 or gap == len(old):
            return 0 if gap == 0 else len(lines)
        return same[gap - 1] + 1 if gap - 1 in same else same.get(gap)

    opcodes = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    changes = [op for op in opcodes if op[0] != "equal"]
    if not changes:
        return original
    i1, j1, i2, j2 = changes[0][1], changes[0][3], changes[-1][2], changes[-1][4]
    while (start := at(i1)) is None:
        i1, j1 = i1 - 1, j1 - 1
    while (end := at(i2)) is None:
        i2, j2 = i2 + 1, j2 + 1
    return "".join(lines[:start] + new[j1:j2] + lines[end:])


# --------------------------------------------------------------------------- the record


def render_markdown(report: VerifyReport) -> str:
    """The Markdown record of a verification, for the story's documentation."""
    verdict = "all endpoints confirmed" if report.confirmed else "NOT confirmed"
    out = [
        f"# Endpoint verification: {report.environment}",
        "",
        f"- **Verdict:** {verdict}",
        f"- **Environment:** `{report.environment}` (kind {report.kind})",
        f"- **API base URL:** {report.base_url}",
        f"- **N8N base URL:** {report.n8n_base_url}",
        f"- **Checked at:** {report.started_at}",
        "",
    ]
    for hook in report.webhooks:
        out += [f"## N8N webhook ({', '.join(hook.scenarios)})", ""]
        out += webhook_lines(hook, markdown=True)
        out += [
            f"- URL called: `{hook.url}` (configured auth: {hook.configured_auth})",
            "",
            "| call | status | latency | meaning |",
            "|---|---|---|---|",
        ]
        if hook.with_auth:
            meaning = "accepted" if hook.auth_accepted else "not accepted"
            out.append(_call_row("with configured auth", hook.with_auth, meaning))
        if hook.without_auth:
            out.append(_call_row("without auth", hook.without_auth, hook.auth_finding))
        if hook.written_to:
            out.append(
                f"- Written to `{hook.written_to.name}`: environments.{report.environment}"
                f".scenarios.({', '.join(hook.scenarios)}).vars.{WEBHOOK_PATH_VAR} = "
                f"`{hook.webhook.served if hook.webhook else ''}`"
            )
        out += [""] + [f"- Problem: {p}" for p in hook.problems]
        out += [f"- Warning: {w}" for w in hook.warnings]
        out += [f"- Note: {n}" for n in hook.notes] + [""]
    for check in report.endpoints:
        out += [f"## {check.scenario}: `{check.variable}`", ""]
        out += ["| endpoint | exists | how we know |", "|---|---|---|"]
        for p in check.probes:
            exists = {True: "yes", False: "no", None: "unclear"}[p.exists]
            out.append(f"| `{p.spec}` | {exists} | {p.how} |")
        out += ["", f"- Configured: `{check.configured}`", f"- Found: `{check.found or 'none'}`"]
        if check.written_to:
            out.append(
                f"- Written to `{check.written_to.name}` (environments.{report.environment}"
                f".scenarios.{check.scenario}.vars.{check.variable})"
            )
        out += [f"- Problem: {p}" for p in check.problems] + [""]
    out += [f"- Note: {n}" for n in report.notes]
    return "\n".join(out).rstrip() + "\n"


def webhook_lines(hook: WebhookCheck, *, markdown: bool = False) -> list[str]:
    """What N8N serves for the scenario's export, in words (the record's and the terminal's)."""

    def code(text: str) -> str:
        return f"`{text}`" if markdown else text

    webhook = hook.webhook
    if webhook is None:
        return ["- No URL: the scenario names no usable workflow export or webhook_path"]
    lines = []
    trigger = webhook.trigger
    if trigger is not None:
        modes = " or ".join(N8N_AUTH_MODES.get(trigger.authentication, ("none orch has",)))
        story = "yes" if hook.story_format else f"no; N8N serves {code(hook.served_url)}"
        lines += [
            f"- Workflow export: {code(trigger.export)}, workflow {trigger.workflow_name!r}, "
            f"node {trigger.node!r} (path {code(trigger.path)}, webhookId "
            f"{code(trigger.webhook_id or 'none')})",
            f"- N8N serves: {', '.join(trigger.methods)} {code(hook.served_url)} (N8N's rules: "
            f"{N8N_RULES})",
            f"- While the editor listens: {code(hook.test_url)}",
            f"- The story's {code(STORY_FORMAT)}: {story}",
            f"- Authentication: {trigger.authentication} (sent as webhook_auth {modes})",
            f"- Options: {_options(trigger)}",
        ]
    lines.append(f"- The scenario posts to: {code(hook.posts_to)}")
    return lines


def _options(trigger: Trigger) -> str:
    parts = []
    if trigger.ip_whitelist:
        parts.append(f"IP(s) Whitelist {', '.join(trigger.ip_whitelist)}")
    if trigger.ignore_bots:
        parts.append("Ignore Bots")
    if trigger.allowed_origins:
        parts.append(f"Allowed Origins {trigger.allowed_origins} (CORS, browsers only)")
    return "; ".join(parts) or "none that turn requests away"


def _call_row(label: str, call: Call, meaning: str) -> str:
    latency = f"{call.latency_ms:.0f} ms" if call.latency_ms is not None else "-"
    status = str(call.status) if call.status is not None else f"none ({call.error})"
    return f"| {label} | {status} | {latency} | {meaning} |"


def save_record(report: VerifyReport, results_dir: Path) -> Path:
    """Write ``results/verify_<UTC timestamp>_<env>.md`` and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"verify_{stamp}_{report.environment}.md"
        path.write_text(render_markdown(report), encoding="utf-8")
    except OSError as exc:
        raise SetupError(
            f"cannot write the verification record in {results_dir}: {exc.strerror}; "
            "make it writable or set defaults.results_dir"
        ) from None
    return path

"""`orch verify ENV`: check the endpoints the scenarios assume against the real target.

For every scenario of the config, resolved for the environment:

- an N8N webhook (variables ``workflow_name`` and ``webhook_id``): read the trigger node from
  the workflow export (path, HTTP method, authentication), compare it with the config, then
  send one real test call with the configured auth and one without;
- each endpoint variable (``*_endpoint``, ``"METHOD /path"``): probe it with the least
  intrusive request that tells existence apart: ``OPTIONS``, else the method with a
  deliberately invalid JSON body (never a real enrichment); ``enrichment_endpoint`` probes
  every candidate of ``verify.enrichment_candidates`` in order and reports which exists.

:func:`verify_environment` returns a :class:`VerifyReport` and prints nothing;
:func:`write_enrichment_endpoint` records a finding in the config file with a targeted edit
that keeps its comments and layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

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
from orchestrator.target.sandbox import target_for

if TYPE_CHECKING:
    from orchestrator.config.egress_http import CheckedClient

ENRICHMENT_VAR = "enrichment_endpoint"
PROBE_ID = "orch-verify-probe"
INVALID_BODY = b'{"orchVerify": "deliberately invalid JSON'
N8N_WEBHOOK_TYPE = "n8n-nodes-base.webhook"
# N8N's webhook authentication options and the scenario's webhook_auth they correspond to.
N8N_AUTH_MODES = {
    "none": "none",
    "headerAuth": "api-key",
    "jwtAuth": "bearer",
    "basicAuth": "basic",
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
class WebhookTrigger:
    """The webhook trigger node of an N8N workflow export."""

    node: str
    path: str
    method: str
    authentication: str

    @property
    def auth_mode(self) -> str:
        return N8N_AUTH_MODES.get(self.authentication, self.authentication)


@dataclass
class WebhookCheck:
    """The N8N webhook: its declaration in the export and two live calls."""

    scenarios: list[str]
    url: str
    configured_auth: str
    workflow_file: Path
    trigger: WebhookTrigger | None = None
    url_pattern: str = ""
    with_auth: Call | None = None
    without_auth: Call | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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


# --------------------------------------------------------------------------- N8N export


def read_webhook_trigger(path: Path, workflow_name: str) -> WebhookTrigger:
    """The webhook trigger node of an N8N export (for ``workflow_name`` when there are several)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"workflow file {path} does not exist; export the workflow from N8N "
            "(Workflow > Download) or set verify.workflow_file in the config"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"workflow file {path} is not a readable N8N export: {exc}") from None
    workflows = data if isinstance(data, list) else [data]
    nodes = [
        node
        for wf in workflows
        if isinstance(wf, dict)
        for node in wf.get("nodes") or []
        if isinstance(node, dict) and node.get("type") == N8N_WEBHOOK_TYPE
    ]
    if not nodes:
        raise ConfigError(f"workflow file {path} has no webhook trigger node ({N8N_WEBHOOK_TYPE})")

    def path_of(node: dict[str, Any]) -> str:
        return str((node.get("parameters") or {}).get("path") or "").strip("/")

    matching = [n for n in nodes if path_of(n).split("/")[0] == workflow_name]
    if len(matching) != 1 and len(nodes) != 1:
        raise ConfigError(
            f"workflow file {path} has {len(nodes)} webhook nodes and "
            f"{len(matching)} under the path {workflow_name!r}; keep one"
        )
    node = matching[0] if len(matching) == 1 else nodes[0]
    params = node.get("parameters") or {}
    return WebhookTrigger(
        node=str(node.get("name") or "Webhook"),
        path=path_of(node),
        method=str(params.get("httpMethod") or "GET").upper(),  # N8N's default is GET
        authentication=str(params.get("authentication") or "none"),
    )


def url_pattern(n8n_base_url: str, trigger: WebhookTrigger) -> str:
    """The URL the trigger listens on, with ``:param`` segments shown as ``{param}``."""
    segments = [f"{{{s[1:]}}}" if s.startswith(":") else s for s in trigger.path.split("/")]
    return f"{n8n_base_url.rstrip('/')}/webhook/{'/'.join(segments)}"


def _pattern_matches(pattern: str, url: str) -> bool:
    want = urlsplit(pattern).path.strip("/").split("/")
    got = urlsplit(url).path.strip("/").split("/")
    return len(want) == len(got) and all(
        w == g or (w.startswith("{") and w.endswith("}")) for w, g in zip(want, got, strict=True)
    )


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
    raise ConfigError(f"unknown webhook_auth {mode!r}; use none, api-key or bearer")


def check_webhook(
    config: OrchConfig, run: ResolvedRun, scenarios: list[str], *, client: CheckedClient
) -> WebhookCheck:
    """Compare the N8N export with the config, then call the webhook with and without auth."""
    values = run.vars
    url = f"{run.n8n_base_url}/webhook/{values['workflow_name']}/{values['webhook_id']}"
    mode = str(values.get("webhook_auth") or "none")
    check = WebhookCheck(
        scenarios=scenarios,
        url=url,
        configured_auth=mode,
        workflow_file=config.root / config.verify.workflow_file,
    )
    try:
        trigger = read_webhook_trigger(check.workflow_file, str(values["workflow_name"]))
    except ConfigError as exc:
        check.problems.append(exc.message)
    else:
        check.trigger = trigger
        check.url_pattern = url_pattern(run.n8n_base_url, trigger)
        if not _pattern_matches(check.url_pattern, url):
            check.problems.append(
                f"the scenario posts to {url}, which the trigger's pattern "
                f"{check.url_pattern} does not match"
            )
        if trigger.method != "POST":
            check.problems.append(
                f"the trigger accepts {trigger.method}, but the scenario sends POST; set the "
                "Webhook node's HTTP Method to POST"
            )
        if trigger.auth_mode != mode:
            check.problems.append(
                f"the trigger's authentication is {trigger.authentication!r} "
                f"({trigger.auth_mode}) but the config says webhook_auth: {mode}"
            )
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
            "runId": f"verify-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
            "test": True,
        }
    ).encode()
    json_type = {"Content-Type": "application/json"}
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
def _target(run: ResolvedRun, echo: Echo) -> Iterator[None]:
    """For a local environment with a sandbox, start it when nothing listens (as `orch run`)."""
    with (
        tempfile.TemporaryDirectory(prefix="orch-verify-") as tmp,
        target_for(run, Path(tmp), echo),
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

    with _target(first, echo), http_client(policy, "verify endpoints", timeout=timeout) as client:
        webhooks: dict[str, tuple[ResolvedRun, list[str]]] = {}
        for run in runs:
            if "workflow_name" in run.vars and "webhook_id" in run.vars:
                key = f"{run.vars['workflow_name']}/{run.vars['webhook_id']}"
                webhooks.setdefault(key, (run, []))[1].append(run.scenario_name)
        for run, scenarios in webhooks.values():
            report.webhooks.append(check_webhook(config, run, scenarios, client=client))
        for run in runs:
            for variable, value in run.vars.items():
                if variable.endswith(ENDPOINT_SUFFIX) and value:
                    report.endpoints.append(check_endpoint(config, run, variable, client=client))
    for webhook in report.webhooks:
        webhook.problems = [redact(p) for p in webhook.problems]
    return report


# --------------------------------------------------------------------------- --write


def write_enrichment_endpoint(config_file: Path, env_name: str, scenario: str, value: str) -> Path:
    """Set ``environments.ENV.scenarios.SCENARIO.vars.enrichment_endpoint`` in the config file.

    A targeted text edit, so comments and layout stay as they were; the result is parsed
    and validated before it replaces the file.
    """
    keys = ["environments", env_name, "scenarios", scenario, "vars", ENRICHMENT_VAR]
    text = config_file.read_text(encoding="utf-8")
    new_text = set_yaml_value(text, keys, value)
    data = yaml.safe_load(new_text)
    node: Any = data
    for key in keys:
        node = node[key]
    if node != value:
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
    """``text`` with the scalar at ``keys`` set to ``value``, creating missing mappings."""
    node = yaml.compose(text)
    quoted = json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar
    for depth, key in enumerate(keys):
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{'.'.join(keys[:depth])} in the config is not a mapping")
        child = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        if child is None:
            return _insert(text, node, keys[depth:], quoted)
        if depth == len(keys) - 1:
            if not isinstance(child, yaml.ScalarNode):
                raise ConfigError(f"{'.'.join(keys)} in the config is not a single value")
            start, end = child.start_mark.index, child.end_mark.index
            return text[:start] + quoted + text[end:]
        node = child
    return text


def _insert(text: str, mapping: yaml.MappingNode, keys: list[str], quoted: str) -> str:
    if mapping.flow_style or not mapping.value:
        fragment = quoted
        for key in reversed(keys):
            fragment = f"{{{key}: {fragment}}}"
        inner = fragment[1:-1]
        close = text.rindex("}", 0, mapping.end_mark.index)
        sep = ", " if mapping.value else ""
        return text[:close] + sep + inner + text[close:]
    indent = mapping.value[0][0].start_mark.column
    last: yaml.Node = mapping.value[-1][1]
    while isinstance(last, yaml.MappingNode | yaml.SequenceNode) and not last.flow_style:
        items = last.value
        if not items:
            break
        last = items[-1][1] if isinstance(last, yaml.MappingNode) else items[-1]
    line_end = text.find("\n", last.end_mark.index)
    at = len(text) if line_end == -1 else line_end
    lines = [
        " " * (indent + 2 * i) + f"{key}:" + (f" {quoted}" if i == len(keys) - 1 else "")
        for i, key in enumerate(keys)
    ]
    return text[:at] + "\n" + "\n".join(lines) + text[at:]


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
        if hook.trigger:
            t = hook.trigger
            out += [
                f"- Workflow file: `{hook.workflow_file.name}`, node `{t.node}`",
                f"- Trigger: `{t.method}` path `{t.path}`, authentication `{t.authentication}`",
                f"- URL pattern: `{hook.url_pattern}`",
            ]
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
        out += [""] + [f"- Problem: {p}" for p in hook.problems]
        out += [f"- Warning: {w}" for w in hook.warnings] + [""]
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

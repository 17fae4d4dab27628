"""N8N webhook triggers as N8N itself serves them, derived from a workflow export.

One place derives, from the Webhook node (``n8n-nodes-base.webhook``) of an N8N export, the
URL N8N serves, the HTTP methods it listens for, the authentication it checks and the node
options that would turn a load test away. ``orch run`` renders the scenario's URL from it,
``orch verify`` reports it, and the embedded sandbox routes N8N webhooks with it, so the
local check tests these rules rather than an assumption.

The rules are N8N's own, from n8n 1.x–2.x:

- URL: ``packages/workflow/src/node-helpers.ts`` (package ``n8n-workflow``),
  ``NodeHelpers.getNodeWebhookUrl`` and ``getNodeWebhookPath``, ported as
  :func:`node_webhook_url` and :func:`node_webhook_path`. The Webhook node declares its
  webhook with ``isFullPath: true``, so:

  * a path with route parameters (``:name``) on a node with a ``webhookId`` is served at
    ``/{endpoint}/{webhookId}/{path}``;
  * a static path on a node with a ``webhookId`` at ``/{endpoint}/{path}`` (an empty path
    at ``/{endpoint}/{webhookId}``);
  * a node without a ``webhookId`` at
    ``/{endpoint}/{workflowId}/{lower-cased, URL-encoded node name}/{path}``.

  ``{endpoint}`` is ``webhook`` in production and ``webhook-test`` while the editor
  listens; the server's ``N8N_ENDPOINT_WEBHOOK`` and ``N8N_ENDPOINT_WEBHOOK_TEST`` change
  them (orch: the variable ``n8n_endpoint_webhook``, per environment).
- The node (``packages/nodes-base/nodes/Webhook/``): ``httpMethod`` (default ``GET``; with
  ``multipleMethods`` a list, default ``GET`` and ``POST``), ``path``, ``authentication``
  (``none``, ``basicAuth``, ``headerAuth``, ``jwtAuth``) and the options ``ipWhitelist``
  (comma-separated; other addresses get 403), ``ignoreBots`` (403 to a User-Agent that
  looks like a bot, which k6's default ``Grafana k6/…`` does) and ``allowedOrigins`` (CORS
  headers for browsers; it turns no k6 request away).
- Routing, for the sandbox (``packages/cli/src/webhooks/webhook.service.ts``,
  ``findWebhook``): the path after the endpoint, trailing ``/`` removed, is looked up as a
  static path first; else its first segment is taken as a ``webhookId`` and the webhook with
  that id, that method and as many further segments, whose static segments all occur in
  the request, is chosen (:class:`WebhookRouter`).
"""  # noqa: RUF002 (an en dash: the version range, as cited)

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from orchestrator.core import ConfigError

N8N_RULES = "n8n 1.x–2.x, packages/workflow/src/node-helpers.ts"
WEBHOOK_NODE_TYPE = "n8n-nodes-base.webhook"
PRODUCTION_ENDPOINT = "webhook"  # N8N_ENDPOINT_WEBHOOK
TEST_ENDPOINT = "webhook-test"  # N8N_ENDPOINT_WEBHOOK_TEST
DEFAULT_METHOD = "GET"
DEFAULT_MULTIPLE_METHODS = ("GET", "POST")
AUTH_KINDS = ("none", "basicAuth", "headerAuth", "jwtAuth")
# The story's assumption about the URL, reported by `orch verify`.
STORY_FORMAT = "/webhook/{workflow}/{id}"

# Scenario variables: the export, the trigger node in it, an explicit path for a team
# without an export, and the server's production endpoint (N8N_ENDPOINT_WEBHOOK).
WEBHOOK_EXPORT_VAR = "webhook_export"  # resolved against the config's folder (resolve_run)
WEBHOOK_TRIGGER_VAR = "webhook_trigger"
WEBHOOK_PATH_VAR = "webhook_path"
N8N_ENDPOINT_VAR = "n8n_endpoint_webhook"

# JavaScript's encodeURIComponent leaves these unescaped (besides letters and digits).
_URI_COMPONENT_SAFE = "-_.!~*'()"
_OVERRIDE = re.compile(r"/[^\s?#]*")

Severity = Literal["blocks", "warning", "note"]


def encode_uri_component(text: str) -> str:
    """JavaScript's ``encodeURIComponent``."""
    return quote(text, safe=_URI_COMPONENT_SAFE)


def node_webhook_path(
    workflow_id: str, node_name: str, webhook_id: str | None, path: str, is_full_path: bool
) -> str:
    """``NodeHelpers.getNodeWebhookPath`` (without the Wait node's restart webhook)."""
    if webhook_id is None:
        return f"{workflow_id}/{encode_uri_component(node_name.lower())}/{path}"
    if is_full_path:
        return path or webhook_id
    return f"{webhook_id}/{path}"


def has_route_parameters(path: str) -> bool:
    """N8N's test for a dynamic path: ``path.startsWith(':') || path.includes('/:')``."""
    return path.startswith(":") or "/:" in path


def node_webhook_url(
    base_url: str,
    workflow_id: str,
    node_name: str,
    webhook_id: str | None,
    path: str,
    is_full_path: bool = True,
) -> str:
    """``NodeHelpers.getNodeWebhookUrl``: ``base_url`` is ``{N8N url}/{endpoint}``."""
    if has_route_parameters(path) and webhook_id:
        is_full_path = False  # N8N: "setting this to false to prefix the webhookId"
    if path.startswith("/"):
        path = path[1:]
    return f"{base_url}/{node_webhook_path(workflow_id, node_name, webhook_id, path, is_full_path)}"


def route_parameters(path: str) -> tuple[str, ...]:
    """The names of a path's route parameters (``:name``, or ``{name}`` in an override)."""
    return tuple(name for segment in path.split("/") if (name := _parameter(segment)))


def _parameter(segment: str) -> str:
    if segment.startswith(":"):
        return segment[1:] or ":"
    if len(segment) > 2 and segment.startswith("{") and segment.endswith("}"):
        return segment[1:-1]
    return ""


def fill_route(path: str, value: str) -> str:
    """``path`` with every route parameter replaced by ``value`` (URL-encoded), as the
    scenario's script does per request (``k6_scripts/n8n.js``)."""
    return "/".join(
        encode_uri_component(value) if _parameter(segment) else segment
        for segment in path.split("/")
    )


def same_route(a: str, b: str) -> bool:
    """Whether two paths route alike: equal segments, parameters in the same places."""
    left, right = a.rstrip("/").split("/"), b.rstrip("/").split("/")
    return len(left) == len(right) and all(
        (bool(_parameter(x)) and bool(_parameter(y))) or x == y
        for x, y in zip(left, right, strict=True)
    )


@dataclass(frozen=True)
class Finding:
    """Something in the export that matters to a load test; ``blocks`` means N8N would turn
    the scenario's requests away."""

    severity: Severity
    text: str


@dataclass(frozen=True)
class Trigger:
    """One Webhook node of an N8N export, and what N8N derives from it."""

    export: str  # the export's file name, for messages
    workflow_id: str
    workflow_name: str
    workflow_active: bool | None
    node: str
    webhook_id: str | None
    path: str  # the node's Path parameter as written
    methods: tuple[str, ...]
    authentication: str
    ip_whitelist: tuple[str, ...] = ()
    ignore_bots: bool = False
    allowed_origins: str = ""
    disabled: bool = False

    @property
    def label(self) -> str:
        return f"{self.export}, node {self.node!r}"

    @property
    def is_dynamic(self) -> bool:
        """Served with its route parameters (only a node with a webhookId is)."""
        return has_route_parameters(self.path) and bool(self.webhook_id)

    def url(self, n8n_base_url: str, endpoint: str = PRODUCTION_ENDPOINT) -> str:
        """The URL N8N serves, route parameters left as ``:name``."""
        if self.webhook_id is None and not self.workflow_id:
            raise ConfigError(
                f"{self.label}: the node has no webhookId and the export no workflow id, so "
                "the URL N8N serves cannot be derived; export the workflow again from N8N "
                "(Workflow menu > Download, or n8n export:workflow --id=…)"
            )
        base = f"{n8n_base_url.rstrip('/')}/{endpoint.strip('/')}"
        return node_webhook_url(base, self.workflow_id, self.node, self.webhook_id, self.path)

    def served_path(self, endpoint: str = PRODUCTION_ENDPOINT) -> str:
        """The URL path N8N serves (from ``/``), route parameters as ``:name``."""
        return self.url("", endpoint)

    def registered_path(self) -> str:
        """The webhook path N8N stores for routing (``webhookPath``, without the endpoint)."""
        path = node_webhook_path(self.workflow_id, self.node, self.webhook_id, self.path, True)
        return path.strip("/")

    def accepts(self, method: str) -> bool:
        return method.upper() in self.methods

    def findings(self, method: str = "POST") -> list[Finding]:
        """What would turn a load test that sends ``method`` away, and what is worth saying."""
        found: list[Finding] = []
        if self.disabled:
            found.append(
                Finding(
                    "blocks",
                    f"node {self.node!r} is disabled: N8N registers no webhook for it (404); "
                    "enable it",
                )
            )
        if not self.accepts(method):
            found.append(
                Finding(
                    "blocks",
                    f"the trigger listens for {', '.join(self.methods)}, but the scenario sends "
                    f"{method}; set the Webhook node's HTTP Method to {method}",
                )
            )
        if has_route_parameters(self.path) and not self.webhook_id:
            found.append(
                Finding(
                    "blocks",
                    f"the path {self.path!r} has route parameters but the node has no "
                    "webhookId: N8N registers it as a static path, so only the literal "
                    "':…' segment matches; export the workflow from a current N8N",
                )
            )
        if self.authentication not in AUTH_KINDS:
            found.append(
                Finding(
                    "blocks",
                    f"authentication {self.authentication!r} is not one orch can send "
                    f"({', '.join(AUTH_KINDS)}); use one of those in the test workflow",
                )
            )
        if self.ignore_bots:
            found.append(
                Finding(
                    "blocks",
                    "option Ignore Bots is on: N8N answers 403 to a User-Agent that looks like "
                    "a bot, and k6's (Grafana k6/…) does; turn it off in the test workflow",
                )
            )
        if self.ip_whitelist:
            found.append(
                Finding(
                    "warning",
                    f"option IP(s) Whitelist ({', '.join(self.ip_whitelist)}): N8N answers 403 "
                    "'IP is not whitelisted' to any other address; list the address the load "
                    "generator sends from",
                )
            )
        if self.allowed_origins not in ("", "*"):
            found.append(
                Finding(
                    "note",
                    f"option Allowed Origins ({self.allowed_origins}) sets CORS headers for "
                    "browsers only; it turns no k6 request away",
                )
            )
        if self.workflow_active is False:
            found.append(
                Finding(
                    "warning",
                    f"workflow {self.workflow_name!r} is inactive in this export: N8N serves "
                    "production webhooks of active workflows only (404 otherwise)",
                )
            )
        return found

    def story_format(self, endpoint: str = PRODUCTION_ENDPOINT) -> bool:
        """Whether N8N serves it in the story's form ``/webhook/{workflow}/{id}``: the
        endpoint, one fixed segment, one route parameter."""
        segments = self.served_path(endpoint).strip("/").split("/")
        return (
            endpoint == PRODUCTION_ENDPOINT
            and len(segments) == 3
            and not _parameter(segments[1])
            and bool(_parameter(segments[2]))
        )


# --------------------------------------------------------------------------- reading exports


def read_export(path: Path) -> list[Trigger]:
    """Every Webhook node of an N8N export (one workflow, or a list of them, as
    ``n8n export:workflow`` writes); a :class:`ConfigError` naming the fix otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"workflow export {path} does not exist; export the workflow from N8N (Workflow "
            "menu > Download, or n8n export:workflow --id=ID --output=FILE) and name it in "
            f"the scenario's vars.{WEBHOOK_EXPORT_VAR}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"workflow export {path} is not a readable N8N export: {exc}") from None
    triggers = triggers_in(data, path.name)
    if not triggers:
        raise ConfigError(
            f"workflow export {path} has no webhook trigger node ({WEBHOOK_NODE_TYPE})"
        )
    return triggers


def triggers_in(data: Any, export: str) -> list[Trigger]:
    """The Webhook nodes of parsed export data."""
    workflows = data if isinstance(data, list) else [data]
    found = []
    for workflow in workflows:
        if not isinstance(workflow, dict):
            continue
        for node in workflow.get("nodes") or []:
            if isinstance(node, dict) and node.get("type") == WEBHOOK_NODE_TYPE:
                found.append(_trigger(workflow, node, export))
    return found


def _trigger(workflow: Mapping[str, Any], node: Mapping[str, Any], export: str) -> Trigger:
    name = str(node.get("name") or "Webhook")
    where = f"{export}, node {name!r}"
    params = node.get("parameters") or {}
    options = params.get("options") or {}
    path = _fixed(params.get("path", ""), f"{where}: the path", "webhook_path")
    active = workflow.get("active")
    webhook_id = node.get("webhookId")
    return Trigger(
        export=export,
        workflow_id=str(workflow.get("id") or ""),
        workflow_name=str(workflow.get("name") or ""),
        workflow_active=active if isinstance(active, bool) else None,
        node=name,
        webhook_id=None if webhook_id is None else str(webhook_id),
        path=path,
        methods=_http_methods(params, where),
        authentication=_fixed(params.get("authentication") or "none", where, "webhook_auth"),
        ip_whitelist=_whitelist(options.get("ipWhitelist")),
        ignore_bots=options.get("ignoreBots") is True,
        allowed_origins=str(options.get("allowedOrigins") or ""),
        disabled=node.get("disabled") is True,
    )


def _fixed(value: Any, where: str, variable: str) -> str:
    text = str(value if value is not None else "")
    if text.startswith("="):
        raise ConfigError(
            f"{where} is an N8N expression ({text[:60]}); orch cannot evaluate it: write a "
            f"fixed value in the node, or set vars.{variable} yourself"
        )
    return text


def _http_methods(params: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = params.get("httpMethod")
    if params.get("multipleMethods") is True:
        value = value or list(DEFAULT_MULTIPLE_METHODS)
    if value is None or value == "":
        return (DEFAULT_METHOD,)
    values = value if isinstance(value, list) else [value]
    return tuple(_fixed(m, f"{where}: the HTTP method", "webhook_path").upper() for m in values)


def _whitelist(value: Any) -> tuple[str, ...]:
    entries = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(entry for entry in (str(e).strip() for e in entries) if entry)


def select_trigger(triggers: list[Trigger], node: str | None, export: str) -> Trigger:
    """The trigger named ``node`` (any when the export has one only)."""
    if node:
        named = [t for t in triggers if t.node == node]
        if len(named) == 1:
            return named[0]
        if not named:
            known = ", ".join(repr(t.node) for t in triggers)
            raise ConfigError(
                f"workflow export {export} has no webhook trigger named {node!r} (it has "
                f"{known}); set vars.{WEBHOOK_TRIGGER_VAR} to one of them"
            )
        raise ConfigError(
            f"workflow export {export} has {len(named)} webhook triggers named {node!r} (in "
            f"{', '.join(repr(t.workflow_name) for t in named)}); export one workflow only"
        )
    if len(triggers) == 1:
        return triggers[0]
    known = ", ".join(repr(t.node) for t in triggers)
    raise ConfigError(
        f"workflow export {export} has {len(triggers)} webhook triggers ({known}); name the "
        f"one the scenario posts to in vars.{WEBHOOK_TRIGGER_VAR}"
    )


# --------------------------------------------------------------------------- a scenario's webhook


@dataclass(frozen=True)
class ScenarioWebhook:
    """The webhook a scenario posts to: from its export (and trigger), or its override."""

    path: str  # the URL path the scenario posts to, route parameters as :name (or {name})
    endpoint: str
    trigger: Trigger | None = None
    export: Path | None = None
    override: str | None = None

    @property
    def served(self) -> str | None:
        """The path N8N serves for the export's trigger (None without an export)."""
        return self.trigger.served_path(self.endpoint) if self.trigger else None

    @property
    def disagreement(self) -> str | None:
        """Why the override and the export disagree, if they do."""
        served = self.served
        if self.override is None or served is None or same_route(self.override, served):
            return None
        return (
            f"vars.{WEBHOOK_PATH_VAR} is {self.override!r} but N8N serves the export's trigger "
            f"({self.trigger.label if self.trigger else ''}) at {served!r}; remove "
            f"vars.{WEBHOOK_PATH_VAR} to use the export, or run `orch verify --write`"
        )


def is_webhook_scenario(values: Mapping[str, Any]) -> bool:
    """Whether a scenario posts to an N8N webhook trigger (names an export or a path)."""
    return bool(values.get(WEBHOOK_EXPORT_VAR) or values.get(WEBHOOK_PATH_VAR))


def scenario_webhook(values: Mapping[str, Any], where: str) -> ScenarioWebhook:
    """The webhook of a scenario's resolved variables (``webhook_export`` is a path already
    resolved against the config's folder); ConfigError naming the variable otherwise."""
    endpoint = str(values.get(N8N_ENDPOINT_VAR) or PRODUCTION_ENDPOINT).strip("/")
    if not endpoint or not re.fullmatch(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*", endpoint):
        raise ConfigError(
            f"{where}: vars.{N8N_ENDPOINT_VAR} {endpoint!r} is not an N8N endpoint; write the "
            "server's N8N_ENDPOINT_WEBHOOK (default: webhook)"
        )
    override = values.get(WEBHOOK_PATH_VAR) or None
    if override is not None and not (isinstance(override, str) and _OVERRIDE.fullmatch(override)):
        raise ConfigError(
            f"{where}: vars.{WEBHOOK_PATH_VAR} {override!r} is not a URL path; write the path N8N "
            "serves, starting with '/', without spaces, '?' or '#' (e.g. "
            "/webhook/<webhookId>/linkedin-scraper/:uniqueId)"
        )
    export_value = values.get(WEBHOOK_EXPORT_VAR) or None
    trigger = None
    export = None
    if export_value is not None:
        export = Path(str(export_value))
        node = values.get(WEBHOOK_TRIGGER_VAR) or None
        trigger = select_trigger(read_export(export), node and str(node), export.name)
    if override is not None:
        return ScenarioWebhook(override, endpoint, trigger, export, override)
    if trigger is None:
        raise ConfigError(
            f"{where}: name the N8N workflow export in vars.{WEBHOOK_EXPORT_VAR} (or, without an "
            f"export, the URL path N8N serves in vars.{WEBHOOK_PATH_VAR})"
        )
    return ScenarioWebhook(trigger.served_path(endpoint), endpoint, trigger, export)


# --------------------------------------------------------------------------- routing (sandbox)


@dataclass(frozen=True)
class Route:
    """A webhook N8N registered: one trigger, one method."""

    trigger: Trigger
    method: str
    segments: tuple[str, ...]  # the registered path's segments

    @property
    def key(self) -> str:
        """How the sandbox's stats name it: ``POST /webhook/<id>/linkedin-scraper/:uniqueId``."""
        return f"{self.method} {self.trigger.served_path()}"


@dataclass
class WebhookRouter:
    """N8N's lookup of a production webhook (``WebhookService.findWebhook``)."""

    routes: list[Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._static: dict[tuple[str, str], Route] = {}
        self._dynamic: dict[tuple[str, str, int], list[Route]] = {}
        self._methods: dict[str, set[str]] = {}
        for route in self.routes:
            self._index(route)

    @classmethod
    def of(cls, triggers: Iterable[Trigger]) -> WebhookRouter:
        routes = []
        for trigger in triggers:
            if trigger.disabled or trigger.workflow_active is False:
                continue  # N8N registers no production webhook for these
            segments = tuple(trigger.registered_path().split("/"))
            routes += [Route(trigger, method, segments) for method in trigger.methods]
        return cls(routes)

    def _index(self, route: Route) -> None:
        path = "/".join(route.segments)
        trigger = route.trigger
        if has_route_parameters(path) and trigger.webhook_id:
            key = (trigger.webhook_id, route.method, len(route.segments))
            self._dynamic.setdefault(key, []).append(route)
            self._methods.setdefault(f"{trigger.webhook_id}/{path}", set()).add(route.method)
        else:
            self._static.setdefault((route.method, path), route)
            self._methods.setdefault(path, set()).add(route.method)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request path (after the endpoint) and its route parameters."""
        path = path.strip("/")
        static = self._static.get((method, path))
        if static is not None:
            return static, {}
        first, _, rest = path.partition("/")
        others = rest.split("/") if rest else []
        candidates = self._dynamic.get((first, method, len(others)))
        if not candidates:
            return None
        present = set(others)
        best: Route | None = None
        most = 0
        for route in candidates:
            fixed = [s for s in route.segments if not s.startswith(":")]
            if all(s in present for s in fixed) and len(fixed) > most:
                best, most = route, len(fixed)
            elif not fixed and best is None:
                best = route  # N8N: a path of parameters only matches anything
        if best is None:
            return None
        params = {
            s[1:]: value
            for s, value in zip(best.segments, others, strict=True)
            if s.startswith(":")
        }
        return best, params

    def methods(self, path: str) -> list[str]:
        """The methods any webhook serves at a request path (for OPTIONS and N8N's 404 hint)."""
        path = path.strip("/")
        found = set(self._methods.get(path, set()))
        first, _, rest = path.partition("/")
        others = rest.split("/") if rest else []
        for (webhook_id, method, length), routes in self._dynamic.items():
            if webhook_id == first and length == len(others):
                for route in routes:
                    fixed = [s for s in route.segments if not s.startswith(":")]
                    if all(s in others for s in fixed):
                        found.add(method)
        return sorted(found)

    @property
    def needs_secret(self) -> bool:
        return any(r.trigger.authentication != "none" for r in self.routes)

"""The embedded sandbox: a local stand-in of the product's HTTP API, bound to loopback only.

It serves what the shipped scenarios hit, with the behaviour that matters under load:

- the N8N webhooks of the workflow exports it is given (``workflows/linkedin-scraper.json``
  for ``orch run linkedin-scrape``), routed as N8N routes them and checking the
  authentication each trigger declares, with the node's IP whitelist and Ignore Bots
  options (:mod:`orchestrator.target.n8n`), answering 200 with an ``executionId``; a path
  N8N would not serve gets N8N's 404;
- one AI-enrichment endpoint, the configured ``enrichment_variant`` (the others 404), behind
  a token-bucket rate limit that answers 429 with ``Retry-After`` like the Claude API tiers;
- an email queue: ``POST /campaigns/{id}/emails`` and ``GET /campaigns/{id}/queue``;
- ``GET /health``; ``GET /__sandbox/stats`` and ``POST /__sandbox/reset`` (counters per
  endpoint and status, and per N8N webhook served from an export, so tests can check k6's
  counts against what the sandbox sent, and where it sent them);
- ``GET /__sandbox/identity?nonce=N``: the proof that this is the orch sandbox whose token
  orch knows (an HMAC of the nonce under a per-process token, never the token itself), so
  ``orch run`` never takes another program on the port for its sandbox
  (:func:`identify`, :func:`known_sandbox`).

``OPTIONS`` on a route that exists answers 204 with ``Allow``, and an invalid JSON body
answers 400 before any work, so verification can probe without side effects.

The app is raw ASGI on uvicorn (uvloop + httptools where installed) in one process: k6
needs the other core. The hot path does a split, a dict lookup, a JSON parse and one send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from orchestrator.config import (
    ENDPOINT_NAMES,
    N8N_ENRICHMENT_WORKFLOW,
    SandboxSettings,
    settings_from_mapping,
)
from orchestrator.core import ConfigError, SetupError
from orchestrator.target.n8n import (
    N8N_ENDPOINT_VAR,
    PRODUCTION_ENDPOINT,
    WEBHOOK_EXPORT_VAR,
    Route,
    WebhookRouter,
    read_export,
)

if TYPE_CHECKING:  # the sandbox's child process does not load the configuration model
    from orchestrator.config import ResolvedRun

SETTINGS_ENV = "ORCH_SANDBOX_SETTINGS"  # the child process reads its settings (JSON) here
READY_FILE_ENV = "ORCH_SANDBOX_READY_FILE"  # the child writes {"port", "pid"} here once bound
PARENT_PID_ENV = "ORCH_SANDBOX_PARENT_PID"  # the child exits when this parent is gone
TOKEN_ENV = "ORCH_SANDBOX_TOKEN"  # the child's identity token, chosen by the parent
N8N_ENV = "ORCH_SANDBOX_N8N"  # the N8N workflow exports the child serves (JSON)
IDENTITY_PATH = "/__sandbox/identity"
SERVICE_NAME = "orch-sandbox"
CHILD_MODULE = "orchestrator.target.sandbox_child"  # what start_sandbox runs with python -m

MAX_BODY_BYTES = 1 << 20
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


# --------------------------------------------------------------------------- the ASGI app

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_ALLOW_POST = (b"allow", b"POST, OPTIONS")
_ALLOW_GET = (b"allow", b"GET, OPTIONS")
_BAD_JSON = object()
_decode_json = json.JSONDecoder().decode


class _TokenBucket:
    """Requests/minute with a burst capacity; refills continuously."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst)
        self.limit = per_minute
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token; return 0.0 when granted, else the seconds until one is free."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class N8NWorkflows:
    """The N8N workflow exports whose webhooks the sandbox serves, as N8N would with the
    server endpoint ``endpoint`` (``N8N_ENDPOINT_WEBHOOK``)."""

    exports: tuple[str, ...] = ()
    endpoint: str = PRODUCTION_ENDPOINT

    def router(self) -> WebhookRouter:
        """The exports' webhooks (ConfigError for an export that cannot be read)."""
        return WebhookRouter.of(t for export in self.exports for t in read_export(Path(export)))

    def to_json(self) -> str:
        return json.dumps({"exports": list(self.exports), "endpoint": self.endpoint})

    @classmethod
    def from_json(cls, text: str | None) -> N8NWorkflows:
        data = json.loads(text) if text else {}
        exports = tuple(str(e) for e in data.get("exports") or ())
        return cls(exports, str(data.get("endpoint") or PRODUCTION_ENDPOINT))

    @classmethod
    def of_run(cls, run: ResolvedRun, exports: tuple[str, ...] | None = None) -> N8NWorkflows:
        """``exports``, else the one the run's scenario names (resolved against the config),
        with the run's N8N endpoint."""
        runs = run.flows or [run]  # a mix: every flow's export
        if exports is None:
            owns = [r.vars.get(WEBHOOK_EXPORT_VAR) for r in runs]
            exports = tuple(str(own) for own in owns if isinstance(own, str) and own)
        endpoint = next(
            (str(r.vars[N8N_ENDPOINT_VAR]) for r in runs if r.vars.get(N8N_ENDPOINT_VAR)),
            PRODUCTION_ENDPOINT,
        ).strip("/")
        return cls(tuple(dict.fromkeys(exports)), endpoint)


class SandboxApp:
    """The sandbox as a raw ASGI 3 application."""

    def __init__(
        self,
        settings: SandboxSettings,
        secret: str | None,
        token: str | None = None,
        *,
        webhooks: WebhookRouter | None = None,
        n8n_endpoint: str = PRODUCTION_ENDPOINT,
    ) -> None:
        self.settings = settings
        self._secret = secret.encode() if secret is not None else None
        self._token = (token or new_token()).encode()
        self._auth = settings.webhook_auth
        self._key_header = settings.webhook_api_key_header.lower().encode()
        self._router = webhooks or WebhookRouter()
        self._n8n_prefix = f"/{n8n_endpoint.strip('/')}/"
        self._variant = settings.enrichment_variant
        self._rng = random.Random(settings.seed)
        self._error_rate = settings.error_rate
        median = settings.latency_ms_median
        self._lat_mu = math.log(median) if median > 0 else None
        ratio = settings.latency_ms_p95 / median if median > 0 else 1.0
        self._lat_sigma = math.log(ratio) / 1.6448536269514722
        self._extra_ms = {
            name: settings.endpoint_latency_ms.get(name, 0.0) for name in ENDPOINT_NAMES
        }
        self._limited = frozenset(settings.rate_limited_endpoints)
        self._bucket: _TokenBucket | None = None
        if settings.rate_limit_per_minute is not None:
            burst = settings.rate_limit_burst or settings.rate_limit_per_minute
            self._bucket = _TokenBucket(settings.rate_limit_per_minute, burst)
        self._drain = settings.email_send_rate_per_second
        self._queues: dict[str, list[float]] = {}  # campaign -> [depth, stamp, enqueued]
        self._started = time.time()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (not the rate-limit bucket or the email queues)."""
        self._counts: dict[tuple[str, int], int] = {}
        self._route_counts: dict[tuple[str, int], int] = {}
        self._work = {"webhook_executions": 0, "enrichments": 0, "emails_queued": 0}
        self._injected = 0
        self._next_id = 0

    def stats(self) -> dict[str, Any]:
        """Counters per endpoint and status since start or the last reset."""
        by_endpoint: dict[str, dict[str, Any]] = {}
        by_status: dict[str, int] = {}
        total = 0
        for (endpoint, status), count in sorted(self._counts.items()):
            entry = by_endpoint.setdefault(endpoint, {"total": 0, "by_status": {}})
            entry["total"] += count
            entry["by_status"][str(status)] = count
            by_status[str(status)] = by_status.get(str(status), 0) + count
            total += count
        routes: dict[str, dict[str, Any]] = {}
        for (key, status), count in sorted(self._route_counts.items()):
            entry = routes.setdefault(key, {"total": 0, "by_status": {}})
            entry["total"] += count
            entry["by_status"][str(status)] = count
        return {
            "total": total,
            "by_endpoint": by_endpoint,
            # per N8N webhook served from an export: "POST /webhook/<webhookId>/path/:param"
            "n8n_webhooks": routes,
            "by_status": by_status,
            "rate_limited": by_status.get("429", 0),
            "errors_injected": self._injected,
            "work": dict(self._work),
            "enrichment_variant": self._variant,
            "uptime_s": round(time.time() - self._started, 3),
        }

    # -- hot path ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        parts = path.split("/")
        n = len(parts)
        endpoint = ""
        ident = ""
        allow = _ALLOW_POST
        allowed = "POST"
        if (
            n == 4
            and parts[1] == "webhook"
            and parts[2] == N8N_ENRICHMENT_WORKFLOW
            and parts[3]
            and self._variant == "n8n"
        ):
            endpoint, ident = "enrichment", parts[3]
        elif path.startswith(self._n8n_prefix):
            # routed on the path as sent (still URL-encoded), as N8N derives its URLs
            raw = scope.get("raw_path")
            sent = raw.decode("latin-1") if raw else path
            await self._n8n_webhook(scope, receive, send, method, sent[len(self._n8n_prefix) :])
            return
        elif n == 4 and parts[1] == "prospects" and parts[2]:
            if (parts[3] == "enrichment" and self._variant == "prospects-enrichment") or (
                parts[3] == "enrich" and self._variant == "prospects-enrich"
            ):
                endpoint, ident = "enrichment", parts[2]
        elif n == 2 and parts[1] == "enrichment" and self._variant == "enrichment":
            endpoint = "enrichment"
        elif n == 4 and parts[1] == "campaigns" and parts[2]:
            if parts[3] == "emails":
                endpoint, ident = "email-enqueue", parts[2]
            elif parts[3] == "queue":
                endpoint, ident, allow, allowed = "email-queue", parts[2], _ALLOW_GET, "GET"
        elif n == 2 and parts[1] == "health":
            if method == "GET":
                body = b'{"status":"ok","service":"orch-sandbox","pid":%d}' % os.getpid()
                await _respond(send, 200, body)
            else:
                await _respond(send, 405, b'{"error":"method not allowed"}', (_ALLOW_GET,))
            return
        elif n == 3 and parts[1] == "__sandbox":
            await self._control(send, method, parts[2], scope.get("query_string", b""))
            return
        if not endpoint:
            self._count("unmatched", 404)
            await _respond(send, 404, b'{"error":"not found"}')
            return
        if method == "OPTIONS":
            self._count(endpoint, 204)
            await _respond(send, 204, b"", (allow,))
            return
        if method != allowed:
            self._count(endpoint, 405)
            await _respond(send, 405, b'{"error":"method not allowed"}', (allow,))
            return
        status, body, headers = await self._handle(scope, receive, endpoint, ident)
        delay = self._delay_ms(endpoint)
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        self._count(endpoint, status)
        await _respond(send, status, body, headers)

    async def _handle(
        self, scope: Scope, receive: Receive, endpoint: str, ident: str
    ) -> tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]:
        """Auth, body, rate limit, error injection, then the endpoint's own answer."""
        if self._auth != "none" and self._variant == "n8n" and endpoint == "enrichment":
            denied = self._check_auth(scope)
            if denied is not None:
                return denied, _AUTH_BODIES[denied], ()
        payload: Any = None
        if endpoint != "email-queue":
            payload = await _read_json(receive)
            if payload is _BAD_JSON:
                return 400, b'{"error":"invalid JSON body"}', ()
        if (refusal := self._limit_or_fail(endpoint)) is not None:
            return refusal
        self._next_id += 1
        if endpoint == "enrichment":
            if not ident:
                prospect = payload.get("prospectId") if isinstance(payload, dict) else None
                if not isinstance(prospect, str | int) or prospect == "":
                    self._next_id -= 1
                    return 400, b'{"error":"prospectId is required"}', ()
                ident = str(prospect)
            self._work["enrichments"] += 1
            data: dict[str, Any] = {
                "enrichmentId": f"enr_{self._next_id}",
                "prospectId": ident,
                "status": "queued",
            }
            if self._variant == "n8n":
                data["executionId"] = str(self._next_id)
            return 202, json.dumps(data, separators=(",", ":")).encode(), ()
        if endpoint == "email-enqueue":
            emails = payload.get("emails") if isinstance(payload, dict) else None
            queued = len(emails) if isinstance(emails, list) else 1
            self._work["emails_queued"] += queued
            depth = self._queue(ident, queued)
            body = b'{"campaignId":%s,"queued":%d,"queueDepth":%d}' % (
                json.dumps(ident).encode(),
                queued,
                depth,
            )
            return 202, body, ()
        depth = self._queue(ident, 0)
        entry = self._queues.get(ident)
        sent = int(entry[2]) - depth if entry else 0
        data = {
            "campaignId": ident,
            "queueDepth": depth,
            "sent": sent,
            "status": "processing" if depth else "idle",
        }
        return 200, json.dumps(data, separators=(",", ":")).encode(), ()

    def _check_auth(self, scope: Scope) -> int | None:
        """None when the request carries the right credential, else 401 (none) or 403."""
        want = self._key_header if self._auth == "api-key" else b"authorization"
        given = None
        for name, value in scope["headers"]:
            if name == want:
                given = value
                break
        if given is None:
            return 401
        assert self._secret is not None
        if self._auth == "api-key":
            return None if hmac.compare_digest(given, self._secret) else 403
        scheme, _, token = given.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return 401
        token = token.strip()
        if hmac.compare_digest(token, self._secret) or _valid_hs256_jwt(token, self._secret):
            return None
        return 403

    def _limit_or_fail(self, endpoint: str) -> tuple[int, bytes, Any] | None:
        """A 429 when ``endpoint`` is rate limited and over its budget, an injected 500 at the
        configured error rate, else None (the request goes on)."""
        if self._bucket is not None and endpoint in self._limited:
            wait = self._bucket.take()
            if wait > 0.0:
                return 429, _RATE_LIMITED_BODY, self._rate_headers(wait)
        if self._error_rate and self._rng.random() < self._error_rate:
            self._injected += 1
            return 500, b'{"error":"internal server error (injected by the sandbox)"}', ()
        return None

    def _rate_headers(self, wait: float) -> tuple[tuple[bytes, bytes], ...]:
        assert self._bucket is not None
        retry = max(1, math.ceil(wait))
        return (
            (b"retry-after", b"%d" % retry),
            (b"anthropic-ratelimit-requests-limit", b"%d" % self._bucket.limit),
            (b"anthropic-ratelimit-requests-remaining", b"0"),
        )

    def _delay_ms(self, endpoint: str) -> float:
        delay = self._extra_ms[endpoint]
        if self._lat_mu is not None:
            delay += self._rng.lognormvariate(self._lat_mu, self._lat_sigma)
        return min(delay, 60_000.0)

    def _queue(self, campaign: str, add: int) -> int:
        """Drain the campaign's queue to now, add ``add`` emails, return the depth."""
        now = time.monotonic()
        entry = self._queues.get(campaign)
        if entry is None:
            if add == 0:
                return 0
            if len(self._queues) >= 10_000:
                self._prune(now)
            entry = self._queues[campaign] = [0.0, now, 0.0]
        entry[0] = max(0.0, entry[0] - (now - entry[1]) * self._drain) + add
        entry[1] = now
        entry[2] += add
        return math.ceil(entry[0])

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._queues.items() if e[0] - (now - e[1]) * self._drain <= 0]:
            del self._queues[key]

    def _count(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        self._counts[key] = self._counts.get(key, 0) + 1

    async def _control(self, send: Send, method: str, action: str, query: bytes = b"") -> None:
        if action == "identity" and method == "GET":
            nonce = parse_qs(query.decode("latin-1")).get("nonce", [""])[0]
            if not 16 <= len(nonce) <= 128:
                await _respond(send, 400, b'{"error":"give ?nonce= (16 to 128 characters)"}')
                return
            body = {"service": SERVICE_NAME, "pid": os.getpid(),
                    "proof": identity_proof(self._token, nonce)}  # fmt: skip
            await _respond(send, 200, json.dumps(body).encode())
        elif action == "stats" and method == "GET":
            await _respond(send, 200, json.dumps(self.stats()).encode())
        elif action == "reset" and method == "POST":
            self.reset()
            await _respond(send, 200, b'{"reset":true}')
        else:
            await _respond(send, 404, b'{"error":"not found"}')

    async def _n8n_not_registered(self, send: Send, method: str, path: str) -> None:
        """N8N's 404 (``WebhookNotFoundError``), naming the methods the path does take."""
        self._count("unmatched", 404)
        methods = self._router.methods(path)
        if methods:
            text = (
                f"This webhook is not registered for {method} requests. Did you mean to make "
                f"a {' or '.join(methods)} request?"
            )
        else:
            text = f'The requested webhook "{method} {path}" is not registered.'
        message = {
            "code": 404,
            "message": text,
            "hint": "The workflow must be active for a production URL to run successfully.",
        }
        await _respond(send, 404, json.dumps(message).encode())

    # -- N8N webhooks served from workflow exports -------------------------------------

    async def _n8n_webhook(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> None:
        """A request under N8N's webhook endpoint, routed as N8N routes it."""
        path = path.rstrip("/")  # N8N removes a trailing slash
        if method == "OPTIONS":
            methods = self._router.methods(path)
            if not methods:
                await self._n8n_not_registered(send, method, path)
                return
            self._count("webhook", 204)
            allow = ", ".join([*methods, "OPTIONS"]).encode()
            await _respond(send, 204, b"", ((b"allow", allow),))
            return
        found = self._router.find(method, path)
        if found is None:
            await self._n8n_not_registered(send, method, path)
            return
        route, params = found
        params = {name: unquote(value) for name, value in params.items()}
        status, body, headers = await self._webhook(scope, receive, route, params)
        delay = self._delay_ms("webhook")
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        self._count("webhook", status)
        key = (route.key, status)
        self._route_counts[key] = self._route_counts.get(key, 0) + 1
        await _respond(send, status, body, headers)

    async def _webhook(
        self, scope: Scope, receive: Receive, route: Route, params: dict[str, str]
    ) -> tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]:
        """The Webhook node's checks in N8N's order (IP whitelist, Ignore Bots, the
        authentication), then the sandbox's body, rate limit and error injection."""
        trigger = route.trigger
        client = scope.get("client") or ("", 0)
        if trigger.ip_whitelist and not ip_whitelisted(trigger.ip_whitelist, str(client[0])):
            return 403, b'{"code":403,"message":"IP is not whitelisted to access the webhook!"}', ()
        if trigger.ignore_bots and looks_like_bot(_header(scope, b"user-agent")):
            return 403, _AUTH_BODIES[403], _AUTH_CHALLENGE
        denied = self._check_n8n_auth(scope, trigger.authentication)
        if denied is not None:
            return denied[0], denied[1], _AUTH_CHALLENGE
        payload = await _read_json(receive)
        if payload is _BAD_JSON:
            return 400, b'{"error":"invalid JSON body"}', ()
        if (refusal := self._limit_or_fail("webhook")) is not None:
            return refusal
        self._next_id += 1
        self._work["webhook_executions"] += 1
        body = b'{"executionId":"%d","status":"queued","params":%s}' % (
            self._next_id,
            json.dumps(params, separators=(",", ":")).encode(),
        )
        return 200, body, ()

    def _check_n8n_auth(self, scope: Scope, kind: str) -> tuple[int, bytes] | None:
        """The Webhook node's authentication check (N8N's validateWebhookAuthentication):
        None when the request passes, else N8N's status and message."""
        if kind == "none":
            return None
        if self._secret is None:
            return 500, b'{"code":500,"message":"No authentication data defined on node!"}'
        if kind == "headerAuth":  # a missing header is 403 too, as in N8N
            given = _header(scope, self._key_header)
            if given is None or not hmac.compare_digest(given, self._secret):
                return 403, _AUTH_BODIES[403]
            return None
        authorization = _header(scope, b"authorization")
        if kind == "basicAuth":
            scheme, _, encoded = (authorization or b"").partition(b" ")
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except ValueError:
                decoded = b""
            if scheme.lower() != b"basic" or b":" not in decoded:
                return 401, _AUTH_BODIES[401]
            return None if hmac.compare_digest(decoded, self._secret) else (403, _AUTH_BODIES[403])
        if kind == "jwtAuth":
            pieces = (authorization or b"").split(b" ")
            token = pieces[1] if len(pieces) > 1 else b""
            if not token:
                return 401, b'{"code":401,"message":"No token provided"}'
            return None if _valid_hs256_jwt(token, self._secret) else (403, _AUTH_BODIES[403])
        return 500, b'{"code":500,"message":"the sandbox cannot check this authentication"}'


_AUTH_BODIES = {
    401: b'{"code":401,"message":"Authorization is required!"}',
    403: b'{"code":403,"message":"Authorization data is wrong!"}',
}
_RATE_LIMITED_BODY = (
    b'{"type":"error","error":{"type":"rate_limit_error",'
    b'"message":"Rate limit exceeded (sandbox token bucket); retry after Retry-After seconds."}}'
)
_AUTH_CHALLENGE = ((b"www-authenticate", b'Basic realm="Webhook"'),)  # as N8N answers
# User-Agents N8N's Ignore Bots option turns away: the node uses the `isbot` package; this
# is a short stand-in for it that, like it, counts k6's default (Grafana k6/…) and
# command-line clients as bots.
_BOT = re.compile(
    rb"bot|crawl|spider|slurp|preview|headless|k6|curl|wget|python|httpx|go-http-client|"
    rb"okhttp|java/|libwww|axios|node-fetch",
    re.IGNORECASE,
)


def looks_like_bot(user_agent: bytes | None) -> bool:
    """Whether Ignore Bots turns this User-Agent away (see ``_BOT``)."""
    return bool(user_agent) and _BOT.search(user_agent or b"") is not None


def ip_whitelisted(whitelist: tuple[str, ...], address: str) -> bool:
    """The Webhook node's IP(s) Whitelist: an entry that is a network contains the address;
    any other entry matches as a substring of it, as N8N's ``isIpWhitelisted`` does."""
    for entry in whitelist:
        try:
            if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            if entry in address:
                return True
    return False


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _respond(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    out = [_JSON, (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def _read_json(receive: Receive) -> Any:
    """The request body parsed as JSON; None when empty; ``_BAD_JSON`` when not JSON."""
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body"):
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return _BAD_JSON
    if not body:
        return None
    try:
        return _decode_json(body.decode())  # str input skips json.loads' encoding sniffing
    except ValueError:  # includes UnicodeDecodeError
        return _BAD_JSON


def _b64url_decode(part: bytes) -> bytes:
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _valid_hs256_jwt(token: bytes, secret: bytes) -> bool:
    """True for an HS256 JWT signed with ``secret`` whose ``exp`` (if any) is in the future."""
    pieces = token.split(b".")
    if len(pieces) != 3:
        return False
    try:
        header = json.loads(_b64url_decode(pieces[0]))
        claims = json.loads(_b64url_decode(pieces[1]))
        signature = _b64url_decode(pieces[2])
    except ValueError:
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return False
    expected = hmac.new(secret, pieces[0] + b"." + pieces[1], hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return False
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return not (isinstance(exp, int | float) and exp < time.time())


# --------------------------------------------------------------------------- serving


def _read_secret(settings: SandboxSettings, webhooks: WebhookRouter | None = None) -> str | None:
    """The key (or ``user:password``, or JWT passphrase) the webhooks are checked with."""
    routes = webhooks.routes if webhooks else []
    needs = [r.trigger for r in routes if r.trigger.authentication != "none"]
    if settings.webhook_auth == "none" and not needs:
        return None
    secret = os.environ.get(settings.webhook_secret_env)
    if not secret:
        why = (
            f"the sandbox's webhook_auth is {settings.webhook_auth!r}"
            if settings.webhook_auth != "none"
            else f"the workflow export's trigger ({needs[0].label}) uses {needs[0].authentication}"
        )
        raise SetupError(
            f"{why} but the environment variable {settings.webhook_secret_env} is not set; "
            "export it with the expected key (basicAuth: user:password; jwtAuth: the HS256 "
            "passphrase)"
        )
    return secret


def _bind(settings: SandboxSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name == "posix":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SetupError(
            f"the sandbox cannot listen on {settings.host} port {settings.port}: "
            f"{exc.strerror or exc}; stop whatever uses that port or choose another "
            "(--port, or sandbox.port in orch.yaml)"
        ) from None
    sock.setblocking(False)
    return sock


def serve(
    settings: SandboxSettings,
    *,
    on_ready: Callable[[str], None] | None = None,
    token: str | None = None,
    n8n: N8NWorkflows | None = None,
) -> None:
    """Serve the sandbox in the foreground until SIGINT/SIGTERM (blocking).

    ``on_ready`` gets the base URL once the socket listens (useful with ``port=0``).
    ``token`` is the identity token (a new one when None); it is recorded for this user
    (:func:`identity_file`) while the sandbox serves, so any orch of this user can tell
    this sandbox from another program on its port. ``n8n`` names the workflow exports
    whose webhooks it serves.
    """
    import uvicorn

    n8n = n8n or N8NWorkflows()
    webhooks = n8n.router()
    secret = _read_secret(settings, webhooks)
    sock = _bind(settings)
    port = int(sock.getsockname()[1])
    url = settings.url_for(port)
    token = token or new_token()
    app = SandboxApp(settings, secret, token, webhooks=webhooks, n8n_endpoint=n8n.endpoint)
    registered = _register(settings.host, port, token)
    config = uvicorn.Config(
        app,
        loop="auto",  # uvloop where installed
        http="auto",  # httptools where installed
        ws="none",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    try:
        with _sigterm_as_exit():
            server.run(sockets=[sock])
    finally:
        sock.close()
        if registered is not None:
            _unregister(registered)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM ends the process through SystemExit, so ``finally`` blocks run (uvicorn shuts
    down on SIGTERM, then raises it again with the handler it found: this one)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def is_listening(url: str, timeout: float = 0.25) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- identity


def new_token() -> str:
    """A fresh per-process identity token."""
    return secrets.token_hex(16)


def identity_proof(token: bytes, nonce: str) -> str:
    """What the sandbox answers to ``nonce``: HMAC-SHA256 of it under the token."""
    return hmac.new(token, nonce.encode(), hashlib.sha256).hexdigest()


def identity_dir() -> Path:
    """This user's folder of running sandboxes' identity files: ``$XDG_RUNTIME_DIR/orch``,
    else ``<temp>/orch-<uid>`` (made private to the user)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "orch"
    uid = getattr(os, "getuid", lambda: None)()
    suffix = str(uid) if uid is not None else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"orch-{suffix}"


def identity_file(host: str, port: int) -> Path:
    """The identity file of the sandbox serving on ``host:port``."""
    safe = host.replace(":", "_").strip("[]")
    return identity_dir() / f"sandbox-{safe}-{port}.json"


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is a real folder only this user can write (POSIX); made if absent."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    if os.name != "posix":
        return path.is_dir()
    import stat

    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _register(host: str, port: int, token: str) -> Path | None:
    """Record this sandbox's pid and token for this user; None when that is not possible
    (it still serves; only orch cannot recognise it on a port it did not start)."""
    folder = identity_dir()
    if not _private_dir(folder):
        return None
    for old in folder.glob("sandbox-*.json"):  # files of sandboxes that were killed
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if not _pid_alive(int(json.loads(old.read_text(encoding="utf-8"))["pid"])):
                old.unlink()
    path = identity_file(host, port)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"pid": os.getpid(), "host": host, "port": port, "token": token}, out)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return None
    return path


def _unregister(path: Path) -> None:
    """Remove this process's identity file (not one a newer sandbox wrote since)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


def identify(url: str, token: str, timeout: float = 1.0) -> int | None:
    """The pid of the orch sandbox holding ``token`` that answers at ``url``, else None.

    One plain GET of the identity path with a fresh nonce: no auth header, no cookie, no
    secret of any kind goes to whatever listens there, and a redirect is not followed.
    """
    import http.client

    parts = urlsplit(url)
    if not parts.hostname:
        return None
    nonce = secrets.token_hex(16)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", f"{IDENTITY_PATH}?nonce={nonce}")
        response = conn.getresponse()
        data = json.loads(response.read(4096) or b"{}")
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    if response.status != 200 or not isinstance(data, dict):
        return None
    expected = identity_proof(token.encode(), nonce)
    proof = data.get("proof")
    pid = data.get("pid")
    if not isinstance(proof, str) or not hmac.compare_digest(proof, expected):
        return None
    return pid if isinstance(pid, int) else None


@dataclass(frozen=True)
class KnownSandbox:
    """An orch sandbox of this user that proved its identity on a port."""

    url: str
    pid: int
    token: str


def known_sandbox(url: str) -> KnownSandbox | None:
    """The orch sandbox of this user serving at ``url`` (its identity file names the token,
    and it proves it holds that token), else None."""
    parts = urlsplit(url)
    if not parts.hostname or not _private_dir(identity_dir()):
        return None
    path = identity_file(parts.hostname, parts.port or 80)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        token = str(data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    pid = identify(url, token)
    if pid is None or pid != data.get("pid"):
        return None
    return KnownSandbox(url, pid, token)


class SandboxProcess:
    """A sandbox running in a child process; a context manager that stops it on exit."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        log_path: Path | None,
        token: str | None = None,
    ) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self.token = token

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def terminate(self) -> None:
        """SIGTERM the child without waiting for it (:meth:`stop` waits)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM the child, kill it after ``timeout`` seconds; return its exit code."""
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(
    settings: SandboxSettings,
    *,
    log_path: Path | None = None,
    n8n: N8NWorkflows | None = None,
) -> SandboxProcess:
    """Start the sandbox in a child process (:data:`CHILD_MODULE`); wait for ``/health``.

    ``n8n`` names the N8N workflow exports whose webhooks it serves (none by default).
    Raises :class:`SetupError` naming the port when it cannot start (e.g. port in use),
    :class:`ConfigError` when an export cannot be read.
    """
    n8n = n8n or N8NWorkflows()
    _read_secret(settings, n8n.router())  # fail here, in the parent, with the clear message
    if settings.port and is_listening(settings.url_for(settings.port)):
        raise SetupError(
            f"port {settings.port} on {settings.host} is already in use, so the sandbox cannot "
            "start there; stop what listens on it or choose another port (sandbox.port)"
        )
    fd, ready_name = tempfile.mkstemp(prefix="orch-sandbox-", suffix=".json")
    os.close(fd)
    ready = Path(ready_name)
    ready.unlink()
    env = dict(os.environ)
    env[SETTINGS_ENV] = settings.model_dump_json()
    env[N8N_ENV] = n8n.to_json()
    env[READY_FILE_ENV] = str(ready)
    env[PARENT_PID_ENV] = str(os.getpid())
    token = new_token()
    env[TOKEN_ENV] = token
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=log or subprocess.PIPE,
            # its own session: a terminal's Ctrl-C reaches orch, which stops k6 first and
            # the sandbox after it (the sandbox also stops itself if orch dies)
            start_new_session=True,
        )
    finally:
        if log is not None:
            log.close()
    sandbox = None
    try:
        sandbox = _wait_until_ready(process, settings, ready, log_path, token)
        return sandbox
    finally:
        ready.unlink(missing_ok=True)
        if sandbox is None:
            SandboxProcess(process, "", log_path).stop(1.0)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    settings: SandboxSettings,
    ready: Path,
    log_path: Path | None,
    token: str,
) -> SandboxProcess:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    port: int | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = _child_output(process, log_path)
            raise SetupError(
                f"the sandbox exited (code {process.returncode}) before serving on "
                f"{settings.host} port {settings.port or '(any)'}: {detail}"
            )
        if port is None and ready.exists():
            try:
                port = int(json.loads(ready.read_text())["port"])
            except (ValueError, KeyError, OSError):
                port = None
        if port is not None and identify(settings.url_for(port), token) == process.pid:
            if process.stderr is not None:  # no log file: stop collecting output
                threading.Thread(target=process.stderr.read, daemon=True).start()
            return SandboxProcess(process, settings.url_for(port), log_path, token)
        time.sleep(0.02)
    raise SetupError(
        f"the sandbox did not answer /health on {settings.host} port "
        f"{port or settings.port} within {START_TIMEOUT_SECONDS:.0f} s; "
        + (f"see {log_path}" if log_path else "run `orch sandbox` by hand to see why")
    )


def _child_output(process: subprocess.Popen[bytes], log_path: Path | None) -> str:
    text = ""
    if process.stderr is not None:
        text = process.stderr.read().decode(errors="replace")
    elif log_path is not None and log_path.exists():
        text = log_path.read_text(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _watch_parent(parent_pid: int) -> None:
    """Stop this process (gracefully, via SIGTERM) when the parent that started it is gone."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


# --------------------------------------------------------------------------- a run's target


class TargetWatch:
    """Watches the sandbox a run relies on; :meth:`lost` says whether it stopped.

    A thread checks every half second (the child's exit, or the pid of a sandbox orch did
    not start), so the note can say when it stopped.

    A sandbox started for the run is stopped when the load ends. Its shutdown takes about
    0.3 s (uvicorn's, then Python's); a caller that calls :meth:`defer_stop` has it only
    signalled then, does other work (the report), and waits with :meth:`wait_stopped`.
    """

    INTERVAL_S = 0.5

    def __init__(
        self,
        url: str | None = None,
        pid: int | None = None,
        process: subprocess.Popen[bytes] | None = None,
        token: str | None = None,
        sandbox: SandboxProcess | None = None,
    ) -> None:
        self.url, self.pid, self.process, self.token = url, pid, process, token
        self.sandbox = sandbox  # the sandbox started for this run, stopped when it ends
        self.stop_deferred = False
        self.started = time.monotonic()
        self.lost_after_s: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if pid is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="sandbox-watch")
            self._thread.start()

    def _gone(self) -> bool:
        if self.process is not None:
            return self.process.poll() is not None
        return self.pid is not None and not _pid_alive(self.pid)

    def _loop(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            if self._gone():
                self.lost_after_s = time.monotonic() - self.started
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def defer_stop(self) -> None:
        """When the load ends, only signal the sandbox started for the run to stop; the
        caller must call :meth:`wait_stopped`."""
        self.stop_deferred = True

    def wait_stopped(self) -> None:
        """Wait until the sandbox started for the run has stopped (kill it if it hangs)."""
        if self.sandbox is not None:
            self.sandbox.stop()

    def lost(self) -> str | None:
        """A note naming the sandbox when it stopped (or stopped answering) during the run."""
        if self.pid is None:
            return None
        gone = self.lost_after_s is not None or self._gone()
        if not gone and self.url and self.token and identify(self.url, self.token) is None:
            gone = True  # alive but no longer answering as itself
        if not gone:
            return None
        after = self.lost_after_s
        when = f" {after:.1f} s after the run began" if after is not None else ""
        code = self.process.poll() if self.process is not None else None
        how = f" (exit code {code})" if code is not None else ""
        return (
            f"the sandbox at {self.url} (pid {self.pid}) stopped{when}{how}: what k6 measured "
            "after that is connection errors, not the target's behaviour; see sandbox.log"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (owned by another user) or cannot tell
    return True


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
Echo = Callable[[str], None]


@contextlib.contextmanager
def target_for(
    run: ResolvedRun, run_dir: Path, echo: Echo, *, workflows: tuple[str, ...] | None = None
) -> Iterator[TargetWatch]:
    """The target of a local run with a sandbox: an orch sandbox already serving at its URL
    (one that proves its identity), else one started here. Anything else listening there
    is refused (SetupError, exit 4) and is sent nothing but the identity check.

    A sandbox started here serves the N8N webhooks of the workflow exports ``workflows``,
    by default the one the run's scenario names (``vars.webhook_export``)."""
    if run.environment.kind != "local" or run.environment.sandbox is None:
        yield TargetWatch()
        return
    parts = urlsplit(run.base_url)
    if is_listening(run.base_url):
        known = known_sandbox(run.base_url)
        if known is None:
            raise SetupError(
                f"port {parts.port} on {parts.hostname} is taken by another program: it is not "
                "an orch sandbox of this user (orch sent it no key and none of the run's "
                f"requests); stop it or change environments.{run.environment_name}.base_url"
            )
        echo(f"target: the orch sandbox already serving at {run.base_url} (pid {known.pid})")
        watch = TargetWatch(run.base_url, known.pid, token=known.token)
        try:
            yield watch
        finally:
            watch.close()
        return
    if parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"environment {run.environment_name!r} has a sandbox but its base_url "
            f"{run.base_url} is not a loopback address; use http://127.0.0.1:PORT"
        )
    # validated when the config was read; the port comes from base_url
    settings = SandboxSettings.model_validate({**run.environment.sandbox, "port": parts.port or 80})
    n8n = N8NWorkflows.of_run(run, workflows)
    sandbox = start_sandbox(settings, log_path=run_dir / "sandbox.log", n8n=n8n)
    watch = TargetWatch(sandbox.url, sandbox.pid, sandbox.process, sandbox.token, sandbox)
    try:
        echo(f"target: started the embedded sandbox at {sandbox.url} (pid {sandbox.pid})")
        yield watch
    finally:
        watch.close()
        if watch.stop_deferred:
            sandbox.terminate()
        else:
            sandbox.stop()


def serve_from_environment() -> int:
    """The sandbox child process (:mod:`orchestrator.target.sandbox_child`): settings from the
    environment, an exit code back."""
    raw = os.environ.get(SETTINGS_ENV)
    try:
        settings = settings_from_mapping(json.loads(raw) if raw else {}, SETTINGS_ENV)
        n8n = N8NWorkflows.from_json(os.environ.get(N8N_ENV))
    except (ConfigError, ValueError) as exc:
        print(f"Error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 3
    ready_file = os.environ.get(READY_FILE_ENV)
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and os.name == "posix":
        threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()

    def announce(url: str) -> None:
        shown = settings.model_dump(exclude={"host", "port"})
        print(f"orch sandbox pid {os.getpid()} serving {url} with {shown}", file=sys.stderr)
        print(f"N8N webhooks (/{n8n.endpoint}/) from: {list(n8n.exports)}", file=sys.stderr)
        if ready_file:
            port = urlsplit(url).port
            tmp = Path(ready_file + ".tmp")
            tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
            tmp.replace(ready_file)

    try:
        serve(settings, on_ready=announce, token=os.environ.get(TOKEN_ENV) or None, n8n=n8n)
    except ConfigError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 3
    except SetupError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 4
    return 0


"""The embedded sandbox: a local stand-in of the product's HTTP API, bound to loopback only.

It serves what the shipped scenarios hit, with the behaviour that matters under load:

- ``POST /webhook/{workflow}/{unique_id}``: the N8N LinkedIn-scraper webhook (see
  ``workflows/linkedin-scraper.json``), answering 200 with an ``executionId``; auth is
  none, an API-key header or a bearer token, as configured;
- one AI-enrichment endpoint, the configured ``enrichment_variant`` (the others 404), behind
  a token-bucket rate limit that answers 429 with ``Retry-After`` like the Claude API tiers;
- an email queue: ``POST /campaigns/{id}/emails`` and ``GET /campaigns/{id}/queue``;
- ``GET /health``; ``GET /__sandbox/stats`` and ``POST /__sandbox/reset`` (counters per
  endpoint and status, so tests can check k6's counts against what the sandbox sent);
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
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.core.errors import ConfigError, SetupError

# Names of the sandbox's business endpoints, used in stats and in `endpoint_latency_ms`.
ENDPOINT_NAMES = ("webhook", "enrichment", "email-enqueue", "email-queue")

# The N8N workflow (webhook path prefix) the LinkedIn scraper is exported as.
LINKEDIN_WORKFLOW = "linkedin-scraper"
# The N8N workflow that does enrichment when `enrichment_variant` is "n8n".
N8N_ENRICHMENT_WORKFLOW = "prospect-enrichment"

EnrichmentVariant = Literal["prospects-enrichment", "prospects-enrich", "enrichment", "n8n"]
WebhookAuth = Literal["none", "api-key", "bearer"]

# The request each enrichment variant answers (method, path pattern), in probing order.
ENRICHMENT_ROUTES: dict[str, str] = {
    "prospects-enrichment": "POST /prospects/{id}/enrichment",
    "prospects-enrich": "POST /prospects/{id}/enrich",
    "enrichment": "POST /enrichment",
    "n8n": f"POST /webhook/{N8N_ENRICHMENT_WORKFLOW}/{{id}}",
}

SETTINGS_ENV = "ORCH_SANDBOX_SETTINGS"  # the child process reads its settings (JSON) here
READY_FILE_ENV = "ORCH_SANDBOX_READY_FILE"  # the child writes {"port", "pid"} here once bound
PARENT_PID_ENV = "ORCH_SANDBOX_PARENT_PID"  # the child exits when this parent is gone
TOKEN_ENV = "ORCH_SANDBOX_TOKEN"  # the child's identity token, chosen by the parent
IDENTITY_PATH = "/__sandbox/identity"
SERVICE_NAME = "orch-sandbox"

MAX_BODY_BYTES = 1 << 20
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0


class SandboxSettings(BaseModel):
    """How the sandbox behaves; embedded in orch.yaml under ``environments.<env>.sandbox``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="127.0.0.1",
        description="Loopback address to bind (127.0.0.0/8, ::1 or localhost); nothing else.",
    )
    port: int = Field(default=8765, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    latency_ms_median: float = Field(
        default=2.0,
        ge=0,
        le=60_000,
        description="Median of the added lognormal latency (0 = none).",
    )
    latency_ms_p95: float = Field(
        default=6.0, ge=0, le=60_000, description="95th percentile of the added lognormal latency."
    )
    endpoint_latency_ms: dict[str, float] = Field(
        default_factory=dict,
        description="Extra fixed latency per endpoint name "
        f"({', '.join(ENDPOINT_NAMES)}), e.g. to inject a regression on one endpoint.",
    )
    error_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of business requests answered 500 (random)."
    )
    rate_limit_per_minute: int | None = Field(
        default=None, gt=0, description="Token-bucket refill in requests/minute; None = no limit."
    )
    rate_limit_burst: int | None = Field(
        default=None,
        gt=0,
        description="Bucket capacity; None = rate_limit_per_minute (the Claude API refills "
        "continuously up to the per-minute maximum).",
    )
    rate_limited_endpoints: list[str] = Field(
        default_factory=lambda: ["enrichment"],
        description="Endpoints sharing the one token bucket.",
    )
    enrichment_variant: EnrichmentVariant = Field(
        default="prospects-enrichment",
        description="Which enrichment endpoint exists: "
        + "; ".join(f"{k}: {v}" for k, v in ENRICHMENT_ROUTES.items()),
    )
    webhook_auth: WebhookAuth = Field(
        default="none",
        description="Auth the N8N webhooks demand: none, api-key (header) or bearer.",
    )
    webhook_api_key_header: str = Field(
        default="X-N8N-API-KEY",
        min_length=1,
        description="Header holding the key for api-key auth.",
    )
    webhook_secret_env: str = Field(
        default="ORCH_SANDBOX_WEBHOOK_SECRET",
        min_length=1,
        description="Name of the environment variable holding the expected key or bearer "
        "secret (the value itself is never stored in settings).",
    )
    webhook_workflows: list[str] = Field(
        default_factory=lambda: [LINKEDIN_WORKFLOW],
        description="Workflow names whose webhooks are registered (others 404, as in N8N).",
    )
    email_send_rate_per_second: float = Field(
        default=50.0, gt=0, description="How fast each campaign's email queue drains."
    )
    seed: int | None = Field(default=None, description="Seed for latency and error draws.")

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if value.lower() == "localhost":
            return "127.0.0.1"
        try:
            address = ipaddress.ip_address(value.strip("[]"))
        except ValueError:
            raise ValueError(
                f"host {value!r} is not an IP address; the sandbox binds loopback only "
                "(127.0.0.1, ::1 or localhost)"
            ) from None
        if not address.is_loopback:
            raise ValueError(
                f"host {value!r} is not a loopback address; the sandbox binds loopback only "
                "(127.0.0.1, ::1 or localhost)"
            )
        return str(address)

    @field_validator("endpoint_latency_ms")
    @classmethod
    def _known_endpoints(cls, value: dict[str, float]) -> dict[str, float]:
        for name, ms in value.items():
            if name not in ENDPOINT_NAMES:
                raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINT_NAMES)}")
            if ms < 0:
                raise ValueError(f"latency for {name!r} must be ≥ 0 ms, got {ms}")
        return value

    @field_validator("rate_limited_endpoints")
    @classmethod
    def _known_limited(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in ENDPOINT_NAMES:
                raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINT_NAMES)}")
        return value

    @model_validator(mode="after")
    def _p95_not_below_median(self) -> SandboxSettings:
        if self.latency_ms_p95 < self.latency_ms_median:
            raise ValueError(
                f"latency_ms_p95 ({self.latency_ms_p95}) must be ≥ latency_ms_median "
                f"({self.latency_ms_median})"
            )
        return self

    def url_for(self, port: int) -> str:
        """The base URL of a sandbox bound to ``host`` and ``port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"


def settings_from_mapping(data: dict[str, Any], where: str = "sandbox settings") -> SandboxSettings:
    """Validate settings, turning pydantic's errors into one :class:`ConfigError` line each."""
    try:
        return SandboxSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {key}: {message}")
        raise ConfigError("; ".join(problems)) from None


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


class SandboxApp:
    """The sandbox as a raw ASGI 3 application."""

    def __init__(
        self, settings: SandboxSettings, secret: str | None, token: str | None = None
    ) -> None:
        self.settings = settings
        self._secret = secret.encode() if secret is not None else None
        self._token = (token or new_token()).encode()
        self._auth = settings.webhook_auth
        self._key_header = settings.webhook_api_key_header.lower().encode()
        self._workflows = frozenset(settings.webhook_workflows)
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
        return {
            "total": total,
            "by_endpoint": by_endpoint,
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
        parts = scope["path"].split("/")
        n = len(parts)
        endpoint = ""
        ident = ""
        allow = _ALLOW_POST
        allowed = "POST"
        if n == 4 and parts[1] == "webhook" and parts[3]:
            if parts[2] in self._workflows:
                endpoint, ident = "webhook", parts[3]
            elif parts[2] == N8N_ENRICHMENT_WORKFLOW and self._variant == "n8n":
                endpoint, ident = "enrichment", parts[3]
            else:
                await self._n8n_not_registered(send, method, parts[2], parts[3])
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
        if self._auth != "none" and (endpoint == "webhook" or self._variant == "n8n"):
            denied = self._check_auth(scope)
            if denied is not None:
                return denied, _AUTH_BODIES[denied], ()
        payload: Any = None
        if endpoint != "email-queue":
            payload = await _read_json(receive)
            if payload is _BAD_JSON:
                return 400, b'{"error":"invalid JSON body"}', ()
        if self._bucket is not None and endpoint in self._limited:
            wait = self._bucket.take()
            if wait > 0.0:
                return 429, _RATE_LIMITED_BODY, self._rate_headers(wait)
        if self._error_rate and self._rng.random() < self._error_rate:
            self._injected += 1
            return 500, b'{"error":"internal server error (injected by the sandbox)"}', ()
        self._next_id += 1
        if endpoint == "webhook":
            self._work["webhook_executions"] += 1
            body = b'{"executionId":"%d","status":"queued","uniqueId":%s}' % (
                self._next_id,
                json.dumps(ident).encode(),
            )
            return 200, body, ()
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

    async def _n8n_not_registered(self, send: Send, method: str, workflow: str, ident: str) -> None:
        self._count("unmatched", 404)
        message = {
            "code": 404,
            "message": f'The requested webhook "{method} {workflow}/{ident}" is not registered.',
            "hint": "Activate the workflow whose Webhook node has this path.",
        }
        await _respond(send, 404, json.dumps(message).encode())


_AUTH_BODIES = {
    401: b'{"code":401,"message":"Authorization is required!"}',
    403: b'{"code":403,"message":"Authorization data is wrong!"}',
}
_RATE_LIMITED_BODY = (
    b'{"type":"error","error":{"type":"rate_limit_error",'
    b'"message":"Rate limit exceeded (sandbox token bucket); retry after Retry-After seconds."}}'
)


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


def _read_secret(settings: SandboxSettings) -> str | None:
    if settings.webhook_auth == "none":
        return None
    secret = os.environ.get(settings.webhook_secret_env)
    if not secret:
        raise SetupError(
            f"the sandbox's webhook_auth is {settings.webhook_auth!r} but the environment "
            f"variable {settings.webhook_secret_env} is not set; export it with the expected "
            "key, or set webhook_auth: none"
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
) -> None:
    """Serve the sandbox in the foreground until SIGINT/SIGTERM (blocking).

    ``on_ready`` gets the base URL once the socket listens (useful with ``port=0``).
    ``token`` is the identity token (a new one when None); it is recorded for this user
    (:func:`identity_file`) while the sandbox serves, so any orch of this user can tell
    this sandbox from another program on its port.
    """
    import uvicorn

    secret = _read_secret(settings)
    sock = _bind(settings)
    port = int(sock.getsockname()[1])
    url = settings.url_for(port)
    token = token or new_token()
    app = SandboxApp(settings, secret, token)
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
        server.run(sockets=[sock])
    finally:
        sock.close()
        if registered is not None:
            _unregister(registered)


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

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM the child, kill it after ``timeout`` seconds; return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
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


def start_sandbox(settings: SandboxSettings, *, log_path: Path | None = None) -> SandboxProcess:
    """Start ``python -m orchestrator.target.sandbox`` in the background and wait for ``/health``.

    Raises :class:`SetupError` naming the port when it cannot start (e.g. port in use).
    """
    _read_secret(settings)  # fail here, in the parent, with the clear message
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
    env[READY_FILE_ENV] = str(ready)
    env[PARENT_PID_ENV] = str(os.getpid())
    token = new_token()
    env[TOKEN_ENV] = token
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.target.sandbox"],
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
    """

    INTERVAL_S = 0.5

    def __init__(
        self,
        url: str | None = None,
        pid: int | None = None,
        process: subprocess.Popen[bytes] | None = None,
        token: str | None = None,
    ) -> None:
        self.url, self.pid, self.process, self.token = url, pid, process, token
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


def _main() -> int:
    """Entry point of ``python -m orchestrator.target.sandbox`` (settings from the environment)."""
    raw = os.environ.get(SETTINGS_ENV)
    try:
        settings = settings_from_mapping(json.loads(raw) if raw else {}, SETTINGS_ENV)
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
        if ready_file:
            port = urlsplit(url).port
            tmp = Path(ready_file + ".tmp")
            tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
            tmp.replace(ready_file)

    try:
        serve(settings, on_ready=announce, token=os.environ.get(TOKEN_ENV) or None)
    except SetupError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(_main())

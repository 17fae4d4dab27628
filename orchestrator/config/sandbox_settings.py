"""The embedded sandbox's settings, as orch.yaml holds them under ``environments.<env>.sandbox``.

They live in the configuration package so that validating orch.yaml does not import the
sandbox's server (:mod:`orchestrator.target.sandbox`).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.core import ConfigError

# Names of the sandbox's business endpoints, used in stats and in `endpoint_latency_ms`.
ENDPOINT_NAMES = ("webhook", "enrichment", "email-enqueue", "email-queue")

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
        description="Auth the n8n enrichment webhook demands: none, api-key (header) or "
        "bearer. The webhooks served from workflow exports check the authentication their "
        "trigger declares (headerAuth, basicAuth, jwtAuth), with the header and secret below.",
    )
    webhook_api_key_header: str = Field(
        default="X-N8N-API-KEY",
        min_length=1,
        description="Header holding the key for api-key auth (N8N: the Header Auth "
        "credential's name).",
    )
    webhook_secret_env: str = Field(
        default="ORCH_SANDBOX_WEBHOOK_SECRET",
        min_length=1,
        description="Name of the environment variable holding the expected key, bearer "
        "secret, user:password (basicAuth) or HS256 passphrase (jwtAuth); the value itself "
        "is never stored in settings.",
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

"""``outputs:`` of an environment: k6's own outputs to Prometheus (remote write), InfluxDB
(v1 API) or an OpenTelemetry collector, beside the raw CSV orch reads.

orch drops the ``K6_*`` variables of its own environment (they would override the
script's options), so an output's settings come from orch.yaml alone and reach k6
explicitly, as the variables each output reads: the endpoint (``url``, or ``url_secret``
naming a variable that holds it) and the kind's own settings (``settings``, and
``secrets`` read from variables). Nothing goes on k6's command line, where ``ps`` would
show it. Each endpoint's host is checked against the environment's allow-list before the
run (``guard.guard_run``).

k6 makes these connections itself, outside the script's block lists: the host is checked
when the run starts, not at each connection (docs/staging.md, "What is not enforced").
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.config.egress import expand_refs
from orchestrator.config.secrets import REDACTED
from orchestrator.core import ConfigError

OutputKind = Literal["experimental-prometheus-rw", "influxdb", "experimental-opentelemetry"]

# The variables each kind reads (its settings must start so) ...
_PREFIX: dict[str, str] = {
    "experimental-prometheus-rw": "K6_PROMETHEUS_RW_",
    "influxdb": "K6_INFLUXDB_",
    "experimental-opentelemetry": "K6_OTEL_",
}
# ... and those orch sets from ``url`` and ``protocol``, which settings may not set (nor a
# proxy, which would connect elsewhere on k6's behalf).
_ORCH_SETS: dict[str, frozenset[str]] = {
    "experimental-prometheus-rw": frozenset({"K6_PROMETHEUS_RW_SERVER_URL"}),
    "influxdb": frozenset({"K6_INFLUXDB_ADDR", "K6_INFLUXDB_DB"}),
    "experimental-opentelemetry": frozenset(
        {
            "K6_OTEL_EXPORTER_TYPE",
            "K6_OTEL_GRPC_EXPORTER_ENDPOINT",
            "K6_OTEL_GRPC_EXPORTER_INSECURE",
            "K6_OTEL_HTTP_EXPORTER_ENDPOINT",
            "K6_OTEL_HTTP_EXPORTER_INSECURE",
            "K6_OTEL_HTTP_EXPORTER_URL_PATH",
        }
    ),
}
_EXAMPLE_URL = {
    "experimental-prometheus-rw": "http://127.0.0.1:9090/api/v1/write",
    "influxdb": "http://127.0.0.1:8086/k6 (the path is the database)",
    "experimental-opentelemetry": "http://127.0.0.1:4318 (OTLP/HTTP; :4317 with protocol: grpc)",
}
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Setting = str | int | float | bool


class K6Output(BaseModel):
    """One ``outputs:`` entry: a k6 output and its endpoint."""

    model_config = ConfigDict(extra="forbid")

    kind: OutputKind
    url: str | None = Field(
        default=None, description="the endpoint; ${VAR} is read when the environment is used"
    )
    url_secret: str | None = Field(
        default=None, description="name of the variable holding the endpoint (a secret)"
    )
    protocol: Literal["http", "grpc"] | None = Field(
        default=None, description="experimental-opentelemetry only: OTLP over http (default)"
    )
    settings: dict[str, Setting] = Field(
        default_factory=dict, description="the output's own K6_* settings, e.g. push interval"
    )
    secrets: dict[str, str] = Field(
        default_factory=dict, description="K6_* setting -> name of the variable holding it"
    )

    @model_validator(mode="after")
    def _check(self) -> K6Output:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError(
                (
                    "url and url_secret: give one of them, not both"
                    if self.url
                    else "the endpoint is missing: give url: or url_secret: (a variable's name)"
                )
                + f"; e.g. url: {_EXAMPLE_URL[self.kind]}"
            )
        if self.url_secret is not None and not _VARIABLE.match(self.url_secret):
            raise ValueError(f"url_secret: {self.url_secret!r} is not a variable name")
        if self.url is not None and "${" not in self.url:
            endpoint_env(self.kind, self.url, self.protocol)
        if self.protocol is not None and self.kind != "experimental-opentelemetry":
            raise ValueError("protocol: only experimental-opentelemetry takes it")
        prefix, reserved = _PREFIX[self.kind], _ORCH_SETS[self.kind]
        for key in (*self.settings, *self.secrets):
            if not key.startswith(prefix) or not _VARIABLE.match(key):
                raise ValueError(f"{key!r}: {self.kind}'s settings are named {prefix}…")
            if key.endswith("_PROXY"):
                raise ValueError(f"{key!r}: a proxy would connect outside the allow-list")
            if key in reserved:
                raise ValueError(f"{key!r}: orch sets it from url (and protocol); write it there")
        for key, variable in self.secrets.items():
            if not _VARIABLE.match(variable):
                raise ValueError(f"secrets.{key}: {variable!r} is not a variable name")
        return self


def endpoint_env(kind: str, url: str, protocol: str | None) -> dict[str, str]:
    """The variables that point ``kind`` at ``url``. ValueError (whose message never holds
    the URL, which may be a secret) when the URL is not one the kind can use."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"the url is not a valid URL; e.g. {_EXAMPLE_URL[kind]}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"the url must be http(s)://host[:port]/…; e.g. {_EXAMPLE_URL[kind]}")
    if kind == "experimental-prometheus-rw":
        return {"K6_PROMETHEUS_RW_SERVER_URL": url.strip()}
    if parts.query or parts.fragment:
        raise ValueError(
            f"the url may not carry a query: put such options under settings ({_PREFIX[kind]}…)"
        )
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if kind == "influxdb":
        env = {"K6_INFLUXDB_ADDR": f"{parts.scheme}://{netloc}"}
        if parts.path.strip("/"):
            env["K6_INFLUXDB_DB"] = unquote(parts.path.strip("/"))
        if parts.username:
            env["K6_INFLUXDB_USERNAME"] = unquote(parts.username)
        if parts.password:
            env["K6_INFLUXDB_PASSWORD"] = unquote(parts.password)
        return env
    # OpenTelemetry: the exporter takes host:port, and plain http means "insecure"
    if parts.username or parts.password:
        raise ValueError("OTLP takes no credentials in the url: put them under secrets")
    exporter = protocol or "http"
    shown_host = f"[{host}]" if ":" in host else host
    address = f"{shown_host}:{port or (443 if parts.scheme == 'https' else 80)}"
    name = "GRPC" if exporter == "grpc" else "HTTP"
    env = {
        "K6_OTEL_EXPORTER_TYPE": exporter,
        f"K6_OTEL_{name}_EXPORTER_ENDPOINT": address,
        f"K6_OTEL_{name}_EXPORTER_INSECURE": "true" if parts.scheme == "http" else "false",
    }
    if exporter == "http" and parts.path not in ("", "/"):
        env["K6_OTEL_HTTP_EXPORTER_URL_PATH"] = parts.path
    return env


class ResolvedOutput(BaseModel):
    """One output of a run, its endpoint and settings read: what k6 is given for it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    where: str  # e.g. environments.staging.outputs[0]
    url: str = Field(repr=False)
    url_is_secret: bool
    env: dict[str, str] = Field(repr=False)  # the variables k6 gets for this output
    secret_values: list[str] = Field(default_factory=list, repr=False)

    def describe(self) -> dict[str, Any]:
        """The output as config.resolved.json and run.json show it (secrets as ``***``)."""
        password = _password(self.url)
        shown = self.url.replace(f":{password}@", f":{REDACTED}@", 1) if password else self.url
        return {
            "kind": self.kind,
            "url": REDACTED if self.url_is_secret else shown,
            "variables": sorted(self.env),
        }


def resolve_outputs(outputs: list[K6Output], env_name: str) -> list[ResolvedOutput]:
    """Read each output's endpoint and secrets from the environment (and .env); ConfigError
    naming the key and the variable when one is missing or the endpoint is unusable."""
    resolved = []
    for index, output in enumerate(outputs):
        where = f"environments.{env_name}.outputs[{index}]"
        secret_values: list[str] = []
        if output.url_secret is not None:
            url = _read(output.url_secret, f"{where}.url_secret")
            secret_values.append(url)
        else:
            assert output.url is not None
            url = expand_refs(output.url, f"{where}.url")
        try:
            env = endpoint_env(output.kind, url, output.protocol)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        password = _password(url)
        secret_values += [password] if password else []
        env.update({key: _setting(value) for key, value in output.settings.items()})
        for key, variable in output.secrets.items():
            env[key] = _read(variable, f"{where}.secrets.{key}")
            secret_values.append(env[key])
        resolved.append(
            ResolvedOutput(
                kind=output.kind,
                where=where,
                url=url,
                url_is_secret=output.url_secret is not None,
                env=env,
                secret_values=secret_values,
            )
        )
    return resolved


def _password(url: str) -> str | None:
    """The password written in a URL's user part, as written (None without one)."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or None


def _read(variable: str, where: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(
            f"{where} needs the environment variable {variable}; set it (or put it in a "
            "git-ignored .env file)"
        )
    return value


def _setting(value: Setting) -> str:
    """A setting as k6 reads it from a variable (``true``, not ``True``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_outputs_list(value: list[K6Output]) -> list[K6Output]:
    """Each kind at most once: k6 reads one set of variables per kind of output."""
    kinds = [output.kind for output in value]
    repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
    if repeated:
        raise ValueError(
            f"{', '.join(repeated)} is listed more than once, but k6 reads one set of "
            "variables per kind of output; keep one"
        )
    return value

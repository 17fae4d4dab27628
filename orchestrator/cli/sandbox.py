"""`orch sandbox`: serve the embedded stand-in of the product API in the foreground."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from orchestrator.cli.options import config_option, load_project
from orchestrator.core import ConfigError

VARIANTS = ("prospects-enrichment", "prospects-enrich", "enrichment", "n8n")
ENDPOINTS = ("webhook", "enrichment", "email-enqueue", "email-queue")


def _endpoint_latency(values: tuple[str, ...]) -> dict[str, float]:
    """Parse repeated ``NAME=MS`` options."""
    parsed: dict[str, float] = {}
    for value in values:
        name, sep, ms = value.partition("=")
        try:
            parsed[name.strip()] = float(ms)
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(
                f"{value!r} is not NAME=MS (e.g. enrichment=50); names: {', '.join(ENDPOINTS)}",
                param_hint="--endpoint-latency",
            )
    return parsed


def _exports(config: Any, env_name: str) -> list[str]:
    """The N8N workflow exports ENV's scenarios name (``vars.webhook_export``), resolved
    against the config's folder."""
    # lazy: keeps --help fast
    from orchestrator.target import WEBHOOK_EXPORT_VAR

    environment = config.environments[env_name]
    found = []
    for name, scenario in config.scenarios.items():
        override = (environment.scenarios.get(name) or {}).get("vars") or {}
        value = {**scenario.vars, **environment.vars, **override}.get(WEBHOOK_EXPORT_VAR)
        if isinstance(value, str) and value and "${" not in value:
            found.append(str(config.root / value))
    return found


def _from_config(config_file: str | None, env_name: str) -> tuple[dict[str, Any], list[str]]:
    """The sandbox settings of ``environments.ENV`` in the config, with its base_url's port,
    and the N8N workflow exports its scenarios name."""
    config = load_project(config_file)
    environment = config.environments.get(env_name)
    if environment is None:
        known = ", ".join(sorted(config.environments))
        raise ConfigError(f"unknown environment {env_name!r}; known: {known}")
    if environment.sandbox is None:
        raise ConfigError(
            f"environment {env_name!r} has no sandbox section; add environments.{env_name}"
            ".sandbox to the config or run `orch sandbox` without --env"
        )
    data = dict(environment.sandbox)
    try:
        port = urlsplit(environment.base_url).port
    except ValueError:
        port = None
    if port is not None:
        data.setdefault("port", port)
    return data, _exports(config, env_name)


@click.command()
@click.option("--host", default=None, help="Loopback address to bind  [default: 127.0.0.1]")
@click.option(
    "--port", type=int, default=None, help="TCP port, 0 for any free one  [default: 8765]"
)
@click.option(
    "--latency-median-ms", type=float, default=None, help="Median added latency (0 = none)."
)
@click.option("--latency-p95-ms", type=float, default=None, help="p95 of the added latency.")
@click.option(
    "--endpoint-latency",
    multiple=True,
    metavar="NAME=MS",
    help=f"Extra fixed latency on one endpoint ({', '.join(ENDPOINTS)}); repeatable.",
)
@click.option("--error-rate", type=float, default=None, help="Share of requests answered 500.")
@click.option(
    "--rate-limit-per-minute", type=int, default=None, help="Enrichment requests/minute before 429."
)
@click.option("--rate-limit-burst", type=int, default=None, help="Token-bucket capacity.")
@click.option(
    "--enrichment-variant",
    type=click.Choice(VARIANTS),
    default=None,
    help="Which enrichment endpoint exists (the others 404)  [default: prospects-enrichment]",
)
@click.option(
    "--webhook-auth",
    type=click.Choice(("none", "api-key", "bearer")),
    default=None,
    help="Auth the n8n enrichment webhook demands (webhooks from --workflow exports check "
    "their trigger's own)  [default: none]",
)
@click.option("--webhook-api-key-header", default=None, help="Header for api-key auth.")
@click.option(
    "--webhook-secret-env",
    default=None,
    metavar="VAR",
    help="Environment variable holding the expected key  [default: ORCH_SANDBOX_WEBHOOK_SECRET]",
)
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="An N8N workflow export whose webhooks to serve, as N8N would; repeatable "
    "(with --env: besides the exports its scenarios name).",
)
@click.option("--seed", type=int, default=None, help="Seed for latency and error draws.")
@click.option(
    "--env",
    "env_name",
    default=None,
    help="Start from environments.ENV.sandbox in the config (options override it).",
)
@config_option
def sandbox(
    host: str | None,
    port: int | None,
    latency_median_ms: float | None,
    latency_p95_ms: float | None,
    endpoint_latency: tuple[str, ...],
    error_rate: float | None,
    rate_limit_per_minute: int | None,
    rate_limit_burst: int | None,
    enrichment_variant: str | None,
    webhook_auth: str | None,
    webhook_api_key_header: str | None,
    webhook_secret_env: str | None,
    workflows: tuple[str, ...],
    seed: int | None,
    env_name: str | None,
    config_file: str | None,
) -> None:
    """Serve the embedded sandbox (the product API's local stand-in) until Ctrl-C.

    It answers the N8N webhooks of the workflow exports given (--workflow, and with --env
    those its scenarios name), at the URLs N8N serves them and with the authentication
    their triggers declare; the configured enrichment endpoint (429 with Retry-After beyond
    the rate limit) and the email queue (POST /campaigns/{id}/emails, GET
    /campaigns/{id}/queue). GET /__sandbox/stats counts requests per endpoint and status.
    It binds loopback only.

    Example:

        orch sandbox --port 8765 --rate-limit-per-minute 600

        orch sandbox --env local          # the settings and webhooks `orch run` would use

        orch sandbox --workflow workflows/linkedin-scraper.json --webhook-secret-env KEY

        ORCH_SANDBOX_WEBHOOK_SECRET=dev-key orch sandbox --webhook-auth api-key
    """
    # lazy: keeps --help fast
    from orchestrator.config import settings_from_mapping
    from orchestrator.target import N8NWorkflows, serve

    data: dict[str, Any] = {}
    exports = [str(Path(w).resolve()) for w in workflows]
    if env_name:
        data, configured = _from_config(config_file, env_name)
        exports = configured + exports
    n8n = N8NWorkflows(tuple(dict.fromkeys(exports)))
    options = {
        "host": host,
        "port": port,
        "latency_ms_median": latency_median_ms,
        "latency_ms_p95": latency_p95_ms,
        "error_rate": error_rate,
        "rate_limit_per_minute": rate_limit_per_minute,
        "rate_limit_burst": rate_limit_burst,
        "enrichment_variant": enrichment_variant,
        "webhook_auth": webhook_auth,
        "webhook_api_key_header": webhook_api_key_header,
        "webhook_secret_env": webhook_secret_env,
        "seed": seed,
    }
    data.update({key: value for key, value in options.items() if value is not None})
    if endpoint_latency:
        data["endpoint_latency_ms"] = {
            **data.get("endpoint_latency_ms", {}),
            **_endpoint_latency(endpoint_latency),
        }
    if "latency_ms_median" in data and "latency_ms_p95" not in data:
        # a median alone keeps the default shape (p95 = 3 x median); 0 means no added latency
        data["latency_ms_p95"] = 3 * data["latency_ms_median"]
    where = f"environments.{env_name}.sandbox" if env_name else "orch sandbox options"
    settings = settings_from_mapping(data, where)

    def announce(url: str) -> None:
        variant = settings.enrichment_variant
        click.echo(f"orch sandbox listening on {url} (enrichment: {variant}, ", nl=False)
        click.echo(f"n8n enrichment auth: {settings.webhook_auth}); Ctrl-C to stop", nl=True)
        hooks = n8n.router().routes
        for route in hooks:
            click.echo(f"  N8N webhook: {route.key} ({route.trigger.label}, ", nl=False)
            click.echo(f"authentication {route.trigger.authentication})")
        if not hooks:
            click.echo("  N8N webhooks: none (give --workflow FILE, or --env ENV)")

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after shutdown
        serve(settings, on_ready=announce, n8n=n8n)
    click.echo("orch sandbox stopped")


COMMANDS: list[click.Command] = [sandbox]

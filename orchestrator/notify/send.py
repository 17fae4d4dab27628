"""Send a run's notice to its environment's ``notify:`` receivers.

Through orch's one checked HTTP client, so a receiver outside the environment's
allow-list is refused like any other connection. A notification never changes the run's
exit code and never holds it up for long: a refusal, no answer within
:data:`NOTIFY_TIMEOUT_S`, an HTTP error or an unset variable is a warning. No message
names the URL (a secret: whoever has it can post), and every secret value of the run is
redacted from the payload.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config import OrchConfig, Redactor, ResolvedRun, build_policy
from orchestrator.config.notifications import NotifyTarget
from orchestrator.core import OrchError, Outcome
from orchestrator.notify.notice import Notice, read_notice
from orchestrator.notify.payloads import payload_for

NOTIFY_TIMEOUT_S = 5.0
ACTION = "send a notification"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Delivery:
    """What became of one receiver's notification."""

    where: str  # environments.<env>.notify[<i>]
    kind: str
    sent: bool
    problem: str | None = None  # why not (redacted), when not sent


def notify_run(
    config: OrchConfig,
    run: ResolvedRun,
    *,
    run_dir: Path,
    outcome: Outcome,
    exit_code: int,
    k6_exit_code: int | None,
    echo: Echo,
) -> list[Delivery]:
    """Tell every receiver whose ``on`` names how the run ended; say what was sent (or a
    warning) through ``echo``. Raises nothing."""
    wanted = _wanted(run.environment.notify, run_dir, outcome, exit_code, k6_exit_code)
    if not wanted:
        return []
    notice, targets = wanted
    urls = {index: os.environ.get(target.url_secret) or "" for index, target in targets}
    redact = Redactor([*run.secret_values(), *(p for url in urls.values() for p in _parts(url))])
    deliveries = []
    try:
        policy = build_policy(config, run.environment_name, ACTION)
    except OrchError as exc:
        problem = redact(exc.message)
        deliveries = [_where(run, i, t, problem) for i, t in targets]
    else:
        from orchestrator.config import egress_http  # lazy: loads httpx

        with egress_http.http_client(policy, ACTION, timeout=NOTIFY_TIMEOUT_S) as client:
            for index, target in targets:
                payload = _redacted(payload_for(target.kind, notice), redact)
                failed = _post(client, urls[index], target, payload)
                deliveries.append(_where(run, index, target, redact(failed) if failed else None))
    for delivery in deliveries:
        if delivery.sent:
            echo(f"notified {delivery.kind} ({delivery.where})")
        else:
            echo(f"warning: notification {delivery.where} ({delivery.kind}) not sent: "
                 f"{delivery.problem}")
    return deliveries


def _wanted(
    targets: list[NotifyTarget],
    run_dir: Path,
    outcome: Outcome,
    exit_code: int,
    k6_exit_code: int | None,
) -> tuple[Notice, list[tuple[int, NotifyTarget]]] | None:
    """The notice and the receivers that want it, or None when none does."""
    if not targets:
        return None
    notice = read_notice(run_dir, outcome, exit_code, k6_exit_code)
    wanted = [(i, t) for i, t in enumerate(targets) if set(t.on) & set(notice.events)]
    return (notice, wanted) if wanted else None


def _post(client: Any, url: str, target: NotifyTarget, payload: dict[str, Any]) -> str | None:
    """POST the payload; None when the receiver took it, else why not."""
    import httpx  # lazy: loads httpx

    if not url:
        return f"the variable {target.url_secret} is not set (in the environment or .env)"
    try:
        response = client.post(url, json=payload)
    except OrchError as exc:  # refused: outside the allow-list, or not an http(s) URL
        return exc.message
    except httpx.TimeoutException:
        return f"no answer within {NOTIFY_TIMEOUT_S:g} s"
    except Exception as exc:  # a notification never fails the run
        return f"{type(exc).__name__}: {exc}"
    if not 200 <= response.status_code < 300:
        host = urlsplit(url).netloc.rpartition("@")[2]
        return f"{host} answered HTTP {response.status_code}"
    return None


def _where(run: ResolvedRun, index: int, target: NotifyTarget, problem: str | None) -> Delivery:
    where = f"environments.{run.environment_name}.notify[{index}]"
    return Delivery(where, target.kind, problem is None, problem)


def _parts(url: str) -> list[str]:
    """What of a webhook URL is secret: the whole, its path and query (Slack's and Teams'
    tokens), and any password."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    secret_tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return [url, secret_tail, parts.query, *([password] if password else [])]


def _redacted(value: Any, redact: Redactor) -> Any:
    """``value`` with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value

"""orch's one HTTP client (httpx), connecting only where an :class:`EgressPolicy` allows.

Every name is resolved and every address checked when the connection is made, so a DNS
change between a check and the connection cannot slip through; orch connects to the
checked address itself (TLS still verifies the name). Redirects are never followed, and
proxy variables are ignored: a proxy would connect elsewhere on orch's behalf.

httpx is imported here only, so commands that make no HTTP call never load it.
"""

from __future__ import annotations

from typing import Any

import httpcore
import httpx

from orchestrator.config.egress import EgressPolicy
from orchestrator.core import RefusedError


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to checked addresses."""

    def __init__(self, policy: EgressPolicy, action: str) -> None:
        self._policy = policy
        self._action = action
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.resolve(host, port, self._action)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"cannot connect to {host}:{port}")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise RefusedError(f"refusing to {self._action}: a unix socket is not an HTTP target")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class CheckedClient(httpx.Client):
    """An httpx client that checks each request's URL (host, and the path on a shared
    production N8N) before sending, and never follows a redirect."""

    def __init__(self, policy: EgressPolicy, action: str, *, timeout: float = 10.0) -> None:
        transport = httpx.HTTPTransport(trust_env=False, retries=0)
        # httpx has no public hook for name resolution; its pool takes a network backend
        transport._pool._network_backend = _CheckedBackend(policy, action)
        super().__init__(
            transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
        )
        self.policy = policy
        self.action = action

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        self.policy.check_url(str(request.url), self.action)
        kwargs["follow_redirects"] = False
        return super().send(request, **kwargs)


def http_client(policy: EgressPolicy, action: str, *, timeout: float = 10.0) -> CheckedClient:
    """A client for ``action`` (used in refusal messages) under ``policy``."""
    return CheckedClient(policy, action, timeout=timeout)

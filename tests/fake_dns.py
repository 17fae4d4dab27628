"""A name table standing in for DNS, for the fast egress and guard tests.

The policy resolves names with ``socket.getaddrinfo``; a test cannot run a resolver the
system would ask, so this table answers instead, the way getaddrinfo does: the canonical
name only with ``AI_CANONNAME``, one entry per socket type unless a type is given, and
``socket.gaierror`` for a name it does not know.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

# name -> (canonical name, addresses)
NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "localhost": ("localhost", ("127.0.0.1",)),
    "stg.test": ("stg.test", ("127.0.0.5",)),
    "api.stg.test": ("api.stg.test", ("127.0.0.5", "127.0.0.6", "127.0.0.5")),
    "prod.test": ("prod.test", ("127.0.0.9",)),
    "prod-db.test": ("prod-db.test", ("127.0.0.10",)),
    "alias.test": ("prod.test", ("127.0.0.9",)),  # a CNAME of production
    "cname.stg.test": ("stg.test", ("127.0.0.5",)),  # a CNAME of staging
    "pooler.test": ("pooler.test", ("127.0.0.20",)),  # production shares it
    "anywhere.test": ("anywhere.test", ("0.0.0.0",)),
    "v6.test": ("v6.test", ("::1",)),
    "n8n.prod.test": ("n8n.prod.test", ("127.0.0.30",)),
}


def install(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any] | None = None) -> list[Any]:
    """Answer getaddrinfo from :data:`NAMES` (and ``extra``); returns the calls made."""
    table = {**NAMES, **(extra or {})}
    calls: list[Any] = []

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        calls.append((host, port, type, flags))
        if isinstance(host, str) and len(host) > 253:
            raise UnicodeError("label too long")
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        canonical, addresses = table[host]
        types = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW]
        infos = []
        for index, address in enumerate(addresses):
            for kind in types:
                v6 = ":" in address
                infos.append(
                    (
                        socket.AF_INET6 if v6 else socket.AF_INET,
                        kind,
                        6,
                        canonical if flags & socket.AI_CANONNAME and index == 0 else "",
                        (address, port or 0, 0, 0) if v6 else (address, port or 0),
                    )
                )
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls

"""Secrets: load a git-ignored `.env`, and redact secret values from anything orch writes."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

REDACTED = "***"

_URL_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@?#\s]*):[^/?#\s]*@")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]*)", re.I)


def load_dotenv(path: Path) -> list[str]:
    """Set variables from a ``.env`` file without overriding the real environment.

    Returns the names that were set. python-dotenv reads the file: comments, ``export
    KEY=VALUE``, single- and double-quoted values (escapes in double quotes, multi-line
    values), and a ``# comment`` after an unquoted value. Values are taken literally:
    ``${VAR}`` is not expanded, so a secret containing ``$`` arrives as written. A line
    python-dotenv cannot parse is skipped with a warning that names its line number, never
    its text.
    """
    if not path.is_file():
        return []
    loaded = []
    for key, value in dotenv_values(path, interpolate=False, encoding="utf-8").items():
        if value is not None and key not in os.environ:  # None: a bare KEY without '='
            os.environ[key] = value
            loaded.append(key)
    return loaded


class Redactor:
    """Replaces every known secret value in a text by ``***``.

    Redaction is by value, not by key name, so a secret echoed by a script, embedded in a
    URL or quoted in an error message is caught too. Values shorter than 4 characters are
    ignored: they would mangle ordinary text and are not secrets worth the name.
    """

    def __init__(self, values: Iterable[str]) -> None:
        self._values = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


def sandbox_provided_variable(env: Any) -> str | None:
    """The variable a local environment's sandbox reads its webhook key from, if it checks
    one: orch provides that variable itself when it is unset."""
    sandbox = env.sandbox or {}
    if env.kind != "local" or sandbox.get("webhook_auth", "none") == "none":
        return None
    return str(sandbox.get("webhook_secret_env", "ORCH_SANDBOX_WEBHOOK_SECRET"))


def provide_sandbox_secret(env: Any) -> str | None:
    """Give a local sandbox that checks webhook auth a random key for this process.

    The sandbox orch starts and the scripts (through the environment's ``secrets``) then
    share it. An explicit value is never overridden. Returns the variable set, if any.
    """
    name = sandbox_provided_variable(env)
    if name is None or os.environ.get(name):
        return None
    os.environ[name] = secrets.token_urlsafe(24)
    return name


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (URL, query and key=value forms).

    >>> redact_url("postgresql://app:s3cret@db.example.com:5432/app")
    'postgresql://app:***@db.example.com:5432/app'
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", url)
    return _KV_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)

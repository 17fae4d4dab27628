"""k6 version parsing and the minimum version orch accepts, shared by every runner.

``k6 version --json`` (k6 ≥ v0.57.0) prints ``{"version": "v1.1.0", ...}``; every k6
prints a text line such as ``k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)`` or
``k6 v0.46.0 (2023-08-14T13:23:26+0000/v0.46.0-0-gcbd9e9ad, go1.20.7, linux/amd64)``.
"""

from __future__ import annotations

import json
import re

MIN_K6_VERSION: tuple[int, int, int] = (0, 47, 0)

# "v1.1.0", "1.1.0", "v0.46.0-rc1", "v2.0.0+dev" — the first semantic version in the text.
_VERSION_RE = re.compile(r"\bv?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")
# The text line: "k6 v1.1.0 (...)"; preferred over any other version-looking token.
_K6_LINE_RE = re.compile(r"\bk6\s+v?(\d+)\.(\d+)\.(\d+)")


def parse_k6_version(text: str) -> tuple[int, int, int]:
    """The (major, minor, patch) in k6's ``version`` output, JSON or text.

    Raises ValueError when the text holds no recognisable version.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("version"), str):
            match = _VERSION_RE.search(data["version"])
            if match:
                return _triple(match)
    match = _K6_LINE_RE.search(stripped) or _VERSION_RE.search(stripped)
    if match is None:
        raise ValueError(f"no k6 version found in {stripped[:200]!r}")
    return _triple(match)


def format_version(version: tuple[int, int, int]) -> str:
    """``(1, 1, 0)`` → ``"v1.1.0"``."""
    return "v{}.{}.{}".format(*version)


def is_supported(version: tuple[int, int, int]) -> bool:
    """Whether orch can use this k6 version (at least :data:`MIN_K6_VERSION`)."""
    return version >= MIN_K6_VERSION


def _triple(match: re.Match[str]) -> tuple[int, int, int]:
    return int(match.group(1)), int(match.group(2)), int(match.group(3))

"""Endpoint specs (``"POST /prospects/{id}/enrichment"``) and checks of scenario variables.

A scenario names each HTTP endpoint it needs in a variable ending in ``_endpoint``, as
``METHOD /path`` with an optional ``{id}`` placeholder. Paths under ``/webhook/`` are N8N
webhook triggers and go to the environment's ``n8n_base_url``; every other path goes to its
``base_url``. The k6 helper ``k6_scripts/endpoints.js`` applies the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ENDPOINT_SUFFIX = "_endpoint"
CLAUDE_TIER_VAR = "claude_tier"
N8N_PREFIX = "/webhook/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The story's enrichment candidates, in the order they are probed (section 5.4).
DEFAULT_ENRICHMENT_CANDIDATES = (
    "POST /prospects/{id}/enrichment",
    "POST /prospects/{id}/enrich",
    "POST /enrichment",
    "POST /webhook/prospect-enrichment/{id}",
)

_SPEC = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S*)$")


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint: an HTTP method and a path that may hold ``{id}``."""

    method: str
    path: str

    @property
    def is_n8n(self) -> bool:
        """True for an N8N webhook trigger (served from the N8N base URL)."""
        return self.path.startswith(N8N_PREFIX)

    def url(self, base_url: str, n8n_base_url: str, ident: str) -> str:
        """The full URL for ``ident`` on the right base."""
        base = n8n_base_url if self.is_n8n else base_url
        return base.rstrip("/") + self.path.replace("{id}", ident)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_endpoint(text: str) -> EndpointSpec:
    """Parse ``"METHOD /path"``; raise ValueError saying what the form should be."""
    match = _SPEC.match(text.strip()) if isinstance(text, str) else None
    if match is None or match.group("method") not in METHODS:
        raise ValueError(
            f"{text!r} is not an endpoint; write it as 'METHOD /path' with METHOD one of "
            f"{', '.join(METHODS)} and an optional {{id}}, e.g. 'POST /prospects/{{id}}/enrich'"
        )
    return EndpointSpec(match.group("method"), match.group("path"))


def check_vars(values: Mapping[str, Any], tiers: Iterable[str], where: str) -> list[str]:
    """Problems with endpoint and Claude-tier variables, one ``where.key: what`` line each."""
    problems: list[str] = []
    tier_names = list(tiers)
    for key, value in values.items():
        if key.endswith(ENDPOINT_SUFFIX) and value not in ("", None):
            if not isinstance(value, str) or "${" in value:
                continue  # resolved from the environment at run time
            try:
                parse_endpoint(value)
            except ValueError as exc:
                problems.append(f"{where}.{key}: {exc}")
        elif key == CLAUDE_TIER_VAR and _is_unknown_tier(value, tier_names):
            declared = ", ".join(tier_names) or "none: add claude_tiers to the config"
            problems.append(f"{where}.{key}: unknown Claude tier {value!r} (declared: {declared})")
    return problems


def _is_unknown_tier(value: Any, tier_names: list[str]) -> bool:
    """True for a set tier name that is not declared (``${VAR}`` values are checked later)."""
    return bool(value) and "${" not in str(value) and value not in tier_names

"""``notify:`` of an environment: where to say how a run ended (Slack, Microsoft Teams, or
any JSON webhook), and on which outcomes. The sending is ``orchestrator.notify``'s.

A webhook URL is a secret (whoever has it can post): orch.yaml names the variable that
holds it (``url_secret``), never the URL.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.core import Outcome

# What a notification can be about: how a run ended (run.json's outcome; thresholds_failed
# is written ``failed``), and ``regressed`` (worse than its baseline, --against-baseline).
_EVENT_NAMES = {Outcome.THRESHOLDS_FAILED: "failed"}
REGRESSED = "regressed"
NOTIFY_EVENTS = (
    *(
        _EVENT_NAMES.get(outcome, str(outcome))
        for outcome in Outcome
        if outcome not in (Outcome.RUNNING, Outcome.DRY_RUN)
    ),
    REGRESSED,
)
DEFAULT_EVENTS = tuple(event for event in NOTIFY_EVENTS if event != Outcome.PASSED)
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotifyTarget(BaseModel):
    """One ``notify:`` entry: a receiver, the variable holding its URL, and when to send."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["slack", "teams", "webhook"]
    url_secret: str = Field(description="name of the variable holding the webhook URL")
    on: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS),
        description="outcomes to notify on (default: every one but passed)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_plain_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            raise ValueError(
                "url: a webhook URL is a secret (whoever has it can post); put it in a "
                "variable (or the git-ignored .env) and name that variable with url_secret:"
            )
        return data

    @field_validator("url_secret")
    @classmethod
    def _variable(cls, value: str) -> str:
        if not _VARIABLE.match(value):
            raise ValueError(f"{value!r} is not a variable name (e.g. SLACK_WEBHOOK_URL)")
        return value

    @field_validator("on")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("an empty list would never notify; remove the target instead")
        unknown = [event for event in value if event not in NOTIFY_EVENTS]
        if unknown:
            raise ValueError(
                f"unknown outcome {unknown[0]!r}; use any of {', '.join(NOTIFY_EVENTS)}"
            )
        return list(dict.fromkeys(value))


def events_of(outcome: Outcome, regressed: bool) -> set[str]:
    """What a run that ended so is about: its outcome's event, and ``regressed`` when it
    regressed against its baseline (a passed run that regressed is not ``passed``)."""
    events = {_EVENT_NAMES.get(outcome, str(outcome))}
    if regressed:
        events.add(REGRESSED)
        events.discard(Outcome.PASSED)
    return events

"""The body each kind of receiver takes, made from a :class:`~orchestrator.notify.notice.Notice`:

- ``slack``: an incoming webhook's JSON, ``text`` (the fallback in notifications) and
  ``blocks`` (header, verdict, facts, details, the run's folder and link);
- ``teams``: a message with one Adaptive Card (1.4), the form both a Teams Workflows
  webhook ("When a Teams webhook request is received") and an incoming webhook accept;
- ``webhook``: the notice itself as JSON (:meth:`Notice.to_json`).
"""

from __future__ import annotations

from typing import Any

from orchestrator.notify.notice import Notice

ADAPTIVE_CARD_VERSION = "1.4"
_SLACK_HEADER_MAX = 150  # Slack's limit for a header block's text


def payload_for(kind: str, notice: Notice) -> dict[str, Any]:
    """The JSON body to POST to a receiver of ``kind`` (slack, teams or webhook)."""
    if kind == "slack":
        return slack_payload(notice)
    if kind == "teams":
        return teams_payload(notice)
    return notice.to_json()


def facts(notice: Notice) -> list[tuple[str, str]]:
    """The short facts every chat message shows, as (label, value)."""
    shown = [("Outcome", notice.outcome), ("Exit code", str(notice.exit_code))]
    figures = notice.figures or {}
    if figures.get("requests") is not None:
        shown.append(("Requests", f"{figures['requests']:,}"))
    if figures.get("p95_ms") is not None:
        shown.append(("p95", f"{figures['p95_ms']:.1f} ms"))
    if figures.get("error_rate") is not None:
        shown.append(("Error rate", f"{figures['error_rate']:.2%}"))
    if notice.duration_s is not None:
        shown.append(("Duration", f"{notice.duration_s:.0f} s"))
    return shown


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming webhook's message (text is the notification's fallback)."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": notice.title[:_SLACK_HEADER_MAX]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack(notice.verdict)}*"}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_slack(value)}"}
                for label, value in facts(notice)
            ],
        },
    ]
    details = notice.details()
    if details:
        text = "\n".join(f"• {_slack(line)}" for line in details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    where = f"run folder `{_slack(notice.run_folder)}`"
    if notice.run_url:
        where += f" · <{notice.run_url}|CI run>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": where}]})
    return {"text": f"{notice.title}: {notice.verdict}", "blocks": blocks}


def _slack(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally (``p(95)<500`` would start a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_payload(notice: Notice) -> dict[str, Any]:
    """A Teams message with one Adaptive Card."""
    good = notice.status == "PASSED"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": notice.title,
            "weight": "Bolder",
            "size": "Medium",
            "color": "Good" if good else "Attention",
            "wrap": True,
        },
        {"type": "TextBlock", "text": notice.verdict, "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(notice)]},
    ]
    body += [
        {"type": "TextBlock", "text": f"- {line}", "wrap": True, "spacing": "None"}
        for line in notice.details()
    ]
    body.append(
        {
            "type": "TextBlock",
            "text": f"Run folder: {notice.run_folder}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        }
    )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    if notice.run_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "CI run", "url": notice.run_url}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }

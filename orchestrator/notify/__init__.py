"""Notifications: how a run ended, told to Slack, Microsoft Teams or any JSON webhook.

:func:`notify_run` is called once a run's verdict and baseline comparison are known; it
reads the run folder (:func:`read_notice`), makes each receiver's body
(:func:`payload_for`) and posts it through orch's checked HTTP client. A notification
never changes the exit code.
"""

from __future__ import annotations

from orchestrator.notify.notice import Notice, read_notice, run_link
from orchestrator.notify.payloads import payload_for
from orchestrator.notify.send import NOTIFY_TIMEOUT_S, Delivery, notify_run

__all__ = [
    "NOTIFY_TIMEOUT_S",
    "Delivery",
    "Notice",
    "notify_run",
    "payload_for",
    "read_notice",
    "run_link",
]

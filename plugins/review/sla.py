"""Department tasks' due dates: reminders before due, escalation to the head when overdue.

OWNER: helper "sheets". The job ``review.task_reminders`` runs :func:`remind_and_escalate`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from core.contrib import NotificationTemplate

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()


def remind_and_escalate(session: Session, now: dt.datetime) -> tuple[int, int]:
    """Remind open tasks due soon and escalate overdue ones, each once; (reminded, escalated)."""
    raise NotImplementedError

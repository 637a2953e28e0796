"""Department tasks' due dates: reminders before due, escalation to the head when overdue.

Each review task is due a number of working days after it opened (the department's
``sla_days`` or the setting ``review.sla.days``, counted in the company calendar). The
job ``review.task_reminders`` runs :func:`remind_and_escalate` every half hour:

- an open task due within ``review.sla.remind_before_days`` working days reminds the
  department's reviewers (``review.task_due_soon``), once;
- an open task past its due day is escalated (``review.task_overdue``) to the
  department head (``head_user_id``) or, for a department without one, to the role(s)
  named by ``review.sla.escalate_to_role`` — once.

``reminded_at`` / ``escalated_at`` keep that it happened, so a job run twice tells
nobody twice; a task re-opened by a negotiation starts afresh.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import working_days_between
from core.clock import COMPANY_TIMEZONE
from core.contrib import NotificationTemplate
from core.labels import N_
from core.models import Order
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.settings import get_setting
from plugins.review.flow import SLA_ESCALATE_TO, SLA_REMIND_BEFORE
from plugins.review.models import ReviewSheet, ReviewTask

TASK_DUE_SOON = NotificationTemplate(
    "review.task_due_soon",
    label=N_("Review task due soon (to the department's reviewers)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的{{ department_zh }}评审将于 {{ due }} 到期",
        "en": "Order {{ order.number }}: the {{ department_en }} review is due {{ due }}",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的{{ department_zh }}评审须于 {{ due }} 前完成，"
        "请尽快在“我的评审任务”中提交评审意见。\n",
        "en": "The {{ department_en }} review of order {{ order.number }} ({{ order.customer.name }}) "
        "is due {{ due }}; please give your verdict under “My review tasks”.\n",
    },
)
TASK_OVERDUE = NotificationTemplate(
    "review.task_overdue",
    label=N_("Review task overdue (escalation to the department head)"),
    subject={
        "zh_CN": "【超期】订单 {{ order.number }} 的{{ department_zh }}评审已超期",
        "en": "[Overdue] Order {{ order.number }}: the {{ department_en }} review is overdue",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的{{ department_zh }}评审应于 {{ due }} 完成，"
        "至今未提交评审意见，请督办。\n",
        "en": "The {{ department_en }} review of order {{ order.number }} ({{ order.customer.name }}) "
        "was due {{ due }} and has not been given; please follow it up.\n",
    },
)

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (TASK_DUE_SOON, TASK_OVERDUE)


def _roles(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def remind_and_escalate(session: Session, now: dt.datetime) -> tuple[int, int]:
    """Remind open tasks due soon and escalate overdue ones, each once; (reminded, escalated)."""
    today = now.astimezone(COMPANY_TIMEZONE).date()
    before = int(get_setting(session, SLA_REMIND_BEFORE))
    escalate_to = _roles(str(get_setting(session, SLA_ESCALATE_TO)))
    rows = session.execute(
        select(ReviewTask, Order)
        .join(ReviewSheet, ReviewSheet.id == ReviewTask.sheet_id)
        .join(Order, Order.id == ReviewSheet.order_id)
        .where(ReviewTask.status == "open")
        .order_by(ReviewTask.due_date, ReviewTask.id)
    ).all()
    reminded = escalated = 0
    for task, order in rows:
        department = task.department
        context = {
            "department_en": department.name,
            "department_zh": department.name_zh or department.name,
            "due": task.due_date.isoformat(),
        }
        if today > task.due_date:
            if task.escalated_at is not None:
                continue
            to: list[Recipient] = (
                [ToUser(department.head_user_id)]
                if department.head_user_id is not None
                else [ToRole(code) for code in escalate_to]
            )
            if to:
                notify(session, TASK_OVERDUE.name, to=to, order=order, context=context)
            task.escalated_at = now
            escalated += 1
        elif (
            task.reminded_at is None and working_days_between(session, today, task.due_date, order.company_id) <= before
        ):
            notify(session, TASK_DUE_SOON.name, to=ToRole(department.role_code), order=order, context=context)
            task.reminded_at = now
            reminded += 1
    return reminded, escalated

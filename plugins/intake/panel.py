"""Intake's panel on the order page: what intake knows of an order (IN-4, IN-5, IN-7, IN-9).

Staff who may see the order read its classification (regular or not, transaction
type), the pre-check's findings, the manual check's due date, outcome, who checked it
and when, and every correction made while checking, with entry errors marked. This is
internal information: portal users get no intake panel.
"""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from core.contrib import Panel
from core.models import Order, User
from core.services.orders import may_see_order
from plugins.intake import flow, precheck
from plugins.intake.corrections import field_label, transaction_type_label
from plugins.intake.models import IntakeCorrection, IntakeFinding, IntakeOrder

_RANK = case({"reject": 0, "warn": 1, "pass": 2}, value=IntakeFinding.level, else_=3)


def finding_text(finding: IntakeFinding) -> str:
    """A kept finding in the user's language (its msgid translated), else as the rule wrote it."""
    translate = getattr(precheck, "finding_text", None)
    if translate is None:
        return finding.message
    return str(translate(finding.msgid, finding.params, finding.message))


def finding_rows(session: Session, order: Order) -> list[dict[str, Any]]:
    """The order's kept findings, most serious first: level, text, rule and field."""
    kept = session.scalars(
        select(IntakeFinding).where(IntakeFinding.order_id == order.id).order_by(_RANK, IntakeFinding.id)
    )
    return [{"level": f.level, "text": finding_text(f), "rule": f.rule, "field": f.field} for f in kept]


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """Intake's panel for ``order`` as ``user`` sees it: none for portal users or outside the scope."""
    if user is None or user.customer_id is not None or not may_see_order(session, user, order):
        return []
    record = session.get(IntakeOrder, order.id)
    corrections = list(
        session.scalars(
            select(IntakeCorrection).where(IntakeCorrection.order_id == order.id).order_by(IntakeCorrection.id)
        )
    )
    if record is None and not corrections:
        return []  # not yet submitted: nothing intake knows
    ids = {c.user_id for c in corrections} | ({record.checked_by_id} if record and record.checked_by_id else set())
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
    html = render_template(
        "intake/panel.html",
        order=order,
        record=record,
        findings=finding_rows(session, order),
        corrections=corrections,
        people=people,
        field_label=field_label,
        transaction_type_label=transaction_type_label,
        in_queue=order.step in (flow.MANUAL_CHECK, flow.PRECHECK) and user.can(flow.CHECK_PERMISSION),
    )
    return [Panel(_("Intake"), Markup(html), order=30, plugin="intake")]

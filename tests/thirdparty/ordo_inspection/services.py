"""Inspection's business rules: record a report, find an order's reports, decide whether it may pass.

Each function takes a session (and an actor where one acts) and does one thing; the
views, the order-page panel, the guard and the certificate all go through these.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.calendar import working_days_between
from core.clock import COMPANY_TIMEZONE
from core.models import Order, OrderTransition, User
from core.notify import ToRole, ToUser, notify
from core.security.scopes import through_order
from core.services import Conflict, ServiceError, audit
from core.settings import get_setting
from ordo_inspection import REMIND_AFTER_DAYS, STEP, URGENT_WITHOUT_REPORT
from ordo_inspection.models import InspectionReport

#: The longest note a report keeps.
NOTE_MAX = 1000


def reports_of(session: Session, order: Order) -> list[InspectionReport]:
    """Every inspection report on ``order``, newest first."""
    return list(
        session.scalars(
            select(InspectionReport)
            .where(InspectionReport.order_id == order.id)
            .order_by(InspectionReport.at.desc(), InspectionReport.id.desc())
        )
    )


def visible_reports(session: Session, actor: User, limit: int = 200) -> list[tuple[InspectionReport, Order]]:
    """The newest reports on orders ``actor`` may see (core's data scope decides which)."""
    stmt = select(InspectionReport, Order).join(Order, InspectionReport.order_id == Order.id)
    rows = session.execute(
        through_order(stmt, InspectionReport.order_id, actor)
        .order_by(InspectionReport.at.desc(), InspectionReport.id.desc())
        .limit(limit)
    )
    return [(report, order) for report, order in rows]


def record_report(session: Session, actor: User, order: Order, passed: bool, note: str = "") -> InspectionReport:
    """Record an inspection of ``order``'s goods by ``actor``; the order must wait for inspection.

    A failed inspection needs a note saying what was wrong, so the next inspector and
    sales know what to fix. Audited; nothing is committed here.
    """
    if not actor.can("inspection.report.create"):
        raise ServiceError("forbidden", "you may not record inspection reports", status=403)
    if order.step != STEP:
        raise Conflict(
            "not_waiting_for_inspection",
            f"order {order.number} is not waiting for inspection (it is at step {order.step!r})",
        )
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ServiceError("invalid", f"the note is longer than {NOTE_MAX} characters", {"note": ["Too long."]})
    if not passed and not note:
        raise ServiceError(
            "invalid", "a failed inspection needs a note saying what was wrong", {"note": ["Say what failed."]}
        )
    report = InspectionReport(order_id=order.id, inspector_id=actor.id, passed=passed, note=note)
    session.add(report)
    session.flush()
    changes = {"order": order.number, "passed": passed, "note": note}
    audit.record(session, actor, "inspection_report", report.id, "create", changes, order_id=order.id)
    if not passed:
        # Queued in this transaction: no report, no message; the worker delivers it.
        sales = [ToRole("sales_manager", branch_id=order.branch_id)]
        if order.owner_id is not None:
            sales.append(ToUser(order.owner_id))
        notify(session, "inspection.failed", to=sales, order=order, context={"note": note})
    return report


def remind_waiting(session: Session, now: dt.datetime) -> int:
    """Remind the warehouse of each order waiting for inspection too many working days.

    At most one reminder per order and day (the dedupe key), so a job run again after a
    crash reminds nobody twice. Returns how many orders were reminded.
    """
    limit = get_setting(session, REMIND_AFTER_DAYS)
    today = now.astimezone(COMPANY_TIMEZONE).date()
    arrived = (
        select(Order, func.max(OrderTransition.at))
        .join(OrderTransition, OrderTransition.order_id == Order.id)
        .where(Order.step == STEP, OrderTransition.to_step == STEP)
        .group_by(Order.id)
    )
    reminded = 0
    for order, since in session.execute(arrived).tuples():
        waited = working_days_between(session, since.astimezone(COMPANY_TIMEZONE).date(), today)
        if waited < limit:
            continue
        notify(
            session,
            "inspection.waiting",
            to=ToRole("warehouse", branch_id=order.branch_id),
            order=order,
            context={"days": waited, "since": f"{since.astimezone(COMPANY_TIMEZONE):%Y-%m-%d}"},
            dedupe_key=f"inspection.waiting:{order.id}:{today.isoformat()}",
        )
        reminded += 1
    return reminded


def pass_refusals(session: Session, order: Order) -> list[str]:
    """Why ``order`` may not pass inspection yet (empty: it may): its latest report must have passed."""
    reports = reports_of(session, order)
    if not reports:
        if order.urgency == "urgent" and get_setting(session, URGENT_WITHOUT_REPORT):
            return []
        return [f"order {order.number} has no inspection report yet: record a passing inspection (验货) first"]
    latest = reports[0]
    if not latest.passed:
        found = f": {latest.note}" if latest.note else ""
        return [
            f"the latest inspection of order {order.number} ({latest.at:%Y-%m-%d %H:%M}) failed{found}; "
            "re-inspect and record a passing report first"
        ]
    return []

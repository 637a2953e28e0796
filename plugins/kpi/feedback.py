"""Complaints (客诉) and follow-up visits (客户回访), recorded and analysed (KP-6).

A complaint is recorded against a customer (and optionally one of its orders) with a
category, an owner and a due date (by default ``kpi.complaints.due_days`` working days
after it was received); it is resolved with a resolution and a root cause, both
required. Follow-up visits are planned with an owner, kind and date, then recorded as
done with their outcome and any issue they surfaced with its root cause.

Everything is scoped like the orders: a complaint or visit about an order is visible to
whoever sees the order, one without an order to whoever sees the customer. Owners are
told when a complaint is assigned to them and, by the daily ``kpi.feedback_overdue``
job (08:30, registered in :mod:`plugins.kpi.surveys`), when a complaint or visit is
overdue.

Metrics: ``kpi.complaints`` (count received), ``kpi.complaint_resolution_time`` (mean
days from received to resolved) and ``kpi.complaints_resolved_on_time`` (percent
resolved by their due date).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, literal, or_, select

from core.calendar import add_working_days, company_for
from core.clock import COMPANY_TIMEZONE
from core.contrib import Job, NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Customer, Order, User
from core.notify import ToRole, ToUser, notify
from core.security.scopes import customer_scope, customer_visible, order_scope, order_visible
from core.services import audit
from core.services.numbering import next_serial
from core.settings import get_setting
from plugins.kpi import flow
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import ORDER_DIMENSIONS, Dimension, Metric, Period
from plugins.kpi.models import VISIT_KINDS, KpiComplaint, KpiVisit
from plugins.kpi.sql import company_date, days_between

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.orm import Session

#: What a complaint is about (the ``complaint_category`` breakdown).
COMPLAINT_CATEGORIES = {
    "quality": N_("Product quality"),
    "delivery": N_("Delivery"),
    "service": N_("Service"),
    "billing": N_("Billing"),
    "other": N_("Other"),
}
#: The numbering code of complaints: ``KS2026-000001``.
NUMBER_CODE = "KS"
MAX_TEXT = 5000
MAX_SHORT = 1000

FORBIDDEN = N_("You need the permission %(permission)s.")
COMPLAINT_NOT_FOUND = N_("Complaint %(id)s was not found.")
VISIT_NOT_FOUND = N_("Follow-up visit %(id)s was not found.")
CUSTOMER_NOT_FOUND = N_("Customer %(id)s was not found.")
ORDER_NOT_FOUND = N_("Order %(id)s was not found.")
ORDER_OF_ANOTHER = N_("Order %(order)s belongs to another customer.")
DESCRIPTION_REQUIRED = N_("Describe the complaint.")
TEXT_TOO_LONG = N_("%(field)s is longer than %(max)s characters.")
CATEGORY_INVALID = N_("Choose a category: %(choices)s.")
OWNER_INVALID = N_("The owner must be an active staff member who may handle complaints and visits.")
DUE_BEFORE_RECEIVED = N_("The due date cannot be before the day the complaint was received.")
RECEIVED_IN_FUTURE = N_("The complaint cannot have been received in the future.")
DATE_INVALID = N_("%(value)s is not a date (YYYY-MM-DD).")
STATUS_INVALID = N_("Choose a status: open or in progress (resolve a complaint with its resolution).")
ALREADY_RESOLVED = N_("Complaint %(number)s is already resolved.")
RESOLUTION_REQUIRED = N_("Give the resolution.")
ROOT_CAUSE_REQUIRED = N_("Give the root cause.")
KIND_INVALID = N_("Choose how the visit is made: %(choices)s.")
OUTCOME_REQUIRED = N_("Give the outcome of the visit.")
VISIT_DONE = N_("This follow-up visit is already recorded as done.")

COMPLAINT_ASSIGNED = NotificationTemplate(
    "kpi.complaint_assigned",
    label=N_("KPI: a complaint was assigned to you"),
    subject={
        "zh_CN": "客诉 {{ number }} 已分配给您，整改期限 {{ due_date }}",
        "en": "Complaint {{ number }} is assigned to you, due {{ due_date }}",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n\n客户 {{ customer }} 的客诉 {{ number }}"
        "{% if order %}（订单 {{ order.number }}）{% endif %}已分配给您处理，"
        "请在 {{ due_date }} 前解决并填写根本原因。\n\n"
        "{{ description }}\n",
        "en": "Dear {{ recipient }},\n\nComplaint {{ number }} of customer {{ customer }}"
        "{% if order %} (order {{ order.number }}){% endif %} is assigned to you. Please resolve it by {{ due_date }} "
        "and record its root cause.\n\n{{ description }}\n",
    },
    plugin="kpi",
)
COMPLAINT_OVERDUE = NotificationTemplate(
    "kpi.complaint_overdue",
    label=N_("KPI: a complaint is past its due date"),
    subject={
        "zh_CN": "客诉 {{ number }} 已超过期限 {{ due_date }}",
        "en": "Complaint {{ number }} is overdue (due {{ due_date }})",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n\n客户 {{ customer }} 的客诉 {{ number }} 应于 {{ due_date }} 前解决，"
        "目前仍未解决。请尽快处理。\n",
        "en": "Dear {{ recipient }},\n\nComplaint {{ number }} of customer {{ customer }} was due to be resolved by "
        "{{ due_date }} and is still open. Please handle it.\n",
    },
    plugin="kpi",
)
VISIT_OVERDUE = NotificationTemplate(
    "kpi.visit_overdue",
    label=N_("KPI: a follow-up visit is past its date"),
    subject={
        "zh_CN": "客户回访（{{ customer }}）计划于 {{ due_date }}，尚未完成",
        "en": "Follow-up visit to {{ customer }} planned for {{ due_date }} is not done",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n\n对客户 {{ customer }} 的回访计划于 {{ due_date }}，尚未记录结果。"
        "{% if purpose %}\n目的：{{ purpose }}{% endif %}\n",
        "en": "Dear {{ recipient }},\n\nThe follow-up visit to customer {{ customer }} planned for {{ due_date }} "
        "has no outcome recorded yet.{% if purpose %}\nPurpose: {{ purpose }}{% endif %}\n",
    },
    plugin="kpi",
)

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (COMPLAINT_ASSIGNED, COMPLAINT_OVERDUE, VISIT_OVERDUE)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this field as it is" in :func:`update_complaint`.
UNSET: Any = _Unset()


# --- helpers -------------------------------------------------------------------------------


def today() -> dt.date:
    """The company's date now."""
    return utcnow().astimezone(COMPANY_TIMEZONE).date()


def _day_of(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(COMPANY_TIMEZONE).date()


def _require(actor: User | None, permission: str) -> User:
    if actor is None or not actor.active or not actor.can(permission):
        raise KpiError("forbidden", FORBIDDEN, 403, permission=permission)
    return actor


def _date(value: Any, field: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise KpiError("invalid", DATE_INVALID, 422, {field: ["Not a date."]}, value=str(value)) from None


def _text(value: Any, field: str, limit: int, label: str) -> str:
    text = str(value or "").strip()
    if len(text) > limit:
        raise KpiError("invalid", TEXT_TOO_LONG, 422, {field: ["Too long."]}, field=label, max=limit)
    return text


def _id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return -1
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 < number < 2**63 else -1


def complaint_scope(user: User | None) -> ColumnElement[bool]:
    """WHERE clause: complaints ``user`` may read — their order is visible, or their customer is."""
    return or_(
        and_(KpiComplaint.order_id.is_not(None), order_visible(KpiComplaint.order_id, user)),
        customer_visible(KpiComplaint.customer_id, user),
    )


def visit_scope(user: User | None) -> ColumnElement[bool]:
    """WHERE clause: visits ``user`` may read — their order is visible, or their customer is."""
    return or_(
        and_(KpiVisit.order_id.is_not(None), order_visible(KpiVisit.order_id, user)),
        customer_visible(KpiVisit.customer_id, user),
    )


def _customer(session: Session, actor: User, customer_id: Any) -> Customer:
    number = _id(customer_id)
    customer = (
        session.scalar(select(Customer).where(Customer.id == number, customer_scope(actor)))
        if number and number > 0
        else None
    )
    if customer is None:
        raise KpiError("not_found", CUSTOMER_NOT_FOUND, 404, {"customer_id": ["Not found."]}, id=customer_id)
    return customer


def _order(session: Session, actor: User, order_id: Any, customer: Customer) -> Order | None:
    number = _id(order_id)
    if number is None:
        return None
    order = session.scalar(select(Order).where(Order.id == number, order_scope(actor))) if number > 0 else None
    if order is None:
        raise KpiError("not_found", ORDER_NOT_FOUND, 404, {"order_id": ["Not found."]}, id=order_id)
    if order.customer_id != customer.id:
        raise KpiError(
            "invalid", ORDER_OF_ANOTHER, 422, {"order_id": ["Another customer's order."]}, order=order.number
        )
    return order


def _owner(session: Session, owner_id: Any) -> User | None:
    number = _id(owner_id)
    if number is None:
        return None
    owner = session.get(User, number) if number > 0 else None
    if owner is None or not owner.active or owner.customer_id is not None or not owner.can(flow.FEEDBACK_MANAGE):
        raise KpiError("invalid", OWNER_INVALID, 422, {"owner_id": ["Not a possible owner."]})
    return owner


def owners(session: Session) -> list[User]:
    """Active staff who may own complaints and visits (``kpi.feedback.manage``), by name."""
    users = session.scalars(select(User).where(User.active.is_(True), User.customer_id.is_(None)).order_by(User.name))
    return [user for user in users if user.can(flow.FEEDBACK_MANAGE)]


def _category(value: Any) -> str:
    category = str(value or "").strip() or "other"
    if category not in COMPLAINT_CATEGORIES:
        raise KpiError(
            "invalid", CATEGORY_INVALID, 422, {"category": ["Unknown."]}, choices=", ".join(COMPLAINT_CATEGORIES)
        )
    return category


def _tell_owner(session: Session, complaint: KpiComplaint, customer: Customer, order: Order | None) -> None:
    if complaint.owner_id is None:
        return
    notify(
        session,
        COMPLAINT_ASSIGNED.name,
        to=ToUser(complaint.owner_id),
        order=order,
        context={
            "number": complaint.number,
            "customer": f"{customer.code} {customer.name}",
            "due_date": complaint.due_date.isoformat() if complaint.due_date else "",
            "description": complaint.description,
        },
        dedupe_key=f"{COMPLAINT_ASSIGNED.name}:{complaint.id}:{complaint.owner_id}",
    )


# --- complaints ----------------------------------------------------------------------------


def get_complaint(session: Session, actor: User, complaint_id: int, *, for_update: bool = False) -> KpiComplaint:
    """Complaint ``complaint_id`` if ``actor`` may read it (``kpi.feedback.read``, scope); 404 otherwise."""
    _require(actor, flow.FEEDBACK_READ)
    number = _id(complaint_id)
    stmt = select(KpiComplaint).where(KpiComplaint.id == number, complaint_scope(actor))
    if for_update:
        stmt = stmt.with_for_update()
    complaint = session.scalar(stmt) if number and number > 0 else None
    if complaint is None:
        raise KpiError("not_found", COMPLAINT_NOT_FOUND, 404, id=complaint_id)
    return complaint


def record_complaint(
    session: Session,
    actor: User,
    customer_id: int,
    description: str,
    *,
    order_id: int | None = None,
    category: str = "",
    owner_id: int | None = None,
    due_date: dt.date | str | None = None,
    received_at: dt.datetime | None = None,
) -> KpiComplaint:
    """Record a customer complaint (客诉) numbered ``KS<year>-<serial>``.

    Needs ``kpi.feedback.manage``; the customer (404) and the order (404, and it must be
    the customer's: 422) within the actor's scope. ``due_date`` defaults to
    ``kpi.complaints.due_days`` working days after the day received; ``received_at``
    (default now) may be earlier (a complaint taken by phone yesterday) but not later.
    The owner, if any, is told. Everything is checked before anything is written.
    """
    _require(actor, flow.FEEDBACK_MANAGE)
    customer = _customer(session, actor, customer_id)
    order = _order(session, actor, order_id, customer)
    text = _text(description, "description", MAX_TEXT, "Description")
    if not text:
        raise KpiError("invalid", DESCRIPTION_REQUIRED, 422, {"description": ["Required."]})
    kind = _category(category)
    owner = _owner(session, owner_id)
    now = utcnow()
    received = received_at or now
    if received.tzinfo is None:
        received = received.replace(tzinfo=dt.UTC)
    if received > now + dt.timedelta(minutes=5):
        raise KpiError("invalid", RECEIVED_IN_FUTURE, 422, {"received_at": ["In the future."]})
    received_day = _day_of(received)
    due = _date(due_date, "due_date")
    if due is None:
        due = add_working_days(session, received_day, int(get_setting(session, flow.COMPLAINT_DAYS)))
    elif due < received_day:
        raise KpiError("invalid", DUE_BEFORE_RECEIVED, 422, {"due_date": ["Before the day received."]})
    company = company_for(session, order.company_id if order is not None else None)
    serial = next_serial(session, company.id, NUMBER_CODE, received_day.year)
    complaint = KpiComplaint(
        number=f"{NUMBER_CODE}{received_day.year}-{serial:06d}",
        customer_id=customer.id,
        order_id=order.id if order is not None else None,
        received_at=received,
        category=kind,
        description=text,
        owner_id=owner.id if owner is not None else None,
        due_date=due,
        status="open",
        created_by_id=actor.id,
    )
    session.add(complaint)
    session.flush()
    audit.record(
        session,
        actor,
        "kpi_complaint",
        complaint.id,
        "created",
        {
            "number": complaint.number,
            "customer_id": customer.id,
            "category": kind,
            "owner_id": complaint.owner_id,
            "due_date": due,
        },
        order_id=complaint.order_id,
    )
    _tell_owner(session, complaint, customer, order)
    return complaint


def update_complaint(
    session: Session,
    actor: User,
    complaint_id: int,
    *,
    owner_id: Any = UNSET,
    due_date: Any = UNSET,
    status: Any = UNSET,
    category: Any = UNSET,
) -> KpiComplaint:
    """Assign an owner, move the due date, mark the complaint in progress or recategorise it.

    Needs ``kpi.feedback.manage``; 404 out of scope; 409 once resolved; 422 for a bad
    value (nothing changed). A new owner is told.
    """
    _require(actor, flow.FEEDBACK_MANAGE)
    complaint = get_complaint(session, actor, complaint_id, for_update=True)
    if complaint.status == "resolved":
        raise KpiError("state", ALREADY_RESOLVED, 409, number=complaint.number)
    values: dict[str, Any] = {}
    if owner_id is not UNSET:
        owner = _owner(session, owner_id)
        values["owner_id"] = owner.id if owner is not None else None
    if due_date is not UNSET:
        due = _date(due_date, "due_date")
        if due is None:
            raise KpiError("invalid", DATE_INVALID, 422, {"due_date": ["Required."]}, value="")
        if due < _day_of(complaint.received_at):
            raise KpiError("invalid", DUE_BEFORE_RECEIVED, 422, {"due_date": ["Before the day received."]})
        values["due_date"] = due
    if status is not UNSET:
        if status not in ("open", "in_progress"):
            raise KpiError("invalid", STATUS_INVALID, 422, {"status": ["open or in_progress."]})
        values["status"] = status
    if category is not UNSET:
        values["category"] = _category(category)
    changes = audit.diff(complaint, values)
    for key, value in values.items():
        setattr(complaint, key, value)
    assigned = "owner_id" in changes and complaint.owner_id is not None
    if assigned and complaint.status == "open" and "status" not in values:
        complaint.status = "in_progress"
        changes["status"] = ["open", "in_progress"]
    session.flush()
    if changes:
        audit.record(session, actor, "kpi_complaint", complaint.id, "updated", changes, order_id=complaint.order_id)
    if "owner_id" in changes and complaint.owner_id is not None:
        customer = session.get(Customer, complaint.customer_id)
        order = session.get(Order, complaint.order_id) if complaint.order_id else None
        assert customer is not None
        _tell_owner(session, complaint, customer, order)
    return complaint


def resolve_complaint(
    session: Session,
    actor: User,
    complaint_id: int,
    resolution: str,
    root_cause: str,
    *,
    resolved_at: dt.datetime | None = None,
) -> KpiComplaint:
    """Resolve a complaint with its resolution and root cause (根本原因), both required (422).

    Needs ``kpi.feedback.manage``; 404 out of scope; 409 when resolved already.
    ``resolved_at`` (default now) may not precede the complaint's receipt nor lie ahead.
    """
    _require(actor, flow.FEEDBACK_MANAGE)
    complaint = get_complaint(session, actor, complaint_id, for_update=True)
    if complaint.status == "resolved":
        raise KpiError("state", ALREADY_RESOLVED, 409, number=complaint.number)
    text = _text(resolution, "resolution", MAX_TEXT, "Resolution")
    cause = _text(root_cause, "root_cause", MAX_SHORT, "Root cause")
    if not text:
        raise KpiError("invalid", RESOLUTION_REQUIRED, 422, {"resolution": ["Required."]})
    if not cause:
        raise KpiError("invalid", ROOT_CAUSE_REQUIRED, 422, {"root_cause": ["Required."]})
    now = utcnow()
    when = resolved_at or now
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    received = complaint.received_at if complaint.received_at.tzinfo else complaint.received_at.replace(tzinfo=dt.UTC)
    if when > now + dt.timedelta(minutes=5) or when < received:
        raise KpiError("invalid", DATE_INVALID, 422, {"resolved_at": ["Out of range."]}, value=when.isoformat())
    before = complaint.status
    complaint.status = "resolved"
    complaint.resolution = text
    complaint.root_cause = cause
    complaint.resolved_at = when
    session.flush()
    audit.record(
        session,
        actor,
        "kpi_complaint",
        complaint.id,
        "resolved",
        {"status": [before, "resolved"], "root_cause": cause},
        order_id=complaint.order_id,
    )
    return complaint


# --- visits --------------------------------------------------------------------------------


def get_visit(session: Session, actor: User, visit_id: int, *, for_update: bool = False) -> KpiVisit:
    """Visit ``visit_id`` if ``actor`` may read it; 404 otherwise."""
    _require(actor, flow.FEEDBACK_READ)
    number = _id(visit_id)
    stmt = select(KpiVisit).where(KpiVisit.id == number, visit_scope(actor))
    if for_update:
        stmt = stmt.with_for_update()
    visit = session.scalar(stmt) if number and number > 0 else None
    if visit is None:
        raise KpiError("not_found", VISIT_NOT_FOUND, 404, id=visit_id)
    return visit


def plan_visit(
    session: Session,
    actor: User,
    customer_id: int,
    due_date: dt.date | str | None,
    *,
    kind: str = "phone",
    owner_id: int | None = None,
    order_id: int | None = None,
    purpose: str = "",
) -> KpiVisit:
    """Plan a follow-up visit (客户回访) to a customer: how, when, who, why.

    Needs ``kpi.feedback.manage``; customer and order within scope (404); the date is
    required (422); the owner defaults to the actor.
    """
    _require(actor, flow.FEEDBACK_MANAGE)
    customer = _customer(session, actor, customer_id)
    order = _order(session, actor, order_id, customer)
    if kind not in VISIT_KINDS:
        raise KpiError("invalid", KIND_INVALID, 422, {"kind": ["Unknown."]}, choices=", ".join(VISIT_KINDS))
    due = _date(due_date, "due_date")
    if due is None:
        raise KpiError("invalid", DATE_INVALID, 422, {"due_date": ["Required."]}, value="")
    text = _text(purpose, "purpose", MAX_SHORT, "Purpose")
    owner = _owner(session, owner_id) if owner_id not in (None, "") else None
    visit = KpiVisit(
        customer_id=customer.id,
        order_id=order.id if order is not None else None,
        kind=kind,
        owner_id=owner.id if owner is not None else actor.id,
        due_date=due,
        status="planned",
        purpose=text,
        created_by_id=actor.id,
    )
    session.add(visit)
    session.flush()
    audit.record(
        session,
        actor,
        "kpi_visit",
        visit.id,
        "planned",
        {"customer_id": customer.id, "kind": kind, "due_date": due, "owner_id": visit.owner_id},
        order_id=visit.order_id,
    )
    return visit


def record_visit(
    session: Session,
    actor: User,
    visit_id: int,
    outcome: str,
    issue: str = "",
    root_cause: str = "",
    *,
    done_at: dt.datetime | None = None,
) -> KpiVisit:
    """Record a planned visit as done with its outcome (required) and any issue and root cause.

    Needs ``kpi.feedback.manage``; 404 out of scope; 409 when done already; 422 without an outcome.
    """
    _require(actor, flow.FEEDBACK_MANAGE)
    visit = get_visit(session, actor, visit_id, for_update=True)
    if visit.status == "done":
        raise KpiError("state", VISIT_DONE, 409)
    text = _text(outcome, "outcome", MAX_TEXT, "Outcome")
    if not text:
        raise KpiError("invalid", OUTCOME_REQUIRED, 422, {"outcome": ["Required."]})
    found = _text(issue, "issue", MAX_SHORT, "Issue")
    cause = _text(root_cause, "root_cause", MAX_SHORT, "Root cause")
    visit.status = "done"
    visit.outcome = text
    visit.issue = found
    visit.root_cause = cause
    visit.done_at = done_at or utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "kpi_visit",
        visit.id,
        "done",
        {"status": ["planned", "done"], "issue": found},
        order_id=visit.order_id,
    )
    return visit


# --- reminders -----------------------------------------------------------------------------


def notify_overdue(session: Session, now: dt.datetime) -> int:
    """Tell owners (customer service when none) of complaints and visits past their due date; once a day each.

    Returns how many reminders were queued. Run daily at 08:30 by ``kpi.feedback_overdue``.
    """
    day = _day_of(now)
    count = 0
    complaints = session.execute(
        select(KpiComplaint, Customer)
        .join(Customer, Customer.id == KpiComplaint.customer_id)
        .where(KpiComplaint.status != "resolved", KpiComplaint.due_date < day)
        .order_by(KpiComplaint.id)
    ).all()
    for complaint, customer in complaints:
        to = ToUser(complaint.owner_id) if complaint.owner_id else ToRole(flow.CUSTOMER_SERVICE)
        notify(
            session,
            COMPLAINT_OVERDUE.name,
            to=to,
            context={
                "number": complaint.number,
                "customer": f"{customer.code} {customer.name}",
                "due_date": complaint.due_date.isoformat() if complaint.due_date else "",
            },
            dedupe_key=f"{COMPLAINT_OVERDUE.name}:{complaint.id}:{day.isoformat()}",
        )
        count += 1
    visits = session.execute(
        select(KpiVisit, Customer)
        .join(Customer, Customer.id == KpiVisit.customer_id)
        .where(KpiVisit.status == "planned", KpiVisit.due_date < day)
        .order_by(KpiVisit.id)
    ).all()
    for visit, customer in visits:
        to = ToUser(visit.owner_id) if visit.owner_id else ToRole(flow.CUSTOMER_SERVICE)
        notify(
            session,
            VISIT_OVERDUE.name,
            to=to,
            context={
                "customer": f"{customer.code} {customer.name}",
                "due_date": visit.due_date.isoformat(),
                "purpose": visit.purpose,
            },
            dedupe_key=f"{VISIT_OVERDUE.name}:{visit.id}:{day.isoformat()}",
        )
        count += 1
    return count


# --- metrics -------------------------------------------------------------------------------


def complaint_facts(period: Period) -> Select[Any]:
    """``kpi.complaints`` facts: each complaint received in the period, 1."""
    return select(
        KpiComplaint.order_id.label("order_id"),
        KpiComplaint.customer_id.label("customer_id"),
        literal(1).label("num"),
        literal(1).label("den"),
        KpiComplaint.category.label("complaint_category"),
    ).where(period.within(KpiComplaint.received_at))


def resolution_time_facts(period: Period) -> Select[Any]:
    """``kpi.complaint_resolution_time`` facts: each complaint resolved in the period, days received → resolved."""
    return select(
        KpiComplaint.order_id.label("order_id"),
        KpiComplaint.customer_id.label("customer_id"),
        days_between(KpiComplaint.received_at, KpiComplaint.resolved_at).label("num"),
        literal(1).label("den"),
        KpiComplaint.category.label("complaint_category"),
    ).where(period.within(KpiComplaint.resolved_at))


def on_time_facts(period: Period) -> Select[Any]:
    """``kpi.complaints_resolved_on_time`` facts: each complaint resolved in the period, 1 when by its due date."""
    on_time = case(
        (KpiComplaint.due_date.is_(None), 1),
        (company_date(KpiComplaint.resolved_at) <= KpiComplaint.due_date, 1),
        else_=0,
    )
    return select(
        KpiComplaint.order_id.label("order_id"),
        KpiComplaint.customer_id.label("customer_id"),
        on_time.label("num"),
        literal(1).label("den"),
        KpiComplaint.category.label("complaint_category"),
    ).where(period.within(KpiComplaint.resolved_at))


def _category_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    return {value: COMPLAINT_CATEGORIES.get(value, value) for value in values}


#: The fact dimension of the complaint metrics.
DIMENSIONS: tuple[Dimension, ...] = (Dimension("complaint_category", N_("Complaint category"), None, _category_names),)

_DIMS = (*ORDER_DIMENSIONS, "complaint_category")

METRICS: tuple[Metric, ...] = (
    Metric(
        "kpi.complaints",
        N_("Customer complaints"),
        "count",
        "lower",
        N_("Complaints received in the period (by the time they were received), with or without an order."),
        complaint_facts,
        aggregate="sum",
        places=0,
        dimensions=_DIMS,
    ),
    Metric(
        "kpi.complaint_resolution_time",
        N_("Complaint resolution time"),
        "days",
        "lower",
        N_("For each complaint resolved in the period: days from its receipt to its resolution; the average."),
        resolution_time_facts,
        aggregate="mean",
        target=Decimal("3"),
        places=1,
        dimensions=_DIMS,
    ),
    Metric(
        "kpi.complaints_resolved_on_time",
        N_("Complaints resolved on time"),
        "percent",
        "higher",
        N_(
            "Complaints resolved in the period whose resolution day (company time) is on or before their "
            "due date, divided by the complaints resolved in the period, × 100."
        ),
        on_time_facts,
        aggregate="percent",
        target=Decimal("90"),
        dimensions=_DIMS,
    ),
)


#: The daily reminder of overdue complaints and visits.
JOBS: tuple[Job, ...] = (
    Job(
        "kpi.feedback_overdue",
        "daily:08:30",
        notify_overdue,
        plugin="kpi",
        label=N_("KPI: remind owners of overdue complaints and follow-up visits"),
    ),
)

"""Logistics exceptions (物流异常, LG-5): delay, damage or loss of a shipment, and their follow-up.

Reporting an exception tells the customer at once — one message per kind, in the
customer's language — and opens a follow-up: an owner (by default the order's
salesperson, else whoever reported it) and a due date (by default the setting
``logistics.exceptions.follow_up_days`` working days ahead). The owner is told too.
The exception stays open until someone resolves it with a written resolution, which
the customer is told as well; open exceptions past their due date are *overdue*
(:func:`exception_query` with ``overdue``), listed on the Exceptions screen.

Services take ``(session, actor, …)``, need ``logistics.exceptions.manage``, keep to
the actor's data scope, validate before changing anything, audit, and never commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.clock import company_now
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Order, User
from core.notify import ToCustomer, ToUser, notify
from core.services import audit
from core.services.orders import get_order, visible_orders
from core.settings import get_setting
from plugins.logistics import flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import EXCEPTION_KINDS, LogisticsException, LogisticsShipment

DESCRIPTION_LIMIT = 1000

_SHIPMENT_ZH = (
    "发货单 {{ shipment.number }}{% if shipment.tracking_number %}（运单号 {{ shipment.tracking_number }}）{% endif %}"
)
_SHIPMENT_EN = (
    "shipment {{ shipment.number }}{% if shipment.tracking_number %} (tracking number "
    "{{ shipment.tracking_number }}){% endif %}"
)
_FOLLOW_UP_ZH = "我们已安排专人跟进，预计 {{ exception.due_date|date }} 前给您答复。如有疑问请联系我们。\n"
_FOLLOW_UP_EN = (
    "Someone is following it up and will get back to you by {{ exception.due_date|date }}. "
    "Please contact us with any question.\n"
)


def _customer_template(
    kind: str, label: str, zh_subject: str, en_subject: str, zh_what: str, en_what: str
) -> NotificationTemplate:
    return NotificationTemplate(
        f"logistics.exception_{kind}",
        label=label,
        subject={"zh_CN": zh_subject, "en": en_subject},
        body={
            "zh_CN": "{{ recipient }}，您好：\n订单 {{ order.number }} 的"
            + _SHIPMENT_ZH
            + zh_what
            + "\n情况说明：{{ exception.description }}\n"
            + _FOLLOW_UP_ZH,
            "en": "Dear {{ recipient }},\n"
            + en_what.replace("{shipment}", _SHIPMENT_EN)
            + "\nDetails: {{ exception.description }}\n"
            + _FOLLOW_UP_EN,
        },
        plugin="logistics",
    )


DELAY = _customer_template(
    "delay",
    N_("A shipment is delayed (to the customer)"),
    "订单 {{ order.number }} 的货物运输延误",
    "Your goods of order {{ order.number }} are delayed",
    "在运输途中发生延误，我们深表歉意。",
    "we are sorry to tell you that {shipment} of order {{ order.number }} is delayed in transit.",
)
DAMAGE = _customer_template(
    "damage",
    N_("Goods were damaged in transit (to the customer)"),
    "订单 {{ order.number }} 的货物运输途中破损",
    "Goods of order {{ order.number }} were damaged in transit",
    "在运输途中发生破损，我们深表歉意。",
    "we are sorry to tell you that goods in {shipment} of order {{ order.number }} were damaged in transit.",
)
LOSS = _customer_template(
    "loss",
    N_("A shipment was lost (to the customer)"),
    "订单 {{ order.number }} 的货物运输途中丢失",
    "Goods of order {{ order.number }} were lost in transit",
    "在运输途中丢失，我们深表歉意，并将尽快补发或赔偿。",
    "we are sorry to tell you that {shipment} of order {{ order.number }} was lost in transit; "
    "we will replace or compensate it as quickly as we can.",
)
ASSIGNED = NotificationTemplate(
    "logistics.exception_assigned",
    label=N_("A logistics exception to follow up (to its owner)"),
    subject={
        "zh_CN": "【物流异常】订单 {{ order.number }}：{{ kind.zh_CN }}，请于 {{ exception.due_date|date }} 前处理",
        "en": "[Logistics exception] Order {{ order.number }}: {{ kind.en }}, due {{ exception.due_date|date }}",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的"
        + _SHIPMENT_ZH
        + "发生物流异常：{{ kind.zh_CN }}。\n"
        "说明：{{ exception.description }}\n由您跟进，截止日期 {{ exception.due_date|date }}。客户已收到通知。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}), " + _SHIPMENT_EN + ": {{ kind.en }}.\n"
        "Details: {{ exception.description }}\nYou follow it up; due {{ exception.due_date|date }}. "
        "The customer has been told.\n",
    },
    plugin="logistics",
)
RESOLVED = NotificationTemplate(
    "logistics.exception_resolved",
    label=N_("A logistics exception was resolved (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的物流异常已处理",
        "en": "The logistics problem with order {{ order.number }} is resolved",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n订单 {{ order.number }} 的"
        + _SHIPMENT_ZH
        + "此前发生的{{ kind.zh_CN }}已处理。\n"
        "处理结果：{{ exception.resolution }}\n",
        "en": "Dear {{ recipient }},\nthe {{ kind.en|lower }} of " + _SHIPMENT_EN + " of order {{ order.number }} "
        "has been dealt with.\nResolution: {{ exception.resolution }}\n",
    },
    plugin="logistics",
)

#: The customer's notice per exception kind.
CUSTOMER_TEMPLATES = {"delay": DELAY, "damage": DAMAGE, "loss": LOSS}
#: The notification templates of this module (collected by the plugin).
NOTIFICATIONS = (DELAY, DAMAGE, LOSS, ASSIGNED, RESOLVED)


def _labels(session: Session, kind: str) -> dict[str, str]:
    from plugins.logistics.delivery import both_languages

    return both_languages(session, EXCEPTION_KINDS.get(kind, kind))


def _check_permission(actor: User) -> None:
    if actor.customer_id is not None or not actor.can(flow.EXCEPTIONS_MANAGE):
        raise LogisticsError("forbidden", N_("You may not report or resolve logistics exceptions."), status=403)


def today() -> dt.date:
    """The company's date today."""
    return company_now().date()


def default_due_date(session: Session, start: dt.date | None = None) -> dt.date:
    """The follow-up's due date: the setting's number of working days after ``start`` (today)."""
    return add_working_days(session, start or today(), int(get_setting(session, flow.EXCEPTION_DUE_DAYS)))


def _owner(session: Session, owner_id: int | None, order: Order, actor: User) -> User:
    if owner_id is None:
        candidate = session.get(User, order.owner_id) if order.owner_id is not None else None
        if candidate is not None and candidate.active and candidate.customer_id is None:
            return candidate
        return actor
    owner = session.get(User, owner_id) if 0 < owner_id < 2**63 else None
    if owner is None or not owner.active or owner.customer_id is not None:
        raise LogisticsError(
            "unknown_owner",
            N_("The owner must be an active member of staff."),
            details={"owner_id": ["invalid"]},
        )
    return owner


def report_exception(
    session: Session,
    actor: User,
    shipment_id: int,
    kind: str,
    description: str,
    *,
    owner_id: int | None = None,
    due_date: dt.date | None = None,
) -> LogisticsException:
    """Report a delay, damage or loss of a shipment; tell the customer and the follow-up's owner.

    The owner defaults to the order's owner (salesperson), else the actor; the due date
    to the setting's working days from today. Refused: unknown kind, no description, an
    owner who is not active staff, a due date in the past (422), a cancelled or merely
    planned shipment (409), no right (403), outside the data scope (404).
    """
    _check_permission(actor)
    shipment = session.get(LogisticsShipment, shipment_id) if 0 < shipment_id < 2**63 else None
    if shipment is None:
        raise LogisticsError("unknown_shipment", N_("Shipment %(id)s does not exist."), status=404, id=shipment_id)
    order = get_order(session, actor, shipment.order_id)
    if kind not in EXCEPTION_KINDS:
        raise LogisticsError(
            "unknown_exception_kind",
            N_("%(kind)s is not a kind of exception; use delay, damage or loss."),
            details={"kind": ["invalid"]},
            kind=str(kind),
        )
    text = (description or "").strip()
    if not text:
        raise LogisticsError("required", N_("Please describe what happened."), details={"description": ["required"]})
    if len(text) > DESCRIPTION_LIMIT:
        raise LogisticsError(
            "too_long",
            N_("The text is longer than %(max)s characters."),
            details={"description": ["too_long"]},
            max=DESCRIPTION_LIMIT,
        )
    owner = _owner(session, owner_id, order, actor)
    if due_date is not None and due_date < today():
        raise LogisticsError("due_in_past", N_("The due date cannot lie in the past."), details={"due_date": ["past"]})
    if shipment.status == "cancelled":
        raise LogisticsError(
            "cancelled_shipment",
            N_("Shipment %(number)s is cancelled."),
            status=409,
            number=shipment.number,
        )
    exception = LogisticsException(
        shipment_id=shipment.id,
        order_id=order.id,
        kind=kind,
        description=text,
        owner_id=owner.id,
        due_date=due_date or default_due_date(session),
        reported_by_id=actor.id,
    )
    session.add(exception)
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "report_exception",
        {"exception": exception.id, "kind": kind, "owner": owner.id, "due_date": exception.due_date},
        order_id=order.id,
    )
    context: dict[str, Any] = {"shipment": shipment, "exception": exception, "kind": _labels(session, kind)}
    notify(
        session,
        CUSTOMER_TEMPLATES[kind].name,
        to=ToCustomer(order.customer_id),
        order=order,
        context=context,
        dedupe_key=f"logistics.exception:{exception.id}",
    )
    notify(
        session,
        ASSIGNED.name,
        to=ToUser(owner.id),
        order=order,
        context=context,
        dedupe_key=f"logistics.exception_assigned:{exception.id}",
    )
    return exception


def get_exception(session: Session, actor: User, exception_id: int) -> LogisticsException:
    """The exception ``exception_id`` when its order lies in the actor's scope; 404 otherwise."""
    exception = session.get(LogisticsException, exception_id) if 0 < exception_id < 2**63 else None
    if exception is None:
        raise LogisticsError("unknown_exception", N_("Exception %(id)s does not exist."), status=404, id=exception_id)
    get_order(session, actor, exception.order_id)
    return exception


def resolve_exception(session: Session, actor: User, exception_id: int, resolution: str) -> LogisticsException:
    """Close an open exception with its resolution (text required) and tell the customer.

    Refused: no resolution (422), already resolved (409), no right (403), outside the
    data scope (404).
    """
    _check_permission(actor)
    exception = get_exception(session, actor, exception_id)
    text = (resolution or "").strip()
    if not text:
        raise LogisticsError(
            "required", N_("Please describe how the exception was resolved."), details={"resolution": ["required"]}
        )
    if len(text) > DESCRIPTION_LIMIT:
        raise LogisticsError(
            "too_long",
            N_("The text is longer than %(max)s characters."),
            details={"resolution": ["too_long"]},
            max=DESCRIPTION_LIMIT,
        )
    if exception.status == "resolved":
        raise LogisticsError("already_resolved", N_("This exception is already resolved."), status=409)
    exception.status = "resolved"
    exception.resolution = text
    exception.resolved_by_id = actor.id
    exception.resolved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        exception.shipment_id,
        "resolve_exception",
        {"exception": exception.id, "resolution": text},
        order_id=exception.order_id,
    )
    order = session.get(Order, exception.order_id)
    shipment = session.get(LogisticsShipment, exception.shipment_id)
    if order is not None:
        notify(
            session,
            RESOLVED.name,
            to=ToCustomer(order.customer_id),
            order=order,
            context={"shipment": shipment, "exception": exception, "kind": _labels(session, exception.kind)},
            dedupe_key=f"logistics.exception_resolved:{exception.id}",
        )
    return exception


def exception_query(
    actor: User,
    *,
    status: str | None = None,
    overdue_on: dt.date | None = None,
    owner_id: int | None = None,
    kind: str | None = None,
    text: str | None = None,
) -> Select[tuple[LogisticsException]]:
    """The exceptions of orders in ``actor``'s scope, narrowed by the arguments given.

    ``overdue_on``: open ones due before that day; ``text``: part of the order number.
    """
    scope = visible_orders(actor).with_only_columns(Order.id).scalar_subquery()
    stmt = select(LogisticsException).where(LogisticsException.order_id.in_(scope))
    if status:
        stmt = stmt.where(LogisticsException.status == status)
    if overdue_on is not None:
        stmt = stmt.where(LogisticsException.status == "open", LogisticsException.due_date < overdue_on)
    if owner_id is not None:
        stmt = stmt.where(LogisticsException.owner_id == owner_id)
    if kind:
        stmt = stmt.where(LogisticsException.kind == kind)
    if text:
        numbers = select(Order.id).where(Order.number.contains(text.strip()))
        stmt = stmt.where(LogisticsException.order_id.in_(numbers))
    return stmt


def overdue_exceptions(session: Session, actor: User, on: dt.date | None = None) -> list[LogisticsException]:
    """Open exceptions in ``actor``'s scope whose due date has passed (by ``on``, default today), oldest due first."""
    stmt = exception_query(actor, overdue_on=on or today()).order_by(LogisticsException.due_date, LogisticsException.id)
    return list(session.scalars(stmt))


def open_exceptions(session: Session, order_id: int) -> list[LogisticsException]:
    """The open exceptions of one order (for panels), earliest due first."""
    return list(
        session.scalars(
            select(LogisticsException)
            .where(LogisticsException.order_id == order_id, LogisticsException.status == "open")
            .order_by(LogisticsException.due_date, LogisticsException.id)
        )
    )

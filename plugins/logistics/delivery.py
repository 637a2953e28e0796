"""Delivery, receipt and acceptance (交货与验收, LG-7, LG-8): what happens once goods have left.

- **Delivered**: a shipment is delivered when the carrier says so (tracking event),
  when staff mark it, or when proof of delivery is recorded: who signed, when, and the
  signed delivery note (送货单) uploaded as an order attachment (:func:`mark_delivered`,
  :func:`record_proof_of_delivery`).
- **Receipt**: the customer checks quantity, specification and appearance and either
  confirms receipt in the portal (:func:`confirm_receipt`) or objects — damaged, short,
  wrong item (:func:`object_to_delivery`). Staff resolve an objection with a
  replacement shipment or a return (:func:`resolve_objection`); the objected
  shipment then counts as settled (:func:`receipt_settled`). Staff may also record the
  receipt from signed delivery notes (the step's action ``record_receipt``:
  :func:`receipt_blockers`, :func:`record_receipt`).
- **Acceptance** (验收报告): rounds of acceptance reports per order, "rework needed"
  until one says "accepted"; the signed report is archived as an attachment
  (:func:`record_acceptance`). When the settings require it, the receipt step waits
  for the accepted report.

After each change that can complete the receipt step, :func:`plugins.logistics.progress.advance`
moves the order on. Services take ``(session, actor, …)``, check permission and data
scope, validate everything before the first change, audit, and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attachments.service import add_attachment
from core.clock import COMPANY_TIMEZONE
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Order, OrderAttachment, User
from core.notify import ToCustomer, ToRole, ToUser, notify
from core.services import audit
from core.services.orders import get_order
from core.settings import get_setting
from plugins.logistics import flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    ACCEPTANCE_RESULTS,
    EXCEPTION_KINDS,
    OBJECTION_KINDS,
    OBJECTION_RESOLUTIONS,
    RECEIPT_STATUSES,
    TRACKING_CODES,
    LogisticsAcceptance,
    LogisticsException,
    LogisticsMove,
    LogisticsObjection,
    LogisticsShipment,
    LogisticsTrackingEvent,
)
from plugins.logistics.stock import q3

#: Shipment statuses of goods that have left the warehouse.
LEFT = ("shipped", "delivered")
#: Text limits (the columns' sizes).
SIGNER_LIMIT = 100
TEXT_LIMIT = 1000
#: The attachment kinds the signed delivery note and the acceptance report are filed under.
POD_ATTACHMENT_KIND = "delivery_note"
ACCEPTANCE_ATTACHMENT_KIND = "acceptance_report"
#: What an objection resolved by a return asks back, by objection kind (short: nothing came to return).
RETURN_REASON_OF = {"damaged": "damaged", "wrong_item": "wrong_item"}

#: Guard sentences of the staff action ``record_receipt`` (translated on screens).
NOTHING_SHIPPED = N_("Nothing of this order has been shipped yet.")
NO_PROOF = N_("A shipment has no proof of delivery (signer and signed delivery note) yet.")
OPEN_OBJECTION = N_("The customer's objection to a delivery is still open.")
#: Every guard sentence of this module.
GUARD_REASONS = (NOTHING_SHIPPED, NO_PROOF, OPEN_OBJECTION)

#: A file as screens and the API pass it: name, content, the type the browser claimed.
File = tuple[str, bytes, str]

DELIVERED = NotificationTemplate(
    "logistics.delivered",
    label=N_("Goods delivered: please confirm receipt (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的货物已送达，请确认签收",
        "en": "The goods of order {{ order.number }} have been delivered: please confirm receipt",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n订单 {{ order.number }} 的发货单 {{ shipment.number }}"
        "{% if shipment.tracking_number %}（运单号 {{ shipment.tracking_number }}）{% endif %}已送达。\n"
        "请核对数量、规格和外观，并在客户门户“我的收货”中确认签收；如有破损、短少或错发，请在同一页面提出异议。\n",
        "en": "Dear {{ recipient }},\nshipment {{ shipment.number }} of order {{ order.number }}"
        "{% if shipment.tracking_number %} (tracking number {{ shipment.tracking_number }}){% endif %} "
        "has been delivered.\nPlease check quantity, specification and appearance, and confirm receipt in the "
        "customer portal under Deliveries; if anything is damaged, short or wrong, report it on the same page.\n",
    },
    plugin="logistics",
)
RECEIPT_CONFIRMED = NotificationTemplate(
    "logistics.receipt_confirmed",
    label=N_("The customer confirmed receipt of a shipment (to the order's owner)"),
    subject={
        "zh_CN": "客户已签收订单 {{ order.number }} 的发货单 {{ shipment.number }}",
        "en": "Receipt of shipment {{ shipment.number }} (order {{ order.number }}) confirmed",
    },
    body={
        "zh_CN": "{{ order.customer.name }} 已确认签收订单 {{ order.number }} 的发货单 {{ shipment.number }}。\n",
        "en": "{{ order.customer.name }} confirmed receipt of shipment {{ shipment.number }} "
        "of order {{ order.number }}.\n",
    },
    plugin="logistics",
)
OBJECTION_RAISED = NotificationTemplate(
    "logistics.objection_raised",
    label=N_("The customer objected to a delivery (to the order's owner and the warehouse)"),
    subject={
        "zh_CN": "【收货异议】订单 {{ order.number }} 发货单 {{ shipment.number }}：{{ kind.zh_CN }}",
        "en": "[Delivery objection] Order {{ order.number }}, shipment {{ shipment.number }}: {{ kind.en }}",
    },
    body={
        "zh_CN": "{{ order.customer.name }} 对订单 {{ order.number }} 的发货单 {{ shipment.number }} 提出异议："
        "{{ kind.zh_CN }}。\n说明：{{ objection.description }}\n请尽快处理：补发或退货。\n",
        "en": "{{ order.customer.name }} objects to shipment {{ shipment.number }} of order {{ order.number }}: "
        "{{ kind.en }}.\nDescription: {{ objection.description }}\n"
        "Please resolve it with a replacement shipment or a return.\n",
    },
    plugin="logistics",
)
OBJECTION_RESOLVED = NotificationTemplate(
    "logistics.objection_resolved",
    label=N_("A delivery objection was resolved (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 的收货异议已处理：{{ resolution.zh_CN }}",
        "en": "Your objection on order {{ order.number }} is resolved: {{ resolution.en }}",
    },
    body={
        "zh_CN": "{{ recipient }}，您好：\n您对订单 {{ order.number }} 发货单 {{ shipment.number }} 提出的异议"
        "（{{ kind.zh_CN }}）已处理，处理方式：{{ resolution.zh_CN }}。\n"
        "{% if replacement_number %}我们将为您补发，补发单号 {{ replacement_number }}。\n{% endif %}"
        "{% if return_number %}已为该批货物登记退货申请 {{ return_number }}。\n{% endif %}",
        "en": "Dear {{ recipient }},\nyour objection to shipment {{ shipment.number }} of order {{ order.number }} "
        "({{ kind.en }}) has been resolved: {{ resolution.en }}.\n"
        "{% if replacement_number %}Replacement shipment {{ replacement_number }} will be sent to you.\n{% endif %}"
        "{% if return_number %}Return request {{ return_number }} has been filed for the goods.\n{% endif %}",
    },
    plugin="logistics",
)
ACCEPTANCE_REWORK = NotificationTemplate(
    "logistics.acceptance_rework",
    label=N_("An acceptance report says rework is needed (to the order's owner)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 验收未通过（第 {{ acceptance.round }} 次），需整改",
        "en": "Order {{ order.number }} failed acceptance (round {{ acceptance.round }}): rework needed",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）第 {{ acceptance.round }} 次验收结果：需整改。\n"
        "说明：{{ acceptance.note }}\n整改完成后请安排再次验收。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}), acceptance round {{ acceptance.round }}: "
        "rework needed.\nNote: {{ acceptance.note }}\nArrange a new acceptance once the rework is done.\n",
    },
    plugin="logistics",
)

#: The notification templates of this module (collected by the plugin).
NOTIFICATIONS = (DELIVERED, RECEIPT_CONFIRMED, OBJECTION_RAISED, OBJECTION_RESOLVED, ACCEPTANCE_REWORK)


def both_languages(session: Session, msgid: str) -> dict[str, str]:
    """A catalogue label in both notification languages: ``{"zh_CN": …, "en": …}``."""
    from core.documents import translations_for
    from core.settings import session_registry

    chinese = translations_for(session_registry(session), "zh_CN")
    return {"zh_CN": chinese.gettext(msgid) if msgid else "", "en": msgid}


# --- loading and checking ------------------------------------------------------------------


def _shipment(session: Session, actor: User | None, shipment_id: int) -> tuple[LogisticsShipment, Order]:
    """The shipment and its order, 404 when either is unknown or outside the actor's scope."""
    shipment = session.get(LogisticsShipment, shipment_id) if 0 < shipment_id < 2**63 else None
    if shipment is None:
        raise LogisticsError("unknown_shipment", N_("Shipment %(id)s does not exist."), status=404, id=shipment_id)
    if actor is None:
        order = session.get(Order, shipment.order_id)
        assert order is not None
        return shipment, order
    return shipment, get_order(session, actor, shipment.order_id)


def _require(actor: User, permission: str, msgid: str) -> None:
    if not actor.can(permission):
        raise LogisticsError("forbidden", msgid, status=403)


def _may_answer(actor: User, order: Order) -> None:
    """The customer's own portal user with receipt rights, or staff managing deliveries; 403 otherwise."""
    if actor.customer_id is not None:
        if actor.customer_id == order.customer_id and actor.can(flow.RECEIPT_CONFIRM):
            return
    elif actor.can(flow.DELIVERY_MANAGE):
        return
    raise LogisticsError("forbidden", N_("You may not confirm or object to this delivery."), status=403)


def _left(shipment: LogisticsShipment) -> None:
    if shipment.status not in LEFT:
        raise LogisticsError(
            "not_shipped", N_("Shipment %(number)s has not been shipped yet."), status=409, number=shipment.number
        )


def _text(value: str | None, limit: int, field: str, *, required: bool, msgid: str = "") -> str:
    text = (value or "").strip()
    if required and not text:
        raise LogisticsError("required", msgid or N_("Please enter a description."), details={field: ["required"]})
    if len(text) > limit:
        raise LogisticsError(
            "too_long",
            N_("The text is longer than %(max)s characters."),
            details={field: ["too_long"]},
            max=limit,
        )
    return text


def _instant(value: dt.datetime | str | None, field: str) -> dt.datetime:
    """An aware UTC datetime from a datetime or ISO text (no zone: company time); not in the future."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, dt.datetime):
        raise LogisticsError("invalid_time", N_("Please enter a date and time."), details={field: ["invalid"]})
    if value.tzinfo is None:
        value = value.replace(tzinfo=COMPANY_TIMEZONE)
    value = value.astimezone(dt.UTC)
    if value > utcnow() + dt.timedelta(hours=1):
        raise LogisticsError("future_time", N_("The time cannot lie in the future."), details={field: ["future"]})
    return value


def _owner_and_warehouse(order: Order) -> list[Any]:
    recipients: list[Any] = [ToRole("warehouse")]
    if order.owner_id is not None:
        recipients.append(ToUser(order.owner_id))
    return recipients


# --- delivered -----------------------------------------------------------------------------


def set_delivered(session: Session, actor: User | None, shipment: LogisticsShipment, at: dt.datetime) -> None:
    """Mark ``shipment`` delivered at ``at`` (checked by the caller) and ask the customer to confirm.

    Already delivered: only an earlier time replaces the recorded one. Used by tracking
    (a ``delivered`` event), proof of delivery and :func:`mark_delivered`.
    """
    if shipment.status == "delivered":
        if shipment.delivered_at is not None and at < _aware(shipment.delivered_at):
            shipment.delivered_at = at
        return
    shipment.status = "delivered"
    shipment.delivered_at = at
    session.flush()
    audit.record(
        session, actor, "logistics_shipment", shipment.id, "deliver", {"delivered_at": at}, order_id=shipment.order_id
    )
    order = session.get(Order, shipment.order_id)
    if order is not None and shipment.receipt_status == "pending":
        notify(
            session,
            DELIVERED.name,
            to=ToCustomer(order.customer_id),
            order=order,
            context={"shipment": shipment},
            dedupe_key=f"logistics.delivered:{shipment.id}",
        )


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def mark_delivered(
    session: Session, actor: User, shipment_id: int, at: dt.datetime | str | None = None
) -> LogisticsShipment:
    """Record that a shipped shipment reached the customer (at ``at``, default now).

    Needs ``logistics.delivery.manage``; the customer is asked to confirm receipt.
    Refused: not shipped (409), a time in the future (422).
    """
    _require(actor, flow.DELIVERY_MANAGE, N_("You may not record deliveries."))
    shipment, _order = _shipment(session, actor, shipment_id)
    when = utcnow() if at is None or at == "" else _instant(at, "delivered_at")
    _left(shipment)
    set_delivered(session, actor, shipment, when)
    return shipment


def record_proof_of_delivery(
    session: Session,
    actor: User,
    shipment_id: int,
    signer: str,
    signed_at: dt.datetime | str | None,
    file: File | None,
) -> LogisticsShipment:
    """Record who signed for a shipment and when, with the signed delivery note as an attachment.

    The note is filed on the order (kind ``delivery_note``, shared with the customer);
    the shipment counts as delivered from ``signed_at`` on. Needs
    ``logistics.delivery.manage``. Refused: no signer, a time in the future, a file the
    attachment rules refuse (422), a shipment not shipped (409).
    """
    _require(actor, flow.DELIVERY_MANAGE, N_("You may not record proof of delivery."))
    shipment, order = _shipment(session, actor, shipment_id)
    signer = _text(signer, SIGNER_LIMIT, "signer", required=True, msgid=N_("Please enter who signed for the goods."))
    when = _instant(signed_at, "signed_at")
    _left(shipment)
    attachment: OrderAttachment | None = None
    if file is not None and file[1]:
        filename, data, _claimed = file
        attachment = add_attachment(
            session,
            actor,
            order.id,
            filename=filename,
            data=data,
            kind=POD_ATTACHMENT_KIND,
            note=f"{shipment.number}: {signer}"[:500],
            customer_visible=True,
        )
    shipment.pod_signer = signer
    shipment.pod_signed_at = when
    if attachment is not None:
        shipment.pod_attachment_id = attachment.id
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "proof_of_delivery",
        {"signer": signer, "signed_at": when, "attachment": attachment.id if attachment else None},
        order_id=order.id,
    )
    set_delivered(session, actor, shipment, when)
    return shipment


# --- receipt and objections ----------------------------------------------------------------


def _open_objection(session: Session, shipment_id: int) -> LogisticsObjection | None:
    return session.scalar(
        select(LogisticsObjection)
        .where(LogisticsObjection.shipment_id == shipment_id, LogisticsObjection.resolved_at.is_(None))
        .limit(1)
    )


def confirm_receipt(session: Session, actor: User, shipment_id: int) -> LogisticsShipment:
    """The customer confirms receipt of a shipment (portal), or staff do for them.

    The customer's own portal user needs ``logistics.receipt.confirm``; staff need
    ``logistics.delivery.manage``. The shipment counts as delivered now if no time was
    recorded; the order moves on when every shipment is received. Refused: not shipped,
    already confirmed or objected (409), someone else's order (404), no right (403).
    """
    shipment, order = _shipment(session, actor, shipment_id)
    _may_answer(actor, order)
    _left(shipment)
    if shipment.receipt_status == "confirmed":
        raise LogisticsError(
            "already_confirmed",
            N_("Receipt of shipment %(number)s is already confirmed."),
            status=409,
            number=shipment.number,
        )
    if shipment.receipt_status == "objected":
        raise LogisticsError(
            "objected",
            N_("Shipment %(number)s has an objection; it is settled by a replacement or a return."),
            status=409,
            number=shipment.number,
        )
    now = utcnow()
    if shipment.status != "delivered":
        set_delivered(session, actor, shipment, now)
    shipment.receipt_status = "confirmed"
    shipment.receipt_at = now
    shipment.receipt_by_id = actor.id
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "confirm_receipt",
        {"receipt_status": "confirmed"},
        order_id=order.id,
    )
    if order.owner_id is not None and order.owner_id != actor.id:
        notify(
            session,
            RECEIPT_CONFIRMED.name,
            to=ToUser(order.owner_id),
            order=order,
            context={"shipment": shipment},
            dedupe_key=f"logistics.receipt_confirmed:{shipment.id}",
        )
    _advance(session, order, actor)
    return shipment


def object_to_delivery(
    session: Session, actor: User, shipment_id: int, kind: str, description: str
) -> LogisticsObjection:
    """The customer objects to a delivered shipment: damaged, short or wrong item (LG-7).

    Same rights as :func:`confirm_receipt`. The shipment's receipt is "objected" until
    staff resolve it; the order's owner and the warehouse are told. Refused: unknown
    kind, no description (422), not shipped, already confirmed or objected (409).
    """
    shipment, order = _shipment(session, actor, shipment_id)
    _may_answer(actor, order)
    if kind not in OBJECTION_KINDS:
        raise LogisticsError(
            "unknown_objection",
            N_("%(kind)s is not a kind of objection; use one of %(kinds)s."),
            details={"kind": ["invalid"]},
            kind=str(kind),
            kinds=", ".join(OBJECTION_KINDS),
        )
    description = _text(
        description, TEXT_LIMIT, "description", required=True, msgid=N_("Please describe what is wrong.")
    )
    _left(shipment)
    if shipment.receipt_status != "pending":
        raise LogisticsError(
            "already_answered",
            N_("Shipment %(number)s was answered already (receipt confirmed or objected)."),
            status=409,
            number=shipment.number,
        )
    objection = LogisticsObjection(
        shipment_id=shipment.id, order_id=order.id, kind=kind, description=description, raised_by_id=actor.id
    )
    session.add(objection)
    if shipment.status != "delivered":
        set_delivered(session, actor, shipment, utcnow())
    shipment.receipt_status = "objected"
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "object",
        {"objection": objection.id, "kind": kind, "description": description},
        order_id=order.id,
    )
    notify(
        session,
        OBJECTION_RAISED.name,
        to=_owner_and_warehouse(order),
        order=order,
        context={"shipment": shipment, "objection": objection, "kind": both_languages(session, OBJECTION_KINDS[kind])},
        dedupe_key=f"logistics.objection_raised:{objection.id}",
    )
    return objection


def shipped_lines(session: Session, shipment: LogisticsShipment) -> dict[int, Decimal]:
    """What a shipment carried per order line id: its stock moves, else its lines (picked or planned)."""
    rows = session.execute(
        select(LogisticsMove.order_line_id, func.sum(LogisticsMove.quantity))
        .where(LogisticsMove.shipment_id == shipment.id, LogisticsMove.kind == "shipment")
        .group_by(LogisticsMove.order_line_id)
    ).all()
    carried = {line_id: q3(-total) for line_id, total in rows if line_id is not None and q3(-total) > 0}
    if carried:
        return carried
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for line in shipment.lines:
        quantity = line.picked_quantity if line.picked_quantity is not None else line.quantity
        totals[line.order_line_id] += q3(quantity)
    return {k: v for k, v in totals.items() if v > 0}


def resolve_objection(session: Session, actor: User, objection_id: int, resolution: str) -> LogisticsObjection:
    """Settle a customer's objection with a replacement shipment or a return (LG-7).

    ``replacement``: a replacement shipment of the objected goods is planned (helper
    :func:`plugins.logistics.shipping.create_replacement_shipment`); ``return``: a
    return request of the shipment's lines (reason damaged or wrong item) is filed
    (:func:`plugins.logistics.returns.request_return`). A short delivery is answered by
    a replacement only. The objected shipment then counts as settled and the customer
    is told. Needs ``logistics.delivery.manage``. Refused: unknown resolution (422),
    already resolved (409).
    """
    _require(actor, flow.DELIVERY_MANAGE, N_("You may not resolve delivery objections."))
    objection = session.get(LogisticsObjection, objection_id) if 0 < objection_id < 2**63 else None
    if objection is None:
        raise LogisticsError("unknown_objection", N_("Objection %(id)s does not exist."), status=404, id=objection_id)
    shipment, order = _shipment(session, actor, objection.shipment_id)
    if resolution not in OBJECTION_RESOLUTIONS:
        raise LogisticsError(
            "unknown_resolution",
            N_("%(resolution)s is not a resolution; use one of %(resolutions)s."),
            details={"resolution": ["invalid"]},
            resolution=str(resolution),
            resolutions=", ".join(OBJECTION_RESOLUTIONS),
        )
    if objection.resolved_at is not None:
        raise LogisticsError("already_resolved", N_("This objection is already resolved."), status=409)
    numbers: dict[str, str] = {}
    if resolution == "return":
        reason = RETURN_REASON_OF.get(objection.kind)
        if reason is None:
            raise LogisticsError(
                "short_not_returnable",
                N_("Goods missing from a delivery cannot be returned; resolve a short delivery with a replacement."),
            )
        from plugins.logistics import returns

        lines = [
            returns.ReturnLineInput(
                order_line_id=line_id, quantity=quantity, reason=reason, detail=objection.description[:500]
            )
            for line_id, quantity in sorted(shipped_lines(session, shipment).items())
        ]
        request = returns.request_return(
            session, actor, order.id, lines, note=objection.description, objection_id=objection.id
        )
        numbers["return_number"] = request.number
    else:
        from plugins.logistics import shipping

        replacement = shipping.create_replacement_shipment(session, actor, objection)
        objection.replacement_shipment_id = replacement.id
        numbers["replacement_number"] = replacement.number
    objection.resolution = resolution
    objection.resolved_by_id = actor.id
    objection.resolved_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "resolve_objection",
        {"objection": objection.id, "resolution": resolution, "replacement": objection.replacement_shipment_id},
        order_id=order.id,
    )
    notify(
        session,
        OBJECTION_RESOLVED.name,
        to=ToCustomer(order.customer_id),
        order=order,
        context={
            "shipment": shipment,
            "objection": objection,
            "kind": both_languages(session, OBJECTION_KINDS.get(objection.kind, objection.kind)),
            "resolution": both_languages(session, OBJECTION_RESOLUTIONS[resolution]),
            **numbers,
        },
        dedupe_key=f"logistics.objection_resolved:{objection.id}",
    )
    _advance(session, order, actor)
    return objection


def receipt_settled(session: Session, shipment: LogisticsShipment) -> bool:
    """Whether a shipped shipment's receipt is settled: confirmed, or objected and the objection resolved."""
    if shipment.receipt_status == "confirmed":
        return True
    if shipment.receipt_status != "objected":
        return False
    return (
        bool(
            session.scalar(
                select(func.count(LogisticsObjection.id)).where(
                    LogisticsObjection.shipment_id == shipment.id, LogisticsObjection.resolved_at.is_not(None)
                )
            )
        )
        and _open_objection(session, shipment.id) is None
    )


def all_received(session: Session, order: Order) -> bool:
    """Whether every shipment of ``order`` that left is settled and no replacement still waits to leave."""
    shipments = list(
        session.scalars(
            select(LogisticsShipment).where(
                LogisticsShipment.order_id == order.id, LogisticsShipment.status != "cancelled"
            )
        )
    )
    left = [s for s in shipments if s.status in LEFT]
    if not left:
        return False
    if any(s.kind == "replacement" and s.status not in LEFT for s in shipments):
        return False
    return all(receipt_settled(session, s) for s in left)


def _advance(session: Session, order: Order, actor: User | None) -> None:
    from plugins.logistics import progress

    progress.advance(session, order, actor)


# --- the staff action record_receipt --------------------------------------------------------


def receipt_blockers(session: Session, order: Order) -> list[str]:
    """Why staff may not record the receipt now: nothing shipped, no proof of delivery, an open objection."""
    shipments = list(
        session.scalars(
            select(LogisticsShipment).where(LogisticsShipment.order_id == order.id, LogisticsShipment.status.in_(LEFT))
        )
    )
    if not shipments:
        return [NOTHING_SHIPPED]
    reasons = []
    pending = [s for s in shipments if s.receipt_status == "pending"]
    if any(not s.pod_signer for s in pending):
        reasons.append(NO_PROOF)
    if any(_open_objection(session, s.id) is not None for s in shipments):
        reasons.append(OPEN_OBJECTION)
    return reasons


def record_receipt(session: Session, order: Order, user: User | None) -> None:
    """Confirm the receipt of every shipped shipment still waiting, as ``user`` (signed delivery notes)."""
    now = utcnow()
    shipments = session.scalars(
        select(LogisticsShipment).where(
            LogisticsShipment.order_id == order.id,
            LogisticsShipment.status.in_(LEFT),
            LogisticsShipment.receipt_status == "pending",
        )
    )
    for shipment in shipments:
        if shipment.status != "delivered":
            set_delivered(session, user, shipment, _aware(shipment.pod_signed_at) if shipment.pod_signed_at else now)
        shipment.receipt_status = "confirmed"
        shipment.receipt_at = now
        shipment.receipt_by_id = user.id if user is not None else None
        audit.record(
            session,
            user,
            "logistics_shipment",
            shipment.id,
            "record_receipt",
            {"receipt_status": "confirmed"},
            order_id=order.id,
        )
    session.flush()


# --- acceptance ----------------------------------------------------------------------------


def acceptances(session: Session, order_id: int) -> list[LogisticsAcceptance]:
    """The order's acceptance report rounds, first round first."""
    return list(
        session.scalars(
            select(LogisticsAcceptance)
            .where(LogisticsAcceptance.order_id == order_id)
            .order_by(LogisticsAcceptance.round)
        )
    )


def record_acceptance(
    session: Session, actor: User, order_id: int, result: str, note: str, file: File | None = None
) -> LogisticsAcceptance:
    """Record a round of the acceptance report (验收报告): accepted, or rework needed (LG-8).

    Rounds count 1, 2, …; "rework" needs a note and tells the order's owner, and a new
    round follows after the rework; after "accepted" no further round is taken (409).
    The signed report is archived as an order attachment (kind ``acceptance_report``).
    Needs ``logistics.delivery.manage``; the order must have shipped goods (409).
    """
    _require(actor, flow.DELIVERY_MANAGE, N_("You may not record acceptance reports."))
    order = get_order(session, actor, order_id)
    if result not in ACCEPTANCE_RESULTS:
        raise LogisticsError(
            "unknown_result",
            N_("%(result)s is not an acceptance result; use accepted or rework."),
            details={"result": ["invalid"]},
            result=str(result),
        )
    note = _text(
        note,
        TEXT_LIMIT,
        "note",
        required=result == "rework",
        msgid=N_("Please describe what must be reworked."),
    )
    shipped = session.scalar(
        select(func.count(LogisticsShipment.id)).where(
            LogisticsShipment.order_id == order.id, LogisticsShipment.status.in_(LEFT)
        )
    )
    if not shipped:
        raise LogisticsError(
            "nothing_delivered",
            N_("Nothing of this order has been shipped yet: there is nothing to accept."),
            status=409,
        )
    rounds = acceptances(session, order.id)
    if rounds and rounds[-1].result == "accepted":
        raise LogisticsError(
            "already_accepted", N_("Order %(number)s is already accepted."), status=409, number=order.number
        )
    attachment: OrderAttachment | None = None
    if file is not None and file[1]:
        filename, data, _claimed = file
        attachment = add_attachment(
            session,
            actor,
            order.id,
            filename=filename,
            data=data,
            kind=ACCEPTANCE_ATTACHMENT_KIND,
            note=f"#{len(rounds) + 1}: {ACCEPTANCE_RESULTS[result]}",
            customer_visible=True,
        )
    acceptance = LogisticsAcceptance(
        order_id=order.id,
        round=len(rounds) + 1,
        result=result,
        note=note,
        attachment_id=attachment.id if attachment is not None else None,
        recorded_by_id=actor.id,
    )
    session.add(acceptance)
    session.flush()
    audit.record(
        session,
        actor,
        "order",
        order.id,
        "logistics_acceptance",
        {"round": acceptance.round, "result": result, "note": note, "attachment": acceptance.attachment_id},
    )
    if result == "rework" and order.owner_id is not None:
        notify(
            session,
            ACCEPTANCE_REWORK.name,
            to=ToUser(order.owner_id),
            order=order,
            context={"acceptance": acceptance},
            dedupe_key=f"logistics.acceptance_rework:{acceptance.id}",
        )
    _advance(session, order, actor)
    return acceptance


# --- what the shipment page shows ----------------------------------------------------------


@dataclass
class Abilities:
    """What the viewer may do on a shipment's delivery block."""

    track: bool = False
    report_exception: bool = False
    resolve_exception: bool = False
    deliver: bool = False
    answer: bool = False
    resolve_objection: bool = False
    accept: bool = False


def shipment_context(session: Session, shipment: LogisticsShipment, user: User) -> dict[str, Any]:
    """Everything ``logistics/shipment_delivery.html`` shows for ``shipment`` and what ``user`` may do.

    Keys: ``shipment``, ``order``, ``events``, ``exceptions``, ``objections``,
    ``open_objection``, ``acceptances``, ``pod_attachment``, ``can`` (:class:`Abilities`),
    the label dicts (``tracking_codes``, ``exception_kinds``, ``objection_kinds``,
    ``resolutions``, ``receipt_statuses``, ``acceptance_results``), ``now`` (the forms'
    default time, company time), ``today``, ``due_days`` (the follow-up setting),
    ``owners`` (staff to choose from), ``owner_names`` and ``lines`` (order line,
    quantity carried).
    """
    order = session.get(Order, shipment.order_id)
    events = list(
        session.scalars(
            select(LogisticsTrackingEvent)
            .where(LogisticsTrackingEvent.shipment_id == shipment.id)
            .order_by(LogisticsTrackingEvent.at.desc(), LogisticsTrackingEvent.id.desc())
        )
    )
    exceptions = list(
        session.scalars(
            select(LogisticsException)
            .where(LogisticsException.shipment_id == shipment.id)
            .order_by(LogisticsException.id.desc())
        )
    )
    objections = list(
        session.scalars(
            select(LogisticsObjection)
            .where(LogisticsObjection.shipment_id == shipment.id)
            .order_by(LogisticsObjection.id.desc())
        )
    )
    left = shipment.status in LEFT
    staff = user.customer_id is None
    can = Abilities(
        track=left and staff and user.can(flow.SHIPPING_MANAGE),
        report_exception=shipment.status != "cancelled" and staff and user.can(flow.EXCEPTIONS_MANAGE),
        resolve_exception=staff and user.can(flow.EXCEPTIONS_MANAGE),
        deliver=left and staff and user.can(flow.DELIVERY_MANAGE),
        answer=left
        and shipment.receipt_status == "pending"
        and (
            (staff and user.can(flow.DELIVERY_MANAGE))
            or (order is not None and user.customer_id == order.customer_id and user.can(flow.RECEIPT_CONFIRM))
        ),
        resolve_objection=staff and user.can(flow.DELIVERY_MANAGE),
        accept=left and staff and user.can(flow.DELIVERY_MANAGE),
    )
    rounds = acceptances(session, shipment.order_id)
    if rounds and rounds[-1].result == "accepted":
        can.accept = False
    lines = []
    carried = shipped_lines(session, shipment) if left else {}
    for line in order.lines if order is not None else []:
        if line.id in carried:
            lines.append({"line": line, "quantity": carried[line.id]})
    return {
        "shipment": shipment,
        "order": order,
        "events": events,
        "exceptions": exceptions,
        "objections": objections,
        "open_objection": next((o for o in objections if o.resolved_at is None), None),
        "acceptances": rounds,
        "acceptance_required": bool(get_setting(session, flow.ACCEPTANCE_REQUIRED)),
        "pod_attachment": session.get(OrderAttachment, shipment.pod_attachment_id)
        if shipment.pod_attachment_id
        else None,
        "can": can,
        "lines": lines,
        "tracking_codes": TRACKING_CODES,
        "exception_kinds": EXCEPTION_KINDS,
        "objection_kinds": OBJECTION_KINDS,
        "resolutions": OBJECTION_RESOLUTIONS,
        "receipt_statuses": RECEIPT_STATUSES,
        "acceptance_results": ACCEPTANCE_RESULTS,
        "now": dt.datetime.now(COMPANY_TIMEZONE).strftime("%Y-%m-%dT%H:%M"),
        "today": dt.datetime.now(COMPANY_TIMEZONE).date(),
        "due_days": int(get_setting(session, flow.EXCEPTION_DUE_DAYS)),
        "owners": _staff(session) if can.report_exception else [],
        "owner_names": _names(session, {x.owner_id for x in exceptions}),
    }


def _staff(session: Session) -> list[User]:
    """Active staff users (possible owners of an exception's follow-up), by name."""
    return list(
        session.scalars(
            select(User).where(User.active.is_(True), User.customer_id.is_(None)).order_by(User.name).limit(500)
        )
    )


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(wanted))).tuples().all())

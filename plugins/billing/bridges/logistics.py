"""Billing ↔ logistics: the gate at each shipment, credit notes for returns, what was delivered.

Registered only when logistics is enabled too; the only billing module that reads
logistics' tables.

- ``ordo_logistics_shipment_guard``: every shipment, partial ones included, passes the
  credit gate (path ``shipment``; :func:`plugins.billing.credit.shipment_reasons`).
- ``ordo_logistics_return_inspected``: the received quantities of a closed return are
  credited (:func:`plugins.billing.invoices.credit_note_for_return`).
- ``ordo_billing_delivered_quantities``: shipped quantities per order line.
- ``ordo_billing_deliveries``: shipments for the report of deliveries not invoiced in time.
- ``ordo_billing_settlement_problems``: shipped shipments without a signed delivery note,
  and an acceptance report missing (when required) or not accepted (BL-2).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select

from core import hookimpl
from core.labels import N_
from core.settings import get_setting

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order
    from plugins.billing.hookspecs import Delivery
    from plugins.logistics.models import LogisticsReturn, LogisticsShipment

UNSIGNED = N_("Shipment %(number)s has no signed delivery note.")
NO_ACCEPTANCE = N_("The acceptance report is missing.")
NOT_ACCEPTED = N_("The latest acceptance report says “%(result)s”, not accepted.")


@hookimpl(optionalhook=True)
def ordo_logistics_shipment_guard(order: Order, shipment: LogisticsShipment, session: Session) -> list[str]:
    """The credit gate's reasons against shipping ``shipment`` now."""
    from plugins.billing.credit import shipment_reasons

    return shipment_reasons(session, order, shipment.number)


@hookimpl(optionalhook=True)
def ordo_logistics_return_inspected(request: LogisticsReturn, session: Session) -> None:
    """Credit the goods a return brought back (once per return)."""
    from core.models import Order
    from plugins.billing.invoices import credit_note_for_return

    order = session.get(Order, request.order_id)
    if order is None:
        return
    lines = [
        (line.order_line_id, Decimal(line.received_quantity))
        for line in request.lines
        if line.received_quantity is not None and line.received_quantity > 0
    ]
    if lines:
        credit_note_for_return(session, order, f"return:{request.id}", lines, reference=request.number)


@hookimpl(optionalhook=True)
def ordo_billing_delivered_quantities(order: Order, session: Session) -> dict[int, Decimal] | None:
    """Shipped quantity per order line (logistics' shipment moves)."""
    from plugins.logistics.stock import shipped_quantities

    return shipped_quantities(session, order.id)


@hookimpl(optionalhook=True)
def ordo_billing_deliveries(
    session: Session, order_ids: list[int] | None, shipped_before: dt.datetime | None
) -> list[Delivery]:
    """Shipped shipments (of ``order_ids``, shipped before ``shipped_before``) with their goods value."""
    from plugins.billing.hookspecs import Delivery
    from plugins.logistics.models import LogisticsShipment

    query = select(LogisticsShipment).where(LogisticsShipment.shipped_at.is_not(None))
    if order_ids is not None:
        query = query.where(LogisticsShipment.order_id.in_(order_ids))
    if shipped_before is not None:
        query = query.where(LogisticsShipment.shipped_at < shipped_before)
    return [
        Delivery(s.order_id, s.number, s.shipped_at, s.goods_value)
        for s in session.scalars(query.order_by(LogisticsShipment.shipped_at))
        if s.shipped_at is not None
    ]


@hookimpl(optionalhook=True)
def ordo_billing_settlement_problems(order: Order, session: Session) -> list[str]:
    """Unsigned delivery notes; the acceptance report missing (if required) or not accepted."""
    from plugins.logistics import flow
    from plugins.logistics.models import LogisticsAcceptance, LogisticsShipment

    problems = [
        UNSIGNED % {"number": s.number}
        for s in session.scalars(
            select(LogisticsShipment)
            .where(LogisticsShipment.order_id == order.id, LogisticsShipment.shipped_at.is_not(None))
            .order_by(LogisticsShipment.id)
        )
        if s.pod_signed_at is None and s.receipt_status != "confirmed"
    ]
    latest = session.scalars(
        select(LogisticsAcceptance)
        .where(LogisticsAcceptance.order_id == order.id)
        .order_by(LogisticsAcceptance.round.desc(), LogisticsAcceptance.id.desc())
    ).first()
    if latest is None:
        if get_setting(session, flow.ACCEPTANCE_REQUIRED):
            problems.append(NO_ACCEPTANCE)
    elif latest.result != "accepted":
        problems.append(NOT_ACCEPTED % {"result": latest.result})
    return problems

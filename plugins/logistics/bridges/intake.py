"""Logistics' block on the customer portal's order page (LG-4): shipments with tracking.

Registered only when intake is enabled too (``extras`` in the plugin's manifest), so
logistics still loads without intake. The block lists the order's shipments that have
left — carrier, tracking number, latest tracking news, receipt status — each linking
to its page under ``/portal/deliveries`` where the customer confirms receipt or
reports a problem.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import hookimpl
from core.contrib import Panel
from core.models import Order, User
from plugins.logistics.models import (
    RECEIPT_STATUSES,
    TRACKING_CODES,
    LogisticsCarrier,
    LogisticsShipment,
    LogisticsTrackingEvent,
)

#: Shipment statuses the customer sees (goods that have left the warehouse).
LEFT = ("shipped", "delivered")


def portal_panel(session: Session, order: Order, user: User) -> list[Panel]:
    """The order's shipments that have left, for the customer's own portal user (nothing otherwise)."""
    if user.customer_id is None or user.customer_id != order.customer_id:
        return []
    shipments = list(
        session.scalars(
            select(LogisticsShipment)
            .where(LogisticsShipment.order_id == order.id, LogisticsShipment.status.in_(LEFT))
            .order_by(LogisticsShipment.shipped_at, LogisticsShipment.id)
        )
    )
    if not shipments:
        return []
    latest: dict[int, LogisticsTrackingEvent] = {}
    for event in session.scalars(
        select(LogisticsTrackingEvent)
        .where(LogisticsTrackingEvent.shipment_id.in_([s.id for s in shipments]))
        .order_by(LogisticsTrackingEvent.at, LogisticsTrackingEvent.id)
    ):
        latest[event.shipment_id] = event
    carrier_ids = {s.carrier_id for s in shipments if s.carrier_id}
    carriers = (
        {c.id: c for c in session.scalars(select(LogisticsCarrier).where(LogisticsCarrier.id.in_(carrier_ids)))}
        if carrier_ids
        else {}
    )
    html = render_template(
        "logistics/portal/order_panel.html",
        shipments=shipments,
        latest=latest,
        carriers=carriers,
        tracking_codes={k: _(v) for k, v in TRACKING_CODES.items()},
        receipt_statuses={k: _(v) for k, v in RECEIPT_STATUSES.items()},
    )
    return [Panel(_("Deliveries and tracking"), Markup(html), order=30, plugin="logistics")]


@hookimpl(optionalhook=True)
def ordo_intake_portal_panels(order: Order, user: User, session: Session) -> list[Panel]:
    """Intake's hook: the deliveries block of the customer's order page in the portal."""
    return portal_panel(session, order, user)

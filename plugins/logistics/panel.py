"""The logistics panel of the order page: where the order's goods stand (LG-1 … LG-9).

Why: sales, the warehouse and managers open the order page to answer "where are the
goods?"; the panel answers it in one place without visiting each logistics screen.

Staff with ``logistics.stock.read`` (and the order in their data scope) see: remote or
local, the warehouse, the promised date, whether the order may ship in parts, when the
goods were ready; per line the ordered, reserved, shipped, backorder and returned
quantities; the shipments (number, status, carrier, tracking number, receipt status);
open exceptions (delay, damage, loss) with their owner and due date; the returns. Holders
of ``logistics.shipping.manage`` get a link to plan a shipment, holders of
``logistics.returns.request`` one to request a return. Customers (portal users) see a
reduced panel on core's order page: their shipments with carrier and tracking number,
each linking to the portal delivery page where they confirm receipt.

Links point to other logistics screens only when those endpoints exist
(:func:`link`), so the panel never breaks while a screen is missing or renamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask import current_app, render_template, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from core.contrib import Panel
from core.models import Order, User
from core.services.orders import may_see_order
from core.views.labels import translate
from plugins.logistics import flow
from plugins.logistics.models import (
    EXCEPTION_KINDS,
    RECEIPT_STATUSES,
    RETURN_STATUSES,
    SHIPMENT_KINDS,
    SHIPMENT_STATUSES,
    LogisticsCarrier,
    LogisticsException,
    LogisticsOrder,
    LogisticsReturn,
    LogisticsReturnLine,
    LogisticsService,
    LogisticsShipment,
    LogisticsWarehouse,
)
from plugins.logistics.stock import q3, reserved_quantities, shipped_quantities

#: The screens the panel links to (other modules' endpoints; a missing one is left out).
SHIPMENT_PAGE = ("logistics.shipment_page",)
PLAN_SHIPMENT = ("logistics.shipment_plan_form",)
RETURN_PAGE = ("logistics.return_detail",)
REQUEST_RETURN = ("logistics.request_return",)
EXCEPTIONS_LIST = ("logistics.exception_list",)
PORTAL_SHIPMENT = ("logistics_portal.delivery_page",)
PORTAL_LIST = ("logistics_portal.deliveries",)
PORTAL_REQUEST_RETURN = ("logistics_portal.request_return",)

#: Bootstrap colour of each shipment status and receipt status badge.
STATUS_COLOURS = {
    "planned": "light",
    "picking": "info",
    "picked": "info",
    "packed": "primary",
    "shipped": "primary",
    "delivered": "success",
    "cancelled": "secondary",
}
RECEIPT_COLOURS = {"pending": "light", "confirmed": "success", "objected": "danger"}


def link(candidates: Iterable[str], **values: Any) -> str | None:
    """The URL of the first endpoint of ``candidates`` the app has, built with ``values``; else None."""
    for endpoint in candidates:
        if endpoint in current_app.view_functions:
            try:
                return url_for(endpoint, **values)
            except BuildError:
                continue
    return None


def label(table: dict[str, str], code: str | None) -> str:
    """``code``'s label from a model's table, in the reader's language (the code when unknown)."""
    if not code:
        return ""
    text = table.get(code)
    return translate(text) if text is not None else code


def returned_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Quantity returned per order line id: received on returns that came back (received or closed)."""
    rows = session.execute(
        select(LogisticsReturnLine.order_line_id, LogisticsReturnLine.received_quantity)
        .join(LogisticsReturn, LogisticsReturn.id == LogisticsReturnLine.return_id)
        .where(LogisticsReturn.order_id == order_id, LogisticsReturn.status.in_(("received", "closed")))
    ).all()
    found: dict[int, Decimal] = {}
    for line_id, quantity in rows:
        found[line_id] = found.get(line_id, Decimal("0")) + q3(quantity)
    return found


def line_rows(session: Session, order: Order) -> list[dict[str, Any]]:
    """Per order line: ordered, reserved, shipped, backorder (neither shipped nor reserved), returned."""
    reserved = reserved_quantities(session, order.id)
    shipped = shipped_quantities(session, order.id)
    returned = returned_quantities(session, order.id)
    facts = session.get(LogisticsOrder, order.id)
    closed = facts is not None and facts.backorder_closed_at is not None
    rows = []
    for line in order.lines:
        ordered = q3(line.quantity)
        r, s = reserved.get(line.id, Decimal("0")), shipped.get(line.id, Decimal("0"))
        backorder = Decimal("0") if closed or facts is None else max(Decimal("0"), ordered - r - s)
        rows.append(
            {
                "line": line,
                "ordered": ordered,
                "reserved": r,
                "shipped": s,
                "backorder": backorder,
                "returned": returned.get(line.id, Decimal("0")),
            }
        )
    return rows


def shipment_rows(session: Session, order: Order, *, portal: bool = False) -> list[dict[str, Any]]:
    """The order's shipments, oldest first, with carrier, service and the page to open."""
    shipments = list(
        session.scalars(
            select(LogisticsShipment).where(LogisticsShipment.order_id == order.id).order_by(LogisticsShipment.id)
        )
    )
    if portal:
        shipments = [s for s in shipments if s.status in ("shipped", "delivered")]
    carrier_ids = {s.carrier_id for s in shipments if s.carrier_id}
    service_ids = {s.service_id for s in shipments if s.service_id}
    carriers = (
        {c.id: c for c in session.scalars(select(LogisticsCarrier).where(LogisticsCarrier.id.in_(carrier_ids)))}
        if carrier_ids
        else {}
    )
    services = (
        {s.id: s for s in session.scalars(select(LogisticsService).where(LogisticsService.id.in_(service_ids)))}
        if service_ids
        else {}
    )
    rows = []
    for shipment in shipments:
        carrier = carriers.get(shipment.carrier_id) if shipment.carrier_id else None
        service = services.get(shipment.service_id) if shipment.service_id else None
        rows.append(
            {
                "shipment": shipment,
                "carrier": carrier.name if carrier else "",
                "service": service.name if service else "",
                "url": link(PORTAL_SHIPMENT if portal else SHIPMENT_PAGE, shipment_id=shipment.id),
            }
        )
    return rows


def _staff_panel(session: Session, order: Order, user: User, facts: LogisticsOrder | None) -> Panel | None:
    shipments = shipment_rows(session, order)
    returns = list(
        session.scalars(
            select(LogisticsReturn).where(LogisticsReturn.order_id == order.id).order_by(LogisticsReturn.id)
        )
    )
    if facts is None and not shipments and not returns:
        return None
    exceptions = list(
        session.scalars(
            select(LogisticsException)
            .where(LogisticsException.order_id == order.id, LogisticsException.status == "open")
            .order_by(LogisticsException.due_date, LogisticsException.id)
        )
    )
    owner_ids = {e.owner_id for e in exceptions if e.owner_id}
    owners = {u.id: u for u in session.scalars(select(User).where(User.id.in_(owner_ids)))} if owner_ids else {}
    warehouse = session.get(LogisticsWarehouse, facts.warehouse_id) if facts and facts.warehouse_id else None
    shippable = order.status == "confirmed" and order.step != flow.OUTBOUND_CHECK
    html = render_template(
        "logistics/panel.html",
        order=order,
        facts=facts,
        warehouse=warehouse,
        lines=line_rows(session, order),
        shipments=shipments,
        exceptions=exceptions,
        owners=owners,
        returns=[{"request": r, "url": link(RETURN_PAGE, return_id=r.id)} for r in returns],
        plan_url=link(PLAN_SHIPMENT, order_id=order.id) if shippable and user.can(flow.SHIPPING_MANAGE) else None,
        return_url=link(REQUEST_RETURN, order_id=order.id)
        if user.can(flow.RETURNS_REQUEST)
        and any(row["shipment"].status in ("shipped", "delivered") for row in shipments)
        else None,
        exceptions_url=link(EXCEPTIONS_LIST),
        **view_helpers(),
    )
    return Panel(_("Logistics"), Markup(html), order=60, plugin="logistics")


def _customer_panel(session: Session, order: Order, user: User) -> Panel | None:
    shipments = shipment_rows(session, order, portal=True)
    if not shipments:
        return None
    html = render_template(
        "logistics/panel_customer.html",
        order=order,
        shipments=shipments,
        deliveries_url=link(PORTAL_LIST),
        return_url=link(PORTAL_REQUEST_RETURN, order_id=order.id) if user.can(flow.RETURNS_REQUEST) else None,
        **view_helpers(),
    )
    return Panel(_("Deliveries"), Markup(html), order=60, plugin="logistics")


def view_helpers() -> dict[str, Any]:
    """The label helpers the panel templates use."""
    return {
        "shipment_status_label": lambda code: label(SHIPMENT_STATUSES, code),
        "shipment_kind_label": lambda code: label(SHIPMENT_KINDS, code),
        "receipt_status_label": lambda code: label(RECEIPT_STATUSES, code),
        "exception_kind_label": lambda code: label(EXCEPTION_KINDS, code),
        "return_status_label": lambda code: label(RETURN_STATUSES, code),
        "status_colour_of": lambda code: STATUS_COLOURS.get(code or "", "secondary"),
        "receipt_colour_of": lambda code: RECEIPT_COLOURS.get(code or "", "secondary"),
    }


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """The order page's logistics panels for ``user``: the staff panel, or a customer's reduced one."""
    if user is None or not may_see_order(session, user, order):
        return []
    if user.customer_id is not None:
        found = _customer_panel(session, order, user) if user.customer_id == order.customer_id else None
    elif user.can(flow.STOCK_READ):
        found = _staff_panel(session, order, user, session.get(LogisticsOrder, order.id))
    else:
        found = None
    return [found] if found is not None else []

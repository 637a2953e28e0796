"""The customer's delivery screens in the portal (LG-4, LG-7): tracking, receipt, problems.

* ``/portal/deliveries/`` lists the customer's shipments that have left: order,
  carrier, tracking number, latest tracking event, delivery and receipt status.
* ``/portal/deliveries/<shipment_id>`` shows one shipment: what it carries, its
  tracking events (the customer's tracking view), proof of delivery, and — while the
  receipt is open — "Confirm receipt" and "Report a problem" (damaged, short, wrong
  item, with a description).

Only the customer's own orders are reachable (core's data scope; another customer's
shipment answers 404). Routes live on :data:`plugins.logistics.portal.bp`, whose
name ends in ``_portal`` so intake's portal lets its users in, and staff get 403.
The pages extend core's layout, so they work with intake disabled too.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.models import Order
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import current_actor, paginate
from core.web import db
from plugins.logistics import delivery, flow
from plugins.logistics.models import (
    OBJECTION_KINDS,
    RECEIPT_STATUSES,
    SHIPMENT_STATUSES,
    TRACKING_CODES,
    LogisticsCarrier,
    LogisticsShipment,
    LogisticsTrackingEvent,
)
from plugins.logistics.portal import bp


def order_link(order: Order) -> str | None:
    """Where the customer reads the order: the portal's order page (intake), else core's order page."""
    endpoints = current_app.view_functions
    if "intake_portal.order_detail" in endpoints:
        return url_for("intake_portal.order_detail", order_id=order.id)
    if "orders.view_order" in endpoints:
        return url_for("orders.view_order", order_id=order.id)
    return None


def _own_shipment(shipment_id: int) -> tuple[LogisticsShipment, Order]:
    """The customer's own shipment that has left, and its order; 404 for anything else."""
    session = db()
    shipment = session.get(LogisticsShipment, shipment_id) if 0 < shipment_id < 2**63 else None
    if shipment is None or shipment.status not in delivery.LEFT:
        raise NotFound()
    try:
        order = get_order(session, current_actor(), shipment.order_id)
    except ServiceError as exc:
        raise NotFound() from exc
    if order.customer_id != current_actor().customer_id:
        raise NotFound()
    return shipment, order


@bp.get("/")
@login_required
def deliveries() -> str:
    """The customer's shipments that have left, newest first, with their latest tracking event."""
    session, actor = db(), current_actor()
    scope = visible_orders(actor).with_only_columns(Order.id).scalar_subquery()
    stmt = select(LogisticsShipment).where(
        LogisticsShipment.status.in_(delivery.LEFT),
        LogisticsShipment.order_id.in_(scope),
    )
    receipt = request.args.get("receipt", "")
    if receipt in RECEIPT_STATUSES:
        stmt = stmt.where(LogisticsShipment.receipt_status == receipt)
    page = paginate(
        session,
        stmt,
        sortable={"shipped": LogisticsShipment.shipped_at},
        default_sort="-shipped",
        endpoint="logistics_portal.deliveries",
        args={"receipt": receipt} if receipt in RECEIPT_STATUSES else {},
        tie_breaker=LogisticsShipment.id,
    )
    rows: list[LogisticsShipment] = list(page.rows)
    ids = [r.id for r in rows]
    latest: dict[int, LogisticsTrackingEvent] = {}
    if ids:
        for event in session.scalars(
            select(LogisticsTrackingEvent)
            .where(LogisticsTrackingEvent.shipment_id.in_(ids))
            .order_by(LogisticsTrackingEvent.at, LogisticsTrackingEvent.id)
        ):
            latest[event.shipment_id] = event
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({r.order_id for r in rows})))}
    carriers = {
        c.id: c
        for c in session.scalars(
            select(LogisticsCarrier).where(LogisticsCarrier.id.in_({r.carrier_id for r in rows if r.carrier_id}))
        )
    }
    return render_template(
        "logistics/portal/deliveries.html",
        page=page,
        rows=rows,
        orders=orders,
        carriers=carriers,
        latest=latest,
        receipt=receipt,
        **_labels(),
    )


def _labels() -> dict[str, Any]:
    return {
        "tracking_codes": {k: _(v) for k, v in TRACKING_CODES.items()},
        "receipt_statuses": {k: _(v) for k, v in RECEIPT_STATUSES.items()},
        "shipment_statuses": {k: _(v) for k, v in SHIPMENT_STATUSES.items()},
        "objection_kinds": {k: _(v) for k, v in OBJECTION_KINDS.items()},
    }


@bp.get("/<int:shipment_id>")
@login_required
def delivery_page(shipment_id: int) -> str:
    """One of the customer's shipments: goods, tracking, delivery, and the receipt forms while open."""
    session, actor = db(), current_actor()
    shipment, order = _own_shipment(shipment_id)
    context = delivery.shipment_context(session, shipment, actor)
    carrier = session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None
    return render_template(
        "logistics/portal/delivery.html",
        shipment=shipment,
        order=order,
        order_url=order_link(order),
        carrier=carrier,
        events=context["events"],
        lines=context["lines"],
        objections=context["objections"],
        pod_attachment=context["pod_attachment"],
        may_answer=context["can"].answer and actor.can(flow.RECEIPT_CONFIRM),
        **_labels(),
    )


def _answer(shipment_id: int, action: Any, done: str) -> Response:
    session = db()
    try:
        action()
    except ServiceError as exc:
        session.rollback()
        if exc.status in (403, 404):
            raise NotFound() from exc
        from plugins.logistics.errors import LogisticsError

        flash(exc.localized() if isinstance(exc, LogisticsError) else exc.message, "danger")
    else:
        session.commit()
        flash(done, "success")
    return redirect(url_for("logistics_portal.delivery_page", shipment_id=shipment_id))


@bp.post("/<int:shipment_id>/receipt")
@login_required
def confirm_receipt(shipment_id: int) -> Response:
    """The customer confirms that the goods arrived complete and undamaged."""
    _own_shipment(shipment_id)
    return _answer(
        shipment_id,
        lambda: delivery.confirm_receipt(db(), current_actor(), shipment_id),
        _("Thank you: receipt confirmed."),
    )


@bp.post("/<int:shipment_id>/problem")
@login_required
def report_problem(shipment_id: int) -> Response:
    """The customer reports a problem with the delivery: damaged, short or wrong item."""
    _own_shipment(shipment_id)
    return _answer(
        shipment_id,
        lambda: delivery.object_to_delivery(
            db(),
            current_actor(),
            shipment_id,
            request.form.get("kind", ""),
            request.form.get("description", ""),
        ),
        _("Your report has been sent; we will contact you about a replacement or a return."),
    )

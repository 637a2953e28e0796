"""Shipping screens: the shipping queue, planning, the shipment page with packing, carrier and shipping.

Why: the warehouse plans shipments from reserved stock, packs them, takes the carrier
Ordo suggests (or another with a reason), enters the tracking number and ships — the
remote rules and the insurance notice in sight (LG-1, LG-3, LG-4, LG-11) — and prints
the waybill (运单) and the delivery note (送货单).

- ``/logistics/shipping`` (``logistics.shipping.manage``): orders at the shipping step
  or with open shipments; "Plan" per order; open shipments selectable for a picking list.
- ``/logistics/orders/<id>/plan``: quantities per line (default: all reserved, unplanned).
- ``/logistics/shipments`` and ``/logistics/shipments/<id>`` (``logistics.stock.read``
  to look; forms for ``logistics.shipping.manage``): lines planned/picked, packages,
  the carrier suggestion with every candidate and its reasons, ship form, PDFs, and
  the delivery part (tracking, proof of delivery, receipt) from :mod:`delivery`.

Thin views over :mod:`plugins.logistics.shipping`; refusals are flashed in the reader's
language, 403/404 become the error pages, orders outside the data scope answer 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from core.contrib import MenuItem
from core.documents import LANGUAGES, reader_language
from core.labels import N_
from core.models import Customer, Order, Product
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import current_actor, paginate, permission_required, query_args
from core.views.messages import localize
from core.views.orders import order_badges
from core.web import db, ordo
from plugins.logistics import documents, flow, shipping, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    SHIPMENT_KINDS,
    SHIPMENT_STATUSES,
    LogisticsCarrier,
    LogisticsOrder,
    LogisticsService,
    LogisticsShipment,
)
from plugins.logistics.views import bp

#: Menu entries of the shipping screens.
MENU = (
    MenuItem(
        N_("Shipping"),
        "logistics.shipping_queue",
        permission=flow.SHIPPING_MANAGE,
        order=61,
        icon="truck",
        plugin="logistics",
    ),
)

#: The status filter of the shipments list.
LIST_STATUSES = {"open": N_("Open"), **SHIPMENT_STATUSES, "all": N_("All")}


# --- shared with picking_views ----------------------------------------------------------------


def refused(exc: ServiceError) -> None:
    """Show a refusal: 403/404 as the error page; otherwise flash it (and any reasons) in the reader's language."""
    if exc.status in (403, 404):
        abort(exc.status)
    if isinstance(exc, LogisticsError):
        flash(exc.localized(), "danger")
    else:
        flash(localize(exc.message), "danger")


def scoped_order(order_id: int) -> Order:
    """The order if the user may see it; 404 otherwise."""
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def scoped_shipment(shipment_id: int) -> LogisticsShipment:
    """The shipment if the user may see its order; 404 otherwise."""
    shipment = db().get(LogisticsShipment, shipment_id)
    if shipment is None:
        raise NotFound()
    scoped_order(shipment.order_id)
    return shipment


def pdf_language() -> str:
    """The language a PDF is printed in: ``?lang=`` if offered, else the reader's."""
    lang = request.args.get("lang", "")
    return lang if lang in LANGUAGES else reader_language(current_actor())


def pdf_response(data: bytes, filename: str) -> WerkzeugResponse:
    """A PDF shown inline in the browser under ``filename``."""
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _decimal_or_none(raw: str) -> Decimal | str | None:
    text = (raw or "").strip()
    return text or None


# --- the shipping queue -----------------------------------------------------------------------


@bp.get("/shipping")
@permission_required(flow.SHIPPING_MANAGE)
def shipping_queue() -> str:
    """Orders at the shipping step or with open shipments: what is left to plan, and open shipments."""
    session, actor = db(), current_actor()
    with_open = select(LogisticsShipment.order_id).where(LogisticsShipment.status.in_(shipping.OPEN_STATUSES))
    stmt = visible_orders(actor).where(or_(Order.step == flow.SHIPPING, Order.id.in_(with_open)))
    args = query_args("q")
    if args.get("q"):
        like = f"%{args['q']}%"
        stmt = stmt.join(Customer, Customer.id == Order.customer_id).where(
            Order.number.ilike(like) | Customer.name.ilike(like) | Order.reference.ilike(like)
        )
    page = paginate(
        session,
        stmt.options(selectinload(Order.lines), selectinload(Order.customer)),
        sortable={"created": Order.created_at, "number": Order.number, "requested": Order.requested_date},
        default_sort="created",
        endpoint="logistics.shipping_queue",
        args=args,
        tie_breaker=Order.id,
    )
    rows = []
    for order in page.rows:
        rows.append(
            {
                "order": order,
                "facts": session.get(LogisticsOrder, order.id),
                "unplanned": sum(shipping.unplanned_quantities(session, order).values(), Decimal("0")),
                "backorder": sum(stock.backorder_quantities(session, order).values(), Decimal("0")),
                "shippable": shipping.is_shippable(order),
                "shipments": list(
                    session.scalars(
                        select(LogisticsShipment)
                        .where(
                            LogisticsShipment.order_id == order.id,
                            LogisticsShipment.status.in_(shipping.OPEN_STATUSES),
                        )
                        .order_by(LogisticsShipment.id)
                    )
                ),
            }
        )
    return render_template(
        "logistics/shipment_queue.html",
        page=page,
        rows=rows,
        badges=order_badges(session, list(page.rows)),
        search=args.get("q", ""),
        statuses={code: _(label) for code, label in SHIPMENT_STATUSES.items()},
    )


@bp.get("/orders/<int:order_id>/plan")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_plan_form(order_id: int) -> str:
    """The plan form: per line ordered, shipped, reserved and not yet planned, the quantity to plan."""
    order = scoped_order(order_id)
    return _plan_page(order)


def _plan_page(order: Order, values: dict[int, str] | None = None, status: int = 200) -> Any:
    session = db()
    unplanned = shipping.unplanned_quantities(session, order)
    shipped = stock.shipped_quantities(session, order.id)
    backorders = stock.backorder_quantities(session, order)
    lines = [
        {
            "line": line,
            "shipped": shipped.get(line.id, Decimal("0")),
            "available": unplanned.get(line.id, Decimal("0")),
            "backorder": backorders.get(line.id, Decimal("0")),
            "value": (values or {}).get(line.id, format(unplanned.get(line.id, Decimal("0")).normalize(), "f")),
        }
        for line in order.lines
    ]
    return (
        render_template(
            "logistics/shipment_plan.html",
            order=order,
            facts=session.get(LogisticsOrder, order.id),
            lines=lines,
            shippable=shipping.is_shippable(order),
        ),
        status,
    )


@bp.post("/orders/<int:order_id>/plan")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_plan(order_id: int) -> Any:
    """Plan a shipment: all reserved and unplanned (``all=1``) or the quantities posted per line."""
    session, actor = db(), current_actor()
    order = scoped_order(order_id)
    lines: dict[int, Any] | None = None
    values: dict[int, str] = {}
    if not request.form.get("all"):
        lines = {}
        for line in order.lines:
            raw = request.form.get(f"qty-{line.id}", "").strip()
            values[line.id] = raw
            if raw:
                lines[line.id] = raw
    try:
        shipment = shipping.plan_shipment(session, actor, order, lines=lines)
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        if request.form.get("all"):
            return redirect(url_for("logistics.shipping_queue"))
        return _plan_page(scoped_order(order_id), values, status=exc.status)
    session.commit()
    flash(_("Shipment %(number)s planned.", number=shipment.number), "success")
    return redirect(url_for("logistics.shipment_page", shipment_id=shipment.id))


# --- shipments ----------------------------------------------------------------------------------


@bp.get("/shipments")
@permission_required(flow.STOCK_READ)
def shipment_list() -> str:
    """All shipments of the orders in the user's scope, filtered by status, searched by number or tracking."""
    session, actor = db(), current_actor()
    args = query_args("q", "status")
    chosen = args.get("status", "open")
    if chosen not in LIST_STATUSES:
        chosen = "open"
    scope = visible_orders(actor).with_only_columns(Order.id)
    stmt = select(LogisticsShipment).where(LogisticsShipment.order_id.in_(scope))
    if chosen == "open":
        stmt = stmt.where(LogisticsShipment.status.in_(shipping.OPEN_STATUSES))
    elif chosen != "all":
        stmt = stmt.where(LogisticsShipment.status == chosen)
    if args.get("q"):
        like = f"%{args['q']}%"
        stmt = stmt.where(LogisticsShipment.number.ilike(like) | LogisticsShipment.tracking_number.ilike(like))
    page = paginate(
        session,
        stmt,
        sortable={"number": LogisticsShipment.number, "created": LogisticsShipment.created_at},
        default_sort="-created",
        endpoint="logistics.shipment_list",
        args={**args, "status": chosen},
        tie_breaker=LogisticsShipment.id,
    )
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_([s.order_id for s in page.rows])))}
    carriers = {
        c.id: c
        for c in session.scalars(
            select(LogisticsCarrier).where(LogisticsCarrier.id.in_([s.carrier_id for s in page.rows if s.carrier_id]))
        )
    }
    return render_template(
        "logistics/shipment_list.html",
        page=page,
        orders=orders,
        carriers=carriers,
        chosen=chosen,
        filters={code: _(label) for code, label in LIST_STATUSES.items()},
        statuses={code: _(label) for code, label in SHIPMENT_STATUSES.items()},
        search=args.get("q", ""),
    )


def _suggestion(shipment: LogisticsShipment) -> Any:
    """The carrier suggestion for an open shipment, or None when it cannot be computed."""
    if shipment.status not in shipping.OPEN_STATUSES or not current_actor().can(flow.SHIPPING_MANAGE):
        return None
    try:
        return shipping.suggestion_for(db(), shipment)
    except (ServiceError, ImportError, AttributeError):
        return None


def _delivery_context(shipment: LogisticsShipment) -> dict[str, Any] | None:
    """The delivery part's variables (:func:`plugins.logistics.delivery.shipment_context`), if offered."""
    from plugins.logistics import delivery

    context = getattr(delivery, "shipment_context", None)
    if context is None:
        return None
    result: dict[str, Any] = context(db(), shipment, current_actor())
    return result


@bp.get("/shipments/<int:shipment_id>")
@permission_required(flow.STOCK_READ)
def shipment_page(shipment_id: int) -> str:
    """One shipment: lines, packages, carrier suggestion, shipping form, PDFs and the delivery part."""
    session, actor = db(), current_actor()
    shipment = scoped_shipment(shipment_id)
    order = scoped_order(shipment.order_id)
    products = {
        p.id: p
        for p in session.scalars(select(Product).where(Product.id.in_([ln.product_id for ln in shipment.lines])))
    }
    order_lines = {line.id: line for line in order.lines}
    lines = [
        {
            "line": line,
            "product": products.get(line.product_id),
            "order_line": order_lines.get(line.order_line_id),
            "location": session.get(shipping.LogisticsLocation, line.location_id),
        }
        for line in shipment.lines
    ]
    carrier = session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None
    service = session.get(LogisticsService, shipment.service_id) if shipment.service_id else None
    suggested = session.get(LogisticsService, shipment.suggested_service_id) if shipment.suggested_service_id else None
    return render_template(
        "logistics/shipment.html",
        shipment=shipment,
        order=order,
        lines=lines,
        carrier=carrier,
        service=service,
        suggested=suggested,
        suggestion=_suggestion(shipment),
        warehouse=shipping.warehouse_of(session, shipment),
        may_manage=actor.can(flow.SHIPPING_MANAGE),
        is_open=shipment.status in shipping.OPEN_STATUSES,
        insurance_required=shipping.insurance_required(session, shipment),
        threshold=shipping.insurance_threshold(session),
        statuses={code: _(label) for code, label in SHIPMENT_STATUSES.items()},
        kinds={code: _(label) for code, label in SHIPMENT_KINDS.items()},
        delivery=_delivery_context(shipment),
        badges=order_badges(session, [order]),
    )


def _back(shipment_id: int) -> WerkzeugResponse:
    return redirect(url_for("logistics.shipment_page", shipment_id=shipment_id))


@bp.post("/shipments/<int:shipment_id>/packages")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_add_package(shipment_id: int) -> WerkzeugResponse:
    """Add a package (weight kg, length × width × height cm, note)."""
    session, actor = db(), current_actor()
    form = request.form
    try:
        shipping.add_package(
            session,
            actor,
            shipment_id,
            form.get("weight", ""),
            form.get("length", ""),
            form.get("width", ""),
            form.get("height", ""),
            note=form.get("note", ""),
        )
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return _back(shipment_id)
    session.commit()
    flash(_("Package added."), "success")
    return _back(shipment_id)


@bp.post("/shipments/<int:shipment_id>/packages/<int:package_id>/remove")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_remove_package(shipment_id: int, package_id: int) -> WerkzeugResponse:
    """Remove a package of a shipment not yet shipped."""
    session, actor = db(), current_actor()
    try:
        shipping.remove_package(session, actor, shipment_id, package_id)
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return _back(shipment_id)
    session.commit()
    flash(_("Package removed."), "success")
    return _back(shipment_id)


@bp.post("/shipments/<int:shipment_id>/carrier")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_choose_carrier(shipment_id: int) -> WerkzeugResponse:
    """Choose the carrier service (another than the suggested one needs a reason)."""
    session, actor = db(), current_actor()
    raw = request.form.get("service_id", "")
    if not raw.isdigit():
        flash(_("Choose a carrier service."), "danger")
        return _back(shipment_id)
    try:
        shipping.choose_carrier(
            session, actor, shipment_id, int(raw), override_reason=request.form.get("override_reason", "")
        )
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return _back(shipment_id)
    session.commit()
    flash(_("Carrier chosen."), "success")
    return _back(shipment_id)


@bp.post("/shipments/<int:shipment_id>/ship")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_ship(shipment_id: int) -> WerkzeugResponse:
    """Ship: stock leaves, the customer is told, the order moves on when all has shipped."""
    session, actor = db(), current_actor()
    insured = request.form.get("insured")
    try:
        shipment = shipping.ship(
            session,
            actor,
            shipment_id,
            tracking_number=request.form.get("tracking_number", ""),
            insured=True if insured == "1" else None,
        )
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        reasons = exc.details.get("reasons") if isinstance(exc.details, dict) else None
        for reason in reasons or ():
            flash(localize(str(reason)), "warning")
        return _back(shipment_id)
    session.commit()
    flash(_("Shipment %(number)s shipped.", number=shipment.number), "success")
    return _back(shipment_id)


@bp.post("/shipments/<int:shipment_id>/cancel")
@permission_required(flow.SHIPPING_MANAGE)
def shipment_cancel(shipment_id: int) -> WerkzeugResponse:
    """Cancel a shipment that has not shipped (its stock stays reserved)."""
    session, actor = db(), current_actor()
    try:
        shipment = shipping.cancel_shipment(session, actor, shipment_id, request.form.get("reason", ""))
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return _back(shipment_id)
    session.commit()
    flash(_("Shipment %(number)s cancelled.", number=shipment.number), "success")
    return _back(shipment_id)


@bp.get("/shipments/<int:shipment_id>/<any(waybill, delivery_note):kind>.pdf")
@permission_required(flow.STOCK_READ)
def shipment_pdf(shipment_id: int, kind: str) -> Response | WerkzeugResponse:
    """The waybill or delivery note of one shipment as a PDF (also before it ships)."""
    shipment = scoped_shipment(shipment_id)
    if shipment.status == "cancelled":
        raise NotFound()
    name = documents.WAYBILL if kind == "waybill" else documents.DELIVERY_NOTE
    data = documents.render_shipment_pdf(db(), ordo().registry, name, shipment, pdf_language())
    return pdf_response(data, f"{kind}-{shipment.number}.pdf")

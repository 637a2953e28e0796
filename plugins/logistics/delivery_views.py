"""Screens: tracking, exceptions, proof of delivery, receipt, objections and acceptance (LG-4 … LG-8).

* The delivery block of a shipment's page (``logistics/shipment_delivery.html``,
  included by the shipment page) posts to the routes here: a tracking event, a
  logistics exception, "delivered", proof of delivery with the signed note, the
  receipt (or an objection) on the customer's behalf, the resolution of an objection,
  an acceptance report round. Each redirects back to the shipment with a message.
* ``/logistics/exceptions`` lists the exceptions of the orders the user may see —
  open, overdue or all — with kind, owner and due date, and resolves them.
* ``/logistics/deliveries`` lists shipments that have left and wait for the
  customer's receipt (or have an objection).

Thin views over :mod:`plugins.logistics.tracking`, :mod:`~plugins.logistics.exceptions`
and :mod:`~plugins.logistics.delivery`: a refusal is flashed in the reader's language
and nothing changes. Routes are added to :data:`plugins.logistics.views.bp`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, User
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import current_actor, paginate, permission_required, query_args
from core.views.messages import localize
from core.web import db
from plugins.logistics import delivery, exceptions, flow, tracking
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    EXCEPTION_KINDS,
    EXCEPTION_STATUSES,
    OBJECTION_KINDS,
    RECEIPT_STATUSES,
    LogisticsCarrier,
    LogisticsException,
    LogisticsShipment,
)
from plugins.logistics.views import bp

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Deliveries"),
        "logistics.deliveries",
        permission=flow.DELIVERY_MANAGE,
        order=63,
        icon="box-arrow-in-down",
        plugin="logistics",
    ),
    MenuItem(
        N_("Exceptions"),
        "logistics.exception_list",
        permission=flow.EXCEPTIONS_MANAGE,
        order=64,
        icon="exclamation-octagon",
        plugin="logistics",
    ),
)

#: The exceptions list's status filter.
EXCEPTION_FILTERS = {"open": N_("Open"), "overdue": N_("Overdue"), "resolved": N_("Resolved"), "all": N_("All")}
#: The deliveries list's receipt filter.
RECEIPT_FILTERS = {"waiting": N_("Waiting for the customer"), "objected": N_("Objected"), "all": N_("All")}


# --- helpers -------------------------------------------------------------------------------


def show_refusal(exc: ServiceError) -> None:
    """403/404 as the error page; any other refusal flashed in the reader's language."""
    if exc.status in (403, 404):
        abort(exc.status)
    flash(exc.localized() if isinstance(exc, LogisticsError) else localize(exc.message), "danger")


def _shipment(shipment_id: int) -> LogisticsShipment:
    """The shipment when its order lies in the user's scope; 404 otherwise."""
    session = db()
    shipment = session.get(LogisticsShipment, shipment_id) if 0 < shipment_id < 2**63 else None
    if shipment is None:
        raise NotFound()
    try:
        get_order(session, current_actor(), shipment.order_id)
    except ServiceError as exc:
        raise NotFound() from exc
    return shipment


def back_to(shipment_id: int) -> Response:
    """Back to the shipment's page, at its delivery block."""
    return redirect(url_for("logistics.shipment_page", shipment_id=shipment_id) + "#delivery")


def _file(name: str) -> delivery.File | None:
    """The uploaded file ``name`` as (filename, bytes, type), or None when none was chosen."""
    upload = request.files.get(name)
    if not isinstance(upload, FileStorage) or not upload.filename:
        return None
    return upload.filename, upload.read(), upload.mimetype or ""


def _form(name: str) -> str:
    return request.form.get(name, "").strip()


def _run(shipment_id: int, action: Any, done: str) -> Response:
    """Run ``action()`` in the request's transaction: commit and flash ``done``, or flash the refusal."""
    session = db()
    try:
        action()
    except ServiceError as exc:
        session.rollback()
        show_refusal(exc)
    else:
        session.commit()
        flash(done, "success")
    return back_to(shipment_id)


# --- posts from the shipment's delivery block ----------------------------------------------


@bp.post("/shipments/<int:shipment_id>/events")
@permission_required(flow.SHIPPING_MANAGE)
def add_tracking_event(shipment_id: int) -> Response:
    """Enter a tracking event by hand (what the carrier's site or phone said)."""
    _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: tracking.add_event(
            db(),
            current_actor(),
            shipment_id,
            _form("code"),
            _form("at"),
            place=_form("place"),
            description=_form("description"),
        ),
        _("Tracking event recorded."),
    )


@bp.post("/shipments/<int:shipment_id>/exceptions")
@permission_required(flow.EXCEPTIONS_MANAGE)
def report_exception(shipment_id: int) -> Response:
    """Report a delay, damage or loss: the customer is told, the owner follows it up."""
    _shipment(shipment_id)
    owner = _form("owner_id")
    due = _form("due_date")

    def action() -> None:
        try:
            due_date = dt.date.fromisoformat(due) if due else None
        except ValueError:
            raise LogisticsError("invalid_date", N_("Please enter a valid due date.")) from None
        exceptions.report_exception(
            db(),
            current_actor(),
            shipment_id,
            _form("kind"),
            _form("description"),
            owner_id=int(owner) if owner.isdigit() else None,
            due_date=due_date,
        )

    return _run(shipment_id, action, _("Exception reported; the customer has been told."))


@bp.post("/exceptions/<int:exception_id>/resolve")
@permission_required(flow.EXCEPTIONS_MANAGE)
def resolve_exception(exception_id: int) -> Response:
    """Resolve an exception with its resolution; back to where the form was."""
    session = db()
    try:
        exception = exceptions.get_exception(session, current_actor(), exception_id)
    except ServiceError as exc:
        raise NotFound() from exc
    target = request.form.get("next") == "list"
    try:
        exceptions.resolve_exception(session, current_actor(), exception_id, _form("resolution"))
    except ServiceError as exc:
        session.rollback()
        show_refusal(exc)
    else:
        session.commit()
        flash(_("Exception resolved; the customer has been told."), "success")
    if target:
        args: dict[str, Any] = query_args("status", "kind", "mine", "q")
        return redirect(url_for("logistics.exception_list", **args))
    return back_to(exception.shipment_id)


@bp.post("/shipments/<int:shipment_id>/delivered")
@permission_required(flow.DELIVERY_MANAGE)
def mark_delivered(shipment_id: int) -> Response:
    """Record that the goods reached the customer."""
    _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: delivery.mark_delivered(db(), current_actor(), shipment_id, _form("at") or None),
        _("Shipment marked delivered."),
    )


@bp.post("/shipments/<int:shipment_id>/proof")
@permission_required(flow.DELIVERY_MANAGE)
def record_proof(shipment_id: int) -> Response:
    """Proof of delivery: who signed, when, and the signed delivery note (uploaded)."""
    _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: delivery.record_proof_of_delivery(
            db(), current_actor(), shipment_id, _form("signer"), _form("signed_at"), _file("file")
        ),
        _("Proof of delivery recorded."),
    )


@bp.post("/shipments/<int:shipment_id>/receipt")
@permission_required(flow.DELIVERY_MANAGE)
def confirm_receipt(shipment_id: int) -> Response:
    """Confirm the receipt on the customer's behalf (e.g. by phone)."""
    _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: delivery.confirm_receipt(db(), current_actor(), shipment_id),
        _("Receipt confirmed."),
    )


@bp.post("/shipments/<int:shipment_id>/objection")
@permission_required(flow.DELIVERY_MANAGE)
def object_to_delivery(shipment_id: int) -> Response:
    """Record the customer's objection (damaged, short, wrong item) on their behalf."""
    _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: delivery.object_to_delivery(db(), current_actor(), shipment_id, _form("kind"), _form("description")),
        _("Objection recorded; the order's owner and the warehouse have been told."),
    )


@bp.post("/objections/<int:objection_id>/resolve")
@permission_required(flow.DELIVERY_MANAGE)
def resolve_objection(objection_id: int) -> Response:
    """Settle an objection with a replacement shipment or a return."""
    from plugins.logistics.models import LogisticsObjection

    objection = db().get(LogisticsObjection, objection_id) if 0 < objection_id < 2**63 else None
    if objection is None:
        raise NotFound()
    _shipment(objection.shipment_id)
    return _run(
        objection.shipment_id,
        lambda: delivery.resolve_objection(db(), current_actor(), objection_id, _form("resolution")),
        _("Objection resolved; the customer has been told."),
    )


@bp.post("/shipments/<int:shipment_id>/acceptance")
@permission_required(flow.DELIVERY_MANAGE)
def record_acceptance(shipment_id: int) -> Response:
    """Record a round of the order's acceptance report, with the signed report."""
    shipment = _shipment(shipment_id)
    return _run(
        shipment_id,
        lambda: delivery.record_acceptance(
            db(), current_actor(), shipment.order_id, _form("result"), _form("note"), _file("file")
        ),
        _("Acceptance report recorded."),
    )


# --- lists ---------------------------------------------------------------------------------


def _scope(actor: User) -> Any:
    return visible_orders(actor).with_only_columns(Order.id).scalar_subquery()


def _orders(session: Session, ids: set[int]) -> dict[int, Order]:
    return {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(ids)))} if ids else {}


def _users(session: Session, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}


@bp.get("/exceptions")
@permission_required(flow.STOCK_READ)
def exception_list() -> str:
    """Logistics exceptions of the orders the user may see: open (default), overdue, resolved or all."""
    session, actor = db(), current_actor()
    status = request.args.get("status", "open")
    if status not in EXCEPTION_FILTERS:
        status = "open"
    kind = request.args.get("kind", "")
    today = company_now().date()
    stmt = exceptions.exception_query(
        actor,
        status=status if status in ("open", "resolved") else None,
        overdue_on=today if status == "overdue" else None,
        owner_id=actor.id if request.args.get("mine") else None,
        kind=kind if kind in EXCEPTION_KINDS else None,
        text=request.args.get("q", "").strip() or None,
    )
    page = paginate(
        session,
        stmt,
        sortable={"due": LogisticsException.due_date, "reported": LogisticsException.reported_at},
        default_sort="due",
        endpoint="logistics.exception_list",
        args=query_args("status", "kind", "mine", "q"),
        tie_breaker=LogisticsException.id,
    )
    rows: list[LogisticsException] = list(page.rows)
    shipments = {
        s.id: s
        for s in session.scalars(
            select(LogisticsShipment).where(LogisticsShipment.id.in_({r.shipment_id for r in rows}))
        )
    }
    return render_template(
        "logistics/exception_list.html",
        page=page,
        rows=rows,
        orders=_orders(session, {r.order_id for r in rows}),
        shipments=shipments,
        users=_users(session, {r.owner_id for r in rows}),
        today=today,
        status=status,
        kind=kind,
        mine=bool(request.args.get("mine")),
        q=request.args.get("q", ""),
        status_filters={k: _(v) for k, v in EXCEPTION_FILTERS.items()},
        kinds={k: _(v) for k, v in EXCEPTION_KINDS.items()},
        statuses={k: _(v) for k, v in EXCEPTION_STATUSES.items()},
        may_resolve=actor.can(flow.EXCEPTIONS_MANAGE),
    )


@bp.get("/deliveries")
@permission_required(flow.STOCK_READ)
def deliveries() -> str:
    """Shipments that have left and wait for the customer's receipt, or were objected to."""
    session, actor = db(), current_actor()
    receipt = request.args.get("receipt", "waiting")
    if receipt not in RECEIPT_FILTERS:
        receipt = "waiting"
    stmt = select(LogisticsShipment).where(
        LogisticsShipment.status.in_(delivery.LEFT), LogisticsShipment.order_id.in_(_scope(actor))
    )
    if receipt == "waiting":
        stmt = stmt.where(LogisticsShipment.receipt_status == "pending")
    elif receipt == "objected":
        stmt = stmt.where(LogisticsShipment.receipt_status == "objected")
    text = request.args.get("q", "").strip()
    if text:
        numbers = select(Order.id).where(Order.number.contains(text))
        stmt = stmt.where(
            LogisticsShipment.order_id.in_(numbers)
            | LogisticsShipment.number.contains(text)
            | LogisticsShipment.tracking_number.contains(text)
        )
    page = paginate(
        session,
        stmt,
        sortable={"shipped": LogisticsShipment.shipped_at, "number": LogisticsShipment.number},
        default_sort="shipped",
        endpoint="logistics.deliveries",
        args=query_args("receipt", "q"),
        tie_breaker=LogisticsShipment.id,
    )
    rows: list[LogisticsShipment] = list(page.rows)
    carriers = {
        c.id: c
        for c in session.scalars(
            select(LogisticsCarrier).where(LogisticsCarrier.id.in_({r.carrier_id for r in rows if r.carrier_id}))
        )
    }
    return render_template(
        "logistics/delivery_list.html",
        page=page,
        rows=rows,
        orders=_orders(session, {r.order_id for r in rows}),
        carriers=carriers,
        receipt=receipt,
        q=text,
        receipt_filters={k: _(v) for k, v in RECEIPT_FILTERS.items()},
        receipt_statuses={k: _(v) for k, v in RECEIPT_STATUSES.items()},
        objection_kinds={k: _(v) for k, v in OBJECTION_KINDS.items()},
    )

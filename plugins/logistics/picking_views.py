"""Picking screens (拣货单, LG-6): make a picking list, follow it by location, confirm what was picked.

Why: pickers walk the warehouse in location order; the list says where to go, what to
take for which order and how long it should take (the standard time from the settings),
and the confirmation records the quantities actually picked (short picks stay reserved).

- ``POST /logistics/pick-lists`` with ``shipment_id`` (several): a picking list over
  planned shipments of one warehouse (from the shipping queue's selection).
- ``/logistics/pick-lists``: the lists of the user's orders, open first.
- ``/logistics/pick-lists/<id>``: rows by location, the estimate, the confirmation form
  with the actual quantities, the short picks, the PDF (``…/pdf``).

Needs ``logistics.shipping.manage``. Thin views over :mod:`plugins.logistics.shipping`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Order
from core.services import ServiceError
from core.services.orders import visible_orders
from core.views.common import current_actor, paginate, permission_required, query_args
from core.web import db, ordo
from plugins.logistics import documents, flow, shipping
from plugins.logistics.models import LogisticsPickList, LogisticsShipment
from plugins.logistics.shipment_views import pdf_language, pdf_response, refused
from plugins.logistics.views import bp

#: Menu entries of the picking screens.
MENU = (
    MenuItem(
        N_("Pick lists"),
        "logistics.pick_lists",
        permission=flow.SHIPPING_MANAGE,
        order=62,
        icon="list-check",
        plugin="logistics",
    ),
)

#: Status filter of the list.
FILTERS = {"open": N_("Open"), "confirmed": N_("Confirmed"), "all": N_("All")}


def _scoped_pick_list(pick_list_id: int) -> LogisticsPickList:
    try:
        return shipping.get_pick_list(db(), current_actor(), pick_list_id)
    except ServiceError as exc:
        raise NotFound() from exc


@bp.post("/pick-lists")
@permission_required(flow.SHIPPING_MANAGE)
def pick_list_create() -> Response:
    """Make a picking list of the selected planned shipments."""
    session, actor = db(), current_actor()
    ids = [int(raw) for raw in request.form.getlist("shipment_id") if raw.isdigit()]
    try:
        pick_list = shipping.create_pick_list(session, actor, ids)
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return redirect(url_for("logistics.shipping_queue"))
    session.commit()
    flash(_("Picking list %(number)s created.", number=pick_list.number), "success")
    return redirect(url_for("logistics.pick_list_page", pick_list_id=pick_list.id))


@bp.get("/pick-lists")
@permission_required(flow.SHIPPING_MANAGE)
def pick_lists() -> str:
    """The picking lists of orders in the user's scope, newest first, by status."""
    session, actor = db(), current_actor()
    args = query_args("status")
    chosen = args.get("status", "open")
    if chosen not in FILTERS:
        chosen = "open"
    scope = visible_orders(actor).with_only_columns(Order.id)
    in_scope = select(LogisticsShipment.pick_list_id).where(LogisticsShipment.order_id.in_(scope))
    stmt = select(LogisticsPickList).where(LogisticsPickList.id.in_(in_scope))
    if chosen != "all":
        stmt = stmt.where(LogisticsPickList.status == chosen)
    page = paginate(
        session,
        stmt,
        sortable={"created": LogisticsPickList.created_at, "number": LogisticsPickList.number},
        default_sort="-created",
        endpoint="logistics.pick_lists",
        args={"status": chosen},
        tie_breaker=LogisticsPickList.id,
    )
    summaries: dict[int, dict[str, Any]] = {}
    for pick_list in page.rows:
        shipments = list(pick_list.shipments)
        orders = {s.order_id for s in shipments}
        summaries[pick_list.id] = {
            "shipments": len(shipments),
            "orders": sorted(session.scalars(select(Order.number).where(Order.id.in_(orders))) if orders else []),
            "lines": sum(len(s.lines) for s in shipments),
        }
    return render_template(
        "logistics/pick_lists.html",
        page=page,
        summaries=summaries,
        chosen=chosen,
        filters={code: _(label) for code, label in FILTERS.items()},
    )


@bp.get("/pick-lists/<int:pick_list_id>")
@permission_required(flow.SHIPPING_MANAGE)
def pick_list_page(pick_list_id: int) -> str:
    """A picking list: rows by location, the standard time, the confirmation form or the short picks."""
    session = db()
    pick_list = _scoped_pick_list(pick_list_id)
    context = documents.pick_list_context(session, pick_list)
    return render_template(
        "logistics/pick_list.html",
        shorts=[row for row in context["rows"] if row.short > 0],
        **context,
    )


@bp.post("/pick-lists/<int:pick_list_id>/confirm")
@permission_required(flow.SHIPPING_MANAGE)
def pick_list_confirm(pick_list_id: int) -> Response:
    """Confirm the picking list with the quantities picked (``picked-<line id>``)."""
    session, actor = db(), current_actor()
    pick_list = _scoped_pick_list(pick_list_id)
    picked: dict[int, str] = {}
    for key, value in request.form.items():
        if key.startswith("picked-") and key[7:].isdigit():
            picked[int(key[7:])] = value
    try:
        shipping.confirm_pick(session, actor, pick_list.id, picked)
    except ServiceError as exc:
        session.rollback()
        refused(exc)
        return redirect(url_for("logistics.pick_list_page", pick_list_id=pick_list_id))
    session.commit()
    shorts = shipping.short_picks(session, pick_list)
    if shorts:
        flash(
            _(
                "Picking list %(number)s confirmed with %(count)s short picks.",
                number=pick_list.number,
                count=len(shorts),
            ),
            "warning",
        )
    else:
        flash(_("Picking list %(number)s confirmed.", number=pick_list.number), "success")
    return redirect(url_for("logistics.pick_list_page", pick_list_id=pick_list_id))


@bp.get("/pick-lists/<int:pick_list_id>/pdf")
@permission_required(flow.SHIPPING_MANAGE)
def pick_list_pdf(pick_list_id: int) -> Any:
    """The picking list (拣货单) as a PDF, sorted by location, with the standard time."""
    pick_list = _scoped_pick_list(pick_list_id)
    data = documents.render_pick_list_pdf(db(), ordo().registry, pick_list, pdf_language())
    return pdf_response(data, f"picking-list-{pick_list.number}.pdf")

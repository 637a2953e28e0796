"""The customer's returns in the portal (退换货, LG-9), on ``plugins.logistics.portal.bp``.

* ``/portal/deliveries/returns`` — the customer's return requests and their status, and
  the customer's orders with delivered goods that may still be returned.
* ``/portal/deliveries/returns/new/<order_id>`` — request a return of delivered lines
  of one of the customer's own orders (quantity up to what may be returned, reason,
  detail); the data scope keeps other customers' orders out (404).
* ``/portal/deliveries/returns/<id>`` — one return: lines with requested, approved and
  received quantities, status, and the printable request form to stamp.
* ``/portal/deliveries/returns/<id>/form.pdf`` — the return request form (退货申请单);
  ``/portal/deliveries/returns/<id>/stamped`` — upload the stamped form.

The blueprint lets only portal users in (staff get 403); each view needs the customer's
``logistics.returns.request`` and goes through :mod:`plugins.logistics.returns`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.models import Order
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import abort_for, current_actor, paginate, permission_required
from core.web import db
from plugins.logistics import flow, stock
from plugins.logistics import returns as service
from plugins.logistics.models import LogisticsMove, LogisticsReturn
from plugins.logistics.portal import bp
from plugins.logistics.return_views import (
    error_text,
    pdf_language,
    read_request_form,
    request_rows,
    return_lines,
    return_pdf,
    view_helpers,
)

#: How many recent orders with delivered goods the returns page offers.
ORDERS_SHOWN = 20


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _return(return_id: int) -> LogisticsReturn:
    try:
        return service.get_return(db(), current_actor(), return_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _returnable_orders() -> list[dict[str, Any]]:
    """The customer's recent orders with delivered goods, and how much of each may be returned."""
    session, actor = db(), current_actor()
    shipped_orders = (
        visible_orders(actor)
        .where(Order.id.in_(select(LogisticsMove.order_id).where(LogisticsMove.kind == "shipment")))
        .options(selectinload(Order.lines))
        .order_by(Order.id.desc())
        .limit(ORDERS_SHOWN)
    )
    rows = []
    for order in session.scalars(shipped_orders):
        returnable = service.returnable_quantities(session, order)
        total = sum(returnable.values(), stock.ZERO)
        rows.append({"order": order, "returnable": total})
    return rows


@bp.get("/returns")
@permission_required(flow.RETURNS_REQUEST)
def returns() -> str:
    """The customer's return requests with their status, and the orders one may return goods of."""
    session, actor = db(), current_actor()
    page = paginate(
        session,
        service.visible_returns(actor).options(selectinload(LogisticsReturn.lines)),
        sortable={"requested": LogisticsReturn.requested_at, "number": LogisticsReturn.number},
        default_sort="-requested",
        endpoint="logistics_portal.returns",
        args={},
        tie_breaker=LogisticsReturn.id,
    )
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({r.order_id for r in page.rows})))}
    return render_template(
        "logistics/portal/returns.html",
        page=page,
        orders=orders,
        returnable_orders=_returnable_orders(),
        **view_helpers(),
    )


@bp.route("/returns/new/<int:order_id>", methods=["GET", "POST"])
@permission_required(flow.RETURNS_REQUEST)
def request_return(order_id: int) -> str | Response | tuple[str, int]:
    """Request a return of delivered goods of one of the customer's own orders."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    rows = request_rows(session, order)
    problems: list[str] = []
    if request.method == "POST":
        lines, problems = read_request_form(rows)
        if not problems:
            try:
                ret = service.request_return(
                    session,
                    actor,
                    order.id,
                    lines,
                    note=request.form.get("note", ""),
                    exception_reason=request.form.get("exception_reason", ""),
                )
            except ServiceError as exc:
                session.rollback()
                abort_for(exc)
                problems = [error_text(exc)]
            else:
                session.commit()
                flash(
                    _(
                        "Your return request %(number)s was sent. Print the form, stamp it and send it back "
                        "with the goods once the return is approved.",
                        number=ret.number,
                    ),
                    "success",
                )
                return redirect(url_for("logistics_portal.return_detail", return_id=ret.id))
        order = _order(order_id)
        rows = request_rows(session, order)
    page = render_template(
        "logistics/portal/return_form.html",
        order=order,
        rows=rows,
        problems=problems,
        form=request.form if request.method == "POST" else {},
        action=url_for("logistics_portal.request_return", order_id=order.id),
        cancel_url=url_for("logistics_portal.returns"),
        **view_helpers(),
    )
    return (page, 422) if problems else page


@bp.get("/returns/<int:return_id>")
@permission_required(flow.RETURNS_REQUEST)
def return_detail(return_id: int) -> str:
    """One of the customer's returns: its lines, status and the request form to print."""
    session, actor = db(), current_actor()
    ret = _return(return_id)
    return render_template(
        "logistics/portal/return.html",
        ret=ret,
        order=_order(ret.order_id),
        lines=return_lines(session, ret),
        can_attach=ret.status not in service.FINAL_STATUSES and actor.can("attachments.upload"),
        **view_helpers(),
    )


@bp.get("/returns/<int:return_id>/form.pdf")
@permission_required(flow.RETURNS_REQUEST)
def return_form_pdf(return_id: int) -> Response:
    """The return request form (退货申请单) to stamp."""
    session, actor = db(), current_actor()
    ret = _return(return_id)
    return return_pdf(session, ret, _order(ret.order_id), pdf_language(actor))


@bp.post("/returns/<int:return_id>/stamped")
@permission_required(flow.RETURNS_REQUEST)
def return_stamped(return_id: int) -> Response:
    """Upload the scan of the stamped return request form."""
    session, actor = db(), current_actor()
    ret = _return(return_id)
    back = redirect(url_for("logistics_portal.return_detail", return_id=ret.id))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose the scanned, stamped form to upload."), "danger")
        return back
    try:
        service.attach_stamped_request(session, actor, ret.id, (upload.filename, upload.read()))
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(error_text(exc), "danger")
        return back
    session.commit()
    flash(_("The stamped return request form was filed with the order."), "success")
    return back

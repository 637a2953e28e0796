"""The outbound queue (出库审核): orders waiting for the warehouse to release them to shipping.

Why: before goods are picked, the warehouse checks that stock is reserved, the ship-to
address is complete and the required documents are attached (CORE-2, LG-2). The queue
lists the orders at ``logistics.outbound_check`` in the user's data scope with their
remote mark, reserved against ordered quantities, a backorder flag and every reason
that still blocks the release; "Release" takes the workflow action ``release`` (the
step's guard re-checks). Needs ``logistics.outbound.check``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer, Order
from core.services import ServiceError
from core.services.orders import get_order, take_action, visible_orders
from core.views.common import current_actor, paginate, permission_required, query_args
from core.views.messages import localize
from core.views.orders import order_badges
from core.web import db, ordo
from plugins.logistics import flow, outbound, stock
from plugins.logistics.models import LogisticsOrder
from plugins.logistics.views import bp

#: Menu entries of the outbound queue.
MENU = (
    MenuItem(
        N_("Outbound check"),
        "logistics.outbound_queue",
        permission=flow.OUTBOUND,
        order=60,
        icon="clipboard-check",
        plugin="logistics",
    ),
)


def order_row(session: Any, order: Order) -> dict[str, Any]:
    """One queue row: ordered, reserved and backorder quantities, facts and the release blockers."""
    ordered = sum((stock.q3(line.quantity) for line in order.lines), Decimal("0"))
    reserved = sum(stock.reserved_quantities(session, order.id).values(), Decimal("0"))
    backorders = stock.backorder_quantities(session, order)
    return {
        "order": order,
        "facts": session.get(LogisticsOrder, order.id),
        "ordered": ordered,
        "reserved": reserved,
        "backorder": sum(backorders.values(), Decimal("0")),
        "blockers": [_(reason) for reason in outbound.release_blockers(session, order)],
    }


@bp.get("/outbound")
@permission_required(flow.OUTBOUND)
def outbound_queue() -> str:
    """Orders waiting for the outbound check, oldest first, with what still blocks each."""
    session, actor = db(), current_actor()
    stmt = visible_orders(actor).where(Order.step == flow.OUTBOUND_CHECK)
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
        endpoint="logistics.outbound_queue",
        args=args,
        tie_breaker=Order.id,
    )
    rows = [order_row(session, order) for order in page.rows]
    return render_template(
        "logistics/outbound_queue.html",
        page=page,
        rows=rows,
        badges=order_badges(session, list(page.rows)),
        search=args.get("q", ""),
    )


@bp.post("/outbound/<int:order_id>/release")
@permission_required(flow.OUTBOUND)
def outbound_release(order_id: int) -> Response:
    """Release the order to shipping (the workflow action ``release``), or say why not."""
    session, actor = db(), current_actor()
    try:
        order = get_order(session, actor, order_id)
    except ServiceError as exc:
        raise NotFound() from exc
    version = request.form.get("version", "")
    try:
        take_action(
            session,
            ordo().registry,
            actor,
            order,
            "release",
            version=int(version) if version.isdigit() else None,
        )
    except ServiceError as exc:
        session.rollback()
        reasons = (exc.details or {}).get("reasons") if isinstance(exc.details, dict) else None
        if reasons:
            for reason in reasons:
                flash(_(reason) if _(reason) != reason else localize(reason), "danger")
        else:
            flash(localize(exc.message), "danger")
        return redirect(url_for("logistics.outbound_queue"))
    session.commit()
    flash(_("Order %(number)s was released to shipping.", number=order.number), "success")
    return redirect(url_for("logistics.outbound_queue"))

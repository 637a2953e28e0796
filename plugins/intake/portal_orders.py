"""The portal's "My orders" (IN-8: the customer follows its orders' status) and "Order again".

Every order comes through core's data scope (:func:`core.services.orders.visible_orders`
and :func:`~core.services.orders.get_order`): a portal user sees its own customer's
orders only, and another customer's order answers 404 as if it did not exist. The
supplier's staff are shown as "Staff" (:func:`core.security.fields.hides_person`).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.attachments.service import list_attachments
from core.contrib import Panel
from core.documents.archive import visible_issued_documents
from core.models import Order, User
from core.models.files import OrderAttachment
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import current_actor, paginate, query_args
from core.views.orders import order_timeline
from core.web import db, ordo
from plugins.intake import precheck
from plugins.intake.models import IntakeFinding
from plugins.intake.portal import bp, may_order
from plugins.intake.portal_cart import QuantityError, add_to_cart
from plugins.intake.portal_checkout import view_only_message

_ORDER_SORTS: dict[str, Any] = {
    "created": Order.created_at,
    "number": Order.number,
    "requested": Order.requested_date,
    "total": Order.total,
}


def finding_text(row: IntakeFinding) -> str:
    """A kept pre-check finding in the reader's language (its msgid translated, else the stored message)."""
    translate = getattr(precheck, "finding_text", None)
    if callable(translate):
        return str(translate(row.msgid, row.params or {}, row.message))
    return row.message


def rejection_reasons(session: Session, order: Order) -> list[str]:
    """Why the automatic pre-check rejected ``order``, in the reader's language (none if it did not)."""
    rows = session.scalars(
        select(IntakeFinding)
        .where(IntakeFinding.order_id == order.id, IntakeFinding.level == "reject")
        .order_by(IntakeFinding.id)
    )
    return [finding_text(row) for row in rows]


def customer_timeline(session: Session, order: Order, viewer: User, reasons: list[str]) -> list[dict[str, Any]]:
    """The order's history for the customer, oldest first: core's, with reasons filtered.

    The supplier's people show as "Staff" (core's timeline does that); reasons are shown
    only where the order was rejected or cancelled (RV-9), the pre-check's in the
    reader's language. Internal notes on other moves (pre-check warnings, a clerk's
    remarks) stay inside.
    """
    entries = order_timeline(session, order, viewer)
    for entry in entries[1:]:
        if entry["action"] == "precheck_reject":
            entry["reason"] = " ".join(reasons) or entry["reason"]
        elif entry["status"] not in ("rejected", "cancelled"):
            entry["reason"] = ""
    return entries


def customer_documents(session: Session, viewer: User, order: Order) -> list[Any]:
    """The documents issued for ``order`` that are meant for the customer and ``viewer`` may read."""
    registry = ordo().registry
    return [
        issued
        for issued in visible_issued_documents(session, registry, viewer, order)
        if (doc := registry.documents.get(issued.document)) is not None and doc.for_customer
    ]


def customer_attachments(session: Session, viewer: User, order: Order) -> list[OrderAttachment]:
    """The order's attachments shared with the customer (core filters them for portal users)."""
    return list_attachments(session, viewer, order.id)


def portal_panels(session: Session, order: Order, viewer: User) -> list[Panel]:
    """Other plugins' blocks for the customer's order page (``ordo_intake_portal_panels``)."""
    panels = [
        replace(p, plugin=plugin)
        for plugin, group in ordo().registry.results_by_plugin(
            "ordo_intake_portal_panels", order=order, user=viewer, session=session
        )
        for p in group
    ]
    return sorted(panels, key=lambda p: (p.order, p.plugin, p.title))


def document_label(name: str) -> str:
    """A document type's label in the reader's language (its name when no plugin registers it)."""
    doc = ordo().registry.documents.get(name)
    return _(doc.label) if doc is not None else name


@bp.get("/orders")
@login_required
def orders() -> str:
    """The customer's orders, newest first, with their status."""
    session, actor = db(), current_actor()
    page = paginate(
        session,
        visible_orders(actor),
        sortable=_ORDER_SORTS,
        default_sort="-created",
        endpoint=f"{bp.name}.orders",
        args=query_args(),
        tie_breaker=Order.id,
    )
    return render_template("intake/portal/orders.html", page=page)


def _get(session: Session, actor: User, order_id: int) -> Order:
    try:
        return get_order(session, actor, order_id)
    except ServiceError as exc:
        raise NotFound() from exc


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id: int) -> str:
    """One order of the customer's: status, history, lines, totals, documents and shared files."""
    session, actor = db(), current_actor()
    order = _get(session, actor, order_id)
    reasons = rejection_reasons(session, order) if order.status == "rejected" else []
    return render_template(
        "intake/portal/order.html",
        order=order,
        reasons=reasons,
        timeline=customer_timeline(session, order, actor, reasons),
        documents=customer_documents(session, actor, order),
        document_label=document_label,
        attachments=customer_attachments(session, actor, order),
        ordering=may_order(session, actor),
        panels=portal_panels(session, order, actor),
    )


@bp.post("/orders/<int:order_id>/reorder")
@login_required
def reorder(order_id: int) -> Response:
    """Order again: put the order's products and quantities in the cart (inactive products are skipped)."""
    session, actor = db(), current_actor()
    order = _get(session, actor, order_id)
    if not may_order(session, actor):
        flash(view_only_message(), "warning")
        return redirect(url_for(".order_detail", order_id=order.id))
    skipped: list[str] = []
    added = 0
    for line in order.lines:
        if not line.product.active:
            skipped.append(line.product.sku)
            continue
        try:
            add_to_cart(line.product_id, Decimal(line.quantity))
        except QuantityError as exc:
            flash(str(exc), "warning")
            break
        added += 1
    if skipped:
        flash(
            _("Not offered any more, so not added: %(products)s.", products=", ".join(skipped)),
            "warning",
        )
    if added:
        flash(
            _("The products of order %(number)s are in your cart at today's prices.", number=order.number),
            "success",
        )
    return redirect(url_for(".cart"))

"""Serving documents: ``/orders/<id>/documents/<name>.pdf`` for orders in the user's scope."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_babel import get_locale
from flask_login import login_required

from core.documents import check_may_print, render_document
from core.services import ServiceError
from core.services.orders import get_order
from core.web import actor, db, ordo

bp = Blueprint("documents", __name__)


@bp.get("/orders/<int:order_id>/documents/<name>.pdf")
@login_required
def order_document(order_id: int, name: str) -> Response:
    """The PDF of document ``name`` for the order; 404 outside the user's scope."""
    user = actor()
    assert user is not None
    registry = ordo().registry
    try:
        order = get_order(db(), user, order_id)
        check_may_print(registry, name, user)
    except ServiceError as exc:
        abort(exc.status)
    pdf = render_document(db(), registry, name, order, str(get_locale() or "zh_CN"))
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{order.number}-{name}.pdf"'},
    )

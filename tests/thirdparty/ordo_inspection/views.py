"""Inspection's screens: the list of reports and recording a report from the order page.

Thin views: parse the request, call :mod:`ordo_inspection.services`, render or redirect.
CSRF is checked by core for every cookie-authenticated POST; ``permission_required``
refuses users without the permission (403) and declares it, so core's permission
matrix test knows what each screen needs.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import current_actor, permission_required, safe_target
from core.web import db
from ordo_inspection.services import record_report as record
from ordo_inspection.services import visible_reports

bp = Blueprint("inspection", __name__, url_prefix="/inspection", template_folder="templates")


@bp.get("/reports")
@permission_required("inspection.report.read")
def list_reports() -> str:
    """The newest inspection reports on orders the user may see."""
    return render_template("inspection/reports.html", rows=visible_reports(db(), current_actor()))


@bp.post("/orders/<int:order_id>/reports")
@permission_required("inspection.report.create")
def record_report(order_id: int) -> Response:
    """Record a passed or failed inspection of an order, then go back where the form was."""
    user, session = current_actor(), db()
    # Only paths on this site: never redirect to another host.
    back = safe_target(request.form.get("next"), url_for("inspection.list_reports"))
    try:
        order = get_order(session, user, order_id)
        result = request.form.get("result")
        if result not in ("passed", "failed"):
            raise ServiceError("invalid", "choose whether the inspection passed or failed", {"result": ["Required."]})
        record(session, user, order, result == "passed", request.form.get("note", ""))
    except ServiceError as exc:
        session.rollback()
        if exc.status in (403, 404):
            abort(exc.status)
        flash(exc.message, "danger")
        return redirect(back)
    session.commit()
    flash(f"Inspection of order {order.number} recorded.", "success")
    return redirect(back)

"""Inspection's screens: the list of reports and recording a report from the order page.

Thin views: parse the request, call :mod:`ordo_inspection.services`, render or redirect.
CSRF is checked by core for every cookie-authenticated POST.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from core.models import User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import safe_target
from core.web import actor, db
from ordo_inspection.services import record_report as record
from ordo_inspection.services import visible_reports

bp = Blueprint("inspection", __name__, url_prefix="/inspection", template_folder="templates")


def _user_who_can(code: str) -> User:
    user = actor()
    if user is None or not user.can(code):
        abort(403)
    return user


@bp.get("/reports")
@login_required
def list_reports() -> str:
    """The newest inspection reports on orders the user may see."""
    user = _user_who_can("inspection.report.read")
    return render_template("inspection/reports.html", rows=visible_reports(db(), user))


@bp.post("/orders/<int:order_id>/reports")
@login_required
def record_report(order_id: int) -> Response:
    """Record a passed or failed inspection of an order, then go back where the form was."""
    user = _user_who_can("inspection.report.create")
    session = db()
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

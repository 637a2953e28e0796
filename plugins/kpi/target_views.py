"""The targets screen (KP-2): every metric's default, company, branch and department targets.

* ``GET /kpi/targets`` (``kpi.dashboard.read``) — the table, one row per enabled metric;
  with ``kpi.targets.manage`` also the form to set a target and a delete button per row.
* ``POST /kpi/targets`` (``kpi.targets.manage``) — set a target: metric, optional branch
  and/or department, value. A value that is not a number is refused beside the field
  and nothing changes.
* ``POST /kpi/targets/<id>/delete`` (``kpi.targets.manage``) — remove a target row; the
  next less specific target applies again.

Thin views over :mod:`plugins.kpi.targets`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Branch, Department
from core.services import ServiceError
from core.settings import session_registry
from core.views.common import FieldErrors, abort_for, current_actor, field_errors, permission_required
from core.web import db
from plugins.kpi import flow, targets
from plugins.kpi.errors import KpiError
from plugins.kpi.views import bp

#: Menu entries of this screen.
MENU: tuple[MenuItem, ...] = (
    MenuItem(N_("Targets"), "kpi.targets", permission=flow.DASHBOARD_READ, order=20, icon="bullseye", plugin="kpi"),
)


def _message(exc: ServiceError) -> str:
    return exc.localized() if isinstance(exc, KpiError) else exc.message


def _render(values: dict[str, Any], errors: FieldErrors, status: int = 200) -> tuple[str, int]:
    session = db()
    registry = session_registry(session)
    return (
        render_template(
            "kpi/target_list.html",
            table=targets.targets_table(session, registry),
            branches=session.execute(select(Branch.id, Branch.name).order_by(Branch.code)).all(),
            departments=session.execute(select(Department.id, Department.name).order_by(Department.code)).all(),
            values=values,
            errors=errors,
            can_manage=current_actor().can(flow.TARGETS_MANAGE),
        ),
        status,
    )


@bp.route("/targets", methods=["GET", "POST"], endpoint="targets")
@permission_required(flow.DASHBOARD_READ)
def targets_screen() -> Any:
    """The targets table; POST sets a target (``kpi.targets.manage``)."""
    if request.method == "GET":
        return _render({"metric": request.args.get("metric", "")}, FieldErrors())
    actor = current_actor()
    if not actor.can(flow.TARGETS_MANAGE):
        raise Forbidden()
    session = db()
    values = {key: request.form.get(key, "").strip() for key in ("metric", "branch_id", "department_id", "value")}
    try:
        row = targets.set_target(
            session,
            actor,
            values["metric"],
            values["value"],
            branch_id=values["branch_id"] or None,
            department_id=values["department_id"] or None,
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        if exc.status == 403:
            abort_for(exc)
        errors = field_errors(exc.details)
        if not errors.fields or exc.status == 404:
            errors.general.append(_message(exc))
        return _render(values, errors, exc.status if exc.status != 404 else 422)
    flash(_("The target of %(metric)s was set to %(value)s.", metric=row.metric, value=values["value"]), "success")
    return redirect(url_for("kpi.targets"))


@bp.post("/targets/<int:target_id>/delete")
@permission_required(flow.TARGETS_MANAGE)
def target_delete(target_id: int) -> Response:
    """Remove a target row (the next less specific target applies again)."""
    session = db()
    try:
        targets.clear_target(session, current_actor(), target_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_message(exc), "danger")
        return redirect(url_for("kpi.targets"))
    flash(_("The target was removed."), "success")
    return redirect(url_for("kpi.targets"))

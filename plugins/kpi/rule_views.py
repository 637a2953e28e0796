"""Reward/alert rules and the monthly evaluation screens (KP-2).

* ``/kpi/rules`` (read ``kpi.evaluation.read``) — the rules; with ``kpi.rules.manage``
  the form to add one (POST) and, per rule, edit and deactivate.
* ``/kpi/rules/<id>/edit`` — change a rule; ``/kpi/rules/<id>/deactivate`` stops it
  (asked to confirm).
* ``/kpi/rules/results?month=YYYY-MM`` — the monthly evaluation: the teams and people
  to reward or follow up, with the values of each month, their status and "mark done"
  with a note; CSV/XLSX export; "Evaluate now" for the month (``kpi.rules.manage``).

Thin views over :mod:`plugins.kpi.rules`; refusals show beside their fields.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.services import ServiceError
from core.settings import session_registry
from core.views.common import FieldErrors, abort_for, current_actor, field_errors, permission_required, plain_number
from core.views.labels import translate
from core.web import db
from plugins.kpi import flow, rules
from plugins.kpi.engine import collect_metrics
from plugins.kpi.errors import KpiError
from plugins.kpi.models import COMPARISONS, RESULT_STATUSES, RULE_KINDS, RULE_SUBJECTS, KpiRule
from plugins.kpi.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(N_("Rules"), "kpi.rules", permission=flow.EVALUATION_READ, order=30, icon="award", plugin="kpi"),
    MenuItem(
        N_("Monthly evaluation"),
        "kpi.rule_results",
        permission=flow.EVALUATION_READ,
        order=31,
        icon="trophy",
        plugin="kpi",
    ),
)

_FORM_FIELDS = ("name", "kind", "metric", "comparison", "threshold", "months", "subject", "note")


def _message(exc: ServiceError) -> str:
    return exc.localized() if isinstance(exc, KpiError) else exc.message


def _values(rule: KpiRule | None) -> dict[str, Any]:
    if rule is None:
        return {"kind": "reward", "comparison": ">=", "months": "3", "subject": "branch", "active": True}
    return {
        "name": rule.name,
        "kind": rule.kind,
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": plain_number(rule.threshold),
        "months": str(rule.months),
        "subject": rule.subject,
        "note": rule.note,
        "active": rule.active,
    }


def _read_form() -> dict[str, Any]:
    data: dict[str, Any] = {key: request.form.get(key, "") for key in _FORM_FIELDS}
    data["active"] = request.form.get("active", "1") == "1"
    return data


def _refused(exc: ServiceError) -> FieldErrors:
    if exc.status == 403:
        abort_for(exc)
    errors = field_errors(exc.details)
    if not errors or exc.status == 404:
        errors.general.append(_message(exc))
    return errors


def _render(rule: KpiRule | None, values: dict[str, Any], errors: FieldErrors, status: int = 200) -> tuple[str, int]:
    session = db()
    metrics = collect_metrics(session_registry(session))
    return (
        render_template(
            "kpi/rule_list.html",
            rules=list(session.scalars(select(KpiRule).order_by(KpiRule.active.desc(), KpiRule.kind, KpiRule.name))),
            rule=rule,
            metrics=metrics,
            values=values,
            errors=errors,
            kinds=RULE_KINDS,
            comparisons=COMPARISONS,
            subjects=RULE_SUBJECTS,
            can_manage=current_actor().can(flow.RULES_MANAGE),
        ),
        status,
    )


@bp.route("/rules", methods=["GET", "POST"], endpoint="rules")
@permission_required(flow.EVALUATION_READ)
def rules_screen() -> Any:
    """The rules and the form to add one (POST: ``kpi.rules.manage``)."""
    if request.method == "GET":
        return _render(None, _values(None), FieldErrors())
    actor = current_actor()
    if not actor.can(flow.RULES_MANAGE):
        raise Forbidden()
    session = db()
    data = _read_form()
    try:
        rule = rules.create_rule(session, actor, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _render(None, data, _refused(exc), exc.status if exc.status != 404 else 422)
    flash(_("The rule %(name)s was added.", name=rule.name), "success")
    return redirect(url_for("kpi.rules"))


@bp.route("/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@permission_required(flow.RULES_MANAGE)
def rule_edit(rule_id: int) -> Any:
    """Change a rule (results already found stay)."""
    session = db()
    rule = session.get(KpiRule, rule_id)
    if rule is None:
        raise NotFound()
    if request.method == "GET":
        return _render(rule, _values(rule), FieldErrors())
    data = _read_form()
    try:
        rules.update_rule(session, current_actor(), rule_id, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _render(session.get(KpiRule, rule_id), data, _refused(exc), exc.status if exc.status != 404 else 422)
    flash(_("The rule %(name)s was saved.", name=data["name"]), "success")
    return redirect(url_for("kpi.rules"))


@bp.post("/rules/<int:rule_id>/deactivate")
@permission_required(flow.RULES_MANAGE)
def rule_deactivate(rule_id: int) -> Response:
    """Stop evaluating a rule; its results stay."""
    session = db()
    try:
        rule = rules.deactivate_rule(session, current_actor(), rule_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_message(exc), "danger")
        return redirect(url_for("kpi.rules"))
    flash(_("The rule %(name)s was deactivated.", name=rule.name), "success")
    return redirect(url_for("kpi.rules"))


def _month_arg(value: str | None) -> dt.date:
    if not value:
        return rules.previous_month(company_now().date())
    return rules.parse_month(value)


@bp.get("/rules/results")
@permission_required(flow.EVALUATION_READ)
def rule_results() -> Any:
    """The monthly evaluation of a month (default: the previous month)."""
    try:
        month = _month_arg(request.args.get("month"))
    except KpiError as exc:
        flash(exc.localized(), "danger")
        month = rules.previous_month(company_now().date())
    session = db()
    results = rules.month_results(session, current_actor(), month)
    return render_template(
        "kpi/rule_results.html",
        month=month,
        previous=rules.previous_month(month),
        following=(month.replace(day=28) + dt.timedelta(days=4)).replace(day=1),
        results=results,
        kinds=RULE_KINDS,
        subjects=RULE_SUBJECTS,
        statuses=RESULT_STATUSES,
        can_manage=current_actor().can(flow.RULES_MANAGE),
    )


@bp.post("/rules/results/<int:result_id>/done")
@permission_required(flow.EVALUATION_READ)
def rule_result_done(result_id: int) -> Response:
    """Mark a result done with a note (``kpi.rules.manage``)."""
    session = db()
    try:
        result = rules.mark_done(session, current_actor(), result_id, request.form.get("note", ""))
        month = result.month
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_message(exc), "danger")
        return redirect(url_for("kpi.rule_results", month=request.form.get("month", "")))
    flash(_("The result was marked done."), "success")
    return redirect(url_for("kpi.rule_results", month=f"{month:%Y-%m}"))


@bp.post("/rules/evaluate")
@permission_required(flow.RULES_MANAGE)
def rule_evaluate() -> Response:
    """Evaluate the rules for a month now (results already found stay, new ones are added)."""
    session = db()
    try:
        month = rules.parse_month(request.form.get("month", ""))
        results = rules.evaluate_now(session, current_actor(), month)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_message(exc), "danger")
        return redirect(url_for("kpi.rule_results"))
    flash(
        _("The rules were evaluated for %(month)s: %(count)s results.", month=f"{month:%Y-%m}", count=len(results)),
        "success",
    )
    return redirect(url_for("kpi.rule_results", month=f"{month:%Y-%m}"))


@bp.get("/rules/results/export.<fmt>")
@permission_required(flow.EVALUATION_READ)
def rule_results_export(fmt: str) -> Response:
    """The month's results as CSV or XLSX."""
    from plugins.kpi.exports import csv_response, xlsx_response

    if fmt not in ("csv", "xlsx"):
        raise NotFound()
    try:
        month = _month_arg(request.args.get("month"))
    except KpiError:
        raise NotFound() from None
    header = [_("Month"), _("Kind"), _("Rule"), _("Metric"), _("Subject"), _("Values"), _("Status"), _("Note")]
    rows = [
        [
            f"{r.month:%Y-%m}",
            translate(RULE_KINDS.get(r.rule.kind, r.rule.kind)),
            r.rule.name,
            r.rule.metric,
            r.subject_name or translate(RULE_SUBJECTS["company"]),
            r.values,
            translate(RESULT_STATUSES.get(r.status, r.status)),
            r.note,
        ]
        for r in rules.month_results(db(), current_actor(), month)
    ]
    respond = csv_response if fmt == "csv" else xlsx_response
    return respond(f"kpi-evaluation-{month:%Y-%m}", header, rows)

"""Payment terms screens (BL-1): the list of terms and the form with its instalment table.

* ``/billing/terms`` — every payment term with its kind and parameters (read:
  ``billing.accounts.read``); a sample due schedule for each.
* ``/billing/terms/new``, ``/billing/terms/<id>/edit`` — the form; instalment terms get a
  table of rows (percent, days after the invoice date) that can be added and removed.
* ``/billing/terms/<id>/active`` — deactivate or reactivate (``billing.terms.manage``).

Thin views over :mod:`plugins.billing.terms`; refusals show beside their fields.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.services import ServiceError
from core.views.common import FieldErrors, abort_for, current_actor, field_errors, permission_required, plain_number
from core.web import db
from plugins.billing import accounts, flow, terms
from plugins.billing.errors import BillingError
from plugins.billing.models import TERM_KINDS, BillingPaymentTerm
from plugins.billing.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Payment terms"),
        "billing.term_list",
        permission=flow.ACCOUNTS_READ,
        order=12,
        icon="calendar3",
        plugin="billing",
    ),
)

_ROW = re.compile(r"^instalments-(\d+)-(percent|due_days)$")
_FIELDS = ("code", "name", "kind", "prepayment_percent", "cutoff_day", "days_after_month_end", "due_days")
#: The sample invoice the list shows each term's schedule for.
SAMPLE_TOTAL = Decimal("10000.00")


def read_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The term form as the service reads it: fields, ``active`` and the instalment rows in index order."""
    data: dict[str, Any] = {name: form.get(name, "") for name in _FIELDS}
    data["active"] = form.get("active") == "1"
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _ROW.match(key)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value
    data["instalments"] = [rows[i] for i in sorted(rows) if any(v.strip() for v in rows[i].values())]
    return data


def _values(term: BillingPaymentTerm | None) -> dict[str, Any]:
    if term is None:
        return {
            "kind": "monthly_settlement",
            "prepayment_percent": "100",
            "cutoff_day": "31",
            "days_after_month_end": "30",
            "due_days": "0",
            "active": True,
            "instalments": [{"percent": "50", "due_days": "0"}, {"percent": "50", "due_days": "30"}],
        }
    return {
        "code": term.code,
        "name": term.name,
        "kind": term.kind,
        "prepayment_percent": plain_number(term.prepayment_percent),
        "cutoff_day": str(term.cutoff_day),
        "days_after_month_end": str(term.days_after_month_end),
        "due_days": str(term.due_days),
        "active": term.active,
        "instalments": [{"percent": plain_number(i.percent), "due_days": str(i.due_days)} for i in term.instalments]
        or [{"percent": "", "due_days": ""}, {"percent": "", "due_days": ""}],
    }


def _form(term: BillingPaymentTerm | None, values: dict[str, Any], errors: FieldErrors, status: int = 200) -> Any:
    return (
        render_template(
            "billing/term_form.html",
            term=term,
            values=values,
            errors=errors,
            kinds=TERM_KINDS,
        ),
        status,
    )


def _refused(exc: ServiceError) -> FieldErrors:
    abort_for(exc)
    errors = field_errors(exc.details, groups=("instalments",))
    message = exc.localized() if isinstance(exc, BillingError) else exc.message
    if not errors:
        errors.general.append(message)
    return errors


@bp.get("/terms")
@permission_required(flow.ACCOUNTS_READ)
def term_list() -> str:
    """Every payment term (active first) with a sample schedule for an invoice dated today."""
    session = db()
    rows = list(
        session.scalars(select(BillingPaymentTerm).order_by(BillingPaymentTerm.active.desc(), BillingPaymentTerm.code))
    )
    today = accounts.today()
    samples = {t.id: terms.due_schedule(t, t.kind, today, SAMPLE_TOTAL) for t in rows}
    return render_template(
        "billing/term_list.html",
        terms=rows,
        samples=samples,
        kinds=TERM_KINDS,
        sample_total=SAMPLE_TOTAL,
        today=today,
        can_manage=current_actor().can(flow.TERMS_MANAGE),
    )


@bp.route("/terms/new", methods=["GET", "POST"])
@permission_required(flow.TERMS_MANAGE)
def term_new() -> Any:
    """Add payment terms."""
    if request.method == "GET":
        return _form(None, _values(None), FieldErrors())
    session = db()
    data = read_form(request.form)
    try:
        term = terms.create_term(session, current_actor(), data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _form(None, data, _refused(exc), exc.status)
    flash(_("Payment terms %(code)s were created.", code=term.code), "success")
    return redirect(url_for("billing.term_list"))


@bp.route("/terms/<int:term_id>/edit", methods=["GET", "POST"])
@permission_required(flow.TERMS_MANAGE)
def term_edit(term_id: int) -> Any:
    """Change payment terms (orders and invoices already fixed keep theirs)."""
    session = db()
    try:
        term = terms.get_term(session, term_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    if request.method == "GET":
        return _form(term, _values(term), FieldErrors())
    data = read_form(request.form)
    try:
        terms.update_term(session, current_actor(), term_id, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        return _form(terms.get_term(session, term_id), data, _refused(exc), exc.status)
    flash(_("Payment terms %(code)s were saved.", code=term.code), "success")
    return redirect(url_for("billing.term_list"))


@bp.post("/terms/<int:term_id>/active")
@permission_required(flow.TERMS_MANAGE)
def term_active(term_id: int) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) payment terms."""
    session = db()
    active = request.form.get("active") == "1"
    try:
        term = terms.set_term_active(session, current_actor(), term_id, active)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized() if isinstance(exc, BillingError) else exc.message, "danger")
        return redirect(url_for("billing.term_list"))
    if active:
        flash(_("Payment terms %(code)s are in use again.", code=term.code), "success")
    else:
        flash(_("Payment terms %(code)s were deactivated.", code=term.code), "success")
    return redirect(url_for("billing.term_list"))

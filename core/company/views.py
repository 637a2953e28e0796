"""The "Company" screen (``/admin/company``): letterhead, home region, order prefix, working
week and logo. Every route needs ``settings.manage``.

Thin views over :mod:`core.company.service`; its refusals are shown beside the fields in
the user's language.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField

from core.calendar import WEEKDAYS, parse_weekend
from core.calendar.views import problem_messages, problem_text
from core.company.service import (
    MAX_LOGO_BYTES,
    TEXT_FIELDS,
    company_logo,
    current_company,
    orders_exist,
    remove_logo,
    set_logo,
    update_company,
)
from core.services import ServiceError
from core.views.common import abort_for, current_actor, permission_required, screen_blueprint
from core.web import db

bp = screen_blueprint("company", __name__, url_prefix="/admin/company")


class CompanyForm(FlaskForm):
    """The company's own fields; weekend days are a row of checkboxes (``weekend_days``)."""

    name = StringField(_l("Company name"), render_kw={"maxlength": 200, "required": True})
    address = TextAreaField(_l("Address"), render_kw={"rows": 2, "maxlength": 300})
    phone = StringField(_l("Phone"), render_kw={"maxlength": 50})
    email = StringField(_l("E-mail"), render_kw={"maxlength": 254, "type": "email"})
    tax_id = StringField(_l("Tax ID"), render_kw={"maxlength": 64})
    home_province = StringField(_l("Home province or city"), render_kw={"maxlength": 64, "placeholder": "重庆市"})
    order_prefix = StringField(_l("Order number prefix"), render_kw={"maxlength": 16, "required": True})


def _render(
    form: CompanyForm,
    weekend: set[str],
    general: list[str] | None = None,
    weekend_errors: list[str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session = db()
    company = current_company(session)
    locked = orders_exist(session, company)
    if locked:
        form.order_prefix.render_kw = {**(form.order_prefix.render_kw or {}), "readonly": True}
    return (
        render_template(
            "company/form.html",
            company=company,
            form=form,
            weekend=weekend,
            weekdays=[(code, format_date(dt.date(2024, 1, 1 + i), "EEEE")) for i, code in enumerate(WEEKDAYS)],
            prefix_locked=locked,
            general=general or [],
            weekend_errors=weekend_errors or [],
            field_errors_shown=bool(weekend_errors) or any(f.errors for f in form if f.name != "csrf_token"),
            max_logo_kb=MAX_LOGO_BYTES // 1024,
        ),
        status,
    )


def _weekend_codes(text: str) -> set[str]:
    return {WEEKDAYS[d] for d in parse_weekend(text)}


@bp.route("", methods=["GET", "POST"])
@permission_required("settings.manage")
def company_page() -> Any:
    """Show and change the company record; the working week changes the working calendar at once."""
    session = db()
    company = current_company(session)
    if request.method == "GET":
        return _render(CompanyForm(obj=company), _weekend_codes(company.weekend_days))
    form = CompanyForm()
    weekend = {code for code in request.form.getlist("weekend_days") if code in WEEKDAYS}
    values: dict[str, Any] = {name: (getattr(form, name).data or "") for name in TEXT_FIELDS}
    values["weekend_days"] = sorted(weekend, key=WEEKDAYS.index)
    if orders_exist(session, company):
        values.pop("order_prefix")  # shown read-only; a changed value is refused by the service anyway
    try:
        update_company(session, current_actor(), **values)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        general: list[str] = []
        weekend_errors: list[str] = []
        problems = getattr(exc, "problems", [])
        for problem in problems:
            if problem.field == "weekend_days":
                weekend_errors.append(problem_text(problem))
            elif problem.field in form:
                form[problem.field].errors = [*form[problem.field].errors, problem_text(problem)]
            else:
                general.append(problem_text(problem))
        if not problems:
            general = problem_messages(exc)
        return _render(form, weekend, general, weekend_errors, 422)
    flash(_("The company record was saved."), "success")
    return redirect(url_for(".company_page"))


@bp.post("/logo")
@permission_required("settings.manage")
def upload_logo() -> Any:
    """Upload the letterhead logo (PNG or JPEG, judged by content, at most 1 MB)."""
    session = db()
    company = current_company(session)
    upload = request.files.get("logo")
    if upload is None or not upload.filename:
        flash(_("Choose a PNG or JPEG file to upload."), "danger")
        return redirect(url_for(".company_page"))
    data = upload.read(MAX_LOGO_BYTES + 1)
    try:
        set_logo(session, current_actor(), data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        for message in problem_messages(exc):
            flash(message, "danger")
        return _render(CompanyForm(obj=company), _weekend_codes(company.weekend_days), status=exc.status)
    flash(_("The logo was saved; documents print it from now on."), "success")
    return redirect(url_for(".company_page"))


@bp.post("/logo/remove")
@permission_required("settings.manage")
def delete_logo() -> Response:
    """Take the logo off the letterhead."""
    session = db()
    remove_logo(session, current_actor())
    session.commit()
    flash(_("The logo was removed from the letterhead."), "success")
    return redirect(url_for(".company_page"))


@bp.get("/logo")
@permission_required("settings.manage")
def logo() -> Response:
    """The stored logo, for the preview on this screen (404 when there is none)."""
    found = company_logo(db())
    if found is None:
        raise NotFound()
    data, mime = found
    response = Response(data, mimetype=mime)
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(current_company(db()).logo_sha256)
    return response.make_conditional(request)

"""Customer screens: list, page, create and edit with contacts and addresses, deactivate.

Thin views over :mod:`core.services.parties`; the customer schema validates the form
the way it validates the API's input.
"""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, TextAreaField

from core.models import Branch, Customer, User
from core.services import ServiceError
from core.services.orders import OrderFilters, list_orders
from core.services.parties import (
    DEFAULT_CUSTOMER_LANGUAGE,
    create_customer,
    customers_query,
    get_customer,
    set_customer_active,
    update_customer,
)
from core.views.common import (
    FieldErrors,
    abort_for,
    attach_errors,
    current_actor,
    field_errors,
    paginate,
    permission_required,
    query_args,
    screen_blueprint,
    select_choices,
)
from core.web import db

bp = screen_blueprint("customers", __name__, url_prefix="/customers")

CONTACT_FIELDS = ("name", "phone", "email", "role")
ADDRESS_FIELDS = ("label", "province", "city", "district", "region", "address", "postcode")
#: The languages a customer is written to in, each named in its own language.
LANGUAGE_CHOICES = (("zh_CN", "中文"), ("en", "English"))


class CustomerForm(FlaskForm):
    """The customer's own fields; contacts and addresses are repeated rows."""

    code = StringField(_l("Code"), render_kw={"maxlength": 32, "required": True, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"maxlength": 200, "required": True})
    tax_id = StringField(_l("Tax ID"), render_kw={"maxlength": 64})
    branch = SelectField(_l("Branch"), validate_choice=False)
    language = SelectField(
        _l("Language"),
        choices=select_choices(LANGUAGE_CHOICES),
        default=DEFAULT_CUSTOMER_LANGUAGE,
        validate_choice=False,
    )
    note = TextAreaField(_l("Note"), render_kw={"rows": 2, "maxlength": 2000})


def read_rows(form_data: Any, group: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows posted as ``<group>-<n>-<field>``, in row order, blank rows dropped."""
    pattern = re.compile(rf"^{group}-(\d+)-(\w+)$")
    rows: dict[int, dict[str, str]] = {}
    for key, value in form_data.items(multi=True):
        match = pattern.match(key)
        if match and match.group(2) in names:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    return [{n: rows[i].get(n, "") for n in names} for i in sorted(rows) if any(rows[i].values())]


def customer_input(
    form: CustomerForm, contacts: list[dict[str, str]], addresses: list[dict[str, str]]
) -> dict[str, Any]:
    """The form's values in the API's JSON shape (blank e-mail left out: it is optional)."""
    return {
        "code": (form.code.data or "").strip(),
        "name": (form.name.data or "").strip(),
        "tax_id": (form.tax_id.data or "").strip(),
        "note": (form.note.data or "").strip(),
        "branch": form.branch.data or None,
        "language": form.language.data or DEFAULT_CUSTOMER_LANGUAGE,
        "contacts": [{k: v for k, v in c.items() if v or k != "email"} for c in contacts],
        "addresses": [dict(a) for a in addresses],
    }


def _setup(form: CustomerForm, session: Session) -> None:
    branches = session.scalars(select(Branch).order_by(Branch.code))
    form.branch.choices = select_choices([("", _("— none —")), *((b.code, f"{b.code} · {b.name}") for b in branches)])


def _render_form(
    form: CustomerForm,
    contacts: list[dict[str, str]],
    addresses: list[dict[str, str]],
    errors: FieldErrors,
    customer: Customer | None,
    status: int = 200,
) -> tuple[str, int]:
    return (
        render_template(
            "customers/form.html",
            form=form,
            contacts=contacts or [dict.fromkeys(CONTACT_FIELDS, "")],
            addresses=addresses or [dict.fromkeys(ADDRESS_FIELDS, "")],
            errors=errors,
            customer=customer,
        ),
        status,
    )


def _get(customer_id: int) -> Customer:
    try:
        return get_customer(db(), current_actor(), customer_id)
    except ServiceError as exc:
        abort_for(exc)
        raise NotFound() from exc


_SORTS = {"code": Customer.code, "name": Customer.name, "created": Customer.created_at}


@bp.get("")
@permission_required("customers.read")
def list_customers() -> str:
    """Customers, searchable by code or name; deactivated ones on request."""
    session, actor = db(), current_actor()
    inactive = request.args.get("inactive") == "1"
    stmt = customers_query(actor, request.args.get("q"), include_inactive=inactive).options(
        selectinload(Customer.contacts), selectinload(Customer.addresses)
    )
    page = paginate(
        session,
        stmt,
        sortable=_SORTS,
        default_sort="code",
        endpoint="customers.list_customers",
        args=query_args("q", "inactive"),
        tie_breaker=Customer.id,
    )
    branches = dict(session.execute(select(Branch.id, Branch.name)).tuples().all())
    return render_template("customers/list.html", page=page, inactive=inactive, branches=branches)


@bp.get("/<int:customer_id>")
@permission_required("customers.read")
def view_customer(customer_id: int) -> str:
    """A customer's page: details, contacts, addresses and its latest orders in the user's scope."""
    session, actor = db(), current_actor()
    customer = _get(customer_id)
    orders, _cursor = list_orders(session, actor, OrderFilters(customer=customer.id), limit=10)
    branch = session.get(Branch, customer.branch_id) if customer.branch_id else None
    owner = session.get(User, customer.owner_id) if customer.owner_id else None
    return render_template("customers/view.html", customer=customer, orders=orders, branch=branch, owner=owner)


@bp.route("/new", methods=["GET", "POST"])
@permission_required("customers.manage")
def new_customer() -> Any:
    """Create a customer with its contacts and addresses."""
    session, actor = db(), current_actor()
    form = CustomerForm()
    _setup(form, session)
    if request.method == "GET":
        return _render_form(form, [], [], FieldErrors(), None)
    contacts = read_rows(request.form, "contacts", CONTACT_FIELDS)
    addresses = read_rows(request.form, "addresses", ADDRESS_FIELDS)
    try:
        customer = create_customer(session, actor, customer_input(form, contacts, addresses))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details, groups=("contacts", "addresses"))
        attach_errors(form, errors)
        return _render_form(form, contacts, addresses, errors, None, 422)
    flash(_("Customer %(code)s was created.", code=customer.code), "success")
    return redirect(url_for(".view_customer", customer_id=customer.id))


@bp.route("/<int:customer_id>/edit", methods=["GET", "POST"])
@permission_required("customers.manage")
def edit_customer(customer_id: int) -> Any:
    """Change a customer; the contacts and addresses on the form replace the stored ones."""
    session, actor = db(), current_actor()
    customer = _get(customer_id)
    form = CustomerForm(obj=customer if request.method == "GET" else None)
    _setup(form, session)
    if request.method == "GET":
        branch = session.get(Branch, customer.branch_id) if customer.branch_id else None
        form.branch.data = branch.code if branch else ""
        contacts = [{n: getattr(c, n) or "" for n in CONTACT_FIELDS} for c in customer.contacts]
        addresses = [{n: getattr(a, n) or "" for n in ADDRESS_FIELDS} for a in customer.addresses]
        return _render_form(form, contacts, addresses, FieldErrors(), customer)
    contacts = read_rows(request.form, "contacts", CONTACT_FIELDS)
    addresses = read_rows(request.form, "addresses", ADDRESS_FIELDS)
    try:
        update_customer(session, actor, customer, customer_input(form, contacts, addresses))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details, groups=("contacts", "addresses"))
        attach_errors(form, errors)
        return _render_form(form, contacts, addresses, errors, customer, 422)
    flash(_("Customer %(code)s was saved.", code=customer.code), "success")
    return redirect(url_for(".view_customer", customer_id=customer.id))


@bp.post("/<int:customer_id>/active")
@permission_required("customers.manage")
def set_active(customer_id: int) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) a customer."""
    session, actor = db(), current_actor()
    customer = _get(customer_id)
    active = request.form.get("active") == "1"
    set_customer_active(session, actor, customer, active)
    session.commit()
    if active:
        flash(_("Customer %(code)s is active again.", code=customer.code), "success")
    else:
        flash(_("Customer %(code)s was deactivated; it takes no new orders.", code=customer.code), "success")
    return redirect(url_for(".view_customer", customer_id=customer.id))

"""Intake's screens for prices: price lists, customer groups, customers' groups, the price check.

Thin views: parse the form, call :mod:`plugins.intake.pricing`, render or redirect.
``permission_required`` refuses users without the permission (403); seeing needs
``intake.prices.read``, changing ``intake.prices.manage``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.clock import COMPANY_TIMEZONE
from core.models import Customer, Product
from core.services import ServiceError
from core.views.common import (
    FieldErrors,
    abort_for,
    current_actor,
    field_errors,
    permission_required,
    plain_number,
    screen_blueprint,
)
from core.web import db
from plugins.intake import pricing
from plugins.intake.models import IntakeCustomerGroup, IntakeCustomerProfile, IntakePriceList

bp = screen_blueprint("intake", __name__, url_prefix="/intake", template_folder="templates")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"plain_quantity": plain_number}


_ROW = re.compile(r"^items-(\d+)-(product|min_quantity|unit_price)$")


def _choices() -> dict[str, Any]:
    session = db()
    groups = list(session.scalars(select(IntakeCustomerGroup).order_by(IntakeCustomerGroup.code)))
    customers = list(session.scalars(select(Customer).order_by(Customer.code)))
    products = list(session.scalars(select(Product).order_by(Product.sku)))
    return {
        "groups": groups,
        "customers": customers,
        "products": [p for p in products if p.active],
        "group_by_id": {g.id: g for g in groups},
        "customer_by_id": {c.id: c for c in customers},
        "product_by_id": {p.id: p for p in products},
    }


def _item_rows() -> list[dict[str, str]]:
    """The item rows of the posted form, in order, leaving out rows left entirely blank."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in request.form.items():
        match = _ROW.match(key)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    return [row for _index, row in sorted(rows.items()) if any(row.values())]


def _price_list_form() -> dict[str, Any]:
    form = request.form
    return {
        "code": form.get("code", ""),
        "name": form.get("name", ""),
        "currency": form.get("currency", ""),
        "customer_group_id": form.get("customer_group_id", ""),
        "customer_id": form.get("customer_id", ""),
        "contract_number": form.get("contract_number", ""),
        "valid_from": form.get("valid_from", ""),
        "valid_to": form.get("valid_to", ""),
        "active": "active" in form,
        "items": _item_rows(),
    }


@bp.get("/price-lists")
@permission_required("intake.prices.read")
def list_price_lists() -> str:
    """Every price list: whose it is, currency, validity, number of items."""
    session = db()
    return render_template("intake/price_lists.html", lists=pricing.price_lists(session, current_actor()), **_choices())


@bp.get("/price-lists/<int:price_list_id>")
@permission_required("intake.prices.read")
def view_price_list(price_list_id: int) -> str:
    """One price list with its items (tiers)."""
    try:
        price_list = pricing.get_price_list(db(), current_actor(), price_list_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    return render_template("intake/price_list.html", price_list=price_list, **_choices())


def _price_list_editor(price_list: IntakePriceList | None) -> str | Response:
    session, user = db(), current_actor()
    errors = FieldErrors()
    if request.method == "POST":
        values = _price_list_form()
        try:
            if price_list is None:
                price_list = pricing.create_price_list(session, user, values)
                message = _("Price list %(code)s created.", code=price_list.code)
            else:
                pricing.update_price_list(session, user, price_list, values)
                message = _("Price list %(code)s saved.", code=price_list.code)
        except ServiceError as exc:
            session.rollback()
            abort_for(exc)
            errors = field_errors(exc.details, groups=("items",))
        else:
            session.commit()
            flash(message, "success")
            return redirect(url_for("intake.view_price_list", price_list_id=price_list.id))
        rows = values["items"]
    else:
        values = {
            "code": price_list.code if price_list else "",
            "name": price_list.name if price_list else "",
            "currency": price_list.currency if price_list else "CNY",
            "customer_group_id": str(price_list.customer_group_id or "") if price_list else "",
            "customer_id": str(price_list.customer_id or "") if price_list else "",
            "contract_number": price_list.contract_number if price_list else "",
            "valid_from": price_list.valid_from.isoformat() if price_list and price_list.valid_from else "",
            "valid_to": price_list.valid_to.isoformat() if price_list and price_list.valid_to else "",
            "active": price_list.active if price_list else True,
        }
        skus = {p.id: p.sku for p in session.scalars(select(Product))}
        rows = [
            {
                "product": skus.get(i.product_id, ""),
                "min_quantity": plain_number(i.min_quantity),
                "unit_price": plain_number(i.unit_price),
            }
            for i in (price_list.items if price_list else [])
        ]
    return render_template(
        "intake/price_list_form.html",
        price_list=price_list,
        values=values,
        rows=rows or [{}],
        errors=errors,
        **_choices(),
    )


@bp.route("/price-lists/new", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def new_price_list() -> str | Response:
    """Create a price list with its items."""
    return _price_list_editor(None)


@bp.route("/price-lists/<int:price_list_id>/edit", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def edit_price_list(price_list_id: int) -> str | Response:
    """Change a price list and its items."""
    try:
        price_list = pricing.get_price_list(db(), current_actor(), price_list_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    return _price_list_editor(price_list)


# --- customer groups ----------------------------------------------------------------------


@bp.get("/groups")
@permission_required("intake.prices.read")
def list_groups() -> str:
    """Customer groups and every customer with its group."""
    session = db()
    groups = pricing.customer_groups(session, current_actor())
    profiles = {p.customer_id: p for p in session.scalars(select(IntakeCustomerProfile))}
    customers = list(session.scalars(select(Customer).order_by(Customer.code)))
    return render_template(
        "intake/groups.html",
        groups=groups,
        customers=customers,
        profiles=profiles,
        group_names={g.id: g for g in groups},
    )


def _group_editor(group: IntakeCustomerGroup | None) -> str | Response:
    session, user = db(), current_actor()
    errors = FieldErrors()
    values = {"code": group.code if group else "", "name": group.name if group else ""}
    if request.method == "POST":
        values = {"code": request.form.get("code", ""), "name": request.form.get("name", "")}
        try:
            saved = pricing.save_customer_group(session, user, values, group)
        except ServiceError as exc:
            session.rollback()
            abort_for(exc)
            errors = field_errors(exc.details)
        else:
            session.commit()
            flash(_("Customer group %(code)s saved.", code=saved.code), "success")
            return redirect(url_for("intake.list_groups"))
    return render_template("intake/group_form.html", group=group, values=values, errors=errors)


@bp.route("/groups/new", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def new_group() -> str | Response:
    """Create a customer group."""
    return _group_editor(None)


@bp.route("/groups/<int:group_id>/edit", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def edit_group(group_id: int) -> str | Response:
    """Rename a customer group or change its code."""
    try:
        group = pricing.get_customer_group(db(), current_actor(), group_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    return _group_editor(group)


@bp.route("/customers/<int:customer_id>/profile", methods=["GET", "POST"])
@permission_required("intake.prices.manage")
def customer_profile(customer_id: int) -> str | Response:
    """Set the customer's group (its group's price lists then apply to it)."""
    session, user = db(), current_actor()
    customer = session.get(Customer, customer_id)
    if customer is None:
        abort_for(ServiceError("not_found", "no such customer", status=404))
    assert customer is not None
    profile = pricing.profile_of(session, customer_id)
    errors = FieldErrors()
    group_id = str(profile.group_id or "") if profile else ""
    if request.method == "POST":
        group_id = request.form.get("group_id", "")
        try:
            pricing.set_customer_group(session, user, customer_id, group_id)
        except ServiceError as exc:
            session.rollback()
            abort_for(exc)
            errors = field_errors(exc.details)
        else:
            session.commit()
            flash(_("Customer %(code)s saved.", code=customer.code), "success")
            return redirect(url_for("intake.list_groups"))
    groups = list(session.scalars(select(IntakeCustomerGroup).order_by(IntakeCustomerGroup.code)))
    return render_template(
        "intake/profile_form.html", customer=customer, group_id=group_id, groups=groups, errors=errors
    )


# --- price check ----------------------------------------------------------------------------


@bp.get("/price-check")
@permission_required("intake.prices.read")
def price_check() -> str:
    """Which price applies to a customer, product, quantity and day, and where it comes from."""
    session = db()
    args = request.args
    today = dt.datetime.now(COMPANY_TIMEZONE).date()
    values = {
        "customer": args.get("customer", "").strip(),
        "product": args.get("product", "").strip(),
        "quantity": args.get("quantity", "1").strip() or "1",
        "date": args.get("date", "").strip() or today.isoformat(),
        "currency": args.get("currency", "").strip().upper(),
    }
    result, problems, asked = None, [], bool(values["customer"] and values["product"])
    if asked:
        customer = session.scalar(select(Customer).where(Customer.code == values["customer"]))
        product = session.scalar(select(Product).where(Product.sku == values["product"]))
        if customer is None:
            problems.append(_("Unknown customer %(code)s.", code=values["customer"]))
        if product is None:
            problems.append(_("Unknown product %(sku)s.", sku=values["product"]))
        try:
            quantity = Decimal(values["quantity"])
            if not quantity.is_finite() or quantity <= 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(_("The quantity must be a number greater than 0."))
        try:
            on = dt.date.fromisoformat(values["date"])
        except ValueError:
            problems.append(_("The date must read YYYY-MM-DD."))
        if not problems and customer is not None and product is not None:
            result = pricing.applicable_price(
                session, customer.id, product.id, quantity, on, values["currency"] or None
            )
    return render_template(
        "intake/price_check.html", values=values, result=result, problems=problems, asked=asked, **_choices()
    )

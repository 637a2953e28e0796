"""Product screens: the catalogue list, a product's page, create, edit, deactivate.

Thin views over :mod:`core.services.parties`; the product schema validates the form
the way it validates the API's input (prices are decimals, never floats).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField, TextAreaField

from core.models import Product
from core.services import ServiceError
from core.services.parties import create_product, get_product, products_query, set_product_active, update_product
from core.views.common import (
    FieldErrors,
    abort_for,
    attach_errors,
    current_actor,
    field_errors,
    paginate,
    permission_required,
    plain_number,
    query_args,
    screen_blueprint,
)
from core.web import db

bp = screen_blueprint("products", __name__, url_prefix="/products")


class ProductForm(FlaskForm):
    """A product's fields; prices stay text until the schema parses them as decimals."""

    sku = StringField(_l("SKU"), render_kw={"maxlength": 64, "required": True, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"maxlength": 200, "required": True})
    spec = TextAreaField(_l("Model / specification"), render_kw={"rows": 2, "maxlength": 500})
    unit = StringField(_l("Unit"), render_kw={"maxlength": 16, "required": True})
    category = StringField(_l("Category"), render_kw={"maxlength": 64})
    list_price = StringField(_l("List price"), render_kw={"inputmode": "decimal", "required": True})
    tax_rate = StringField(_l("Tax rate (%)"), default="13", render_kw={"inputmode": "decimal", "required": True})
    regular = BooleanField(_l("Regular product (shipped before, complete technical documents)"), default=True)


def product_input(form: ProductForm) -> dict[str, Any]:
    """The form's values in the API's JSON shape; a blank price is a missing price."""
    data: dict[str, Any] = {
        name: (form[name].data or "").strip() for name in ("sku", "name", "spec", "unit", "category")
    }
    for name in ("list_price", "tax_rate"):
        data[name] = (form[name].data or "").strip() or None
    data["regular"] = bool(form.regular.data)
    return data


def _get(product_id: int) -> Product:
    try:
        return get_product(db(), current_actor(), product_id)
    except ServiceError as exc:
        abort_for(exc)
        raise NotFound() from exc


_SORTS = {
    "sku": Product.sku,
    "name": Product.name,
    "category": Product.category,
    "price": Product.list_price,
}


@bp.get("")
@permission_required("products.read")
def list_products() -> str:
    """The catalogue, searchable by SKU, name or specification; deactivated ones on request."""
    inactive = request.args.get("inactive") == "1"
    stmt = products_query(current_actor(), request.args.get("q"), include_inactive=inactive)
    page = paginate(
        db(),
        stmt,
        sortable=_SORTS,
        default_sort="sku",
        endpoint="products.list_products",
        args=query_args("q", "inactive"),
        tie_breaker=Product.id,
    )
    return render_template("products/list.html", page=page, inactive=inactive)


@bp.get("/<int:product_id>")
@permission_required("products.read")
def view_product(product_id: int) -> str:
    """A product's page."""
    return render_template("products/view.html", product=_get(product_id))


def _render_form(form: ProductForm, product: Product | None, errors: FieldErrors, status: int = 200) -> tuple[str, int]:
    return render_template("products/form.html", form=form, product=product, errors=errors), status


@bp.route("/new", methods=["GET", "POST"])
@permission_required("products.manage")
def new_product() -> Any:
    """Add a product to the catalogue."""
    session = db()
    form = ProductForm()
    if request.method == "GET":
        return _render_form(form, None, FieldErrors())
    try:
        product = create_product(session, current_actor(), product_input(form))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details)
        attach_errors(form, errors)
        return _render_form(form, None, errors, 422)
    flash(_("Product %(sku)s was created.", sku=product.sku), "success")
    return redirect(url_for(".view_product", product_id=product.id))


@bp.route("/<int:product_id>/edit", methods=["GET", "POST"])
@permission_required("products.manage")
def edit_product(product_id: int) -> Any:
    """Change a product; orders already taken keep their prices."""
    session = db()
    product = _get(product_id)
    form = ProductForm(obj=product if request.method == "GET" else None)
    if request.method == "GET":
        form.list_price.data = plain_number(product.list_price, 2)
        form.tax_rate.data = plain_number(product.tax_rate)
        return _render_form(form, product, FieldErrors())
    try:
        update_product(session, current_actor(), product, product_input(form))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details)
        attach_errors(form, errors)
        return _render_form(form, product, errors, 422)
    flash(_("Product %(sku)s was saved.", sku=product.sku), "success")
    return redirect(url_for(".view_product", product_id=product.id))


@bp.post("/<int:product_id>/active")
@permission_required("products.manage")
def set_active(product_id: int) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) a product."""
    session = db()
    product = _get(product_id)
    active = request.form.get("active") == "1"
    set_product_active(session, current_actor(), product, active)
    session.commit()
    if active:
        flash(_("Product %(sku)s is active again.", sku=product.sku), "success")
    else:
        flash(_("Product %(sku)s was deactivated; it can no longer be ordered.", sku=product.sku), "success")
    return redirect(url_for(".view_product", product_id=product.id))

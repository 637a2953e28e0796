"""Warehouse screens (LG-2): warehouses and their locations, and products' logistics facts.

* ``/logistics/warehouses`` — the warehouses with their stock and locations; a
  warehouse's page lists its locations in walking order (blocked QC areas marked).
* ``/logistics/warehouses/new``, ``/<id>/edit``, ``/<id>/locations/new``,
  ``/locations/<id>/edit`` — forms; need ``logistics.stock.manage``.
* ``/logistics/product-facts`` — unit weight, unit volume and reorder level per
  product (read: ``logistics.stock.read``; change: ``logistics.stock.manage``).

Thin views over :mod:`plugins.logistics.warehouses`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, or_, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import Optional

from core.contrib import MenuItem
from core.labels import N_
from core.models import Branch, Product
from core.views.common import abort_for, current_actor, paginate, permission_required, plain_number, query_args
from core.web import db
from plugins.logistics import flow, warehouses
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsLocation, LogisticsProduct, LogisticsStock, LogisticsWarehouse
from plugins.logistics.stock import q3
from plugins.logistics.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Warehouses"), "logistics.warehouse_list", flow.STOCK_READ, order=64, icon="building", plugin="logistics"
    ),
)


class WarehouseForm(FlaskForm):
    """A warehouse's fields: code, name, ship-from address, contact, branch, default, in use."""

    code = StringField(_l("Code"), render_kw={"required": True, "maxlength": 32, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"required": True, "maxlength": 200})
    province = StringField(_l("Province"), render_kw={"maxlength": 64})
    city = StringField(_l("City"), render_kw={"maxlength": 64})
    address = StringField(_l("Address"), render_kw={"maxlength": 300})
    contact = StringField(_l("Contact"), render_kw={"maxlength": 100})
    phone = StringField(_l("Phone"), render_kw={"maxlength": 50})
    branch_id = SelectField(_l("Branch"), choices=[], validate_choice=False)
    is_default = BooleanField(_l("Default warehouse (orders reserve from it)"))
    active = BooleanField(_l("In use"), default=True)


class LocationForm(FlaskForm):
    """A location's fields: code, name, walking order, blocked (not sellable), in use."""

    code = StringField(_l("Code"), render_kw={"required": True, "maxlength": 32, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"maxlength": 100})
    sequence = IntegerField(_l("Walking order"), validators=[Optional()])
    blocked = BooleanField(_l("Blocked: goods here are not sellable (QC, rework, downgrade, scrap)"))
    active = BooleanField(_l("In use"), default=True)


def _warehouse(warehouse_id: int) -> LogisticsWarehouse:
    warehouse = db().get(LogisticsWarehouse, warehouse_id)
    if warehouse is None:
        raise NotFound()
    return warehouse


def _refused(exc: LogisticsError, form: FlaskForm) -> None:
    abort_for(exc)
    message = exc.localized()
    if isinstance(exc.details, dict):
        for name in exc.details:
            if name in form:
                form[name].errors = [message]
                return
    flash(message, "danger")


def _form_data(form: FlaskForm) -> dict[str, Any]:
    return {name: field.data for name, field in form._fields.items() if name != "csrf_token"}


# --- warehouses ----------------------------------------------------------------------------


@bp.get("/warehouses")
@permission_required(flow.STOCK_READ)
def warehouse_list() -> str:
    """Every warehouse with its number of locations and units on hand."""
    session = db()
    rows = list(session.scalars(select(LogisticsWarehouse).order_by(LogisticsWarehouse.code)))
    on_hand = dict(
        session.execute(
            select(LogisticsStock.warehouse_id, func.sum(LogisticsStock.on_hand)).group_by(LogisticsStock.warehouse_id)
        )
        .tuples()
        .all()
    )
    return render_template(
        "logistics/warehouse_list.html",
        warehouses=rows,
        on_hand={k: q3(v) for k, v in on_hand.items()},
        can_manage=current_actor().can(flow.STOCK_MANAGE),
    )


@bp.get("/warehouses/<int:warehouse_id>")
@permission_required(flow.STOCK_READ)
def warehouse_view(warehouse_id: int) -> str:
    """A warehouse and its locations in walking order, with the units on hand at each."""
    session = db()
    warehouse = _warehouse(warehouse_id)
    locations = list(
        session.scalars(
            select(LogisticsLocation)
            .where(LogisticsLocation.warehouse_id == warehouse.id)
            .order_by(LogisticsLocation.sequence, LogisticsLocation.code)
        )
    )
    totals = dict(
        session.execute(
            select(LogisticsStock.location_id, func.sum(LogisticsStock.on_hand))
            .where(LogisticsStock.warehouse_id == warehouse.id)
            .group_by(LogisticsStock.location_id)
        )
        .tuples()
        .all()
    )
    branch = session.get(Branch, warehouse.branch_id) if warehouse.branch_id else None
    return render_template(
        "logistics/warehouse_view.html",
        warehouse=warehouse,
        branch=branch,
        locations=locations,
        on_hand={k: q3(v) for k, v in totals.items()},
        can_manage=current_actor().can(flow.STOCK_MANAGE),
    )


def _branch_choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(str(b.id), f"{b.code} {b.name}") for b in db().scalars(select(Branch).order_by(Branch.code))]


def _render_warehouse_form(form: WarehouseForm, warehouse: LogisticsWarehouse | None, status: int = 200) -> Any:
    return render_template("logistics/warehouse_form.html", form=form, warehouse=warehouse), status


@bp.route("/warehouses/new", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def warehouse_new() -> Any:
    """Add a warehouse."""
    session = db()
    form = WarehouseForm()
    form.branch_id.choices = _branch_choices()
    if request.method == "GET":
        return _render_warehouse_form(form, None)
    try:
        warehouse = warehouses.create_warehouse(session, current_actor(), _form_data(form))
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_warehouse_form(form, None, exc.status)
    flash(_("Warehouse %(code)s was created.", code=warehouse.code), "success")
    return redirect(url_for("logistics.warehouse_view", warehouse_id=warehouse.id))


@bp.route("/warehouses/<int:warehouse_id>/edit", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def warehouse_edit(warehouse_id: int) -> Any:
    """Change a warehouse (one holding stock stays in use)."""
    session = db()
    warehouse = _warehouse(warehouse_id)
    form = WarehouseForm(obj=warehouse if request.method == "GET" else None)
    form.branch_id.choices = _branch_choices()
    if request.method == "GET":
        form.branch_id.data = str(warehouse.branch_id or "")
        return _render_warehouse_form(form, warehouse)
    try:
        warehouses.update_warehouse(session, current_actor(), warehouse.id, _form_data(form))
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_warehouse_form(form, _warehouse(warehouse_id), exc.status)
    flash(_("Warehouse %(code)s was saved.", code=warehouse.code), "success")
    return redirect(url_for("logistics.warehouse_view", warehouse_id=warehouse.id))


# --- locations -------------------------------------------------------------------------------


def _render_location_form(
    form: LocationForm, warehouse: LogisticsWarehouse, location: LogisticsLocation | None, status: int = 200
) -> Any:
    return render_template("logistics/location_form.html", form=form, warehouse=warehouse, location=location), status


def _location_data(form: LocationForm) -> dict[str, Any]:
    data = _form_data(form)
    data["sequence"] = request.form.get("sequence", "")
    return data


@bp.route("/warehouses/<int:warehouse_id>/locations/new", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def location_new(warehouse_id: int) -> Any:
    """Add a location to a warehouse."""
    session = db()
    warehouse = _warehouse(warehouse_id)
    form = LocationForm()
    if request.method == "GET":
        return _render_location_form(form, warehouse, None)
    try:
        location = warehouses.create_location(session, current_actor(), warehouse.id, _location_data(form))
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_location_form(form, _warehouse(warehouse_id), None, exc.status)
    flash(_("Location %(code)s was created.", code=location.code), "success")
    return redirect(url_for("logistics.warehouse_view", warehouse_id=warehouse.id))


@bp.route("/locations/<int:location_id>/edit", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def location_edit(location_id: int) -> Any:
    """Change a location (blocking one with reserved units, or retiring one with stock, is refused)."""
    session = db()
    location = session.get(LogisticsLocation, location_id)
    if location is None:
        raise NotFound()
    warehouse = location.warehouse
    form = LocationForm(obj=location if request.method == "GET" else None)
    if request.method == "GET":
        return _render_location_form(form, warehouse, location)
    try:
        warehouses.update_location(session, current_actor(), location.id, _location_data(form))
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        location = session.get(LogisticsLocation, location_id)
        assert location is not None
        return _render_location_form(form, location.warehouse, location, exc.status)
    flash(_("Location %(code)s was saved.", code=location.code), "success")
    return redirect(url_for("logistics.warehouse_view", warehouse_id=warehouse.id))


# --- products' logistics facts ---------------------------------------------------------------


@bp.get("/product-facts")
@permission_required(flow.STOCK_READ)
def product_facts() -> str:
    """Products with their unit weight, unit volume and reorder level; editable in place."""
    session = db()
    args = query_args("q")
    stmt = select(Product).where(Product.active.is_(True))
    if args.get("q"):
        like = f"%{args['q']}%"
        stmt = stmt.where(or_(Product.sku.ilike(like), Product.name.ilike(like)))
    page = paginate(
        session,
        stmt,
        sortable={"sku": Product.sku, "name": Product.name},
        default_sort="sku",
        endpoint="logistics.product_facts",
        args=args,
        tie_breaker=Product.id,
    )
    facts = {
        f.product_id: f
        for f in session.scalars(
            select(LogisticsProduct).where(LogisticsProduct.product_id.in_([p.id for p in page.rows]))
        )
    }
    return render_template(
        "logistics/warehouse_product_facts.html",
        page=page,
        facts=facts,
        search=args.get("q", ""),
        plain=plain_number,
        can_manage=current_actor().can(flow.STOCK_MANAGE),
    )


@bp.post("/product-facts/<int:product_id>")
@permission_required(flow.STOCK_MANAGE)
def product_facts_save(product_id: int) -> Response:
    """Save one product's unit weight, unit volume and reorder level (each ≥ 0)."""
    session = db()
    form = request.form
    back = url_for("logistics.product_facts", q=form.get("q") or None, page=form.get("page") or None)
    try:
        warehouses.set_product_facts(
            session,
            current_actor(),
            product_id,
            form.get("unit_weight"),
            form.get("unit_volume"),
            form.get("reorder_level"),
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        abort_for(exc)
        flash(exc.localized(), "danger")
        return redirect(back)
    product = session.get(Product, product_id)
    flash(_("The logistics facts of %(sku)s were saved.", sku=product.sku if product else product_id), "success")
    return redirect(back)

"""Stock screens (LG-2): stock on hand, the moves ledger, receipts, adjustments, transfers, replenishment.

* ``/logistics/stock`` — stock per product, warehouse and location (on hand, reserved,
  free), searchable by SKU or name, filtered by warehouse and location, exported as
  CSV or XLSX; needs ``logistics.stock.read``.
* ``/logistics/moves`` — the ledger of stock moves with each move's reference (order,
  shipment, count, return), filtered by product, kind, order and dates; exportable.
* ``/logistics/stock/receive``, ``/adjust``, ``/transfer`` — 入库, 库存调整 and 移库
  forms; need ``logistics.stock.manage``. A receipt serves waiting orders at once.
* ``/logistics/replenishment`` — what backorders need (``logistics.reports.read``) and
  a button reserving free stock for the waiting orders (``logistics.stock.manage``).

Thin views over :mod:`plugins.logistics.stock` and :mod:`plugins.logistics.replenishment`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField, TextAreaField

from core.clock import day_end, day_start
from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, Product
from core.security.scopes import order_scope
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args, select_choices
from core.views.export import FORMATS, export_response
from core.views.labels import translate
from core.web import db
from plugins.logistics import flow, replenishment, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    MOVE_KINDS,
    LogisticsCount,
    LogisticsLocation,
    LogisticsMove,
    LogisticsReturn,
    LogisticsShipment,
    LogisticsStock,
    LogisticsWarehouse,
)
from plugins.logistics.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(N_("Stock"), "logistics.stock_list", flow.STOCK_READ, order=60, icon="boxes", plugin="logistics"),
    MenuItem(
        N_("Replenishment"),
        "logistics.replenishment_list",
        flow.REPORTS_READ,
        order=63,
        icon="cart-plus",
        plugin="logistics",
    ),
)

_STOCK_FILTERS = ("q", "warehouse", "location", "empty")
_MOVE_FILTERS = ("q", "kind", "order", "warehouse", "date_from", "date_to")


# --- shared helpers ----------------------------------------------------------------------------


def location_choices(session: Session, *, include_blocked: bool = True) -> list[tuple[str, str]]:
    """(id, "WH1 · A-01") pairs of the active locations of active warehouses, in walking order."""
    stmt = (
        select(LogisticsLocation, LogisticsWarehouse)
        .join(LogisticsWarehouse, LogisticsWarehouse.id == LogisticsLocation.warehouse_id)
        .where(LogisticsLocation.active.is_(True), LogisticsWarehouse.active.is_(True))
        .order_by(LogisticsWarehouse.code, LogisticsLocation.sequence, LogisticsLocation.code)
    )
    out = []
    for location, warehouse in session.execute(stmt).tuples():
        if location.blocked and not include_blocked:
            continue
        label = f"{warehouse.code} · {location.code}"
        if location.blocked:
            label += " (" + _("blocked") + ")"
        out.append((str(location.id), label))
    return out


def warehouse_choices(session: Session) -> list[tuple[str, str]]:
    """(id, "WH1 重庆总仓") pairs of every warehouse."""
    return [
        (str(w.id), f"{w.code} {w.name}")
        for w in session.scalars(select(LogisticsWarehouse).order_by(LogisticsWarehouse.code))
    ]


def product_by_sku(session: Session, sku: str | None) -> Product | None:
    """The product with SKU ``sku`` (exact, then case-insensitive), or None."""
    text = (sku or "").strip()
    if not text:
        return None
    found = session.scalar(select(Product).where(Product.sku == text))
    return found or session.scalar(select(Product).where(Product.sku.ilike(text)))


def parse_quantity(text: str | None) -> Decimal | None:
    """A decimal from a form field, or None when blank or not a number."""
    try:
        value = Decimal((text or "").strip().replace(",", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() else None


def _link(endpoints: Iterable[str], **values: Any) -> str | None:
    """The URL of the first endpoint that exists (other helpers' screens), else None."""
    for endpoint in endpoints:
        try:
            return url_for(endpoint, **values)
        except BuildError:
            continue
    return None


def _refused(exc: LogisticsError, form: FlaskForm | None = None) -> None:
    """Flash a service's refusal; put it beside the field it names when the form has it."""
    abort_for(exc)
    message = exc.localized()
    if form is not None and isinstance(exc.details, dict):
        for name in exc.details:
            if name in form:
                form[name].errors = [message]
                return
    flash(message, "danger")


# --- stock list --------------------------------------------------------------------------------


def _stock_query() -> Select[tuple[LogisticsStock]]:
    args = request.args
    stmt = (
        select(LogisticsStock)
        .join(Product, Product.id == LogisticsStock.product_id)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .join(LogisticsWarehouse, LogisticsWarehouse.id == LogisticsStock.warehouse_id)
    )
    text = (args.get("q") or "").strip()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(or_(Product.sku.ilike(like), Product.name.ilike(like)))
    if (warehouse := _int(args.get("warehouse"))) is not None:
        stmt = stmt.where(LogisticsStock.warehouse_id == warehouse)
    location = (args.get("location") or "").strip()
    if location:
        stmt = stmt.where(LogisticsLocation.code.ilike(f"%{location}%"))
    if args.get("empty") != "1":
        stmt = stmt.where(or_(LogisticsStock.on_hand > stock.EPSILON, LogisticsStock.reserved > stock.EPSILON))
    return stmt


_STOCK_SORTS = {
    "sku": Product.sku,
    "location": LogisticsLocation.sequence,
    "warehouse": LogisticsWarehouse.code,
    "on_hand": LogisticsStock.on_hand,
    "reserved": LogisticsStock.reserved,
    "free": LogisticsStock.on_hand - LogisticsStock.reserved,
}


def _stock_lookups(session: Session, rows: Sequence[LogisticsStock]) -> dict[str, Any]:
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_({r.product_id for r in rows})))}
    locations = {
        loc.id: loc
        for loc in session.scalars(
            select(LogisticsLocation).where(LogisticsLocation.id.in_({r.location_id for r in rows}))
        )
    }
    warehouses = {w.id: w for w in session.scalars(select(LogisticsWarehouse))}
    return {"products": products, "locations": locations, "warehouses": warehouses}


@bp.get("/stock")
@permission_required(flow.STOCK_READ)
def stock_list() -> Any:
    """Stock per product and location: on hand, reserved and free; CSV/XLSX with ``?format=``."""
    session = db()
    fmt = request.args.get("format", "")
    if fmt in FORMATS:
        return _export_stock(session, fmt)
    page = paginate(
        session,
        _stock_query(),
        sortable=_STOCK_SORTS,
        default_sort="sku",
        endpoint="logistics.stock_list",
        args=query_args(*_STOCK_FILTERS),
        tie_breaker=LogisticsStock.id,
    )
    return render_template(
        "logistics/stock_list.html",
        page=page,
        filters=query_args(*_STOCK_FILTERS),
        warehouse_options=warehouse_choices(session),
        can_manage=current_actor().can(flow.STOCK_MANAGE),
        **_stock_lookups(session, page.rows),
    )


def _export_stock(session: Session, fmt: str) -> Response:
    rows = list(session.scalars(_stock_query().order_by(Product.sku, LogisticsLocation.sequence, LogisticsStock.id)))
    looked = _stock_lookups(session, rows)
    header = [
        _("SKU"),
        _("Product"),
        _("Unit"),
        _("Warehouse"),
        _("Location"),
        _("Blocked"),
        _("On hand"),
        _("Reserved"),
        _("Free"),
    ]
    data = []
    for row in rows:
        product = looked["products"][row.product_id]
        location = looked["locations"][row.location_id]
        data.append(
            [
                product.sku,
                product.name,
                product.unit,
                looked["warehouses"][row.warehouse_id].code,
                location.code,
                _("Yes") if location.blocked else _("No"),
                stock.q3(row.on_hand),
                stock.q3(row.reserved),
                stock.q3(row.on_hand - row.reserved),
            ]
        )
    return export_response(fmt, "stock", header, data)


# --- moves ledger ------------------------------------------------------------------------------


def _moves_query(session: Session) -> Select[tuple[LogisticsMove]]:
    args = request.args
    stmt = select(LogisticsMove).join(Product, Product.id == LogisticsMove.product_id)
    text = (args.get("q") or "").strip()
    if text:
        like = f"%{text}%"
        stmt = stmt.where(or_(Product.sku.ilike(like), Product.name.ilike(like)))
    if args.get("kind") in MOVE_KINDS:
        stmt = stmt.where(LogisticsMove.kind == args["kind"])
    number = (args.get("order") or "").strip()
    if number:
        in_scope = select(Order.id).where(Order.number.ilike(f"%{number}%"), order_scope(current_actor()))
        stmt = stmt.where(LogisticsMove.order_id.in_(in_scope))
    if (warehouse := _int(args.get("warehouse"))) is not None:
        stmt = stmt.where(LogisticsMove.warehouse_id == warehouse)
    if (start := _date(args.get("date_from"))) is not None:
        stmt = stmt.where(LogisticsMove.at >= day_start(start))
    if (finish := _date(args.get("date_to"))) is not None and (end := day_end(finish)) is not None:
        stmt = stmt.where(LogisticsMove.at < end)
    return stmt


def _move_lookups(session: Session, moves: Sequence[LogisticsMove]) -> dict[str, Any]:
    """What the moves refer to, by id; ``hidden``: the moves of orders outside the reader's scope."""

    def by_id(model: Any, ids: set[int | None]) -> dict[int, Any]:
        wanted = {i for i in ids if i is not None}
        return {x.id: x for x in session.scalars(select(model).where(model.id.in_(wanted)))} if wanted else {}

    hidden = stock.moves_outside_scope(session, current_actor(), moves)
    shown = [m for m in moves if m.id not in hidden]
    return {
        "products": by_id(Product, {m.product_id for m in moves}),
        "locations": by_id(LogisticsLocation, {m.location_id for m in moves}),
        "warehouses": by_id(LogisticsWarehouse, {m.warehouse_id for m in moves}),
        "orders": by_id(Order, {m.order_id for m in shown}),
        "shipments": by_id(LogisticsShipment, {m.shipment_id for m in shown}),
        "counts": by_id(LogisticsCount, {m.count_id for m in moves}),
        "returns": by_id(LogisticsReturn, {m.return_id for m in shown}),
        "hidden": hidden,
    }


def move_references(move: LogisticsMove, looked: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(text, url or None) of what a move refers to: order, shipment, count, return, free text.

    Nothing for a move of an order outside the reader's scope (``looked["hidden"]``).
    """
    refs: list[tuple[str, str | None]] = []
    if move.id in looked.get("hidden", ()):
        return refs
    if move.order_id and (order := looked["orders"].get(move.order_id)):
        refs.append((_("Order %(number)s", number=order.number), url_for("orders.view_order", order_id=order.id)))
    if move.shipment_id and (shipment := looked["shipments"].get(move.shipment_id)):
        url = _link(("logistics.shipment_view", "logistics.view_shipment"), shipment_id=shipment.id)
        refs.append((_("Shipment %(number)s", number=shipment.number), url))
    if move.count_id and (count := looked["counts"].get(move.count_id)):
        refs.append((_("Count %(number)s", number=count.number), url_for("logistics.count_view", count_id=count.id)))
    if move.return_id and (ret := looked["returns"].get(move.return_id)):
        url = _link(("logistics.return_view", "logistics.view_return"), return_id=ret.id)
        refs.append((_("Return %(number)s", number=ret.number), url))
    if move.reference and not any(move.reference in text for text, _url in refs):
        refs.append((move.reference, None))
    return refs


_MOVE_SORTS = {"at": LogisticsMove.at, "sku": Product.sku, "kind": LogisticsMove.kind}


@bp.get("/moves")
@permission_required(flow.STOCK_READ)
def stock_moves() -> Any:
    """The ledger of stock moves, newest first, with their references; CSV/XLSX with ``?format=``."""
    session = db()
    fmt = request.args.get("format", "")
    if fmt in FORMATS:
        return _export_moves(session, fmt)
    page = paginate(
        session,
        _moves_query(session),
        sortable=_MOVE_SORTS,
        default_sort="-at",
        endpoint="logistics.stock_moves",
        args=query_args(*_MOVE_FILTERS),
        tie_breaker=LogisticsMove.id,
    )
    looked = _move_lookups(session, page.rows)
    return render_template(
        "logistics/moves.html",
        page=page,
        filters=query_args(*_MOVE_FILTERS),
        kinds=[(k, translate(v)) for k, v in MOVE_KINDS.items()],
        kind_labels={k: translate(v) for k, v in MOVE_KINDS.items()},
        warehouse_options=warehouse_choices(session),
        references={m.id: move_references(m, looked) for m in page.rows},
        **looked,
    )


def _export_moves(session: Session, fmt: str) -> Response:
    moves = list(session.scalars(_moves_query(session).order_by(LogisticsMove.at.desc(), LogisticsMove.id.desc())))
    looked = _move_lookups(session, moves)
    header = [
        _("Time"),
        _("Kind"),
        _("SKU"),
        _("Product"),
        _("Warehouse"),
        _("Location"),
        _("Quantity"),
        _("Reference"),
        _("Note"),
    ]
    data = []
    for move in moves:
        product = looked["products"][move.product_id]
        data.append(
            [
                move.at.isoformat(timespec="seconds"),
                translate(MOVE_KINDS.get(move.kind, move.kind)),
                product.sku,
                product.name,
                looked["warehouses"][move.warehouse_id].code,
                looked["locations"][move.location_id].code,
                stock.q3(move.quantity),
                "; ".join(text for text, _url in move_references(move, looked)),
                move.note if move.id not in looked["hidden"] else "",
            ]
        )
    return export_response(fmt, "stock-moves", header, data)


# --- receipt, adjustment, transfer -------------------------------------------------------------


class ReceiptForm(FlaskForm):
    """入库: product, location, quantity, reference (delivery note, purchase order), note."""

    product = StringField(
        _l("Product (SKU)"), render_kw={"required": True, "list": "product-skus", "autocomplete": "off"}
    )
    location_id = SelectField(_l("Location"), choices=[], validate_choice=False)
    quantity = StringField(_l("Quantity"), render_kw={"required": True, "inputmode": "decimal"})
    reference = StringField(_l("Reference (delivery note, purchase order)"), render_kw={"maxlength": 100})
    note = TextAreaField(_l("Note"), render_kw={"rows": 2, "maxlength": 500})


class AdjustForm(FlaskForm):
    """库存调整: product, location, quantity (+ or −), reason (required)."""

    product = StringField(
        _l("Product (SKU)"), render_kw={"required": True, "list": "product-skus", "autocomplete": "off"}
    )
    location_id = SelectField(_l("Location"), choices=[], validate_choice=False)
    quantity = StringField(_l("Quantity (+ adds, − removes)"), render_kw={"required": True, "inputmode": "decimal"})
    reason = TextAreaField(_l("Reason"), render_kw={"rows": 2, "maxlength": 500, "required": True})


class TransferForm(FlaskForm):
    """移库: product, from and to location, quantity, note."""

    product = StringField(
        _l("Product (SKU)"), render_kw={"required": True, "list": "product-skus", "autocomplete": "off"}
    )
    location_id = SelectField(_l("From location"), choices=[], validate_choice=False)
    to_location_id = SelectField(_l("To location"), choices=[], validate_choice=False)
    quantity = StringField(_l("Quantity"), render_kw={"required": True, "inputmode": "decimal"})
    note = TextAreaField(_l("Note"), render_kw={"rows": 2, "maxlength": 500})


def _prepare(session: Session, form: Any) -> None:
    choices = select_choices(location_choices(session))
    form.location_id.choices = choices
    if hasattr(form, "to_location_id"):
        form.to_location_id.choices = choices
    if request.method == "GET":
        form.product.data = form.product.data or request.args.get("product", "")
        if (location := request.args.get("location_id")) is not None:
            form.location_id.data = location


def _inputs(session: Session, form: Any) -> tuple[Product | None, int | None, Decimal | None]:
    """The posted product, location id and quantity; marks the fields that are wrong."""
    product = product_by_sku(session, form.product.data)
    if product is None:
        form.product.errors = [_("There is no product with this SKU.")]
    quantity = parse_quantity(form.quantity.data)
    if quantity is None:
        form.quantity.errors = [_("Enter a number.")]
    return product, _int(form.location_id.data), quantity


def _render_move_form(template: str, form: Any, status: int = 200) -> tuple[str, int]:
    skus = db().scalars(select(Product.sku).where(Product.active.is_(True)).order_by(Product.sku).limit(2000))
    return render_template(template, form=form, skus=list(skus)), status


@bp.route("/stock/receive", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def stock_receive() -> Any:
    """Book goods in (入库); waiting orders reserve them at once."""
    session = db()
    form = ReceiptForm()
    _prepare(session, form)
    if request.method == "GET":
        return _render_move_form("logistics/stock_receive.html", form)
    product, location_id, quantity = _inputs(session, form)
    if product is None or quantity is None:
        return _render_move_form("logistics/stock_receive.html", form, 422)
    try:
        move = stock.receive_stock(
            session,
            current_actor(),
            product.id,
            location_id or 0,
            quantity,
            reference=form.reference.data or "",
            note=form.note.data or "",
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_move_form("logistics/stock_receive.html", form, exc.status)
    flash(
        _("Received %(quantity)s × %(sku)s.", quantity=stock.q3(move.quantity).normalize(), sku=product.sku),
        "success",
    )
    return redirect(url_for("logistics.stock_list", q=product.sku))


@bp.route("/stock/adjust", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def stock_adjust() -> Any:
    """Correct the stock at a location (±) with a reason; reserved units cannot be taken away."""
    session = db()
    form = AdjustForm()
    _prepare(session, form)
    if request.method == "GET":
        return _render_move_form("logistics/stock_adjust.html", form)
    product, location_id, quantity = _inputs(session, form)
    if product is None or quantity is None:
        return _render_move_form("logistics/stock_adjust.html", form, 422)
    try:
        stock.adjust_stock(
            session, current_actor(), product.id, location_id or 0, quantity, reason=form.reason.data or ""
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_move_form("logistics/stock_adjust.html", form, exc.status)
    flash(_("The stock of %(sku)s was adjusted.", sku=product.sku), "success")
    return redirect(url_for("logistics.stock_list", q=product.sku))


@bp.route("/stock/transfer", methods=["GET", "POST"])
@permission_required(flow.STOCK_MANAGE)
def stock_transfer() -> Any:
    """Move free units between locations (移库)."""
    session = db()
    form = TransferForm()
    _prepare(session, form)
    if request.method == "GET":
        return _render_move_form("logistics/stock_transfer.html", form)
    product, location_id, quantity = _inputs(session, form)
    if product is None or quantity is None:
        return _render_move_form("logistics/stock_transfer.html", form, 422)
    try:
        stock.transfer_stock(
            session,
            current_actor(),
            product.id,
            location_id or 0,
            _int(form.to_location_id.data) or 0,
            quantity,
            note=form.note.data or "",
        )
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc, form)
        return _render_move_form("logistics/stock_transfer.html", form, exc.status)
    flash(_("%(sku)s was moved.", sku=product.sku), "success")
    return redirect(url_for("logistics.stock_list", q=product.sku))


# --- replenishment -----------------------------------------------------------------------------


@bp.get("/replenishment")
@permission_required(flow.REPORTS_READ)
def replenishment_list() -> Any:
    """What backorders need and what is below its reorder level, earliest promise first."""
    session = db()
    rows = replenishment.replenishment_list(session)
    fmt = request.args.get("format", "")
    if fmt in FORMATS:
        header = [
            _("SKU"),
            _("Product"),
            _("Backorders"),
            _("Free"),
            _("Reorder level"),
            _("Suggested"),
            _("Earliest promised date"),
            _("Waiting orders"),
        ]
        data = [
            [
                r.product.sku,
                r.product.name,
                r.backorder,
                r.free,
                r.reorder_level,
                r.suggested,
                r.earliest or "",
                ", ".join(o.number for o in r.orders),
            ]
            for r in rows
        ]
        return export_response(fmt, "replenishment", header, data)
    return render_template("logistics/replenishment.html", rows=rows, can_manage=current_actor().can(flow.STOCK_MANAGE))


@bp.post("/replenishment/reserve")
@permission_required(flow.STOCK_MANAGE)
def replenishment_reserve() -> Response:
    """Reserve free stock for the waiting orders now (earliest promised date first)."""
    session = db()
    try:
        served = replenishment.reserve_for_waiting(session, current_actor())
        session.commit()
    except LogisticsError as exc:
        session.rollback()
        _refused(exc)
        return redirect(url_for("logistics.replenishment_list"))
    if served:
        numbers = session.scalars(select(Order.number).where(Order.id.in_(served)).order_by(Order.number))
        flash(_("Stock was reserved for orders %(numbers)s.", numbers=", ".join(numbers)), "success")
    else:
        flash(_("No free stock could be reserved for the waiting orders."), "info")
    return redirect(url_for("logistics.replenishment_list"))

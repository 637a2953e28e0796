"""Shipments: plan, pick, pack, choose the carrier, ship (LG-1, LG-4, LG-6, LG-11).

Why: the warehouse turns an order's reserved stock into shipments. A shipment is
planned from the reservations (all, or chosen quantities when the order may ship in
parts), picked with a picking list (拣货单) sorted by location with a standard picking
time, packed into packages with weight and dimensions, given the carrier Ordo suggests
(the cheapest meeting the promised date; another one only with a reason), and shipped:
stock leaves through :func:`plugins.logistics.stock.issue_reserved` — never more than
is reserved — the customer is told with the tracking number, and the order moves on
when everything has shipped (:func:`plugins.logistics.progress.advance`).

Remote orders (异地订单) get the rules of LG-1/LG-11: a carrier and a tracking number
before the shipment counts as shipped (a carrier with a connector books it and returns
the number), and cargo insurance above the threshold setting. Every shipment asks the
hook ``ordo_logistics_shipment_guard`` first, so a check that must hold at each
shipment (billing's credit gate) cannot be bypassed by shipping in parts.

Services take ``(session, actor, …)``, check the permission and the order's data scope,
validate everything before the first change, never commit, and write an audit entry.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.concurrency import mark_external_effect
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Order, OrderLine, Product, User
from core.notify import ToCustomer, notify
from core.services import NotFound, audit
from core.services.numbering import next_serial
from core.services.orders import get_order, may_see_order
from core.settings import get_setting, session_registry
from plugins.logistics import flow, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsLocation,
    LogisticsOrder,
    LogisticsPackage,
    LogisticsPickList,
    LogisticsReservation,
    LogisticsReturn,
    LogisticsReturnLine,
    LogisticsService,
    LogisticsShipment,
    LogisticsShipmentLine,
    LogisticsWarehouse,
)

ZERO = Decimal("0")
_CENTS = Decimal("0.01")
#: Shipments not shipped yet and not cancelled: their lines hold planned quantities.
OPEN_STATUSES = ("planned", "picking", "picked", "packed")
#: Statuses a shipment may leave from (a pick list in progress must be confirmed first).
SHIPPABLE_STATUSES = ("planned", "picked", "packed")
#: Shipments whose goods have left the warehouse.
SHIPPED_STATUSES = ("shipped", "delivered")
#: Number sequences (core.services.numbering): SHP2026-000001, PCK2026-000001.
SHIPMENT_SEQUENCE = "SHP"
PICK_LIST_SEQUENCE = "PCK"
#: Largest package weight (kg) and dimension (cm) accepted: a typo guard.
MAX_WEIGHT = Decimal("100000")
MAX_DIMENSION = Decimal("10000")
#: Where the customer follows a shipment in the portal (helper routes under ``/portal/deliveries``).
PORTAL_PATH = "/portal/deliveries/{id}"

# Refusals (msgids; screens show them translated).
NOT_SHIPPABLE = N_("Order %(number)s cannot ship now: it is not confirmed or still waits for the outbound check.")
NOT_PARTIAL = N_("Order %(number)s may not ship in parts and some lines are still short of stock.")
NOTHING_TO_PLAN = N_("Nothing reserved for order %(number)s is left to plan.")
UNKNOWN_LINE = N_("Line %(line)s is not a line of order %(number)s.")
OVER_PLANNED = N_("Only %(available)s of %(sku)s are reserved and not yet planned; %(wanted)s cannot be planned.")
QUANTITY_POSITIVE = N_("A quantity must be greater than zero.")
NOT_A_NUMBER = N_("%(field)s is not a valid number.")
NO_SHIPMENTS = N_("Choose at least one shipment.")
NOT_PLANNED = N_("Shipment %(number)s is not waiting to be picked.")
ONE_WAREHOUSE = N_("A picking list covers shipments of one warehouse only.")
PICK_CONFIRMED = N_("Picking list %(number)s is already confirmed.")
PICK_NOT_OPEN_LINE = N_("Line %(line)s is not on picking list %(number)s.")
PICK_RANGE = N_("The picked quantity of %(sku)s must be between 0 and %(planned)s.")
WEIGHT_POSITIVE = N_("Package weight must be greater than zero.")
DIMENSIONS_POSITIVE = N_("Package length, width and height must be greater than zero.")
TOO_LARGE = N_("%(field)s is too large.")
NOT_OPEN = N_("Shipment %(number)s has already shipped or was cancelled.")
UNKNOWN_PACKAGE = N_("Package %(id)s is not a package of shipment %(number)s.")
NO_PACKAGE = N_("Add a package before marking shipment %(number)s packed.")
PICK_FIRST = N_("Confirm the picking list of shipment %(number)s before packing or shipping it.")
UNKNOWN_SERVICE = N_("Carrier service %(id)s does not exist or is not active.")
OVERRIDE_REASON = N_("Choosing another carrier than the suggested one needs a reason.")
NO_RATE = N_("%(service)s has no rate to %(province)s; add one to the carrier's rates first.")
NOTHING_PICKED = N_("Nothing was picked for shipment %(number)s; cancel it instead.")
NO_RESERVATION = N_("Only %(reserved)s of %(sku)s are reserved for this shipment; %(wanted)s cannot be shipped.")
GUARD_REFUSED = N_("Shipment %(number)s may not leave now: %(reasons)s")
REMOTE_CARRIER = N_("A remote shipment needs a carrier before it ships.")
REMOTE_TRACKING = N_("A remote shipment needs a tracking number before it ships.")
INSURANCE_REQUIRED = N_(
    "Goods worth more than %(threshold)s shipped to a remote customer must be insured; insurance cannot be declined."
)
TRACKING_TOO_LONG = N_("The tracking number may have at most 64 characters.")
BOOKING_FAILED = N_("The carrier's system did not book the shipment: %(error)s")
REPLACEMENT_SHORT = N_("Only %(got)s of %(sku)s are free for a replacement; %(wanted)s are needed.")
REPLACEMENT_CLOSED = N_("Order %(number)s is closed; no replacement can ship for it.")
NOTHING_TO_REPLACE = N_("The objected shipment has nothing to replace.")
CANCEL_SHIPPED = N_("Goods have left the warehouse; request a return instead.")
NOTHING_SHIPPED_YET = N_("Nothing has shipped for this order yet; cancel the order instead of closing its backorder.")
SHIPMENT_IN_PROGRESS = N_("A shipment of this order is being picked or packed; ship or cancel it first.")

SHIPPED = NotificationTemplate(
    "logistics.shipped",
    label=N_("Goods shipped, with the tracking number (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 已发货{% if tracking_number %}（运单号 {{ tracking_number }}）{% endif %}",
        "en": "Order {{ order.number }} has shipped"
        "{% if tracking_number %} (tracking {{ tracking_number }}){% endif %}",
    },
    body={
        "zh_CN": "您的订单 {{ order.number }} 的发货 {{ shipment_number }} 已于 {{ shipped_at|date }} 发出。\n"
        "{% if carrier %}承运商：{{ carrier }}{% if service %}（{{ service }}）{% endif %}\n{% endif %}"
        "{% if tracking_number %}运单号：{{ tracking_number }}\n{% endif %}"
        "{% if promised_date %}承诺到货日期：{{ promised_date|date }}\n{% endif %}"
        "货物明细：\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }} × {{ line.quantity }} {{ line.unit }}\n{% endfor %}"
        "物流跟踪与签收确认：{{ portal_url }}",
        "en": "Shipment {{ shipment_number }} of your order {{ order.number }} left on {{ shipped_at|date }}.\n"
        "{% if carrier %}Carrier: {{ carrier }}{% if service %} ({{ service }}){% endif %}\n{% endif %}"
        "{% if tracking_number %}Tracking number: {{ tracking_number }}\n{% endif %}"
        "{% if promised_date %}Promised delivery date: {{ promised_date|date }}\n{% endif %}"
        "Goods:\n"
        "{% for line in lines %}- {{ line.sku }} {{ line.name }} × {{ line.quantity }} {{ line.unit }}\n{% endfor %}"
        "Track it and confirm receipt: {{ portal_url }}",
    },
    plugin="logistics",
)

#: The notification templates this module sends (collected by the plugin's hook).
NOTIFICATIONS = (SHIPPED,)


# --- helpers ---------------------------------------------------------------------------------


def _require(actor: User, permission: str) -> None:
    if not actor.can(permission):
        raise LogisticsError(
            "forbidden", N_("You lack the permission %(permission)s."), status=403, permission=permission
        )


def _decimal(value: Any, field: str) -> Decimal:
    """``value`` as a finite Decimal, or a 422 naming ``field``."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise LogisticsError("invalid_number", NOT_A_NUMBER, field=field) from None
    if not number.is_finite():
        raise LogisticsError("invalid_number", NOT_A_NUMBER, field=field)
    return number


def _serial_number(session: Session, company_id: int, code: str) -> str:
    year = company_now().year
    return f"{code}{year}-{next_serial(session, company_id, code, year):06d}"


def _shipment(session: Session, actor: User, shipment_id: int, *, for_update: bool = False) -> LogisticsShipment:
    """The shipment ``shipment_id`` if its order lies in ``actor``'s scope (404 otherwise)."""
    stmt = select(LogisticsShipment).where(LogisticsShipment.id == shipment_id)
    if for_update:
        stmt = stmt.with_for_update()
    shipment = session.scalar(stmt)
    if shipment is None:
        raise LogisticsError("not_found", N_("Shipment %(id)s does not exist."), status=404, id=shipment_id)
    _check_scope(session, actor, shipment.order_id)
    return shipment


def _check_scope(session: Session, actor: User, order_id: int) -> None:
    """NotFound unless order ``order_id`` lies in ``actor``'s data scope.

    A scope check only (the order is usually in the session already), not
    get_order's read of the order with its lines.
    """
    order = session.get(Order, order_id)
    if order is None or not may_see_order(session, actor, order):
        raise NotFound("order", order_id)


def order_of(session: Session, shipment: LogisticsShipment) -> Order:
    """The order a shipment belongs to."""
    order = session.get(Order, shipment.order_id)
    assert order is not None  # a foreign key guarantees it
    return order


def is_shippable(order: Order) -> bool:
    """Whether ``order`` may ship now: confirmed and past the outbound check (or the check disabled)."""
    return order.status == "confirmed" and order.step != flow.OUTBOUND_CHECK


def planned_quantity(line: LogisticsShipmentLine) -> Decimal:
    """What a line of an open shipment will ship: the picked quantity once picked, else the planned one."""
    return stock.q3(line.picked_quantity if line.picked_quantity is not None else line.quantity)


def open_planned(session: Session, order_id: int) -> dict[tuple[int, int], Decimal]:
    """Per (order line id, location id), the quantity planned in the order's open shipments."""
    rows = session.execute(
        select(LogisticsShipmentLine)
        .join(LogisticsShipment, LogisticsShipment.id == LogisticsShipmentLine.shipment_id)
        .where(LogisticsShipment.order_id == order_id, LogisticsShipment.status.in_(OPEN_STATUSES))
    ).scalars()
    planned: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for line in rows:
        planned[(line.order_line_id, line.location_id)] += planned_quantity(line)
    return dict(planned)


def _reservations(session: Session, order_id: int) -> list[LogisticsReservation]:
    return list(
        session.scalars(
            select(LogisticsReservation)
            .join(LogisticsLocation, LogisticsLocation.id == LogisticsReservation.location_id)
            .where(LogisticsReservation.order_id == order_id, LogisticsReservation.quantity > stock.EPSILON)
            .order_by(LogisticsLocation.sequence, LogisticsLocation.code, LogisticsReservation.id)
        )
    )


def unplanned_quantities(session: Session, order: Order) -> dict[int, Decimal]:
    """Per order line id, what is reserved but not yet in an open shipment (what a plan may take)."""
    planned = open_planned(session, order.id)
    free: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for reservation in _reservations(session, order.id):
        left = stock.q3(reservation.quantity) - planned.get((reservation.order_line_id, reservation.location_id), ZERO)
        if left > ZERO:
            free[reservation.order_line_id] += left
    return {line_id: qty for line_id, qty in free.items() if qty > ZERO}


def _unit_value(line: OrderLine) -> Decimal:
    """A line's value per unit after discount (its untaxed amount over its quantity)."""
    quantity = stock.q3(line.quantity)
    if quantity <= ZERO:
        return ZERO
    return Decimal(str(line.amount or 0)) / quantity


def goods_value(session: Session, shipment: LogisticsShipment) -> Decimal:
    """The value of the goods a shipment carries (order prices after discount, 2 decimals)."""
    lines = {line.id: line for line in order_of(session, shipment).lines}
    total = ZERO
    for line in shipment.lines:
        order_line = lines.get(line.order_line_id)
        if order_line is not None:
            total += _unit_value(order_line) * planned_quantity(line)
    return total.quantize(_CENTS)


# --- planning ---------------------------------------------------------------------------------


def plan_shipment(
    session: Session, actor: User, order: Order, *, lines: Mapping[int, Decimal] | None = None
) -> LogisticsShipment:
    """Plan a shipment of ``order``'s reserved stock: all not yet planned, or ``lines`` (line id → qty).

    One shipment line per reservation (its location); quantities are taken from the
    reservations in the pickers' walking order. Refused (409) when the order cannot ship
    now, nothing is left to plan, or the order may not ship in parts and is still short;
    a quantity above what is reserved and unplanned is refused (422), nothing changed.
    """
    _require(actor, flow.SHIPPING_MANAGE)
    order = get_order(session, actor, order.id)
    if not is_shippable(order):
        raise LogisticsError("not_shippable", NOT_SHIPPABLE, status=409, number=order.number)
    facts = session.get(LogisticsOrder, order.id)
    if facts is not None and not facts.allow_partial and stock.backorder_quantities(session, order):
        raise LogisticsError("not_partial", NOT_PARTIAL, status=409, number=order.number)
    available = unplanned_quantities(session, order)
    order_lines = {line.id: line for line in order.lines}
    wanted: dict[int, Decimal] = {}
    if lines is None:
        wanted = dict(available)
    else:
        for line_id, raw in lines.items():
            if line_id not in order_lines:
                raise LogisticsError("unknown_line", UNKNOWN_LINE, line=line_id, number=order.number)
            qty = stock.q3(_decimal(raw, "quantity"))
            if qty == ZERO:
                continue
            if qty < ZERO:
                raise LogisticsError("invalid_quantity", QUANTITY_POSITIVE)
            if qty - available.get(line_id, ZERO) > stock.EPSILON:
                raise LogisticsError(
                    "over_planned",
                    OVER_PLANNED,
                    available=available.get(line_id, ZERO),
                    sku=order_lines[line_id].product.sku,
                    wanted=qty,
                )
            wanted[line_id] = qty
    if not wanted:
        raise LogisticsError("nothing_to_plan", NOTHING_TO_PLAN, status=409, number=order.number)

    planned = open_planned(session, order.id)
    reservations = _reservations(session, order.id)
    warehouse_id = facts.warehouse_id if facts is not None and facts.warehouse_id else None
    shipment_lines: list[LogisticsShipmentLine] = []
    for reservation in reservations:
        need = wanted.get(reservation.order_line_id, ZERO)
        if need <= ZERO:
            continue
        key = (reservation.order_line_id, reservation.location_id)
        left = stock.q3(reservation.quantity) - planned.get(key, ZERO)
        take = min(left, need)
        if take <= ZERO:
            continue
        location = session.get(LogisticsLocation, reservation.location_id)
        assert location is not None
        if warehouse_id is None:
            warehouse_id = location.warehouse_id
        if location.warehouse_id != warehouse_id:
            continue  # a shipment leaves from one warehouse; plan the rest separately
        shipment_lines.append(
            LogisticsShipmentLine(
                order_line_id=reservation.order_line_id,
                product_id=reservation.product_id,
                location_id=reservation.location_id,
                quantity=take,
            )
        )
        wanted[reservation.order_line_id] = need - take
    if not shipment_lines or warehouse_id is None:
        raise LogisticsError("nothing_to_plan", NOTHING_TO_PLAN, status=409, number=order.number)

    shipment = LogisticsShipment(
        number=_serial_number(session, order.company_id, SHIPMENT_SEQUENCE),
        order_id=order.id,
        warehouse_id=warehouse_id,
        kind="normal",
        status="planned",
        remote=bool(facts.remote) if facts is not None else False,
        promised_date=facts.promised_date if facts is not None else order.requested_date,
        created_by_id=actor.id,
    )
    shipment.lines = shipment_lines
    session.add(shipment)
    session.flush()
    shipment.goods_value = goods_value(session, shipment)
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "plan",
        {
            "number": shipment.number,
            "lines": {str(line.order_line_id): str(line.quantity) for line in shipment_lines},
            "goods_value": shipment.goods_value,
        },
        order_id=order.id,
    )
    session.flush()
    return shipment


def cancel_shipment(session: Session, actor: User, shipment_id: int, reason: str = "") -> LogisticsShipment:
    """Cancel a shipment that has not shipped; its reservations stay for a new plan."""
    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    if shipment.status not in OPEN_STATUSES:
        raise LogisticsError("not_open", NOT_OPEN, status=409, number=shipment.number)
    before = shipment.status
    shipment.status = "cancelled"
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "cancel",
        {"status": [before, "cancelled"]},
        reason=reason.strip()[:1000],
        order_id=shipment.order_id,
    )
    session.flush()
    return shipment


# --- picking ----------------------------------------------------------------------------------


def estimate_minutes(session: Session, lines: int, units: Decimal) -> Decimal:
    """The standard picking time: lines × minutes per line + units × minutes per unit (settings)."""
    per_line = Decimal(str(get_setting(session, flow.PICK_MINUTES_PER_LINE) or 0))
    per_unit = Decimal(str(get_setting(session, flow.PICK_MINUTES_PER_UNIT) or 0))
    return (per_line * lines + per_unit * units).quantize(_CENTS)


def create_pick_list(session: Session, actor: User, shipment_ids: Sequence[int]) -> LogisticsPickList:
    """A picking list (拣货单) over planned shipments of one or several orders of one warehouse.

    Its standard time is ``lines × PICK_MINUTES_PER_LINE + units × PICK_MINUTES_PER_UNIT``;
    the shipments move to *picking*.
    """
    _require(actor, flow.SHIPPING_MANAGE)
    ids = list(dict.fromkeys(int(i) for i in shipment_ids))
    if not ids:
        raise LogisticsError("no_shipments", NO_SHIPMENTS)
    shipments = [_shipment(session, actor, shipment_id, for_update=True) for shipment_id in ids]
    for shipment in shipments:
        if shipment.status != "planned" or shipment.pick_list_id is not None:
            raise LogisticsError("not_planned", NOT_PLANNED, status=409, number=shipment.number)
    if len({s.warehouse_id for s in shipments}) > 1:
        raise LogisticsError("one_warehouse", ONE_WAREHOUSE)
    lines = [line for s in shipments for line in s.lines]
    units = sum((stock.q3(line.quantity) for line in lines), ZERO)
    order = order_of(session, shipments[0])
    pick_list = LogisticsPickList(
        number=_serial_number(session, order.company_id, PICK_LIST_SEQUENCE),
        warehouse_id=shipments[0].warehouse_id,
        status="open",
        estimated_minutes=estimate_minutes(session, len(lines), units),
        created_by_id=actor.id,
    )
    session.add(pick_list)
    session.flush()
    for shipment in shipments:
        shipment.pick_list_id = pick_list.id
        shipment.status = "picking"
    audit.record(
        session,
        actor,
        "logistics_pick_list",
        pick_list.id,
        "create",
        {
            "number": pick_list.number,
            "shipments": [s.number for s in shipments],
            "estimated_minutes": pick_list.estimated_minutes,
        },
    )
    session.flush()
    return pick_list


@dataclass
class PickRow:
    """One row of a picking list: where to go, what to take, for which shipment and order."""

    line: LogisticsShipmentLine
    location: LogisticsLocation
    product: Product
    shipment: LogisticsShipment
    order: Order
    unit: str

    @property
    def short(self) -> Decimal:
        """How much less than planned was picked (zero when picked in full or not yet)."""
        if self.line.picked_quantity is None:
            return ZERO
        return max(ZERO, stock.q3(self.line.quantity) - stock.q3(self.line.picked_quantity))


def pick_rows(session: Session, pick_list: LogisticsPickList) -> list[PickRow]:
    """The picking list's rows sorted by location (walking sequence, then code), then SKU."""
    shipments = list(
        session.scalars(
            select(LogisticsShipment)
            .where(LogisticsShipment.pick_list_id == pick_list.id)
            .order_by(LogisticsShipment.id)
        )
    )
    rows = []
    for shipment in shipments:
        order = order_of(session, shipment)
        units = {line.id: line.unit for line in order.lines}
        for line in shipment.lines:
            location = session.get(LogisticsLocation, line.location_id)
            product = session.get(Product, line.product_id)
            assert location is not None and product is not None
            rows.append(PickRow(line, location, product, shipment, order, units.get(line.order_line_id, product.unit)))
    rows.sort(key=lambda r: (r.location.sequence, r.location.code, r.product.sku, r.shipment.number))
    return rows


def short_picks(session: Session, pick_list: LogisticsPickList) -> list[PickRow]:
    """The rows picked short (picked less than planned) of a confirmed picking list."""
    return [row for row in pick_rows(session, pick_list) if row.short > ZERO]


def _pick_list(session: Session, actor: User, pick_list_id: int) -> LogisticsPickList:
    pick_list = session.get(LogisticsPickList, pick_list_id)
    if pick_list is None:
        raise LogisticsError("not_found", N_("Picking list %(id)s does not exist."), status=404, id=pick_list_id)
    for shipment in pick_list.shipments:
        _check_scope(session, actor, shipment.order_id)
    return pick_list


def get_pick_list(session: Session, actor: User, pick_list_id: int) -> LogisticsPickList:
    """The picking list ``pick_list_id`` if ``actor`` may read stock and see its orders (404 otherwise)."""
    _require(actor, flow.STOCK_READ)
    return _pick_list(session, actor, pick_list_id)


def confirm_pick(
    session: Session, actor: User, pick_list_id: int, picked: Mapping[int, Decimal | str]
) -> LogisticsPickList:
    """Confirm a picking list with the quantities actually picked (shipment line id → quantity).

    Lines not given were picked in full. Each quantity lies between 0 and the planned
    one (422 otherwise); less is a short pick, recorded on the line and listed by
    :func:`short_picks` — the rest stays reserved. Shipments move to *picked*; a second
    confirmation is refused (409).
    """
    _require(actor, flow.SHIPPING_MANAGE)
    pick_list = _pick_list(session, actor, pick_list_id)
    if pick_list.status != "open":
        raise LogisticsError("pick_confirmed", PICK_CONFIRMED, status=409, number=pick_list.number)
    rows = {row.line.id: row for row in pick_rows(session, pick_list)}
    for line_id in picked:
        if int(line_id) not in rows:
            raise LogisticsError("unknown_line", PICK_NOT_OPEN_LINE, line=line_id, number=pick_list.number)
    values: dict[int, Decimal] = {}
    for line_id, row in rows.items():
        planned = stock.q3(row.line.quantity)
        raw = picked.get(line_id, None)
        qty = (
            planned if raw is None or (isinstance(raw, str) and not raw.strip()) else stock.q3(_decimal(raw, "picked"))
        )
        if qty < ZERO or qty - planned > stock.EPSILON:
            raise LogisticsError("pick_range", PICK_RANGE, sku=row.product.sku, planned=planned)
        values[line_id] = qty
    for line_id, qty in values.items():
        rows[line_id].line.picked_quantity = qty
    for shipment in pick_list.shipments:
        if shipment.status == "picking":
            shipment.status = "picked"
    pick_list.status = "confirmed"
    pick_list.confirmed_by_id = actor.id
    pick_list.confirmed_at = utcnow()
    shorts = {
        rows[i].product.sku + "@" + rows[i].location.code: str(rows[i].line.quantity - q)
        for i, q in values.items()
        if stock.q3(rows[i].line.quantity) - q > stock.EPSILON
    }
    audit.record(
        session,
        actor,
        "logistics_pick_list",
        pick_list.id,
        "confirm",
        {"picked": {str(k): str(v) for k, v in values.items()}, "short": shorts},
    )
    session.flush()
    return pick_list


# --- packing ----------------------------------------------------------------------------------


def _packable(shipment: LogisticsShipment) -> None:
    if shipment.status not in OPEN_STATUSES:
        raise LogisticsError("not_open", NOT_OPEN, status=409, number=shipment.number)
    if shipment.status == "picking":
        raise LogisticsError("pick_first", PICK_FIRST, status=409, number=shipment.number)


def _positive(value: Any, field: str, message: str, maximum: Decimal) -> Decimal:
    number = _decimal(value, field)
    if number <= ZERO:
        raise LogisticsError("invalid_package", message)
    if number > maximum:
        raise LogisticsError("invalid_package", TOO_LARGE, field=field)
    return number.quantize(Decimal("0.001"))


def add_package(
    session: Session,
    actor: User,
    shipment_id: int,
    weight: Decimal | str,
    length: Decimal | str,
    width: Decimal | str,
    height: Decimal | str,
    note: str = "",
) -> LogisticsPackage:
    """Add a package (kg; cm) to a shipment not yet shipped; every figure must be above zero (422)."""
    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    _packable(shipment)
    kg = _positive(weight, "weight", WEIGHT_POSITIVE, MAX_WEIGHT)
    dims = [
        _positive(v, name, DIMENSIONS_POSITIVE, MAX_DIMENSION)
        for v, name in ((length, "length"), (width, "width"), (height, "height"))
    ]
    package = LogisticsPackage(
        weight=kg, length=dims[0], width=dims[1], height=dims[2], note=(note or "").strip()[:200]
    )
    shipment.packages.append(package)
    session.flush()
    _packed_state(shipment)
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "add_package",
        {"package": package.id, "weight": kg, "size": f"{dims[0]}×{dims[1]}×{dims[2]}"},
        order_id=shipment.order_id,
    )
    session.flush()
    return package


def remove_package(session: Session, actor: User, shipment_id: int, package_id: int) -> None:
    """Remove a package from a shipment not yet shipped (the last one makes it unpacked again)."""
    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    _packable(shipment)
    package = next((p for p in shipment.packages if p.id == package_id), None)
    if package is None:
        raise LogisticsError("unknown_package", UNKNOWN_PACKAGE, status=404, id=package_id, number=shipment.number)
    shipment.packages.remove(package)
    session.flush()
    _packed_state(shipment)
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "remove_package",
        {"package": package_id},
        order_id=shipment.order_id,
    )
    session.flush()


def _packed_state(shipment: LogisticsShipment) -> None:
    """*packed* with at least one package; back to picked (or planned without a pick list) without."""
    if shipment.packages:
        if shipment.status in ("planned", "picked"):
            shipment.status = "packed"
            shipment.packed_at = utcnow()
    elif shipment.status == "packed":
        shipment.status = "picked" if shipment.pick_list_id is not None else "planned"
        shipment.packed_at = None


def mark_packed(session: Session, actor: User, shipment_id: int) -> LogisticsShipment:
    """Mark a shipment packed: it needs at least one package (422) and a confirmed pick (409)."""
    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    _packable(shipment)
    if not shipment.packages:
        raise LogisticsError("no_package", NO_PACKAGE, number=shipment.number)
    _packed_state(shipment)
    session.flush()
    return shipment


# --- the carrier ------------------------------------------------------------------------------


def warehouse_of(session: Session, shipment: LogisticsShipment) -> LogisticsWarehouse:
    """The warehouse a shipment leaves from."""
    warehouse = session.get(LogisticsWarehouse, shipment.warehouse_id)
    assert warehouse is not None
    return warehouse


def parcel_of(session: Session, shipment: LogisticsShipment) -> Any:
    """The shipment's parcel for freight: its packages, or (none yet) its goods' unit weights and volumes."""
    from plugins.logistics import carriers

    if shipment.packages:
        return carriers.parcel_of_packages(shipment.packages)
    return carriers.parcel_of_lines(session, [(line.product_id, planned_quantity(line)) for line in shipment.lines])


def insurance_required(session: Session, shipment: LogisticsShipment) -> bool:
    """Whether the shipment must be insured: remote and goods above the threshold (0: every remote one)."""
    if not shipment.remote:
        return False
    threshold = Decimal(str(get_setting(session, flow.INSURANCE_THRESHOLD) or 0))
    return threshold <= ZERO or stock.q3(shipment.goods_value) > threshold


def insurance_threshold(session: Session) -> Decimal:
    """The goods value above which a remote shipment must be insured (setting)."""
    return Decimal(str(get_setting(session, flow.INSURANCE_THRESHOLD) or 0)).quantize(_CENTS)


def suggestion_for(session: Session, shipment: LogisticsShipment, ship_date: dt.date | None = None) -> Any:
    """The carrier suggestion for a shipment (helper ``carriers.suggest``): candidates, best, explanation."""
    from plugins.logistics import carriers

    order = order_of(session, shipment)
    warehouse = warehouse_of(session, shipment)
    return carriers.suggest(
        session,
        from_province=warehouse.province,
        to_province=order.ship_to_province,
        parcel=parcel_of(session, shipment),
        promised_date=shipment.promised_date,
        ship_date=ship_date or company_now().date(),
        insured_value=shipment.goods_value if insurance_required(session, shipment) else ZERO,
    )


def choose_carrier(
    session: Session, actor: User, shipment_id: int, service_id: int, *, override_reason: str = ""
) -> LogisticsShipment:
    """Give a shipment its carrier service; another than the suggested one needs ``override_reason`` (422).

    Stores the suggestion, the chosen service and carrier, and the freight the rate gives.
    """
    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    if shipment.status not in OPEN_STATUSES:
        raise LogisticsError("not_open", NOT_OPEN, status=409, number=shipment.number)
    service = session.get(LogisticsService, service_id)
    if service is None or not service.active or not service.carrier.active:
        raise LogisticsError("unknown_service", UNKNOWN_SERVICE, id=service_id)
    suggestion = suggestion_for(session, shipment)
    best = suggestion.best
    reason = (override_reason or "").strip()
    overriding = best is None or best.service.id != service.id
    if overriding and not reason:
        raise LogisticsError("override_reason", OVERRIDE_REASON)
    candidate = next((c for c in suggestion.candidates if c.service.id == service.id), None)
    if candidate is None or candidate.freight is None:
        raise LogisticsError(
            "no_rate",
            NO_RATE,
            service=f"{service.carrier.name} {service.name}",
            province=order_of(session, shipment).ship_to_province,
        )
    before = {"service": shipment.service_id, "freight": shipment.freight}
    shipment.carrier_id = service.carrier_id
    shipment.service_id = service.id
    shipment.suggested_service_id = best.service.id if best is not None else None
    shipment.override_reason = reason[:500] if overriding else ""
    shipment.freight = Decimal(str(candidate.freight)).quantize(_CENTS)
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "choose_carrier",
        {
            "service": [before["service"], service.id],
            "suggested": shipment.suggested_service_id,
            "freight": [str(before["freight"]), str(shipment.freight)],
        },
        reason=shipment.override_reason,
        order_id=shipment.order_id,
    )
    session.flush()
    return shipment


# --- shipping ---------------------------------------------------------------------------------


def _reservation_for(session: Session, line: LogisticsShipmentLine) -> LogisticsReservation | None:
    return session.scalar(
        select(LogisticsReservation).where(
            LogisticsReservation.order_line_id == line.order_line_id,
            LogisticsReservation.location_id == line.location_id,
        )
    )


def guard_reasons(session: Session, order: Order, shipment: LogisticsShipment) -> list[str]:
    """Every plugin's reasons to refuse the shipment now (hook ``ordo_logistics_shipment_guard``)."""
    answers = session_registry(session).hook.ordo_logistics_shipment_guard(
        order=order, shipment=shipment, session=session
    )
    return [str(reason) for answer in answers for reason in (answer or [])]


def _connector_for(session: Session, carrier: LogisticsCarrier | None) -> Any:
    from plugins.logistics.connectors import find_connector

    if carrier is None or not carrier.connector:
        return None
    return find_connector(session, carrier.connector)


def ship(
    session: Session,
    actor: User,
    shipment_id: int,
    *,
    tracking_number: str = "",
    insured: bool | None = None,
) -> LogisticsShipment:
    """Ship a shipment: stock leaves, the customer is told, the order moves on when all has shipped.

    Refused, with nothing changed: a shipment not ready (409), a pick list not
    confirmed (409), an objection of the ``ordo_logistics_shipment_guard`` hook (409
    with every reason), more than is reserved (409), and for a remote shipment a missing
    carrier or tracking number (422) or declined insurance above the threshold (422).
    A carrier with a connector that books is booked here when no tracking number is given.
    """
    from plugins.logistics import carriers, progress

    _require(actor, flow.SHIPPING_MANAGE)
    shipment = _shipment(session, actor, shipment_id, for_update=True)
    order = order_of(session, shipment)
    if shipment.status == "picking":
        raise LogisticsError("pick_first", PICK_FIRST, status=409, number=shipment.number)
    if shipment.status not in SHIPPABLE_STATUSES:
        raise LogisticsError("not_open", NOT_OPEN, status=409, number=shipment.number)
    if shipment.kind == "replacement":
        if order.status in ("cancelled", "rejected", "draft"):
            raise LogisticsError("order_closed", REPLACEMENT_CLOSED, status=409, number=order.number)
    elif not is_shippable(order):
        raise LogisticsError("not_shippable", NOT_SHIPPABLE, status=409, number=order.number)

    issues: list[tuple[LogisticsReservation, Decimal]] = []
    for line in shipment.lines:
        qty = planned_quantity(line)
        if qty <= ZERO:
            continue
        reservation = _reservation_for(session, line)
        reserved = stock.q3(reservation.quantity) if reservation is not None else ZERO
        if reservation is None or qty - reserved > stock.EPSILON:
            product = session.get(Product, line.product_id)
            raise LogisticsError(
                "over_reserved",
                NO_RESERVATION,
                status=409,
                reserved=reserved,
                sku=product.sku if product else line.product_id,
                wanted=qty,
            )
        issues.append((reservation, qty))
    if not issues:
        raise LogisticsError("nothing_picked", NOTHING_PICKED, status=409, number=shipment.number)

    reasons = guard_reasons(session, order, shipment)
    if reasons:
        raise LogisticsError(
            "shipment_refused",
            GUARD_REFUSED,
            status=409,
            details={"reasons": reasons},
            number=shipment.number,
            reasons="; ".join(reasons),
        )

    number = (tracking_number or shipment.tracking_number or "").strip()
    if len(number) > 64:
        raise LogisticsError("tracking_too_long", TRACKING_TOO_LONG)
    carrier = session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None
    if shipment.remote and carrier is None:
        raise LogisticsError("remote_carrier", REMOTE_CARRIER)
    must_insure = insurance_required(session, shipment)
    if must_insure and insured is False:
        raise LogisticsError("insurance_required", INSURANCE_REQUIRED, threshold=insurance_threshold(session))
    connector = _connector_for(session, carrier)
    if shipment.remote and not number and (connector is None or connector.book is None):
        raise LogisticsError("remote_tracking", REMOTE_TRACKING)
    if not number and connector is not None and connector.book is not None:
        from plugins.logistics.connectors import ConnectorError

        mark_external_effect(session)  # a booked pick-up is not undone by a rollback: never book twice
        try:
            number = str(connector.book(session, shipment) or "").strip()
        except ConnectorError as exc:
            raise LogisticsError("booking_failed", BOOKING_FAILED, status=409, error=str(exc)) from None
        if shipment.remote and not number:
            raise LogisticsError("remote_tracking", REMOTE_TRACKING)
        if len(number) > 64:
            raise LogisticsError("tracking_too_long", TRACKING_TOO_LONG)

    for reservation, qty in issues:
        stock.issue_reserved(session, actor, reservation, qty, shipment_id=shipment.id, reference=shipment.number)
    for line in shipment.lines:  # what left is what was picked
        line.picked_quantity = planned_quantity(line)
    insure = must_insure or bool(insured)
    shipment.insured = insure
    shipment.insured_value = shipment.goods_value if insure else ZERO
    shipment.insurance_fee = (
        Decimal(str(carriers.insurance_fee(carrier, shipment.goods_value))).quantize(_CENTS)
        if insure and carrier is not None
        else ZERO
    )
    shipment.tracking_number = number
    shipment.status = "shipped"
    shipment.shipped_at = utcnow()
    shipment.shipped_by_id = actor.id
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "ship",
        {
            "status": "shipped",
            "tracking_number": number,
            "carrier": carrier.code if carrier else "",
            "lines": {str(r.order_line_id): str(q) for r, q in issues},
            "insured_value": shipment.insured_value,
        },
        order_id=order.id,
    )
    session.flush()
    _notify_shipped(session, order, shipment, carrier)
    progress.advance(session, order, actor)
    return shipment


def _notify_shipped(
    session: Session, order: Order, shipment: LogisticsShipment, carrier: LogisticsCarrier | None
) -> None:
    service = session.get(LogisticsService, shipment.service_id) if shipment.service_id else None
    products = {
        p.id: p
        for p in session.scalars(select(Product).where(Product.id.in_([line.product_id for line in shipment.lines])))
    }
    units = {line.id: line.unit for line in order.lines}
    lines = [
        {
            "sku": products[line.product_id].sku,
            "name": products[line.product_id].name,
            "quantity": format(stock.q3(line.picked_quantity).normalize(), "f"),
            "unit": units.get(line.order_line_id, products[line.product_id].unit),
        }
        for line in shipment.lines
        if line.picked_quantity is not None and line.picked_quantity > ZERO
    ]
    notify(
        session,
        SHIPPED.name,
        to=ToCustomer(order.customer_id),
        order=order,
        context={
            "shipment_number": shipment.number,
            "tracking_number": shipment.tracking_number,
            "carrier": carrier.name if carrier else "",
            "service": service.name if service else "",
            "shipped_at": shipment.shipped_at,
            "promised_date": shipment.promised_date,
            "lines": lines,
            "portal_url": portal_url(shipment),
        },
        dedupe_key=f"logistics.shipped:{shipment.id}",
    )


def portal_url(shipment: LogisticsShipment) -> str:
    """The address of the shipment's page in the customer portal (absolute inside a web request)."""
    from flask import has_request_context, request

    path = PORTAL_PATH.format(id=shipment.id)
    if has_request_context():
        return request.host_url.rstrip("/") + path
    return path


# --- replacements -----------------------------------------------------------------------------


def create_replacement_shipment(session: Session, actor: User, objection: Any) -> LogisticsShipment:
    """A replacement shipment for an objected shipment's lines and quantities, with fresh stock reserved.

    Reserves the quantities anew for the order lines (locations in walking order) and
    plans one line per reservation taken; it may ship although the order has moved past
    shipping. Too little free stock is refused (409) and nothing changes.
    """
    if not (actor.can(flow.SHIPPING_MANAGE) or actor.can(flow.DELIVERY_MANAGE)):
        _require(actor, flow.SHIPPING_MANAGE)
    objected = _shipment(session, actor, objection.shipment_id, for_update=True)
    order = order_of(session, objected)
    if order.status in ("cancelled", "rejected", "draft"):
        raise LogisticsError("order_closed", REPLACEMENT_CLOSED, status=409, number=order.number)
    wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line in objected.lines:
        qty = stock.q3(line.picked_quantity if line.picked_quantity is not None else line.quantity)
        if qty > ZERO:
            wanted[line.order_line_id] += qty
    if not wanted:
        raise LogisticsError("nothing_to_replace", NOTHING_TO_REPLACE, status=409)
    order_lines = {line.id: line for line in order.lines}

    def held(line_id: int) -> dict[int, Decimal]:
        return {
            r.location_id: stock.q3(r.quantity)
            for r in session.scalars(select(LogisticsReservation).where(LogisticsReservation.order_line_id == line_id))
        }

    shipment_lines: list[LogisticsShipmentLine] = []
    savepoint = session.begin_nested()
    for line_id, qty in wanted.items():
        order_line = order_lines[line_id]
        before = held(line_id)
        got = stock.reserve_line(session, order_line, qty, objected.warehouse_id)
        if got + stock.EPSILON < qty:
            savepoint.rollback()
            raise LogisticsError(
                "replacement_short", REPLACEMENT_SHORT, status=409, got=got, sku=order_line.product.sku, wanted=qty
            )
        session.flush()
        for location_id, now in held(line_id).items():
            taken = now - before.get(location_id, ZERO)
            if taken > ZERO:
                shipment_lines.append(
                    LogisticsShipmentLine(
                        order_line_id=line_id,
                        product_id=order_line.product_id,
                        location_id=location_id,
                        quantity=taken,
                    )
                )
    savepoint.commit()
    shipment = LogisticsShipment(
        number=_serial_number(session, order.company_id, SHIPMENT_SEQUENCE),
        order_id=order.id,
        warehouse_id=objected.warehouse_id,
        kind="replacement",
        status="planned",
        remote=objected.remote,
        promised_date=objected.promised_date,
        carrier_id=objected.carrier_id,
        service_id=objected.service_id,
        suggested_service_id=objected.suggested_service_id,
        note=f"{objected.number}",
        created_by_id=actor.id,
    )
    shipment.lines = shipment_lines
    session.add(shipment)
    session.flush()
    shipment.goods_value = goods_value(session, shipment)
    if getattr(objection, "replacement_shipment_id", None) is None and hasattr(objection, "replacement_shipment_id"):
        objection.replacement_shipment_id = shipment.id
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "plan_replacement",
        {"number": shipment.number, "replaces": objected.number, "objection": getattr(objection, "id", None)},
        order_id=order.id,
    )
    session.flush()
    return shipment


# --- the order's workflow (guards and close_backorder) -------------------------------------------


def returned_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Per order line, the quantity of goods returned to the warehouse (returns received or closed)."""
    rows = session.execute(
        select(LogisticsReturnLine.order_line_id, LogisticsReturnLine.received_quantity)
        .join(LogisticsReturn, LogisticsReturn.id == LogisticsReturnLine.return_id)
        .where(LogisticsReturn.order_id == order_id, LogisticsReturn.status.in_(("received", "closed")))
    )
    back: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line_id, qty in rows:
        back[line_id] += stock.q3(qty)
    return dict(back)


def cancel_blockers(session: Session, order: Order) -> list[str]:
    """Why the order may not be cancelled now: goods shipped and not all returned (CORE-5)."""
    shipped = stock.shipped_quantities(session, order.id)
    if not any(q > ZERO for q in shipped.values()):
        return []
    returned = returned_quantities(session, order.id)
    if any(q - returned.get(line_id, ZERO) > stock.EPSILON for line_id, q in shipped.items()):
        return [CANCEL_SHIPPED]
    return []


def close_backorder_blockers(session: Session, order: Order) -> list[str]:
    """Why the backorder may not be closed: nothing shipped yet (cancel instead), or a shipment in progress."""
    reasons = []
    shipped = stock.shipped_quantities(session, order.id)
    if not any(q > ZERO for q in shipped.values()):
        reasons.append(NOTHING_SHIPPED_YET)
    busy = session.scalar(
        select(LogisticsShipment.id).where(
            LogisticsShipment.order_id == order.id,
            LogisticsShipment.status.in_(("picking", "picked", "packed")),
        )
    )
    if busy is not None:
        reasons.append(SHIPMENT_IN_PROGRESS)
    return reasons


def close_backorder(session: Session, order: Order, user: User | None) -> None:
    """Ship no more: record when, cancel planned shipments and release the remaining reservations."""
    facts = session.get(LogisticsOrder, order.id) or stock.prepare_order(session, order)
    facts.backorder_closed_at = utcnow()
    cancelled = []
    for shipment in session.scalars(
        select(LogisticsShipment).where(LogisticsShipment.order_id == order.id, LogisticsShipment.status == "planned")
    ):
        shipment.status = "cancelled"
        cancelled.append(shipment.number)
    stock.release_order(session, order, user)
    audit.record(
        session,
        user,
        "logistics_order",
        order.id,
        "close_backorder",
        {"cancelled_shipments": cancelled},
        order_id=order.id,
    )
    session.flush()

"""Warehouses (仓库), their locations (库位) and products' logistics facts (LG-2).

Master data the stock lives on: a warehouse has a unique code and a ship-from address;
exactly one active warehouse is the default orders reserve from. Locations have a code
unique inside their warehouse, a ``sequence`` (the order pickers walk them) and a
``blocked`` flag for areas whose goods are not sellable (QC, rework, downgrade, scrap):
stock there is never reserved. Products get a unit weight and volume (for freight) and
a reorder level (for the replenishment list).

Every change needs ``logistics.stock.manage``, is validated in full before anything
changes and is audited; bad input is a :class:`LogisticsError` naming the field in
``details``. Other modules get their special areas through :func:`special_location`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import Branch, Product, User
from core.services.audit import record
from core.services.orders import default_company
from plugins.logistics.errors import LogisticsError
from plugins.logistics.flow import STOCK_MANAGE
from plugins.logistics.models import LogisticsLocation, LogisticsProduct, LogisticsStock, LogisticsWarehouse
from plugins.logistics.stock import EPSILON, q3

#: Blocked areas other modules need: QC dispositions of returned goods (LG-9).
SPECIAL_LOCATIONS = {
    "inspection": ("QC-INSPECT", N_("Returned goods awaiting inspection")),
    "rework": ("QC-REWORK", N_("Rework area")),
    "downgrade": ("QC-DOWNGRADE", N_("Downgraded goods")),
    "scrap": ("QC-SCRAP", N_("Scrap area")),
}
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_WAREHOUSE_TEXT = {"name": 200, "province": 64, "city": 64, "address": 300, "contact": 100, "phone": 50}


def _require(actor: User) -> None:
    if not actor.can(STOCK_MANAGE):
        raise LogisticsError("forbidden", N_("You may not manage warehouses and locations."), status=403)


def _code(value: Any, field: str = "code") -> str:
    code = str(value or "").strip().upper()
    if not code:
        raise LogisticsError("code_required", N_("Enter a code."), details={field: ["required"]})
    if len(code) > 32 or not _CODE.match(code):
        raise LogisticsError(
            "bad_code",
            N_("A code has at most 32 letters, digits, “.”, “/”, “_” or “-”."),
            details={field: ["invalid"]},
        )
    return code


def _text(data: Mapping[str, Any], field: str, limit: int, *, required: bool = False) -> str:
    value = str(data.get(field) or "").strip()
    if required and not value:
        raise LogisticsError("required", N_("Enter a name."), details={field: ["required"]})
    if len(value) > limit:
        raise LogisticsError(
            "too_long",
            N_("The text is too long (at most %(limit)s characters)."),
            details={field: ["too_long"]},
            limit=limit,
        )
    return value


def _flag(data: Mapping[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes", "y")
    return bool(value)


def _number(value: Any, field: str, *, places: int = 3) -> Decimal:
    """A decimal ≥ 0 from a form or JSON value (blank is zero)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal("0")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise LogisticsError("not_a_number", N_("Enter a number."), details={field: ["invalid"]}) from None
    if not number.is_finite() or number < 0:
        raise LogisticsError("negative", N_("Enter a number of at least zero."), details={field: ["min"]})
    return number.quantize(Decimal(1).scaleb(-places))


def stock_on_hand(session: Session, *, warehouse_id: int | None = None, location_id: int | None = None) -> Decimal:
    """Units on hand in a warehouse or at a location (all products)."""
    stmt = select(func.coalesce(func.sum(LogisticsStock.on_hand), 0))
    if warehouse_id is not None:
        stmt = stmt.where(LogisticsStock.warehouse_id == warehouse_id)
    if location_id is not None:
        stmt = stmt.where(LogisticsStock.location_id == location_id)
    return q3(session.scalar(stmt))


def _reserved_at(session: Session, location_id: int) -> Decimal:
    stmt = select(func.coalesce(func.sum(LogisticsStock.reserved), 0)).where(LogisticsStock.location_id == location_id)
    return q3(session.scalar(stmt))


# --- warehouses ------------------------------------------------------------------------------


def get_warehouse(session: Session, warehouse_id: int) -> LogisticsWarehouse:
    """The warehouse ``warehouse_id``; 404 when there is none."""
    warehouse = session.get(LogisticsWarehouse, warehouse_id)
    if warehouse is None:
        raise LogisticsError("not_found", N_("There is no such warehouse."), status=404)
    return warehouse


def _warehouse_values(session: Session, data: Mapping[str, Any], current: LogisticsWarehouse | None) -> dict[str, Any]:
    values: dict[str, Any] = {"code": _code(data.get("code", current.code if current else ""))}
    clash = session.scalar(select(LogisticsWarehouse).where(LogisticsWarehouse.code == values["code"]))
    if clash is not None and clash is not current:
        raise LogisticsError(
            "duplicate_code",
            N_("Another warehouse already has the code %(value)s."),
            status=409,
            details={"code": ["duplicate"]},
            value=values["code"],
        )
    for field, limit in _WAREHOUSE_TEXT.items():
        fallback = getattr(current, field) if current else ""
        values[field] = _text({field: data.get(field, fallback)}, field, limit, required=field == "name")
    branch_id = data.get("branch_id", current.branch_id if current else None)
    if branch_id in ("", None):
        values["branch_id"] = None
    else:
        branch = session.get(Branch, int(branch_id)) if str(branch_id).isdigit() else None
        if branch is None:
            raise LogisticsError("unknown_branch", N_("There is no such branch."), details={"branch_id": ["unknown"]})
        values["branch_id"] = branch.id
    values["is_default"] = _flag(data, "is_default", current.is_default if current else False)
    values["active"] = _flag(data, "active", current.active if current else True)
    if values["is_default"] and not values["active"]:
        raise LogisticsError(
            "default_inactive",
            N_("The default warehouse must be in use."),
            details={"active": ["default"]},
        )
    return values


def _settle_default(session: Session, warehouse: LogisticsWarehouse) -> None:
    """Keep exactly one default: this one if it is, else the first active warehouse."""
    if warehouse.is_default:
        session.execute(
            update(LogisticsWarehouse)
            .where(LogisticsWarehouse.id != warehouse.id, LogisticsWarehouse.is_default.is_(True))
            .values(is_default=False)
            .execution_options(synchronize_session="fetch")
        )
    elif not session.scalar(
        select(func.count()).where(LogisticsWarehouse.is_default.is_(True), LogisticsWarehouse.active.is_(True))
    ):
        first = session.scalar(
            select(LogisticsWarehouse).where(LogisticsWarehouse.active.is_(True)).order_by(LogisticsWarehouse.id)
        )
        if first is not None:
            first.is_default = True
    session.flush()


def create_warehouse(session: Session, actor: User, data: Mapping[str, Any]) -> LogisticsWarehouse:
    """Add a warehouse (code, name, address, contact, phone, branch, default); the first is the default."""
    _require(actor)
    values = _warehouse_values(session, data, None)
    warehouse = LogisticsWarehouse(company_id=default_company(session).id, **values)
    session.add(warehouse)
    session.flush()
    _settle_default(session, warehouse)
    record(session, actor, "logistics_warehouse", warehouse.id, "create", {k: str(v) for k, v in values.items()})
    return warehouse


def update_warehouse(session: Session, actor: User, warehouse_id: int, data: Mapping[str, Any]) -> LogisticsWarehouse:
    """Change a warehouse; one holding stock cannot be taken out of use (409)."""
    _require(actor)
    warehouse = get_warehouse(session, warehouse_id)
    values = _warehouse_values(session, data, warehouse)
    if warehouse.active and not values["active"] and stock_on_hand(session, warehouse_id=warehouse.id) > EPSILON:
        raise LogisticsError(
            "warehouse_has_stock",
            N_("Warehouse %(value)s still holds stock; move or adjust it before taking the warehouse out of use."),
            status=409,
            value=warehouse.code,
        )
    changes = {k: [str(getattr(warehouse, k)), str(v)] for k, v in values.items() if getattr(warehouse, k) != v}
    for key, value in values.items():
        setattr(warehouse, key, value)
    session.flush()
    _settle_default(session, warehouse)
    if changes:
        record(session, actor, "logistics_warehouse", warehouse.id, "update", changes)
    return warehouse


# --- locations -------------------------------------------------------------------------------


def _location_values(
    session: Session, warehouse: LogisticsWarehouse, data: Mapping[str, Any], current: LogisticsLocation | None
) -> dict[str, Any]:
    values: dict[str, Any] = {"code": _code(data.get("code", current.code if current else ""))}
    clash = session.scalar(
        select(LogisticsLocation).where(
            LogisticsLocation.warehouse_id == warehouse.id, LogisticsLocation.code == values["code"]
        )
    )
    if clash is not None and clash is not current:
        raise LogisticsError(
            "duplicate_location",
            N_("Warehouse %(warehouse)s already has a location %(value)s."),
            status=409,
            details={"code": ["duplicate"]},
            warehouse=warehouse.code,
            value=values["code"],
        )
    values["name"] = _text({"name": data.get("name", current.name if current else "")}, "name", 100)
    raw = data.get("sequence", current.sequence if current else None)
    if raw in (None, ""):
        raw = (
            session.scalar(
                select(func.max(LogisticsLocation.sequence)).where(LogisticsLocation.warehouse_id == warehouse.id)
            )
            or 0
        ) + 10
    try:
        sequence = int(str(raw).strip())
    except ValueError:
        raise LogisticsError(
            "bad_sequence", N_("The walking order is a whole number."), details={"sequence": ["invalid"]}
        ) from None
    if not 0 <= sequence <= 1_000_000:
        raise LogisticsError(
            "bad_sequence", N_("The walking order is a whole number."), details={"sequence": ["invalid"]}
        )
    values["sequence"] = sequence
    values["blocked"] = _flag(data, "blocked", current.blocked if current else False)
    values["active"] = _flag(data, "active", current.active if current else True)
    return values


def create_location(session: Session, actor: User, warehouse_id: int, data: Mapping[str, Any]) -> LogisticsLocation:
    """Add a location to a warehouse (code unique there, walking order, blocked flag)."""
    _require(actor)
    warehouse = get_warehouse(session, warehouse_id)
    values = _location_values(session, warehouse, data, None)
    location = LogisticsLocation(warehouse_id=warehouse.id, **values)
    session.add(location)
    session.flush()
    record(session, actor, "logistics_location", location.id, "create", {k: str(v) for k, v in values.items()})
    return location


def update_location(session: Session, actor: User, location_id: int, data: Mapping[str, Any]) -> LogisticsLocation:
    """Change a location. Blocking one with reserved units, or retiring one with stock, is refused (409)."""
    _require(actor)
    location = session.get(LogisticsLocation, location_id)
    if location is None:
        raise LogisticsError("not_found", N_("There is no such location."), status=404)
    values = _location_values(session, location.warehouse, data, location)
    if values["blocked"] and not location.blocked and _reserved_at(session, location.id) > EPSILON:
        raise LogisticsError(
            "location_reserved",
            N_("Units at %(value)s are reserved for orders; ship or release them before blocking the location."),
            status=409,
            value=location.code,
        )
    if not values["active"] and location.active and stock_on_hand(session, location_id=location.id) > EPSILON:
        raise LogisticsError(
            "location_has_stock",
            N_("Location %(value)s still holds stock; move or adjust it before taking the location out of use."),
            status=409,
            value=location.code,
        )
    changes = {k: [str(getattr(location, k)), str(v)] for k, v in values.items() if getattr(location, k) != v}
    for key, value in values.items():
        setattr(location, key, value)
    session.flush()
    if changes:
        record(session, actor, "logistics_location", location.id, "update", changes)
    return location


def ensure_location(
    session: Session, warehouse: LogisticsWarehouse, code: str, *, blocked: bool, name: str = ""
) -> LogisticsLocation:
    """The location ``code`` of ``warehouse``, created (at the end of the walk) when missing.

    For other modules' system areas; no permission check, no audit (they audit their
    own operation). An existing location keeps its flags.
    """
    found = session.scalar(
        select(LogisticsLocation).where(LogisticsLocation.warehouse_id == warehouse.id, LogisticsLocation.code == code)
    )
    if found is not None:
        return found
    last = session.scalar(
        select(func.max(LogisticsLocation.sequence)).where(LogisticsLocation.warehouse_id == warehouse.id)
    )
    location = LogisticsLocation(
        warehouse_id=warehouse.id, code=code, name=name, sequence=(last or 0) + 1000, blocked=blocked
    )
    session.add(location)
    session.flush()
    return location


def special_location(session: Session, warehouse_id: int, kind: str) -> LogisticsLocation:
    """The blocked area ``kind`` (``inspection``, ``rework``, ``downgrade``, ``scrap``) of a warehouse.

    Created on first use with the codes QC-INSPECT, QC-REWORK, QC-DOWNGRADE and QC-SCRAP.
    """
    if kind not in SPECIAL_LOCATIONS:
        raise ValueError(f"unknown special location {kind!r}")
    code, name = SPECIAL_LOCATIONS[kind]
    return ensure_location(session, get_warehouse(session, warehouse_id), code, blocked=True, name=name)


# --- products' logistics facts ---------------------------------------------------------------


def product_facts(session: Session, product_id: int) -> LogisticsProduct | None:
    """The logistics facts of a product, if any were set."""
    return session.get(LogisticsProduct, product_id)


def set_product_facts(
    session: Session,
    actor: User,
    product_id: int,
    unit_weight: Decimal | str | None,
    unit_volume: Decimal | str | None,
    reorder_level: Decimal | str | None,
) -> LogisticsProduct:
    """Set a product's unit weight (kg), unit volume (m³) and reorder level, each ≥ 0."""
    _require(actor)
    product = session.get(Product, product_id)
    if product is None:
        raise LogisticsError("not_found", N_("There is no such product."), status=404)
    weight = _number(unit_weight, "unit_weight")
    volume = _number(unit_volume, "unit_volume", places=6)
    level = _number(reorder_level, "reorder_level")
    facts = session.get(LogisticsProduct, product.id)
    if facts is None:
        facts = LogisticsProduct(product_id=product.id)
        session.add(facts)
    before = {
        "unit_weight": str(facts.unit_weight),
        "unit_volume": str(facts.unit_volume),
        "reorder_level": str(facts.reorder_level),
    }
    facts.unit_weight, facts.unit_volume, facts.reorder_level = weight, volume, level
    session.flush()
    after = {"unit_weight": str(weight), "unit_volume": str(volume), "reorder_level": str(level)}
    record(
        session,
        actor,
        "logistics_product",
        product.id,
        "update",
        {k: [before[k], after[k]] for k in after if before[k] != after[k]},
    )
    return facts

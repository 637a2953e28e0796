"""Stock counts (盘点): a count sheet with a snapshot of the expected stock, then posted differences.

1. :func:`start_count` takes a snapshot of the stock on hand per (product, location) of
   one warehouse — optionally some locations and/or products only — as the sheet's
   lines (``expected``). :func:`add_count_line` adds a product found where the books
   had none.
2. :func:`enter_counts` records what was counted per line (≥ 0); counting may take
   several rounds.
3. :func:`post_count` (``logistics.counts.post``) posts one ``count`` move per line
   whose counted quantity differs from the snapshot: the difference is
   ``counted − expected``. A line whose stock moved since the snapshot (a shipment, a
   receipt) is refused with 409 ``count_stale`` listing the lines — counting them again
   is the only way to know the truth; so is a loss larger than the free units (units
   reserved for orders cannot vanish silently: 409 ``count_below_reserved``). Posting a
   count twice is refused (409 ``count_posted``) and changes nothing; the status is
   switched with a conditional update, so two clerks posting at once post it once.
4. :func:`cancel_count` drops a sheet that is still being counted.

Positive differences feed waiting orders (:func:`stock.reserve_backorders`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import company_now
from core.db import utcnow
from core.labels import N_
from core.models import Product, User
from core.services.audit import record
from core.services.numbering import next_serial
from plugins.logistics import stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.flow import COUNTS_MANAGE, COUNTS_POST
from plugins.logistics.models import (
    LogisticsCount,
    LogisticsCountLine,
    LogisticsLocation,
    LogisticsMove,
    LogisticsStock,
    LogisticsWarehouse,
)

#: The number series of count sheets: PD2026-00001 (盘点).
NUMBER_CODE = "PD"


@dataclass
class Difference:
    """One line of a count sheet as the screen shows it: expected, counted, difference, now."""

    line: LogisticsCountLine
    product: Product
    location: LogisticsLocation
    difference: Decimal | None
    on_hand_now: Decimal

    @property
    def stale(self) -> bool:
        """Whether the stock moved since the snapshot (posting would be refused)."""
        return abs(self.on_hand_now - stock.q3(self.line.expected)) > stock.EPSILON


def _require(actor: User, permission: str) -> None:
    if not actor.can(permission):
        raise LogisticsError("forbidden", N_("You may not do this with stock counts."), status=403)


def get_count(session: Session, count_id: int) -> LogisticsCount:
    """The count sheet ``count_id``; 404 when there is none."""
    count = session.get(LogisticsCount, count_id)
    if count is None:
        raise LogisticsError("not_found", N_("There is no such stock count."), status=404)
    return count


def _open(count: LogisticsCount) -> None:
    """Refuse (409) changing a count that is posted or cancelled."""
    if count.status == "posted":
        raise LogisticsError(
            "count_posted", N_("Stock count %(number)s is already posted."), status=409, number=count.number
        )
    if count.status != "counting":
        raise LogisticsError(
            "count_closed", N_("Stock count %(number)s was cancelled."), status=409, number=count.number
        )


def _ids(values: Iterable[int] | None) -> set[int] | None:
    return None if values is None else {int(v) for v in values}


def start_count(
    session: Session,
    actor: User,
    warehouse_id: int,
    *,
    location_ids: Iterable[int] | None = None,
    product_ids: Iterable[int] | None = None,
    note: str = "",
) -> LogisticsCount:
    """Open a count sheet of a warehouse with the expected on hand of each (product, location).

    Lines are the stock rows at the chosen locations (all active ones by default) of the
    chosen products (all by default). Needs ``logistics.counts.manage``.
    """
    _require(actor, COUNTS_MANAGE)
    warehouse = session.get(LogisticsWarehouse, warehouse_id) if warehouse_id else None
    if warehouse is None:
        raise LogisticsError("unknown_warehouse", N_("Choose a warehouse."), details={"warehouse_id": ["unknown"]})
    locations = _ids(location_ids)
    products = _ids(product_ids)
    if locations:
        found = set(
            session.scalars(
                select(LogisticsLocation.id).where(
                    LogisticsLocation.id.in_(locations), LogisticsLocation.warehouse_id == warehouse.id
                )
            )
        )
        if found != locations:
            raise LogisticsError(
                "unknown_location",
                N_("Some chosen locations are not in warehouse %(warehouse)s."),
                details={"location_ids": ["unknown"]},
                warehouse=warehouse.code,
            )
    note = (note or "").strip()
    if len(note) > 500:
        raise LogisticsError(
            "too_long",
            N_("The text is too long (at most %(limit)s characters)."),
            details={"note": ["too_long"]},
            limit=500,
        )
    stmt = (
        select(LogisticsStock)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .where(LogisticsStock.warehouse_id == warehouse.id, LogisticsLocation.active.is_(True))
        .order_by(LogisticsLocation.sequence, LogisticsLocation.code, LogisticsStock.product_id)
    )
    if locations:
        stmt = stmt.where(LogisticsStock.location_id.in_(locations))
    if products:
        stmt = stmt.where(LogisticsStock.product_id.in_(products))
    rows = list(session.scalars(stmt))
    if not rows:
        raise LogisticsError(
            "nothing_to_count",
            N_("There is no stock at the chosen locations to count; choose other locations or products."),
        )
    now = company_now()
    serial = next_serial(session, warehouse.company_id, NUMBER_CODE, now.year)
    count = LogisticsCount(
        number=f"{NUMBER_CODE}{now.year}-{serial:05d}",
        warehouse_id=warehouse.id,
        note=note,
        created_by_id=actor.id,
    )
    count.lines = [
        LogisticsCountLine(product_id=row.product_id, location_id=row.location_id, expected=stock.q3(row.on_hand))
        for row in rows
    ]
    session.add(count)
    session.flush()
    record(
        session,
        actor,
        "logistics_count",
        count.id,
        "start",
        {"number": count.number, "warehouse": warehouse.code, "lines": len(count.lines)},
    )
    return count


def add_count_line(
    session: Session, actor: User, count_id: int, product_id: int, location_id: int
) -> LogisticsCountLine:
    """Add a (product, location) to a sheet — goods found where the books had none; expected = on hand now."""
    _require(actor, COUNTS_MANAGE)
    count = get_count(session, count_id)
    _open(count)
    product = session.get(Product, product_id) if product_id else None
    if product is None:
        raise LogisticsError("unknown_product", N_("Choose a product."), details={"product_id": ["unknown"]})
    location = session.get(LogisticsLocation, location_id) if location_id else None
    if location is None or location.warehouse_id != count.warehouse_id:
        raise LogisticsError(
            "unknown_location", N_("Choose a location of this warehouse."), details={"location_id": ["unknown"]}
        )
    if any(line.product_id == product.id and line.location_id == location.id for line in count.lines):
        raise LogisticsError(
            "duplicate_line",
            N_("%(sku)s at %(location)s is already on the sheet."),
            status=409,
            sku=product.sku,
            location=location.code,
        )
    line = LogisticsCountLine(
        product_id=product.id, location_id=location.id, expected=stock.on_hand_at(session, product.id, location.id)
    )
    count.lines.append(line)
    session.flush()
    record(session, actor, "logistics_count", count.id, "add_line", {"product": product.sku, "location": location.code})
    return line


def _quantity(value: Decimal | str | int | float | None) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise LogisticsError("not_a_number", N_("A counted quantity must be a number.")) from None
    if not number.is_finite() or number < 0:
        raise LogisticsError("negative_count", N_("A counted quantity cannot be below zero."))
    return stock.q3(number)


def enter_counts(
    session: Session, actor: User, count_id: int, counted: Mapping[int, Decimal | str | None]
) -> LogisticsCount:
    """Record counted quantities per line id (≥ 0; ``None`` or blank clears a line). Needs counts.manage."""
    _require(actor, COUNTS_MANAGE)
    count = get_count(session, count_id)
    _open(count)
    lines = {line.id: line for line in count.lines}
    values: dict[int, Decimal | None] = {}
    for raw_id, raw in counted.items():
        line_id = int(raw_id)
        if line_id not in lines:
            raise LogisticsError("unknown_line", N_("Line %(id)s is not on this count sheet."), id=line_id)
        values[line_id] = _quantity(raw)
    changes = {}
    for line_id, value in values.items():
        line = lines[line_id]
        old = None if line.counted is None else stock.q3(line.counted)
        if old != value:
            changes[str(line_id)] = [str(old), str(value)]
            line.counted = value
    session.flush()
    if changes:
        record(session, actor, "logistics_count", count.id, "enter", changes)
    return count


def differences(session: Session, count: LogisticsCount) -> list[Difference]:
    """The sheet's lines with their product, location, difference (counted − expected) and on hand now."""
    products = {
        p.id: p for p in session.scalars(select(Product).where(Product.id.in_({x.product_id for x in count.lines})))
    }
    locations = {
        loc.id: loc
        for loc in session.scalars(
            select(LogisticsLocation).where(LogisticsLocation.id.in_({x.location_id for x in count.lines}))
        )
    }
    now = {
        (row.product_id, row.location_id): stock.q3(row.on_hand)
        for row in session.scalars(
            select(LogisticsStock).where(
                LogisticsStock.warehouse_id == count.warehouse_id,
                LogisticsStock.location_id.in_(locations),
            )
        )
    }
    out = []
    for line in count.lines:
        diff = None if line.counted is None else stock.q3(line.counted) - stock.q3(line.expected)
        out.append(
            Difference(
                line,
                products[line.product_id],
                locations[line.location_id],
                diff,
                now.get((line.product_id, line.location_id), stock.ZERO),
            )
        )
    return out


def post_count(session: Session, actor: User, count_id: int) -> list[LogisticsMove]:
    """Post the differences of a fully counted sheet as ``count`` moves; returns them.

    Refused, with nothing changed: a sheet already posted (409 ``count_posted``) or
    cancelled, a line not counted (422 ``count_incomplete``), stock that moved since the
    snapshot (409 ``count_stale``), a loss larger than the free units (409
    ``count_below_reserved``). Needs ``logistics.counts.post``.
    """
    _require(actor, COUNTS_POST)
    count = get_count(session, count_id)
    session.refresh(count)
    _open(count)
    rows = differences(session, count)
    missing = [f"{d.product.sku}@{d.location.code}" for d in rows if d.difference is None]
    if missing:
        raise LogisticsError(
            "count_incomplete",
            N_("Every line must be counted before posting; not counted yet: %(lines)s."),
            lines=", ".join(missing),
        )
    stale = [f"{d.product.sku}@{d.location.code}" for d in rows if d.stale]
    if stale:
        raise LogisticsError(
            "count_stale",
            N_("The stock moved since the count sheet was made (%(lines)s); count these lines again on a new sheet."),
            status=409,
            lines=", ".join(stale),
        )
    short = []
    for d in rows:
        assert d.difference is not None
        if d.difference < stock.ZERO:
            row = stock.stock_row(session, d.product.id, d.location.id)
            free = stock.q3(row.on_hand - row.reserved)
            if -d.difference - free > stock.EPSILON:
                short.append(f"{d.product.sku}@{d.location.code} ({free})")
    if short:
        raise LogisticsError(
            "count_below_reserved",
            N_(
                "The count is below the units reserved for orders at %(lines)s (free units in brackets); "
                "release or ship those orders' units first."
            ),
            status=409,
            lines=", ".join(short),
        )
    switched = session.execute(
        update(LogisticsCount)
        .where(LogisticsCount.id == count.id, LogisticsCount.status == "counting")
        .values(status="posted", posted_by_id=actor.id, posted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(switched, "rowcount", 0):
        raise LogisticsError(
            "count_posted", N_("Stock count %(number)s is already posted."), status=409, number=count.number
        )
    moves = []
    for d in rows:
        assert d.difference is not None
        if d.difference == stock.ZERO:
            continue
        moves.append(
            stock.post_move(
                session,
                actor,
                kind="count",
                product_id=d.product.id,
                location_id=d.location.id,
                quantity=d.difference,
                count_id=count.id,
                reference=count.number,
            )
        )
    session.refresh(count)
    record(
        session,
        actor,
        "logistics_count",
        count.id,
        "post",
        {d.product.sku + "@" + d.location.code: str(d.difference) for d in rows if d.difference},
    )
    gained = {d.product.id for d in rows if d.difference and d.difference > 0 and not d.location.blocked}
    if gained:
        stock.reserve_backorders(session, gained, actor)
    return moves


def cancel_count(session: Session, actor: User, count_id: int, reason: str = "") -> LogisticsCount:
    """Drop a sheet still being counted (nothing is posted). Needs ``logistics.counts.manage``."""
    _require(actor, COUNTS_MANAGE)
    count = get_count(session, count_id)
    _open(count)
    count.status = "cancelled"
    session.flush()
    record(session, actor, "logistics_count", count.id, "cancel", {"number": count.number}, reason=reason[:1000])
    return count

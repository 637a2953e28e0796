"""Stock on hand, stock moves and reservations: the only code that changes ``logistics_stock``.

Every change is a conditional ``UPDATE`` inside the caller's transaction — "add this
many to reserved where free stock still covers it" — so two transactions reserving
the last units never both succeed (PostgreSQL re-checks the condition after the row
lock; SQLite holds the write lock), and the table's check constraints make a negative
stock impossible even for code that forgets. A move row is written with every change
of ``on_hand``, so the ledger of moves always sums to the stock on hand (LG-2).

Quantities carry three decimals; comparisons allow half of the smallest unit
(:data:`EPSILON`) because SQLite stores them as binary floating point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import Update, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import Order, OrderLine, Product, User
from core.security.scopes import order_scope
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    MOVE_KINDS,
    LogisticsLocation,
    LogisticsMove,
    LogisticsOrder,
    LogisticsReservation,
    LogisticsReturn,
    LogisticsShipment,
    LogisticsStock,
    LogisticsWarehouse,
)

#: Half of the smallest quantity (0.001): the tolerance of every stock comparison.
EPSILON = Decimal("0.0005")
_PLACES = Decimal("0.001")
ZERO = Decimal("0")
#: Order statuses in which an order holds or wants stock.
OPEN_STATUSES = ("confirmed",)


def q3(value: Decimal | float | int | None) -> Decimal:
    """``value`` as a quantity with three decimals (``None`` is zero)."""
    return Decimal(str(value or 0)).quantize(_PLACES)


# --- stock rows and moves ----------------------------------------------------------------


def _changed(session: Session, statement: Update) -> int:
    """Run a conditional ``UPDATE``; the number of rows it changed (0: its condition failed)."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0))


def stock_row(session: Session, product_id: int, location_id: int) -> LogisticsStock:
    """The stock row of ``product_id`` at ``location_id``, created empty if there is none."""
    stmt = select(LogisticsStock).where(
        LogisticsStock.product_id == product_id, LogisticsStock.location_id == location_id
    )
    row = session.scalar(stmt)
    if row is not None:
        return row
    location = session.get(LogisticsLocation, location_id)
    if location is None:
        raise LogisticsError("unknown_location", N_("Location %(id)s does not exist."), id=location_id)
    try:
        with session.begin_nested():
            row = LogisticsStock(product_id=product_id, warehouse_id=location.warehouse_id, location_id=location_id)
            session.add(row)
    except IntegrityError:  # another transaction created it first
        row = session.scalar(stmt)
        assert row is not None
    return row


def post_move(
    session: Session,
    actor: User | None,
    *,
    kind: str,
    product_id: int,
    location_id: int,
    quantity: Decimal,
    order_id: int | None = None,
    order_line_id: int | None = None,
    shipment_id: int | None = None,
    count_id: int | None = None,
    return_id: int | None = None,
    reference: str = "",
    note: str = "",
) -> LogisticsMove:
    """Add ``quantity`` (negative: remove) to the free stock at a location and record the move.

    Removing never touches reserved units: taking more than the free stock is refused
    (409) and nothing changes. Shipments use :func:`issue_reserved` instead.
    """
    quantity = q3(quantity)
    if kind not in MOVE_KINDS:
        raise LogisticsError("unknown_move_kind", N_("There is no kind of stock move “%(kind)s”."), kind=kind)
    if quantity == ZERO:
        raise LogisticsError("zero_quantity", N_("A stock move needs a quantity other than zero."))
    row = stock_row(session, product_id, location_id)
    done = _changed(
        session,
        update(LogisticsStock)
        .where(
            LogisticsStock.id == row.id,
            LogisticsStock.on_hand - LogisticsStock.reserved + quantity > -EPSILON,
        )
        .values(on_hand=LogisticsStock.on_hand + quantity),
    )
    if not done:
        session.refresh(row)
        raise LogisticsError(
            "insufficient_stock",
            N_("Only %(free)s are free at this location; %(wanted)s cannot be taken."),
            status=409,
            free=q3(row.on_hand - row.reserved),
            wanted=-quantity,
        )
    move = LogisticsMove(
        kind=kind,
        product_id=product_id,
        warehouse_id=row.warehouse_id,
        location_id=location_id,
        quantity=quantity,
        order_id=order_id,
        order_line_id=order_line_id,
        shipment_id=shipment_id,
        count_id=count_id,
        return_id=return_id,
        reference=reference,
        note=note,
        actor_id=actor.id if actor is not None else None,
    )
    session.add(move)
    session.flush()
    session.expire(row)
    return move


def issue_reserved(
    session: Session,
    actor: User | None,
    reservation: LogisticsReservation,
    quantity: Decimal,
    *,
    shipment_id: int,
    reference: str = "",
) -> LogisticsMove:
    """Ship ``quantity`` of a reservation: on hand and reserved both go down; a move records it.

    Shipping more than is reserved is refused (409) and nothing changes.
    """
    quantity = q3(quantity)
    if quantity <= ZERO:
        raise LogisticsError("zero_quantity", N_("A stock move needs a quantity other than zero."))
    taken = _changed(
        session,
        update(LogisticsReservation)
        .where(LogisticsReservation.id == reservation.id, LogisticsReservation.quantity - quantity > -EPSILON)
        .values(quantity=LogisticsReservation.quantity - quantity),
    )
    if not taken:
        session.refresh(reservation)
        raise LogisticsError(
            "over_reserved",
            N_("Only %(reserved)s are reserved for this line; %(wanted)s cannot be shipped."),
            status=409,
            reserved=q3(reservation.quantity),
            wanted=quantity,
        )
    session.execute(
        update(LogisticsStock)
        .where(LogisticsStock.id == reservation.stock_id)
        .values(on_hand=LogisticsStock.on_hand - quantity, reserved=LogisticsStock.reserved - quantity)
        .execution_options(synchronize_session=False)
    )
    move = LogisticsMove(
        kind="shipment",
        product_id=reservation.product_id,
        warehouse_id=session.get(LogisticsLocation, reservation.location_id).warehouse_id,  # type: ignore[union-attr]
        location_id=reservation.location_id,
        quantity=-quantity,
        order_id=reservation.order_id,
        order_line_id=reservation.order_line_id,
        shipment_id=shipment_id,
        reference=reference,
        actor_id=actor.id if actor is not None else None,
    )
    session.add(move)
    session.flush()
    session.expire(reservation)
    return move


# --- reading -------------------------------------------------------------------------------


def free_quantity(session: Session, product_id: int, warehouse_id: int | None = None) -> Decimal:
    """Units of ``product_id`` on hand and not reserved, at sellable locations (one warehouse or all)."""
    stmt = (
        select(func.coalesce(func.sum(LogisticsStock.on_hand - LogisticsStock.reserved), 0))
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .where(LogisticsStock.product_id == product_id, LogisticsLocation.blocked.is_(False))
    )
    if warehouse_id is not None:
        stmt = stmt.where(LogisticsStock.warehouse_id == warehouse_id)
    return q3(session.scalar(stmt))


def shipped_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Quantity shipped per order line id (shipment moves of the order; missing lines: none)."""
    rows = session.execute(
        select(LogisticsMove.order_line_id, func.sum(LogisticsMove.quantity))
        .where(LogisticsMove.order_id == order_id, LogisticsMove.kind == "shipment")
        .group_by(LogisticsMove.order_line_id)
    )
    return {line_id: q3(-total) for line_id, total in rows if line_id is not None}


def reserved_quantities(session: Session, order_id: int) -> dict[int, Decimal]:
    """Quantity still reserved per order line id."""
    rows = session.execute(
        select(LogisticsReservation.order_line_id, func.sum(LogisticsReservation.quantity))
        .where(LogisticsReservation.order_id == order_id)
        .group_by(LogisticsReservation.order_line_id)
    )
    return {line_id: q3(total) for line_id, total in rows}


def backorder_quantities(session: Session, order: Order) -> dict[int, Decimal]:
    """Per line, what is neither shipped nor reserved (only lines with a shortfall; LG-2)."""
    facts = session.get(LogisticsOrder, order.id)
    if order.status not in OPEN_STATUSES or (facts is not None and facts.backorder_closed_at is not None):
        return {}
    shipped = shipped_quantities(session, order.id)
    reserved = reserved_quantities(session, order.id)
    short = {}
    for line in order.lines:
        missing = q3(line.quantity) - shipped.get(line.id, ZERO) - reserved.get(line.id, ZERO)
        if missing > ZERO:
            short[line.id] = missing
    return short


# --- orders --------------------------------------------------------------------------------


def default_warehouse(session: Session) -> LogisticsWarehouse | None:
    """The warehouse orders reserve from: the active default one, else the first active one."""
    stmt = (
        select(LogisticsWarehouse)
        .where(LogisticsWarehouse.active.is_(True))
        .order_by(LogisticsWarehouse.is_default.desc(), LogisticsWarehouse.id)
        .limit(1)
    )
    return session.scalar(stmt)


def prepare_order(session: Session, order: Order) -> LogisticsOrder:
    """The order's logistics facts, created on first confirmation (warehouse, remote, partial, promise)."""
    from core.settings import get_setting
    from plugins.logistics.flow import PARTIAL_DEFAULT
    from plugins.logistics.remote import is_remote

    facts = session.get(LogisticsOrder, order.id)
    if facts is None:
        facts = LogisticsOrder(
            order_id=order.id,
            allow_partial=bool(get_setting(session, PARTIAL_DEFAULT)),
            promised_date=order.requested_date,
        )
        session.add(facts)
    if facts.warehouse_id is None:  # new, or confirmed before any warehouse existed
        warehouse = default_warehouse(session)
        facts.warehouse_id = warehouse.id if warehouse else None
    facts.remote = is_remote(session, order)
    session.flush()
    return facts


def _sellable_rows(session: Session, product_id: int, warehouse_id: int | None) -> list[LogisticsStock]:
    stmt = (
        select(LogisticsStock)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .where(
            LogisticsStock.product_id == product_id,
            LogisticsLocation.blocked.is_(False),
            LogisticsLocation.active.is_(True),
            LogisticsStock.on_hand - LogisticsStock.reserved > EPSILON,
        )
        .order_by(LogisticsLocation.sequence, LogisticsLocation.id)
    )
    if warehouse_id is not None:
        stmt = stmt.where(LogisticsStock.warehouse_id == warehouse_id)
    return list(session.scalars(stmt))


def _take(session: Session, row: LogisticsStock, wanted: Decimal) -> Decimal:
    """Reserve up to ``wanted`` of ``row``'s free units atomically; returns what was taken.

    On PostgreSQL the row is read ``FOR UPDATE``: it stays locked to this transaction, so
    a concurrent reservation waits for it to end and then sees what is left (on SQLite
    the write lock serialises reservations already). The conditional UPDATE guards the
    free quantity either way.
    """
    for _ in range(5):
        session.refresh(row, with_for_update=True)
        free = q3(row.on_hand - row.reserved)
        take = min(free, wanted)
        if take <= ZERO:
            return ZERO
        done = _changed(
            session,
            update(LogisticsStock)
            .where(LogisticsStock.id == row.id, LogisticsStock.on_hand - LogisticsStock.reserved - take > -EPSILON)
            .values(reserved=LogisticsStock.reserved + take),
        )
        if done:
            return take
    return ZERO  # pragma: no cover - the row kept changing under us; leave the rest short


def _hold(session: Session, line: OrderLine, row: LogisticsStock, quantity: Decimal) -> None:
    reservation = session.scalar(
        select(LogisticsReservation).where(
            LogisticsReservation.order_line_id == line.id, LogisticsReservation.stock_id == row.id
        )
    )
    if reservation is None:
        session.add(
            LogisticsReservation(
                order_id=line.order_id,
                order_line_id=line.id,
                stock_id=row.id,
                product_id=row.product_id,
                location_id=row.location_id,
                quantity=quantity,
            )
        )
    else:
        reservation.quantity = q3(reservation.quantity) + quantity


def reserve_line(session: Session, line: OrderLine, wanted: Decimal, warehouse_id: int | None) -> Decimal:
    """Reserve up to ``wanted`` of ``line``'s product, locations in picking order; returns what was reserved."""
    got = ZERO
    for row in _sellable_rows(session, line.product_id, warehouse_id):
        if got >= wanted:
            break
        taken = _take(session, row, wanted - got)
        if taken > ZERO:
            _hold(session, line, row, taken)
            got += taken
    session.flush()
    return got


def release_reservation(session: Session, reservation: LogisticsReservation, quantity: Decimal | None = None) -> None:
    """Give back ``quantity`` (all by default) of a reservation to the free stock."""
    amount = q3(reservation.quantity if quantity is None else quantity)
    amount = min(amount, q3(reservation.quantity))
    if amount <= ZERO:
        return
    session.execute(
        update(LogisticsStock)
        .where(LogisticsStock.id == reservation.stock_id)
        .values(reserved=LogisticsStock.reserved - amount)
        .execution_options(synchronize_session=False)
    )
    reservation.quantity = q3(reservation.quantity) - amount
    if reservation.quantity <= ZERO:
        session.delete(reservation)
    session.flush()


def reserve_order(session: Session, order: Order, actor: User | None = None) -> dict[int, Decimal]:
    """Bring the order's reservations to what its lines still need; returns the backorder per line.

    Need = ordered − shipped. Lines reserve from the order's warehouse, locations in
    picking order; more reserved than needed (a revision lowered a quantity) is
    released, last locations first. An order whose backorder was closed reserves nothing.
    """
    facts = session.get(LogisticsOrder, order.id)
    if facts is None or facts.warehouse_id is None:  # never prepared, or no warehouse back then
        facts = prepare_order(session, order)
    if facts.backorder_closed_at is not None:
        return {}
    shipped = shipped_quantities(session, order.id)
    # Products in one order everywhere: two orders locking the same stock rows in
    # opposite orders would deadlock on PostgreSQL.
    for line in sorted(order.lines, key=lambda line: (line.product_id, line.id)):
        need = q3(line.quantity) - shipped.get(line.id, ZERO)
        reservations = list(
            session.scalars(
                select(LogisticsReservation)
                .where(LogisticsReservation.order_line_id == line.id)
                .order_by(LogisticsReservation.id.desc())
            )
        )
        held = sum((q3(r.quantity) for r in reservations), ZERO)
        if held > need:
            excess = held - max(need, ZERO)
            for reservation in reservations:
                if excess <= ZERO:
                    break
                part = min(excess, q3(reservation.quantity))
                release_reservation(session, reservation, part)
                excess -= part
        elif held < need:
            reserve_line(session, line, need - held, facts.warehouse_id)
    session.flush()
    return backorder_quantities(session, order)


def release_order(session: Session, order: Order, actor: User | None = None) -> None:
    """Release every reservation of the order (cancelled, rejected or backorder closed)."""
    for reservation in list(
        session.scalars(select(LogisticsReservation).where(LogisticsReservation.order_id == order.id))
    ):
        release_reservation(session, reservation)


def reserve_backorders(
    session: Session, product_ids: Iterable[int] | None = None, actor: User | None = None
) -> list[int]:
    """Reserve newly free stock for waiting orders, earliest promised date first; returns their ids.

    Called after stock arrives (a receipt, a positive count difference, a restocked return).
    """
    from plugins.logistics.progress import advance

    wanted = set(product_ids) if product_ids is not None else None
    stmt = (
        select(Order)
        .join(LogisticsOrder, LogisticsOrder.order_id == Order.id)
        .where(Order.status.in_(OPEN_STATUSES), LogisticsOrder.backorder_closed_at.is_(None))
        .order_by(LogisticsOrder.promised_date.is_(None), LogisticsOrder.promised_date, Order.id)
    )
    served = []
    for order in list(session.scalars(stmt)):  # materialised: reserving writes while we walk
        short = backorder_quantities(session, order)
        if not short:
            continue
        lines = {line.id: line for line in order.lines}
        if wanted is not None and not any(lines[i].product_id in wanted for i in short):
            continue
        before = sum(short.values(), ZERO)
        after = sum(reserve_order(session, order, actor).values(), ZERO)
        if after < before:
            served.append(order.id)
            advance(session, order, actor)
    return served


def stock_by_product(session: Session, product_ids: Iterable[int]) -> dict[int, dict[str, Decimal]]:
    """On hand, reserved and free per product id (sellable locations of every warehouse)."""
    totals: dict[int, dict[str, Decimal]] = defaultdict(lambda: {"on_hand": ZERO, "reserved": ZERO, "free": ZERO})
    rows = session.execute(
        select(LogisticsStock.product_id, func.sum(LogisticsStock.on_hand), func.sum(LogisticsStock.reserved))
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .where(LogisticsStock.product_id.in_(list(product_ids)), LogisticsLocation.blocked.is_(False))
        .group_by(LogisticsStock.product_id)
    )
    for product_id, on_hand, reserved in rows:
        totals[product_id] = {"on_hand": q3(on_hand), "reserved": q3(reserved), "free": q3(on_hand - reserved)}
    return dict(totals)


# --- receipts, adjustments and transfers by staff ------------------------------------------

#: Longest reference and note a staff move keeps (the columns' sizes).
_REFERENCE_MAX = 100
_NOTE_MAX = 500


def _staff_location(session: Session, location_id: int | None) -> LogisticsLocation:
    """An active location of an active warehouse, or a 422 naming the field."""
    location = session.get(LogisticsLocation, location_id) if location_id else None
    if location is None:
        raise LogisticsError("unknown_location", N_("Choose a location."), details={"location_id": ["unknown"]})
    if not location.active or not location.warehouse.active:
        raise LogisticsError(
            "inactive_location",
            N_("Location %(location)s is not in use; choose another one."),
            details={"location_id": ["inactive"]},
            location=location.code,
        )
    return location


def _staff_product(session: Session, product_id: int | None) -> Product:
    product = session.get(Product, product_id) if product_id else None
    if product is None:
        raise LogisticsError("unknown_product", N_("Choose a product."), details={"product_id": ["unknown"]})
    return product


def _staff_text(value: str | None, limit: int, field: str) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise LogisticsError(
            "too_long",
            N_("The text is too long (at most %(limit)s characters)."),
            details={field: ["too_long"]},
            limit=limit,
        )
    return text


def _require(actor: User, permission: str) -> None:
    if not actor.can(permission):
        raise LogisticsError("forbidden", N_("You may not change stock."), status=403)


def receive_stock(
    session: Session,
    actor: User,
    product_id: int,
    location_id: int,
    quantity: Decimal,
    *,
    reference: str = "",
    note: str = "",
) -> LogisticsMove:
    """Book goods in (入库): a ``receipt`` move, audited; then waiting orders reserve the new stock.

    Needs ``logistics.stock.manage``. The quantity must be above zero; the location
    active. Backorders of the product are served earliest promised date first
    (:func:`reserve_backorders`).
    """
    from core.services.audit import record
    from plugins.logistics.flow import STOCK_MANAGE

    _require(actor, STOCK_MANAGE)
    product = _staff_product(session, product_id)
    location = _staff_location(session, location_id)
    amount = q3(quantity)
    if amount <= ZERO:
        raise LogisticsError(
            "quantity_not_positive", N_("The quantity received must be above zero."), details={"quantity": ["min"]}
        )
    reference = _staff_text(reference, _REFERENCE_MAX, "reference")
    note = _staff_text(note, _NOTE_MAX, "note")
    move = post_move(
        session,
        actor,
        kind="receipt",
        product_id=product.id,
        location_id=location.id,
        quantity=amount,
        reference=reference,
        note=note,
    )
    record(
        session,
        actor,
        "logistics_move",
        move.id,
        "receipt",
        {"product": product.sku, "location": location.code, "quantity": str(amount), "reference": reference},
    )
    reserve_backorders(session, [product.id], actor)
    return move


def adjust_stock(
    session: Session, actor: User, product_id: int, location_id: int, quantity: Decimal, *, reason: str
) -> LogisticsMove:
    """Correct the stock at a location by ``quantity`` (± ; 库存调整) with a required reason.

    Needs ``logistics.stock.manage``. Taking away more than the free (unreserved) units
    is refused (409) and nothing changes; an increase serves waiting orders.
    """
    from core.services.audit import record
    from plugins.logistics.flow import STOCK_MANAGE

    _require(actor, STOCK_MANAGE)
    product = _staff_product(session, product_id)
    location = _staff_location(session, location_id)
    amount = q3(quantity)
    if amount == ZERO:
        raise LogisticsError(
            "zero_quantity", N_("An adjustment needs a quantity other than zero."), details={"quantity": ["zero"]}
        )
    reason = _staff_text(reason, _NOTE_MAX, "reason")
    if not reason:
        raise LogisticsError(
            "reason_required", N_("Give the reason for the adjustment."), details={"reason": ["required"]}
        )
    move = post_move(
        session,
        actor,
        kind="adjustment",
        product_id=product.id,
        location_id=location.id,
        quantity=amount,
        note=reason,
    )
    record(
        session,
        actor,
        "logistics_move",
        move.id,
        "adjust",
        {"product": product.sku, "location": location.code, "quantity": str(amount)},
        reason=reason,
    )
    if amount > ZERO:
        reserve_backorders(session, [product.id], actor)
    return move


def transfer_stock(
    session: Session,
    actor: User,
    product_id: int,
    from_location_id: int,
    to_location_id: int,
    quantity: Decimal,
    *,
    note: str = "",
) -> tuple[LogisticsMove, LogisticsMove]:
    """Move free units from one location to another (移库): two ``transfer`` moves, out and in.

    Needs ``logistics.stock.manage``; only free units move (409 otherwise). Moving into a
    sellable location serves waiting orders.
    """
    from core.services.audit import record
    from plugins.logistics.flow import STOCK_MANAGE

    _require(actor, STOCK_MANAGE)
    product = _staff_product(session, product_id)
    source = _staff_location(session, from_location_id)
    target = _staff_location(session, to_location_id)
    if source.id == target.id:
        raise LogisticsError(
            "same_location", N_("Choose two different locations."), details={"to_location_id": ["same"]}
        )
    amount = q3(quantity)
    if amount <= ZERO:
        raise LogisticsError(
            "quantity_not_positive", N_("The quantity moved must be above zero."), details={"quantity": ["min"]}
        )
    note = _staff_text(note, _NOTE_MAX, "note")
    out = post_move(
        session, actor, kind="transfer", product_id=product.id, location_id=source.id, quantity=-amount, note=note
    )
    into = post_move(
        session, actor, kind="transfer", product_id=product.id, location_id=target.id, quantity=amount, note=note
    )
    record(
        session,
        actor,
        "logistics_move",
        into.id,
        "transfer",
        {"product": product.sku, "from": source.code, "to": target.code, "quantity": str(amount)},
    )
    if not target.blocked:
        reserve_backorders(session, [product.id], actor)
    return out, into


def on_hand_at(session: Session, product_id: int, location_id: int) -> Decimal:
    """Units of ``product_id`` on hand at ``location_id`` (zero without a stock row)."""
    value = session.scalar(
        select(LogisticsStock.on_hand).where(
            LogisticsStock.product_id == product_id, LogisticsStock.location_id == location_id
        )
    )
    return q3(value)


def ledger_total(session: Session, product_id: int, location_id: int | None = None) -> Decimal:
    """The sum of the moves of ``product_id`` (at one location or all): equals the stock on hand."""
    stmt = select(func.coalesce(func.sum(LogisticsMove.quantity), 0)).where(LogisticsMove.product_id == product_id)
    if location_id is not None:
        stmt = stmt.where(LogisticsMove.location_id == location_id)
    return q3(session.scalar(stmt))


def moves_outside_scope(session: Session, user: User | None, moves: Iterable[LogisticsMove]) -> set[int]:
    """Ids of the ``moves`` that belong to an order ``user`` may not see — through the move
    itself, its shipment or its return.

    The stock ledger is shared: its quantities stay for everyone who may read stock (stock
    on hand must add up), but what such a move refers to — the order, shipment or return and
    the free-text reference naming them — is shown to nobody outside the order's scope.
    """
    moves = list(moves)
    shipments = {m.shipment_id for m in moves if m.shipment_id}
    returns = {m.return_id for m in moves if m.return_id}
    by_shipment = (
        dict(
            session.execute(
                select(LogisticsShipment.id, LogisticsShipment.order_id).where(LogisticsShipment.id.in_(shipments))
            )
            .tuples()
            .all()
        )
        if shipments
        else {}
    )
    by_return = (
        dict(
            session.execute(select(LogisticsReturn.id, LogisticsReturn.order_id).where(LogisticsReturn.id.in_(returns)))
            .tuples()
            .all()
        )
        if returns
        else {}
    )
    owner = {m.id: m.order_id or by_shipment.get(m.shipment_id or 0) or by_return.get(m.return_id or 0) for m in moves}
    orders = {order_id for order_id in owner.values() if order_id}
    if not orders:
        return set()
    visible = set(session.scalars(select(Order.id).where(Order.id.in_(orders), order_scope(user))))
    return {move_id for move_id, order_id in owner.items() if order_id and order_id not in visible}

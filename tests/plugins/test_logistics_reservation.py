"""Reservation on confirmation, backorders and release on cancellation (LG-2, CORE-2)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.logistics import stock
from plugins.logistics.models import (
    LogisticsLocation,
    LogisticsMove,
    LogisticsOrder,
    LogisticsReservation,
    LogisticsStock,
    LogisticsWarehouse,
)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    """A default warehouse with two locations, A-01 walked before B-01."""
    hq = seed["hq"]
    wh = LogisticsWarehouse(company_id=hq.company_id, code="WH1", name="重庆总仓", province="重庆市", is_default=True)
    wh.locations = [LogisticsLocation(code="B-01", sequence=2), LogisticsLocation(code="A-01", sequence=1)]
    session.add(wh)
    session.commit()
    return wh


def _location(wh: LogisticsWarehouse, code: str) -> LogisticsLocation:
    return next(loc for loc in wh.locations if loc.code == code)


def _receive(session: Session, actor: User, product_id: int, location: LogisticsLocation, qty: str) -> None:
    stock.post_move(
        session, actor, kind="receipt", product_id=product_id, location_id=location.id, quantity=Decimal(qty)
    )
    session.commit()


def _confirm(session: Session, registry: Registry, actor: User, order: Order) -> None:
    take_action(session, registry, actor, order, "submit")
    take_action(session, registry, actor, order, "confirm")
    session.commit()


@pytest.mark.req("LG-2")
def test_confirmation_reserves_in_picking_order_and_short_lines_become_backorders(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    p100, _p200, p300 = seed["products"]
    _receive(session, admin, p100.id, _location(warehouse, "B-01"), "5")
    _receive(session, admin, p100.id, _location(warehouse, "A-01"), "1")
    _receive(session, admin, p300.id, _location(warehouse, "A-01"), "40")
    order = make_order(session, admin)  # 2 × P-100, 100 × P-300
    _confirm(session, state.registry, admin, order)

    assert order.step == "logistics.outbound_check"
    lines = {line.product_id: line.id for line in order.lines}
    assert stock.reserved_quantities(session, order.id) == {
        lines[p100.id]: Decimal("2.000"),
        lines[p300.id]: Decimal("40.000"),
    }
    assert stock.backorder_quantities(session, order) == {lines[p300.id]: Decimal("60.000")}
    a01 = session.scalar(
        select(LogisticsStock).where(
            LogisticsStock.location_id == _location(warehouse, "A-01").id, LogisticsStock.product_id == p100.id
        )
    )
    assert a01 is not None and a01.reserved == Decimal("1")  # A-01 is walked first


@pytest.mark.req("LG-2")
def test_cancelling_releases_and_the_ledger_sums_to_stock(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    p100 = seed["products"][0]
    _receive(session, admin, p100.id, _location(warehouse, "A-01"), "3")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}])
    _confirm(session, state.registry, admin, order)
    assert stock.free_quantity(session, p100.id) == Decimal("1.000")
    take_action(session, state.registry, admin, order, "cancel", reason="customer withdrew")
    session.commit()
    assert stock.free_quantity(session, p100.id) == Decimal("3.000")
    ledger = session.scalar(select(func.sum(LogisticsMove.quantity)).where(LogisticsMove.product_id == p100.id))
    assert Decimal(str(ledger)) == Decimal("3")


@pytest.mark.req("LG-2")
def test_release_to_shipping_needs_stock_and_a_complete_address(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}])
    _confirm(session, state.registry, admin, order)
    with pytest.raises(Exception) as refused:
        take_action(session, state.registry, admin, order, "release")
    assert "No stock is reserved for this order yet." in str(refused.value.details)  # type: ignore[attr-defined]
    session.rollback()
    _receive(session, admin, seed["products"][0].id, _location(warehouse, "A-01"), "2")
    stock.reserve_backorders(session)
    session.commit()
    take_action(session, state.registry, admin, order, "release")
    session.commit()
    assert order.step == "logistics.shipping"


def test_taking_more_than_free_stock_is_refused_and_changes_nothing(
    session: Session, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    p100 = seed["products"][0]
    loc = _location(warehouse, "A-01")
    _receive(session, admin, p100.id, loc, "2")
    with pytest.raises(Exception) as refused:
        stock.post_move(
            session, admin, kind="adjustment", product_id=p100.id, location_id=loc.id, quantity=Decimal("-3")
        )
    assert getattr(refused.value, "code", "") == "insufficient_stock"
    session.rollback()
    assert stock.free_quantity(session, p100.id) == Decimal("2.000")


def test_the_warehouse_role_reads_stock(session: Session, seed: dict[str, Any]) -> None:
    assert make_user(session, "wh@example.com", ["warehouse"]).can("logistics.stock.read")


@pytest.mark.req("LG-2")
def test_a_lowered_quantity_gives_back_the_excess_last_location_first(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    p100 = seed["products"][0]
    _receive(session, admin, p100.id, _location(warehouse, "A-01"), "2")
    _receive(session, admin, p100.id, _location(warehouse, "B-01"), "3")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "4"}])
    _confirm(session, state.registry, admin, order)
    order.lines[0].quantity = Decimal("1")  # as a change request would
    stock.reserve_order(session, order, admin)
    session.commit()
    assert stock.reserved_quantities(session, order.id) == {order.lines[0].id: Decimal("1.000")}
    held = {
        r.location_id: r.quantity
        for r in session.scalars(select(LogisticsReservation).where(LogisticsReservation.order_id == order.id))
    }
    assert held == {_location(warehouse, "A-01").id: Decimal("1")}  # B-01 (walked last) released first
    assert stock.free_quantity(session, p100.id) == Decimal("4.000")


@pytest.mark.req("LG-2")
def test_backorders_are_served_by_promised_date_and_a_closed_backorder_waits_for_nothing(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    import datetime as dt

    p100 = seed["products"][0]
    first = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}], requested_date="2026-12-20")
    second = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}], requested_date="2026-12-05")
    closed = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}], requested_date="2026-11-01")
    for order in (first, second, closed):
        _confirm(session, state.registry, admin, order)
    facts = session.get(LogisticsOrder, closed.id)
    assert facts is not None
    facts.backorder_closed_at = dt.datetime.now(dt.UTC)
    session.commit()
    _receive(session, admin, p100.id, _location(warehouse, "A-01"), "3")
    served = stock.reserve_backorders(session, [p100.id], admin)
    session.commit()
    assert served == [second.id, first.id]
    assert stock.backorder_quantities(session, second) == {}
    assert stock.backorder_quantities(session, first) == {first.lines[0].id: Decimal("1.000")}
    assert stock.reserved_quantities(session, closed.id) == {}

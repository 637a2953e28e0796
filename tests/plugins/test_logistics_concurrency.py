"""Reservation under concurrency (LG-2): many threads reserving the last units.

Each thread works in its own session on the app's file SQLite database, as concurrent
requests do. However the threads interleave, the units reserved never exceed the
units on hand, no stock row goes negative, no unit is reserved twice (the reservations
add up exactly to each stock row's ``reserved``), the losers are left short
(backorders) and the ledger of moves still sums to the stock on hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from logistics_helpers import location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.models import Order, OrderLine, User
from core.services.orders import take_action
from core.testing import make_order
from plugins.logistics import stock
from plugins.logistics.models import LogisticsMove, LogisticsReservation, LogisticsStock


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


def _run(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``threads`` threads released together; the errors they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool), "a thread hung"
    return errors


def _assert_consistent(session: Session, product_id: int, on_hand: Decimal) -> Decimal:
    """Check the invariants; returns the units reserved in total."""
    session.rollback()  # a fresh snapshot of what the threads committed
    session.expire_all()
    rows = list(session.scalars(select(LogisticsStock).where(LogisticsStock.product_id == product_id)))
    for row in rows:
        assert row.on_hand >= 0 and row.reserved >= 0 and row.reserved <= row.on_hand + stock.EPSILON
        held = session.scalar(
            select(func.coalesce(func.sum(LogisticsReservation.quantity), 0)).where(
                LogisticsReservation.stock_id == row.id
            )
        )
        assert stock.q3(held) == stock.q3(row.reserved)  # every reserved unit belongs to exactly one line
    total_on_hand = sum((stock.q3(r.on_hand) for r in rows), stock.ZERO)
    assert total_on_hand == on_hand
    ledger = session.scalar(select(func.sum(LogisticsMove.quantity)).where(LogisticsMove.product_id == product_id))
    assert stock.q3(ledger) == on_hand
    return sum((stock.q3(r.reserved) for r in rows), stock.ZERO)


@pytest.mark.req("LG-2")
@pytest.mark.parametrize("threads", [2, 8, 32, 64])
def test_concurrent_confirmations_never_take_the_same_units_twice(
    threads: int, app: Flask, session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    p100 = seed["products"][0]
    wh = make_warehouse(session, seed["hq"].company_id)
    # threads orders of 2 units each compete for threads + 1 units on two locations.
    receive(session, admin, p100, location(wh, "A-01"), threads // 2)
    receive(session, admin, p100, location(wh, "B-01"), threads - threads // 2 + 1)
    on_hand = Decimal(threads + 1)
    orders = []
    for _ in range(threads):
        order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}])
        take_action(session, state.registry, admin, order, "submit")
        session.commit()
        orders.append(order.id)

    def confirm_one(i: int) -> None:
        with app.app_context(), state.sessions() as own:
            actor = own.get(User, admin.id)
            order = own.get(Order, orders[i])
            assert actor is not None and order is not None
            take_action(own, state.registry, actor, order, "confirm")
            own.commit()

    assert _run(threads, confirm_one) == []
    reserved = _assert_consistent(session, p100.id, on_hand)
    assert reserved == on_hand  # every unit went to some order, none twice
    short = Decimal(0)
    for order_id in orders:
        order = session.get(Order, order_id)
        assert order is not None
        assert order.status == "confirmed"
        short += sum(stock.backorder_quantities(session, order).values(), stock.ZERO)
    assert short == Decimal(2 * threads) - on_hand  # the losers wait as backorders


@pytest.mark.req("LG-2")
@pytest.mark.parametrize("threads", [2, 8, 32, 64])
@pytest.mark.parametrize("deferred", [False, True], ids=["immediate", "deferred"])
def test_concurrent_reserve_line_calls_share_the_last_units(
    threads: int, deferred: bool, app: Flask, session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    """``reserve_line`` straight from many sessions; deferred transactions read before they write.

    With deferred transactions a thread whose snapshot went stale is refused by the
    database (it rolls back and retries), never allowed to over-reserve.
    """
    p300 = seed["products"][2]
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, p300, location(wh, "A-01"), "5")
    receive(session, admin, p300, location(wh, "B-01"), "2.5")
    on_hand = Decimal("7.5")
    lines = []
    for _ in range(threads):
        order = make_order(session, admin, lines=[{"product": "P-300", "quantity": "1.5"}])
        lines.append(order.lines[0].id)
    got: dict[int, Decimal] = {}
    factory = state.read_sessions if deferred else state.sessions

    def reserve(i: int) -> None:
        for _attempt in range(50):
            with app.app_context(), factory() as own:
                try:
                    line = own.get(OrderLine, lines[i])
                    assert line is not None
                    taken = stock.reserve_line(own, line, Decimal("1.5"), wh.id)
                    own.commit()
                    got[i] = taken
                    return
                except OperationalError:  # SQLite refused a stale snapshot's write: nothing was written
                    own.rollback()
        raise AssertionError("no attempt got through")

    errors = _run(threads, reserve)
    assert errors == []
    reserved = _assert_consistent(session, p300.id, on_hand)
    assert sum(got.values(), stock.ZERO) == reserved
    assert reserved == min(on_hand, Decimal("1.5") * threads)
    assert all(v >= 0 for v in got.values())

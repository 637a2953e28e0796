"""Stock counts (盘点, LG-2): snapshot, counting, posting differences, refusals."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.testing import make_order, make_user
from plugins.logistics import counts, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsMove, LogisticsWarehouse


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def wh(session: Session, seed: dict[str, Any], admin: User) -> LogisticsWarehouse:
    """A warehouse with 10 × P-100 at A-01, 4 × P-100 and 50 × P-300 at B-01."""
    warehouse = make_warehouse(session, seed["hq"].company_id)
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(warehouse, "A-01"), "10")
    receive(session, admin, p100, location(warehouse, "B-01"), "4")
    receive(session, admin, p300, location(warehouse, "B-01"), "50")
    return warehouse


@pytest.fixture
def keeper(session: Session) -> User:
    return make_user(session, "keeper@example.com", ["warehouse"])


def _by_key(count: Any) -> dict[tuple[int, int], Any]:
    return {(line.product_id, line.location_id): line for line in count.lines}


@pytest.mark.req("LG-2")
def test_a_count_snapshots_the_chosen_locations_and_products(
    session: Session, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100, _p200, p300 = seed["products"]
    a01, b01 = location(wh, "A-01"), location(wh, "B-01")
    everything = counts.start_count(session, keeper, wh.id)
    assert {k: line.expected for k, line in _by_key(everything).items()} == {
        (p100.id, a01.id): Decimal("10"),
        (p100.id, b01.id): Decimal("4"),
        (p300.id, b01.id): Decimal("50"),
    }
    only_b = counts.start_count(session, keeper, wh.id, location_ids=[b01.id], product_ids=[p300.id], note="cycle")
    session.commit()
    assert set(_by_key(only_b)) == {(p300.id, b01.id)}
    assert only_b.number.startswith("PD") and only_b.number != everything.number
    with pytest.raises(LogisticsError) as nothing:
        counts.start_count(session, keeper, wh.id, location_ids=[a01.id], product_ids=[p300.id])
    assert nothing.value.code == "nothing_to_count"


@pytest.mark.req("LG-2")
def test_posting_books_counted_minus_expected_and_twice_is_refused(
    session: Session, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100, _p200, p300 = seed["products"]
    a01, b01 = location(wh, "A-01"), location(wh, "B-01")
    count = counts.start_count(session, keeper, wh.id)
    session.commit()
    lines = _by_key(count)
    counts.enter_counts(session, keeper, count.id, {lines[(p100.id, a01.id)].id: Decimal("8")})
    session.commit()
    with pytest.raises(LogisticsError) as incomplete:
        counts.post_count(session, keeper, count.id)
    assert incomplete.value.code == "count_incomplete" and "P-300@B-01" in incomplete.value.message
    session.rollback()
    with pytest.raises(LogisticsError) as negative:
        counts.enter_counts(session, keeper, count.id, {lines[(p100.id, b01.id)].id: "-1"})
    assert negative.value.code == "negative_count"
    session.rollback()
    counts.enter_counts(
        session, keeper, count.id, {lines[(p100.id, b01.id)].id: "4", lines[(p300.id, b01.id)].id: "52.5"}
    )
    moves = counts.post_count(session, keeper, count.id)
    session.commit()
    assert sorted((m.product_id, m.location_id, m.quantity) for m in moves) == sorted(
        [(p100.id, a01.id, Decimal("-2")), (p300.id, b01.id, Decimal("2.5"))]
    )
    assert all(m.kind == "count" and m.count_id == count.id for m in moves)
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("8.000")
    assert stock.on_hand_at(session, p300.id, b01.id) == Decimal("52.500")
    assert stock.ledger_total(session, p300.id) == Decimal("52.500")
    with pytest.raises(LogisticsError) as twice:
        counts.post_count(session, keeper, count.id)
    assert (twice.value.code, twice.value.status) == ("count_posted", 409)
    session.rollback()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("8.000")
    assert len(list(session.scalars(select(LogisticsMove).where(LogisticsMove.kind == "count")))) == 2
    with pytest.raises(LogisticsError) as closed:
        counts.enter_counts(session, keeper, count.id, {lines[(p100.id, a01.id)].id: "1"})
    assert closed.value.code == "count_posted"


@pytest.mark.req("LG-2")
def test_stock_that_moved_since_the_snapshot_is_refused_with_the_lines(
    session: Session, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    a01 = location(wh, "A-01")
    count = counts.start_count(session, keeper, wh.id, product_ids=[p100.id])
    session.commit()
    counts.enter_counts(session, keeper, count.id, {line.id: line.expected for line in count.lines})
    session.commit()
    receive(session, admin, p100, a01, "3")  # goods arrive while counting
    with pytest.raises(LogisticsError) as stale:
        counts.post_count(session, keeper, count.id)
    assert (stale.value.code, stale.value.status) == ("count_stale", 409)
    assert "P-100@A-01" in stale.value.message and "P-100@B-01" not in stale.value.message
    session.rollback()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("13.000")
    session.refresh(count)
    assert count.status == "counting"
    counts.cancel_count(session, keeper, count.id, "stock moved")
    session.commit()
    with pytest.raises(LogisticsError) as cancelled:
        counts.post_count(session, keeper, count.id)
    assert cancelled.value.code == "count_closed"


@pytest.mark.req("LG-2")
def test_a_count_below_the_reserved_units_is_refused(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    a01 = location(wh, "A-01")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "9"}])
    confirm(session, state.registry, admin, order)  # 9 reserved at A-01 (walked first)
    count = counts.start_count(session, keeper, wh.id, location_ids=[a01.id])
    session.commit()
    counts.enter_counts(session, keeper, count.id, {count.lines[0].id: "7"})
    with pytest.raises(LogisticsError) as refused:
        counts.post_count(session, keeper, count.id)
    assert refused.value.code == "count_below_reserved" and "P-100@A-01 (1.000)" in refused.value.message
    session.rollback()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("10.000")
    counts.enter_counts(session, keeper, count.id, {count.lines[0].id: "9"})
    counts.post_count(session, keeper, count.id)
    session.commit()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("9.000")


@pytest.mark.req("LG-2")
def test_a_count_gain_serves_waiting_orders(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "16"}])
    confirm(session, state.registry, admin, order)
    assert stock.backorder_quantities(session, order) == {order.lines[0].id: Decimal("2.000")}
    count = counts.start_count(session, keeper, wh.id, location_ids=[location(wh, "A-01").id])
    session.commit()
    counts.enter_counts(session, keeper, count.id, {count.lines[0].id: "12"})
    counts.post_count(session, keeper, count.id)
    session.commit()
    assert stock.backorder_quantities(session, order) == {}


def test_posting_needs_the_post_permission(
    session: Session, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    count = counts.start_count(session, keeper, wh.id)
    session.commit()
    counter = make_user(session, "sales@example.com", ["sales"])
    with pytest.raises(LogisticsError) as forbidden:
        counts.post_count(session, counter, count.id)
    assert forbidden.value.status == 403
    with pytest.raises(LogisticsError):
        counts.start_count(session, counter, wh.id)

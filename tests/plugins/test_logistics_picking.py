"""Picking lists (拣货单, LG-6): one or several orders' shipments, rows sorted by location, the
standard picking time from the settings, the pick confirmation with actual quantities (short
picks recorded, the rest stays reserved), a second confirmation refused, and packing/shipping
what was picked."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Branch, Order, User
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.logistics import flow, shipping, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsWarehouse
from tests.plugins.logistics_helpers import confirm, location, make_warehouse, receive


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    """Locations walked C-01, A-01, B-01 (sequence, not code order)."""
    wh = make_warehouse(session, seed["hq"].company_id, locations=("C-01", "A-01", "B-01"))
    return wh


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])


def released(session: Session, state: Any, admin: User, clerk: User, lines: list[dict[str, str]]) -> Order:
    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = session.scalar(select(User).where(User.email == "sales-hq@example.com")) or make_user(
        session, "sales-hq@example.com", ["sales"], branch=hq
    )
    order = make_order(session, sales, lines=lines)
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, clerk, order, "release")
    session.commit()
    return order


@pytest.fixture
def two_orders(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> tuple[Order, Order]:
    p100, p200, p300 = seed["products"]
    receive(session, admin, p300, location(warehouse, "B-01"), "100")
    receive(session, admin, p100, location(warehouse, "A-01"), "5")
    receive(session, admin, p200, location(warehouse, "C-01"), "2")
    first = released(
        session, state, admin, clerk, [{"product": "P-300", "quantity": "30"}, {"product": "P-100", "quantity": "2"}]
    )
    second = released(
        session, state, admin, clerk, [{"product": "P-100", "quantity": "1"}, {"product": "P-200", "quantity": "1"}]
    )
    return first, second


@pytest.mark.req("LG-6")
def test_a_picking_list_for_two_orders_is_sorted_by_location_with_the_standard_time(
    session: Session, clerk: User, two_orders: tuple[Order, Order]
) -> None:
    set_setting(session, flow.PICK_MINUTES_PER_LINE, 1.5)
    set_setting(session, flow.PICK_MINUTES_PER_UNIT, 0.1)
    first, second = (shipping.plan_shipment(session, clerk, order) for order in two_orders)
    pick_list = shipping.create_pick_list(session, clerk, [first.id, second.id])
    session.commit()
    assert pick_list.number.startswith("PCK") and {first.status, second.status} == {"picking"}
    rows = shipping.pick_rows(session, pick_list)
    assert [(r.location.code, r.product.sku) for r in rows] == [
        ("C-01", "P-200"),
        ("A-01", "P-100"),
        ("A-01", "P-100"),
        ("B-01", "P-300"),
    ]
    # 4 lines × 1.5 + 34 units × 0.1
    assert pick_list.estimated_minutes == Decimal("9.40")


@pytest.mark.req("LG-6")
def test_a_short_pick_is_recorded_the_rest_stays_reserved_and_a_second_confirmation_is_refused(
    session: Session, seed: dict[str, Any], clerk: User, two_orders: tuple[Order, Order]
) -> None:
    order = two_orders[0]
    shipment = shipping.plan_shipment(session, clerk, order)
    pick_list = shipping.create_pick_list(session, clerk, [shipment.id])
    session.commit()
    cable = next(line for line in shipment.lines if line.product_id == seed["products"][2].id)
    with pytest.raises(LogisticsError) as refused:
        shipping.confirm_pick(session, clerk, pick_list.id, {cable.id: Decimal("31")})
    assert refused.value.code == "pick_range"
    session.rollback()
    shipping.confirm_pick(session, clerk, pick_list.id, {cable.id: "25"})
    session.commit()
    assert pick_list.status == "confirmed" and shipment.status == "picked"
    shorts = shipping.short_picks(session, pick_list)
    assert [(r.product.sku, r.short) for r in shorts] == [("P-300", Decimal("5.000"))]
    with pytest.raises(LogisticsError) as refused:
        shipping.confirm_pick(session, clerk, pick_list.id, {})
    assert refused.value.code == "pick_confirmed" and refused.value.status == 409
    session.rollback()

    shipping.add_package(session, clerk, shipment.id, "20", "60", "40", "40")
    shipping.ship(session, clerk, shipment.id)
    session.commit()
    line_id = cable.order_line_id
    assert stock.shipped_quantities(session, order.id)[line_id] == Decimal("25")
    still = {k: v for k, v in stock.reserved_quantities(session, order.id).items() if v > 0}
    assert still == {line_id: Decimal("5.000")}  # the short remainder stays reserved
    again = shipping.plan_shipment(session, clerk, order)
    assert [(ln.order_line_id, ln.quantity) for ln in again.lines] == [(line_id, Decimal("5"))]


def test_only_planned_shipments_of_one_warehouse_go_on_a_picking_list(
    session: Session, seed: dict[str, Any], clerk: User, two_orders: tuple[Order, Order]
) -> None:
    shipment = shipping.plan_shipment(session, clerk, two_orders[0])
    shipping.create_pick_list(session, clerk, [shipment.id])
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        shipping.create_pick_list(session, clerk, [shipment.id])
    assert refused.value.code == "not_planned"
    session.rollback()
    with pytest.raises(LogisticsError) as refused:
        shipping.create_pick_list(session, clerk, [])
    assert refused.value.code == "no_shipments"
    session.rollback()
    with pytest.raises(LogisticsError) as refused:  # picking in progress: confirm first
        shipping.ship(session, clerk, shipment.id)
    assert refused.value.code == "pick_first"

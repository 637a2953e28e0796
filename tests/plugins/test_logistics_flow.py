"""Logistics' steps in the order's flow (CORE-2): the full path, and each step switched off.

Confirmation → outbound check (出库审核) → shipping → receipt → core's *confirmed* →
completed; with a step disabled the order goes straight past it, and with the outbound
check off the goods are ready (for ageing) from confirmation.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.installation import set_step_enabled
from core.models import Order, User
from core.services.orders import take_action
from core.testing import PASSWORD, login, make_order, make_user
from plugins.logistics import delivery, flow, shipping, stock
from plugins.logistics.models import LogisticsOrder, LogisticsShipment, LogisticsWarehouse

LOGISTICS_STEPS = (flow.OUTBOUND_CHECK, flow.SHIPPING, flow.RECEIPT)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any], admin: User) -> LogisticsWarehouse:
    """A warehouse with plenty of P-100 and P-300."""
    wh = make_warehouse(session, seed["hq"].company_id)
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(wh, "A-01"), "20")
    receive(session, admin, p300, location(wh, "B-01"), "500")
    return wh


@pytest.fixture
def keeper(session: Session, seed: dict[str, Any]) -> User:
    """The warehouse clerk (HQ): releases, ships and records receipts."""
    return make_user(session, "keeper@example.com", ["warehouse"], branch=seed["hq"])


@pytest.fixture
def seller(session: Session, seed: dict[str, Any]) -> User:
    """A salesperson of HQ: their orders belong to HQ, in the warehouse clerk's data scope."""
    return make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])


def disable(session: Session, state: Any, *keys: str) -> None:
    for key in keys:
        set_step_enabled(session, state.registry, key, False)
    session.commit()


def ship_everything(session: Session, actor: User, order: Order) -> LogisticsShipment:
    """Plan a shipment of everything reserved and ship it (a local order needs no carrier)."""
    shipment = shipping.plan_shipment(session, actor, order)
    shipping.ship(session, actor, shipment.id)
    session.commit()
    return shipment


def receive_all(session: Session, actor: User, order: Order) -> None:
    for shipment in list(order_shipments(session, order)):
        delivery.confirm_receipt(session, actor, shipment.id)
    session.commit()


def order_shipments(session: Session, order: Order) -> list[LogisticsShipment]:
    return list(session.scalars(select(LogisticsShipment).where(LogisticsShipment.order_id == order.id)))


@pytest.mark.req("CORE-2")
def test_the_full_path_confirm_release_ship_receive_complete(
    session: Session, state: Any, admin: User, keeper: User, seller: User, warehouse: LogisticsWarehouse
) -> None:
    order = make_order(session, seller)  # 2 × P-100, 100 × P-300, local (重庆市)
    confirm(session, state.registry, admin, order)
    facts = session.get(LogisticsOrder, order.id)
    assert order.step == flow.OUTBOUND_CHECK
    assert facts is not None and facts.ready_at is None  # not ready before the check passed
    assert sum(stock.reserved_quantities(session, order.id).values()) == Decimal("102.000")

    take_action(session, state.registry, keeper, order, "release")
    session.commit()
    assert order.step == flow.SHIPPING
    assert facts.ready_at is not None and facts.checked_by_id == keeper.id

    ship_everything(session, keeper, order)
    assert order.step == flow.RECEIPT  # everything shipped: moved on by itself
    assert all(q == 0 for q in stock.reserved_quantities(session, order.id).values())

    receive_all(session, keeper, order)
    assert (order.status, order.step) == ("confirmed", "confirmed")
    take_action(session, state.registry, admin, order, "complete")
    session.commit()
    assert order.status == "completed"
    history = [t.action for t in order.transitions]
    assert history[-4:] == ["release", "shipped", "received", "complete"]


@pytest.mark.req("CORE-2")
def test_without_the_outbound_check_the_goods_are_ready_at_confirmation(
    session: Session, state: Any, admin: User, keeper: User, seller: User, warehouse: LogisticsWarehouse
) -> None:
    disable(session, state, flow.OUTBOUND_CHECK)
    order = make_order(session, seller)
    confirm(session, state.registry, admin, order)
    facts = session.get(LogisticsOrder, order.id)
    assert order.step == flow.SHIPPING
    assert facts is not None and facts.ready_at is not None and facts.checked_at is None
    assert "release" not in [t.action for t in order.transitions]


@pytest.mark.req("CORE-2")
def test_without_shipping_the_order_waits_for_receipt_and_may_still_ship(
    session: Session, state: Any, admin: User, keeper: User, seller: User, warehouse: LogisticsWarehouse
) -> None:
    disable(session, state, flow.SHIPPING)
    order = make_order(session, seller)
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, keeper, order, "release")
    session.commit()
    assert order.step == flow.RECEIPT
    ship_everything(session, keeper, order)
    assert order.step == flow.RECEIPT  # waits for the customer
    receive_all(session, keeper, order)
    assert order.step == "confirmed"


@pytest.mark.req("CORE-2")
def test_without_receipt_the_order_is_confirmed_once_shipped(
    session: Session, state: Any, admin: User, keeper: User, seller: User, warehouse: LogisticsWarehouse
) -> None:
    disable(session, state, flow.RECEIPT)
    order = make_order(session, seller)
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, keeper, order, "release")
    session.commit()
    ship_everything(session, keeper, order)
    assert (order.status, order.step) == ("confirmed", "confirmed")
    assert [t.action for t in order.transitions][-1] == "shipped"


@pytest.mark.req("CORE-2")
def test_with_every_logistics_step_off_confirmation_goes_straight_on_and_still_reserves(
    session: Session,
    state: Any,
    admin: User,
    keeper: User,
    seller: User,
    warehouse: LogisticsWarehouse,
    seed: dict[str, Any],
) -> None:
    disable(session, state, *LOGISTICS_STEPS)
    order = make_order(session, seller)
    confirm(session, state.registry, admin, order)
    assert (order.status, order.step) == ("confirmed", "confirmed")
    assert sum(stock.reserved_quantities(session, order.id).values()) == Decimal("102.000")
    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None and facts.ready_at is not None
    # Shipping is still possible (the order is confirmed and not at the outbound check).
    ship_everything(session, keeper, order)
    assert stock.shipped_quantities(session, order.id)[order.lines[0].id] == Decimal("2.000")


@pytest.mark.req("CORE-2")
def test_a_partial_shipment_keeps_the_order_in_shipping_until_the_rest_ships(
    session: Session,
    state: Any,
    admin: User,
    keeper: User,
    seller: User,
    warehouse: LogisticsWarehouse,
    seed: dict[str, Any],
) -> None:
    order = make_order(session, seller, lines=[{"product": "P-100", "quantity": "25"}])  # 20 in stock
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, keeper, order, "release")
    session.commit()
    ship_everything(session, keeper, order)
    assert order.step == flow.SHIPPING
    assert stock.backorder_quantities(session, order) == {order.lines[0].id: Decimal("5.000")}
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "5", backorders=True)
    ship_everything(session, keeper, order)
    assert order.step == flow.RECEIPT


@pytest.mark.req("LG-2")
def test_the_order_page_panel_shows_quantities_shipments_and_links(
    client: Any,
    session: Session,
    state: Any,
    admin: User,
    keeper: User,
    seller: User,
    warehouse: LogisticsWarehouse,
    seed: dict[str, Any],
) -> None:
    order = make_order(session, seller, lines=[{"product": "P-100", "quantity": "25"}])  # 20 in stock
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, keeper, order, "release")
    session.commit()
    shipment = ship_everything(session, keeper, order)
    login(client, "keeper@example.com", PASSWORD)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="logistics-panel"' in html
    line = order.lines[0].id
    row = html[html.index(f'data-line="{line}"') :]
    assert 'data-qty="shipped">20' in row and 'data-qty="backorder">5' in row
    assert f'data-shipment="{shipment.number}"' in html
    assert f'href="/logistics/shipments/{shipment.id}"' in html  # the shipment page
    # The customer sees its shipments only, with the tracking, not the warehouse's figures.
    make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    login(client, "buyer@example.com", PASSWORD)
    page = client.get(f"/orders/{order.id}")
    assert page.status_code == 200  # core's order page, intake being off
    text = page.get_data(as_text=True)
    assert 'id="logistics-panel"' not in text
    assert 'id="logistics-customer-panel"' in text and shipment.number in text
    assert f'href="/portal/deliveries/{shipment.id}"' in text  # where the customer confirms receipt


def test_staff_without_the_stock_permission_see_no_panel(
    client: Any,
    session: Session,
    state: Any,
    admin: User,
    seller: User,
    warehouse: LogisticsWarehouse,
    seed: dict[str, Any],
) -> None:
    order = make_order(session, seller)
    confirm(session, state.registry, admin, order)
    make_user(session, "finance@example.com", ["finance"], branch=seed["hq"])  # no logistics.stock.read
    login(client, "finance@example.com", PASSWORD)
    page = client.get(f"/orders/{order.id}")
    assert page.status_code in (200, 403, 404)
    assert 'id="logistics-panel"' not in page.get_data(as_text=True)

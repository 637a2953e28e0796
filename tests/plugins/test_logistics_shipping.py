"""Shipments: planning from reservations, partial shipments and backorders, shipping never more than
reserved, packages, the remote rules (carrier, tracking number, insurance), the shipment guard hook,
the customer notice, and the order moving on from shipping when everything has shipped (LG-1, LG-2,
LG-4, LG-11)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Notification, Order, OutboxMessage, User
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.logistics import flow, shipping, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsMove,
    LogisticsRate,
    LogisticsService,
    LogisticsShipment,
    LogisticsTransit,
    LogisticsWarehouse,
)
from tests.plugins.logistics_helpers import (
    confirm,
    location,
    make_warehouse,
    receive,
    remote_payload,
    set_home_region,
)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    return make_warehouse(session, seed["hq"].company_id)


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    """A warehouse clerk of head office (outbound check, picking, packing, shipping)."""
    return make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])


def make_carrier(session: Session, code: str = "SF", price: str = "10", rate: str = "0.3") -> LogisticsService:
    """A carrier with one service reaching everywhere in 2 working days."""
    carrier = LogisticsCarrier(
        code=code, name=f"{code} 快递", insurance_rate=Decimal(rate), insurance_minimum=Decimal("5")
    )
    service = LogisticsService(code="STD", name="标准快递", volumetric_divisor=6000)
    service.transits = [LogisticsTransit(from_province="*", to_province="*", days=2)]
    service.rates = [
        LogisticsRate(
            to_province="*",
            basis="weight",
            first_unit=Decimal("1"),
            first_price=Decimal(price),
            additional_unit=Decimal("1"),
            additional_price=Decimal("2"),
        )
    ]
    carrier.services = [service]
    session.add(carrier)
    session.commit()
    return service


def entered(session: Session, **payload: Any) -> Order:
    """An order entered by a salesperson of head office (so head office's warehouse sees it)."""
    from core.models import Branch

    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = session.scalar(select(User).where(User.email == "sales-hq@example.com"))
    if sales is None:
        sales = make_user(session, "sales-hq@example.com", ["sales"], branch=hq)
    return make_order(session, sales, **payload)


def released(session: Session, state: Any, actor: User, clerk: User, **payload: Any) -> Order:
    """An order entered in head office, confirmed by ``actor`` (reserving stock) and released by the clerk."""
    order = entered(session, **payload)
    confirm(session, state.registry, actor, order)
    take_action(session, state.registry, clerk, order, "release")
    session.commit()
    return order


def free(session: Session, product_id: int) -> Decimal:
    return stock.free_quantity(session, product_id)


def on_hand(session: Session, product_id: int) -> Decimal:
    total = session.scalar(select(func.sum(LogisticsMove.quantity)).where(LogisticsMove.product_id == product_id))
    return stock.q3(total)


@pytest.mark.req("LG-2")
def test_partial_shipment_ships_what_is_reserved_and_the_backorder_follows(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    receive(session, admin, p300, location(warehouse, "B-01"), "40")
    order = released(session, state, admin, clerk)  # 2 × P-100, 100 × P-300: 60 short
    assert order.step == flow.SHIPPING

    first = shipping.plan_shipment(session, clerk, order)
    assert first.number.startswith("SHP") and first.number.endswith("-000001")
    assert {(ln.product_id, ln.quantity) for ln in first.lines} == {(p100.id, Decimal("2")), (p300.id, Decimal("40"))}
    # P-100 at 1150.00, P-300 at its list price 12.50: 2 300 + 500.
    assert first.goods_value == Decimal("2800.00")
    shipping.ship(session, clerk, first.id)
    session.commit()
    assert first.status == "shipped" and order.step == flow.SHIPPING  # 60 m of cable still to come
    lines = {line.product_id: line.id for line in order.lines}
    assert stock.backorder_quantities(session, order) == {lines[p300.id]: Decimal("60.000")}

    receive(session, admin, p300, location(warehouse, "A-01"), "60", backorders=True)
    second = shipping.plan_shipment(session, clerk, order)
    assert [(ln.product_id, ln.quantity) for ln in second.lines] == [(p300.id, Decimal("60"))]
    shipping.ship(session, clerk, second.id)
    session.commit()
    assert order.step == flow.RECEIPT  # everything shipped: the order moved on by itself
    assert stock.shipped_quantities(session, order.id) == {lines[p100.id]: Decimal("2"), lines[p300.id]: Decimal("100")}
    assert on_hand(session, p300.id) == Decimal("0")


@pytest.mark.req("LG-2")
def test_an_order_that_may_not_ship_in_parts_is_refused_while_short(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "5")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    from plugins.logistics.models import LogisticsOrder

    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None
    facts.allow_partial = False
    line = order.lines[0]
    reservation = session.scalars(
        select(stock.LogisticsReservation).where(stock.LogisticsReservation.order_line_id == line.id)
    ).one()
    stock.release_reservation(session, reservation, Decimal("1"))
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        shipping.plan_shipment(session, clerk, order)
    assert refused.value.code == "not_partial" and refused.value.status == 409


@pytest.mark.req("LG-2")
def test_planning_more_than_reserved_or_shipping_more_than_reserved_is_refused_and_stock_unchanged(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "3")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "3"}])
    line = order.lines[0]
    with pytest.raises(LogisticsError) as refused:
        shipping.plan_shipment(session, clerk, order, lines={line.id: Decimal("4")})
    assert refused.value.code == "over_planned" and "cannot be planned" in refused.value.message
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LogisticsShipment)) == 0

    shipment = shipping.plan_shipment(session, clerk, order, lines={line.id: Decimal("3")})
    session.commit()
    # Someone releases one unit of the reservation behind the shipment's back.
    reservation = session.scalars(
        select(stock.LogisticsReservation).where(stock.LogisticsReservation.order_line_id == line.id)
    ).one()
    stock.release_reservation(session, reservation, Decimal("1"))
    session.commit()
    before_free, before_on_hand = free(session, p100.id), on_hand(session, p100.id)
    with pytest.raises(LogisticsError) as refused:
        shipping.ship(session, clerk, shipment.id)
    assert refused.value.code == "over_reserved" and refused.value.status == 409
    session.rollback()
    assert (free(session, p100.id), on_hand(session, p100.id)) == (before_free, before_on_hand)
    assert session.get(LogisticsShipment, shipment.id).status == "planned"  # type: ignore[union-attr]
    assert session.scalar(select(func.count()).select_from(LogisticsMove).where(LogisticsMove.kind == "shipment")) == 0


@pytest.mark.req("LG-4")
@pytest.mark.parametrize("weight", ["0", "-1.5"])
def test_a_zero_or_negative_package_weight_is_refused(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    clerk: User,
    weight: str,
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    shipment = shipping.plan_shipment(session, clerk, order)
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        shipping.add_package(session, clerk, shipment.id, weight, "40", "30", "20")
    assert refused.value.message == "Package weight must be greater than zero."
    assert refused.value.status == 422
    session.rollback()
    with pytest.raises(LogisticsError) as refused:
        shipping.add_package(session, clerk, shipment.id, "3", "40", "0", "20")
    assert refused.value.code == "invalid_package"
    session.rollback()
    assert session.get(LogisticsShipment, shipment.id).packages == []  # type: ignore[union-attr]
    package = shipping.add_package(session, clerk, shipment.id, "3.5", "40", "30", "20", note="纸箱")
    session.commit()
    assert package.weight == Decimal("3.5") and shipment.status == "packed"
    shipping.remove_package(session, clerk, shipment.id, package.id)
    session.commit()
    assert shipment.status == "planned" and shipment.packages == []


@pytest.mark.req("LG-1")
def test_a_remote_shipment_needs_a_carrier_and_a_tracking_number(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    set_home_region(session, "重庆市")
    service = make_carrier(session)
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, **remote_payload(lines=[{"product": "P-100", "quantity": "2"}]))
    shipment = shipping.plan_shipment(session, clerk, order)
    session.commit()
    assert shipment.remote

    with pytest.raises(LogisticsError) as refused:
        shipping.ship(session, clerk, shipment.id, tracking_number="SF100")
    assert refused.value.code == "remote_carrier"
    session.rollback()
    shipping.add_package(session, clerk, shipment.id, "8", "40", "30", "20")
    shipping.choose_carrier(session, clerk, shipment.id, service.id)
    session.commit()
    assert shipment.carrier_id == service.carrier_id and shipment.freight == Decimal("24.00")  # 10 + 7 × 2
    with pytest.raises(LogisticsError) as refused:
        shipping.ship(session, clerk, shipment.id)
    assert refused.value.code == "remote_tracking"
    assert refused.value.message == "A remote shipment needs a tracking number before it ships."
    session.rollback()
    assert stock.shipped_quantities(session, order.id) == {}

    shipping.ship(session, clerk, shipment.id, tracking_number=" SF1234567890 ")
    session.commit()
    assert shipment.status == "shipped" and shipment.tracking_number == "SF1234567890"
    assert not shipment.insured  # 2 400.00 is below the 50 000 threshold


@pytest.mark.req("LG-11")
def test_a_remote_shipment_above_the_threshold_is_insured_and_may_not_decline(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    set_home_region(session, "重庆市")
    set_setting(session, flow.INSURANCE_THRESHOLD, 2000.0)
    session.commit()
    service = make_carrier(session, rate="0.3")
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, **remote_payload(lines=[{"product": "P-100", "quantity": "2"}]))
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.add_package(session, clerk, shipment.id, "8", "40", "30", "20")
    shipping.choose_carrier(session, clerk, shipment.id, service.id)
    session.commit()
    assert shipping.insurance_required(session, shipment)
    with pytest.raises(LogisticsError) as refused:
        shipping.ship(session, clerk, shipment.id, tracking_number="SF1", insured=False)
    assert refused.value.code == "insurance_required"
    session.rollback()
    shipping.ship(session, clerk, shipment.id, tracking_number="SF1")
    session.commit()
    assert shipment.insured and shipment.insured_value == Decimal("2400.00")
    assert shipment.insurance_fee == Decimal("7.20")  # 0.3 % of 2 400 (list price 1 200), above the minimum of 5


@pytest.mark.req("LG-11")
def test_a_local_shipment_needs_no_carrier_and_no_insurance(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    set_home_region(session, "重庆市")
    set_setting(session, flow.INSURANCE_THRESHOLD, 0.0)
    session.commit()
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    shipment = shipping.plan_shipment(session, clerk, order)
    assert not shipment.remote and not shipping.insurance_required(session, shipment)
    shipping.ship(session, clerk, shipment.id)
    session.commit()
    assert shipment.status == "shipped" and not shipment.insured


class _CreditGate:
    """A tiny plugin refusing every shipment, like billing's credit gate would."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @hookimpl(optionalhook=True)
    def ordo_logistics_shipment_guard(self, order: Order, shipment: LogisticsShipment, session: Session) -> list[str]:
        self.calls.append(shipment.number)
        return ["The customer is over the credit limit."]


def test_the_shipment_guard_hook_refuses_with_its_reasons(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    shipment = shipping.plan_shipment(session, clerk, order)
    session.commit()
    gate = _CreditGate()
    state.registry.pm.register(gate, name="credit-gate")
    try:
        with pytest.raises(LogisticsError) as refused:
            shipping.ship(session, clerk, shipment.id)
        session.rollback()
    finally:
        state.registry.pm.unregister(gate)
    assert refused.value.status == 409
    assert refused.value.details["reasons"] == ["The customer is over the credit limit."]
    assert gate.calls == [shipment.number]
    assert stock.shipped_quantities(session, order.id) == {} and on_hand(session, p100.id) == Decimal("2")
    shipping.ship(session, clerk, shipment.id)  # without the gate it leaves
    session.commit()
    assert shipment.status == "shipped"


@pytest.mark.req("LG-4")
def test_the_customer_is_told_with_the_tracking_number(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    set_home_region(session, "重庆市")
    service = make_carrier(session)
    portal_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"], language="zh_CN")
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, **remote_payload(lines=[{"product": "P-100", "quantity": "2"}]))
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.choose_carrier(session, clerk, shipment.id, service.id)
    shipping.ship(session, clerk, shipment.id, tracking_number="SF777")
    session.commit()
    texts = [
        n.subject + " " + n.body for n in session.scalars(select(Notification).where(Notification.order_id == order.id))
    ]
    texts += [
        m.subject + " " + m.body
        for m in session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    ]
    shipped = [t for t in texts if "SF777" in t]
    assert shipped, texts
    assert any(f"/portal/deliveries/{shipment.id}" in t for t in shipped)
    assert portal_user.customer_id == order.customer_id


def test_shipping_needs_the_permission_and_the_order_in_scope(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    sales = make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])
    with pytest.raises(LogisticsError) as refused:
        shipping.plan_shipment(session, sales, order)
    assert refused.value.status == 403
    outsider = make_user(session, "wh-cd@example.com", ["warehouse"], branch=seed["cd"])
    if not outsider.can("orders.read.all"):
        with pytest.raises(Exception) as hidden:
            shipping.plan_shipment(session, outsider, order)
        assert getattr(hidden.value, "status", None) == 404


def test_an_order_still_at_the_outbound_check_cannot_ship(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = entered(session, lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    assert order.step == flow.OUTBOUND_CHECK
    with pytest.raises(LogisticsError) as refused:
        shipping.plan_shipment(session, clerk, order)
    assert refused.value.code == "not_shippable"


def test_cancelling_an_order_with_goods_shipped_is_refused_and_closing_the_backorder_moves_it_on(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "1")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "3"}])
    manager = make_user(session, "boss@example.com", ["sales_manager"], branch=seed["hq"])
    with pytest.raises(Exception) as refused:  # nothing shipped yet: cancel instead
        take_action(session, state.registry, manager, order, "close_backorder", reason="客户不再需要")
    assert "cancel the order instead" in str(refused.value.details)  # type: ignore[attr-defined]
    session.rollback()
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.ship(session, clerk, shipment.id)
    session.commit()
    with pytest.raises(Exception) as refused:
        take_action(session, state.registry, admin, order, "cancel", reason="客户取消")
    assert "request a return instead" in str(refused.value.details)  # type: ignore[attr-defined]
    session.rollback()
    receive(session, admin, p100, location(warehouse, "A-01"), "1", backorders=True)
    assert stock.reserved_quantities(session, order.id) == {order.lines[0].id: Decimal("1.000")}
    shipping.plan_shipment(session, clerk, order)
    session.commit()
    take_action(session, state.registry, manager, order, "close_backorder", reason="客户不再需要")
    session.commit()
    assert order.step == flow.RECEIPT
    assert stock.reserved_quantities(session, order.id) == {} and free(session, p100.id) == Decimal("1")
    assert {
        s.status for s in session.scalars(select(LogisticsShipment).where(LogisticsShipment.order_id == order.id))
    } == {
        "shipped",
        "cancelled",
    }


@pytest.mark.req("LG-7")
def test_a_replacement_shipment_reserves_fresh_stock_and_ships_after_the_order_moved_on(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    from plugins.logistics.models import LogisticsObjection

    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    order = released(session, state, admin, clerk, lines=[{"product": "P-100", "quantity": "2"}])
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.ship(session, clerk, shipment.id)
    session.commit()
    assert order.step == flow.RECEIPT
    objection = LogisticsObjection(shipment_id=shipment.id, order_id=order.id, kind="damaged", description="外包装破损")
    session.add(objection)
    session.commit()
    with pytest.raises(LogisticsError) as refused:  # no stock left for a replacement
        shipping.create_replacement_shipment(session, clerk, objection)
    assert refused.value.code == "replacement_short" and refused.value.status == 409
    session.rollback()
    assert stock.reserved_quantities(session, order.id).get(order.lines[0].id, Decimal("0")) == Decimal("0")

    receive(session, admin, p100, location(warehouse, "B-01"), "5")
    replacement = shipping.create_replacement_shipment(session, clerk, objection)
    session.commit()
    assert replacement.kind == "replacement" and objection.replacement_shipment_id == replacement.id
    assert [(ln.quantity, ln.location_id) for ln in replacement.lines] == [
        (Decimal("2"), location(warehouse, "B-01").id)
    ]
    assert free(session, p100.id) == Decimal("3")
    shipping.ship(session, clerk, replacement.id)
    session.commit()
    assert replacement.status == "shipped" and on_hand(session, p100.id) == Decimal("3")

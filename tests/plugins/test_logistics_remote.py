"""Remote orders (异地订单, LG-1, LG-3, LG-11): a Chengdu customer of a Chongqing company ships with
the suggested carrier (another one needs a reason), a connector books the carrier and returns the
tracking number, a failing booking changes nothing, insurance follows the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Branch, Order, User
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.logistics import connectors, flow, shipping, stock
from plugins.logistics.connectors import CarrierConnector, ConnectorError
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsOrder,
    LogisticsRate,
    LogisticsService,
    LogisticsShipment,
    LogisticsTransit,
    LogisticsWarehouse,
)
from tests.plugins.logistics_helpers import confirm, location, make_warehouse, receive, remote_payload, set_home_region


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    return make_warehouse(session, seed["hq"].company_id)


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])


def service_of(
    session: Session, code: str, name: str, *, days: int, first_price: str, connector: str = ""
) -> LogisticsService:
    carrier = LogisticsCarrier(code=code, name=name, connector=connector)
    service = LogisticsService(code="STD", name="标准", volumetric_divisor=6000)
    service.transits = [LogisticsTransit(from_province="重庆市", to_province="四川省", days=days)]
    service.rates = [
        LogisticsRate(
            to_province="四川省",
            basis="weight",
            first_unit=Decimal("1"),
            first_price=Decimal(first_price),
            additional_unit=Decimal("1"),
            additional_price=Decimal("1"),
        )
    ]
    carrier.services = [service]
    session.add(carrier)
    session.commit()
    return service


@pytest.fixture
def remote_shipment(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> LogisticsShipment:
    set_home_region(session, "重庆市")
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=hq)
    # Promised for a date far ahead: every carrier meets it, so the cheapest wins.
    order = make_order(
        session, sales, **remote_payload(requested_date="2099-12-15", lines=[{"product": "P-100", "quantity": "2"}])
    )
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, clerk, order, "release")
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.add_package(session, clerk, shipment.id, "5", "40", "30", "20")
    session.commit()
    return shipment


@pytest.mark.req("LG-1")
def test_the_chengdu_order_is_remote_and_its_shipment_too(session: Session, remote_shipment: LogisticsShipment) -> None:
    facts = session.get(LogisticsOrder, remote_shipment.order_id)
    assert facts is not None and facts.remote and remote_shipment.remote


@pytest.mark.req("LG-3")
def test_the_suggested_carrier_is_taken_and_another_needs_a_reason(
    session: Session, clerk: User, remote_shipment: LogisticsShipment
) -> None:
    cheap = service_of(session, "ZTO", "中通快递", days=3, first_price="8")
    dear = service_of(session, "SF", "顺丰速运", days=1, first_price="20")
    suggestion = shipping.suggestion_for(session, remote_shipment)
    assert suggestion.best.service.id == cheap.id
    with pytest.raises(LogisticsError) as refused:
        shipping.choose_carrier(session, clerk, remote_shipment.id, dear.id)
    assert refused.value.code == "override_reason"
    session.rollback()
    shipping.choose_carrier(session, clerk, remote_shipment.id, dear.id, override_reason="客户要求次日达")
    session.commit()
    assert remote_shipment.service_id == dear.id and remote_shipment.suggested_service_id == cheap.id
    assert remote_shipment.override_reason == "客户要求次日达"
    assert remote_shipment.freight == Decimal("24.00")  # 20 + 4 × 1
    shipping.choose_carrier(session, clerk, remote_shipment.id, cheap.id, override_reason="ignored")
    session.commit()
    assert remote_shipment.override_reason == "" and remote_shipment.freight == Decimal("12.00")


class _Connector:
    """A carrier's system: books and hands out tracking numbers, or fails."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.booked: list[str] = []

    def book(self, session: Session, shipment: LogisticsShipment) -> str:
        if self.fail:
            raise ConnectorError("pick-up slot full")
        self.booked.append(shipment.number)
        return f"ZT{len(self.booked):08d}"

    @hookimpl(optionalhook=True)
    def ordo_logistics_carrier_connectors(self) -> list[CarrierConnector]:
        return [CarrierConnector(key="zto-api", label="ZTO API", book=self.book)]


@pytest.mark.req("LG-4")
@pytest.mark.parametrize("fail", [False, True])
def test_a_carrier_with_a_connector_is_booked_for_the_tracking_number(
    session: Session, state: Any, clerk: User, remote_shipment: LogisticsShipment, fail: bool
) -> None:
    service = service_of(session, "ZTO", "中通快递", days=3, first_price="8", connector="zto-api")
    plugin = _Connector(fail=fail)
    state.registry.pm.register(plugin, name="zto-connector")
    try:
        assert connectors.find_connector(session, "zto-api") is not None
        assert connectors.find_connector(session, "nobody") is None
        shipping.choose_carrier(session, clerk, remote_shipment.id, service.id)
        session.commit()
        if fail:
            with pytest.raises(LogisticsError) as refused:
                shipping.ship(session, clerk, remote_shipment.id)
            session.rollback()
            assert refused.value.code == "booking_failed" and "pick-up slot full" in refused.value.message
            assert remote_shipment.status == "packed"
            assert stock.shipped_quantities(session, remote_shipment.order_id) == {}
        else:
            shipping.ship(session, clerk, remote_shipment.id)
            session.commit()
            assert remote_shipment.tracking_number == "ZT00000001" and remote_shipment.status == "shipped"
            order = session.get(Order, remote_shipment.order_id)
            assert order is not None and order.step == flow.RECEIPT
    finally:
        state.registry.pm.unregister(plugin)

"""The shipping screens: outbound queue with remote mark and blockers, release; shipping queue, plan,
picking list from selected shipments, pick confirmation with a short pick, packages (a zero weight
refused), carrier choice from the suggestion, ship with the tracking number, PDFs; permissions
(LG-1, LG-4, LG-6, CORE-2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Branch, Order, User
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.logistics import flow
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsPickList,
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


@pytest.fixture
def service(session: Session) -> LogisticsService:
    carrier = LogisticsCarrier(code="SF", name="顺丰速运")
    svc = LogisticsService(code="STD", name="标准快递", volumetric_divisor=6000)
    svc.transits = [LogisticsTransit(from_province="*", to_province="*", days=2)]
    svc.rates = [
        LogisticsRate(
            to_province="*",
            basis="weight",
            first_unit=Decimal("1"),
            first_price=Decimal("12"),
            additional_unit=Decimal("1"),
            additional_price=Decimal("2"),
        )
    ]
    carrier.services = [svc]
    session.add(carrier)
    session.commit()
    return svc


@pytest.fixture
def confirmed_remote(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> Order:
    set_home_region(session, "重庆市")
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "3")
    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=hq)
    order = make_order(
        session, sales, **remote_payload(requested_date="2099-01-15", lines=[{"product": "P-100", "quantity": "3"}])
    )
    confirm(session, state.registry, admin, order)
    return order


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, page: str = "/logistics/shipping") -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})}, follow_redirects=True)


@pytest.mark.req("LG-1")
@pytest.mark.req("LG-4")
@pytest.mark.req("LG-6")
def test_a_remote_order_is_released_picked_packed_and_shipped_on_the_screens(
    client: FlaskClient, session: Session, state: Any, clerk: User, service: LogisticsService, confirmed_remote: Order
) -> None:
    order = confirmed_remote
    login(client, clerk.email, PASSWORD)
    queue = client.get("/logistics/outbound")
    html = queue.get_data(as_text=True)
    assert queue.status_code == 200 and order.number in html
    assert "Remote" in html and "Ready to release" in html

    page = post(client, f"/logistics/outbound/{order.id}/release", {"version": order.version}, "/logistics/outbound")
    assert "was released to shipping" in page.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(Order.step).where(Order.id == order.id)) == flow.SHIPPING

    shipping_page = client.get("/logistics/shipping").get_data(as_text=True)
    assert order.number in shipping_page and "Plan all" in shipping_page
    page = post(client, f"/logistics/orders/{order.id}/plan", {"all": "1"})
    assert "planned" in page.get_data(as_text=True)
    session.rollback()
    shipment = session.scalars(select(LogisticsShipment).where(LogisticsShipment.order_id == order.id)).one()

    page = post(client, "/logistics/pick-lists", {"shipment_id": str(shipment.id)})
    html = page.get_data(as_text=True)
    session.rollback()
    pick_list = session.scalars(select(LogisticsPickList)).one()
    assert pick_list.number in html and "A-01" in html and "Standard picking time" in html
    line = shipment.lines[0]
    page = post(
        client,
        f"/logistics/pick-lists/{pick_list.id}/confirm",
        {f"picked-{line.id}": "2"},
        f"/logistics/pick-lists/{pick_list.id}",
    )
    html = page.get_data(as_text=True)
    assert "short picks" in html and "Short picks" in html
    pdf = client.get(f"/logistics/pick-lists/{pick_list.id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    shipment_path = f"/logistics/shipments/{shipment.id}"
    page = post(
        client,
        f"{shipment_path}/packages",
        {"weight": "0", "length": "40", "width": "30", "height": "20"},
        shipment_path,
    )
    assert "Package weight must be greater than zero." in page.get_data(as_text=True)
    page = post(
        client,
        f"{shipment_path}/packages",
        {"weight": "4", "length": "40", "width": "30", "height": "20"},
        shipment_path,
    )
    html = page.get_data(as_text=True)
    assert "Package added." in html and "carrier-candidates" in html and "顺丰速运" in html
    assert "Remote order: a carrier and a tracking number are required" in html

    page = post(client, f"{shipment_path}/ship", {"tracking_number": ""}, shipment_path)
    assert "A remote shipment needs a carrier before it ships." in page.get_data(as_text=True)
    page = post(client, f"{shipment_path}/carrier", {"service_id": str(service.id)}, shipment_path)
    assert "Carrier chosen." in page.get_data(as_text=True)
    page = post(client, f"{shipment_path}/ship", {"tracking_number": ""}, shipment_path)
    assert "needs a tracking number" in page.get_data(as_text=True)
    page = post(client, f"{shipment_path}/ship", {"tracking_number": "SF0099"}, shipment_path)
    html = page.get_data(as_text=True)
    assert f"Shipment {shipment.number} shipped." in html and "SF0099" in html
    session.rollback()
    shipped = session.get(LogisticsShipment, shipment.id)
    assert shipped is not None
    session.refresh(shipped)
    assert shipped is not None and shipped.status == "shipped" and shipped.tracking_number == "SF0099"
    assert [ln.picked_quantity for ln in shipped.lines] == [Decimal("2")]

    for kind in ("waybill", "delivery_note"):
        pdf = client.get(f"{shipment_path}/{kind}.pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF") and pdf.mimetype == "application/pdf"
    listing = client.get("/logistics/shipments?status=shipped&q=SF0099").get_data(as_text=True)
    assert shipment.number in listing


def test_choosing_another_carrier_without_a_reason_is_refused_on_screen(
    client: FlaskClient, session: Session, state: Any, clerk: User, service: LogisticsService, confirmed_remote: Order
) -> None:
    from core.services.orders import take_action
    from plugins.logistics import shipping

    take_action(session, state.registry, clerk, confirmed_remote, "release")
    shipment = shipping.plan_shipment(session, clerk, confirmed_remote)
    session.commit()
    other = LogisticsCarrier(code="EMS", name="邮政 EMS")
    slow = LogisticsService(code="ECO", name="经济", volumetric_divisor=6000)
    slow.transits = [LogisticsTransit(from_province="*", to_province="*", days=5)]
    slow.rates = [
        LogisticsRate(
            to_province="*",
            basis="weight",
            first_unit=Decimal("1"),
            first_price=Decimal("30"),
            additional_unit=Decimal("1"),
            additional_price=Decimal("3"),
        )
    ]
    other.services = [slow]
    session.add(other)
    session.commit()
    login(client, clerk.email, PASSWORD)
    path = f"/logistics/shipments/{shipment.id}"
    html = client.get(path).get_data(as_text=True)
    assert re.search(f'data-best="{service.id}"', html) and "Suggested" in html
    page = post(client, f"{path}/carrier", {"service_id": str(slow.id)}, path)
    assert "needs a reason" in page.get_data(as_text=True)
    page = post(client, f"{path}/carrier", {"service_id": str(slow.id), "override_reason": "客户指定"}, path)
    assert "Carrier chosen." in page.get_data(as_text=True)


def test_screens_need_their_permissions_and_hide_other_branches_orders(
    client: FlaskClient, session: Session, state: Any, seed: dict[str, Any], clerk: User, confirmed_remote: Order
) -> None:
    sales = make_user(session, "sales2@example.com", ["sales"], branch=seed["hq"])
    login(client, sales.email, PASSWORD)
    for path in ("/logistics/outbound", "/logistics/shipping", "/logistics/pick-lists"):
        assert client.get(path).status_code == 403, path
    client.get("/logout")
    outsider = make_user(session, "wh-cd@example.com", ["warehouse"], branch=seed["cd"])
    login(client, outsider.email, PASSWORD)
    html = client.get("/logistics/outbound").get_data(as_text=True)
    assert confirmed_remote.number not in html and "No order is waiting for the outbound check." in html
    assert client.get(f"/logistics/orders/{confirmed_remote.id}/plan").status_code == 404

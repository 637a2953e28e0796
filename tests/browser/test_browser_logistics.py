"""In a real browser: a remote order is released, picked, packed, shipped with the suggested carrier,
and its receipt confirmed by the customer in the portal (LG-1, LG-3, LG-4, LG-7).

The company is at home in 重庆市; the Chengdu customer (C002, 四川省) orders two gear motors
that are in stock, and the order is confirmed (its stock reserved). The warehouse clerk
releases it in the outbound check, plans the shipment, puts it on a picking list, confirms
the pick, packs one package, takes the carrier Ordo suggests (the cheapest arriving by the
promised date), enters the tracking number and ships. The customer's portal user opens the
delivery in the portal and confirms receipt; the order leaves the receipt step for *confirmed*.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.services.orders import default_company, take_action
from core.testing import PASSWORD, make_order, make_user, order_payload
from plugins.logistics import carriers, stock
from plugins.logistics.models import LogisticsLocation, LogisticsShipment, LogisticsWarehouse

pytestmark = [
    pytest.mark.browser,
    pytest.mark.req("LG-1"),
    pytest.mark.req("LG-3"),
    pytest.mark.req("LG-4"),
    pytest.mark.req("LG-7"),
]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["logistics"]


def log_in(page: Any, base: str, email: str) -> None:
    """Log ``email`` in through the login screen (after logging anyone else out)."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def confirm_dialog(page: Any) -> None:
    """Press OK in Ordo's shared confirmation dialog (forms marked data-confirm)."""
    page.locator("#ordo-confirm [data-confirm-ok]").click()


def _carriers(session: Session, gm: User) -> None:
    """Two carriers to 四川省: 顺丰 (fast, dearer) and 中通 (two days, cheaper) — 中通 is suggested."""
    sf = carriers.create_carrier(session, gm, code="SF", name="顺丰速运", insurance_rate="0.5", insurance_minimum="5")
    express = carriers.create_service(session, gm, sf.id, code="EXP", name="特快")
    carriers.add_transit(session, gm, express.id, from_province="重庆市", to_province="四川省", days=1)
    carriers.add_rate(
        session,
        gm,
        express.id,
        to_province="四川省",
        basis="weight",
        first_unit="1",
        first_price="23",
        additional_unit="1",
        additional_price="10",
    )
    zto = carriers.create_carrier(session, gm, code="ZTO", name="中通快运")
    standard = carriers.create_service(session, gm, zto.id, code="STD", name="标准快运")
    carriers.add_transit(session, gm, standard.id, from_province="*", to_province="*", days=2)
    carriers.add_rate(
        session,
        gm,
        standard.id,
        to_province="*",
        basis="weight",
        first_unit="1",
        first_price="12",
        additional_unit="1",
        additional_price="4",
    )


def test_a_remote_order_is_picked_packed_shipped_with_the_suggested_carrier_and_received_in_the_portal(
    live_server: str, browser_page: Any, session: Session, seed: dict[str, Any], state: Any, admin: User
) -> None:
    hq = seed["hq"]
    default_company(session).home_province = "重庆市"
    warehouse = LogisticsWarehouse(
        company_id=hq.company_id,
        code="WH1",
        name="重庆总仓",
        province="重庆市",
        city="重庆市",
        address="渝北区空港大道 8 号",
        is_default=True,
    )
    warehouse.locations = [LogisticsLocation(code="A-01", sequence=1)]
    session.add(warehouse)
    session.commit()
    motor = seed["products"][0]
    stock.post_move(
        session,
        admin,
        kind="receipt",
        product_id=motor.id,
        location_id=warehouse.locations[0].id,
        quantity=Decimal("5"),
    )
    gm = make_user(session, "gm@example.com", ["general_manager"], branch=hq)
    make_user(session, "wh@example.com", ["warehouse"], branch=hq)
    sales = make_user(session, "sales@example.com", ["sales"], branch=hq)
    make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"])
    _carriers(session, gm)
    session.commit()
    promised = dt.date.today() + dt.timedelta(days=45)
    payload = order_payload(
        "C002",
        reference="PO-CD-LOGI-1",
        requested_date=promised.isoformat(),
        ship_to={
            "contact": "李娜",
            "phone": "028-8000-0002",
            "province": "四川省",
            "city": "成都市",
            "address": "高新区天府大道 100 号",
        },
        lines=[{"product": "P-100", "quantity": "2", "unit_price": "1150.00"}],
    )
    order = make_order(session, sales, **payload)  # the order belongs to the Chongqing head office
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    session.commit()
    order_id, number = order.id, order.number
    assert order.step == "logistics.outbound_check"
    session.rollback()

    page = browser_page
    base = live_server

    # The warehouse releases the remote order in the outbound check (出库审核).
    log_in(page, base, "wh@example.com")
    page.goto(f"{base}/logistics/outbound")
    row = page.locator(f'tr[data-order="{number}"]')
    assert row.count() == 1
    assert "Remote" in row.inner_text()
    row.get_by_role("button", name="Release").click()
    page.wait_for_selector(".alert-success")

    # Shipping: plan the whole order, then put the shipment on a picking list (拣货单).
    page.goto(f"{base}/logistics/shipping")
    row = page.locator(f'#shipping-queue tr[data-order="{number}"]')
    row.get_by_role("button", name="Plan all").click()
    page.wait_for_url(re.compile(r"/logistics/shipments/\d+$"))
    shipment_id = int(page.url.rsplit("/", 1)[1])
    page.goto(f"{base}/logistics/shipping")
    page.locator(f'#shipping-queue tr[data-order="{number}"] input[name="shipment_id"]').check()
    page.get_by_role("button", name="Create picking list of the selected shipments").click()
    page.wait_for_url(re.compile(r"/logistics/pick-lists/\d+$"))
    assert page.locator('#pick-rows tr[data-location="A-01"]').count() == 1
    page.get_by_role("button", name="Confirm pick").click()
    page.wait_for_selector(".alert-success")

    # Packing: one package of 7.5 kg, 40 × 30 × 30 cm.
    page.goto(f"{base}/logistics/shipments/{shipment_id}")
    form = page.locator("#package-form")
    form.get_by_label("Weight (kg)").fill("7.5")
    form.get_by_label("Length (cm)").fill("40")
    form.get_by_label("Width (cm)").fill("30")
    form.get_by_label("Height (cm)").fill("30")
    form.get_by_role("button", name="Add package").click()
    page.wait_for_selector(".alert-success")
    assert page.locator("#package-list tbody tr").count() == 1

    # The carrier: Ordo suggests 中通 (cheapest arriving by the promised date); take it.
    carrier_form = page.locator("#carrier-form")
    best = carrier_form.get_attribute("data-best")
    assert best, "a carrier is suggested"
    suggested_row = page.locator(f'#carrier-candidates tr[data-service="{best}"]')
    assert "中通快运" in suggested_row.inner_text()
    assert page.locator(f'#carrier-candidates input[name="service_id"][value="{best}"]').is_checked()
    assert not page.locator("#override-reason-field").is_visible()
    carrier_form.get_by_role("button", name="Choose carrier").click()
    page.wait_for_selector(".alert-success")
    assert "中通快运" in page.locator("#chosen-service").inner_text()

    # Ship with the tracking number (remote: required), confirming in the dialog.
    ship = page.locator("#ship-form")
    ship.get_by_label("Tracking number").fill("ZT7788990011")
    ship.get_by_role("button", name="Ship").click()
    confirm_dialog(page)
    page.wait_for_selector(".alert-success")
    assert page.locator("#tracking-number").inner_text().strip() == "ZT7788990011"
    page.screenshot(path="/tmp/ordo-logistics-shipped.png", full_page=True)

    session.expire_all()
    shipment = session.get(LogisticsShipment, shipment_id)
    assert shipment is not None and shipment.status == "shipped" and shipment.remote
    assert shipment.service_id == int(best) == shipment.suggested_service_id and shipment.override_reason == ""
    shipped = session.get(Order, order_id)
    assert shipped is not None and shipped.step == "logistics.receipt"
    session.rollback()

    # The customer follows the delivery in the portal and confirms receipt (签收).
    log_in(page, base, "buyer@example.com")
    page.goto(f"{base}/portal/deliveries/")
    assert page.get_by_text("ZT7788990011").count() >= 1
    page.goto(f"{base}/portal/deliveries/{shipment_id}")
    page.get_by_role("button", name="Confirm receipt").click()
    page.wait_for_selector("#ordo-confirm.show, .alert-success")
    if page.locator("#ordo-confirm.show").count():
        confirm_dialog(page)
        page.wait_for_selector(".alert-success")
    page.screenshot(path="/tmp/ordo-logistics-received.png", full_page=True)

    session.expire_all()
    received = session.get(Order, order_id)
    assert received is not None and (received.status, received.step) == ("confirmed", "confirmed")
    shipment = session.scalars(select(LogisticsShipment).where(LogisticsShipment.id == shipment_id)).one()
    assert shipment.receipt_status == "confirmed"
    buyer = session.scalars(select(User).where(User.email == "buyer@example.com")).one()
    assert shipment.receipt_by_id == buyer.id

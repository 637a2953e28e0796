"""Logistics' documents (LG-4, LG-6, LG-7): the waybill (运单) with ship-from, ship-to, goods,
quantities, packages, weight and insured value; the delivery note (送货单) with signature lines;
the picking list (拣货单) sorted by location with the standard time. Read back from the PDF."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import render_document
from core.models import Branch, Order, User
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.logistics import documents, flow, shipping
from plugins.logistics.models import (
    LogisticsCarrier,
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


def pdf_text(data: bytes) -> str:
    """All text of a PDF, white space runs as one space."""
    assert data.startswith(b"%PDF")
    return re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def page_count(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    wh = make_warehouse(session, seed["hq"].company_id, locations=("B-02", "A-01"))
    wh.city, wh.address, wh.contact, wh.phone = "重庆市", "渝北区仓储路 8 号", "王仓管", "023-6666-0000"
    session.commit()
    return wh


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])


@pytest.fixture
def shipped(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> tuple[Order, LogisticsShipment]:
    """A remote order (Chengdu) shipped with two packages, a carrier, tracking and insurance."""
    set_home_region(session, "重庆市")
    set_setting(session, flow.INSURANCE_THRESHOLD, 1000.0)
    carrier = LogisticsCarrier(code="SF", name="顺丰速运", insurance_rate=Decimal("0.5"), liability="按保价赔付")
    service = LogisticsService(code="EXP", name="特快", volumetric_divisor=6000)
    service.transits = [LogisticsTransit(from_province="*", to_province="*", days=1)]
    service.rates = [
        LogisticsRate(
            to_province="*",
            basis="weight",
            first_unit=Decimal("1"),
            first_price=Decimal("20"),
            additional_unit=Decimal("1"),
            additional_price=Decimal("5"),
        )
    ]
    carrier.services = [service]
    session.add(carrier)
    session.commit()
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    receive(session, admin, p300, location(warehouse, "B-02"), "100")
    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=hq)
    order = make_order(session, sales, **remote_payload())
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, clerk, order, "release")
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.add_package(session, clerk, shipment.id, "12.5", "60", "40", "30", note="木箱")
    shipping.add_package(session, clerk, shipment.id, "30", "100", "20", "20")
    shipping.choose_carrier(session, clerk, shipment.id, service.id)
    shipping.ship(session, clerk, shipment.id, tracking_number="SF1300000001")
    session.commit()
    return order, shipment


@pytest.mark.req("LG-4")
def test_the_waybill_has_from_to_goods_quantities_packages_weight_and_insured_value(
    session: Session, state: Any, shipped: tuple[Order, LogisticsShipment]
) -> None:
    order, shipment = shipped
    text = pdf_text(render_document(session, state.registry, documents.WAYBILL, order, "en"))
    for expected in (
        "Ship from",
        "渝北区仓储路 8 号",  # the warehouse's address
        "Ship to",
        "成都蓉锦贸易有限公司",
        "高新区天府大道 100 号",
        "李娜",
        "P-100",
        "P-300",
        shipment.number,
        "SF1300000001",
        "顺丰速运",
        "Total weight: 42.5 kg",
        "12.5",
        "木箱",
        "Insured value: 3,550.00",  # 2 × 1 150 + 100 × 12.50
    ):
        assert expected in text, expected
    assert re.search(r"P-300 .*? 100 ", text)  # the cable's quantity


@pytest.mark.req("LG-7")
def test_the_delivery_note_lists_the_goods_with_signature_lines(
    session: Session, state: Any, shipped: tuple[Order, LogisticsShipment]
) -> None:
    order, shipment = shipped
    data = render_document(session, state.registry, documents.DELIVERY_NOTE, order, "en")
    text = pdf_text(data)
    for expected in (
        "Goods delivered",
        "P-100",
        "Received by (signature)",
        "Date received",
        shipment.number,
        "SF1300000001",
    ):
        assert expected in text, expected
    assert state.registry.documents[documents.DELIVERY_NOTE].for_customer
    assert not state.registry.documents[documents.WAYBILL].for_customer


@pytest.mark.req("LG-4")
def test_one_page_per_shipped_shipment_and_a_note_when_none_has_shipped(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse
) -> None:
    order = make_order(session, admin)
    text = pdf_text(render_document(session, state.registry, documents.WAYBILL, order, "en"))
    assert "No shipment of this order has shipped yet." in text


@pytest.mark.req("LG-4")
def test_a_single_shipments_waybill_prints_in_chinese(
    session: Session, state: Any, shipped: tuple[Order, LogisticsShipment]
) -> None:
    _order, shipment = shipped
    data = documents.render_shipment_pdf(session, state.registry, documents.WAYBILL, shipment, "zh_CN")
    text = pdf_text(data).replace(" ", "")
    assert "顺丰速运" in text and "成都市" in text and shipment.number in text


@pytest.mark.req("LG-6")
def test_the_picking_list_is_sorted_by_location_with_the_standard_time(
    session: Session, state: Any, admin: User, seed: dict[str, Any], warehouse: LogisticsWarehouse, clerk: User
) -> None:
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p300, location(warehouse, "B-02"), "10")
    receive(session, admin, p100, location(warehouse, "A-01"), "3")
    hq = session.scalars(select(Branch).where(Branch.code == "HQ")).one()
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=hq)
    order = make_order(
        session, sales, lines=[{"product": "P-300", "quantity": "10"}, {"product": "P-100", "quantity": "3"}]
    )
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, clerk, order, "release")
    shipment = shipping.plan_shipment(session, clerk, order)
    pick_list = shipping.create_pick_list(session, clerk, [shipment.id])
    session.commit()
    text = pdf_text(documents.render_pick_list_pdf(session, state.registry, pick_list, "en"))
    assert pick_list.number in text and order.number in text
    # B-02 is walked first (sequence 1), whatever its code says.
    assert text.index("B-02") < text.index("A-01")
    # 2 lines × 2.0 + 13 units × 0.2 = 6.6 minutes (default settings)
    assert "Standard picking time: 6.6 minutes" in text

"""``ordo demo`` with logistics: a warehouse with stock, carriers with rates, and orders at every
logistics state — above all a remote Chengdu order received, with its waybill and delivery
note printable (issue 7's "done when"; LG-1 … LG-11).

The demo is loaded once, through the command line, into a fresh instance with logistics
among the demo's plugins; each test reads one state back from the database.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

import core.demo
from core.cli import cli
from core.clock import company_now
from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.demo import DEMO_PASSWORD
from core.documents import render_document
from core.installation import enabled_plugins
from core.models import Notification, Order, User
from core.plugins import Registry
from core.security.passwords import verify_password
from plugins.logistics import flow, stock
from plugins.logistics.demo import PEOPLE, WAREHOUSE_CODE, reference
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsException,
    LogisticsOrder,
    LogisticsReturn,
    LogisticsShipment,
    LogisticsStock,
    LogisticsWarehouse,
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh instance with the demo loaded (logistics among the demo's plugins)."""
    folder = tmp_path_factory.mktemp("demo") / "instance"
    plugins = tuple(dict.fromkeys((*core.demo.DEMO_PLUGINS, "logistics")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core.demo, "DEMO_PLUGINS", plugins)
        result = CliRunner().invoke(cli, ["--instance", str(folder), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def engine(loaded: Path) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{loaded / 'ordo.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def registry(engine: Any) -> Registry:
    return Registry(enabled_plugins(engine))


@pytest.fixture
def s(engine: Any, registry: Registry, loaded: Path) -> Iterator[Session]:
    factory = make_session_factory(engine, registry=registry, instance=load_instance(loaded))
    with factory() as session:
        yield session


def demo_order(s: Session, key: str) -> Order:
    number = reference(key, company_now().date().year)
    return s.scalars(select(Order).where(Order.reference == number)).one()


def shipments(s: Session, order: Order) -> list[LogisticsShipment]:
    return list(s.scalars(select(LogisticsShipment).where(LogisticsShipment.order_id == order.id)))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_logistics_is_enabled_with_a_stocked_warehouse_and_carriers(s: Session, engine: Any) -> None:
    assert "logistics" in enabled_plugins(engine)
    warehouse = s.scalars(select(LogisticsWarehouse).where(LogisticsWarehouse.code == WAREHOUSE_CODE)).one()
    assert warehouse.is_default and warehouse.province == "重庆市" and len(warehouse.locations) >= 4
    assert s.scalars(select(LogisticsStock).where(LogisticsStock.on_hand > 0)).first() is not None
    carriers = {c.code: c for c in s.scalars(select(LogisticsCarrier))}
    assert set(carriers) == {"SF", "DB"}
    assert len(carriers["SF"].services) == 2
    assert {rate.basis for service in carriers["DB"].services for rate in service.rates} == {"volume"}


@pytest.mark.req("LG-1")
@pytest.mark.req("LG-4")
def test_the_remote_chengdu_order_was_received_with_documents_to_print(s: Session, registry: Registry) -> None:
    order = demo_order(s, "received")
    assert order.customer.code == "SC001" and order.ship_to_province == "四川省"
    facts = s.get(LogisticsOrder, order.id)
    assert facts is not None and facts.remote
    # Received: past logistics' steps (with billing, waiting at its settlement step).
    assert order.status == "confirmed" and order.step in ("confirmed", "billing.settlement")
    actions = [t.action for t in order.transitions]
    assert {"release", "shipped", "received"} <= set(actions)
    (shipment,) = shipments(s, order)
    assert shipment.carrier_id is not None and shipment.tracking_number
    assert shipment.suggested_service_id == shipment.service_id  # the suggested carrier was taken
    assert shipment.receipt_status == "confirmed"
    portal = s.get(User, shipment.receipt_by_id)
    assert portal is not None and portal.customer_id == order.customer_id  # confirmed in the portal
    assert [event.code for event in shipment.events][-1] == "delivered"
    waybill = pdf_text(render_document(s, registry, "logistics.waybill", order))
    assert shipment.tracking_number in waybill and "成都" in waybill
    note = pdf_text(render_document(s, registry, "logistics.delivery_note", order))
    assert shipment.number in note


def test_an_order_ships_with_a_backorder(s: Session) -> None:
    order = demo_order(s, "backorder")
    assert order.step == flow.SHIPPING
    assert stock.backorder_quantities(s, order)
    assert [sh.status for sh in shipments(s, order)] == ["shipped"]


def test_an_order_is_being_picked(s: Session) -> None:
    order = demo_order(s, "picking")
    (shipment,) = shipments(s, order)
    assert shipment.status == "picking" and shipment.pick_list_id is not None


@pytest.mark.req("LG-5")
def test_a_remote_shipment_in_transit_has_an_open_exception(s: Session) -> None:
    order = demo_order(s, "exception")
    assert order.step == flow.RECEIPT
    exception = s.scalars(select(LogisticsException).where(LogisticsException.order_id == order.id)).one()
    assert (exception.kind, exception.status) == ("delay", "open")


@pytest.mark.req("LG-9")
def test_a_return_waits_for_the_regional_managers_review(s: Session) -> None:
    order = demo_order(s, "return")
    request = s.scalars(select(LogisticsReturn).where(LogisticsReturn.order_id == order.id)).one()
    assert request.status == "requested" and request.lines[0].reason == "quality"


@pytest.mark.req("LG-10")
def test_goods_unshipped_for_two_weeks_are_abnormal_and_the_sales_manager_was_told(s: Session) -> None:
    order = demo_order(s, "ageing")
    facts = s.get(LogisticsOrder, order.id)
    assert facts is not None and facts.ageing_level == 2
    told = s.scalars(
        select(Notification).where(
            Notification.template == "logistics.ageing_abnormal", Notification.order_id == order.id
        )
    ).all()
    assert told


def test_cores_completed_demo_orders_were_shipped_and_received(s: Session) -> None:
    completed = list(s.scalars(select(Order).where(Order.status == "completed")))
    assert completed
    for order in completed:
        assert shipments(s, order) and all(sh.receipt_status == "confirmed" for sh in shipments(s, order))


def test_the_logistics_people_can_log_in(s: Session) -> None:
    for email, *_rest in PEOPLE:
        user = s.scalars(select(User).where(User.email == email)).one()
        assert verify_password(user.password_hash, DEMO_PASSWORD)

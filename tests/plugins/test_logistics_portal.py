"""The customer's delivery screens in the portal (LG-4 tracking, LG-7 receipt and objections)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from flask.testing import FlaskClient
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.services.orders import take_action
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from core.workflow import Workflow
from plugins.logistics import flow, shipping, tracking
from plugins.logistics.models import LogisticsCarrier, LogisticsObjection, LogisticsShipment


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "wh": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
        "buyer": make_user(session, "buyer@example.com", ["customer"], customer=seed["local"]),
        "stranger": make_user(session, "stranger@example.com", ["customer"], customer=seed["remote"]),
    }


@pytest.fixture
def shipment(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any]
) -> LogisticsShipment:
    """A shipped shipment (carrier 顺丰速运, tracking SF300) of the local customer's order, with one event."""
    carrier = LogisticsCarrier(code="SF", name="顺丰速运")
    session.add(carrier)
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, admin, order, "release")
    row = shipping.plan_shipment(session, people["wh"], order)
    row.carrier_id = carrier.id
    shipping.ship(session, people["wh"], row.id, tracking_number="SF300")
    tracking.add_event(
        session,
        people["wh"],
        row.id,
        "in_transit",
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
        place="成都转运中心",
    )
    session.commit()
    return row


def _post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> Any:
    token = csrf_token(client, "/portal/deliveries/")
    return client.post(path, data={"csrf_token": token, **(data or {})})


@pytest.mark.req("LG-4")
def test_the_customer_follows_tracking_in_the_portal(
    client: FlaskClient, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    login(client, people["buyer"].email, PASSWORD)
    listing = client.get("/portal/deliveries/")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert shipment.number in text and "SF300" in text and "顺丰速运" in text and "成都转运中心" in text
    page = client.get(f"/portal/deliveries/{shipment.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "SF300" in body and 'data-code="in_transit"' in body and 'id="confirm-receipt"' in body


@pytest.mark.req("LG-7")
def test_receipt_confirmed_in_the_portal_moves_the_order_on(
    client: FlaskClient, session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    order = session.get(Order, shipment.order_id)
    assert order is not None and order.step == flow.RECEIPT
    login(client, people["buyer"].email, PASSWORD)
    response = _post(client, f"/portal/deliveries/{shipment.id}/receipt")
    assert response.status_code == 302
    session.rollback()
    session.expire_all()
    assert shipment.receipt_status == "confirmed" and shipment.receipt_by_id == people["buyer"].id
    assert order.step != flow.RECEIPT and order.status == "confirmed"
    after = client.get(f"/portal/deliveries/{shipment.id}").get_data(as_text=True)
    assert 'id="confirm-receipt"' not in after  # nothing left to confirm


@pytest.mark.req("LG-7")
def test_the_customer_reports_a_problem(
    client: FlaskClient, session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    login(client, people["buyer"].email, PASSWORD)
    empty = _post(client, f"/portal/deliveries/{shipment.id}/problem", {"kind": "damaged", "description": " "})
    assert empty.status_code == 302
    assert session.scalar(select(func.count(LogisticsObjection.id))) == 0
    _post(client, f"/portal/deliveries/{shipment.id}/problem", {"kind": "damaged", "description": "外箱破损"})
    session.rollback()
    session.expire_all()
    objection = session.scalar(select(LogisticsObjection))
    assert objection is not None and (objection.kind, objection.raised_by_id) == ("damaged", people["buyer"].id)
    assert shipment.receipt_status == "objected"


@pytest.mark.req("LG-7")
def test_a_customer_cannot_see_or_answer_another_customers_shipment(
    client: FlaskClient, session: Session, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    login(client, people["stranger"].email, PASSWORD)
    assert client.get(f"/portal/deliveries/{shipment.id}").status_code == 404
    assert shipment.number not in client.get("/portal/deliveries/").get_data(as_text=True)
    assert _post(client, f"/portal/deliveries/{shipment.id}/receipt").status_code == 404
    session.rollback()
    session.expire_all()
    assert shipment.receipt_status == "pending"


def test_staff_do_not_use_the_portal_screens(
    client: FlaskClient, people: dict[str, User], shipment: LogisticsShipment
) -> None:
    login(client, people["wh"].email, PASSWORD)
    assert client.get("/portal/deliveries/").status_code == 403
    assert client.get(f"/portal/deliveries/{shipment.id}").status_code == 403


def test_visitors_are_sent_to_log_in(client: FlaskClient, shipment: LogisticsShipment) -> None:
    response = client.get(f"/portal/deliveries/{shipment.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


class TestWithIntake:
    """With intake enabled the portal's order page shows the deliveries block."""

    @pytest.fixture
    def ordo_plugins(self) -> Sequence[str]:
        return ["intake", "logistics"]

    @pytest.mark.req("LG-4")
    def test_the_portal_order_page_lists_the_shipments_with_tracking(
        self,
        client: FlaskClient,
        session: Session,
        state: Any,
        admin: User,
        people: dict[str, User],
        seed: dict[str, Any],
    ) -> None:
        wh = make_warehouse(session, seed["hq"].company_id)
        receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
        order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
        for _step in range(6):  # through intake's checks and logistics' outbound check
            if order.step == flow.SHIPPING:
                break
            action = next(
                o.action.name
                for o in Workflow(state.registry, session).options(order, admin)
                if o.allowed and o.action.name in ("submit", "accept", "confirm", "release")
            )
            take_action(session, state.registry, admin, order, action)
            session.commit()
        assert order.step == flow.SHIPPING
        row = shipping.plan_shipment(session, people["wh"], order)
        shipping.ship(session, people["wh"], row.id, tracking_number="SF301")
        session.commit()
        login(client, people["buyer"].email, PASSWORD)
        page = client.get(f"/portal/orders/{order.id}")
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        assert "SF301" in body and f"/portal/deliveries/{row.id}" in body
        assert client.get(f"/portal/deliveries/{row.id}").status_code == 200

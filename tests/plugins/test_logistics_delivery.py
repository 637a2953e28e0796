"""Delivery, receipt, objections and acceptance (LG-7, LG-8)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Notification, Order, OrderAttachment, User
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.logistics import delivery, flow, shipping
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsAcceptance, LogisticsObjection, LogisticsReturn, LogisticsShipment

TINY_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


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
def order(session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any]) -> Order:
    """A local order of the salesperson (3 × P-100), released; 10 units in stock."""
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "10")
    row = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, row)
    take_action(session, state.registry, admin, row, "release")
    session.commit()
    return row


def ship(session: Session, people: dict[str, User], order: Order) -> LogisticsShipment:
    """Plan and ship everything reserved for ``order``; the order then waits for receipt."""
    shipment = shipping.plan_shipment(session, people["wh"], order)
    shipping.ship(session, people["wh"], shipment.id, tracking_number=f"T{order.id}")
    session.commit()
    return shipment


@pytest.mark.req("LG-7")
def test_proof_of_delivery_stores_the_signed_note_as_an_attachment(
    session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    signed = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    delivery.record_proof_of_delivery(
        session, people["wh"], shipment.id, "王收货", signed, ("送货单.pdf", TINY_PDF, "application/pdf")
    )
    session.commit()
    attachment = session.get(OrderAttachment, shipment.pod_attachment_id)
    assert attachment is not None
    assert (attachment.order_id, attachment.kind, attachment.customer_visible) == (order.id, "delivery_note", True)
    assert shipment.pod_signer == "王收货" and shipment.status == "delivered"
    assert abs(shipment.delivered_at.replace(tzinfo=dt.UTC) - signed) < dt.timedelta(seconds=1)  # type: ignore[union-attr]


def test_proof_of_delivery_refusals_store_nothing(session: Session, people: dict[str, User], order: Order) -> None:
    shipment = ship(session, people, order)
    now = dt.datetime.now(dt.UTC)
    for actor, signer, at, file in (
        (people["wh"], " ", now, None),
        (people["wh"], "王", now + dt.timedelta(days=1), None),
        (people["wh"], "王", now, ("note.exe", b"MZ\x90\x00binary", "application/octet-stream")),
        (people["buyer"], "王", now, None),
    ):
        with pytest.raises(ServiceError):
            delivery.record_proof_of_delivery(session, actor, shipment.id, signer, at, file)
        session.rollback()
    assert shipment.pod_signer == "" and shipment.status == "shipped"
    assert session.scalar(select(func.count(OrderAttachment.id))) == 0


@pytest.mark.req("LG-7")
def test_the_customer_confirms_receipt_and_the_order_moves_on(
    session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    assert order.step == flow.RECEIPT
    delivery.confirm_receipt(session, people["buyer"], shipment.id)
    session.commit()
    assert (shipment.receipt_status, shipment.receipt_by_id) == ("confirmed", people["buyer"].id)
    assert shipment.status == "delivered"
    assert order.step != flow.RECEIPT and order.status == "confirmed"
    with pytest.raises(LogisticsError) as twice:
        delivery.confirm_receipt(session, people["buyer"], shipment.id)
    assert twice.value.status == 409


@pytest.mark.req("LG-7")
def test_another_customer_cannot_answer_for_the_shipment(
    session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    with pytest.raises(ServiceError) as hidden:
        delivery.confirm_receipt(session, people["stranger"], shipment.id)
    assert hidden.value.status == 404
    with pytest.raises(ServiceError) as hidden_too:
        delivery.object_to_delivery(session, people["stranger"], shipment.id, "damaged", "x")
    assert hidden_too.value.status == 404
    session.rollback()
    assert shipment.receipt_status == "pending"


@pytest.mark.req("LG-7")
def test_objection_resolved_by_a_replacement_shipment(session: Session, people: dict[str, User], order: Order) -> None:
    shipment = ship(session, people, order)
    objection = delivery.object_to_delivery(session, people["buyer"], shipment.id, "damaged", "外箱压坏，电机外壳裂开")
    session.commit()
    assert shipment.receipt_status == "objected"
    told = set(
        session.scalars(select(Notification.user_id).where(Notification.template == "logistics.objection_raised"))
    )
    assert {people["sales"].id, people["wh"].id} <= told
    with pytest.raises(LogisticsError) as confirmed_anyway:
        delivery.confirm_receipt(session, people["buyer"], shipment.id)
    assert confirmed_anyway.value.status == 409
    session.rollback()
    # the record_receipt action is blocked while the objection is open
    assert delivery.OPEN_OBJECTION in delivery.receipt_blockers(session, order)

    delivery.resolve_objection(session, people["sales"], objection.id, "replacement")
    session.commit()
    replacement = session.get(LogisticsShipment, objection.replacement_shipment_id)
    assert replacement is not None and (replacement.kind, replacement.status) == ("replacement", "planned")
    assert sum(line.quantity for line in replacement.lines) == Decimal("3")
    assert objection.resolution == "replacement" and objection.resolved_at is not None
    resolved = session.scalars(select(Notification).where(Notification.template == "logistics.objection_resolved"))
    assert [n.customer_id for n in resolved] == [order.customer_id]
    assert order.step == flow.RECEIPT  # the replacement has not left yet
    with pytest.raises(LogisticsError) as again:
        delivery.resolve_objection(session, people["sales"], objection.id, "return")
    assert again.value.status == 409
    session.rollback()

    shipping.ship(session, people["wh"], replacement.id, tracking_number="R1")
    session.commit()
    assert order.step == flow.RECEIPT  # the replacement's receipt is awaited
    delivery.confirm_receipt(session, people["buyer"], replacement.id)
    session.commit()
    assert delivery.all_received(session, order)
    assert order.step != flow.RECEIPT  # needs progress.fully_received to use delivery.all_received


@pytest.mark.req("LG-7")
def test_objection_resolved_by_a_return(session: Session, people: dict[str, User], order: Order) -> None:
    shipment = ship(session, people, order)
    objection = delivery.object_to_delivery(session, people["buyer"], shipment.id, "wrong_item", "发错型号")
    session.commit()
    delivery.resolve_objection(session, people["sales"], objection.id, "return")
    session.commit()
    request = session.scalar(select(LogisticsReturn).where(LogisticsReturn.objection_id == objection.id))
    assert request is not None and request.status == "requested"
    assert [(line.reason, line.quantity) for line in request.lines] == [("wrong_item", Decimal("3"))]
    assert delivery.receipt_settled(session, shipment)


def test_a_short_delivery_is_not_answered_by_a_return(session: Session, people: dict[str, User], order: Order) -> None:
    shipment = ship(session, people, order)
    objection = delivery.object_to_delivery(session, people["buyer"], shipment.id, "short", "少了一台")
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        delivery.resolve_objection(session, people["sales"], objection.id, "return")
    assert refused.value.status == 422
    session.rollback()
    assert objection.resolved_at is None
    assert session.scalar(select(func.count(LogisticsReturn.id))) == 0


def test_objection_needs_a_known_kind_and_a_description(
    session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    for kind, text in (("smelly", "x"), ("damaged", "  ")):
        with pytest.raises(LogisticsError) as refused:
            delivery.object_to_delivery(session, people["buyer"], shipment.id, kind, text)
        assert refused.value.status == 422
        session.rollback()
    assert session.scalar(select(func.count(LogisticsObjection.id))) == 0
    assert shipment.receipt_status == "pending"


@pytest.mark.req("LG-7")
def test_staff_record_the_receipt_from_signed_delivery_notes(
    session: Session, state: Any, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    assert delivery.receipt_blockers(session, order) == [delivery.NO_PROOF]
    with pytest.raises(ServiceError):
        take_action(session, state.registry, people["sales"], order, flow.RECORD_RECEIPT)
    session.rollback()
    delivery.record_proof_of_delivery(session, people["wh"], shipment.id, "王收货", dt.datetime.now(dt.UTC), None)
    session.commit()
    assert delivery.receipt_blockers(session, order) == []
    take_action(session, state.registry, people["sales"], order, flow.RECORD_RECEIPT)
    session.commit()
    assert (shipment.receipt_status, shipment.receipt_by_id) == ("confirmed", people["sales"].id)
    assert order.step != flow.RECEIPT


@pytest.mark.req("LG-8")
def test_acceptance_rework_then_accepted_when_acceptance_is_required(
    session: Session, people: dict[str, User], order: Order, admin: User
) -> None:
    set_setting(session, flow.ACCEPTANCE_REQUIRED, True, admin)
    session.commit()
    shipment = ship(session, people, order)
    delivery.confirm_receipt(session, people["buyer"], shipment.id)
    session.commit()
    assert order.step == flow.RECEIPT  # received, but not accepted yet

    with pytest.raises(LogisticsError) as no_note:
        delivery.record_acceptance(session, people["sales"], order.id, "rework", " ")
    assert no_note.value.status == 422
    session.rollback()
    first = delivery.record_acceptance(session, people["sales"], order.id, "rework", "噪音超标，需更换轴承")
    session.commit()
    assert (first.round, first.result) == (1, "rework")
    rework = session.scalars(select(Notification).where(Notification.template == "logistics.acceptance_rework"))
    assert [n.user_id for n in rework] == [people["sales"].id]
    assert order.step == flow.RECEIPT

    second = delivery.record_acceptance(
        session, people["sales"], order.id, "accepted", "复验合格", ("验收报告.pdf", TINY_PDF, "application/pdf")
    )
    session.commit()
    assert (second.round, second.result) == (2, "accepted")
    report = session.get(OrderAttachment, second.attachment_id)
    assert report is not None and report.kind == "acceptance_report"
    assert order.step != flow.RECEIPT and order.status == "confirmed"
    with pytest.raises(LogisticsError) as after:
        delivery.record_acceptance(session, people["sales"], order.id, "rework", "again")
    assert after.value.status == 409
    session.rollback()
    assert session.scalar(select(func.count(LogisticsAcceptance.id))) == 2


def test_acceptance_needs_shipped_goods_and_the_right(session: Session, people: dict[str, User], order: Order) -> None:
    with pytest.raises(LogisticsError) as nothing:
        delivery.record_acceptance(session, people["sales"], order.id, "accepted", "")
    assert nothing.value.status == 409
    session.rollback()
    with pytest.raises(LogisticsError) as forbidden:
        delivery.record_acceptance(session, people["buyer"], order.id, "accepted", "")
    assert forbidden.value.status == 403


# --- screens -------------------------------------------------------------------------------


def _post(client: FlaskClient, page: str, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data}, content_type="multipart/form-data")


@pytest.mark.req("LG-4")
@pytest.mark.req("LG-7")
def test_the_shipment_page_records_tracking_proof_and_exceptions(
    client: FlaskClient, session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    page = f"/logistics/shipments/{shipment.id}"
    login(client, people["wh"].email, PASSWORD)
    html = client.get(page).get_data(as_text=True)
    assert 'id="tracking-form"' in html and 'id="pod-form"' in html and 'id="exception-form"' in html

    _post(client, page, f"{page}/events", {"code": "in_transit", "at": "2026-01-05T09:30", "place": "成都转运中心"})
    _post(
        client,
        page,
        f"{page}/proof",
        {"signer": "王收货", "signed_at": "2026-01-06T10:00", "file": (io.BytesIO(TINY_PDF), "签收单.pdf")},
    )
    _post(client, page, f"{page}/exceptions", {"kind": "delay", "description": "暴雨封路"})
    session.rollback()
    session.expire_all()
    assert [e.place for e in shipment.events] == ["成都转运中心"]
    assert shipment.pod_signer == "王收货" and shipment.pod_attachment_id is not None
    assert shipment.status == "delivered"
    listed = client.get("/logistics/exceptions").get_data(as_text=True)
    assert "暴雨封路" in listed and order.number in listed
    refused = _post(client, page, f"{page}/events", {"code": "in_transit", "at": "not a time"})
    assert refused.status_code == 302
    assert "is not a date and time" in client.get(page).get_data(as_text=True)


def test_screens_need_their_permissions(
    client: FlaskClient, session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    page = f"/logistics/shipments/{shipment.id}"
    login(client, people["sales"].email, PASSWORD)
    html = client.get(page).get_data(as_text=True)
    assert 'id="tracking-form"' not in html and 'id="exception-form"' not in html
    assert _post(client, page, f"{page}/events", {"code": "in_transit", "at": "2026-01-05T09:30"}).status_code == 403
    assert _post(client, page, f"{page}/exceptions", {"kind": "delay", "description": "x"}).status_code == 403
    assert client.get("/logistics/deliveries").status_code == 200
    assert shipment.number in client.get("/logistics/deliveries").get_data(as_text=True)


@pytest.mark.req("LG-7")
@pytest.mark.req("LG-8")
def test_objections_and_acceptance_are_handled_on_the_shipment_page(
    client: FlaskClient, session: Session, people: dict[str, User], order: Order
) -> None:
    shipment = ship(session, people, order)
    objection = delivery.object_to_delivery(session, people["buyer"], shipment.id, "damaged", "外壳裂开")
    delivery.record_acceptance(session, people["sales"], order.id, "rework", "更换外壳")
    session.commit()
    page = f"/logistics/shipments/{shipment.id}"
    login(client, people["sales"].email, PASSWORD)
    html = client.get(page).get_data(as_text=True)
    assert f'data-objection="{objection.id}"' in html and 'id="acceptance-form"' in html
    assert 'data-result="rework"' in html
    _post(client, page, f"/logistics/objections/{objection.id}/resolve", {"resolution": "replacement"})
    _post(client, page, f"{page}/acceptance", {"result": "accepted", "note": "复验合格"})
    session.rollback()
    session.expire_all()
    assert objection.resolution == "replacement" and objection.replacement_shipment_id is not None
    assert [a.result for a in delivery.acceptances(session, order.id)] == ["rework", "accepted"]

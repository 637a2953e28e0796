"""Tracking events (LG-4): entered by hand, pushed by the carrier's webhook, pulled by the job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Notification, User
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.logistics import carriers, shipping, tracking
from plugins.logistics.connectors import CarrierConnector, TrackingUpdate
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsCarrier, LogisticsShipment, LogisticsTrackingEvent


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "wh": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
    }


@pytest.fixture
def carrier(session: Session, admin: User) -> tuple[LogisticsCarrier, str]:
    """A carrier with a webhook secret (returned in plain text beside it)."""
    row = LogisticsCarrier(code="SF", name="顺丰速运")
    session.add(row)
    session.flush()
    secret = carriers.set_webhook_secret(session, admin, row.id)
    session.commit()
    return row, secret


def shipped(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier_id: int
) -> LogisticsShipment:
    """A local order of the salesperson, released and shipped with tracking number SF100."""
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, admin, order, "release")
    shipment = shipping.plan_shipment(session, people["wh"], order)
    shipment.carrier_id = carrier_id
    shipping.ship(session, people["wh"], shipment.id, tracking_number="SF100")
    session.commit()
    return shipment


def _events(session: Session, shipment_id: int) -> int:
    return (
        session.scalar(
            select(func.count(LogisticsTrackingEvent.id)).where(LogisticsTrackingEvent.shipment_id == shipment_id)
        )
        or 0
    )


def _payload(*events: dict[str, Any], number: str = "SF100") -> dict[str, Any]:
    return {"tracking_number": number, "events": list(events)}


HOUR_AGO = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()


@pytest.mark.req("LG-4")
def test_manual_event_is_recorded_and_delivered_marks_the_shipment(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier: Any
) -> None:
    shipment = shipped(session, state, admin, people, seed, carrier[0].id)
    event = tracking.add_event(session, people["wh"], shipment.id, "in_transit", HOUR_AGO, place="重庆转运中心")
    session.commit()
    assert (event.code, event.source, event.place, event.recorded_by_id) == (
        "in_transit",
        "manual",
        "重庆转运中心",
        people["wh"].id,
    )
    assert shipment.status == "shipped"
    tracking.add_event(session, people["wh"], shipment.id, "delivered", dt.datetime.now(dt.UTC), place="成都")
    session.commit()
    assert shipment.status == "delivered" and shipment.delivered_at is not None
    # the customer is asked to confirm receipt
    assert session.scalar(
        select(func.count(Notification.id)).where(
            Notification.template == "logistics.delivered",
            Notification.customer_id == shipment_order_customer(session, shipment),
        )
    )


def shipment_order_customer(session: Session, shipment: LogisticsShipment) -> int:
    from core.models import Order

    order = session.get(Order, shipment.order_id)
    assert order is not None
    return order.customer_id


@pytest.mark.req("LG-4")
def test_manual_event_refusals_change_nothing(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier: Any
) -> None:
    shipment = shipped(session, state, admin, people, seed, carrier[0].id)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    for actor, code, at, status in (
        (people["wh"], "teleported", HOUR_AGO, 422),
        (people["wh"], "in_transit", future, 422),
        (people["wh"], "in_transit", "yesterday", 422),
        (people["sales"], "in_transit", HOUR_AGO, 403),  # no shipping right
    ):
        with pytest.raises(LogisticsError) as refused:
            tracking.add_event(session, actor, shipment.id, code, at)
        assert refused.value.status == status
        session.rollback()
    assert _events(session, shipment.id) == 0


def test_a_planned_shipment_has_no_tracking(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any]
) -> None:
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, admin, order, "release")
    shipment = shipping.plan_shipment(session, people["wh"], order)
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        tracking.add_event(session, people["wh"], shipment.id, "in_transit", HOUR_AGO)
    assert refused.value.status == 409


@pytest.mark.req("LG-4")
def test_webhook_records_events_once_by_their_id(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier: Any
) -> None:
    row, secret = carrier
    shipment = shipped(session, state, admin, people, seed, row.id)
    body = _payload(
        {"code": "picked_up", "at": HOUR_AGO, "place": "重庆", "id": "ev-1"},
        {"code": "in_transit", "at": HOUR_AGO, "place": "成都转运中心", "description": "到达", "id": "ev-2"},
    )
    first = tracking.receive_webhook(session, "SF", secret, body)
    session.commit()
    assert [e.code for e in first] == ["picked_up", "in_transit"]
    assert all(e.source == "webhook" and e.recorded_by_id is None for e in first)
    again = tracking.receive_webhook(session, "SF", secret, body)
    session.commit()
    assert [e.id for e in again] == [e.id for e in first]
    assert _events(session, shipment.id) == 2


@pytest.mark.req("LG-4")
def test_webhook_with_a_wrong_secret_or_an_unknown_tracking_number_records_nothing(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier: Any
) -> None:
    row, secret = carrier
    shipment = shipped(session, state, admin, people, seed, row.id)
    event = {"code": "in_transit", "at": HOUR_AGO, "id": "ev-9"}
    cases = (
        ("SF", "not-the-secret", _payload(event), 403, "bad_secret"),
        ("SF", "", _payload(event), 403, "bad_secret"),
        ("XX", secret, _payload(event), 404, "unknown_carrier"),
        ("SF", secret, _payload(event, number="SF999"), 404, "unknown_tracking"),
        ("SF", secret, _payload(event, {"code": "in_transit", "at": "not a time"}), 422, "invalid_payload"),
        ("SF", secret, {"events": [event]}, 422, "invalid_payload"),
    )
    for code, presented, body, status, error in cases:
        with pytest.raises(LogisticsError) as refused:
            tracking.receive_webhook(session, code, presented, body)
        assert (refused.value.status, refused.value.code) == (status, error)
        session.rollback()
    assert _events(session, shipment.id) == 0


@pytest.mark.req("LG-5")
def test_a_carrier_exception_event_tells_the_warehouse_and_owner_but_opens_nothing(
    session: Session, state: Any, admin: User, people: dict[str, User], seed: dict[str, Any], carrier: Any
) -> None:
    from plugins.logistics.models import LogisticsException

    row, secret = carrier
    shipment = shipped(session, state, admin, people, seed, row.id)
    tracking.receive_webhook(
        session, "SF", secret, _payload({"code": "exception", "at": HOUR_AGO, "description": "包裹破损", "id": "x1"})
    )
    session.commit()
    told = set(
        session.scalars(select(Notification.user_id).where(Notification.template == "logistics.tracking_exception"))
    )
    assert {people["wh"].id, people["sales"].id} <= told
    assert session.scalar(select(func.count(LogisticsException.id))) == 0
    assert shipment.status == "shipped"


class _Connector:
    """A carrier's system that reports two events, one of them twice."""

    @hookimpl(optionalhook=True)
    def ordo_logistics_carrier_connectors(self) -> list[CarrierConnector]:
        def pull(session: Session, shipment: LogisticsShipment) -> list[TrackingUpdate]:
            at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
            return [
                TrackingUpdate("in_transit", at, "西安", "", "p-1"),
                TrackingUpdate("in_transit", at, "西安", "", "p-1"),
                TrackingUpdate("delivered", at, "成都", "签收", "p-2"),
            ]

        return [CarrierConnector("test-carrier", "Test", pull_tracking=pull)]


@pytest.fixture
def connector(state: Any) -> Iterator[None]:
    plugin = _Connector()
    state.registry.pm.register(plugin, name="test-connector")
    yield
    state.registry.pm.unregister(plugin)


@pytest.mark.req("LG-4")
def test_the_pull_job_records_new_events_of_connected_carriers(
    session: Session,
    state: Any,
    admin: User,
    people: dict[str, User],
    seed: dict[str, Any],
    carrier: Any,
    connector: None,
) -> None:
    row = carrier[0]
    row.connector = "test-carrier"
    session.commit()
    shipment = shipped(session, state, admin, people, seed, row.id)
    assert tracking.pull_tracking(session, dt.datetime.now(dt.UTC)) == 2
    session.commit()
    assert shipment.status == "delivered"
    assert tracking.pull_tracking(session, dt.datetime.now(dt.UTC)) == 0  # delivered: not asked again
    assert _events(session, shipment.id) == 2
    assert "logistics.pull_tracking" in {job.name for job in tracking.JOBS}

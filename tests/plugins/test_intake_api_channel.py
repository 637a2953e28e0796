"""The API channel (IN-1, IN-2): e-commerce and EDI systems post orders with ``channel=api`` and
their own ``external_reference``; a second order with the same reference from the same
customer on the same channel is a duplicate (409), whoever wins a race; submitted orders
go through intake's automatic pre-check."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.services import Conflict
from core.services.orders import create_order, load_order_input
from core.testing import ApiCaller, make_user, order_payload, token_for
from plugins.intake.flow import MANUAL_CHECK, PRECHECK
from plugins.intake.models import IntakeOrder

pytestmark = [pytest.mark.req("IN-1"), pytest.mark.req("IN-2")]

ORDERS = "/api/v1/orders"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def integrator(session: Session, seed: dict[str, Any]) -> User:
    """The account a shop or EDI gateway posts with (an order clerk of the head office)."""
    return make_user(session, "edi@example.com", ["order_clerk"], branch=seed["hq"])


@pytest.fixture
def api(app: Flask, session: Session, integrator: User) -> ApiCaller:
    return ApiCaller(app.test_client(), token_for(session, integrator))


def body(reference: str = "EDI-4711", **overrides: Any) -> dict[str, Any]:
    """A good API order (prices as the list prices, a requested date well ahead)."""
    requested = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    values: dict[str, Any] = {
        "channel": "api",
        "external_reference": reference,
        "requested_date": requested,
        "contact_name": "张伟",
        "contact_phone": "023-6000-0001",
        "lines": [{"product": "P-100", "quantity": "2", "unit_price": "1200.00"}],
        **overrides,
    }
    return order_payload(**values)


def order_count(session: Session) -> int:
    session.commit()  # end the read snapshot: the app wrote through its own session
    return session.scalar(select(func.count(Order.id))) or 0


def test_an_api_order_records_its_channel_and_external_reference(api: ApiCaller, session: Session) -> None:
    answer = api.post(ORDERS, json=body())
    assert answer.status_code == 201, answer.json
    created = answer.json
    assert (created["channel"], created["external_reference"], created["status"]) == ("api", "EDI-4711", "draft")
    again = api.get(answer.headers["Location"]).json
    assert again["external_reference"] == "EDI-4711"
    session.commit()
    stored = session.get(Order, created["id"])
    assert stored is not None and (stored.channel, stored.external_reference) == ("api", "EDI-4711")


def test_an_order_without_external_reference_keeps_none(api: ApiCaller) -> None:
    first = api.post(ORDERS, json=body(reference=""))
    second = api.post(ORDERS, json=body(reference=None))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["external_reference"] is None and second.json["external_reference"] is None


def test_the_same_reference_again_answers_409_naming_the_first_order(api: ApiCaller, session: Session) -> None:
    first = api.post(ORDERS, json=body()).json
    before = order_count(session)
    for reference in ("EDI-4711", "  EDI-4711 "):
        answer = api.post(ORDERS, json=body(reference=reference))
        assert answer.status_code == 409, answer.json
        error = answer.json["error"]
        assert error["code"] == "duplicate_external_reference"
        assert error["details"] == {
            "order_id": first["id"],
            "number": first["number"],
            "external_reference": "EDI-4711",
        }
        assert first["number"] in error["message"]
    assert order_count(session) == before


def test_the_same_reference_for_another_customer_or_channel_is_a_new_order(api: ApiCaller, session: Session) -> None:
    assert api.post(ORDERS, json=body()).status_code == 201
    before = order_count(session)
    other_customer = api.post(ORDERS, json=body(customer="C002"))
    other_channel = api.post(ORDERS, json=body(channel="email"))
    assert (other_customer.status_code, other_channel.status_code) == (201, 201)
    assert order_count(session) == before + 2


def test_a_reference_longer_than_100_characters_is_refused(api: ApiCaller, session: Session) -> None:
    before = order_count(session)
    answer = api.post(ORDERS, json=body(reference="X" * 101))
    assert answer.status_code == 422
    assert "external_reference" in answer.json["error"]["details"]
    assert order_count(session) == before


def test_patching_a_draft_to_a_reference_in_use_answers_409(api: ApiCaller) -> None:
    first = api.post(ORDERS, json=body("EDI-1")).json
    second = api.post(ORDERS, json=body("EDI-2")).json
    answer = api.patch(f"{ORDERS}/{second['id']}", json={"version": second["version"], "external_reference": "EDI-1"})
    assert answer.status_code == 409, answer.json
    assert answer.json["error"]["code"] == "duplicate_external_reference"
    assert answer.json["error"]["details"]["order_id"] == first["id"]
    unchanged = api.get(f"{ORDERS}/{second['id']}").json
    assert (unchanged["external_reference"], unchanged["version"]) == ("EDI-2", second["version"])
    renamed = api.patch(f"{ORDERS}/{second['id']}", json={"version": second["version"], "external_reference": "EDI-3"})
    assert renamed.status_code == 200 and renamed.json["external_reference"] == "EDI-3"


def test_parallel_requests_with_one_reference_create_exactly_one_order(
    app: Flask, session: Session, integrator: User
) -> None:
    token = token_for(session, integrator)
    before = order_count(session)
    callers = [ApiCaller(app.test_client(), token) for _ in range(4)]
    start = threading.Barrier(len(callers))
    statuses: list[int] = []
    lock = threading.Lock()

    def send(caller: ApiCaller) -> None:
        start.wait()
        status = caller.post(ORDERS, json=body("EDI-RACE")).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(caller,)) for caller in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert order_count(session) == before + 1


def test_the_loser_of_a_race_past_the_check_gets_the_duplicate_answer(
    app: Flask, session: Session, integrator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions both pass the look-up before either commits: the unique constraint decides."""
    factory = app.extensions["ordo"].sessions
    with factory() as first:
        winner = create_order(first, first.merge(integrator), load_order_input(body("EDI-RACE")))
        first.commit()
    # The second request checked before the first committed: its look-up found nothing.
    monkeypatch.setattr("core.services.orders._check_external_reference", lambda *_args: None)
    with factory() as second:
        with pytest.raises(Conflict) as refused:
            create_order(second, second.merge(integrator), load_order_input(body("EDI-RACE")))
        second.rollback()
    assert refused.value.code == "duplicate_external_reference"
    assert refused.value.details == {"order_id": winner.id, "number": winner.number, "external_reference": "EDI-RACE"}
    session.commit()
    assert session.scalar(select(func.count(Order.id)).where(Order.external_reference == "EDI-RACE")) == 1


@pytest.mark.req("IN-4")
def test_an_order_submitted_through_the_api_is_prechecked_and_waits_for_the_manual_check(
    api: ApiCaller, session: Session
) -> None:
    created = api.post(ORDERS, json=body()).json
    answer = api.post(f"{ORDERS}/{created['id']}/actions/submit", json={})
    assert answer.status_code == 200, answer.json
    assert (answer.json["status"], answer.json["step"]) == ("submitted", MANUAL_CHECK)
    history = api.get(f"{ORDERS}/{created['id']}/history").json["items"]
    assert [(t["action"], t["to_step"]) for t in history] == [("submit", PRECHECK), ("precheck_pass", MANUAL_CHECK)]
    session.commit()
    record = session.get(IntakeOrder, created["id"])
    assert record is not None and record.precheck_level in ("pass", "warn") and record.check_due is not None


@pytest.mark.req("IN-4")
def test_an_api_order_with_an_obvious_error_is_rejected_with_reasons_in_its_history(api: ApiCaller) -> None:
    requested = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    created = api.post(ORDERS, json=body(requested_date=requested)).json
    answer = api.post(f"{ORDERS}/{created['id']}/actions/submit", json={})
    assert answer.status_code == 200, answer.json
    assert (answer.json["status"], answer.json["step"]) == ("rejected", "rejected")
    last = api.get(f"{ORDERS}/{created['id']}/history").json["items"][-1]
    assert last["action"] == "precheck_reject" and last["to_status"] == "rejected"
    assert last["reason"].startswith("Pre-check:") and requested in last["reason"]


def test_a_portal_token_posting_another_customers_id_is_refused(
    app: Flask, session: Session, seed: dict[str, Any]
) -> None:
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    portal = ApiCaller(app.test_client(), token_for(session, buyer))
    before = order_count(session)
    answer = portal.post(ORDERS, json=body(customer=seed["remote"].id, channel="portal"))
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["details"] == {"customer": [f"Unknown customer {seed['remote'].id!r}."]}
    assert order_count(session) == before
    own = portal.post(ORDERS, json=body(customer=seed["local"].id, channel="portal"))
    assert own.status_code == 201 and own.json["external_reference"] == "EDI-4711"


def test_the_openapi_document_shows_the_external_reference(app: Flask) -> None:
    spec = app.test_client().get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    for name in ("OrderIn", "OrderOut"):
        field = schemas[name]["properties"]["external_reference"]
        assert field.get("maxLength", 100) == 100
        assert field.get("nullable") is True or "null" in str(field.get("type"))
    assert "409" in spec["paths"][ORDERS]["post"]["responses"]

"""Copying an order into a new draft and re-opening a completed order (core paths every guard sees)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from test_api_orders import Caller, caller, counts, error_of

from core.models import AuditLog, Order, OrderTransition
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, login, order_payload, token_for


@pytest.fixture
def api(client: FlaskClient, session, admin, seed) -> Caller:
    return Caller(client, token_for(session, admin))


def _completed(api: Caller) -> dict[str, Any]:
    order = api.post("/api/v1/orders", json=order_payload(external_reference="EXT-1")).get_json()
    for action in ("submit", "confirm", "complete"):
        answer = api.post(f"/api/v1/orders/{order['id']}/actions/{action}")
        assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


@pytest.mark.req("CORE-1")
def test_a_copy_is_a_new_draft_with_the_lines_but_not_the_references(api: Caller, session, state):
    source = _completed(api)
    answer = api.post(f"/api/v1/orders/{source['id']}/copy")
    assert answer.status_code == 201, answer.get_json()
    copy = answer.get_json()
    assert answer.headers["Location"].endswith(f"/api/v1/orders/{copy['id']}")
    assert copy["id"] != source["id"] and copy["number"] != source["number"]
    assert (copy["status"], copy["step"]) == ("draft", "draft")
    assert copy["customer"] == source["customer"] and copy["total"] == source["total"]
    assert [(line["product"], line["quantity"], line["unit_price"]) for line in copy["lines"]] == [
        (line["product"], line["quantity"], line["unit_price"]) for line in source["lines"]
    ]
    assert copy["reference"] == "" and copy["external_reference"] is None
    entry = session.scalars(select(AuditLog).where(AuditLog.entity_id == copy["id"], AuditLog.action == "copy")).one()
    assert entry.changes == {"source": source["number"]}


def test_copying_needs_the_source_in_scope_and_the_create_permission(api: Caller, client, session, seed, state):
    source = api.post("/api/v1/orders", json=order_payload()).get_json()
    stranger = caller(client, session, "other@example.com", ["sales"], branch=seed["cd"])
    before = counts(state)
    assert stranger.post(f"/api/v1/orders/{source['id']}/copy").status_code == 404
    reader = caller(client, session, "auditor@example.com", ["auditor"])
    refused = reader.post(f"/api/v1/orders/{source['id']}/copy")
    assert refused.status_code == 403 and error_of(refused)["code"] == "forbidden"
    assert counts(state) == before


@pytest.mark.req("CORE-6")
def test_a_completed_order_is_reopened_with_a_reason_by_whoever_may(api: Caller, client, session, state):
    order = _completed(api)
    needs_reason = api.post(f"/api/v1/orders/{order['id']}/actions/reopen")
    assert needs_reason.status_code == 422
    finance = caller(client, session, "fin@example.com", ["finance"])  # sees every order, may not re-open
    refused = finance.post(f"/api/v1/orders/{order['id']}/actions/reopen", json={"reason": "more to ship"})
    assert refused.status_code == 403
    answer = api.post(f"/api/v1/orders/{order['id']}/actions/reopen", json={"reason": "customer ordered a spare"})
    assert answer.status_code == 200, answer.get_json()
    assert (answer.get_json()["status"], answer.get_json()["step"]) == ("confirmed", "confirmed")
    last = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order["id"]).order_by(OrderTransition.id.desc())
    ).first()
    assert (last.action, last.from_step, last.to_step, last.reason) == (
        "reopen",
        "completed",
        "confirmed",
        "customer ordered a spare",
    )
    # Back at confirmed it completes again like any confirmed order.
    assert api.post(f"/api/v1/orders/{order['id']}/actions/complete").status_code == 200


def test_the_order_page_copies_into_a_new_draft(api: Caller, client, session, admin, state):
    source = _completed(api)
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get(f"/orders/{source['id']}").get_data(as_text=True)
    assert f"/orders/{source['id']}/copy" in page and "data-confirm" in page
    answer = client.post(f"/orders/{source['id']}/copy", data={"csrf_token": _csrf(page)})
    assert answer.status_code == 302
    copy = session.scalars(select(Order).order_by(Order.id.desc())).first()
    assert copy is not None and copy.id != source["id"] and copy.status == "draft"
    assert answer.headers["Location"].endswith(f"/orders/{copy.id}")


def _csrf(page: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def test_a_portal_user_copies_only_its_own_orders_and_the_copy_arrives_by_the_portal(
    api: Caller, client, session, seed, state
):
    own = api.post("/api/v1/orders", json=order_payload(customer="C001")).get_json()
    other = api.post("/api/v1/orders", json=order_payload(customer="C002")).get_json()
    portal = caller(client, session, "buyer@example.com", ["customer"], customer=seed["local"])
    assert portal.post(f"/api/v1/orders/{other['id']}/copy").status_code == 404
    answer = portal.post(f"/api/v1/orders/{own['id']}/copy")
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["channel"] == "portal"

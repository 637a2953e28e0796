"""The orders API end to end: the flow, refusals, bad input, idempotency, versions, lists, data scope.

Everything goes through HTTP against a real app and database; row counts prove that a
refused request wrote nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from core.clock import company_now
from core.models import AuditLog, IdempotencyKey, NumberSequence, Order, OrderLine, OrderTransition
from core.testing import make_order, make_user, order_payload, token_for
from core.web import OrdoState


class Caller:
    """A test client that sends one user's bearer token with every request."""

    def __init__(self, client: FlaskClient, token: str):
        self.client = client
        self.token = token

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        """Send a request with the caller's token."""
        return self.client.open(
            path, method=method, headers={"Authorization": f"Bearer {self.token}", **(headers or {})}, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PATCH", path, **kwargs)


def caller(client: FlaskClient, session: Any, email: str, roles: list[str], **kwargs: Any) -> Caller:
    """A new user holding ``roles`` (see :func:`core.testing.make_user`), calling with a fresh token."""
    return Caller(client, token_for(session, make_user(session, email, roles, **kwargs)))


def counts(state: OrdoState) -> dict[str, int]:
    """Rows per table that an order request could write (read on a connection of its own)."""
    with state.engine.connect() as conn:
        return {
            model.__tablename__: conn.scalar(select(func.count()).select_from(model))
            for model in (Order, OrderLine, OrderTransition, AuditLog, IdempotencyKey, NumberSequence)
        }


def error_of(response: TestResponse) -> dict[str, Any]:
    """The error envelope's body (asserting that it is one)."""
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


@pytest.fixture
def api(client: FlaskClient, session, admin, seed) -> Caller:
    """The administrator calling the API (all permissions, data scope all)."""
    return Caller(client, token_for(session, admin))


@pytest.fixture
def draft(api: Caller) -> dict[str, Any]:
    """A draft order created through the API."""
    response = api.post("/api/v1/orders", json=order_payload())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- the flow ---------------------------------------------------------------------------


@pytest.mark.req("CORE-1")
@pytest.mark.req("CORE-6")
def test_create_submit_confirm_complete_through_the_api(api: Caller, state: OrdoState):
    created = api.post("/api/v1/orders", json=order_payload())
    assert created.status_code == 201
    order = created.get_json()
    assert created.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert created.headers["ETag"] == f'"{order["version"]}"'
    assert (order["status"], order["step"]) == ("draft", "draft")
    assert order["number"].startswith("SO")
    assert order["customer"]["code"] == "C001"
    # 2 × 1150.00 + 100 × 12.50 (list price) = 3550.00 + 13 % VAT
    assert order["total"] == "4011.50"
    assert [(line["product"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        ("P-100", "2.000", "1150.0000"),
        ("P-300", "100.000", "12.5000"),
    ]
    assert order["reference"] == "PO-2026-001"
    assert order["requested_date"] == "2026-12-15"
    assert order["payment_method"] == "monthly_settlement"
    assert order["ship_to"]["city"] == "重庆市"

    for action, step in (("submit", "submitted"), ("confirm", "confirmed"), ("complete", "completed")):
        response = api.post(f"/api/v1/orders/{order['id']}/actions/{action}")
        assert response.status_code == 200, response.get_json()
        assert (response.get_json()["step"], response.get_json()["status"]) == (step, step)

    fetched = api.get(f"/api/v1/orders/{order['id']}").get_json()
    assert fetched["status"] == "completed"
    history = api.get(f"/api/v1/orders/{order['id']}/history").get_json()["items"]
    assert [(h["action"], h["from_step"], h["to_step"], h["from_status"], h["to_status"]) for h in history] == [
        ("submit", "draft", "submitted", "draft", "submitted"),
        ("confirm", "submitted", "confirmed", "submitted", "confirmed"),
        ("complete", "confirmed", "completed", "confirmed", "completed"),
    ]
    assert {h["actor"]["name"] for h in history} == {"Administrator"}
    assert all(dt.datetime.fromisoformat(h["at"]).tzinfo is not None for h in history)
    assert counts(state)["order_transition"] == 3


@pytest.mark.req("IN-1")
def test_the_channel_is_recorded_and_must_be_a_known_one(api: Caller, state: OrdoState):
    created = api.post("/api/v1/orders", json=order_payload(channel="email")).get_json()
    assert api.get(f"/api/v1/orders/{created['id']}").get_json()["channel"] == "email"
    with state.sessions() as s:
        assert s.get(Order, created["id"]).channel == "email"
    before = counts(state)
    refused = api.post("/api/v1/orders", json=order_payload(channel="pigeon"))
    assert refused.status_code == 422
    assert "channel" in error_of(refused)["details"]
    assert counts(state) == before


@pytest.mark.req("CORE-6")
@pytest.mark.req("RV-9")
def test_cancel_needs_a_reason_and_keeps_it(api: Caller, draft: dict[str, Any], state: OrdoState):
    before = counts(state)
    refused = api.post(f"/api/v1/orders/{draft['id']}/actions/cancel", json={})
    assert refused.status_code == 422
    assert error_of(refused)["code"] == "reason_required"
    assert "reason" in error_of(refused)["details"]
    assert counts(state) == before

    cancelled = api.post(f"/api/v1/orders/{draft['id']}/actions/cancel", json={"reason": "customer withdrew"})
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    (entry,) = api.get(f"/api/v1/orders/{draft['id']}/history").get_json()["items"]
    assert (entry["action"], entry["to_step"], entry["reason"]) == ("cancel", "cancelled", "customer withdrew")
    assert api.get(f"/api/v1/orders/{draft['id']}/actions").get_json()["items"] == []


def test_actions_list_what_the_step_offers_and_what_blocks_it(
    api: Caller, draft: dict[str, Any], client: FlaskClient, session, seed
):
    actions = {a["name"]: a for a in api.get(f"/api/v1/orders/{draft['id']}/actions").get_json()["items"]}
    assert set(actions) == {"submit", "cancel"}
    assert actions["submit"] == {
        "name": "submit",
        "label": "Submit",
        "target": "submitted",
        "target_label": "Submitted",
        "needs_reason": False,
        "allowed": True,
        "blocked_by": [],
        "style": "primary",
        "confirm": None,
    }
    assert actions["cancel"]["needs_reason"] is True

    clerk = caller(client, session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    mine = clerk.post("/api/v1/orders", json=order_payload()).get_json()
    offered = {a["name"]: a for a in clerk.get(f"/api/v1/orders/{mine['id']}/actions").get_json()["items"]}
    assert offered["submit"]["allowed"] is True
    assert offered["cancel"]["allowed"] is False
    assert offered["cancel"]["blocked_by"] == ["you lack the permission 'orders.cancel'"]
    refused = clerk.post(f"/api/v1/orders/{mine['id']}/actions/cancel", json={"reason": "changed my mind"})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "forbidden"
    assert clerk.get(f"/api/v1/orders/{mine['id']}").get_json()["status"] == "draft"


def test_invalid_transitions_are_refused_and_change_nothing(api: Caller, draft: dict[str, Any], state: OrdoState):
    before = counts(state)
    too_early = api.post(f"/api/v1/orders/{draft['id']}/actions/complete")
    assert too_early.status_code == 409
    assert error_of(too_early)["code"] == "action_not_available"
    assert error_of(too_early)["details"]["reasons"] == ["available: cancel, submit"]

    unknown = api.post(f"/api/v1/orders/{draft['id']}/actions/teleport")
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "unknown_action"

    missing = api.post("/api/v1/orders/999999/actions/submit")
    assert missing.status_code == 404
    assert counts(state) == before
    assert api.get(f"/api/v1/orders/{draft['id']}").get_json()["step"] == "draft"


def test_a_guard_veto_answers_409_with_every_reason(api: Caller, draft: dict[str, Any], state: OrdoState, seed):
    gear_motor = seed["products"][0]  # P-100, on line 1
    assert api.post(f"/api/v1/products/{gear_motor.id}/deactivate").status_code == 200
    before = counts(state)
    refused = api.post(f"/api/v1/orders/{draft['id']}/actions/submit")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "transition_refused"
    assert error["details"]["reasons"] == ["line 1: product P-100 is deactivated"]
    assert counts(state) == before
    submit = next(
        a for a in api.get(f"/api/v1/orders/{draft['id']}/actions").get_json()["items"] if a["name"] == "submit"
    )
    assert (submit["allowed"], submit["blocked_by"]) == (False, ["line 1: product P-100 is deactivated"])


def test_a_stale_version_on_an_action_is_refused(api: Caller, draft: dict[str, Any], state: OrdoState):
    before = counts(state)
    refused = api.post(
        f"/api/v1/orders/{draft['id']}/actions/submit", json={"version": draft["version"]}, headers={"If-Match": '"99"'}
    )
    assert refused.status_code == 422
    assert "If-Match" in error_of(refused)["details"]
    stale = api.post(f"/api/v1/orders/{draft['id']}/actions/submit", headers={"If-Match": '"99"'})
    assert stale.status_code == 409
    assert error_of(stale)["code"] == "stale_version"
    assert counts(state) == before
    fresh = api.post(f"/api/v1/orders/{draft['id']}/actions/submit", json={"version": draft["version"]})
    assert fresh.status_code == 200


# --- bad input --------------------------------------------------------------------------


BAD_ORDERS = [
    pytest.param({"customer": "NOPE"}, ["customer"], "Unknown customer 'NOPE'.", id="unknown-customer"),
    pytest.param(
        {"lines": [{"product": "P-999", "quantity": "1"}]},
        ["lines", "0", "product"],
        "Unknown product 'P-999'.",
        id="unknown-product",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "-1"}]},
        ["lines", "0", "quantity"],
        "Quantity must be greater than zero.",
        id="negative-quantity",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "0"}]},
        ["lines", "0", "quantity"],
        "Quantity must be greater than zero.",
        id="zero-quantity",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "1e-999"}]},
        ["lines", "0", "quantity"],
        "Too precise: at most 3 decimal places.",
        id="quantity-rounding-to-zero",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "1", "unit_price": "abc"}]},
        ["lines", "0", "unit_price"],
        "Not a valid number.",
        id="money-abc",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "1", "unit_price": "1e999"}]},
        ["lines", "0", "unit_price"],
        "Too large: at most 12 digits before the decimal point.",
        id="money-1e999",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "1", "unit_price": "NaN"}]},
        ["lines", "0", "unit_price"],
        "Special numeric values (nan or infinity) are not permitted.",
        id="money-nan",
    ),
    pytest.param(
        {"lines": [{"product": "P-100", "quantity": "1", "unit_price": "-5"}]},
        ["lines", "0", "unit_price"],
        "Unit price cannot be negative.",
        id="money-negative",
    ),
    pytest.param({"lines": []}, ["lines"], "An order needs at least one line.", id="no-lines"),
    pytest.param({"requested_date": "15/12/2026"}, ["requested_date"], "Not a valid date.", id="bad-date"),
    pytest.param({"colour": "red"}, ["colour"], "Unknown field.", id="unknown-field"),
]


@pytest.mark.parametrize(("overrides", "path", "message"), BAD_ORDERS)
def test_bad_order_input_names_the_field_and_writes_nothing(
    api: Caller, state: OrdoState, overrides: dict[str, Any], path: list[str], message: str
):
    before = counts(state)
    response = api.post("/api/v1/orders", json=order_payload(**overrides), headers={"Idempotency-Key": "bad-1"})
    assert response.status_code == 422, response.get_json()
    error = error_of(response)
    assert error["code"] == "invalid"
    found: Any = error["details"]
    for key in path:
        found = found[key]
    assert message in found
    assert counts(state) == before


def test_missing_required_fields_are_each_named(api: Caller, state: OrdoState):
    before = counts(state)
    response = api.post("/api/v1/orders", json={})
    assert response.status_code == 422
    details = error_of(response)["details"]
    assert {k: v for k, v in details.items()} == {
        "customer": ["Missing data for required field."],
        "channel": ["Missing data for required field."],
        "payment_method": ["Missing data for required field."],
        "lines": ["Missing data for required field."],
    }
    assert counts(state) == before


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code", "field"),
    [
        pytest.param(b'{"customer": "C001", ', "application/json", 400, "malformed_json", "body", id="truncated"),
        pytest.param(b'{"customer": NaN}', "application/json", 400, "malformed_json", "body", id="nan-literal"),
        pytest.param(b'["C001"]', "application/json", 400, "bad_request", "body", id="not-an-object"),
        pytest.param(b"", "application/json", 400, "bad_request", "body", id="empty"),
        pytest.param(
            b"customer=C001",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            "Content-Type",
            id="form-encoded",
        ),
        pytest.param(
            b'{"customer": "C001"}', "text/plain", 415, "unsupported_media_type", "Content-Type", id="text-plain"
        ),
    ],
)
def test_malformed_bodies_are_refused(
    api: Caller, state: OrdoState, data: bytes, content_type: str, status: int, code: str, field: str
):
    before = counts(state)
    response = api.post("/api/v1/orders", data=data, content_type=content_type)
    assert response.status_code == status
    error = error_of(response)
    assert (error["code"], list(error["details"])) == (code, [field])
    assert counts(state) == before


def test_a_money_string_keeps_every_digit(api: Caller):
    body = order_payload(lines=[{"product": "P-300", "quantity": 3, "unit_price": 0.1}])
    order = api.post("/api/v1/orders", json=body).get_json()
    # 3 × 0.1 = 0.30 exactly (binary floats would not give it), + 13 % VAT = 0.04
    assert (order["untaxed_amount"], order["tax_amount"], order["total"]) == ("0.30", "0.04", "0.34")


# --- idempotency ------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_order(api: Caller, state: OrdoState):
    first = api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "k-1"})
    after_first = counts(state)
    again = api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["number"] == first.get_json()["number"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert counts(state) == after_first
    assert after_first["order"] == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict(api: Caller, state: OrdoState):
    api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "k-2"})
    before = counts(state)
    other = api.post("/api/v1/orders", json=order_payload(reference="PO-OTHER"), headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 409
    assert error_of(other)["code"] == "idempotency_key_reused"
    assert list(error_of(other)["details"]) == ["Idempotency-Key"]
    assert counts(state) == before


def test_idempotency_keys_belong_to_their_caller(api: Caller, client: FlaskClient, session, seed, state: OrdoState):
    clerk = caller(client, session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    mine = api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "shared"})
    theirs = clerk.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "shared"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert counts(state)["order"] == 2


def test_an_overlong_idempotency_key_is_refused(api: Caller, state: OrdoState):
    before = counts(state)
    response = api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "k" * 201})
    assert response.status_code == 422
    assert list(error_of(response)["details"]) == ["Idempotency-Key"]
    assert counts(state) == before


def test_a_failed_create_does_not_burn_its_idempotency_key(api: Caller):
    refused = api.post("/api/v1/orders", json=order_payload(customer="NOPE"), headers={"Idempotency-Key": "k-3"})
    assert refused.status_code == 422
    accepted = api.post("/api/v1/orders", json=order_payload(), headers={"Idempotency-Key": "k-3"})
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted.headers


# --- changing a draft -------------------------------------------------------------------


def test_patch_changes_a_draft_and_bumps_its_version(api: Caller, draft: dict[str, Any]):
    body = {"version": draft["version"], "reference": "PO-2026-001-A", "lines": [{"product": "P-200", "quantity": "1"}]}
    response = api.patch(f"/api/v1/orders/{draft['id']}", json=body)
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert changed["reference"] == "PO-2026-001-A"
    assert [line["product"] for line in changed["lines"]] == ["P-200"]
    assert changed["total"] == "9944.00"  # 8800.00 + 13 %
    assert changed["version"] > draft["version"]
    assert response.headers["ETag"] == f'"{changed["version"]}"'
    assert changed["channel"] == draft["channel"]  # left out, left alone


@pytest.mark.req("CORE-5")
def test_patch_with_a_stale_version_is_refused(api: Caller, draft: dict[str, Any], state: OrdoState):
    url = f"/api/v1/orders/{draft['id']}"
    assert api.patch(url, json={"version": draft["version"], "reference": "first"}).status_code == 200
    before = counts(state)
    stale = api.patch(url, json={"version": draft["version"], "reference": "second"})
    assert stale.status_code == 409
    assert error_of(stale)["code"] == "stale_version"
    assert list(error_of(stale)["details"]) == ["version"]
    assert api.get(url).get_json()["reference"] == "first"
    assert counts(state) == before


def test_patch_takes_the_version_from_if_match(api: Caller, draft: dict[str, Any]):
    url = f"/api/v1/orders/{draft['id']}"
    etag = api.get(url).headers["ETag"]
    assert api.patch(url, json={"note": "call first"}, headers={"If-Match": etag}).status_code == 200
    stale = api.patch(url, json={"note": "again"}, headers={"If-Match": etag})
    assert stale.status_code == 409
    missing = api.patch(url, json={"note": "no version"})
    assert missing.status_code == 422
    assert error_of(missing)["details"] == {"version": ["Missing data for required field."]}


@pytest.mark.req("CORE-5")
def test_a_submitted_order_is_not_edited_in_place(api: Caller, draft: dict[str, Any], state: OrdoState):
    submitted = api.post(f"/api/v1/orders/{draft['id']}/actions/submit").get_json()
    before = counts(state)
    response = api.patch(f"/api/v1/orders/{draft['id']}", json={"version": submitted["version"], "reference": "X"})
    assert response.status_code == 409
    assert error_of(response)["code"] == "not_editable"
    assert api.get(f"/api/v1/orders/{draft['id']}").get_json()["reference"] == draft["reference"]
    assert counts(state) == before


def test_patch_with_bad_lines_changes_nothing(api: Caller, draft: dict[str, Any], state: OrdoState):
    before = counts(state)
    body = {"version": draft["version"], "lines": [{"product": "P-100", "quantity": "abc"}]}
    response = api.patch(f"/api/v1/orders/{draft['id']}", json=body)
    assert response.status_code == 422
    assert error_of(response)["details"] == {"lines": {"0": {"quantity": ["Not a valid number."]}}}
    assert counts(state) == before
    assert api.get(f"/api/v1/orders/{draft['id']}").get_json()["version"] == draft["version"]


# --- lists ------------------------------------------------------------------------------


@pytest.fixture
def many(session, admin, seed) -> list[int]:
    """Seven draft orders, oldest first: five for C001 ('PO-…'), two for C002 ('EDI-…')."""
    ids = []
    for n in range(5):
        ids.append(make_order(session, admin, reference=f"PO-{n}").id)
    for n in range(2):
        ids.append(make_order(session, admin, customer="C002", reference=f"EDI-{n}").id)
    return ids


def _submit(api: Caller, order_id: int) -> None:
    assert api.post(f"/api/v1/orders/{order_id}/actions/submit").status_code == 200


def _walk(api: Caller, query: str, limit: int) -> tuple[list[int], list[int]]:
    """Every id over every page of ``query`` and the size of each page."""
    ids: list[int] = []
    sizes: list[int] = []
    cursor = None
    while True:
        url = f"/api/v1/orders?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(url)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        ids += [o["id"] for o in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, sizes


def test_cursor_pagination_visits_every_order_exactly_once(api: Caller, many: list[int]):
    ids, sizes = _walk(api, "", limit=3)
    assert ids == sorted(many, reverse=True)
    assert sizes == [3, 3, 1]
    ids, sizes = _walk(api, "", limit=7)
    assert (len(ids), sizes) == (7, [7])


def test_the_list_is_newest_first_by_creation_time_whatever_the_ids(api: Caller, session, many: list[int]):
    """Orders imported with their original dates are listed by those, not by id."""
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    for n, order_id in enumerate(many):
        session.get(Order, order_id).created_at = start + dt.timedelta(days=(n * 3) % 7)
    session.commit()
    expected = sorted(many, key=lambda i: ((many.index(i) * 3) % 7, i), reverse=True)
    ids, sizes = _walk(api, "", limit=2)
    assert ids == expected and sizes == [2, 2, 2, 1]


def test_list_filters(api: Caller, many: list[int]):
    _submit(api, many[0])
    _submit(api, many[1])

    def ids(query: str) -> set[int]:
        response = api.get(f"/api/v1/orders?limit=200&{query}")
        assert response.status_code == 200, response.get_json()
        return {o["id"] for o in response.get_json()["items"]}

    assert ids("status=submitted") == {many[0], many[1]}
    assert ids("step=draft") == set(many[2:])
    assert ids("customer=C002") == set(many[5:])
    assert ids("customer=2") == set(many[5:])  # by id
    assert ids("customer=C999") == set()
    assert ids("q=EDI") == set(many[5:])
    assert ids("q=成都蓉锦") == set(many[5:])  # the customer's name
    today = company_now().date()  # filters count in the company's days
    assert ids(f"date_from={today}&date_to={today}") == set(many)
    assert ids(f"date_from={today + dt.timedelta(days=1)}") == set()
    assert ids(f"date_to={today - dt.timedelta(days=1)}") == set()
    assert ids("status=draft&customer=C001") == set(many[2:5])
    summary = api.get("/api/v1/orders?limit=1").get_json()["items"][0]
    assert "lines" not in summary
    assert {"id", "number", "status", "step", "version", "customer", "total"} <= set(summary)


def test_filtered_pages_walk_every_match_once(api: Caller, many: list[int]):
    _submit(api, many[3])
    ids, sizes = _walk(api, "&status=draft", limit=2)
    assert ids == sorted(set(many) - {many[3]}, reverse=True)
    assert sizes == [2, 2, 2]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("step=nowhere", "step"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("date_from=yesterday", "date_from"),
        ("date_from=2026-02-02&date_to=2026-02-01", "date_to"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("staus=draft", "staus"),
    ],
)
def test_bad_list_queries_name_the_parameter(api: Caller, query: str, field: str):
    response = api.get(f"/api/v1/orders?{query}")
    assert response.status_code == 422
    assert list(error_of(response)["details"]) == [field]


# --- data scope -------------------------------------------------------------------------


@pytest.mark.req("CORE-4")
def test_a_portal_user_sees_only_its_customers_orders(api: Caller, client: FlaskClient, session, seed, many):
    portal = caller(client, session, "buyer@c002.example.com", ["customer"], customer=seed["remote"])
    listed = portal.get("/api/v1/orders?limit=200").get_json()
    assert {o["id"] for o in listed["items"]} == set(many[5:])
    assert {o["customer"]["code"] for o in listed["items"]} == {"C002"}
    assert portal.get("/api/v1/orders?customer=C001").get_json()["items"] == []

    other = many[0]  # C001's
    for response in (
        portal.get(f"/api/v1/orders/{other}"),
        portal.get(f"/api/v1/orders/{other}/actions"),
        portal.get(f"/api/v1/orders/{other}/history"),
        portal.post(f"/api/v1/orders/{other}/actions/submit"),
        portal.patch(f"/api/v1/orders/{other}", json={"version": 1, "note": "mine now"}),
    ):
        assert response.status_code == 404
        assert error_of(response) == {"code": "not_found", "message": f"order {other} was not found", "details": {}}
    assert portal.get(f"/api/v1/orders/{many[5]}").status_code == 200
    assert api.get(f"/api/v1/orders/{other}").get_json()["note"] == ""


@pytest.mark.req("CORE-4")
def test_a_portal_user_orders_only_for_its_own_customer(client: FlaskClient, session, seed, state: OrdoState):
    portal = caller(client, session, "buyer@c002.example.com", ["customer"], customer=seed["remote"])
    before = counts(state)
    refused = portal.post("/api/v1/orders", json=order_payload(customer="C001", channel="portal"))
    assert refused.status_code == 422
    assert error_of(refused)["details"] == {"customer": ["Unknown customer 'C001'."]}
    assert counts(state) == before
    accepted = portal.post("/api/v1/orders", json=order_payload(customer="C002", channel="portal"))
    assert accepted.status_code == 201
    assert accepted.get_json()["channel"] == "portal"


@pytest.mark.req("CORE-4")
def test_salespeople_see_their_own_orders_only(client: FlaskClient, session, seed):
    one = caller(client, session, "one@example.com", ["sales"])
    two = caller(client, session, "two@example.com", ["sales"])
    mine = one.post("/api/v1/orders", json=order_payload()).get_json()
    theirs = two.post("/api/v1/orders", json=order_payload()).get_json()
    assert [o["id"] for o in one.get("/api/v1/orders").get_json()["items"]] == [mine["id"]]
    assert [o["id"] for o in two.get("/api/v1/orders").get_json()["items"]] == [theirs["id"]]
    assert one.get(f"/api/v1/orders/{theirs['id']}").status_code == 404


def test_permissions_are_checked(client: FlaskClient, session, seed, state: OrdoState):
    warehouse = caller(client, session, "wh@example.com", ["warehouse"])
    before = counts(state)
    refused = warehouse.post("/api/v1/orders", json=order_payload())
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "forbidden"
    assert counts(state) == before
    nobody = caller(client, session, "nobody@example.com", [])
    assert nobody.get("/api/v1/orders").status_code == 403

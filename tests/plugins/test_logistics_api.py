"""The logistics API (``/api/v1/logistics``) and the carriers' tracking webhook.

Stock and moves, an order's logistics, planning, packing and shipping a shipment,
tracking events, receipt, returns, the carrier suggestion; the data scope (404 outside
it, never 403), permissions (403), bad input (422, nothing changed) and the webhook's
per-carrier secret (no bearer token; a wrong secret 403, an unknown tracking number 404,
repeated events recorded once). Every endpoint is in the OpenAPI document and the guide.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from logistics_helpers import confirm, location, make_warehouse, receive, remote_payload, set_home_region
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.services.orders import take_action
from core.testing import ApiCaller, make_order, make_user, token_for
from plugins.logistics import carriers
from plugins.logistics.models import (
    LogisticsPackage,
    LogisticsShipment,
    LogisticsStock,
    LogisticsTrackingEvent,
    LogisticsWarehouse,
)

API = "/api/v1/logistics"


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any], admin: User) -> LogisticsWarehouse:
    wh = make_warehouse(session, seed["hq"].company_id)
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(wh, "A-01"), "10")
    receive(session, admin, p300, location(wh, "B-01"), "300")
    set_home_region(session, "重庆市")
    return wh


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq, cd = seed["hq"], seed["cd"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "keeper": make_user(session, "keeper@example.com", ["warehouse"], branch=hq),
        "cd_keeper": make_user(session, "cd.keeper@example.com", ["warehouse"], branch=cd),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "portal": make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"]),
    }


@pytest.fixture
def api(app: Flask, session: Session, people: dict[str, User]) -> dict[str, ApiCaller]:
    return {key: ApiCaller(app.test_client(), token_for(session, user)) for key, user in people.items()}


@pytest.fixture
def remote_order(session: Session, state: Any, admin: User, people: dict[str, User], warehouse: Any) -> Order:
    """A remote (Chengdu) HQ order of 2 × P-100 and 100 × P-300, released to shipping."""
    order = make_order(session, people["seller"], **remote_payload())
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, people["keeper"], order, "release")
    session.commit()
    return order


@pytest.fixture
def carrier(session: Session, admin: User) -> dict[str, Any]:
    """顺丰 with a standard service to 四川省 and its webhook secret."""
    sf = carriers.create_carrier(session, admin, code="SF", name="顺丰速运", insurance_rate="0.5")
    service = carriers.create_service(session, admin, sf.id, code="STD", name="标快", volumetric_divisor=6000)
    carriers.add_transit(session, admin, service.id, from_province="重庆市", to_province="四川省", days=2)
    carriers.add_rate(
        session,
        admin,
        service.id,
        to_province="四川省",
        basis="weight",
        first_unit="1",
        first_price="12",
        additional_unit="1",
        additional_price="3",
    )
    secret = carriers.set_webhook_secret(session, admin, sf.id)
    session.commit()
    return {"carrier": sf, "service": service, "secret": secret}


def shipped(api: dict[str, ApiCaller], order: Order, service_id: int, tracking: str = "SF100200300") -> dict[str, Any]:
    """Plan, pack, choose the carrier and ship ``order`` through the API; the shipment as answered."""
    planned = api["keeper"].post(f"{API}/orders/{order.id}/shipments", json={})
    assert planned.status_code == 201, planned.get_json()
    shipment_id = planned.get_json()["id"]
    package = {"weight": "40", "length": "60", "width": "40", "height": "40"}
    assert api["keeper"].post(f"{API}/shipments/{shipment_id}/packages", json=package).status_code == 201
    chosen = api["keeper"].post(f"{API}/shipments/{shipment_id}/carrier", json={"service_id": service_id})
    assert chosen.status_code == 200, chosen.get_json()
    answer = api["keeper"].post(f"{API}/shipments/{shipment_id}/ship", json={"tracking_number": tracking})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


@pytest.mark.req("LG-2")
def test_stock_and_moves_are_listed_and_filtered(api: dict[str, ApiCaller], warehouse: Any, seed: dict[str, Any]):
    answer = api["keeper"].get(f"{API}/stock?sku=P-100")
    assert answer.status_code == 200
    (row,) = answer.get_json()["items"]
    assert (row["sku"], row["location_code"], row["on_hand"], row["free"]) == ("P-100", "A-01", "10.000", "10.000")
    moves = api["keeper"].get(f"{API}/moves?kind=receipt&limit=1").get_json()
    assert len(moves["items"]) == 1 and moves["next_cursor"]
    rest = api["keeper"].get(f"{API}/moves?kind=receipt&cursor={moves['next_cursor']}").get_json()
    assert {m["sku"] for m in moves["items"] + rest["items"]} == {"P-100", "P-300"}
    assert api["finance"].get(f"{API}/stock").status_code == 403
    assert api["keeper"].get(f"{API}/stock?kind=nonsense").status_code == 422


@pytest.mark.req("LG-4")
def test_a_remote_order_is_shipped_through_the_api(
    api: dict[str, ApiCaller], remote_order: Order, carrier: dict[str, Any], session: Session
):
    shipment = shipped(api, remote_order, carrier["service"].id)
    assert shipment["status"] == "shipped"
    assert shipment["remote"] is True
    assert shipment["tracking_number"] == "SF100200300"
    assert shipment["carrier"]["code"] == "SF"
    assert [p["weight"] for p in shipment["packages"]] == ["40.000"]
    facts = api["keeper"].get(f"{API}/orders/{remote_order.id}/logistics").get_json()
    assert facts["remote"] is True
    assert {line["sku"]: line["shipped"] for line in facts["lines"]} == {"P-100": "2.000", "P-300": "100.000"}
    assert facts["order"]["step"] == "logistics.receipt"
    # The customer's portal account reads its shipment and confirms receipt.
    assert api["portal"].get(f"{API}/shipments/{shipment['id']}").status_code == 200
    received = api["portal"].post(f"{API}/shipments/{shipment['id']}/receipt")
    assert received.status_code == 200, received.get_json()
    assert received.get_json()["receipt_status"] == "confirmed"
    assert received.get_json()["order"]["status"] == "confirmed"


@pytest.mark.req("LG-2")
def test_outside_the_data_scope_everything_is_not_found(
    api: dict[str, ApiCaller], remote_order: Order, carrier: dict[str, Any]
):
    shipment = shipped(api, remote_order, carrier["service"].id)
    other = api["cd_keeper"]  # a warehouse clerk of the Chengdu branch: HQ orders are not theirs
    assert other.get(f"{API}/orders/{remote_order.id}/logistics").status_code == 404
    assert other.get(f"{API}/shipments/{shipment['id']}").status_code == 404
    assert other.post(f"{API}/orders/{remote_order.id}/shipments", json={}).status_code == 404
    package = {"weight": "1", "length": "1", "width": "1", "height": "1"}
    assert other.post(f"{API}/shipments/{shipment['id']}/packages", json=package).status_code == 404
    assert other.get(f"{API}/shipments/999999").status_code == 404
    assert other.get(f"{API}/orders/999999/logistics").status_code == 404


@pytest.mark.req("LG-4")
def test_bad_input_is_refused_with_details_and_changes_nothing(
    api: dict[str, ApiCaller], remote_order: Order, session: Session
):
    planned = api["keeper"].post(f"{API}/orders/{remote_order.id}/shipments", json={}).get_json()
    url = f"{API}/shipments/{planned['id']}/packages"
    zero = api["keeper"].post(url, json={"weight": "0", "length": "10", "width": "10", "height": "10"})
    assert zero.status_code == 422
    assert zero.get_json()["error"]["message"]
    missing = api["keeper"].post(url, json={"length": "10"})
    assert missing.status_code == 422
    assert "weight" in missing.get_json()["error"]["details"]
    assert api["keeper"].post(url, data="weight=1", content_type="text/plain").status_code == 415
    assert session.scalar(select(func.count()).select_from(LogisticsPackage)) == 0
    # A remote shipment without carrier and tracking number does not ship; stock stays.
    before = session.scalar(select(func.sum(LogisticsStock.on_hand)))
    refused = api["keeper"].post(f"{API}/shipments/{planned['id']}/ship", json={})
    assert refused.status_code == 422
    session.expire_all()
    assert session.scalar(select(func.sum(LogisticsStock.on_hand))) == before
    assert api["seller"].post(f"{API}/shipments/{planned['id']}/ship", json={}).status_code == 403


def hours_ago(hours: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).isoformat()


@pytest.mark.req("LG-5")
def test_the_webhook_needs_the_carriers_secret_and_records_each_event_once(
    app: Flask, api: dict[str, ApiCaller], remote_order: Order, carrier: dict[str, Any], session: Session
):
    shipped(api, remote_order, carrier["service"].id, tracking="SF555")
    hook = app.test_client()  # no login, no bearer token: the carrier's server
    url = f"{API}/webhooks/SF/tracking"
    body = {
        "tracking_number": "SF555",
        "events": [
            {"id": "e1", "code": "in_transit", "at": hours_ago(5), "place": "成都转运中心"},
            {"id": "e2", "code": "delivered", "at": hours_ago(1), "description": "本人签收"},
        ],
    }

    def events() -> int:
        session.commit()  # end the read snapshot: see what the requests stored
        return session.scalar(select(func.count()).select_from(LogisticsTrackingEvent)) or 0

    assert hook.post(url, json=body).status_code == 403
    assert hook.post(url, json=body, headers={"X-Ordo-Carrier-Secret": "wrong"}).status_code == 403
    assert events() == 0
    secret = {"X-Ordo-Carrier-Secret": carrier["secret"]}
    unknown = hook.post(url, json={**body, "tracking_number": "SF999"}, headers=secret)
    assert unknown.status_code == 404
    assert hook.post(f"{API}/webhooks/NOPE/tracking", json=body, headers=secret).status_code == 404
    assert hook.post(url, json={"tracking_number": "SF555", "events": "x"}, headers=secret).status_code == 422
    assert events() == 0
    answer = hook.post(url, json=body, headers=secret)
    assert answer.status_code == 200, answer.get_json()
    assert [e["code"] for e in answer.get_json()["events"]] == ["in_transit", "delivered"]
    assert hook.post(url, json=body, headers=secret).status_code == 200  # the carrier retried
    assert events() == 2
    session.expire_all()
    shipment = session.scalars(select(LogisticsShipment)).one()
    assert shipment.status == "delivered"


@pytest.mark.req("LG-9")
def test_a_return_is_requested_and_reviewed_through_the_api(
    app: Flask,
    api: dict[str, ApiCaller],
    remote_order: Order,
    carrier: dict[str, Any],
    session: Session,
    seed: dict[str, Any],
):
    shipment = shipped(api, remote_order, carrier["service"].id)
    api["portal"].post(f"{API}/shipments/{shipment['id']}/receipt")
    line = next(line for line in remote_order.lines if line.product.sku == "P-100")
    too_many = {
        "order_id": remote_order.id,
        "lines": [{"order_line_id": line.id, "quantity": "3", "reason": "quality"}],
    }
    assert api["seller"].post(f"{API}/returns", json=too_many).status_code == 422
    request = {**too_many, "lines": [{"order_line_id": line.id, "quantity": "1", "reason": "quality"}]}
    created = api["seller"].post(f"{API}/returns", json=request)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "requested" and body["lines"][0]["quantity"] == "1.000"
    listed = api["seller"].get(f"{API}/returns?status=requested").get_json()["items"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert api["cd_keeper"].get(f"{API}/returns/{body['id']}").status_code == 404
    reviewer = make_user(session, "rm@example.com", ["regional_manager"], branch=seed["hq"])
    rm = ApiCaller(app.test_client(), token_for(session, reviewer))
    reviewed = rm.post(f"{API}/returns/{body['id']}/review", json={"approve": True, "note": "质量问题属实"})
    assert reviewed.status_code == 200, reviewed.get_json()
    assert reviewed.get_json()["status"] == "reviewed"
    assert api["seller"].post(f"{API}/returns/{body['id']}/review", json={"approve": True}).status_code == 403


@pytest.mark.req("LG-3")
def test_the_carrier_suggestion_explains_its_choice(api: dict[str, ApiCaller], carrier: dict[str, Any], warehouse: Any):
    answer = api["keeper"].get(
        f"{API}/carriers/suggestion?to_province=四川省&weight=10&promised_date=2099-01-30&ship_date=2099-01-05"
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["best"]["service"]["code"] == "STD"
    assert body["best"]["freight"] == "39.00"  # 12 + 9 × 3
    assert body["explanation"]
    assert api["seller"].get(f"{API}/carriers/suggestion?to_province=四川省&weight=1").status_code == 403
    assert api["keeper"].get(f"{API}/carriers/suggestion?to_province=四川省&weight=-1").status_code == 422


def test_every_logistics_endpoint_is_documented(client: Any):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = {path: item for path, item in spec["paths"].items() if path.startswith(API)}
    listed = {(method, path) for path, item in paths.items() for method in item if method in ("get", "post")}
    assert ("post", f"{API}/webhooks/{{carrier_code}}/tracking") in listed
    assert ("get", f"{API}/stock") in listed and ("post", f"{API}/returns/{{return_id}}/inspection") in listed
    webhook = paths[f"{API}/webhooks/{{carrier_code}}/tracking"]["post"]
    assert webhook["security"] == []
    assert "X-Ordo-Carrier-Secret" in {p["name"] for p in webhook["parameters"] if p["in"] == "header"}
    for path, item in paths.items():
        for method, operation in item.items():
            if method not in ("get", "post"):
                continue
            success = [s for s in operation["responses"] if s.startswith("2")]
            assert len(success) == 1, f"{method} {path}"
            assert "$ref" in operation["responses"][success[0]]["content"]["application/json"]["schema"]
    guide = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    described = set(re.findall(r"`(GET|POST) (/api/v1/logistics[^`\s?]*)`", guide))
    for method, path in listed:
        assert (method.upper(), path) in described, f"docs/api.md lacks {method.upper()} {path}"


def test_quantities_are_decimal_strings(api: dict[str, ApiCaller], warehouse: Any):
    rows = api["keeper"].get(f"{API}/stock").get_json()["items"]
    assert all(isinstance(row["on_hand"], str) and Decimal(row["on_hand"]) > 0 for row in rows)

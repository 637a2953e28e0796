"""Intake's price lists (IN-3): which price applies, keeping the lists, screens and API."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, User
from core.services import ServiceError
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.intake import pricing
from plugins.intake.models import IntakeCustomerGroup, IntakeCustomerProfile, IntakePriceList, IntakePriceListItem

pytestmark = pytest.mark.req("IN-3")

DAY = dt.date(2027, 3, 15)


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def world(session: Session, admin: User, seed: dict[str, Any]) -> dict[str, Any]:
    """A key-account group holding C001, a group list and a contract list for C001."""
    local, p100, p300 = seed["local"], seed["products"][0], seed["products"][2]
    group = pricing.save_customer_group(session, admin, {"code": "KA", "name": "Key accounts 重点客户"})
    pricing.set_customer_group(session, admin, local.id, group.id)
    group_list = pricing.create_price_list(
        session,
        admin,
        {
            "code": "KA-2027",
            "name": "Key accounts 2027",
            "customer_group_id": group.id,
            "valid_from": "2027-01-01",
            "valid_to": "2027-12-31",
            "items": [
                {"product": "P-100", "unit_price": "1100"},
                {"product": "P-100", "min_quantity": "10", "unit_price": "1050"},
                {"product": "P-300", "unit_price": "11.80"},
            ],
        },
    )
    contract = pricing.create_price_list(
        session,
        admin,
        {
            "code": "C001-HT",
            "name": "Contract HT-2027-01",
            "customer_id": local.id,
            "contract_number": "HT-2027-01",
            "valid_from": "2027-02-01",
            "valid_to": "2027-06-30",
            "items": [{"product": "P-100", "unit_price": "990"}],
        },
    )
    session.commit()
    return {**seed, "group": group, "group_list": group_list, "contract": contract, "p100": p100, "p300": p300}


def price(session: Session, customer: Any, product: Any, qty: str = "1", on: dt.date = DAY, currency: Any = None):
    return pricing.applicable_price(session, customer.id, product.id, Decimal(qty), on, currency)


def count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- the applicable price -------------------------------------------------------------------


def test_contract_wins_over_group_which_wins_over_list_price(session, world):
    local, remote, p100, p300 = world["local"], world["remote"], world["p100"], world["p300"]
    contract = price(session, local, p100)
    assert (contract.kind, contract.unit_price, contract.price_list.code) == ("contract", Decimal("990"), "C001-HT")
    # The contract does not price P-300: the group's list does.
    group = price(session, local, p300)
    assert (group.kind, group.unit_price, group.price_list.code) == ("group", Decimal("11.80"), "KA-2027")
    # C002 is in no group and has no contract: the product's list price.
    listed = price(session, remote, p100)
    assert (listed.kind, listed.unit_price, listed.price_list) == ("list", Decimal("1200.00"), None)
    assert listed.currency == "CNY" and listed.source == "list price"


def test_validity_dates_decide_which_lists_count(session, world):
    local, p100 = world["local"], world["p100"]
    # Before the contract starts, the group's list; after the group's ends, the list price.
    assert price(session, local, p100, on=dt.date(2027, 1, 15)).kind == "group"
    assert price(session, local, p100, on=dt.date(2027, 6, 30)).kind == "contract"
    assert price(session, local, p100, on=dt.date(2027, 7, 1)).kind == "group"
    assert price(session, local, p100, on=dt.date(2028, 1, 1)).kind == "list"
    # An inactive list never counts.
    world["contract"].active = False
    session.flush()
    assert price(session, local, p100).kind == "group"


def test_the_latest_valid_from_wins_among_lists_of_one_kind(session, admin, world):
    local, p100 = world["local"], world["p100"]
    pricing.create_price_list(
        session,
        admin,
        {
            "code": "C001-HT2",
            "name": "Contract amendment",
            "customer_id": local.id,
            "valid_from": "2027-03-01",
            "items": [{"product": "P-100", "unit_price": "980"}],
        },
    )
    assert price(session, local, p100).price_list.code == "C001-HT2"
    assert price(session, local, p100, on=dt.date(2027, 2, 15)).price_list.code == "C001-HT"


def test_tiers_take_the_highest_minimum_quantity_reached(session, admin, world):
    remote, p100 = world["remote"], world["p100"]
    pricing.set_customer_group(session, admin, remote.id, world["group"].id)
    assert price(session, remote, p100, "9.999").unit_price == Decimal("1100")
    tier = price(session, remote, p100, "10")
    assert (tier.unit_price, tier.min_quantity) == (Decimal("1050"), Decimal("10"))
    assert price(session, remote, p100, "500").unit_price == Decimal("1050")


def test_lists_in_another_currency_are_skipped(session, admin, world):
    local, p100 = world["local"], world["p100"]
    pricing.create_price_list(
        session,
        admin,
        {"code": "C001-USD", "name": "USD contract", "currency": "usd", "customer_id": local.id,
         "items": [{"product": "P-100", "unit_price": "150"}]},
    )  # fmt: skip
    usd = price(session, local, p100, currency="USD")
    assert (usd.kind, usd.unit_price, usd.currency) == ("contract", Decimal("150"), "USD")
    assert price(session, local, p100, currency="CNY").unit_price == Decimal("990")
    # Nothing in EUR, and the list price is in CNY: no price.
    assert price(session, local, p100, currency="EUR") is None


def test_price_for_line_uses_the_orders_customer_currency_and_day(session, admin, world):
    order = make_order(session, admin)
    line = next(line for line in order.lines if line.product_id == world["p300"].id)
    found = pricing.price_for_line(session, order, line, on=DAY)
    assert (found.kind, found.unit_price) == ("group", Decimal("11.80"))


# --- keeping the lists: validation, audit, permissions ----------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code": "KA-2027"}, "code"),
        ({"code": "bad code!"}, "code"),
        ({"name": ""}, "name"),
        ({"currency": "RMB1"}, "currency"),
        ({"valid_from": "2027-12-31", "valid_to": "2027-01-01"}, "valid_to"),
        ({"valid_from": "31/12/2027"}, "valid_from"),
        ({"customer_id": "LOCAL"}, "customer_id"),
        ({"customer_group_id": None}, "customer_group_id"),
        ({"customer_id": "1"}, "customer_group_id"),
        ({"items": [{"product": "P-100", "unit_price": "0"}]}, "items"),
        ({"items": [{"product": "P-100", "unit_price": "-5"}]}, "items"),
        ({"items": [{"product": "NOPE", "unit_price": "5"}]}, "items"),
        ({"items": [{"product": "P-100", "unit_price": "abc"}]}, "items"),
        ({"items": [{"product": "P-100", "unit_price": "5"}, {"product": "P-100", "unit_price": "6"}]}, "items"),
        ({"items": [{"product": "P-100", "min_quantity": "-1", "unit_price": "5"}]}, "items"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(session, admin, world, data, field):
    good = {"code": "NEW", "name": "New list", "customer_group_id": world["group"].id, "items": []}
    before = (count(session, IntakePriceList), count(session, IntakePriceListItem), count(session, AuditLog))
    with pytest.raises(ServiceError) as refused:
        pricing.create_price_list(session, admin, {**good, **data})
    assert refused.value.status == 422 and field in refused.value.details
    session.rollback()
    assert (count(session, IntakePriceList), count(session, IntakePriceListItem), count(session, AuditLog)) == before
    # A change with the same bad data leaves the list as it was.
    contract = session.get(IntakePriceList, world["contract"].id)
    if field not in ("customer_group_id",):
        with pytest.raises(ServiceError):
            pricing.update_price_list(session, admin, contract, {**data, "code": data.get("code", "C001-HT")})
        session.rollback()
    contract = session.get(IntakePriceList, world["contract"].id)
    assert (contract.code, contract.name, contract.currency, len(contract.items)) == (
        "C001-HT",
        "Contract HT-2027-01",
        "CNY",
        1,
    )


def test_changes_are_audited_and_items_replaced(session, admin, world):
    contract = world["contract"]
    pricing.update_price_list(
        session,
        admin,
        contract,
        {"valid_to": "2027-09-30", "items": [{"product_id": world["p100"].id, "unit_price": "985"}]},
    )
    session.commit()
    assert contract.valid_to == dt.date(2027, 9, 30) and [i.unit_price for i in contract.items] == [Decimal("985")]
    entry = session.scalars(
        select(AuditLog).where(AuditLog.entity == "intake_price_list", AuditLog.action == "update")
    ).one()
    assert entry.changes["valid_to"] == ["2027-06-30", "2027-09-30"]
    before, after = entry.changes["items"]
    assert len(before) == len(after) == 1 and before != after and after[0].endswith("=985")
    assert session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.entity == "intake_customer_profile")
    )


def test_group_codes_are_unique_and_profiles_need_a_known_group(session, admin, world):
    with pytest.raises(ServiceError) as refused:
        pricing.save_customer_group(session, admin, {"code": "KA", "name": "Again"})
    assert "code" in refused.value.details
    session.rollback()
    with pytest.raises(ServiceError) as refused:
        pricing.set_customer_group(session, admin, world["remote"].id, 9999)
    assert "group_id" in refused.value.details
    session.rollback()
    assert session.get(IntakeCustomerProfile, world["remote"].id) is None
    assert count(session, IntakeCustomerGroup) == 1


def test_only_managers_change_prices(session, world):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    assert pricing.price_lists(session, clerk)  # clerks may read
    with pytest.raises(ServiceError) as refused:
        pricing.create_price_list(session, clerk, {"code": "X", "name": "X", "customer_group_id": world["group"].id})
    assert refused.value.status == 403
    with pytest.raises(ServiceError) as refused:
        pricing.set_customer_group(session, clerk, world["remote"].id, world["group"].id)
    assert refused.value.status == 403


# --- screens ------------------------------------------------------------------------------------


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh_CN", ["价格表", "客户分组", "价格查询", "合同"]),
        ("en", ["Price lists", "Customer groups", "Price check", "Contract"]),
    ],
)
def test_screens_render_in_chinese_and_english(app, session, world, language, words):
    make_user(session, f"m-{language[:2]}@example.com", ["sales_manager"], language=language)
    client = app.test_client()
    login(client, f"m-{language[:2]}@example.com", PASSWORD)
    lists = text(client.get("/intake/price-lists"))
    assert all(word in lists for word in words), lists
    assert "C001-HT" in lists and "KA-2027" in lists
    pid = world["contract"].id
    for path in (
        f"/intake/price-lists/{pid}",
        f"/intake/price-lists/{pid}/edit",
        "/intake/price-lists/new",
        "/intake/groups",
        "/intake/groups/new",
        f"/intake/groups/{world['group'].id}/edit",
        f"/intake/customers/{world['remote'].id}/profile",
        "/intake/price-check",
    ):
        assert client.get(path).status_code == 200, path
    check = text(client.get("/intake/price-check?customer=C001&product=P-100&quantity=1&date=2027-03-15"))
    assert "990" in check and "C001-HT" in check
    listed = text(client.get("/intake/price-check?customer=C002&product=P-100&quantity=12&date=2027-03-15"))
    assert "1200" in listed and 'data-kind="list"' in listed
    tiers = text(client.get(f"/intake/price-lists/{world['group_list'].id}"))
    assert ">10<" in tiers and "1E+1" not in tiers and "1050" in tiers
    if language == "zh_CN":
        assert "合同价，来自价格表" in check
        assert "编码" in text(client.get("/intake/price-lists/new"))


def test_the_price_list_form_saves_rows_and_shows_errors_beside_them(app, session, admin, world):
    make_user(session, "boss@example.com", ["sales_manager"])
    client = app.test_client()
    login(client, "boss@example.com", PASSWORD)
    token = csrf_token(client, "/intake/price-lists/new")
    form = {
        "csrf_token": token,
        "code": "RETAIL",
        "name": "Retail",
        "currency": "CNY",
        "customer_group_id": str(world["group"].id),
        "valid_from": "2027-01-01",
        "active": "1",
        "items-0-product": "P-200",
        "items-0-min_quantity": "",
        "items-0-unit_price": "8500",
        "items-1-product": "P-200",
        "items-1-min_quantity": "5",
        "items-1-unit_price": "-1",
        "items-2-product": "",
        "items-2-min_quantity": "",
        "items-2-unit_price": "",
    }
    refused = text(client.post("/intake/price-lists/new", data=form))
    assert "Must be greater than 0." in refused and 'value="RETAIL"' in refused
    assert session.scalar(select(IntakePriceList).where(IntakePriceList.code == "RETAIL")) is None
    form["items-1-unit_price"] = "8300"
    saved = client.post("/intake/price-lists/new", data=form)
    assert saved.status_code == 302
    session.rollback()
    retail = session.scalars(select(IntakePriceList).where(IntakePriceList.code == "RETAIL")).one()
    assert [(i.min_quantity, i.unit_price) for i in retail.items] == [(Decimal("0"), 8500), (Decimal("5"), 8300)]


def test_the_profile_form_sets_the_customers_group(app, session, world):
    make_user(session, "boss@example.com", ["sales_manager"])
    client = app.test_client()
    login(client, "boss@example.com", PASSWORD)
    path = f"/intake/customers/{world['remote'].id}/profile"
    answer = client.post(path, data={"csrf_token": csrf_token(client, path), "group_id": str(world["group"].id)})
    assert answer.status_code == 302
    session.rollback()
    assert session.get(IntakeCustomerProfile, world["remote"].id).group_id == world["group"].id


def test_reading_needs_read_and_changing_needs_manage(app, session, world):
    make_user(session, "clerk@example.com", ["order_clerk"])
    make_user(session, "wh@example.com", ["warehouse"])
    clerk = app.test_client()
    login(clerk, "clerk@example.com", PASSWORD)
    assert clerk.get("/intake/price-lists").status_code == 200
    assert clerk.get("/intake/price-check").status_code == 200
    for path in ("/intake/price-lists/new", "/intake/groups/new", f"/intake/customers/{world['local'].id}/profile"):
        assert clerk.get(path).status_code == 403, path
    token = csrf_token(clerk, "/intake/price-lists")
    answer = clerk.post("/intake/price-lists/new", data={"csrf_token": token, "code": "X", "name": "X"})
    assert answer.status_code == 403
    warehouse = app.test_client()
    login(warehouse, "wh@example.com", PASSWORD)
    assert warehouse.get("/intake/price-lists").status_code == 403
    assert warehouse.get("/intake/price-check").status_code == 403


# --- API ------------------------------------------------------------------------------------------


def test_api_lists_creates_reads_changes_and_prices(client, session, admin, world):
    api = ApiCaller(client, token_for(session, admin))
    listed = api.get("/api/v1/intake/price-lists")
    assert listed.status_code == 200
    assert [pl["code"] for pl in listed.get_json()["items"]] == ["C001-HT", "KA-2027"]
    body = {
        "code": "C002-HT",
        "name": "Contract for C002",
        "customer_id": world["remote"].id,
        "valid_from": "2027-01-01",
        "items": [
            {"product": "P-100", "unit_price": "1111.50"},
            {"product": "P-100", "min_quantity": 20, "unit_price": 1000},
        ],
    }
    created = api.post("/api/v1/intake/price-lists", json=body)
    assert created.status_code == 201, created.get_json()
    new = created.get_json()
    assert new["items"][1] == {
        "product_id": world["p100"].id,
        "product": "P-100",
        "min_quantity": "20.000",
        "unit_price": "1000.0000",
    }
    assert created.headers["Location"].endswith(f"/api/v1/intake/price-lists/{new['id']}")
    assert api.get(f"/api/v1/intake/price-lists/{new['id']}").get_json()["code"] == "C002-HT"
    changed = api.patch(f"/api/v1/intake/price-lists/{new['id']}", json={"valid_to": "2027-01-31"})
    assert changed.status_code == 200 and changed.get_json()["valid_to"] == "2027-01-31"

    priced = api.get("/api/v1/intake/price?customer=C002&product=P-100&quantity=25&date=2027-01-10")
    assert priced.status_code == 200
    assert priced.get_json() == {
        "unit_price": "1000.0000",
        "currency": "CNY",
        "kind": "contract",
        "price_list_id": new["id"],
        "price_list_code": "C002-HT",
        "min_quantity": "20.000",
    }
    after = api.get("/api/v1/intake/price?customer=C002&product=P-100&quantity=25&date=2027-02-10").get_json()
    assert (after["kind"], after["unit_price"], after["price_list_id"]) == ("list", "1200.0000", None)


def test_api_refuses_bad_input_and_missing_permissions(client, session, admin, world):
    api = ApiCaller(client, token_for(session, admin))
    before = count(session, IntakePriceList)
    bad = api.post(
        "/api/v1/intake/price-lists",
        json={"code": "X1", "name": "X", "customer_id": world["local"].id, "customer_group_id": world["group"].id},
    )
    assert bad.status_code == 422 and "customer_group_id" in bad.get_json()["error"]["details"]
    dates = api.patch(
        f"/api/v1/intake/price-lists/{world['contract'].id}",
        json={"valid_from": "2027-12-01", "valid_to": "2027-01-01"},
    )
    assert dates.status_code == 422
    assert api.get("/api/v1/intake/price-lists/9999").status_code == 404
    assert api.get("/api/v1/intake/price?customer=NOPE&product=P-100").status_code == 404
    assert api.get("/api/v1/intake/price?customer=C001&product=P-100&quantity=abc").status_code == 422
    session.rollback()
    assert count(session, IntakePriceList) == before
    assert session.get(IntakePriceList, world["contract"].id).valid_from == dt.date(2027, 2, 1)

    clerk = ApiCaller(client, token_for(session, make_user(session, "clerk@example.com", ["order_clerk"])))
    assert clerk.get("/api/v1/intake/price-lists").status_code == 200
    assert clerk.post("/api/v1/intake/price-lists", json={"code": "Y", "name": "Y"}).status_code == 403
    assert clerk.patch(f"/api/v1/intake/price-lists/{world['contract'].id}", json={"name": "Z"}).status_code == 403
    warehouse = ApiCaller(client, token_for(session, make_user(session, "wh@example.com", ["warehouse"])))
    assert warehouse.get("/api/v1/intake/price-lists").status_code == 403
    assert warehouse.get("/api/v1/intake/price?customer=C001&product=P-100").status_code == 403
    assert client.get("/api/v1/intake/price-lists").status_code == 401

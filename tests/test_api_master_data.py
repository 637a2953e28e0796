"""The customers and products API: create, read, change, (de)activate, list, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from core.models import AuditLog, Customer, CustomerAddress, CustomerContact, Product
from core.testing import ApiCaller, make_user, order_payload, token_for
from core.web import OrdoState

Caller = ApiCaller


def counts(state: OrdoState) -> dict[str, int]:
    """Rows per master-data table and in the audit log (read on a connection of its own)."""
    with state.engine.connect() as conn:
        return {
            model.__tablename__: conn.scalar(select(func.count()).select_from(model))
            for model in (Customer, CustomerContact, CustomerAddress, Product, AuditLog)
        }


def details(response: TestResponse, status: int = 422) -> dict[str, Any]:
    """The ``details`` of an error envelope answered with ``status``."""
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]["details"]


@pytest.fixture
def api(client: FlaskClient, session, admin, seed) -> Caller:
    """The administrator calling the API."""
    return Caller(client, token_for(session, admin))


NEW_CUSTOMER = {
    "code": "C003",
    "name": "重庆渝新五金有限公司",
    "tax_id": "91500000MA5U000000",
    "contacts": [{"name": "王芳", "phone": "023-6000-0003", "email": "wang@example.com", "role": "buyer"}],
    "addresses": [
        {"label": "warehouse", "province": "重庆市", "city": "重庆市", "region": "西南", "address": "九龙坡区 8 号"}
    ],
}

NEW_PRODUCT = {"sku": "P-400", "name": "Servo drive 伺服驱动器", "unit": "台", "list_price": "2350.00"}


# --- customers --------------------------------------------------------------------------


@pytest.mark.req("CORE-1")
def test_a_customer_is_created_with_contacts_and_addresses(api: Caller, state: OrdoState):
    response = api.post("/api/v1/customers", json=NEW_CUSTOMER)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert response.headers["Location"] == f"/api/v1/customers/{created['id']}"
    fetched = api.get(f"/api/v1/customers/{created['id']}").get_json()
    assert fetched == created
    assert (fetched["code"], fetched["name"], fetched["active"]) == ("C003", "重庆渝新五金有限公司", True)
    assert [(c["name"], c["email"]) for c in fetched["contacts"]] == [("王芳", "wang@example.com")]
    (address,) = fetched["addresses"]
    assert (address["province"], address["city"], address["region"]) == ("重庆市", "重庆市", "西南")
    with state.sessions() as s:
        assert s.scalar(select(AuditLog.action).where(AuditLog.entity == "customer")) == "create"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW_CUSTOMER, "code": "C001"}, "code", "Customer code 'C001' is taken."),
        ({**NEW_CUSTOMER, "code": "has space"}, "code", "Use 1–32 letters, digits, '.', '_' or '-'."),
        ({k: v for k, v in NEW_CUSTOMER.items() if k != "name"}, "name", "Missing data for required field."),
        ({**NEW_CUSTOMER, "id": 77}, "id", "Unknown field."),
        ({**NEW_CUSTOMER, "branch": "XX"}, "branch", "Unknown branch 'XX'."),
        ({**NEW_CUSTOMER, "owner": "nobody@example.com"}, "owner", "No active staff user 'nobody@example.com'."),
    ],
)
def test_bad_customers_are_refused_by_field(
    api: Caller, state: OrdoState, body: dict[str, Any], field: str, message: str
):
    before = counts(state)
    assert details(api.post("/api/v1/customers", json=body))[field] == [message]
    assert counts(state) == before


def test_a_customer_address_needs_province_city_and_address(api: Caller, state: OrdoState):
    before = counts(state)
    body = {**NEW_CUSTOMER, "addresses": [{"province": "重庆市"}]}
    assert details(api.post("/api/v1/customers", json=body)) == {
        "addresses": {
            "0": {"city": ["Missing data for required field."], "address": ["Missing data for required field."]}
        }
    }
    assert counts(state) == before


def test_a_customer_is_changed_field_by_field(api: Caller, seed):
    local = seed["local"].id
    response = api.patch(f"/api/v1/customers/{local}", json={"name": "重庆山城机电股份有限公司"})
    assert response.status_code == 200
    changed = response.get_json()
    assert (changed["code"], changed["name"]) == ("C001", "重庆山城机电股份有限公司")
    assert len(changed["contacts"]) == 1  # left out, left alone
    replaced = api.patch(f"/api/v1/customers/{local}", json={"contacts": [{"name": "赵强"}, {"name": "钱敏"}]})
    assert [c["name"] for c in replaced.get_json()["contacts"]] == ["赵强", "钱敏"]
    taken = api.patch(f"/api/v1/customers/{local}", json={"code": "C002"})
    assert details(taken) == {"code": ["Customer code 'C002' is taken."]}
    assert api.get(f"/api/v1/customers/{local}").get_json()["code"] == "C001"


def test_a_deactivated_customer_leaves_the_list_and_takes_no_orders(api: Caller, seed, state: OrdoState):
    remote = seed["remote"].id
    deactivated = api.post(f"/api/v1/customers/{remote}/deactivate")
    assert (deactivated.status_code, deactivated.get_json()["active"]) == (200, False)
    assert [c["code"] for c in api.get("/api/v1/customers").get_json()["items"]] == ["C001"]
    listed = api.get("/api/v1/customers?include_inactive=true").get_json()["items"]
    assert [c["code"] for c in listed] == ["C001", "C002"]
    refused = api.post("/api/v1/orders", json=order_payload(customer="C002"))
    assert details(refused) == {"customer": ["Customer C002 is deactivated."]}
    reactivated = api.post(f"/api/v1/customers/{remote}/reactivate")
    assert reactivated.get_json()["active"] is True
    assert api.post("/api/v1/orders", json=order_payload(customer="C002")).status_code == 201


def test_customer_lists_search_and_page(api: Caller):
    for n in range(3, 8):
        assert api.post("/api/v1/customers", json={"code": f"C00{n}", "name": f"客户 {n}"}).status_code == 201
    codes: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = api.get("/api/v1/customers?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        codes += [c["code"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert codes == [f"C00{n}" for n in range(1, 8)]
    assert pages == 4
    assert [c["code"] for c in api.get("/api/v1/customers?q=蓉锦").get_json()["items"]] == ["C002"]
    assert [c["code"] for c in api.get("/api/v1/customers?q=c00").get_json()["items"]][:2] == ["C001", "C002"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("cursor=%%%", "cursor"), ("include_inactive=maybe", "include_inactive"), ("x=1", "x")],
)
def test_bad_customer_list_queries_name_the_parameter(api: Caller, query: str, field: str):
    assert list(details(api.get(f"/api/v1/customers?{query}"))) == [field]


def test_an_unknown_customer_is_404(api: Caller):
    for response in (
        api.get("/api/v1/customers/999"),
        api.patch("/api/v1/customers/999", json={"name": "x"}),
        api.post("/api/v1/customers/999/deactivate"),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_customer_permissions(client: FlaskClient, session, seed, state: OrdoState):
    sales = Caller(client, token_for(session, make_user(session, "sales@example.com", ["sales"])))
    assert sales.get("/api/v1/customers").status_code == 200
    before = counts(state)
    assert details(sales.post("/api/v1/customers", json=NEW_CUSTOMER), 403) == {}
    assert sales.post(f"/api/v1/customers/{seed['local'].id}/deactivate").status_code == 403
    assert counts(state) == before
    portal = Caller(
        client, token_for(session, make_user(session, "buyer@example.com", ["customer"], customer=seed["local"]))
    )
    assert portal.get("/api/v1/customers").status_code == 403
    assert portal.get(f"/api/v1/customers/{seed['local'].id}").status_code == 403


# --- products ---------------------------------------------------------------------------


def test_a_product_is_created_read_and_changed(api: Caller):
    response = api.post("/api/v1/products", json=NEW_PRODUCT)
    assert response.status_code == 201, response.get_json()
    product = response.get_json()
    assert (product["sku"], product["unit"], product["list_price"], product["tax_rate"]) == (
        "P-400",
        "台",
        "2350.0000",
        "13.0000",
    )
    assert api.get(f"/api/v1/products/{product['id']}").get_json() == product
    changed = api.patch(f"/api/v1/products/{product['id']}", json={"list_price": "2280.50"}).get_json()
    assert (changed["list_price"], changed["name"]) == ("2280.5000", NEW_PRODUCT["name"])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW_PRODUCT, "list_price": "abc"}, "list_price", "Not a valid number."),
        (
            {**NEW_PRODUCT, "list_price": "1e999"},
            "list_price",
            "Too large: at most 12 digits before the decimal point.",
        ),
        (
            {**NEW_PRODUCT, "list_price": "NaN"},
            "list_price",
            "Special numeric values (nan or infinity) are not permitted.",
        ),
        ({**NEW_PRODUCT, "list_price": "-1"}, "list_price", "List price cannot be negative."),
        ({**NEW_PRODUCT, "list_price": "0.00001"}, "list_price", "Too precise: at most 4 decimal places."),
        ({**NEW_PRODUCT, "tax_rate": "130"}, "tax_rate", "Tax rate is a percentage from 0 to 100."),
        ({**NEW_PRODUCT, "sku": "P-100"}, "sku", "SKU 'P-100' is taken."),
        ({k: v for k, v in NEW_PRODUCT.items() if k != "unit"}, "unit", "Missing data for required field."),
    ],
)
def test_bad_products_are_refused_by_field(
    api: Caller, state: OrdoState, body: dict[str, Any], field: str, message: str
):
    before = counts(state)
    assert message in details(api.post("/api/v1/products", json=body))[field]
    assert counts(state) == before


def test_a_deactivated_product_cannot_be_ordered(api: Caller, seed, state: OrdoState):
    cable = seed["products"][2].id
    assert api.post(f"/api/v1/products/{cable}/deactivate").get_json()["active"] is False
    assert "P-300" not in [p["sku"] for p in api.get("/api/v1/products").get_json()["items"]]
    assert "P-300" in [p["sku"] for p in api.get("/api/v1/products?include_inactive=1").get_json()["items"]]
    refused = api.post("/api/v1/orders", json=order_payload())
    assert details(refused) == {"lines": {"1": {"product": ["Product P-300 is deactivated."]}}}
    assert api.post(f"/api/v1/products/{cable}/reactivate").get_json()["active"] is True


def test_product_lists_search_and_page(api: Caller):
    skus: list[str] = []
    cursor = None
    while True:
        page = api.get("/api/v1/products?limit=1" + (f"&cursor={cursor}" if cursor else "")).get_json()
        skus += [p["sku"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert skus == ["P-100", "P-200", "P-300"]
    assert [p["sku"] for p in api.get("/api/v1/products?q=电缆").get_json()["items"]] == ["P-300"]
    # A customers' cursor is not a products' cursor.
    customer_cursor = api.get("/api/v1/customers?limit=1").get_json()["next_cursor"]
    assert list(details(api.get(f"/api/v1/products?cursor={customer_cursor}"))) == ["cursor"]


def test_product_permissions(client: FlaskClient, session, seed, state: OrdoState):
    portal = Caller(
        client, token_for(session, make_user(session, "buyer@example.com", ["customer"], customer=seed["local"]))
    )
    assert portal.get("/api/v1/products").status_code == 200
    before = counts(state)
    assert portal.post("/api/v1/products", json=NEW_PRODUCT).status_code == 403
    assert portal.patch(f"/api/v1/products/{seed['products'][0].id}", json={"list_price": "1"}).status_code == 403
    assert counts(state) == before
    assert portal.get("/api/v1/products/999").status_code == 404


@pytest.mark.req("IN-2")
def test_a_customer_names_its_salesperson(api: Caller, session, seed):
    from core.testing import make_user

    salesperson = make_user(session, "sales@example.com", ["sales"])
    created = api.post("/api/v1/customers", json={**NEW_CUSTOMER, "owner": "Sales@Example.com"}).get_json()
    assert created["owner_id"] == salesperson.id
    changed = api.patch(f"/api/v1/customers/{created['id']}", json={"owner": None})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["owner_id"] is None

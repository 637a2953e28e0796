"""Customer and product screens: create, edit, validate like the API, deactivate with care."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.models import Customer, Order, Product
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, csrf_token, login, make_user


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any], follow: bool = True) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/login")}, follow_redirects=follow)


def input_block(page: str, name: str) -> str:
    """The markup from the input called ``name`` to the end of its cell or field."""
    start = page.rfind("<", 0, page.index(f'name="{name}"'))
    ends = [i for i in (page.find("</td>", start), page.find('<div class="col', start)) if i != -1]
    return page[start : min(ends)]


def fresh(session: Any, model: Any, **where: Any) -> Any:
    """One stored row as it is now (the read is committed so the app can write)."""
    session.commit()
    stmt = select(model).filter_by(**where).execution_options(populate_existing=True)
    if model is Customer:
        stmt = stmt.options(selectinload(Customer.contacts), selectinload(Customer.addresses))
    row = session.scalars(stmt).one_or_none()
    session.commit()
    return row


@pytest.fixture
def as_admin(client, admin, seed, session):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


def customer_form(**overrides: str) -> dict[str, str]:
    data = {
        "code": "C100",
        "name": "上海浦江设备有限公司",
        "tax_id": "91310000MA1FL0000X",
        "branch": "HQ",
        "note": "Key account",
        "contacts-0-name": "陈静",
        "contacts-0-phone": "021-5000-0100",
        "contacts-0-email": "chen@example.com",
        "contacts-0-role": "Buyer",
        "contacts-3-name": "刘洋",
        "contacts-3-phone": "",
        "contacts-3-email": "",
        "contacts-3-role": "Receiver",
        "addresses-0-label": "Warehouse",
        "addresses-0-province": "上海市",
        "addresses-0-city": "上海市",
        "addresses-0-district": "浦东新区",
        "addresses-0-address": "张江路 88 号",
        "addresses-0-postcode": "201203",
        "addresses-0-region": "East",
    }
    data.update(overrides)
    return data


@pytest.mark.req("CORE-1")
def test_a_customer_is_created_with_contacts_and_addresses(as_admin, session):
    response = post(as_admin, "/customers/new", customer_form(), follow=False)
    assert response.status_code == 302
    customer = fresh(session, Customer, code="C100")
    assert customer.name == "上海浦江设备有限公司"
    assert [(c.name, c.email, c.role) for c in customer.contacts] == [
        ("陈静", "chen@example.com", "Buyer"),
        ("刘洋", "", "Receiver"),
    ]
    assert [(a.province, a.district, a.address) for a in customer.addresses] == [("上海市", "浦东新区", "张江路 88 号")]
    page = text(as_admin.get(response.headers["Location"]))
    assert "Customer C100 was created." in page
    assert "chen@example.com" in page and "张江路 88 号" in page
    assert "C100" in text(as_admin.get("/customers?q=浦江"))


def test_customer_errors_are_shown_beside_fields_and_nothing_is_saved(as_admin, session):
    response = post(
        as_admin,
        "/customers/new",
        customer_form(
            **{"code": "C 100", "contacts-3-name": "", "contacts-0-email": "not-an-email", "addresses-0-city": ""}
        ),
    )
    assert response.status_code == 422
    page = text(response)
    assert "Use 1–32 letters, digits, '.', '_' or '-'." in input_block(page, "code")
    assert "Not a valid email address." in input_block(page, "contacts-0-email")
    assert "Required; at most 100 characters." in input_block(page, "contacts-1-name")
    assert "Required; at most 64 characters." in input_block(page, "addresses-0-city")
    assert 'value="上海浦江设备有限公司"' in page
    assert fresh(session, Customer, name="上海浦江设备有限公司") is None

    taken = post(as_admin, "/customers/new", customer_form(code="C001"))
    assert "Customer code C001 is already taken." in input_block(text(taken), "code")


def test_editing_a_customer_replaces_its_contacts(as_admin, session, seed):
    customer_id = seed["local"].id
    form = text(as_admin.get(f"/customers/{customer_id}/edit"))
    assert 'value="张伟"' in form and 'value="渝北区金开大道 1 号"' in form
    assert re.search(r'<option selected value="">', form)  # no branch yet
    post(
        as_admin,
        f"/customers/{customer_id}/edit",
        {
            "code": "C001",
            "name": "重庆山城机电股份有限公司",
            "branch": "CD",
            "contacts-0-name": "王芳",
            "contacts-0-phone": "023-6000-0009",
            "addresses-0-province": "重庆市",
            "addresses-0-city": "重庆市",
            "addresses-0-address": "江北区建新北路 2 号",
        },
    )
    customer = fresh(session, Customer, id=customer_id)
    assert customer.name == "重庆山城机电股份有限公司"
    assert customer.branch_id == seed["cd"].id
    assert [c.name for c in customer.contacts] == ["王芳"]
    assert [a.address for a in customer.addresses] == ["江北区建新北路 2 号"]


def test_a_deactivated_customer_asks_first_and_then_takes_no_new_orders(as_admin, session, seed):
    page = text(as_admin.get(f"/customers/{seed['local'].id}"))
    form = re.search(r'<form[^>]*action="/customers/\d+/active"[^>]*>', page).group(0)
    assert 'data-confirm="Deactivate customer 重庆山城机电有限公司?' in form

    post(as_admin, f"/customers/{seed['local'].id}/active", {"active": "0"})
    assert fresh(session, Customer, id=seed["local"].id).active is False
    assert "C001" not in text(as_admin.get("/customers"))
    assert "C001" in text(as_admin.get("/customers?inactive=1"))
    assert 'value="C001"' not in text(as_admin.get("/orders/new"))

    post(as_admin, f"/customers/{seed['local'].id}/active", {"active": "1"})
    assert fresh(session, Customer, id=seed["local"].id).active is True


def test_customer_management_needs_its_permission(client, session, seed):
    make_user(session, "sales@example.com", ["sales"])
    login(client, "sales@example.com", PASSWORD)
    assert client.get("/customers").status_code == 200
    assert client.get(f"/customers/{seed['local'].id}").status_code == 200
    assert "New customer" not in text(client.get("/customers"))
    assert client.get("/customers/new").status_code == 403
    assert client.get(f"/customers/{seed['local'].id}/edit").status_code == 403
    assert post(client, f"/customers/{seed['local'].id}/active", {"active": "0"}, follow=False).status_code == 403
    assert fresh(session, Customer, id=seed["local"].id).active is True
    assert client.get("/customers/999999").status_code == 404


def product_form(**overrides: str) -> dict[str, str]:
    data = {
        "sku": "P-400",
        "name": "Frequency inverter 变频器",
        "spec": "7.5 kW, 380 V",
        "unit": "台",
        "category": "drives",
        "list_price": "3680.50",
        "tax_rate": "13",
        "regular": "y",
    }
    data.update(overrides)
    return data


def test_a_product_is_created_and_edited(as_admin, session):
    response = post(as_admin, "/products/new", product_form(), follow=False)
    assert response.status_code == 302
    product = fresh(session, Product, sku="P-400")
    assert (product.list_price, product.tax_rate, product.regular) == (Decimal("3680.5"), Decimal("13"), True)
    form = text(as_admin.get(f"/products/{product.id}/edit"))
    assert 'value="3680.50"' in form
    post(as_admin, f"/products/{product.id}/edit", product_form(list_price="3500", regular=""))
    product = fresh(session, Product, sku="P-400")
    assert (product.list_price, product.regular) == (Decimal("3500"), False)
    assert "3,500.00" in text(as_admin.get("/products?q=变频"))


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"list_price": "12,5x"}, "list_price", "Not a valid number."),
        ({"list_price": "-1"}, "list_price", "List price cannot be negative."),
        ({"list_price": ""}, "list_price", "This field is required."),
        ({"tax_rate": "130"}, "tax_rate", "Tax rate is a percentage from 0 to 100."),
        ({"sku": "P-100"}, "sku", "SKU P-100 is already taken."),
        ({"unit": ""}, "unit", "Required; at most 16 characters."),
    ],
)
def test_product_errors_are_shown_beside_fields_and_nothing_is_saved(as_admin, session, overrides, field, message):
    response = post(as_admin, "/products/new", product_form(**overrides))
    assert response.status_code == 422
    block = input_block(text(response), field)
    assert "is-invalid" in block and message in block
    assert fresh(session, Product, name="Frequency inverter 变频器") is None


@pytest.mark.req("IN-3")
def test_a_deactivated_product_cannot_be_ordered(as_admin, session, seed):
    product = seed["products"][0]
    page = text(as_admin.get(f"/products/{product.id}"))
    assert re.search(r'<form[^>]*action="/products/\d+/active"[^>]*data-confirm="Deactivate product', page)
    post(as_admin, f"/products/{product.id}/active", {"active": "0"})
    assert fresh(session, Product, id=product.id).active is False
    assert 'value="P-100"' not in text(as_admin.get("/orders/new"))
    refused = post(
        as_admin,
        "/orders/new",
        {
            "customer": "C001",
            "channel": "email",
            "payment_method": "prepayment",
            "currency": "CNY",
            "lines-0-product": "P-100",
            "lines-0-quantity": "1",
        },
    )
    assert refused.status_code == 422
    assert "Product P-100 is deactivated." in input_block(text(refused), "lines-0-product")
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    session.commit()


def test_product_management_needs_its_permission(client, session, seed):
    make_user(session, "sales@example.com", ["sales"])
    login(client, "sales@example.com", PASSWORD)
    assert "P-100" in text(client.get("/products"))
    assert client.get("/products/new").status_code == 403
    assert post(client, f"/products/{seed['products'][0].id}/active", {"active": "0"}, follow=False).status_code == 403
    assert fresh(session, Product, id=seed["products"][0].id).active is True


def test_lists_sort_and_page(as_admin, session):
    session.add_all(Product(sku=f"X-{n:02d}", name=f"Item {n}", unit="pcs", list_price=Decimal(n)) for n in range(30))
    session.commit()
    first = text(as_admin.get("/products?sort=-price"))
    assert re.findall(r'<tr data-product="([^"]+)"', first)[:2] == ["P-200", "P-100"]
    assert "1–20 of 33" in first
    last = text(as_admin.get("/products?sort=sku&page=2"))
    assert re.findall(r'<tr data-product="([^"]+)"', last)[-1] == "X-29"
    assert 'aria-current="page">2<' in last

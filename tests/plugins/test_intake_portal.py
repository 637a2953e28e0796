"""Intake's customer portal (IN-8, IN-1, IN-3): catalogue, cart, checkout, my orders, isolation, gate."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attachments.service import add_attachment
from core.clock import company_now
from core.documents.archive import issue_document
from core.models import Customer, Order, OrderTransition, Product, User
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.intake import portal
from plugins.intake.models import IntakeCustomerProfile, IntakePriceList, IntakePriceListItem

pytestmark = pytest.mark.req("IN-8")

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def fresh(session: Session) -> Session:
    session.commit()  # end the read snapshot: the app wrote through its own session
    return session


def order_count(session: Session) -> int:
    return fresh(session).scalar(select(func.count(Order.id))) or 0


@pytest.fixture
def world(session: Session, seed: dict[str, Any]) -> dict[str, Any]:
    """Two customers with a portal user each, a second (view-only) user of C001, a contract price list."""
    local, remote = seed["local"], seed["remote"]
    p100, p200, p300 = seed["products"]
    session.add(
        IntakePriceList(
            code="C001-2026",
            name="山城合同价",
            customer_id=local.id,
            contract_number="HT-2026-01",
            items=[
                IntakePriceListItem(product_id=p100.id, unit_price=Decimal("1100"), min_quantity=Decimal("0")),
                IntakePriceListItem(product_id=p100.id, unit_price=Decimal("1000"), min_quantity=Decimal("10")),
            ],
        )
    )
    session.commit()
    return {
        **seed,
        "buyer": make_user(session, "buyer@shancheng.example", ["customer"], customer=local),
        "other": make_user(session, "buyer@rongjin.example", ["customer"], customer=remote),
        "viewer": make_user(session, "viewer@shancheng.example", ["customer"], customer=local),
        "p100": p100,
        "p200": p200,
        "p300": p300,
    }


def client_for(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email, PASSWORD)
    return client


@pytest.fixture
def buyer(app: Flask, world: dict[str, Any]) -> FlaskClient:
    return client_for(app, "buyer@shancheng.example")


def add(client: FlaskClient, product: Product, quantity: str) -> Any:
    return client.post(
        "/portal/", data={"csrf_token": csrf_token(client, "/portal/"), "product": product.id, "quantity": quantity}
    )


def reviewed_fields(client: FlaskClient) -> dict[str, str]:
    """The checkout form's hidden fields as the cart page shows them (prices and quantities reviewed)."""
    page = client.get("/portal/cart").get_data(as_text=True)
    fields = dict(re.findall(r'name="((?:price|reviewed)-\d+)" value="([^"]*)"', page))
    fields["csrf_token"] = csrf_token(client, "/portal/cart")
    return fields


def header(world: dict[str, Any], **changes: Any) -> dict[str, Any]:
    local: Customer = world["local"]
    values = {
        "requested_date": (company_now().date() + dt.timedelta(days=30)).isoformat(),
        "payment_method": "monthly_settlement",
        "address": str(local.addresses[0].id),
        "contact": str(local.contacts[0].id),
        "reference": "PO-SC-001",
        "note": "请周一送货",
    }
    values.update(changes)
    return values


def checkout(client: FlaskClient, world: dict[str, Any], **changes: Any) -> Any:
    return client.post("/portal/checkout", data={**reviewed_fields(client), **header(world, **changes)})


# --- the gate -------------------------------------------------------------------------------


def test_staff_screens_send_a_portal_user_to_the_portal(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    for path in ("/", "/orders", "/customers", "/products", "/intake/price-lists", "/admin/plugins"):
        answer = buyer.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].endswith("/portal/"), (path, answer.headers["Location"])
    order = make_order(session, world["buyer"], channel="portal", lines=[{"product": "P-100", "quantity": "1"}])
    answer = buyer.get(f"/orders/{order.id}")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/portal/orders/{order.id}")
    # Its notifications stay open, with the portal's navigation instead of the staff menu.
    page = text(buyer.get("/notifications"))
    assert "Catalogue" in page and "My orders" in page
    assert 'href="/customers' not in page and 'href="/orders"' not in page
    # The API has its own authentication: not redirected to the portal.
    api = buyer.get("/api/v1/orders")
    assert not (api.status_code == 302 and "/portal" in api.headers.get("Location", ""))


def test_staff_get_403_on_the_portal_and_visitors_log_in(
    app: Flask, client: FlaskClient, session: Session, seed: dict[str, Any]
) -> None:
    make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    clerk = client_for(app, "clerk@example.com")
    for path in ("/portal/", "/portal/cart", "/portal/orders"):
        assert clerk.get(path).status_code == 403, path
    assert "Not allowed" in text(clerk.get("/portal/"))
    anonymous = client.get("/portal/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


# --- catalogue and cart -----------------------------------------------------------------------


def price_in(page: str, sku: str) -> str:
    row = re.search(rf'<tr data-product="{sku}">(.*?)</tr>', page, re.S)
    assert row, f"{sku} not listed"
    found = re.search(r'data-price="([^"]*)"', row.group(1))
    assert found
    return found.group(1)


@pytest.mark.req("IN-3")
def test_catalogue_shows_each_customers_price_today_and_searches(
    app: Flask, buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    world["p200"].active = False
    session.commit()
    page = text(buyer.get("/portal/"))
    assert price_in(page, "P-100") == "1100.00"  # C001's contract price
    assert "Contract price" in page and "from 10" in page  # its tiers
    assert price_in(page, "P-300") == "12.50"  # the list price
    assert 'data-product="P-200"' not in page  # inactive products are not offered
    other = text(client_for(app, "buyer@rongjin.example").get("/portal/"))
    assert price_in(other, "P-100") == "1200.00"  # C002 has no contract: the list price
    found = text(buyer.get("/portal/?q=cable"))
    assert 'data-product="P-300"' in found and 'data-product="P-100"' not in found


def test_catalogue_pages(buyer: FlaskClient, session: Session, world: dict[str, Any]) -> None:
    session.add_all(Product(sku=f"X-{n:03d}", name=f"Part {n}", unit="个", list_price=Decimal("5")) for n in range(30))
    session.commit()
    first = text(buyer.get("/portal/"))
    assert "1–20 of 33" in first and 'data-product="X-016"' in first and 'data-product="X-017"' not in first
    second = text(buyer.get("/portal/?page=2"))
    assert "21–33 of 33" in second and 'data-product="X-017"' in second


def test_adding_refuses_bad_quantities_beside_the_field(buyer: FlaskClient, world: dict[str, Any]) -> None:
    for quantity, message in (("two", "“two” is not a number"), ("0", "greater than 0"), ("-3", "greater than 0")):
        answer = add(buyer, world["p100"], quantity)
        assert answer.status_code == 422, quantity
        assert message in text(answer) and "invalid-feedback" in text(answer)
    assert "Your cart is empty." in text(buyer.get("/portal/cart"))
    assert add(buyer, world["p100"], "2").status_code == 302
    cart = text(buyer.get("/portal/cart"))
    assert 'data-cart-line="P-100"' in cart and 'data-cart-count="1"' in cart


def test_a_product_without_a_price_cannot_be_ordered(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    special = Product(sku="P-900", name="Custom build 定制", unit="套", list_price=Decimal("0"))
    session.add(special)
    session.commit()
    assert price_in(text(buyer.get("/portal/")), "P-900") == ""
    refused = add(buyer, special, "1")
    assert refused.status_code == 422 and "No price applies to P-900" in text(refused)
    # Even when it reaches the cart (added while it still had a price), checkout refuses it.
    special.list_price = Decimal("10")
    session.commit()
    assert add(buyer, special, "1").status_code == 302
    special.list_price = Decimal("0")
    session.commit()
    before = order_count(session)
    answer = checkout(buyer, world)
    assert answer.status_code == 422 and "No price applies to P-900" in text(answer)
    assert order_count(session) == before


@pytest.mark.req("IN-3")
def test_cart_reprices_on_quantity_change_and_removes(buyer: FlaskClient, world: dict[str, Any]) -> None:
    add(buyer, world["p100"], "2")
    add(buyer, world["p300"], "100")
    cart = text(buyer.get("/portal/cart"))
    assert 'data-unit-price="1100.00"' in cart
    assert re.search(r'data-total="untaxed">3,450.00<', cart)  # 2 × 1100 + 100 × 12.50
    token = csrf_token(buyer, "/portal/cart")
    p100, p300 = world["p100"].id, world["p300"].id
    bad = buyer.post("/portal/cart", data={"csrf_token": token, f"qty-{p100}": "12", f"qty-{p300}": "lots"})
    assert bad.status_code == 422 and "“lots” is not a number" in text(bad)
    assert 'data-unit-price="1100.00"' in text(buyer.get("/portal/cart"))  # nothing changed
    assert (
        buyer.post("/portal/cart", data={"csrf_token": token, f"qty-{p100}": "12", f"qty-{p300}": "100"}).status_code
        == 302
    )
    assert 'data-unit-price="1000.00"' in text(buyer.get("/portal/cart"))  # the tier from 10
    buyer.post(f"/portal/cart/remove/{p300}", data={"csrf_token": token})
    cart = text(buyer.get("/portal/cart"))
    assert 'data-cart-line="P-300"' not in cart and 'data-cart-line="P-100"' in cart


# --- checkout -------------------------------------------------------------------------------


@pytest.mark.req("IN-1")
def test_checkout_creates_a_portal_order_at_the_applicable_price_in_manual_check(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    add(buyer, world["p100"], "2")
    add(buyer, world["p300"], "100")
    before = order_count(session)
    answer = checkout(buyer, world, urgent="y")
    assert answer.status_code == 302, text(answer)
    assert order_count(session) == before + 1
    order = session.scalar(select(Order).order_by(Order.id.desc()).limit(1))
    assert order is not None
    assert (order.channel, order.customer_id, order.created_by_id) == ("portal", world["local"].id, world["buyer"].id)
    assert order.step == "intake.manual_check" and order.urgency == "urgent"
    assert [(line.product.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("P-100", Decimal("2"), Decimal("1100")),
        ("P-300", Decimal("100"), Decimal("12.5")),
    ]
    assert order.reference == "PO-SC-001" and order.payment_method == "monthly_settlement"
    assert (order.contact_name, order.ship_to_city) == ("张伟", "重庆市")
    assert answer.headers["Location"].endswith(f"/portal/orders/{order.id}")
    page = text(buyer.get(answer.headers["Location"]))
    assert f"We received order {order.number}" in page and "Manual check" in page
    assert "Your cart is empty." in text(buyer.get("/portal/cart"))  # emptied
    listed = text(buyer.get("/portal/orders"))
    assert f'data-order="{order.number}"' in listed


@pytest.mark.req("IN-3")
def test_a_tampered_price_is_refused_and_nothing_is_written(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    add(buyer, world["p100"], "2")
    before = order_count(session)
    fields = {**reviewed_fields(buyer), **header(world), f"price-{world['p100'].id}": "1.00"}
    answer = buyer.post("/portal/checkout", data=fields)
    assert answer.status_code == 422
    assert "Prices have changed since you reviewed your cart" in text(answer)
    assert order_count(session) == before
    # A price changed by the supplier after the review is refused the same way.
    reviewed = reviewed_fields(buyer)
    item = session.scalar(select(IntakePriceListItem).where(IntakePriceListItem.min_quantity == 0))
    assert item is not None
    item.unit_price = Decimal("1050")
    session.commit()
    answer = buyer.post("/portal/checkout", data={**reviewed, **header(world)})
    assert answer.status_code == 422 and "Prices have changed" in text(answer)
    assert order_count(session) == before


def test_another_customer_is_refused_and_nothing_is_written(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    add(buyer, world["p100"], "1")
    before = order_count(session)
    remote: Customer = world["remote"]
    for name, value in (("customer_id", str(remote.id)), ("customer", remote.code)):
        answer = buyer.post("/portal/checkout", data={**reviewed_fields(buyer), **header(world), name: value})
        assert answer.status_code == 403, name
        assert "You can only place orders for your own company (C001)" in text(answer)
    # Another customer's address or contact is no choice either.
    answer = checkout(buyer, world, address=str(remote.addresses[0].id), contact=str(remote.contacts[0].id))
    assert answer.status_code == 422
    page = text(answer)
    assert "Choose one of your delivery addresses." in page and "Choose one of your contacts." in page
    assert order_count(session) == before


def test_bad_header_values_are_refused_field_by_field(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    session.add(IntakeCustomerProfile(customer_id=world["local"].id, payment_methods="prepayment"))
    session.commit()
    add(buyer, world["p100"], "1")
    before = order_count(session)
    answer = checkout(buyer, world, requested_date="2001-01-01", payment_method="monthly_settlement")
    page = text(answer)
    assert answer.status_code == 422
    assert "The requested date cannot be in the past." in page
    assert "Choose one of the payment methods offered." in page
    assert 'value="monthly_settlement"' not in page  # only the allowed method is offered
    answer = checkout(buyer, world, requested_date="next week", payment_method="prepayment")
    assert answer.status_code == 422 and "“next week” is not a date." in text(answer)
    assert order_count(session) == before


@pytest.mark.req("IN-4")
def test_a_rejected_order_shows_the_reasons(buyer: FlaskClient, session: Session, world: dict[str, Any]) -> None:
    session.add(IntakeCustomerProfile(customer_id=world["local"].id, blocked=True, blocked_reason="overdue invoices"))
    session.commit()
    add(buyer, world["p100"], "1")
    answer = checkout(buyer, world)
    assert answer.status_code == 302
    order = fresh(session).scalar(select(Order).order_by(Order.id.desc()).limit(1))
    assert order is not None and order.status == "rejected" and order.channel == "portal"
    page = text(buyer.get(answer.headers["Location"]))
    assert f"Order {order.number} could not be accepted" in page
    assert "Customer C001 is blocked: overdue invoices." in page
    assert 'id="rejection-reasons"' in page and "Rejected by the automatic check" in page


# --- ordering accounts ----------------------------------------------------------------------


def test_a_view_only_account_browses_but_cannot_order(app: Flask, session: Session, world: dict[str, Any]) -> None:
    viewer = client_for(app, "viewer@shancheng.example")
    page = text(viewer.get("/portal/"))
    assert "This is a view-only account" in page
    assert price_in(page, "P-100") == "1100.00" and 'name="quantity"' not in page
    token = csrf_token(viewer, "/portal/")
    refused = viewer.post("/portal/", data={"csrf_token": token, "product": world["p100"].id, "quantity": "1"})
    assert refused.status_code == 302 and 'data-cart-count="0"' in text(viewer.get("/portal/cart"))
    before = order_count(session)
    with viewer.session_transaction() as browser:
        browser["intake_portal_cart"] = {"user": world["viewer"].id, "items": {str(world["p100"].id): "1"}}
    answer = viewer.post("/portal/checkout", data={**reviewed_fields(viewer), **header(world)})
    assert answer.status_code == 403 and "This is a view-only account" in text(answer)
    assert order_count(session) == before
    # It follows its company's orders all the same.
    order = make_order(session, world["buyer"], channel="portal", lines=[{"product": "P-100", "quantity": "1"}])
    assert f'data-order="{order.number}"' in text(viewer.get("/portal/orders"))


def test_more_ordering_accounts_by_setting(app: Flask, session: Session, world: dict[str, Any], state: Any) -> None:
    state.registry.settings.setdefault(portal.ORDERING_ACCOUNTS, portal.SETTINGS[0])
    set_setting(session, portal.ORDERING_ACCOUNTS, 2, registry=state.registry)
    session.commit()
    viewer = client_for(app, "viewer@shancheng.example")
    assert "view-only" not in text(viewer.get("/portal/"))
    assert add(viewer, world["p100"], "1").status_code == 302
    assert portal.ordering_account_ids(session, world["local"].id) == [world["buyer"].id, world["viewer"].id]
    # A deactivated first account frees its place: the first N *active* users order.
    set_setting(session, portal.ORDERING_ACCOUNTS, 1, registry=state.registry)
    world["buyer"].active = False
    session.commit()
    assert portal.ordering_account_ids(session, world["local"].id) == [world["viewer"].id]


# --- my orders ----------------------------------------------------------------------------------


def test_each_customer_sees_only_its_own_orders(
    app: Flask, buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    mine = make_order(session, world["buyer"], channel="portal", lines=[{"product": "P-100", "quantity": "1"}])
    theirs = make_order(
        session, world["other"], customer="C002", channel="portal", lines=[{"product": "P-300", "quantity": "5"}]
    )
    listed = text(buyer.get("/portal/orders"))
    assert f'data-order="{mine.number}"' in listed and theirs.number not in listed
    assert buyer.get(f"/portal/orders/{theirs.id}").status_code == 404
    assert (
        buyer.post(
            f"/portal/orders/{theirs.id}/reorder", data={"csrf_token": csrf_token(buyer, "/portal/")}
        ).status_code
        == 404
    )
    other = client_for(app, "buyer@rongjin.example")
    assert other.get(f"/portal/orders/{mine.id}").status_code == 404
    assert f'data-order="{theirs.number}"' in text(other.get("/portal/orders"))


def test_order_page_hides_staff_and_lists_customer_documents_and_shared_files(
    app: Flask, buyer: FlaskClient, session: Session, world: dict[str, Any], state: Any
) -> None:
    clerk = make_user(session, "wang.clerk@example.com", ["admin"])
    order = make_order(session, world["buyer"], channel="portal", lines=[{"product": "P-100", "quantity": "1"}])
    take_action(session, state.registry, world["buyer"], order, "submit")
    session.commit()
    order = session.get(Order, order.id)
    assert order is not None
    if order.step == "intake.manual_check":
        take_action(session, state.registry, clerk, order, "accept")
    shared = add_attachment(session, clerk, order.id, filename="drawing.pdf", data=PDF, customer_visible=True)
    internal = add_attachment(session, clerk, order.id, filename="cost-notes.pdf", data=PDF + b"x")
    issued = issue_document(session, state.registry, "order_confirmation", order, clerk, "en")
    session.commit()
    page = text(buyer.get(f"/portal/orders/{order.id}"))
    assert "wang.clerk" not in page and "Staff" in page
    assert f'data-attachment="{shared.id}"' in page and f'data-attachment="{internal.id}"' not in page
    assert f"/orders/{order.id}/issued-documents/{issued.id}.pdf" in page
    download = buyer.get(f"/orders/{order.id}/attachments/{shared.id}")
    assert download.status_code == 200 and download.data == PDF
    assert buyer.get(f"/orders/{order.id}/attachments/{internal.id}").status_code == 404
    pdf = buyer.get(f"/orders/{order.id}/issued-documents/{issued.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    transitions = fresh(session).scalars(select(OrderTransition).where(OrderTransition.order_id == order.id))
    assert any(t.actor_id == clerk.id for t in transitions)


def test_order_again_copies_lines_and_skips_inactive_products(
    buyer: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    order = make_order(
        session,
        world["buyer"],
        channel="portal",
        lines=[{"product": "P-100", "quantity": "3"}, {"product": "P-300", "quantity": "40"}],
    )
    world["p300"].active = False
    session.commit()
    add(buyer, world["p100"], "1")
    answer = buyer.post(f"/portal/orders/{order.id}/reorder", data={"csrf_token": csrf_token(buyer, "/portal/")})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/portal/cart")
    cart = text(buyer.get("/portal/cart"))
    assert "Not offered any more, so not added: P-300." in cart
    assert f'name="qty-{world["p100"].id}" value="4"' in cart  # 1 already there + 3 again
    assert 'data-cart-line="P-300"' not in cart
    assert 'data-unit-price="1100.00"' in cart  # today's price


def test_portal_users_are_users_with_a_customer(session: Session, world: dict[str, Any]) -> None:
    buyer: User = world["buyer"]
    assert portal.portal_may_open("intake_portal.cart", "/portal/cart")
    assert portal.portal_may_open("notifications.list_notifications", "/notifications")
    assert not portal.portal_may_open("orders.list_orders", "/orders")
    assert portal.portal_may_open("anything", "/api/v1/orders")
    assert portal.may_order(session, buyer) and not portal.may_order(session, world["viewer"])

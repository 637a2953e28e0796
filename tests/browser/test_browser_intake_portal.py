"""The customer portal in a real browser (IN-8): log in, fill the cart, check out, follow the order."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from core.clock import company_now
from core.models import Order
from core.testing import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.req("IN-8")]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def test_a_customer_orders_two_products_and_follows_the_order(live_server, browser_page, session, seed):
    make_user(session, "buyer@shancheng.example", ["customer"], customer=seed["local"], language="en")
    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill("buyer@shancheng.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/portal/$"))  # the portal, never the staff screens
    assert page.get_by_role("link", name="Customers").count() == 0

    page.get_by_label("Quantity of P-100").fill("2")
    page.get_by_role("button", name="Add P-100").click()
    page.wait_for_selector(".alert-success >> text=Added 2 × P-100")
    page.get_by_label("Search by SKU or name").fill("cable")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"q=cable"))
    page.get_by_label("Quantity of P-300").fill("100")
    page.get_by_role("button", name="Add P-300").click()
    page.wait_for_selector(".alert-success >> text=Added 100 × P-300")
    assert page.locator("[data-cart-count]").inner_text().startswith("2")

    page.locator(".ordo-portal-nav").get_by_role("link", name=re.compile("Cart")).click()
    page.wait_for_url(re.compile(r"/portal/cart$"))
    # 2 × 1200 + 100 × 12.50 = 3,650.00 untaxed; 13 % VAT makes 4,124.50.
    assert page.locator('[data-total="untaxed"]').inner_text() == "3,650.00"
    assert page.locator('[data-total="total"]').inner_text().endswith("4,124.50")
    requested = (company_now().date() + dt.timedelta(days=30)).isoformat()
    page.get_by_label("Requested delivery date").fill(requested)
    page.get_by_label("Payment method").select_option("monthly_settlement")
    page.get_by_label("Your reference").fill("PO-BROWSER-PORTAL")
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url(re.compile(r"/portal/orders/\d+$"))
    assert "We received order" in page.locator(".alert-success").inner_text()
    page.screenshot(path="/tmp/ordo-portal-order.png", full_page=True)
    session.rollback()
    order = session.scalar(select(Order).where(Order.reference == "PO-BROWSER-PORTAL"))
    assert order is not None and order.channel == "portal" and order.step == "intake.manual_check"
    number = order.number
    session.rollback()

    page.locator(".ordo-portal-nav").get_by_role("link", name="My orders").click()
    page.wait_for_url(re.compile(r"/portal/orders$"))
    row = page.locator(f'tr[data-order="{number}"]')
    assert row.locator(".ordo-status").inner_text() == "Submitted"
    assert "Manual check" in row.inner_text() and "4,124.50" in row.inner_text()

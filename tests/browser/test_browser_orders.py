"""Smoke test in a real browser: log in, enter an order with two lines, submit it, find it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.models import Order
from core.testing import PASSWORD, make_user

pytestmark = pytest.mark.browser


@pytest.mark.req("CORE-1")
def test_enter_submit_and_find_an_order(live_server, browser_page, session, seed, state):
    make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"], language="en")
    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill("clerk@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/orders$"))

    page.get_by_role("link", name="New order").click()
    page.wait_for_url(re.compile(r"/orders/new$"))
    page.get_by_label("Customer", exact=True).select_option("C001")
    # Choosing the customer fills the empty ship-to fields from its address.
    assert page.get_by_label("City").input_value() == "重庆市"
    page.get_by_label("Channel").select_option("phone")
    page.get_by_label("Payment method").select_option("monthly_settlement")
    page.get_by_label("Reference / contract no.").fill("PO-BROWSER-1")

    rows = page.locator("[data-row]")
    rows.nth(0).get_by_label("Product").fill("P-100")
    rows.nth(0).get_by_label("Quantity").fill("2")
    rows.nth(0).get_by_label("Unit price").fill("1150")
    page.get_by_role("button", name="Add line").click()
    rows.nth(1).get_by_label("Product").fill("P-300")
    rows.nth(1).get_by_label("Quantity").fill("100")
    # The browser previews the totals (2 × 1150 + 100 × 12.50, plus 13 % VAT).
    assert page.locator('[data-total="untaxed"]').inner_text() == "3,550.00"
    assert page.locator('[data-total="total"]').inner_text() == "4,011.50"
    page.get_by_role("button", name="Save draft").click()

    page.wait_for_url(re.compile(r"/orders/\d+$"))
    assert "was saved as a draft" in page.locator(".alert-success").inner_text()
    assert page.locator("#order-total").inner_text().endswith("4,011.50")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector(".alert-success >> text=it is now at step")
    assert page.locator("h1 .ordo-status").inner_text() == "Submitted"
    page.screenshot(path="/tmp/ordo-order-page.png", full_page=True)

    page.get_by_role("link", name="Orders", exact=True).first.click()
    session.rollback()
    number = session.scalar(select(Order.number).where(Order.reference == "PO-BROWSER-1"))
    session.rollback()
    row = page.locator(f'tr[data-order="{number}"]')
    assert row.locator(".ordo-status").inner_text() == "Submitted"
    assert "4,011.50" in row.inner_text()

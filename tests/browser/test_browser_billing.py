"""In a real browser: finance records a payment, allocates it to the invoice, the order completes (BL-2, BL-6).

Billing alone (a service order): the order is confirmed and waits at the settlement
step; finance has invoiced it. Finance records the customer's bank transfer in the
payment screen (without automatic allocation), allocates it to the invoice on the
payment's page, confirming in the dialog, and opens the order: it is completed by itself
and the billing panel says the settlement check passed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from core.models import Order, User
from core.services.orders import take_action
from core.testing import PASSWORD, make_order, make_user
from plugins.billing import flow, invoices

pytestmark = [pytest.mark.browser, pytest.mark.req("BL-2"), pytest.mark.req("BL-6")]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["billing"]


def log_in(page: Any, base: str, email: str) -> None:
    """Log ``email`` in through the login screen."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_finance_records_a_payment_allocates_it_and_the_order_completes(
    live_server: str, browser_page: Any, session: Session, seed: dict[str, Any], state: Any, admin: User
) -> None:
    hq = seed["hq"]
    seller = make_user(session, "seller@example.com", ["sales"], branch=hq)
    finance = make_user(session, "finance@example.com", ["finance"], branch=hq)
    order = make_order(session, seller, reference="PO-BILL-1")
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    assert order.step == flow.SETTLEMENT
    invoice = invoices.create_invoice(session, finance, order, basis="ordered")
    invoices.issue_invoice(session, finance, invoice.id)
    session.commit()
    order_id, invoice_id, total, customer_id = order.id, invoice.id, invoice.total, order.customer_id
    session.rollback()

    page, base = browser_page, live_server
    log_in(page, base, "finance@example.com")

    # Record the bank transfer (银行转账), leaving the allocation for the next screen.
    page.goto(f"{base}/billing/payments/new")
    form = page.locator("#payment-form")
    form.locator("#customer").select_option(str(customer_id))
    form.get_by_label("Amount").fill(str(total))
    form.get_by_label("Reference").fill("BANK-20261123-01")
    form.get_by_label("Allocate to the oldest open invoices now").uncheck()
    form.get_by_role("button", name="Record").click()
    page.wait_for_selector(".alert-success")

    # Allocate it to the invoice, confirming in Ordo's dialog.
    allocate = page.locator("#allocate-form")
    allocate.locator(f'input[name="amount-{invoice_id}"]').fill(str(total))
    allocate.get_by_role("button", name="Allocate").click()
    page.locator("#ordo-confirm [data-confirm-ok]").click()
    page.wait_for_selector(".alert-success")
    assert page.locator("#unallocated").inner_text().strip().startswith("0.00")

    # The order completed by itself; the billing panel shows the settlement check passed.
    page.goto(f"{base}/orders/{order_id}")
    assert page.locator("#billing-settlement-ok").count() == 1
    assert page.locator(f'#billing-invoices tr[data-invoice="{invoice_id}"]').count() == 1
    page.screenshot(path="/tmp/ordo-billing-completed.png", full_page=True)

    session.expire_all()
    done = session.get(Order, order_id)
    assert done is not None and (done.status, done.step) == ("completed", "completed")

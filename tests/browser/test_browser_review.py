"""In a real browser: two department reviewers and an approver take an order to confirmed (RV-1, RV-4, RV-6).

A submitted regular order opens a review sheet for production and finance. Each reviewer
finds the task in *My review tasks*, opens the review sheet and gives an approving
verdict with the department's figures; the order moves on to consolidation by itself.
Sales reads the verdicts and sends the order for final approval; the sales manager
approves it in the approvals inbox, then confirms it to the customer on the order page.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from core.models import Order, User
from core.services.orders import take_action
from core.testing import PASSWORD, make_order, make_user
from plugins.review import flow
from plugins.review.models import ReviewSheet

pytestmark = [pytest.mark.browser, pytest.mark.req("RV-1"), pytest.mark.req("RV-4"), pytest.mark.req("RV-6")]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


def log_in(page: Any, base: str, email: str) -> None:
    """Log ``email`` in through the login screen (after logging anyone else out)."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/orders$"))


def open_my_task(page: Any, number: str, order_id: int) -> Any:
    """From the menu to *My review tasks*, then to the order's review sheet; returns the verdict form."""
    page.get_by_role("link", name="My review tasks").first.click()
    page.wait_for_url(re.compile(r"/review/tasks"))
    row = page.locator(f'#review-tasks tbody tr[data-order="{number}"]')
    assert row.count() == 1 and row.get_attribute("data-state") in ("open", "today")
    row.get_by_role("link", name=number).click()
    page.wait_for_url(re.compile(rf"/review/orders/{order_id}"))
    forms = page.locator("form.review-verdict-form")
    assert forms.count() == 1, "a reviewer sees one verdict form: their department's"
    return forms.first


def test_two_reviewers_and_an_approver_take_an_order_to_confirmed(live_server, browser_page, session, seed, state):
    sales = make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])
    make_user(session, "production@example.com", ["review_production"], branch=seed["hq"])
    make_user(session, "finance@example.com", ["finance"], branch=seed["hq"])
    make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    requested = dt.date.today() + dt.timedelta(days=60)
    order = make_order(session, sales, reference="PO-REVIEW-1", requested_date=requested.isoformat())
    take_action(session, state.registry, sales, order, "submit")
    session.commit()
    order_id, number = order.id, order.number
    sheet = session.scalars(select(ReviewSheet).where(ReviewSheet.order_id == order_id)).one()
    # A regular order (every product regular) below the large-order threshold: production and finance.
    assert order.step == flow.DEPARTMENT_REVIEW
    assert sorted(t.department.code for t in sheet.tasks) == ["finance", "production"]
    session.rollback()

    page = browser_page
    base = live_server

    # The production reviewer: capacity, materials and the date production can meet.
    log_in(page, base, "production@example.com")
    form = open_my_task(page, number, order_id)
    form.get_by_label("Verdict").select_option("approve")
    form.get_by_label("Capacity available").select_option("yes")
    form.get_by_label("Materials available").select_option("yes")
    form.get_by_label("Proposed completion date").fill((requested - dt.timedelta(days=5)).isoformat())
    form.get_by_label("Comment").fill("Line 2 has capacity in week 3")
    form.get_by_role("button", name="Give verdict").click()
    page.wait_for_selector(".alert-success")
    assert page.locator("form.review-verdict-form").count() == 0
    assert page.locator('[data-task-status="answered"] [data-verdict="approve"]').count() == 1

    # The finance reviewer: cost, margins, payment terms and risk; the last answer moves the order on.
    log_in(page, base, "finance@example.com")
    form = open_my_task(page, number, order_id)
    form.get_by_label("Verdict").select_option("approve")
    form.get_by_label("Cost").fill("2800.00")
    form.get_by_label("Gross margin (%)").fill("23.3")
    form.get_by_label("Profit margin (%)").fill("9.5")
    form.get_by_label("Payment terms").fill("Monthly settlement, 60 days")
    form.get_by_label("Financial risk").select_option("low")
    form.get_by_role("button", name="Give verdict").click()
    page.wait_for_selector(".alert-success")
    assert "Consolidation" in page.locator(".alert-success").first.inner_text()

    # Sales consolidates: both verdicts side by side, then sends the order for final approval.
    log_in(page, base, "sales@example.com")
    page.goto(f"{base}/review/orders/{order_id}")
    rows = page.locator("#consolidation-table tbody tr[data-department]")
    assert rows.count() == 2
    assert page.locator("#consolidation-table").get_by_text(re.compile(r"\d{4}-\d{2}-\d{2}")).count() >= 1
    page.locator('button[data-action="send_for_approval"]').click()
    page.wait_for_selector(".alert-success")
    assert "Final approval" in page.locator(".alert-success").first.inner_text()

    # The sales manager approves in the approvals inbox, within the limit.
    log_in(page, base, "manager@example.com")
    page.get_by_role("link", name="Approvals inbox").first.click()
    page.wait_for_url(re.compile(r"/review/approvals"))
    row = page.locator(f'#review-approvals tbody tr[data-order="{number}"]')
    assert row.get_attribute("data-step") == flow.FINAL_APPROVAL
    row.locator('button[data-action="approve"]').click()
    page.wait_for_selector(".alert-success")
    assert page.locator(f'#review-approvals tbody tr[data-order="{number}"]').count() == 0

    # ... and confirms the approved order to the customer on the order page.
    page.goto(f"{base}/orders/{order_id}")
    page.locator('button[data-action="confirm"]').click()
    page.wait_for_selector(".alert-success")
    page.screenshot(path="/tmp/ordo-review-confirmed.png", full_page=True)

    session.rollback()
    session.expire_all()
    confirmed = session.get(Order, order_id)
    assert confirmed is not None and (confirmed.status, confirmed.step) == ("confirmed", "confirmed")
    sheet = session.scalars(select(ReviewSheet).where(ReviewSheet.order_id == order_id)).one()
    assert (sheet.status, sheet.outcome, sheet.approver_role) == ("closed", "approved", "sales_manager")
    deciders = {
        t.department.code: session.get(User, t.verdicts[-1].decided_by_id).email  # type: ignore[union-attr]
        for t in sheet.tasks
    }
    assert deciders == {"production": "production@example.com", "finance": "finance@example.com"}
    moves = [(t.action, t.actor_id) for t in confirmed.transitions]
    manager = session.scalars(select(User).where(User.email == "manager@example.com")).one()
    assert ("approve", manager.id) in moves and ("confirm", manager.id) in moves

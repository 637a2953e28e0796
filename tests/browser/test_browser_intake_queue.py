"""In a real browser: an order clerk works the manual-check queue (IN-5, IN-9, CORE-9).

The urgent order comes first; the clerk opens it, corrects a quantity marked as an entry
error, accepts it, and the order moves on to ``submitted``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from core.models import Order
from core.services.orders import take_action
from core.testing import PASSWORD, make_order, make_user
from plugins.intake.models import IntakeCorrection

pytestmark = [pytest.mark.browser, pytest.mark.req("IN-5"), pytest.mark.req("IN-9"), pytest.mark.req("CORE-9")]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def test_a_clerk_corrects_and_accepts_the_urgent_order_first(live_server, browser_page, session, seed, state):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"], language="en")
    requested = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    normal = make_order(session, clerk, reference="PO-NORMAL", requested_date=requested)
    urgent = make_order(session, clerk, reference="PO-URGENT", requested_date=requested, urgency="urgent")
    for order in (normal, urgent):
        take_action(session, state.registry, clerk, order, "submit")
    session.commit()
    urgent_id, urgent_number, normal_id = urgent.id, urgent.number, normal.id
    session.rollback()

    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill("clerk@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/orders$"))

    page.get_by_role("link", name="Manual check").first.click()
    page.wait_for_url(re.compile(r"/intake/queue/$"))
    rows = page.locator("#intake-queue tbody tr[data-order]")
    assert rows.count() == 2
    assert rows.first.get_attribute("data-order") == urgent_number
    assert rows.first.get_attribute("data-urgency") == "urgent"

    rows.first.get_by_role("link", name=urgent_number).click()
    page.wait_for_url(re.compile(rf"/intake/queue/{urgent_id}$"))
    # The first header field has the focus, so the clerk can start typing at once.
    assert page.evaluate("document.activeElement.name") == "contact_name"
    page.get_by_label("Line 1 · Quantity", exact=True).fill("3")
    page.get_by_label("Entry error: Line 1 · Quantity").check()
    page.get_by_label("Note").fill("The fax says 3 pieces")
    page.get_by_role("button", name="Save corrections").click()
    page.wait_for_selector(".alert-success >> text=1 corrections saved (1 entry errors)")
    assert page.locator('#check-history tr[data-field="lines[0].quantity"][data-entry-error="1"]').count() == 1

    page.locator('button[data-action="accept"]').click()
    # On to the next order in the queue.
    page.wait_for_url(re.compile(rf"/intake/queue/{normal_id}$"))
    assert "“Accept” done" in page.locator(".alert-success").first.inner_text()
    page.screenshot(path="/tmp/ordo-intake-check.png", full_page=True)

    session.rollback()
    session.expire_all()
    accepted = session.get(Order, urgent_id)
    assert (accepted.status, accepted.step) == ("submitted", "submitted")
    assert accepted.lines[0].quantity == 3
    (correction,) = session.scalars(select(IntakeCorrection).where(IntakeCorrection.order_id == urgent_id)).all()
    assert (correction.field, correction.before, correction.after, correction.entry_error) == (
        "lines[0].quantity",
        "2",
        "3",
        True,
    )

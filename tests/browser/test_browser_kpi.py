"""In a real browser: a branch manager drills down from on-time delivery to the late orders and exports them (KP-1).

kpi with logistics: in October 2026 branch CD delivered four shipments, two on or before
their promised date and two late (one delivered a day late, one confirmed by the
customer's receipt three days late); HQ delivered one late shipment. CD's sales manager
opens the KPI dashboard for October, sees on-time delivery at 50.00 %, clicks the tile,
opens "only those pulling it down", sees exactly CD's two late orders (not HQ's) and
downloads the CSV, which lists the same two orders.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Order, User
from core.testing import PASSWORD, make_order, make_user
from plugins.logistics.models import LogisticsShipment, LogisticsWarehouse

pytestmark = [pytest.mark.browser, pytest.mark.req("KP-1")]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["kpi", "logistics"]


def log_in(page: Any, base: str, email: str) -> None:
    """Log ``email`` in through the login screen."""
    page.context.clear_cookies()
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def at(day: int, hour: int = 15) -> dt.datetime:
    """A company-time instant in October 2026."""
    return dt.datetime(2026, 10, day, hour, tzinfo=COMPANY_TIMEZONE)


def test_manager_drills_down_from_on_time_delivery_to_the_late_orders_and_exports_them(
    live_server: str, browser_page: Any, session: Session, seed: dict[str, Any], admin: User
) -> None:
    hq, cd = seed["hq"], seed["cd"]
    make_user(session, "cdboss@example.com", ["sales_manager"], branch=cd)
    warehouse = LogisticsWarehouse(company_id=hq.company_id, code="WH-KPI", name="重庆仓", province="重庆市")
    session.add(warehouse)
    session.flush()
    # (branch, promised day, delivered_at, receipt_at): on time when the company day ≤ promised.
    cases = {
        "cd-on-time": (cd, 10, at(10), None),
        "cd-early": (cd, 12, at(8), None),
        "cd-late": (cd, 14, at(15), None),
        "cd-late-receipt": (cd, 18, None, at(21)),
        "hq-late": (hq, 5, at(9), None),
    }
    numbers: dict[str, str] = {}
    for index, (name, (branch, promised, delivered, receipt)) in enumerate(cases.items(), start=1):
        order = make_order(session, admin, customer="C001")
        session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(status="confirmed", branch_id=branch.id, created_at=at(1, 9))
        )
        session.add(
            LogisticsShipment(
                number=f"SH-KPI-{index}",
                order_id=order.id,
                warehouse_id=warehouse.id,
                status="delivered",
                promised_date=dt.date(2026, 10, promised),
                shipped_at=at(promised - 3),
                delivered_at=delivered,
                receipt_status="confirmed" if receipt else "pending",
                receipt_at=receipt,
            )
        )
        numbers[name] = order.number
    session.commit()
    late = {numbers["cd-late"], numbers["cd-late-receipt"]}

    page, base = browser_page, live_server
    log_in(page, base, "cdboss@example.com")
    page.goto(f"{base}/kpi/?period=month&date=2026-10-15")
    on_time = page.locator('[data-metric="logistics.on_time_delivery"]')
    assert on_time.locator(".kpi-value").get_attribute("data-value") == "50.00"  # 2 of CD's 4
    on_time.locator("a.kpi-tile-link").click()
    page.wait_for_url("**/kpi/metrics/logistics.on_time_delivery?**")
    assert page.locator("#kpi-headline .kpi-value").get_attribute("data-value") == "50.00"

    page.locator("#kpi-drill-problems").click()
    page.wait_for_url("**/orders?**problems=1**")
    rows = page.locator("#kpi-orders-table tbody tr[data-order]")
    shown = {rows.nth(i).get_attribute("data-number") for i in range(rows.count())}
    assert shown == late  # HQ's late order is outside the manager's scope

    with page.expect_download() as download_info:
        page.locator("#kpi-orders-csv").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    content = Path(download.path()).read_text(encoding="utf-8-sig")
    exported = list(csv.reader(io.StringIO(content)))
    assert exported[0][0] == "Order"
    assert {row[0] for row in exported[1:]} == late
    page.screenshot(path="/tmp/ordo-kpi-drilldown.png", full_page=True)

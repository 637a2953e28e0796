"""Invoices issued late, counted from shipments (KP-1, BL-6): with logistics enabled, an
invoice is late when dated more than the allowed days after the first shipment it covers
— the order's shipments after its previous invoice.

Order X is shipped on day 2, invoiced on day 5 (on time), shipped again on day 10 and
invoiced again on day 60 (late: 50 days after the shipment it covers). Order Y is shipped
on day 0 and invoiced on day 40 (late). Two of three invoices are late. A previous
invoice is looked up for each invoice's own order: another order's invoices never hide
a shipment (regression: the lookup was once not correlated with the invoice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.models import Order, User
from core.settings import session_registry
from core.testing import make_order
from plugins.billing.models import BillingInvoice
from plugins.kpi.engine import EVERYONE, get_metric, measure
from plugins.kpi.periods import period
from plugins.logistics.models import LogisticsShipment, LogisticsWarehouse

pytestmark = [pytest.mark.req("KP-1"), pytest.mark.req("BL-6")]


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics", "billing", "kpi"]


def shipped(session: Session, order: Order, warehouse_id: int, day: dt.date, number: str) -> None:
    at = dt.datetime.combine(day, dt.time(15), COMPANY_TIMEZONE)
    session.add(
        LogisticsShipment(number=number, order_id=order.id, warehouse_id=warehouse_id, status="shipped", shipped_at=at)
    )


def invoiced(session: Session, order: Order, day: dt.date, number: str) -> None:
    session.execute(
        insert(BillingInvoice).values(
            company_id=order.company_id,
            kind="invoice",
            number=number,
            year=day.year,
            status="issued",
            basis="delivered",
            customer_id=order.customer_id,
            order_id=order.id,
            untaxed=Decimal("100.00"),
            tax=Decimal("13.00"),
            total=Decimal("113.00"),
            settled=Decimal("0"),
            invoice_date=day,
            due_date=day + dt.timedelta(days=30),
        )
    )


def test_each_invoice_counts_from_the_shipments_after_its_own_orders_previous_invoice(
    session: Session, admin: User, seed: dict[str, Any]
) -> None:
    warehouse_id = session.scalar(select(LogisticsWarehouse.id).order_by(LogisticsWarehouse.id).limit(1))
    if warehouse_id is None:
        warehouse_id = session.scalar(
            insert(LogisticsWarehouse)
            .values(company_id=seed["hq"].company_id, code="W1", name="Main")
            .returning(LogisticsWarehouse.id)
        )
    day0 = company_now().date() - dt.timedelta(days=120)
    x, y = make_order(session, admin), make_order(session, admin)
    shipped(session, x, warehouse_id, day0 + dt.timedelta(days=2), "SX1")
    invoiced(session, x, day0 + dt.timedelta(days=5), "INV-X1")
    shipped(session, x, warehouse_id, day0 + dt.timedelta(days=10), "SX2")
    invoiced(session, x, day0 + dt.timedelta(days=60), "INV-X2")
    shipped(session, y, warehouse_id, day0, "SY1")
    invoiced(session, y, day0 + dt.timedelta(days=40), "INV-Y1")
    session.commit()

    metric = get_metric(session_registry(session), "billing.invoices_late")
    value = measure(session, metric, period(day0, day0 + dt.timedelta(days=70)), viewer=EVERYONE)
    assert (value.numerator, value.denominator) == (2, 3)
    only_x = measure(session, metric, period(day0 + dt.timedelta(days=3), day0 + dt.timedelta(days=6)), viewer=EVERYONE)
    assert (only_x.numerator, only_x.denominator) == (0, 1)  # X's first invoice: 3 days after its shipment

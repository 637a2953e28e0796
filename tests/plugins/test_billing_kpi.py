"""Billing's metrics for kpi (KP-1, BL-6), hand-computed on a small data set.

The period is one whole past month. Invoice A (dated 20 days before it, one due on its
10th day) is paid 1000 on the 15th; invoices B and C are dated on the 5th and due a month
after the period, B paid 500 on the 20th. A's and B's orders were confirmed (delivered:
billing alone) 40 days before the period, C's on its 2nd day.

- collection rate: collected 1000 (B's payment is to an invoice not yet due) / due A.
- DSO: open at the end (A − 1000 + B − 500 + C) / invoiced in the period (B + C) × days.
- overdue ratio: A − 1000 overdue / everything open at the end.
- invoices issued late: B (44 days after delivery, more than 30) of B and C: 50 %.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from billing_helpers import confirm, invoice_order, pay
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.models import Order, OrderTransition, User
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue
from plugins.kpi.engine import EVERYONE, collect_metrics, fact_orders, get_metric, measure
from plugins.kpi.periods import period

pytestmark = [pytest.mark.req("KP-1"), pytest.mark.req("BL-6")]

CODES = ("billing.collection_rate", "billing.dso", "billing.overdue_ratio", "billing.invoices_late")


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing", "kpi"]


def one_due(session: Session, invoice: BillingInvoice, day: dt.date) -> None:
    """Replace the issued invoice's schedule with one due on ``day``."""
    from billing_helpers import dues_rewritable

    with dues_rewritable(session):
        session.execute(delete(BillingInvoiceDue).where(BillingInvoiceDue.invoice_id == invoice.id))
        session.add(BillingInvoiceDue(invoice_id=invoice.id, sequence=1, due_date=day, amount=invoice.total))
        session.commit()


def confirmed_on(session: Session, order: Order, day: dt.date) -> None:
    at = dt.datetime.combine(day, dt.time(10), COMPANY_TIMEZONE)
    session.execute(
        update(OrderTransition)
        .where(OrderTransition.order_id == order.id, OrderTransition.to_status == "confirmed")
        .values(at=at)
    )
    session.commit()


def paid_on(session: Session, actor: User, invoice: BillingInvoice, amount: str, day: dt.date) -> None:
    payment = pay(session, actor, invoice.customer_id, amount, allocate_to=invoice, received_on=day)
    session.execute(
        update(BillingAllocation).where(BillingAllocation.payment_id == payment.id).values(effective_on=day)
    )
    session.commit()


@pytest.fixture
def data(session: Session, state: Any, admin: User, seed: dict[str, Any]) -> dict[str, Any]:
    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    finance = make_user(session, "finance@example.com", ["finance"], branch=seed["hq"])
    month = (company_now().date() - dt.timedelta(days=150)).replace(day=1)
    end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    orders = []
    for _ in range(3):
        order = make_order(session, seller)
        confirm(session, state.registry, admin, order)
        orders.append(order)
    a = invoice_order(session, finance, orders[0], invoice_date=month - dt.timedelta(days=20))
    b = invoice_order(session, finance, orders[1], invoice_date=month + dt.timedelta(days=4))
    c = invoice_order(session, finance, orders[2], invoice_date=month + dt.timedelta(days=4))
    one_due(session, a, month + dt.timedelta(days=9))
    one_due(session, b, end + dt.timedelta(days=30))
    one_due(session, c, end + dt.timedelta(days=30))
    confirmed_on(session, orders[0], month - dt.timedelta(days=40))
    confirmed_on(session, orders[1], month - dt.timedelta(days=40))
    confirmed_on(session, orders[2], month + dt.timedelta(days=1))
    paid_on(session, finance, a, "1000.00", month + dt.timedelta(days=14))
    paid_on(session, finance, b, "500.00", month + dt.timedelta(days=19))
    return {"start": month, "end": end, "a": a.total, "b": b.total, "c": c.total, "orders": orders, "seller": seller}


def compute(session: Session, start: dt.date, end: dt.date, keys: Sequence[str] = CODES, viewer: Any = EVERYONE) -> Any:
    registry = session_registry(session)
    return {key: measure(session, get_metric(registry, key), period(start, end), viewer=viewer) for key in keys}


def test_billing_contributes_its_four_metrics(state: Any) -> None:
    found = collect_metrics(state.registry)
    assert {key: (found[key].unit, found[key].aggregate, found[key].direction, found[key].target) for key in CODES} == {
        "billing.collection_rate": ("percent", "percent", "higher", Decimal("90")),
        "billing.dso": ("days", "mean", "lower", Decimal("45")),
        "billing.overdue_ratio": ("percent", "percent", "lower", Decimal("10")),
        "billing.invoices_late": ("percent", "percent", "lower", Decimal("5")),
    }
    assert all(found[key].plugin == "billing" for key in CODES)


def test_the_metrics_hand_computed(session: Session, data: dict[str, Any]) -> None:
    got = compute(session, data["start"], data["end"])
    a, b, c = data["a"], data["b"], data["c"]
    hundred = Decimal("100")

    def pct(num: Decimal, den: Decimal) -> Decimal:
        return (num * hundred / den).quantize(Decimal("0.01"), ROUND_HALF_UP)

    rate = got["billing.collection_rate"]
    assert (rate.numerator, rate.denominator) == (Decimal("1000.00"), a)
    assert rate.value == pct(Decimal("1000"), a)
    open_at_end = a - 1000 + b - 500 + c
    days = (data["end"] - data["start"]).days + 1
    dso = got["billing.dso"]
    assert (dso.numerator, dso.denominator) == (open_at_end * days, b + c)
    assert dso.value == (open_at_end * days / (b + c)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    overdue = got["billing.overdue_ratio"]
    assert (overdue.numerator, overdue.denominator) == (a - 1000, open_at_end)
    assert overdue.value == pct(a - 1000, open_at_end)
    late = got["billing.invoices_late"]
    assert (late.value, late.numerator, late.denominator) == (Decimal("50.00"), 1, 2)


def test_drill_down_names_the_orders(session: Session, data: dict[str, Any]) -> None:
    registry = session_registry(session)
    month = period(data["start"], data["end"])
    first, second, _third = data["orders"]
    late, total = fact_orders(
        session, get_metric(registry, "billing.invoices_late"), month, viewer=EVERYONE, problems=True
    )
    assert total == 1 and [order.order_id for order in late] == [second.id]
    overdue, total = fact_orders(
        session, get_metric(registry, "billing.overdue_ratio"), month, viewer=EVERYONE, problems=True
    )
    assert [order.order_id for order in overdue] == [first.id]


def test_the_metrics_obey_the_viewers_scope(session: Session, data: dict[str, Any], seed: dict[str, Any]) -> None:
    stranger = make_user(session, "stranger@example.com", ["sales"], branch=seed["cd"])
    session.commit()
    theirs = compute(session, data["start"], data["end"], viewer=stranger)
    assert all(theirs[key].value is None for key in CODES)
    mine = compute(session, data["start"], data["end"], ["billing.invoices_late"], viewer=data["seller"])
    assert mine["billing.invoices_late"].value == Decimal("50.00")


def test_a_quiet_period_has_no_data(session: Session, data: dict[str, Any]) -> None:
    start = data["start"] - dt.timedelta(days=400)
    got = compute(session, start, start + dt.timedelta(days=6))
    assert all(got[key].value is None for key in CODES)


def test_a_later_period_sees_the_payments_as_they_stood(session: Session, data: dict[str, Any]) -> None:
    before_payments = data["start"] + dt.timedelta(days=13)
    got = compute(session, data["start"], before_payments, ["billing.overdue_ratio"])
    overdue = got["billing.overdue_ratio"]
    # On the 14th nothing was paid yet: A (due on the 10th) is overdue in full; B and C open.
    assert (overdue.numerator, overdue.denominator) == (data["a"], data["a"] + data["b"] + data["c"])


def test_the_late_days_setting_is_read_in_sql(session: Session, data: dict[str, Any]) -> None:
    from core.models.system import SettingValue

    session.add(SettingValue(key="billing.invoices.late_days", value=50))
    session.commit()
    got = compute(session, data["start"], data["end"], ["billing.invoices_late"])
    assert got["billing.invoices_late"].numerator == 0  # B came 44 days after delivery: within 50

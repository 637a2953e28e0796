"""Logistics' and billing's generated history (``ordo_kpi_history``) gives every metric a value.

Three orders made with ``make_order`` and forced to *completed* are handed to the hook as
a :class:`plugins.kpi.hookspecs.HistoryBatch`; the bridges write shipments, moves, returns,
exceptions, invoices, dues, payments and allocations in bulk. Over the period from the
confirmations to today every metric has a plausible value, and the same seeds plan the
same shipments (repeatable demo data).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import Order, User
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue
from plugins.kpi.engine import EVERYONE, get_metric, measure
from plugins.kpi.hookspecs import HistoryBatch, HistoryOrder
from plugins.kpi.periods import period
from plugins.logistics.models import LogisticsMove, LogisticsShipment, LogisticsShipmentLine

pytestmark = pytest.mark.req("KP-1")

PERCENTS = (
    "logistics.on_time_delivery",
    "logistics.fill_rate",
    "logistics.shipping_accuracy",
    "billing.collection_rate",
    "billing.invoices_late",
)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics", "billing", "kpi"]


def history_batch(session: Session, seller: User, today: dt.date) -> HistoryBatch:
    """Three completed orders confirmed 80, 60 and 40 days ago, each done ten days later."""
    orders = []
    for index, days in enumerate((80, 60, 40)):
        order = make_order(session, seller, lines=[{"product": "P-100", "quantity": str(4 + index)}])
        confirmed = company_now() - dt.timedelta(days=days)
        completed = confirmed + dt.timedelta(days=10)
        session.execute(update(Order).where(Order.id == order.id).values(status="completed", created_at=confirmed))
        orders.append(
            HistoryOrder(
                id=order.id,
                number=order.number,
                customer_id=order.customer_id,
                branch_id=order.branch_id,
                owner_id=order.owner_id,
                total=order.total,
                received_at=confirmed - dt.timedelta(hours=3),
                confirmed_at=confirmed,
                completed_at=completed,
                lines=tuple((line.id, line.product_id, line.quantity, line.amount) for line in order.lines),
                seed=1000 + index,
            )
        )
    session.flush()
    return HistoryBatch(orders=orders, users={"warehouse": [seller.id], "finance": [seller.id]}, today=today)


def test_history_gives_every_metric_a_plausible_value(session: Session, state: Any, seed: dict[str, Any]) -> None:
    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    today = company_now().date()
    batch = history_batch(session, seller, today)
    state.registry.hook.ordo_kpi_history(session=session, batch=batch)
    session.commit()

    ids = [order.id for order in batch.orders]
    assert (
        session.scalar(select(func.count()).select_from(LogisticsShipment).where(LogisticsShipment.order_id.in_(ids)))
        >= 3
    )
    assert session.scalar(select(func.count()).select_from(LogisticsShipmentLine)) >= 3
    assert session.scalar(select(func.count()).select_from(LogisticsMove)) >= 3
    invoices = session.scalars(select(BillingInvoice).where(BillingInvoice.order_id.in_(ids))).all()
    assert len(invoices) == 3 and all(invoice.status == "issued" for invoice in invoices)
    assert len({invoice.number for invoice in invoices}) == 3
    for invoice in invoices:
        dues = session.scalar(
            select(func.sum(BillingInvoiceDue.amount)).where(BillingInvoiceDue.invoice_id == invoice.id)
        )
        allocated = session.scalar(
            select(func.coalesce(func.sum(BillingAllocation.amount), 0)).where(
                BillingAllocation.invoice_id == invoice.id
            )
        )
        assert dues == invoice.total and Decimal(allocated) == invoice.settled <= invoice.total

    registry = session_registry(session)
    span = period(today - dt.timedelta(days=85), today)
    got = {key: measure(session, get_metric(registry, key), span, viewer=EVERYONE) for key in registry_keys(registry)}
    for key in PERCENTS:
        assert got[key].value is not None and Decimal(0) <= got[key].value <= Decimal(100), key
    assert got["logistics.return_rate"].denominator > 0
    assert Decimal(0) <= got["logistics.return_rate"].value <= Decimal(100)
    assert got["logistics.exceptions"].value >= 0
    assert got["billing.dso"].value is not None and got["billing.dso"].value >= 0
    overdue = got["billing.overdue_ratio"].value
    assert overdue is None or Decimal(0) <= overdue <= Decimal(100)


def registry_keys(registry: Any) -> list[str]:
    from plugins.kpi.engine import collect_metrics

    return [key for key in collect_metrics(registry) if key.startswith(("logistics.", "billing."))]


def test_history_is_repeatable(session: Session, seed: dict[str, Any]) -> None:
    from plugins.logistics.bridges.kpi import _plan

    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    today = company_now().date()
    batch = history_batch(session, seller, today)
    assert [_plan(order, today) for order in batch.orders] == [_plan(order, today) for order in batch.orders]
    shipped = [plan for order in batch.orders for plan in _plan(order, today) or ()]
    assert shipped and all(
        order.confirmed_at < plan["shipped_at"] for order in batch.orders for plan in _plan(order, today) or ()
    )

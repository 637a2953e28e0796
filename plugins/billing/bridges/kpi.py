"""Billing's indicators for the kpi plugin (KP-1, BL-6), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.billing.bridges.kpi"}``, so
billing never imports kpi when kpi is off. Every indicator measures the company days
``start`` … ``end`` inclusive; the dates compared are company dates (an invoice's
``invoice_date``, a due's ``due_date``, an allocation's ``effective_on``). Only issued
invoices count (drafts and cancelled ones never). Percentages and days have no value
(None) when there was nothing to measure.

- ``billing.collection_rate`` (percent): money collected in the period — payments
  allocated with ``effective_on`` in the period to invoices whose first due date is on or
  before the period end (credit notes and write-offs are not collections) — per amount
  falling due in the period (the dues dated in it). Collecting older arrears can take it
  above 100 %.
- ``billing.dso`` (days, days sales outstanding): receivables at the period end (issued
  invoices dated up to then, less what was allocated to them effective up to then) per
  amount invoiced in the period (invoices dated in it), times the days in the period.
- ``billing.overdue_ratio`` (percent): of what is open at the period end (as above), the
  share on dues dated before the period end; what was allocated covers the oldest dues
  first, as in :func:`plugins.billing.ledger.due_balances`, but with the allocations as
  they stood at the period end so that a past period keeps its value.
- ``billing.invoices_late`` (percent; the numerator is the count): of the invoices dated in
  the period (prepayment invoices left out), the share dated more than
  ``billing.invoices.late_days`` days after the first delivery they cover — the
  deliveries of the order after its previous invoice, up to the invoice's date. Deliveries
  are the shipments (``ordo_billing_deliveries``, logistics) or, when no plugin tracks
  deliveries, the order's confirmation (services, BL-3).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from core.models import OrderTransition
from core.settings import get_setting, session_registry
from plugins.billing import flow
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue
from plugins.kpi.hookspecs import Indicator, IndicatorValue
from plugins.kpi.indicators import period_bounds

ZERO = Decimal("0")
DAYS_PLACES = Decimal("0.01")


def _issued() -> list[ColumnElement[bool]]:
    return [BillingInvoice.kind == "invoice", BillingInvoice.status == "issued"]


def _company_day(moment: dt.datetime) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(COMPANY_TIMEZONE).date()


def collection_rate(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Payments allocated in the period to invoices due by its end / amount falling due in the period."""
    period_bounds(start, end)
    due = session.scalar(
        select(func.coalesce(func.sum(BillingInvoiceDue.amount), 0))
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceDue.invoice_id)
        .where(*_issued(), BillingInvoiceDue.due_date >= start, BillingInvoiceDue.due_date <= end)
    )
    first_due = (
        select(BillingInvoiceDue.invoice_id)
        .group_by(BillingInvoiceDue.invoice_id)
        .having(func.min(BillingInvoiceDue.due_date) <= end)
    )
    collected = session.scalar(
        select(func.coalesce(func.sum(BillingAllocation.amount), 0))
        .join(BillingInvoice, BillingInvoice.id == BillingAllocation.invoice_id)
        .where(
            *_issued(),
            BillingAllocation.payment_id.is_not(None),
            BillingAllocation.effective_on >= start,
            BillingAllocation.effective_on <= end,
            BillingAllocation.invoice_id.in_(first_due),
        )
    )
    return IndicatorValue.ratio(Decimal(collected or 0), Decimal(due or 0))


def open_dues_at(session: Session, day: dt.date) -> list[tuple[dt.date, Decimal]]:
    """Each due of the invoices dated up to ``day`` with what was open of it at the end of ``day``."""
    invoices = dict(
        session.execute(
            select(BillingInvoice.id, BillingInvoice.total).where(*_issued(), BillingInvoice.invoice_date <= day)
        )
        .tuples()
        .all()
    )
    if not invoices:
        return []
    settled: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for invoice_id, amount in session.execute(
        select(BillingAllocation.invoice_id, func.sum(BillingAllocation.amount))
        .where(BillingAllocation.invoice_id.in_(list(invoices)), BillingAllocation.effective_on <= day)
        .group_by(BillingAllocation.invoice_id)
    ).tuples():
        settled[invoice_id] = Decimal(amount or 0)
    found = []
    for invoice_id, due_date, amount in session.execute(
        select(BillingInvoiceDue.invoice_id, BillingInvoiceDue.due_date, BillingInvoiceDue.amount)
        .where(BillingInvoiceDue.invoice_id.in_(list(invoices)))
        .order_by(BillingInvoiceDue.invoice_id, BillingInvoiceDue.sequence)
    ).tuples():
        covered = min(settled[invoice_id], Decimal(amount))
        settled[invoice_id] -= covered
        if amount - covered > ZERO:
            found.append((due_date, Decimal(amount) - covered))
    return found


def dso(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Receivables at the period end / invoiced in the period × days in the period."""
    period_bounds(start, end)
    receivables = sum((amount for _day, amount in open_dues_at(session, end)), ZERO)
    invoiced = Decimal(
        session.scalar(
            select(func.coalesce(func.sum(BillingInvoice.total), 0)).where(
                *_issued(), BillingInvoice.invoice_date >= start, BillingInvoice.invoice_date <= end
            )
        )
        or 0
    )
    days = (end - start).days + 1
    value = (receivables * days / invoiced).quantize(DAYS_PLACES, ROUND_HALF_UP) if invoiced else None
    return IndicatorValue(value, receivables, invoiced)


def overdue_ratio(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Open at the period end on dues dated before it / everything open at the period end."""
    period_bounds(start, end)
    dues = open_dues_at(session, end)
    total = sum((amount for _day, amount in dues), ZERO)
    overdue = sum((amount for day, amount in dues if day < end), ZERO)
    return IndicatorValue.ratio(overdue, total)


def _deliveries(session: Session, order_ids: list[int]) -> dict[int, list[dt.date]]:
    """The company dates goods of each order left: shipments if a plugin tracks them, else confirmation."""
    registry = session_registry(session)
    found: dict[int, list[dt.date]] = defaultdict(list)
    caller = getattr(registry.hook, "ordo_billing_deliveries", None)
    if caller is not None and caller.get_hookimpls():
        for answer in caller(session=session, order_ids=order_ids, shipped_before=None):
            for delivery in answer or ():
                found[delivery.order_id].append(_company_day(delivery.shipped_at))
    else:
        for order_id, at in session.execute(
            select(OrderTransition.order_id, func.min(OrderTransition.at))
            .where(
                OrderTransition.order_id.in_(order_ids),
                OrderTransition.to_status == "confirmed",
                OrderTransition.from_status != "confirmed",
            )
            .group_by(OrderTransition.order_id)
        ).tuples():
            found[order_id].append(_company_day(at))
    return {k: sorted(v) for k, v in found.items()}


def invoices_late(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Invoices dated in the period more than the allowed days after the first delivery they cover / those invoices."""
    period_bounds(start, end)
    late_days = int(get_setting(session, flow.INVOICE_LATE_DAYS))
    in_period = list(
        session.execute(
            select(BillingInvoice.id, BillingInvoice.order_id).where(
                *_issued(),
                BillingInvoice.basis != "prepayment",
                BillingInvoice.invoice_date >= start,
                BillingInvoice.invoice_date <= end,
            )
        ).tuples()
    )
    if not in_period:
        return IndicatorValue.ratio(0, 0)
    order_ids = sorted({order_id for _id, order_id in in_period if order_id is not None})
    history: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
    if order_ids:
        for invoice_id, order_id, day in session.execute(
            select(BillingInvoice.id, BillingInvoice.order_id, BillingInvoice.invoice_date).where(
                *_issued(), BillingInvoice.basis != "prepayment", BillingInvoice.order_id.in_(order_ids)
            )
        ).tuples():
            if day is not None and order_id is not None:
                history[order_id].append((day, invoice_id))
    deliveries = _deliveries(session, order_ids) if order_ids else {}
    late = 0
    for invoice_id, order_id in in_period:
        if order_id is None:
            continue
        ordered = sorted(history[order_id])
        index = next(i for i, (_day, iid) in enumerate(ordered) if iid == invoice_id)
        day = ordered[index][0]
        previous = ordered[index - 1][0] if index > 0 else None
        covered = [d for d in deliveries.get(order_id, []) if (previous is None or d > previous) and d <= day]
        if covered and (day - covered[0]).days > late_days:
            late += 1
    return IndicatorValue.ratio(late, len(in_period))


INDICATORS = (
    Indicator(
        "billing.collection_rate",
        N_("Collection rate"),
        "percent",
        N_(
            "Payments allocated in the period to invoices due by its end, per amount falling due in the period "
            "(above 100 % when older arrears are collected)."
        ),
        collection_rate,
    ),
    Indicator(
        "billing.dso",
        N_("Days sales outstanding"),
        "days",
        N_("Receivables open at the period end per amount invoiced in the period, times the days in the period."),
        dso,
    ),
    Indicator(
        "billing.overdue_ratio",
        N_("Overdue ratio"),
        "percent",
        N_("Share of the receivables open at the period end that are past their due date."),
        overdue_ratio,
    ),
    Indicator(
        "billing.invoices_late",
        N_("Invoices issued late"),
        "percent",
        N_(
            "Share of the invoices dated in the period that were issued later than the allowed days after the "
            "delivery they cover (the count is the numerator)."
        ),
        invoices_late,
    ),
)


@hookimpl(optionalhook=True)
def ordo_kpi_indicators() -> list[Indicator]:
    """Billing's indicators: collection rate, days sales outstanding, overdue ratio, invoices issued late."""
    return list(INDICATORS)

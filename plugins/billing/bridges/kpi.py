"""Billing's metrics for the kpi plugin (KP-1, BL-6), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.billing.bridges.kpi"}``, so
billing never imports kpi when kpi is off. Each metric is a SQL select of *fact rows*
(:mod:`plugins.kpi.hookspecs`), one or more per invoice, carrying the invoice's
``order_id`` and ``customer_id`` (invoices without order are scoped by customer). Only
issued invoices count (drafts, cancelled invoices and credit notes never); dates are
company dates (``invoice_date``, a due's ``due_date``, an allocation's ``effective_on``).

- ``billing.collection_rate`` (percent, higher, target 90): Σnum = payments allocated with
  ``effective_on`` in the period to invoices with a due on or before the period end
  (credit notes and write-offs are not collections); Σden = the dues dated in the period.
  Collecting older arrears can take it above 100 %.
- ``billing.dso`` (mean, days, lower, 45): receivables open at the period end × days in
  the period / amount invoiced in the period. Per invoice dated up to the period end,
  num = (its dues − what was allocated to it effective up to the end, not below 0) ×
  days; per invoice dated in the period, den = its total.
- ``billing.overdue_ratio`` (percent, lower, 10): of what is open at the period end, the
  share on dues dated before the period end. Allocations effective up to the end cover
  each invoice's dues oldest first (FIFO, as :func:`plugins.billing.ledger.due_balances`);
  one fact per due still open: num = its open amount when overdue, den = its open amount.
- ``billing.invoices_late`` (percent, lower, 5): of the invoices dated in the period
  (prepayment invoices left out), the share dated more than ``billing.invoices.late_days``
  days after the first delivery they cover — the deliveries of the order after its
  previous invoice, up to the invoice's date. Deliveries are the shipments when logistics
  is enabled, else the order's first confirmation (services, BL-3).

``ordo_kpi_history`` writes an issued invoice with dues, payments and allocations for each
completed history order.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from core import hookimpl
from core.labels import N_
from core.models import Order, OrderTransition
from core.models.system import SettingValue
from plugins.billing import flow
from plugins.billing.models import (
    BillingAllocation,
    BillingInvoice,
    BillingInvoiceDue,
    BillingPayment,
)
from plugins.kpi.history import insert_numbered, insert_rows
from plugins.kpi.hookspecs import Metric, Period
from plugins.kpi.sql import company_date

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from plugins.kpi.hookspecs import HistoryBatch, HistoryOrder

ZERO = Decimal("0")
CENT = Decimal("0.01")


class days_after(FunctionElement[int]):
    """``days_after(earlier, later)``: whole days from one date to another (dates, not datetimes)."""

    type = Integer()
    inherit_cache = True
    name = "days_after"


@compiles(days_after, "sqlite")
def _days_after_sqlite(element: days_after, compiler: Any, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


@compiles(days_after)
def _days_after_default(element: days_after, compiler: Any, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({later} - {earlier})"


def _issued(invoice: Any = BillingInvoice) -> list[ColumnElement[bool]]:
    return [invoice.kind == "invoice", invoice.status == "issued"]


def _late_days() -> ColumnElement[int]:
    """The setting ``billing.invoices.late_days`` in SQL: the stored value, else its default."""
    default = next(setting.default for setting in flow.SETTINGS if setting.key == flow.INVOICE_LATE_DAYS)
    stored = (
        select(cast(cast(SettingValue.value, String), Integer))
        .where(SettingValue.key == flow.INVOICE_LATE_DAYS)
        .scalar_subquery()
    )
    return func.coalesce(stored, default)


def collection_rate(period: Period) -> Select[Any]:
    """Facts: dues dated in the period (den) and payments allocated in it to invoices due by its end (num)."""
    due = (
        select(
            BillingInvoice.order_id.label("order_id"),
            BillingInvoice.customer_id.label("customer_id"),
            literal(ZERO).label("num"),
            BillingInvoiceDue.amount.label("den"),
        )
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceDue.invoice_id)
        .where(*_issued(), period.covers(BillingInvoiceDue.due_date))
    )
    due_by_end = exists().where(
        BillingInvoiceDue.invoice_id == BillingAllocation.invoice_id, BillingInvoiceDue.due_date <= period.end
    )
    collected = (
        select(
            BillingInvoice.order_id.label("order_id"),
            BillingInvoice.customer_id.label("customer_id"),
            BillingAllocation.amount.label("num"),
            literal(ZERO).label("den"),
        )
        .join(BillingInvoice, BillingInvoice.id == BillingAllocation.invoice_id)
        .where(
            *_issued(),
            BillingAllocation.payment_id.is_not(None),
            period.covers(BillingAllocation.effective_on),
            due_by_end,
        )
    )
    both = union_all(due, collected).subquery("collection")
    return select(both.c.order_id, both.c.customer_id, both.c.num, both.c.den)


def _open_at_end(period: Period) -> tuple[list[ColumnElement[bool]], ColumnElement[Any]]:
    """The invoices that may have been open at the period end, and what was settled of each by then.

    An invoice open at the end is either open now (``settled < total``) or had money
    allocated after the end; both are found on indexes without reading settled history.
    """
    later = exists().where(
        BillingAllocation.invoice_id == BillingInvoice.id, BillingAllocation.effective_on > period.end
    )
    candidates = [
        *_issued(),
        BillingInvoice.invoice_date <= period.end,
        or_(BillingInvoice.settled < BillingInvoice.total, later),
    ]
    settled = (
        select(func.coalesce(func.sum(BillingAllocation.amount), 0))
        .where(BillingAllocation.invoice_id == BillingInvoice.id, BillingAllocation.effective_on <= period.end)
        .scalar_subquery()
    )
    return candidates, settled


def dso(period: Period) -> Select[Any]:
    """Facts: receivables open at the period end × days (num) and the invoices dated in the period (den)."""
    candidates, settled = _open_at_end(period)
    dues = (
        select(func.coalesce(func.sum(BillingInvoiceDue.amount), 0))
        .where(BillingInvoiceDue.invoice_id == BillingInvoice.id)
        .scalar_subquery()
    )
    open_amount = dues - settled
    receivable = select(
        BillingInvoice.order_id.label("order_id"),
        BillingInvoice.customer_id.label("customer_id"),
        (case((open_amount > 0, open_amount), else_=0) * period.days).label("num"),
        literal(ZERO).label("den"),
    ).where(*candidates)
    invoiced = select(
        BillingInvoice.order_id.label("order_id"),
        BillingInvoice.customer_id.label("customer_id"),
        literal(ZERO).label("num"),
        BillingInvoice.total.label("den"),
    ).where(*_issued(), period.covers(BillingInvoice.invoice_date))
    both = union_all(receivable, invoiced).subquery("dso")
    return select(both.c.order_id, both.c.customer_id, both.c.num, both.c.den)


def overdue_ratio(period: Period) -> Select[Any]:
    """Facts: each due open at the period end (den) and, when dated before the end, overdue (num)."""
    candidates, settled = _open_at_end(period)
    dues = (
        select(
            BillingInvoice.order_id.label("order_id"),
            BillingInvoice.customer_id.label("customer_id"),
            BillingInvoiceDue.due_date.label("due_date"),
            BillingInvoiceDue.amount.label("amount"),
            (
                func.sum(BillingInvoiceDue.amount).over(
                    partition_by=BillingInvoiceDue.invoice_id, order_by=BillingInvoiceDue.sequence
                )
                - BillingInvoiceDue.amount
            ).label("before"),
            settled.label("settled"),
        )
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceDue.invoice_id)
        .where(*candidates)
        .subquery("dues")
    )
    left = dues.c.settled - dues.c.before
    covered = case((left <= 0, 0), (left >= dues.c.amount, dues.c.amount), else_=left)
    open_amount = dues.c.amount - covered
    return select(
        dues.c.order_id,
        dues.c.customer_id,
        case((dues.c.due_date < period.end, open_amount), else_=0).label("num"),
        open_amount.label("den"),
    ).where(open_amount > 0)


def _first_covered(invoice: Any, previous: ColumnElement[Any], shipments: bool) -> ColumnElement[Any]:
    """The company date of the first delivery ``invoice`` covers (after ``previous``, up to its date)."""
    if shipments:
        from plugins.logistics.models import LogisticsShipment

        day: ColumnElement[Any] = company_date(LogisticsShipment.shipped_at)
        return (
            select(func.min(day))
            .where(
                LogisticsShipment.order_id == invoice.order_id,
                LogisticsShipment.shipped_at.is_not(None),
                LogisticsShipment.status != "cancelled",
                or_(previous.is_(None), day > previous),
                day <= invoice.invoice_date,
            )
            .scalar_subquery()
        )
    confirmed = (
        select(company_date(func.min(OrderTransition.at)))
        .where(
            OrderTransition.order_id == invoice.order_id,
            OrderTransition.to_status == "confirmed",
            OrderTransition.from_status != "confirmed",
        )
        .scalar_subquery()
    )
    return case(
        (and_(or_(previous.is_(None), confirmed > previous), confirmed <= invoice.invoice_date), confirmed),
        else_=None,
    )


def invoices_late(period: Period, *, shipments: bool = False) -> Select[Any]:
    """Facts: each invoice dated in the period (not prepayment); num 1 when issued late after its delivery."""
    earlier = aliased(BillingInvoice, name="earlier")
    previous = (
        select(func.max(earlier.invoice_date))
        .where(
            *_issued(earlier),
            earlier.basis != "prepayment",
            earlier.order_id == BillingInvoice.order_id,
            or_(
                earlier.invoice_date < BillingInvoice.invoice_date,
                and_(earlier.invoice_date == BillingInvoice.invoice_date, earlier.id < BillingInvoice.id),
            ),
        )
        # Correlated with the invoice even when nested in the shipments' subquery, where
        # automatic correlation would see no invoice and compare every pair of invoices.
        .correlate(BillingInvoice)
        .scalar_subquery()
    )
    first = _first_covered(BillingInvoice, previous, shipments)
    late = and_(first.is_not(None), days_after(first, BillingInvoice.invoice_date) > _late_days())
    return select(
        BillingInvoice.order_id.label("order_id"),
        BillingInvoice.customer_id.label("customer_id"),
        case((late, 1), else_=0).label("num"),
        literal(1).label("den"),
    ).where(*_issued(), BillingInvoice.basis != "prepayment", period.covers(BillingInvoice.invoice_date))


def _with_shipments(period: Period) -> Select[Any]:
    return invoices_late(period, shipments=True)


def metrics(shipments: bool) -> list[Metric]:
    """Billing's metrics; ``shipments`` when logistics is enabled (invoices late count from shipments)."""
    return [
        Metric(
            "billing.collection_rate",
            N_("Collection rate"),
            "percent",
            "higher",
            N_(
                "Payments allocated in the period to invoices due by its end, per amount falling due in the period "
                "(above 100 % when older arrears are collected)."
            ),
            collection_rate,
            target=Decimal("90"),
        ),
        Metric(
            "billing.dso",
            N_("Days sales outstanding"),
            "days",
            "lower",
            N_("Receivables open at the period end per amount invoiced in the period, times the days in the period."),
            dso,
            aggregate="mean",
            target=Decimal("45"),
        ),
        Metric(
            "billing.overdue_ratio",
            N_("Overdue ratio"),
            "percent",
            "lower",
            N_("Share of the receivables open at the period end that are past their due date."),
            overdue_ratio,
            target=Decimal("10"),
        ),
        Metric(
            "billing.invoices_late",
            N_("Invoices issued late"),
            "percent",
            "lower",
            N_(
                "Share of the invoices dated in the period that were issued later than the allowed days after the "
                "delivery they cover."
            ),
            _with_shipments if shipments else invoices_late,
            target=Decimal("5"),
        ),
    ]


@hookimpl(optionalhook=True)
def ordo_kpi_metrics(enabled: frozenset[str]) -> list[Metric]:
    """Billing's metrics: collection rate, days sales outstanding, overdue ratio, invoices issued late.

    With logistics enabled a delivery is a shipment, otherwise the order's confirmation.
    """
    return metrics("logistics" in enabled)


# --- generated history --------------------------------------------------------------


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


@hookimpl(optionalhook=True)
def ordo_kpi_history(session: Session, batch: HistoryBatch) -> None:
    """An issued invoice per completed order with dues; payments mostly on time, ≈8 % late, a few open."""
    done = [order for order in batch.orders if order.completed_at is not None]
    if not done:
        return
    company_id = session.scalar(select(Order.company_id).where(Order.id == done[0].id))
    finance: list[int | None] = [*(batch.users.get("finance") or batch.users.get("admin") or ())] or [None]
    invoices: list[dict[str, Any]] = []
    schedule: list[tuple[HistoryOrder, list[tuple[dt.date, Decimal]], list[tuple[dt.date, Decimal]]]] = []
    for order in done:
        rng = random.Random(order.seed * 6151 + 3)
        day = (order.completed_at or order.confirmed_at).date() + dt.timedelta(days=rng.choice((0, 1, 2, 3, 35)))
        day = min(day, batch.today)
        total = _money(order.total)
        untaxed = _money(total / Decimal("1.13"))
        dues = _dues(rng, day, total)
        payments = _payments(rng, dues, batch.today)
        settled = sum((amount for _day, amount in payments), ZERO)
        invoices.append(
            {
                "company_id": company_id,
                "kind": "invoice",
                "number": f"INV{day.year}-{order.id:06d}",
                "year": day.year,
                "status": "issued",
                "basis": "delivered",
                "customer_id": order.customer_id,
                "order_id": order.id,
                "untaxed": untaxed,
                "tax": total - untaxed,
                "total": total,
                "settled": settled,
                "invoice_date": day,
                "due_date": dues[-1][0],
                "created_by_id": rng.choice(finance),
                "issued_by_id": rng.choice(finance),
                "issued_at": order.completed_at,
            }
        )
        schedule.append((order, dues, payments))
    ids = insert_numbered(session, BillingInvoice, invoices)
    due_rows: list[dict[str, Any]] = []
    payment_rows: list[dict[str, Any]] = []
    for invoice_id, (order, dues, payments), invoice in zip(ids, schedule, invoices, strict=True):
        for sequence, (day, amount) in enumerate(dues, start=1):
            due_rows.append({"invoice_id": invoice_id, "sequence": sequence, "due_date": day, "amount": amount})
        for index, (day, amount) in enumerate(payments, start=1):
            payment_rows.append(
                {
                    "company_id": company_id,
                    "number": f"PAY{day.year}-{order.id:06d}-{index}",
                    "customer_id": order.customer_id,
                    "method": "bank_transfer",
                    "amount": amount,
                    "amount_base": amount,
                    "allocated": amount,
                    "received_on": day,
                    "payer_name": "History",
                    "recorded_by_id": invoice["created_by_id"],
                    "_invoice_id": invoice_id,
                }
            )
    insert_rows(session, BillingInvoiceDue, due_rows)
    if not payment_rows:
        return
    targets = [row.pop("_invoice_id") for row in payment_rows]
    payment_ids = insert_numbered(session, BillingPayment, payment_rows)
    insert_rows(
        session,
        BillingAllocation,
        [
            {
                "invoice_id": invoice_id,
                "payment_id": payment_id,
                "amount": row["amount"],
                "effective_on": row["received_on"],
                "allocated_by_id": row["recorded_by_id"],
            }
            for payment_id, invoice_id, row in zip(payment_ids, targets, payment_rows, strict=True)
        ],
    )


def _dues(rng: random.Random, day: dt.date, total: Decimal) -> list[tuple[dt.date, Decimal]]:
    """One due 30 days after the invoice, or (one in five) two halves at 30 and 60 days."""
    if rng.random() < 0.2:
        half = _money(total / 2)
        return [(day + dt.timedelta(days=30), half), (day + dt.timedelta(days=60), total - half)]
    return [(day + dt.timedelta(days=30), total)]


def _payments(rng: random.Random, dues: list[tuple[dt.date, Decimal]], today: dt.date) -> list[tuple[dt.date, Decimal]]:
    """One payment per due: mostly before it falls due, ≈8 % late, a few (≈3 %) never; none in the future."""
    found = []
    for due_day, amount in dues:
        draw = rng.random()
        if draw < 0.03:
            continue
        paid = (
            due_day + dt.timedelta(days=rng.randint(5, 60))
            if draw < 0.11
            else due_day - dt.timedelta(days=rng.randint(0, 20))
        )
        if paid <= today:
            found.append((paid, amount))
    return found

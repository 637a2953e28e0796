"""Late interest (滞纳金/逾期利息, BL-4): charged on the remaining balance of overdue dues, day by day.

Why: the company may charge interest on what a customer pays late, and it must be right
after partial payments — a customer who paid part of a due owes interest only on the
rest from the day the money counted (the allocation's ``effective_on``).

When the setting ``billing.interest.enabled`` is on, :func:`compute` charges
``billing.interest.daily_rate`` percent per day on each due's balance for each day after
its due date up to ``until``. The balance of a day is the due's amount less what was
allocated to the invoice (payments, credit notes, approved write-offs) effective *before*
that day, covering the invoice's dues oldest first (as :mod:`plugins.billing.ledger`
does): money received on the 11th stops interest from the 12th. Days already covered by
an earlier :class:`BillingInterestCharge` (up to its ``period_end``) are never charged again.

A charge is a debit the customer owes besides its invoices: it shows on the statement
of account and the dunning board, but it is **not** part of any VAT invoice (no VAT, no
invoice number) and no payment is allocated to it here.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.labels import N_
from core.models import User
from core.models.order import to_cents
from core.services import audit
from core.settings import get_setting
from plugins.billing import flow, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAllocation, BillingInterestCharge, BillingInvoice, BillingInvoiceDue

ZERO = Decimal("0")
ONE_DAY = dt.timedelta(days=1)

DISABLED = N_("Late interest is not charged: the setting %(setting)s is off.")
NOT_ISSUED = N_("Interest is charged on issued invoices only; %(number)s is not one.")
FUTURE = N_("Interest can be charged up to today at the latest, not %(until)s.")
NOTHING_DUE = N_("No interest is due on invoice %(number)s up to %(until)s.")
FORBIDDEN = N_("You need the permission %(permission)s.")


def enabled(session: Session) -> bool:
    """Whether late interest is charged at all (setting ``billing.interest.enabled``)."""
    return bool(get_setting(session, flow.INTEREST_ENABLED))


def daily_rate(session: Session) -> Decimal:
    """The rate per day in percent (setting ``billing.interest.daily_rate``)."""
    return Decimal(str(get_setting(session, flow.INTEREST_DAILY_RATE) or 0))


def charged_through(session: Session, invoice_id: int) -> dt.date | None:
    """The last day interest has been charged for on ``invoice_id`` (None: never)."""
    return session.scalar(
        select(func.max(BillingInterestCharge.period_end)).where(BillingInterestCharge.invoice_id == invoice_id)
    )


def _settlement_steps(session: Session, invoice_id: int) -> list[tuple[dt.date, Decimal]]:
    """(effective date, amount) of everything allocated to the invoice, oldest first."""
    rows = session.execute(
        select(BillingAllocation.effective_on, func.sum(BillingAllocation.amount))
        .where(BillingAllocation.invoice_id == invoice_id)
        .group_by(BillingAllocation.effective_on)
        .order_by(BillingAllocation.effective_on)
    )
    return [(day, Decimal(amount or 0)) for day, amount in rows]


def compute(
    session: Session, invoice: BillingInvoice, until: dt.date, *, rate: Decimal | None = None
) -> tuple[Decimal, list[dict[str, Any]]]:
    """The interest due on ``invoice`` up to ``until`` not yet charged, and its detail rows.

    Each row is a stretch of days one due's balance stood still: ``{"due": sequence,
    "from": date, "to": date, "days": n, "balance": Decimal, "amount": Decimal}``; the
    total is the sum of the rows' amounts (each rounded to cents). ``rate`` defaults to
    the setting (percent per day). Reads only; whether interest is enabled is the
    caller's question (:func:`charge_interest` asks).
    """
    per_day = (daily_rate(session) if rate is None else rate) / Decimal(100)
    already = charged_through(session, invoice.id)
    dues = list(
        session.scalars(
            select(BillingInvoiceDue)
            .where(BillingInvoiceDue.invoice_id == invoice.id)
            .order_by(BillingInvoiceDue.sequence)
        )
    )
    steps = _settlement_steps(session, invoice.id)
    rows: list[dict[str, Any]] = []
    for index, due in enumerate(dues):
        before = sum((d.amount for d in dues[:index]), ZERO)
        first = due.due_date + ONE_DAY
        if already is not None:
            first = max(first, already + ONE_DAY)
        if first > until:
            continue
        # Days on which the settled amount changes: the day after each allocation's date.
        changes = sorted({day + ONE_DAY for day, _ in steps if first < day + ONE_DAY <= until})
        bounds = [first, *changes, until + ONE_DAY]
        for start, stop in itertools.pairwise(bounds):
            settled = sum((amount for day, amount in steps if day < start), ZERO)
            covered = min(max(settled - before, ZERO), due.amount)
            balance = due.amount - covered
            if balance <= ZERO:
                continue
            days = (stop - start).days
            if rows and rows[-1]["due"] == due.sequence and rows[-1]["balance"] == balance:
                rows[-1]["to"] = stop - ONE_DAY
                rows[-1]["days"] += days
                rows[-1]["amount"] = to_cents(balance * rows[-1]["days"] * per_day)
                continue
            rows.append(
                {
                    "due": due.sequence,
                    "from": start,
                    "to": stop - ONE_DAY,
                    "days": days,
                    "balance": balance,
                    "amount": to_cents(balance * days * per_day),
                }
            )
    return to_cents(sum((row["amount"] for row in rows), ZERO)), rows


def charge_interest(
    session: Session, actor: User, invoice_id: int, until: dt.date | None = None
) -> BillingInterestCharge | None:
    """Charge the late interest due on ``invoice_id`` up to ``until`` (default today) and record it.

    Needs ``billing.dunning.manage`` (403) and the invoice in scope (404). Refused when
    interest is disabled or the invoice is not an issued invoice (409), ``until`` lies in
    the future or nothing is due (422); nothing is changed then.
    """
    if not actor.can(flow.DUNNING_MANAGE):
        raise BillingError("forbidden", FORBIDDEN, status=403, permission=flow.DUNNING_MANAGE)
    invoice = scope.get_invoice(session, actor, invoice_id)
    if not enabled(session):
        raise BillingError("interest_disabled", DISABLED, status=409, setting=flow.INTEREST_ENABLED)
    number = invoice.number or f"#{invoice.id}"
    if invoice.kind != "invoice" or invoice.status != "issued":
        raise BillingError("not_issued", NOT_ISSUED, status=409, number=number)
    today = company_now().date()
    until = until or today
    if until > today:
        raise BillingError("future", FUTURE, until=until.isoformat())
    rate = daily_rate(session)
    amount, rows = compute(session, invoice, until, rate=rate)
    if amount <= ZERO or not rows:
        raise BillingError("nothing_due", NOTHING_DUE, number=number, until=until.isoformat())
    charge = BillingInterestCharge(
        invoice_id=invoice.id,
        customer_id=invoice.customer_id,
        period_start=min(row["from"] for row in rows),
        period_end=until,
        daily_rate=rate,
        amount=amount,
        detail=[{key: str(value) for key, value in row.items()} for row in rows],
        created_by_id=actor.id,
    )
    session.add(charge)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_interest_charge",
        charge.id,
        "charge",
        {"invoice": number, "until": until.isoformat(), "amount": str(amount), "daily_rate": str(rate)},
        order_id=invoice.order_id,
    )
    return charge


def interest_total(session: Session, customer_id: int, *, until: dt.date | None = None) -> Decimal:
    """Late interest charged to ``customer_id`` (periods ending by ``until`` if given)."""
    stmt = select(func.coalesce(func.sum(BillingInterestCharge.amount), 0)).where(
        BillingInterestCharge.customer_id == customer_id
    )
    if until is not None:
        stmt = stmt.where(BillingInterestCharge.period_end <= until)
    return to_cents(Decimal(session.scalar(stmt) or 0))

"""Receivables reports (BL-6 statistics, BL-7): ageing, customer balances, collections per period.

Why: finance and the managers review settlement periodically (BL-6) — who owes how much
and for how long, what each customer has paid in advance, and what came in. Every figure
is read in the viewer's data scope (:func:`plugins.billing.scope.invoice_scope` for
invoices, :func:`plugins.billing.scope.payment_scope` for payments), so a branch's sales
manager sees the branch's receivables only.

- :func:`ageing`: the open amount of every due of the open invoices
  (:func:`plugins.billing.ledger.due_balances` — payments cover the oldest dues first),
  put in a bucket by the days it is past its due date on ``as_of``: *not yet due* (due on
  or after ``as_of``), *0–30* (1 to 30 days overdue), *31–60*, *61–90*, *over 90*; summed by
  customer, by salesperson (the order's owner, else the customer's) or by branch (the
  order's, else the customer's). Invoices dated after ``as_of`` are left out; the open
  amounts are today's.
- :func:`customer_balances`: per customer the open receivables, the unused balance
  (unallocated payments and unused credit notes, BL-7) and the net (open less balance).
- :func:`collections`: payments received in a period by month and method — count,
  amount received, how much of it is allocated — and the allocations made effective in the
  period by source (payments, credit notes, write-offs).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import Branch, Customer, Order, User
from core.models.order import to_cents
from plugins.billing import flow, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue, BillingPayment
from plugins.billing.scope import invoice_scope, payment_scope

ZERO = Decimal("0")

#: The ageing buckets in order, with their labels.
BUCKETS = {
    "not_due": N_("Not yet due"),
    "d0_30": N_("0–30 days"),
    "d31_60": N_("31–60 days"),
    "d61_90": N_("61–90 days"),
    "over_90": N_("Over 90 days"),
}
#: What the ageing can be summed by.
GROUPS = {"customer": N_("Customer"), "salesperson": N_("Salesperson"), "branch": N_("Branch")}
#: Where allocated money came from.
SOURCES = {"payment": N_("Payments"), "credit_note": N_("Credit notes"), "write_off": N_("Write-offs")}
NONE_KEY = ""
NOT_ALLOWED = N_("You may not see the receivables reports.")
BAD_GROUP = N_("Sum the ageing by customer, salesperson or branch.")
BAD_PERIOD = N_("The period starts after it ends.")


def _require(user: User) -> None:
    if not user.can(flow.REPORTS_READ):
        raise BillingError("forbidden", NOT_ALLOWED, status=403)


def bucket_of(days_overdue: int) -> str:
    """The ageing bucket of a due ``days_overdue`` days past its date (0 or less: not yet due)."""
    if days_overdue <= 0:
        return "not_due"
    if days_overdue <= 30:
        return "d0_30"
    if days_overdue <= 60:
        return "d31_60"
    if days_overdue <= 90:
        return "d61_90"
    return "over_90"


@dataclass
class AgeingRow:
    """The open receivables of one customer, salesperson or branch, by bucket."""

    key: str
    code: str
    name: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKETS, ZERO))
    invoices: set[int] = field(default_factory=set)

    @property
    def total(self) -> Decimal:
        """Everything open."""
        return sum(self.buckets.values(), ZERO)

    @property
    def overdue(self) -> Decimal:
        """What is past its due date."""
        return self.total - self.buckets["not_due"]


def ageing(session: Session, user: User, as_of: dt.date, group_by: str = "customer") -> list[AgeingRow]:
    """Open receivables aged on ``as_of``, summed by ``group_by`` (customer, salesperson, branch), largest first."""
    _require(user)
    if group_by not in GROUPS:
        raise BillingError("invalid_group", BAD_GROUP)
    rows = session.execute(
        select(
            BillingInvoiceDue.id,
            BillingInvoiceDue.due_date,
            BillingInvoice.id,
            Customer.id,
            Customer.code,
            Customer.name,
            Customer.owner_id,
            Customer.branch_id,
            Order.owner_id,
            Order.branch_id,
        )
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceDue.invoice_id)
        .join(Customer, Customer.id == BillingInvoice.customer_id)
        .outerjoin(Order, Order.id == BillingInvoice.order_id)
        .where(
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
            BillingInvoice.invoice_date <= as_of,
            invoice_scope(user),
        )
        .order_by(BillingInvoiceDue.id)
    ).all()
    balances = ledger.due_balances(session, {row[2] for row in rows})
    people: dict[int, str] = {}
    branches: dict[int, tuple[str, str]] = {}
    if group_by == "salesperson":
        ids = {r[8] if r[8] is not None else r[6] for r in rows} - {None}
        people = {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    if group_by == "branch":
        ids = {r[9] if r[9] is not None else r[7] for r in rows} - {None}
        branches = (
            {b.id: (b.code, b.name) for b in session.scalars(select(Branch).where(Branch.id.in_(ids)))} if ids else {}
        )
    found: dict[str, AgeingRow] = {}
    for due_id, due_date, invoice_id, customer_id, code, name, c_owner, c_branch, o_owner, o_branch in rows:
        open_amount = balances.get(due_id, ZERO)
        if open_amount <= ZERO:
            continue
        if group_by == "customer":
            key, label_code, label = str(customer_id), code, name
        elif group_by == "salesperson":
            owner = o_owner if o_owner is not None else c_owner
            key = str(owner) if owner is not None else NONE_KEY
            label_code, label = "", people.get(owner, "") if owner is not None else ""
        else:
            branch = o_branch if o_branch is not None else c_branch
            key = str(branch) if branch is not None else NONE_KEY
            label_code, label = branches.get(branch, ("", "")) if branch is not None else ("", "")
        row = found.setdefault(key, AgeingRow(key, label_code, label))
        row.buckets[bucket_of((as_of - due_date).days)] += open_amount
        row.invoices.add(invoice_id)
    for row in found.values():
        row.buckets = {k: to_cents(v) for k, v in row.buckets.items()}
    return sorted(found.values(), key=lambda r: (-r.total, r.code, r.name, r.key))


def ageing_total(rows: list[AgeingRow]) -> AgeingRow:
    """The sum of ``rows``."""
    total = AgeingRow("total", "", "")
    for row in rows:
        for bucket, amount in row.buckets.items():
            total.buckets[bucket] += amount
        total.invoices |= row.invoices
    return total


@dataclass(frozen=True)
class BalanceRow:
    """One customer's open receivables, unused balance and the net of the two."""

    customer_id: int
    code: str
    name: str
    open_receivables: Decimal
    unallocated: Decimal
    unused_credit: Decimal

    @property
    def balance(self) -> Decimal:
        """The customer's money not yet used (BL-7)."""
        return self.unallocated + self.unused_credit

    @property
    def net(self) -> Decimal:
        """What the customer owes after its balance is used (negative: the company owes)."""
        return self.open_receivables - self.balance


def customer_balances(session: Session, user: User) -> list[BalanceRow]:
    """Per customer in scope with anything open or unused: receivables, balance, net; by customer code."""
    _require(user)
    open_rows = session.execute(
        select(BillingInvoice.customer_id, func.sum(BillingInvoice.total - BillingInvoice.settled))
        .where(BillingInvoice.kind == "invoice", BillingInvoice.status == "issued", invoice_scope(user))
        .group_by(BillingInvoice.customer_id)
    ).tuples()
    credit_rows = session.execute(
        select(BillingInvoice.customer_id, func.sum(-BillingInvoice.total - BillingInvoice.settled))
        .where(BillingInvoice.kind == "credit_note", BillingInvoice.status == "issued", invoice_scope(user))
        .group_by(BillingInvoice.customer_id)
    ).tuples()
    paid_rows = session.execute(
        select(BillingPayment.customer_id, func.sum(BillingPayment.amount_base - BillingPayment.allocated))
        .where(payment_scope(user))
        .group_by(BillingPayment.customer_id)
    ).tuples()
    figures: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for index, rows in enumerate((open_rows, paid_rows, credit_rows)):
        for customer_id, amount in rows:
            figures[customer_id][index] += to_cents(Decimal(amount or 0))
    ids = [cid for cid, values in figures.items() if any(values)]
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))} if ids else {}
    found = [
        BalanceRow(cid, customers[cid].code, customers[cid].name, *figures[cid]) for cid in ids if cid in customers
    ]
    return sorted(found, key=lambda r: r.code)


@dataclass
class CollectionRow:
    """Payments received in one month by one method."""

    month: str
    method: str
    count: int = 0
    received: Decimal = ZERO
    allocated: Decimal = ZERO

    @property
    def unallocated(self) -> Decimal:
        """What of it is still the customers' balance."""
        return self.received - self.allocated


@dataclass
class Collections:
    """The collections of a period: payments by month and method, allocations by source."""

    start: dt.date
    end: dt.date
    rows: list[CollectionRow]
    allocations: dict[str, Decimal]

    @property
    def received(self) -> Decimal:
        """All payments received in the period."""
        return sum((r.received for r in self.rows), ZERO)

    @property
    def allocated(self) -> Decimal:
        """What of the period's payments is allocated."""
        return sum((r.allocated for r in self.rows), ZERO)

    @property
    def count(self) -> int:
        """The number of payments received."""
        return sum(r.count for r in self.rows)


def collections(session: Session, user: User, start: dt.date, end: dt.date) -> Collections:
    """Payments received ``start`` … ``end`` (inclusive) by month and method; allocations made effective then."""
    _require(user)
    if start > end:
        raise BillingError("invalid_period", BAD_PERIOD)
    grouped = session.execute(
        select(
            BillingPayment.received_on,
            BillingPayment.method,
            func.count(BillingPayment.id),
            func.sum(BillingPayment.amount_base),
            func.sum(BillingPayment.allocated),
        )
        .where(BillingPayment.received_on >= start, BillingPayment.received_on <= end, payment_scope(user))
        .group_by(BillingPayment.received_on, BillingPayment.method)
    ).tuples()
    rows: dict[tuple[str, str], CollectionRow] = {}
    for day, method, count, received, allocated in grouped:
        month = f"{day.year:04d}-{day.month:02d}"
        row = rows.setdefault((month, method), CollectionRow(month, method))
        row.count += int(count)
        row.received += to_cents(Decimal(received or 0))
        row.allocated += to_cents(Decimal(allocated or 0))
    sources = dict.fromkeys(SOURCES, ZERO)
    source_of = case(
        (BillingAllocation.payment_id.is_not(None), "payment"),
        (BillingAllocation.credit_note_id.is_not(None), "credit_note"),
        else_="write_off",
    )
    for source, amount in session.execute(
        select(source_of, func.sum(BillingAllocation.amount))
        .join(BillingInvoice, BillingInvoice.id == BillingAllocation.invoice_id)
        .where(BillingAllocation.effective_on >= start, BillingAllocation.effective_on <= end, invoice_scope(user))
        .group_by(source_of)
    ).tuples():
        sources[source] += to_cents(Decimal(amount or 0))
    return Collections(start, end, [rows[k] for k in sorted(rows)], sources)

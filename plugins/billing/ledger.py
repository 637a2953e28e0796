"""The accounts receivable arithmetic every billing module shares, and allocation.

One place says what an amount means, so the credit gate, dunning, the reports and the
screens never disagree:

- an issued invoice's **open amount** is ``total − settled``; ``settled`` grows only by
  allocations (payments, credit notes, approved write-offs) through :func:`allocate`,
  whose conditional UPDATEs refuse to run past the total even when two clerks allocate
  at the same moment (CHECK constraints back them up);
- an invoice's dues (instalments) are covered oldest first by what is settled
  (:func:`due_balances`);
- a customer's **open receivables** are the open amounts of its issued invoices; its
  **balance** (BL-7) is what it has paid or been credited and not yet used: unallocated
  payments plus unused credit notes — usable as prepayment on later invoices;
- an order's **invoiced amount** is the total of its issued invoices less its issued
  credit notes.

Nothing here commits; callers own the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import User
from core.models.order import to_cents
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    BillingAllocation,
    BillingInvoice,
    BillingInvoiceDue,
    BillingPayment,
    BillingWriteOff,
)

ZERO = Decimal("0")

NOT_POSITIVE = N_("The amount to allocate must be greater than zero.")
NOT_OPEN_INVOICE = N_("Invoice %(number)s is not an issued invoice; only issued invoices are paid.")
OTHER_CUSTOMER = N_("The payment or credit belongs to another customer than invoice %(number)s.")
ABOVE_OPEN = N_("%(amount)s is more than the %(open)s still open on invoice %(number)s.")
ABOVE_AVAILABLE = N_("%(amount)s is more than the %(available)s still unallocated on %(source)s.")
ONE_SOURCE = N_("Allocate from exactly one payment, credit note or approved write-off.")
NOT_USABLE_CREDIT = N_("Credit note %(number)s is not issued, so it cannot be used.")
NOT_APPROVED = N_("Only an approved write-off can settle an invoice.")


def allocate(
    session: Session,
    invoice: BillingInvoice,
    amount: Decimal,
    *,
    payment: BillingPayment | None = None,
    credit_note: BillingInvoice | None = None,
    write_off: BillingWriteOff | None = None,
    effective_on: dt.date,
    actor: User | None,
) -> BillingAllocation:
    """Match ``amount`` of one source to ``invoice``; raise :class:`BillingError` and change nothing if it cannot.

    The source and the invoice are updated with conditional UPDATEs (``settled + amount
    ≤ total``, ``allocated + amount ≤ amount``), so a concurrent allocation that would
    run over loses here with a clear 422 instead of over-allocating.
    """
    amount = to_cents(Decimal(amount))
    sources = [s for s in (payment, credit_note, write_off) if s is not None]
    if len(sources) != 1:
        raise BillingError("invalid_allocation", ONE_SOURCE)
    if amount <= ZERO:
        raise BillingError("invalid_amount", NOT_POSITIVE)
    if invoice.kind != "invoice" or invoice.status != "issued":
        raise BillingError("invoice_not_open", NOT_OPEN_INVOICE, status=409, number=invoice.number or f"#{invoice.id}")
    number = invoice.number or ""
    source = sources[0]
    if getattr(source, "customer_id", invoice.customer_id) != invoice.customer_id:
        raise BillingError("other_customer", OTHER_CUSTOMER, number=number)
    if credit_note is not None and (credit_note.kind != "credit_note" or credit_note.status != "issued"):
        raise BillingError("credit_note_not_issued", NOT_USABLE_CREDIT, status=409, number=credit_note.number or "")
    if write_off is not None and write_off.status != "approved":
        raise BillingError("write_off_not_approved", NOT_APPROVED, status=409)
    open_before = invoice.open_amount
    if amount > open_before:
        raise BillingError("above_open", ABOVE_OPEN, amount=str(amount), open=str(open_before), number=number)

    taken = _rowcount(
        session.execute(
            update(BillingInvoice)
            .where(BillingInvoice.id == invoice.id, BillingInvoice.settled + amount <= BillingInvoice.total)
            .values(settled=BillingInvoice.settled + amount)
            .execution_options(synchronize_session=False)
        )
    )
    if not taken:
        session.refresh(invoice)
        raise BillingError("above_open", ABOVE_OPEN, amount=str(amount), open=str(invoice.open_amount), number=number)
    if payment is not None:
        used = _rowcount(
            session.execute(
                update(BillingPayment)
                .where(BillingPayment.id == payment.id, BillingPayment.allocated + amount <= BillingPayment.amount_base)
                .values(allocated=BillingPayment.allocated + amount)
                .execution_options(synchronize_session=False)
            )
        )
        label = payment.number
    elif credit_note is not None:
        used = _rowcount(
            session.execute(
                update(BillingInvoice)
                .where(BillingInvoice.id == credit_note.id, BillingInvoice.settled + amount <= -BillingInvoice.total)
                .values(settled=BillingInvoice.settled + amount)
                .execution_options(synchronize_session=False)
            )
        )
        label = credit_note.number or ""
    else:
        used, label = 1, ""
    if not used:
        # Undo the invoice's share: the whole allocation is refused, nothing changed.
        session.execute(
            update(BillingInvoice)
            .where(BillingInvoice.id == invoice.id)
            .values(settled=BillingInvoice.settled - amount)
            .execution_options(synchronize_session=False)
        )
        session.refresh(invoice)
        available = _available(session, payment, credit_note)
        raise BillingError(
            "above_available", ABOVE_AVAILABLE, amount=str(amount), available=str(available), source=label
        )
    allocation = BillingAllocation(
        invoice_id=invoice.id,
        payment_id=payment.id if payment is not None else None,
        credit_note_id=credit_note.id if credit_note is not None else None,
        write_off_id=write_off.id if write_off is not None else None,
        amount=amount,
        effective_on=effective_on,
        allocated_by_id=actor.id if actor is not None else None,
    )
    session.add(allocation)
    session.flush()
    for row in (invoice, payment, credit_note):
        if row is not None:
            session.refresh(row)
    return allocation


def _rowcount(result: object) -> int:
    """Rows an UPDATE changed (``CursorResult.rowcount``)."""
    return int(getattr(result, "rowcount", 0))


def _available(session: Session, payment: BillingPayment | None, credit_note: BillingInvoice | None) -> Decimal:
    if payment is not None:
        session.refresh(payment)
        return payment.unallocated
    if credit_note is not None:
        session.refresh(credit_note)
        return credit_note.open_amount
    return ZERO


def open_receivables(session: Session, customer_id: int) -> Decimal:
    """What ``customer_id`` still owes on issued invoices."""
    value = session.scalar(
        select(func.coalesce(func.sum(BillingInvoice.total - BillingInvoice.settled), 0)).where(
            BillingInvoice.customer_id == customer_id,
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
        )
    )
    return to_cents(Decimal(value or 0))


def customer_balance(session: Session, customer_id: int) -> Decimal:
    """The customer's unused money (BL-7): unallocated payments plus unused credit notes."""
    paid = session.scalar(
        select(func.coalesce(func.sum(BillingPayment.amount_base - BillingPayment.allocated), 0)).where(
            BillingPayment.customer_id == customer_id
        )
    )
    credited = session.scalar(
        select(func.coalesce(func.sum(-BillingInvoice.total - BillingInvoice.settled), 0)).where(
            BillingInvoice.customer_id == customer_id,
            BillingInvoice.kind == "credit_note",
            BillingInvoice.status == "issued",
        )
    )
    return to_cents(Decimal(paid or 0) + Decimal(credited or 0))


def invoiced_by_order(session: Session, order_ids: Iterable[int]) -> dict[int, Decimal]:
    """Net issued amount per order: invoices less credit notes (credit notes are negative)."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(BillingInvoice.order_id, func.sum(BillingInvoice.total))
        .where(BillingInvoice.order_id.in_(ids), BillingInvoice.status == "issued")
        .group_by(BillingInvoice.order_id)
    )
    return {order_id: to_cents(Decimal(total or 0)) for order_id, total in rows if order_id is not None}


def paid_by_order(session: Session, order_ids: Iterable[int]) -> dict[int, Decimal]:
    """What has been settled per order on its issued invoices (payments, credits, write-offs)."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(BillingInvoice.order_id, func.sum(BillingInvoice.settled))
        .where(BillingInvoice.order_id.in_(ids), BillingInvoice.status == "issued", BillingInvoice.kind == "invoice")
        .group_by(BillingInvoice.order_id)
    )
    return {order_id: to_cents(Decimal(total or 0)) for order_id, total in rows if order_id is not None}


def due_balances(session: Session, invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    """The open amount of each due of ``invoice_ids``: what is settled covers the oldest dues first."""
    ids = list(invoice_ids)
    if not ids:
        return {}
    settled: dict[int, Decimal] = {
        row.id: row.settled
        for row in session.execute(select(BillingInvoice.id, BillingInvoice.settled).where(BillingInvoice.id.in_(ids)))
    }
    result: dict[int, Decimal] = {}
    dues = session.execute(
        select(BillingInvoiceDue.id, BillingInvoiceDue.invoice_id, BillingInvoiceDue.amount)
        .where(BillingInvoiceDue.invoice_id.in_(ids))
        .order_by(BillingInvoiceDue.invoice_id, BillingInvoiceDue.sequence)
    )
    remaining = {k: Decimal(v or 0) for k, v in settled.items()}
    for due_id, invoice_id, amount in dues:
        covered = min(remaining[invoice_id], amount)
        remaining[invoice_id] -= covered
        result[due_id] = amount - covered
    return result


def overdue_amount(session: Session, customer_id: int, as_of: dt.date, grace_days: int = 0) -> Decimal:
    """What ``customer_id`` owes on dues more than ``grace_days`` past their date on ``as_of``."""
    cutoff = as_of - dt.timedelta(days=grace_days)
    invoice_ids = list(
        session.scalars(
            select(BillingInvoice.id)
            .join(BillingInvoiceDue, and_(BillingInvoiceDue.invoice_id == BillingInvoice.id))
            .where(
                BillingInvoice.customer_id == customer_id,
                BillingInvoice.kind == "invoice",
                BillingInvoice.status == "issued",
                BillingInvoice.settled < BillingInvoice.total,
                BillingInvoiceDue.due_date < cutoff,
            )
            .distinct()
        )
    )
    if not invoice_ids:
        return ZERO
    balances = due_balances(session, invoice_ids)
    late = set(
        session.scalars(
            select(BillingInvoiceDue.id).where(
                BillingInvoiceDue.invoice_id.in_(invoice_ids), BillingInvoiceDue.due_date < cutoff
            )
        )
    )
    return to_cents(sum((v for k, v in balances.items() if k in late), ZERO))

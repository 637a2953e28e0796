"""The formal dunning letter (催款函) and the statement of account (对账单), as PDFs in Chinese or English.

Why: BL-4 asks for a formal dunning letter after the friendly reminder, and BL-7 for a
periodic reconciliation of the customer's account; both are printed on the company
letterhead through core's document machinery (:func:`core.documents.environment` and
:func:`core.documents.html_to_pdf`, templates ``billing/documents/*.html``).

Neither is one of core's per-order document types — a letter belongs to one due of an
invoice, a statement to a customer and a period — so ``DOCUMENTS`` stays empty; the
screens and the API serve them. A letter sent by the dunning run is archived byte for
byte as an attachment of the invoice's order (shared with the customer's portal) and
handed out from there again; a letter of an invoice without an order is rendered on
demand from the logged event.

The statement lists, in date order with a running balance, issued invoices (debit),
issued credit notes (credit), payments received (credit, in CNY), approved write-offs
(credit) and late interest charged (debit, not part of any VAT invoice). Its closing
balance over all time equals the ledger's ``open receivables − customer balance +
interest charged`` (:func:`statement` checks it: ``reconciles``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import TIMEZONE_NAME, company_now
from core.contrib import DocumentType
from core.documents import check_language, environment, html_to_pdf, logo_data_uri, translations_for
from core.files import file_store
from core.i18n import LANGUAGES
from core.labels import N_
from core.models import Branch, Company, Customer, Order, User
from core.models.files import OrderAttachment
from core.models.order import to_cents
from core.plugins import Registry
from core.services import audit
from core.settings import session_registry
from plugins.billing import flow, ledger, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    BillingAllocation,
    BillingDunningEvent,
    BillingDunningLevel,
    BillingInterestCharge,
    BillingInvoice,
    BillingInvoiceDue,
    BillingPayment,
    BillingWriteOff,
)

ZERO = Decimal("0")
LETTER_TEMPLATE = "billing/documents/dunning_letter.html"
STATEMENT_TEMPLATE = "billing/documents/statement.html"
LETTER_TITLE = N_("Dunning letter 催款函")
STATEMENT_TITLE = N_("Statement of account 对账单")
#: What each kind of statement entry is called.
ENTRY_KINDS = {
    "invoice": N_("Invoice"),
    "credit_note": N_("Credit note"),
    "payment": N_("Payment"),
    "write_off": N_("Write-off"),
    "interest": N_("Late interest"),
}
_ORDERING = {"invoice": 0, "interest": 1, "credit_note": 2, "write_off": 3, "payment": 4}

FORBIDDEN = N_("You need the permission %(permission)s.")
PERIOD_ORDER = N_("The period must not end (%(end)s) before it starts (%(start)s).")

#: Neither document is one of core's per-order types; the screens serve them.
DOCUMENTS: tuple[DocumentType, ...] = ()


def document_language(customer: Customer) -> str:
    """The language documents for ``customer`` are printed in: theirs if printed, else Chinese."""
    return customer.language if customer.language in LANGUAGES else "zh_CN"


def customer_company(session: Session, customer: Customer) -> Company:
    """The company that issues documents to ``customer``: its branch's, else the installation's first."""
    if customer.branch_id is not None:
        branch = session.get(Branch, customer.branch_id)
        if branch is not None:
            company = session.get(Company, branch.company_id)
            if company is not None:
                return company
    company = session.scalar(select(Company).order_by(Company.id).limit(1))
    assert company is not None
    return company


def _base(
    session: Session, registry: Registry, company: Company, number: str, title: str, language: str
) -> dict[str, Any]:
    check_language(language)
    return {
        "order": SimpleNamespace(number=number),
        "document": SimpleNamespace(name=title, label=title),
        "title": str(translations_for(registry, language).gettext(title)),
        "company": company,
        "logo": logo_data_uri(session, company),
        "printed_at": company_now(),
        "timezone": TIMEZONE_NAME,
        "language": language,
    }


# --------------------------------------------------------------------------- the letter


def letter_context(session: Session, event: BillingDunningEvent) -> dict[str, Any]:
    """What the letter of ``event`` says: customer, invoice, due, open amount, days overdue, interest."""
    invoice = session.get(BillingInvoice, event.invoice_id)
    due = session.get(BillingInvoiceDue, event.due_id)
    level = session.get(BillingDunningLevel, event.level_id)
    customer = session.get(Customer, event.customer_id)
    assert invoice is not None and due is not None and level is not None and customer is not None
    order = session.get(Order, invoice.order_id) if invoice.order_id else None
    sent_on = event.sent_at.replace(tzinfo=event.sent_at.tzinfo or dt.UTC).astimezone(company_now().tzinfo).date()
    interest = session.scalars(
        select(BillingInterestCharge)
        .where(BillingInterestCharge.invoice_id == invoice.id)
        .order_by(BillingInterestCharge.period_end)
    ).all()
    return {
        "event": event,
        "invoice": invoice,
        "due": due,
        "level": level,
        "customer": customer,
        "sales_order": order,
        "sent_on": sent_on,
        "days_overdue": max(0, (sent_on - due.due_date).days),
        "open_amount": event.open_amount,
        "interest": list(interest),
        "interest_total": to_cents(sum((c.amount for c in interest), ZERO)),
        "pay_by": sent_on + dt.timedelta(days=7),
    }


def render_letter_html(session: Session, registry: Registry, event: BillingDunningEvent, language: str) -> str:
    """The 催款函 of ``event`` as HTML in ``language``."""
    context = letter_context(session, event)
    invoice = context["invoice"]
    company = session.get(Company, invoice.company_id)
    assert company is not None
    base = _base(session, registry, company, invoice.number or "", LETTER_TITLE, language)
    return environment(registry, language).get_template(LETTER_TEMPLATE).render(**base, **context)


def render_letter_pdf(
    session: Session, registry: Registry, event: BillingDunningEvent, language: str | None = None
) -> bytes:
    """The 催款函 of ``event`` as PDF bytes (the customer's language unless ``language`` says otherwise)."""
    if language is None:
        customer = session.get(Customer, event.customer_id)
        assert customer is not None
        language = document_language(customer)
    return html_to_pdf(render_letter_html(session, registry, event, language))


def letter_filename(session: Session, event: BillingDunningEvent) -> str:
    """``<invoice number>-dunning-letter-<level>.pdf``."""
    invoice = session.get(BillingInvoice, event.invoice_id)
    level = session.get(BillingDunningLevel, event.level_id)
    number = (invoice.number if invoice else None) or f"invoice-{event.invoice_id}"
    return f"{number}-dunning-letter-{level.code if level else event.level_id}.pdf"


def archive_letter(session: Session, event: BillingDunningEvent, actor: User | None) -> OrderAttachment | None:
    """Render the letter of ``event`` and keep it as an attachment of the invoice's order, shared with
    the customer; None when the invoice has no order (the letter is then rendered on demand).

    Written directly (not through :func:`core.attachments.service.add_attachment`, which needs
    a user's upload permission): the dunning job runs without a user. Audited on the order.
    """
    invoice = session.get(BillingInvoice, event.invoice_id)
    if invoice is None or invoice.order_id is None:
        return None
    pdf = render_letter_pdf(session, session_registry(session), event)
    sha256 = file_store(session).put(pdf)
    attachment = OrderAttachment(
        order_id=invoice.order_id,
        kind="other",
        filename=letter_filename(session, event),
        content_type="application/pdf",
        size=len(pdf),
        sha256=sha256,
        note=f"催款函 / Dunning letter {invoice.number or ''}",
        uploaded_by_id=actor.id if actor is not None else None,
        customer_visible=True,
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        actor,
        "order_attachment",
        attachment.id,
        "upload",
        {
            "filename": attachment.filename,
            "kind": "other",
            "size": len(pdf),
            "sha256": sha256,
            "dunning_event": event.id,
        },
        order_id=invoice.order_id,
    )
    return attachment


def letter_pdf(session: Session, actor: User, event_id: int, language: str | None = None) -> tuple[str, bytes]:
    """(file name, PDF) of the letter of dunning event ``event_id`` as ``actor`` may read it.

    The archived copy when the run kept one (and no other language is asked for), else
    rendered now. 404 outside the actor's scope or for an event without a letter level.
    """
    from plugins.billing.dunning import get_event

    _require_read(actor)
    event = get_event(session, actor, event_id)
    level = session.get(BillingDunningLevel, event.level_id)
    if level is None or not (level.letter or event.letter_attachment_id):
        from core.services import NotFound

        raise NotFound("dunning letter", event_id)
    if event.letter_attachment_id is not None and language is None:
        attachment = session.get(OrderAttachment, event.letter_attachment_id)
        if attachment is not None:
            return attachment.filename, file_store(session).get(attachment.sha256)
    return letter_filename(session, event), render_letter_pdf(session, session_registry(session), event, language)


def _require_read(actor: User) -> None:
    if not (actor.can(flow.INVOICES_READ) or actor.can(flow.ACCOUNTS_READ)):
        raise BillingError("forbidden", FORBIDDEN, status=403, permission=flow.INVOICES_READ)


# --------------------------------------------------------------------------- the statement


@dataclass
class StatementEntry:
    """One line of a statement: a document or payment, what it adds or takes off, the balance after it."""

    date: dt.date
    kind: str
    reference: str
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal = ZERO
    ident: int = 0


@dataclass
class Statement:
    """A customer's statement of account for a period (对账单, BL-7)."""

    customer: Customer
    start: dt.date
    end: dt.date
    opening: Decimal
    entries: list[StatementEntry] = field(default_factory=list)
    closing: Decimal = ZERO
    debits: Decimal = ZERO
    credits: Decimal = ZERO
    #: The ledger now: open receivables, unallocated balance (BL-7), interest charged.
    open_receivables: Decimal = ZERO
    unallocated: Decimal = ZERO
    interest: Decimal = ZERO
    #: ``open receivables − unallocated + interest``: what every entry ever adds up to.
    ledger_closing: Decimal = ZERO
    #: Whether all the entries (any date) add up to ``ledger_closing``.
    reconciles: bool = True
    #: Whether the period runs to today or later, so ``closing`` must equal ``ledger_closing``.
    current: bool = False


def _entries(session: Session, customer_id: int) -> list[StatementEntry]:
    entries: list[StatementEntry] = []
    for invoice in session.scalars(
        select(BillingInvoice).where(BillingInvoice.customer_id == customer_id, BillingInvoice.status == "issued")
    ):
        day = invoice.invoice_date or (invoice.issued_at.date() if invoice.issued_at else dt.date.min)
        if invoice.kind == "invoice":
            entries.append(
                StatementEntry(
                    day, "invoice", invoice.number or "", invoice.note, invoice.total, ZERO, ident=invoice.id
                )
            )
        else:
            entries.append(
                StatementEntry(
                    day, "credit_note", invoice.number or "", invoice.note, ZERO, -invoice.total, ident=invoice.id
                )
            )
    for payment in session.scalars(select(BillingPayment).where(BillingPayment.customer_id == customer_id)):
        text = (
            payment.reference
            if payment.currency == "CNY"
            else f"{payment.reference} {payment.amount} {payment.currency}"
        )
        entries.append(
            StatementEntry(
                payment.received_on,
                "payment",
                payment.number,
                text.strip(),
                ZERO,
                payment.amount_base,
                ident=payment.id,
            )
        )
    write_offs = session.execute(
        select(BillingAllocation, BillingInvoice.number)
        .join(BillingWriteOff, BillingWriteOff.id == BillingAllocation.write_off_id)
        .join(BillingInvoice, BillingInvoice.id == BillingAllocation.invoice_id)
        .where(BillingInvoice.customer_id == customer_id, BillingWriteOff.status == "approved")
    ).tuples()
    for allocation, number in write_offs:
        entries.append(
            StatementEntry(
                allocation.effective_on, "write_off", number or "", "", ZERO, allocation.amount, ident=allocation.id
            )
        )
    charges = session.execute(
        select(BillingInterestCharge, BillingInvoice.number)
        .join(BillingInvoice, BillingInvoice.id == BillingInterestCharge.invoice_id)
        .where(BillingInterestCharge.customer_id == customer_id)
    ).tuples()
    for charge, number in charges:
        text = f"{number or ''} {charge.period_start.isoformat()} – {charge.period_end.isoformat()}"
        entries.append(
            StatementEntry(charge.period_end, "interest", number or "", text, charge.amount, ZERO, ident=charge.id)
        )
    entries.sort(key=lambda e: (e.date, _ORDERING[e.kind], e.ident))
    return entries


def statement(session: Session, actor: User, customer_id: int, start: dt.date, end: dt.date) -> Statement:
    """The statement of account of ``customer_id`` from ``start`` to ``end`` (both included).

    Needs ``billing.invoices.read`` or ``billing.accounts.read`` (403); the customer in the
    actor's billing scope (404); ``start`` not after ``end`` (422).
    """
    _require_read(actor)
    customer = scope.get_customer(session, actor, customer_id)
    if end < start:
        raise BillingError("invalid_period", PERIOD_ORDER, start=start.isoformat(), end=end.isoformat())
    every = _entries(session, customer.id)
    opening = to_cents(sum((e.debit - e.credit for e in every if e.date < start), ZERO))
    result = Statement(customer=customer, start=start, end=end, opening=opening)
    balance = opening
    for entry in every:
        if start <= entry.date <= end:
            balance += entry.debit - entry.credit
            entry.balance = to_cents(balance)
            result.entries.append(entry)
    result.closing = to_cents(balance)
    result.debits = to_cents(sum((e.debit for e in result.entries), ZERO))
    result.credits = to_cents(sum((e.credit for e in result.entries), ZERO))
    from plugins.billing.interest import interest_total

    result.open_receivables = ledger.open_receivables(session, customer.id)
    result.unallocated = ledger.customer_balance(session, customer.id)
    result.interest = interest_total(session, customer.id)
    result.ledger_closing = to_cents(result.open_receivables - result.unallocated + result.interest)
    result.reconciles = to_cents(sum((e.debit - e.credit for e in every), ZERO)) == result.ledger_closing
    last = max((e.date for e in every), default=start)
    result.current = end >= last
    return result


def statement_data(result: Statement) -> dict[str, Any]:
    """The statement as plain values (the API's answer)."""
    return {
        "customer_id": result.customer.id,
        "customer_code": result.customer.code,
        "customer_name": result.customer.name,
        "start": result.start,
        "end": result.end,
        "opening": result.opening,
        "entries": [
            {
                "date": e.date,
                "kind": e.kind,
                "reference": e.reference,
                "description": e.description,
                "debit": e.debit,
                "credit": e.credit,
                "balance": e.balance,
            }
            for e in result.entries
        ],
        "debits": result.debits,
        "credits": result.credits,
        "closing": result.closing,
        "open_receivables": result.open_receivables,
        "unallocated": result.unallocated,
        "interest": result.interest,
        "ledger_closing": result.ledger_closing,
        "reconciles": result.reconciles,
        "current": result.current,
    }


def render_statement_html(session: Session, registry: Registry, result: Statement, language: str) -> str:
    """The 对账单 as HTML in ``language``."""
    company = customer_company(session, result.customer)
    number = f"{result.customer.code} {result.start.isoformat()}–{result.end.isoformat()}"
    base = _base(session, registry, company, number, STATEMENT_TITLE, language)
    return (
        environment(registry, language)
        .get_template(STATEMENT_TEMPLATE)
        .render(**base, statement=result, entry_kinds=ENTRY_KINDS, customer=result.customer)
    )


def render_statement_pdf(session: Session, registry: Registry, result: Statement, language: str | None = None) -> bytes:
    """The 对账单 as PDF bytes (the customer's language unless ``language`` says otherwise)."""
    return html_to_pdf(render_statement_html(session, registry, result, language or document_language(result.customer)))


def statement_filename(result: Statement) -> str:
    """``statement-<customer>-<start>-<end>.pdf``."""
    return f"statement-{result.customer.code}-{result.start.isoformat()}-{result.end.isoformat()}.pdf"

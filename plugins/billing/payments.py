"""Payments, their allocation to invoices, the customer balance and the payer-proof rule.

Money received (BL-6) is recorded once — bank transfer, cash, or an online payment
pushed by a provider's signed webhook (:mod:`plugins.billing.webhook`) — with its
currency, rate, payer and reference, and numbered ``PAY<year>-<serial>``. It is then
**allocated** to one or several issued invoices of the same customer, partially or in
full; the arithmetic and the race-safe conditional UPDATEs are :func:`ledger.allocate`'s,
so two clerks allocating one payment at the same moment can never take more than it.

What is not allocated stays in the **customer balance** (BL-7) together with unused
credit notes; it works as a prepayment: issuing an invoice applies it automatically
(:func:`apply_balance`, called by :func:`plugins.billing.invoices.issue_invoice`).

A payer other than the invoiced customer needs the customer's written confirmation
attached (an order attachment of one of its orders) before the money may be allocated
(BL-3). Every allocation ends with :func:`plugins.billing.settlement.on_paid`, so an order
whose invoices are now paid moves on through the settlement step by itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import company_now
from core.contrib import NotificationTemplate
from core.labels import N_
from core.models import Customer, Order, OrderAttachment, User
from core.models.order import to_cents
from core.services import NotFound, audit
from core.services.numbering import next_serial
from core.services.orders import default_company, get_order
from plugins.billing import flow, ledger, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import PAYMENT_METHODS, BillingAllocation, BillingInvoice, BillingPayment

#: The number sequence of payments (``PAY2026-000001``).
PAYMENT_SEQUENCE = "billing.payment"
ZERO = Decimal("0")
MAX_PAYER = 200
MAX_REFERENCE = 100
MAX_NOTE = 1000
CURRENCY = re.compile(r"^[A-Z]{3}$")

PAYMENT_UNALLOCATED = NotificationTemplate(
    "billing.payment_unallocated",
    label=N_("Payment not (fully) allocated: finance follows it up"),
    subject={
        "zh_CN": "收款 {{ number }}（{{ customer }}）有 {{ unallocated }} 元未核销",
        "en": "Payment {{ number }} ({{ customer }}): {{ unallocated }} CNY not allocated",
    },
    body={
        "zh_CN": (
            "{{ customer }} 的收款 {{ number }}（{{ method }}，付款人 {{ payer }}，参考号 {{ reference }}）"
            "金额 {{ amount }} 元，其中 {{ unallocated }} 元未能自动核销到发票，已计入客户余额。\n"
            "{% if proof_missing %}付款人与客户名称不一致，需先上传客户的书面确认（代付证明）才能核销。\n{% endif %}"
            "请财务跟进。\n"
        ),
        "en": (
            "Payment {{ number }} of {{ customer }} ({{ method }}, payer {{ payer }}, reference {{ reference }}) "
            "of {{ amount }} CNY: {{ unallocated }} CNY could not be allocated to invoices automatically and "
            "is in the customer's balance.\n"
            "{% if proof_missing %}The payer is not the customer: the customer's written proof must be attached "
            "before the money can be allocated.\n{% endif %}"
            "Please follow it up.\n"
        ),
    },
    plugin="billing",
)
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (PAYMENT_UNALLOCATED,)

# Refusals (msgids; the values are filled in by BillingError).
FORBIDDEN = N_("You need the permission %(permission)s.")
BAD_METHOD = N_("Unknown payment method %(method)s; choose one of %(methods)s.")
BAD_AMOUNT = N_("The amount must be a number above zero with at most two decimals.")
BAD_CURRENCY = N_("The currency must be a three-letter code such as CNY or USD.")
NO_RATE = N_("A payment in %(currency)s needs its exchange rate to CNY.")
BAD_RATE = N_("The exchange rate must be a number above zero with at most six decimals.")
BASE_ZERO = N_("At this rate the payment is worth nothing in CNY.")
FUTURE = N_("A payment cannot be received after today (%(today)s).")
NO_DATE = N_("Give the date the payment was received.")
NO_PAYER = N_("Give the payer's name as it appears on the payment.")
TOO_LONG = N_("%(name)s is longer than %(max)s characters.")
EVENT_BOTH = N_("An online payment's provider and event id go together.")
DUPLICATE_EVENT = N_("Event %(event)s of %(provider)s has already been recorded as payment %(number)s.")
NO_ALLOCATIONS = N_("Choose at least one invoice and an amount to allocate.")
SAME_INVOICE_TWICE = N_("Invoice %(number)s is listed twice; give one amount per invoice.")
NOT_ISSUED = N_("Invoice %(number)s is not an issued invoice, so nothing can be allocated to it.")
OTHER_CUSTOMER = N_("Invoice %(number)s belongs to another customer than the payment.")
NOT_POSITIVE = N_("The amount for invoice %(number)s must be above zero with at most two decimals.")
ABOVE_OPEN = N_("%(amount)s is above the open amount of invoice %(number)s (%(open)s).")
ABOVE_UNALLOCATED = N_("The allocations add up to %(amount)s, but only %(available)s of payment %(payment)s is left.")
PROOF_REQUIRED = N_(
    "%(payer)s is not the invoiced customer: the customer's written proof that %(payer)s pays for it "
    "must be attached first."
)
PROOF_UNKNOWN = N_("Attachment %(id)s is not a file of one of this customer's orders.")
PROOF_ORDER = N_("Order %(number)s belongs to another customer than the payment.")


# --------------------------------------------------------------------------- helpers


def _require(actor: User | None, permission: str) -> None:
    """Refuse (403) a user without ``permission``; ``None`` is the system (the webhook)."""
    if actor is not None and not actor.can(permission):
        raise BillingError("forbidden", FORBIDDEN, 403, permission=permission)


def _invalid(field: str, msgid: str, **params: Any) -> BillingError:
    """A 422 refusal of ``field`` (the API's ``details``; screens show the localized message)."""
    return BillingError("invalid", msgid, 422, details={field: [msgid % params if params else msgid]}, **params)


def _decimal(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def money(value: Any) -> Decimal | None:
    """``value`` as an amount above zero with at most two decimals, else None."""
    number = _decimal(value)
    if number is None or number <= 0 or _places(number) > 2:
        return None
    return to_cents(number)


def _today() -> dt.date:
    return company_now().date()


def _customer(session: Session, actor: User | None, customer_id: int) -> Customer:
    if actor is not None:
        return scope.get_customer(session, actor, customer_id)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer


def is_third_party(payment: BillingPayment, customer: Customer) -> bool:
    """Whether the payer is someone else than the customer (names compared trimmed, case-insensitive)."""
    return payment.payer_name.strip().casefold() != customer.name.strip().casefold()


def needs_proof(session: Session, payment: BillingPayment) -> bool:
    """Whether ``payment`` may not be allocated yet: a third party pays and no proof is attached (BL-3)."""
    if payment.proof_attachment_id is not None:
        return False
    customer = session.get(Customer, payment.customer_id)
    return customer is not None and is_third_party(payment, customer)


def _proof(session: Session, actor: User | None, customer_id: int, attachment_id: int) -> OrderAttachment:
    """The attachment ``attachment_id`` if it belongs to an order of ``customer_id`` the actor may see."""
    attachment = session.scalars(
        select(OrderAttachment)
        .join(Order, Order.id == OrderAttachment.order_id)
        .where(OrderAttachment.id == attachment_id, Order.customer_id == customer_id)
    ).first()
    if attachment is None:
        raise _invalid("proof_attachment_id", PROOF_UNKNOWN, id=attachment_id)
    if actor is not None:
        get_order(session, actor, attachment.order_id)  # 404 outside the actor's scope
    return attachment


def _on_paid(session: Session, order_ids: Iterable[int | None], actor: User | None) -> None:
    """Let settlement move on the orders whose invoices were just paid."""
    from plugins.billing import settlement

    ids = sorted({i for i in order_ids if i is not None})
    if ids:
        settlement.on_paid(session, ids, actor)


# --------------------------------------------------------------------------- recording


def record_payment(
    session: Session,
    actor: User | None,
    *,
    customer_id: int,
    method: str,
    amount: Decimal | str,
    received_on: dt.date | None,
    payer_name: str,
    currency: str = "CNY",
    rate: Decimal | str | None = None,
    reference: str = "",
    note: str = "",
    proof_attachment_id: int | None = None,
    provider: str | None = None,
    event_id: str | None = None,
) -> BillingPayment:
    """Record money received from ``customer_id``; everything is checked before anything is written.

    ``actor`` None is the online-payment webhook (no permission check, no data scope);
    otherwise ``billing.payments.record`` and the customer in the actor's scope (404).
    Refused with 422: an unknown method, an amount not above zero or with more than two
    decimals, a bad currency code, **another currency than CNY without a rate** (CNY's
    rate is always 1), a date in the future, no payer, over-long texts, a proof that is
    not a file of the customer's orders. ``provider`` and ``event_id`` (online payments)
    are unique together: the same event again is refused with 409 ``duplicate_event``.
    """
    _require(actor, flow.PAYMENTS_RECORD)
    customer = _customer(session, actor, customer_id)
    if method not in PAYMENT_METHODS:
        raise _invalid("method", BAD_METHOD, method=repr(method), methods=", ".join(PAYMENT_METHODS))
    value = money(amount)
    if value is None:
        raise _invalid("amount", BAD_AMOUNT)
    code = (currency or "").strip().upper()
    if not CURRENCY.match(code):
        raise _invalid("currency", BAD_CURRENCY)
    if code == "CNY":
        factor = Decimal("1")
    else:
        if rate is None or (isinstance(rate, str) and not rate.strip()):
            raise _invalid("rate", NO_RATE, currency=code)
        given = _decimal(rate)
        if given is None or given <= 0 or _places(given) > 6:
            raise _invalid("rate", BAD_RATE)
        factor = given
    base = to_cents(value * factor)
    if base <= 0:
        raise _invalid("rate", BASE_ZERO)
    if not isinstance(received_on, dt.date):
        raise _invalid("received_on", NO_DATE)
    today = _today()
    if received_on > today:
        raise _invalid("received_on", FUTURE, today=today.isoformat())
    payer = (payer_name or "").strip()
    if not payer:
        raise _invalid("payer_name", NO_PAYER)
    texts = {"payer_name": (payer, MAX_PAYER), "reference": ((reference or "").strip(), MAX_REFERENCE)}
    texts["note"] = ((note or "").strip(), MAX_NOTE)
    for field, (text, limit) in texts.items():
        if len(text) > limit:
            raise _invalid(field, TOO_LONG, name=field, max=limit)
    if (provider is None) != (event_id is None):
        raise _invalid("event_id", EVENT_BOTH)
    if proof_attachment_id is not None:
        _proof(session, actor, customer.id, proof_attachment_id)

    company = default_company(session)
    year = company_now().year
    payment = BillingPayment(
        company_id=company.id,
        number=f"PAY{year}-{next_serial(session, company.id, PAYMENT_SEQUENCE, year):06d}",
        customer_id=customer.id,
        method=method,
        amount=value,
        currency=code,
        rate=factor,
        amount_base=base,
        allocated=ZERO,
        received_on=received_on,
        payer_name=payer,
        reference=texts["reference"][0],
        note=texts["note"][0],
        provider=provider,
        event_id=event_id,
        proof_attachment_id=proof_attachment_id,
        recorded_by_id=actor.id if actor is not None else None,
    )
    try:
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        existing = event_payment(session, provider, event_id) if provider and event_id else None
        if existing is None:
            raise
        raise BillingError(
            "duplicate_event", DUPLICATE_EVENT, 409, event=event_id, provider=provider, number=existing.number
        ) from None
    audit.record(
        session,
        actor,
        "billing_payment",
        payment.id,
        "record",
        {
            "number": payment.number,
            "customer_id": customer.id,
            "method": method,
            "amount": value,
            "currency": code,
            "rate": factor,
            "amount_base": base,
            "received_on": received_on,
            "payer_name": payer,
            "reference": payment.reference,
            "provider": provider,
            "event_id": event_id,
        },
    )
    return payment


def event_payment(session: Session, provider: str | None, event_id: str | None) -> BillingPayment | None:
    """The payment recorded for ``provider``'s event ``event_id``, if any."""
    if not provider or not event_id:
        return None
    with session.no_autoflush:
        return session.scalars(
            select(BillingPayment).where(BillingPayment.provider == provider, BillingPayment.event_id == event_id)
        ).first()


# --------------------------------------------------------------------------- allocation


def allocate_payment(
    session: Session, actor: User | None, payment_id: int, allocations: Sequence[tuple[int, Decimal | str]]
) -> list[BillingAllocation]:
    """Allocate parts of payment ``payment_id`` to issued invoices: all rows or none.

    Every row is checked first: the invoice in the actor's scope (404), issued (409),
    of the payment's customer, the amount above zero, **at most the invoice's open
    amount**, and all rows together at most what is left of the payment (422 with the
    numbers). A third-party payer needs the customer's proof attached first (BL-3).
    The allocations then go through :func:`ledger.allocate` inside a savepoint, so a
    concurrent allocation that got there first refuses this one as a whole.
    """
    _require(actor, flow.PAYMENTS_RECORD)
    payment = (
        scope.get_payment(session, actor, payment_id, for_update=True)
        if actor is not None
        else _payment(session, payment_id)
    )
    if not allocations:
        raise _invalid("allocations", NO_ALLOCATIONS)
    rows: list[tuple[BillingInvoice, Decimal]] = []
    seen: set[int] = set()
    for invoice_id, raw in allocations:
        invoice = (
            scope.get_invoice(session, actor, int(invoice_id), for_update=True)
            if actor is not None
            else _invoice(session, int(invoice_id))
        )
        number = invoice.number or f"#{invoice.id}"
        if invoice.id in seen:
            raise _invalid("allocations", SAME_INVOICE_TWICE, number=number)
        seen.add(invoice.id)
        if invoice.kind != "invoice" or invoice.status != "issued":
            raise BillingError("invoice_not_open", NOT_ISSUED, 409, number=number)
        if invoice.customer_id != payment.customer_id:
            raise _invalid("allocations", OTHER_CUSTOMER, number=number)
        amount = money(raw)
        if amount is None:
            raise _invalid("allocations", NOT_POSITIVE, number=number)
        if amount > invoice.open_amount:
            raise BillingError(
                "above_open",
                ABOVE_OPEN,
                422,
                details={
                    "allocations": [ABOVE_OPEN % {"amount": amount, "number": number, "open": invoice.open_amount}]
                },
                amount=str(amount),
                number=number,
                open=str(invoice.open_amount),
            )
        rows.append((invoice, amount))
    total = sum((amount for _, amount in rows), ZERO)
    if total > payment.unallocated:
        params = {"amount": str(total), "available": str(payment.unallocated), "payment": payment.number}
        raise BillingError(
            "above_unallocated", ABOVE_UNALLOCATED, 422, details={"allocations": [ABOVE_UNALLOCATED % params]}, **params
        )
    if needs_proof(session, payment):
        raise BillingError("proof_required", PROOF_REQUIRED, 422, payer=payment.payer_name)
    made: list[BillingAllocation] = []
    with session.begin_nested():
        for invoice, amount in rows:
            made.append(
                ledger.allocate(
                    session, invoice, amount, payment=payment, effective_on=payment.received_on, actor=actor
                )
            )
    session.refresh(payment)
    _audit_allocations(session, actor, payment, rows, "allocate")
    _on_paid(session, (invoice.order_id for invoice, _ in rows), actor)
    return made


def _payment(session: Session, payment_id: int) -> BillingPayment:
    payment = session.get(BillingPayment, payment_id)
    if payment is None:
        raise NotFound("payment", payment_id)
    return payment


def _invoice(session: Session, invoice_id: int) -> BillingInvoice:
    invoice = session.get(BillingInvoice, invoice_id)
    if invoice is None:
        raise NotFound("invoice", invoice_id)
    return invoice


def _audit_allocations(
    session: Session,
    actor: User | None,
    payment: BillingPayment,
    rows: Sequence[tuple[BillingInvoice, Decimal]],
    action: str,
) -> None:
    audit.record(
        session,
        actor,
        "billing_payment",
        payment.id,
        action,
        {
            "allocations": [{"invoice": i.number, "amount": str(a)} for i, a in rows],
            "allocated": payment.allocated,
        },
    )


def apply_balance(session: Session, actor: User | None, invoice: BillingInvoice) -> list[BillingAllocation]:
    """Use the customer's balance on ``invoice`` as prepayment, up to its open amount (BL-7).

    Called when an invoice is issued (no permission of its own: the issuing is the
    action). Unused issued credit notes go first, then unallocated payments, oldest
    received first; third-party payments without the customer's proof are skipped.
    A source a concurrent allocation used up meanwhile is passed over.
    """
    if invoice.kind != "invoice" or invoice.status != "issued" or invoice.open_amount <= 0:
        return []
    made: list[BillingAllocation] = []
    on = invoice.invoice_date or _today()
    credit_notes = session.scalars(
        select(BillingInvoice)
        .where(
            BillingInvoice.customer_id == invoice.customer_id,
            BillingInvoice.kind == "credit_note",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < -BillingInvoice.total,
        )
        .order_by(BillingInvoice.invoice_date, BillingInvoice.id)
    ).all()
    for note in credit_notes:
        amount = min(invoice.open_amount, note.open_amount)
        if amount <= 0:
            break
        try:
            made.append(
                ledger.allocate(
                    session,
                    invoice,
                    amount,
                    credit_note=note,
                    effective_on=max(on, note.invoice_date or on),
                    actor=actor,
                )
            )
        except BillingError:
            continue
    for payment in _open_payments(session, invoice.customer_id):
        amount = min(invoice.open_amount, payment.unallocated)
        if amount <= 0:
            break
        if needs_proof(session, payment):
            continue
        try:
            made.append(
                ledger.allocate(
                    session, invoice, amount, payment=payment, effective_on=payment.received_on, actor=actor
                )
            )
        except BillingError:
            continue
        _audit_allocations(session, actor, payment, [(invoice, amount)], "apply_balance")
    if made:
        audit.record(
            session,
            actor,
            "billing_invoice",
            invoice.id,
            "apply_balance",
            {"amounts": [str(a.amount) for a in made], "settled": invoice.settled},
        )
        _on_paid(session, [invoice.order_id], actor)
    return made


def _open_payments(session: Session, customer_id: int) -> list[BillingPayment]:
    return list(
        session.scalars(
            select(BillingPayment)
            .where(BillingPayment.customer_id == customer_id, BillingPayment.allocated < BillingPayment.amount_base)
            .order_by(BillingPayment.received_on, BillingPayment.id)
        )
    )


def open_invoices(session: Session, actor: User | None, customer_id: int) -> list[BillingInvoice]:
    """The customer's issued invoices with an open amount, oldest due first (in ``actor``'s scope)."""
    stmt = select(BillingInvoice).where(
        BillingInvoice.customer_id == customer_id,
        BillingInvoice.kind == "invoice",
        BillingInvoice.status == "issued",
        BillingInvoice.settled < BillingInvoice.total,
    )
    if actor is not None:
        stmt = stmt.where(scope.invoice_scope(actor))
    stmt = stmt.order_by(
        BillingInvoice.due_date.is_(None), BillingInvoice.due_date, BillingInvoice.invoice_date, BillingInvoice.id
    )
    return list(session.scalars(stmt))


def auto_allocate(
    session: Session, actor: User | None, payment: BillingPayment, *, prefer: str | None = None
) -> list[BillingAllocation]:
    """Allocate what is left of ``payment`` to the customer's open invoices, oldest due first.

    The invoice named by ``prefer`` (an invoice number, e.g. the webhook's ``invoice``)
    or whose number appears in the payment's reference is served first. Nothing is
    allocated for a third-party payer without proof (BL-3); what is left stays in the
    customer's balance (BL-7). ``actor`` None is the webhook.
    """
    _require(actor, flow.PAYMENTS_RECORD)
    session.refresh(payment)
    if payment.unallocated <= 0 or needs_proof(session, payment):
        return []
    candidates = open_invoices(session, actor, payment.customer_id)
    hints = [h.strip().upper() for h in (prefer or "", payment.reference or "") if h and h.strip()]

    def named(invoice: BillingInvoice) -> bool:
        number = (invoice.number or "").upper()
        return bool(number) and any(number == h or number in h for h in hints)

    candidates.sort(key=lambda invoice: not named(invoice))  # stable: keeps oldest due first
    made: list[BillingAllocation] = []
    rows: list[tuple[BillingInvoice, Decimal]] = []
    for invoice in candidates:
        amount = min(payment.unallocated, invoice.open_amount)
        if amount <= 0:
            if payment.unallocated <= 0:
                break
            continue
        try:
            made.append(
                ledger.allocate(
                    session, invoice, amount, payment=payment, effective_on=payment.received_on, actor=actor
                )
            )
        except BillingError:
            continue
        rows.append((invoice, amount))
    if rows:
        _audit_allocations(session, actor, payment, rows, "auto_allocate")
        _on_paid(session, (invoice.order_id for invoice, _ in rows), actor)
    return made


# --------------------------------------------------------------------------- payer proof


def attach_proof(session: Session, actor: User | None, payment_id: int, attachment_id: int) -> BillingPayment:
    """Name the customer's written proof that the payer pays for it (BL-3): a file of one of its orders."""
    _require(actor, flow.PAYMENTS_RECORD)
    payment = scope.get_payment(session, actor, payment_id) if actor is not None else _payment(session, payment_id)
    attachment = _proof(session, actor, payment.customer_id, attachment_id)
    before = payment.proof_attachment_id
    payment.proof_attachment_id = attachment.id
    session.flush()
    audit.record(
        session,
        actor,
        "billing_payment",
        payment.id,
        "attach_proof",
        {"proof_attachment_id": [before, attachment.id], "filename": attachment.filename},
        order_id=attachment.order_id,
    )
    return payment


def upload_proof(
    session: Session,
    actor: User,
    payment_id: int,
    order_id: int,
    *,
    filename: str,
    data: bytes,
    note: str = "",
) -> BillingPayment:
    """Upload the payer proof onto the customer's order ``order_id`` and attach it to the payment."""
    from core.attachments.service import add_attachment

    _require(actor, flow.PAYMENTS_RECORD)
    payment = scope.get_payment(session, actor, payment_id)
    order = get_order(session, actor, order_id)
    if order.customer_id != payment.customer_id:
        raise _invalid("order_id", PROOF_ORDER, number=order.number)
    attachment = add_attachment(
        session,
        actor,
        order.id,
        filename=filename,
        data=data,
        kind="other",
        note=(note or f"{payment.number}: {payment.payer_name}")[:500],
    )
    return attach_proof(session, actor, payment.id, attachment.id)


def customer_orders(session: Session, actor: User, customer_id: int) -> list[Order]:
    """The customer's orders ``actor`` may see, newest first (where a proof can be uploaded)."""
    from core.services.orders import visible_orders

    return list(
        session.scalars(visible_orders(actor).where(Order.customer_id == customer_id).order_by(Order.id.desc()))
    )


def proof_candidates(session: Session, actor: User, customer_id: int) -> list[OrderAttachment]:
    """Files of the customer's visible orders that may serve as a payer proof."""
    orders = [o.id for o in customer_orders(session, actor, customer_id)]
    if not orders:
        return []
    return list(
        session.scalars(
            select(OrderAttachment).where(OrderAttachment.order_id.in_(orders)).order_by(OrderAttachment.id.desc())
        )
    )


def allocations_of(
    session: Session, payment_id: int, viewer: User | None = None
) -> list[tuple[BillingAllocation, BillingInvoice]]:
    """The allocations of payment ``payment_id`` with their invoices, oldest first.

    With a ``viewer``, only those to invoices in the viewer's scope: a payment of a customer
    the viewer sees may also pay invoices of orders the viewer does not (another branch's).
    """
    query = (
        select(BillingAllocation, BillingInvoice)
        .join(BillingInvoice, BillingInvoice.id == BillingAllocation.invoice_id)
        .where(BillingAllocation.payment_id == payment_id)
        .order_by(BillingAllocation.id)
    )
    if viewer is not None:
        from plugins.billing.scope import invoice_scope

        query = query.where(invoice_scope(viewer))
    return list(session.execute(query).tuples())


def balance_sources(session: Session, customer_id: int) -> tuple[list[BillingPayment], list[BillingInvoice]]:
    """What makes up the customer's balance (BL-7): unallocated payments and unused credit notes."""
    notes = list(
        session.scalars(
            select(BillingInvoice)
            .where(
                BillingInvoice.customer_id == customer_id,
                BillingInvoice.kind == "credit_note",
                BillingInvoice.status == "issued",
                BillingInvoice.settled < -BillingInvoice.total,
            )
            .order_by(BillingInvoice.invoice_date, BillingInvoice.id)
        )
    )
    return _open_payments(session, customer_id), notes

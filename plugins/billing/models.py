"""Billing's tables, keyed to core's customers, orders, order lines, products and users.

- Customer accounts (BL-5): payment terms, credit limit, rating A–D with its next
  review, blocked flag, guarantee, required prepayment ratio; the rating history.
- Payment terms (BL-1): prepayment, cash on delivery, monthly settlement and
  instalments (a schedule of percentages and due offsets); the terms an order runs on
  and finance's approval of special terms.
- Credit exceptions (RV-7, BL-5): grants per named role with reason and expiry, and the
  uses of an exception (paths passed under it, shipments for the weekly report).
- Invoices and credit notes (BL-3): lines, due instalments, a gapless number given at
  issue; ``settled`` counts what has been matched (an invoice's payments and credits, a
  credit note's amount used).
- Payments (BL-6, BL-7): method, currency and rate, payer and proof, ``allocated`` so far;
  allocations from a payment, a credit note or an approved write-off to an invoice.
- Collection (BL-4): the dunning ladder, the steps sent, pauses (dispute, promise to
  pay), late interest charged; write-offs with approval; reasons for shipments not
  invoiced within a month; online-payment providers with their signing secret.

Amounts are ``Decimal`` in the company currency unless a column says otherwise. Credit
notes carry negative quantities and totals. Counters that must never run over
(``settled``, ``allocated``) are changed only by :mod:`plugins.billing.ledger` with
conditional UPDATEs, and CHECK constraints guard them as well.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, Money, Percent, Quantity, UnitPrice, utcnow
from core.labels import N_

#: A currency's rate to the company currency (CNY): 1 unit = ``rate`` CNY.
Rate = Numeric(16, 6, asdecimal=True)

#: How an order is settled (BL-1); the same codes as core's ``Order.payment_method``.
TERM_KINDS = {
    "prepayment": N_("Prepayment"),
    "cash_on_delivery": N_("Cash on delivery"),
    "monthly_settlement": N_("Monthly settlement"),
    "instalments": N_("Instalments"),
}
#: Terms that need finance's approval of the order (BL-1: special methods, strict review).
SPECIAL_TERM_KINDS = ("cash_on_delivery", "instalments")
RATINGS = {"A": N_("A — excellent"), "B": N_("B — good"), "C": N_("C — watch"), "D": N_("D — poor")}
INVOICE_KINDS = {"invoice": N_("Invoice"), "credit_note": N_("Credit note")}
#: VAT invoice types (增值税专用发票 / 普通发票).
INVOICE_TYPES = {"special": N_("VAT special invoice"), "normal": N_("VAT normal invoice")}
#: What an invoice's quantities come from.
INVOICE_BASES = {
    "delivered": N_("Delivered quantities"),
    "ordered": N_("Ordered quantities"),
    "prepayment": N_("Prepayment"),
    "return": N_("Returned goods"),
    "correction": N_("Correction"),
}
INVOICE_STATUSES = {"draft": N_("Draft"), "issued": N_("Issued"), "cancelled": N_("Cancelled")}
#: The VAT rates Ordo invoices with (percent).
VAT_RATES = (Decimal("13"), Decimal("9"), Decimal("6"), Decimal("0"))
PAYMENT_METHODS = {"bank_transfer": N_("Bank transfer"), "cash": N_("Cash"), "online": N_("Online payment")}
DUNNING_KINDS = {
    "reminder": N_("Reminder before due"),
    "friendly": N_("Friendly reminder"),
    "letter": N_("Formal dunning letter (催款函)"),
    "legal": N_("Legal escalation"),
}
PAUSE_KINDS = {"dispute": N_("Dispute"), "promise": N_("Promise to pay")}
WRITE_OFF_STATUSES = {"requested": N_("Requested"), "approved": N_("Approved"), "refused": N_("Refused")}
#: The paths of the credit gate (RV-7, BL-5): every way the company commits further.
GATE_PATHS = {
    "confirm": N_("Confirmation"),
    "reopen": N_("Re-opening"),
    "copy": N_("Copying"),
    "release": N_("Release to shipping"),
    "shipment": N_("Shipment"),
    "finance_check": N_("Finance check"),
    "review": N_("Review credit check"),
    "precheck": N_("Pre-check"),
}


class BillingPaymentTerm(Base):
    """Named payment terms: a kind and its parameters (BL-1)."""

    __tablename__ = "billing_payment_term"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    #: Prepayment: the percentage of the order paid before release (100: all).
    prepayment_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("100"))
    #: Monthly settlement: invoices dated after this day of the month count to the next month.
    cutoff_day: Mapped[int] = mapped_column(default=31)
    #: Monthly settlement: due this many days after the end of the (cut-off) month.
    days_after_month_end: Mapped[int] = mapped_column(default=30)
    #: Cash on delivery and prepayment balances: due this many days after the invoice date.
    due_days: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    instalments: Mapped[list[BillingTermInstalment]] = relationship(
        back_populates="term", cascade="all, delete-orphan", order_by="BillingTermInstalment.sequence"
    )

    @property
    def special(self) -> bool:
        """Whether orders on these terms need finance's approval."""
        return self.kind in SPECIAL_TERM_KINDS


class BillingTermInstalment(Base):
    """One instalment of instalment terms: a percentage due some days after the invoice date."""

    __tablename__ = "billing_term_instalment"
    __table_args__ = (
        UniqueConstraint("term_id", "sequence"),
        CheckConstraint("percent > 0 AND percent <= 100", name="instalment_percent"),
        CheckConstraint("due_days >= 0", name="instalment_due_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("billing_payment_term.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int]
    percent: Mapped[Decimal] = mapped_column(Percent)
    due_days: Mapped[int]

    term: Mapped[BillingPaymentTerm] = relationship(back_populates="instalments")


class BillingAccount(Base):
    """A customer's account with billing: terms, credit limit, rating, holds (BL-5)."""

    __tablename__ = "billing_account"
    __table_args__ = (
        CheckConstraint("credit_limit IS NULL OR credit_limit >= 0", name="account_credit_limit"),
        CheckConstraint("prepayment_ratio >= 0 AND prepayment_ratio <= 100", name="account_prepayment_ratio"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    term_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payment_term.id"))
    #: None: no limit; 0: no credit at all (every order must be covered by prepayment).
    credit_limit: Mapped[Decimal | None] = mapped_column(Money)
    rating: Mapped[str] = mapped_column(String(1), default="B")
    next_review_on: Mapped[dt.date | None] = mapped_column(index=True)
    blocked: Mapped[bool] = mapped_column(default=False)
    block_reason: Mapped[str] = mapped_column(String(500), default="")
    guarantee_on_file: Mapped[bool] = mapped_column(default=False)
    guarantee_note: Mapped[str] = mapped_column(String(500), default="")
    #: Percent of each order that must be paid before its goods are released.
    prepayment_ratio: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    #: The VAT invoice type the customer is issued by default.
    invoice_type: Mapped[str] = mapped_column(String(16), default="normal")
    note: Mapped[str] = mapped_column(String(2000), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    term: Mapped[BillingPaymentTerm | None] = relationship()

    __mapper_args__ = {"version_id_col": version}


class BillingRatingReview(Base):
    """A review of a customer's credit rating: from, to, by whom, when, why (BL-5)."""

    __tablename__ = "billing_rating_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("billing_account.id"), index=True)
    rating_from: Mapped[str] = mapped_column(String(1))
    rating_to: Mapped[str] = mapped_column(String(1))
    next_review_on: Mapped[dt.date | None]
    note: Mapped[str] = mapped_column(String(1000), default="")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillingOrderTerms(Base):
    """The terms an order runs on and finance's approval of them (the finance check)."""

    __tablename__ = "billing_order_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), unique=True)
    term_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payment_term.id"))
    kind: Mapped[str] = mapped_column(String(32))
    special: Mapped[bool] = mapped_column(default=False)
    #: Percent of the order to be paid before release (terms and account, the higher).
    prepayment_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_at: Mapped[dt.datetime | None]
    note: Mapped[str] = mapped_column(String(1000), default="")

    term: Mapped[BillingPaymentTerm | None] = relationship()


class BillingCreditException(Base):
    """One named role's grant of a credit exception for an order, with reason and expiry."""

    __tablename__ = "billing_credit_exception"
    __table_args__ = (Index("ix_billing_credit_exception_order", "order_id", "role_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    role_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(1000))
    #: The hold reasons the grant was given against.
    hold_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class BillingExceptionUse(Base):
    """A path passed under a credit exception (listed in the weekly report to the GM)."""

    __tablename__ = "billing_exception_use"
    __table_args__ = (UniqueConstraint("order_id", "path", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    path: Mapped[str] = mapped_column(String(32))
    #: What passed: a shipment's number for ``shipment``, else the transition's id or "".
    reference: Mapped[str] = mapped_column(String(64), default="")
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    hold_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    reported_at: Mapped[dt.datetime | None]


class BillingInvoice(Base):
    """An invoice or credit note; numbered gaplessly when issued, immutable after (BL-3)."""

    __tablename__ = "billing_invoice"
    __table_args__ = (
        UniqueConstraint("company_id", "kind", "number"),
        UniqueConstraint("source_key"),
        CheckConstraint("status = 'draft' OR number IS NOT NULL", name="invoice_numbered_when_issued"),
        CheckConstraint("settled >= 0", name="invoice_settled_positive"),
        CheckConstraint(
            "(kind = 'invoice' AND settled <= total) OR (kind = 'credit_note' AND settled <= -total)",
            name="invoice_settled_within_total",
        ),
        Index("ix_billing_invoice_customer_status", "customer_id", "status"),
        # The invoices still open, only (partial): a customer's open receivables and
        # overdue check read these, not every invoice of the customer's history. Holds
        # the amounts, so the sum never reads the table. Fully settled invoices leave it.
        Index(
            "ix_billing_invoice_open",
            "customer_id",
            "status",
            "kind",
            "total",
            "settled",
            sqlite_where=text("settled < total"),
            postgresql_where=text("settled < total"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    kind: Mapped[str] = mapped_column(String(16), default="invoice")
    number: Mapped[str | None] = mapped_column(String(32))
    year: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    basis: Mapped[str] = mapped_column(String(16), default="delivered")
    invoice_type: Mapped[str] = mapped_column(String(16), default="normal")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    #: The invoice a credit note corrects.
    credited_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    #: What created it automatically (``return:<id>``), so it is created once only.
    source_key: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    untaxed: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    tax: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    #: Matched so far: an invoice's payments, credits and write-offs; a credit note's amount used.
    settled: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    invoice_date: Mapped[dt.date | None] = mapped_column(index=True)
    due_date: Mapped[dt.date | None] = mapped_column(index=True)
    buyer_name: Mapped[str] = mapped_column(String(200), default="")
    buyer_tax_id: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    issued_at: Mapped[dt.datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    lines: Mapped[list[BillingInvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="BillingInvoiceLine.position"
    )
    dues: Mapped[list[BillingInvoiceDue]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="BillingInvoiceDue.sequence"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def open_amount(self) -> Decimal:
        """What is still to be paid (invoice) or used (credit note)."""
        return (self.total if self.kind == "invoice" else -self.total) - self.settled


class BillingInvoiceLine(Base):
    """One line of an invoice: product, quantity, price, discount, VAT rate, amounts."""

    __tablename__ = "billing_invoice_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"))
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(String(16), default="")
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    discount: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    tax_rate: Mapped[Decimal] = mapped_column(Percent)
    #: Untaxed amount after discount, and its VAT.
    amount: Mapped[Decimal] = mapped_column(Money)
    tax: Mapped[Decimal] = mapped_column(Money)

    invoice: Mapped[BillingInvoice] = relationship(back_populates="lines")


class BillingInvoiceDue(Base):
    """One amount of an invoice due on a date (one per instalment; one for other terms)."""

    __tablename__ = "billing_invoice_due"
    __table_args__ = (UniqueConstraint("invoice_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int]
    due_date: Mapped[dt.date] = mapped_column(index=True)
    amount: Mapped[Decimal] = mapped_column(Money)

    invoice: Mapped[BillingInvoice] = relationship(back_populates="dues")


class BillingPayment(Base):
    """Money received: method, amount and currency, rate, payer, reference, proof (BL-6)."""

    __tablename__ = "billing_payment"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        CheckConstraint("amount > 0", name="payment_amount_positive"),
        CheckConstraint("allocated >= 0 AND allocated <= amount_base", name="payment_allocated_within"),
        Index("ix_billing_payment_customer_received", "customer_id", "received_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    method: Mapped[str] = mapped_column(String(16))
    #: The amount in the payment's own currency.
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: Rate to the company currency; 1 for CNY.
    rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal("1"))
    #: The amount in the company currency: what is allocated.
    amount_base: Mapped[Decimal] = mapped_column(Money)
    allocated: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    received_on: Mapped[dt.date]
    payer_name: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(100), default="")
    #: Online payments: the provider's code and its event id (unique: idempotent webhooks).
    provider: Mapped[str | None] = mapped_column(String(32))
    event_id: Mapped[str | None] = mapped_column(String(100))
    #: The customer's written confirmation that a third party pays for it (BL-3).
    proof_attachment_id: Mapped[int | None] = mapped_column(ForeignKey("order_attachment.id"))
    note: Mapped[str] = mapped_column(String(1000), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @property
    def unallocated(self) -> Decimal:
        """What is left of the payment: the customer's balance from it (BL-7)."""
        return self.amount_base - self.allocated


class BillingWriteOff(Base):
    """An amount of an invoice written off: requested with a reason, approved or refused."""

    __tablename__ = "billing_write_off"
    __table_args__ = (CheckConstraint("amount > 0", name="write_off_amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str] = mapped_column(String(1000), default="")


class BillingAllocation(Base):
    """Part of a payment, a credit note or an approved write-off matched to an invoice."""

    __tablename__ = "billing_allocation"
    __table_args__ = (
        CheckConstraint("amount > 0", name="allocation_amount_positive"),
        CheckConstraint(
            "(CASE WHEN payment_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN credit_note_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN write_off_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="allocation_one_source",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payment.id"), index=True)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    write_off_id: Mapped[int | None] = mapped_column(ForeignKey("billing_write_off.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    #: The company date the money counts as received for this invoice (interest, ageing).
    effective_on: Mapped[dt.date] = mapped_column(index=True)
    allocated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    allocated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillingDunningLevel(Base):
    """A step of the dunning ladder: days from the due date, kind, whether a letter goes (BL-4)."""

    __tablename__ = "billing_dunning_level"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    #: Days after the due date (negative: before it).
    days: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    #: Whether the formal dunning letter (催款函) PDF is produced and attached.
    letter: Mapped[bool] = mapped_column(default=False)
    #: Whether the customer's salesperson is told too (sales helps, BL-4).
    notify_sales: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)


class BillingDunningEvent(Base):
    """A dunning step sent for one due amount: logged once per due and level."""

    __tablename__ = "billing_dunning_event"
    __table_args__ = (UniqueConstraint("due_id", "level_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    due_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice_due.id", ondelete="CASCADE"))
    level_id: Mapped[int] = mapped_column(ForeignKey("billing_dunning_level.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    letter_attachment_id: Mapped[int | None] = mapped_column(ForeignKey("order_attachment.id"))
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class BillingDunningPause(Base):
    """A dispute or a promise to pay that pauses dunning of a customer or one invoice."""

    __tablename__ = "billing_dunning_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    #: None: every invoice of the customer.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice.id"))
    kind: Mapped[str] = mapped_column(String(16))
    #: A promise's date: dunning resumes after it.
    until: Mapped[dt.date | None]
    note: Mapped[str] = mapped_column(String(1000))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class BillingInterestCharge(Base):
    """Late interest charged on an invoice's remaining balance over a period (BL-4)."""

    __tablename__ = "billing_interest_charge"
    __table_args__ = (UniqueConstraint("invoice_id", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("billing_invoice.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    period_start: Mapped[dt.date]
    period_end: Mapped[dt.date]
    #: Percent per day.
    daily_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6, asdecimal=True))
    amount: Mapped[Decimal] = mapped_column(Money)
    #: Day by day: the balance and the days it stood, as computed.
    detail: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillingUninvoicedReason(Base):
    """Why a shipment (or an order's delivery) is not invoiced within a month (BL-3)."""

    __tablename__ = "billing_uninvoiced_reason"
    __table_args__ = (UniqueConstraint("order_id", "shipment_reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    #: The shipment's number when logistics is enabled; "" for the order as a whole.
    shipment_reference: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(500))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BillingPaymentProvider(Base):
    """An online-payment provider whose signed webhook records payments (BL-6).

    The secret signs the provider's events with HMAC-SHA256, so it is kept as given
    (a hash could not check a signature); only holders of ``billing.settings.manage``
    see that it exists, never its value after creation.
    """

    __tablename__ = "billing_payment_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

"""Invoices and credit notes (BL-3, BL-7): from delivered quantities to a gapless number.

Why: the company invoices what it delivered, per the VAT rules (增值税专用发票 /
普通发票, rates 13 %, 9 %, 6 % and 0 %), within a month of shipping unless a reason is
recorded, and corrects an issued invoice only with a credit note (红字发票).

The rules this module keeps:

- **Delivered** quantities come from the hook ``ordo_billing_delivered_quantities``
  (logistics answers with shipped quantities); without an answer an order's ordered
  quantities count as delivered once it is confirmed (services).
- **Invoiceable** per order line = basis quantity (delivered, or ordered for the basis
  ``ordered``) − the quantity already on the order's draft and issued invoices + the
  quantity given back by issued *correction* credit notes. Credit notes for returned
  goods do not give quantities back: returned goods were delivered and are no longer
  owed, so they must not be invoiced again. Returns before invoicing are handled by
  invoicing less.
- **Prepayment invoices** (one line, a percentage of the order) are deducted from the
  order's later invoices: each invoice created while issued prepayment invoices are
  not yet fully deducted gets a negative line "Less prepayment INV…" of at most its own
  goods amount, at the prepayment's VAT rate.
- A draft has **no number**. Issuing takes the next serial of the company, kind and
  year (:func:`core.services.numbering.next_serial`) inside the issuing transaction, so
  numbers are gapless and a rolled-back issue gives its number back. Issuing locks the
  order row and re-checks the quantities, so two drafts for the same goods cannot both
  be issued.
- An **issued** invoice never changes (409); credit notes copy the lines they correct
  with negative quantities and keep the corrected line's position.
- Issuing applies the customer's balance (BL-7, :func:`plugins.billing.payments.apply_balance`);
  an issued credit note settles its invoice up to the open amount, the rest becomes
  balance.

Services take ``(session, actor, …)``, check permission and data scope, validate
everything before changing anything, and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import company_now, day_start
from core.contrib import NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Customer, Order, OrderTransition, User
from core.models.order import to_cents
from core.notify import ToCustomer, notify
from core.services import audit
from core.services.numbering import next_serial
from core.services.orders import get_order, visible_orders
from core.settings import get_setting, session_registry
from plugins.billing import flow, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    INVOICE_TYPES,
    VAT_RATES,
    BillingInvoice,
    BillingInvoiceDue,
    BillingInvoiceLine,
    BillingUninvoicedReason,
)
from plugins.billing.scope import get_invoice, invoice_scope

ZERO = Decimal("0")
HUNDRED = Decimal("100")
QTY = Decimal("0.001")
#: Order statuses in which goods count as delivered without logistics, and invoices may be made.
INVOICEABLE_STATUSES = ("confirmed", "completed")
#: Order statuses in which a prepayment invoice may be made (before confirmation too).
PREPAYMENT_STATUSES = ("submitted", "confirmed", "completed")
#: The number sequences (``next_serial`` codes) per kind.
SEQUENCES = {"invoice": "billing.invoice", "credit_note": "billing.credit_note"}
#: Fields of a draft that :func:`update_draft` changes.
DRAFT_FIELDS = ("quantities", "invoice_type", "note", "invoice_date")

# Refusals.
FORBIDDEN = N_("You need the permission %(permission)s.")
WRONG_BASIS = N_("Invoices are made from delivered or ordered quantities, not “%(basis)s”.")
ORDER_NOT_INVOICEABLE = N_("Order %(number)s is %(state)s; only confirmed or completed orders are invoiced.")
ORDER_NOT_PREPAYABLE = N_("Order %(number)s is %(state)s; a prepayment invoice needs a submitted or confirmed order.")
UNKNOWN_LINE = N_("Line %(line)s is not a line of this order.")
UNKNOWN_INVOICE_LINE = N_("Line %(line)s is not a line of invoice %(number)s.")
NOT_A_QUANTITY = N_("The quantity of line %(line)s is not a valid number.")
NEGATIVE_QUANTITY = N_("The quantity of line %(line)s must not be negative.")
ABOVE_INVOICEABLE = N_(
    "Line %(line)s (%(product)s): %(quantity)s is more than the %(invoiceable)s delivered and not yet invoiced."
)
NOTHING_TO_INVOICE = N_("There is nothing to invoice on order %(number)s.")
BAD_VAT_RATE = N_("Line %(line)s (%(product)s) has a VAT rate of %(rate)s%%; invoices use 13%%, 9%%, 6%% or 0%%.")
BAD_INVOICE_TYPE = N_("“%(type)s” is not an invoice type; use special or normal.")
NO_TAX_ID = N_("A VAT special invoice needs the customer's tax ID; customer %(customer)s has none.")
BAD_PERCENT = N_("The prepayment percentage must be above 0 and at most 100, not %(percent)s.")
NO_PREPAYMENT = N_("Order %(number)s needs no prepayment; give a percentage.")
DELIVERIES_TRACKED = N_(
    "Order %(number)s's deliveries are tracked: invoice the delivered quantities (or issue a prepayment invoice)."
)
FUTURE_DATE = N_("An invoice cannot be dated in the future (%(date)s).")
IMMUTABLE = N_("Invoice %(number)s is issued; issued invoices are immutable — correct them with a credit note.")
STALE = N_("The invoice was changed meanwhile (you have version %(yours)s, it is at %(current)s).")
UNKNOWN_FIELD = N_("“%(field)s” cannot be changed on a draft.")
NO_QUANTITIES_HERE = N_("The quantities of a prepayment invoice cannot be changed; delete the draft instead.")
BAD_DATE = N_("The invoice date is not a valid date.")
NOT_ISSUED = N_("Invoice %(number)s is not issued; only issued invoices are credited.")
NOT_AN_INVOICE = N_("%(number)s is a credit note; credit notes are not credited again.")
REASON_REQUIRED = N_("Give the reason for the credit note.")
ABOVE_CREDITABLE = N_(
    "Line %(line)s (%(product)s): %(quantity)s is more than the %(creditable)s invoiced and not yet credited."
)
NOTHING_TO_CREDIT = N_("There is nothing left to credit on invoice %(number)s.")
UNINVOICED_REASON_REQUIRED = N_("Give the reason why the delivery is not invoiced.")
PREPAYMENT_LINE = N_("Prepayment for order %(number)s")
LESS_PREPAYMENT = N_("Less prepayment %(numbers)s")
LESS_RETURN = N_("Goods returned: %(reference)s")

INVOICE_ISSUED = NotificationTemplate(
    "billing.invoice_issued",
    label=N_("An invoice or credit note was issued (to the customer)"),
    subject={
        "zh_CN": "{% if kind == 'credit_note' %}红字发票{% else %}发票{% endif %} {{ invoice_number }} 已开具",
        "en": "{% if kind == 'credit_note' %}Credit note{% else %}Invoice{% endif %} {{ invoice_number }} issued",
    },
    body={
        "zh_CN": "{% if kind == 'credit_note' %}红字发票{% else %}发票{% endif %} {{ invoice_number }}"
        "{% if order_number %}（订单 {{ order_number }}）{% endif %}已于 {{ invoice_date }} 开具，"
        "价税合计 {{ total }} {{ currency }}。\n"
        "{% if due_date and kind != 'credit_note' %}付款到期日：{{ due_date }}\n{% endif %}"
        "发票 PDF：{{ pdf_path }}\n",
        "en": "{% if kind == 'credit_note' %}Credit note{% else %}Invoice{% endif %} {{ invoice_number }}"
        "{% if order_number %} (order {{ order_number }}){% endif %} was issued on {{ invoice_date }}, "
        "total {{ total }} {{ currency }} including VAT.\n"
        "{% if due_date and kind != 'credit_note' %}Due on: {{ due_date }}\n{% endif %}"
        "Invoice PDF: {{ pdf_path }}\n",
    },
    plugin="billing",
)

NOTIFICATIONS: tuple[NotificationTemplate, ...] = (INVOICE_ISSUED,)


# --- permissions and small helpers ----------------------------------------------------------


def _require(actor: User | None, permission: str) -> None:
    """Refuse (403) an actor without ``permission``; ``None`` is the system itself."""
    if actor is not None and not actor.can(permission):
        raise BillingError("forbidden", FORBIDDEN, status=403, permission=permission)


def _label(invoice: BillingInvoice) -> str:
    return invoice.number or f"#{invoice.id}"


def _qty(value: Any, line: object) -> Decimal:
    """A quantity typed or sent (string, number, Decimal), rounded to 3 places; 422 when not a number."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BillingError("invalid_quantity", NOT_A_QUANTITY, line=str(line)) from None
    if not number.is_finite():
        raise BillingError("invalid_quantity", NOT_A_QUANTITY, line=str(line))
    if number < 0:
        raise BillingError("invalid_quantity", NEGATIVE_QUANTITY, line=str(line))
    return number.quantize(QTY)


def _key(value: Any) -> int | None:
    """A line id given as int or digits (JSON keys are strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def line_amounts(
    quantity: Decimal, unit_price: Decimal, discount: Decimal, tax_rate: Decimal
) -> tuple[Decimal, Decimal]:
    """Untaxed amount and VAT of a line: ``to_cents(q × price × (100 − discount)/100)``, tax on that."""
    amount = to_cents(Decimal(quantity) * Decimal(unit_price) * (HUNDRED - Decimal(discount)) / HUNDRED)
    return amount, to_cents(amount * Decimal(tax_rate) / HUNDRED)


def _totals(invoice: BillingInvoice) -> None:
    invoice.untaxed = to_cents(sum((line.amount for line in invoice.lines), ZERO))
    invoice.tax = to_cents(sum((line.tax for line in invoice.lines), ZERO))
    invoice.total = invoice.untaxed + invoice.tax


def _company_today() -> dt.date:
    return company_now().date()


# --- data scope -----------------------------------------------------------------------------


#: The data scope of invoices is billing's one rule (:mod:`plugins.billing.scope`).
visible_invoices = invoice_scope


# --- quantities -----------------------------------------------------------------------------


def delivered_quantities(session: Session, order: Order) -> dict[int, Decimal]:
    """Delivered quantity per order line id.

    The first answer of ``ordo_billing_delivered_quantities`` (logistics: shipped
    quantities); without one, the ordered quantities of a confirmed or completed order
    (a company that does not track deliveries), else nothing.
    """
    answer = session_registry(session).hook.ordo_billing_delivered_quantities(order=order, session=session)
    if answer is not None:
        return {int(k): Decimal(v).quantize(QTY) for k, v in answer.items()}
    if order.status in INVOICEABLE_STATUSES:
        return {line.id: Decimal(line.quantity).quantize(QTY) for line in order.lines}
    return {}


def deliveries_tracked(session: Session, order: Order) -> bool:
    """Whether a plugin (logistics) tracks ``order``'s deliveries: then only delivered goods are invoiced."""
    answer = session_registry(session).hook.ordo_billing_delivered_quantities(order=order, session=session)
    return answer is not None


def invoiced_quantities(
    session: Session, order_id: int, *, exclude_invoice_id: int | None = None, drafts: bool = True
) -> dict[int, Decimal]:
    """Quantity per order line already invoiced: draft (with ``drafts``) and issued invoices,
    less what issued correction credit notes gave back (returns give nothing back)."""
    statuses = ("draft", "issued") if drafts else ("issued",)
    query = (
        select(BillingInvoiceLine.order_line_id, func.sum(BillingInvoiceLine.quantity))
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceLine.invoice_id)
        .where(
            BillingInvoice.order_id == order_id,
            BillingInvoiceLine.order_line_id.is_not(None),
            (
                (BillingInvoice.kind == "invoice") & BillingInvoice.status.in_(statuses)
                | (BillingInvoice.kind == "credit_note")
                & (BillingInvoice.basis == "correction")
                & (BillingInvoice.status == "issued")
            ),
        )
        .group_by(BillingInvoiceLine.order_line_id)
    )
    if exclude_invoice_id is not None:
        query = query.where(BillingInvoice.id != exclude_invoice_id)
    return {int(k): Decimal(v or 0).quantize(QTY) for k, v in session.execute(query) if k is not None}


def basis_quantities(session: Session, order: Order, basis: str) -> dict[int, Decimal]:
    """The quantities an invoice of ``basis`` starts from: delivered, or ordered."""
    if basis == "ordered":
        return {line.id: Decimal(line.quantity).quantize(QTY) for line in order.lines}
    return delivered_quantities(session, order)


def invoiceable_quantities(
    session: Session, order: Order, basis: str = "delivered", *, exclude_invoice_id: int | None = None
) -> dict[int, Decimal]:
    """Per order line: basis quantity − already invoiced (never below zero)."""
    base = basis_quantities(session, order, basis)
    done = invoiced_quantities(session, order.id, exclude_invoice_id=exclude_invoice_id)
    return {line.id: max(ZERO, base.get(line.id, ZERO) - done.get(line.id, ZERO)) for line in order.lines}


# --- building lines -------------------------------------------------------------------------


def _check_rate(line_label: str, product: str, rate: Decimal) -> None:
    if Decimal(rate) not in VAT_RATES:
        raise BillingError(
            "invalid_vat_rate", BAD_VAT_RATE, line=line_label, product=product, rate=str(Decimal(rate).normalize())
        )


def _goods_lines(
    session: Session,
    order: Order,
    basis: str,
    quantities: Mapping[Any, Any] | None,
    *,
    exclude_invoice_id: int | None = None,
) -> list[BillingInvoiceLine]:
    """Validated invoice lines for ``quantities`` (order line id → quantity; None: all invoiceable)."""
    lines = {line.id: line for line in order.lines}
    invoiceable = invoiceable_quantities(session, order, basis, exclude_invoice_id=exclude_invoice_id)
    wanted: dict[int, Decimal] = {}
    if quantities is None:
        wanted = {k: v for k, v in invoiceable.items() if v > 0}
    else:
        for raw_key, raw_value in quantities.items():
            key = _key(raw_key)
            if key is None or key not in lines:
                raise BillingError("unknown_line", UNKNOWN_LINE, line=str(raw_key))
            wanted[key] = _qty(raw_value, lines[key].position)
    built: list[BillingInvoiceLine] = []
    for line_id in sorted(wanted, key=lambda k: lines[k].position):
        quantity = wanted[line_id]
        line = lines[line_id]
        if quantity > invoiceable.get(line_id, ZERO):
            raise BillingError(
                "above_delivered",
                ABOVE_INVOICEABLE,
                line=str(line.position),
                product=line.product.sku,
                quantity=str(quantity.normalize()),
                invoiceable=str(invoiceable.get(line_id, ZERO).normalize()),
            )
        if quantity == 0:
            continue
        _check_rate(str(line.position), line.product.sku, line.tax_rate)
        amount, tax = line_amounts(quantity, line.unit_price, line.discount, line.tax_rate)
        built.append(
            BillingInvoiceLine(
                position=line.position,
                order_line_id=line.id,
                product_id=line.product_id,
                description=line.description or line.product.name,
                quantity=quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                discount=line.discount,
                tax_rate=line.tax_rate,
                amount=amount,
                tax=tax,
            )
        )
    if not built:
        raise BillingError("nothing_to_invoice", NOTHING_TO_INVOICE, number=order.number)
    return built


def _prepayment_deduction(
    session: Session, order: Order, goods: list[BillingInvoiceLine], *, exclude_invoice_id: int | None = None
) -> BillingInvoiceLine | None:
    """The negative line deducting issued prepayment invoices not yet deducted (at most the goods amount)."""
    prepayments = list(
        session.scalars(
            select(BillingInvoice)
            .where(
                BillingInvoice.order_id == order.id,
                BillingInvoice.kind == "invoice",
                BillingInvoice.basis == "prepayment",
                BillingInvoice.status == "issued",
            )
            .order_by(BillingInvoice.id)
        )
    )
    if not prepayments:
        return None
    prepaid = sum((p.untaxed for p in prepayments), ZERO)
    deducted_query = (
        select(func.coalesce(func.sum(BillingInvoiceLine.amount), 0))
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceLine.invoice_id)
        .where(
            BillingInvoice.order_id == order.id,
            BillingInvoice.kind == "invoice",
            BillingInvoice.basis != "prepayment",
            BillingInvoice.status.in_(("draft", "issued")),
            BillingInvoiceLine.order_line_id.is_(None),
            BillingInvoiceLine.amount < 0,
        )
    )
    if exclude_invoice_id is not None:
        deducted_query = deducted_query.where(BillingInvoice.id != exclude_invoice_id)
    prepaid_tax = sum((p.tax for p in prepayments), ZERO)
    deducted_amount, deducted_tax = session.execute(
        deducted_query.with_only_columns(
            func.coalesce(func.sum(BillingInvoiceLine.amount), 0), func.coalesce(func.sum(BillingInvoiceLine.tax), 0)
        )
    ).one()
    remaining = to_cents(prepaid + Decimal(deducted_amount or 0))
    goods_amount = sum((line.amount for line in goods), ZERO)
    amount = min(remaining, goods_amount)
    if amount <= 0:
        return None
    rate = prepayments[-1].lines[0].tax_rate if prepayments[-1].lines else Decimal("13")
    # Deducting the whole rest takes the rest of the prepaid VAT too, so the two net to zero.
    tax = (
        to_cents(prepaid_tax + Decimal(deducted_tax or 0)) if amount == remaining else to_cents(amount * rate / HUNDRED)
    )
    numbers = ", ".join(_label(p) for p in prepayments)
    return BillingInvoiceLine(
        position=max((line.position for line in goods), default=0) + 1,
        order_line_id=None,
        product_id=None,
        description=LESS_PREPAYMENT % {"numbers": numbers},
        quantity=Decimal("-1"),
        unit="",
        unit_price=amount,
        discount=ZERO,
        tax_rate=rate,
        amount=-amount,
        tax=-tax,
    )


def _invoice_type(session: Session, customer: Customer, invoice_type: str | None) -> str:
    from plugins.billing.accounts import account_for

    chosen = invoice_type or account_for(session, customer.id).invoice_type or "normal"
    if chosen not in INVOICE_TYPES:
        raise BillingError("invalid_invoice_type", BAD_INVOICE_TYPE, type=str(chosen))
    if chosen == "special" and not (customer.tax_id or "").strip():
        raise BillingError("tax_id_required", NO_TAX_ID, customer=customer.code)
    return chosen


def _order_for_invoicing(session: Session, actor: User | None, order: Order) -> Order:
    """The order, in ``actor``'s scope (404), its row locked for the rest of the transaction."""
    if actor is None:
        return order
    return get_order(session, actor, order.id, for_update=True)


# --- creating ---------------------------------------------------------------------------------


def create_invoice(
    session: Session,
    actor: User,
    order: Order,
    *,
    basis: str = "delivered",
    quantities: Mapping[Any, Any] | None = None,
    invoice_type: str | None = None,
) -> BillingInvoice:
    """A draft invoice of ``order`` for ``quantities`` (order line id → quantity; None: all invoiceable).

    Refused (nothing changed): without ``billing.invoices.manage`` (403), an order out
    of scope (404) or not confirmed/completed (409), an unknown line, a quantity above
    what is delivered and not yet invoiced, nothing to invoice, a VAT rate other than
    13/9/6/0, a VAT special invoice for a customer without tax ID (422).
    """
    _require(actor, flow.INVOICES_MANAGE)
    order = _order_for_invoicing(session, actor, order)
    if basis not in ("delivered", "ordered"):
        raise BillingError("invalid_basis", WRONG_BASIS, basis=str(basis))
    if basis == "ordered" and deliveries_tracked(session, order):
        raise BillingError("deliveries_tracked", DELIVERIES_TRACKED, number=order.number)
    if order.status not in INVOICEABLE_STATUSES:
        raise BillingError("order_not_invoiceable", ORDER_NOT_INVOICEABLE, 409, number=order.number, state=order.status)
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    chosen_type = _invoice_type(session, customer, invoice_type)
    goods = _goods_lines(session, order, basis, quantities)
    deduction = _prepayment_deduction(session, order, goods)
    invoice = BillingInvoice(
        company_id=order.company_id,
        kind="invoice",
        status="draft",
        basis=basis,
        invoice_type=chosen_type,
        customer_id=order.customer_id,
        order_id=order.id,
        currency=order.currency or "CNY",
        buyer_name=customer.name,
        buyer_tax_id=customer.tax_id or "",
        created_by_id=actor.id,
    )
    invoice.lines = [*goods, *([deduction] if deduction is not None else [])]
    _totals(invoice)
    session.add(invoice)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_invoice",
        invoice.id,
        "create",
        {"order": order.number, "basis": basis, "total": invoice.total},
        order_id=order.id,
    )
    return invoice


def create_prepayment_invoice(
    session: Session, actor: User, order: Order, percent: Decimal | str | None = None
) -> BillingInvoice:
    """A draft prepayment invoice (预付款发票) of ``order``: one line of ``percent`` of its total.

    Without ``percent`` the order's required prepayment
    (:func:`plugins.billing.terms.required_prepayment`) is invoiced. The line's VAT
    rate is that of the order's first line; the VAT is the part of the amount it
    contains, so the invoice's total is exactly the prepayment.
    """
    from plugins.billing import terms

    _require(actor, flow.INVOICES_MANAGE)
    order = _order_for_invoicing(session, actor, order)
    if order.status not in PREPAYMENT_STATUSES:
        raise BillingError("order_not_invoiceable", ORDER_NOT_PREPAYABLE, 409, number=order.number, state=order.status)
    if percent is None or str(percent).strip() == "":
        gross = to_cents(Decimal(terms.required_prepayment(session, order)))
        if gross <= 0:
            raise BillingError("no_prepayment", NO_PREPAYMENT, number=order.number)
    else:
        try:
            share = Decimal(str(percent).strip())
        except (InvalidOperation, ValueError):
            raise BillingError("invalid_percent", BAD_PERCENT, percent=str(percent)) from None
        if not share.is_finite() or share <= 0 or share > HUNDRED:
            raise BillingError("invalid_percent", BAD_PERCENT, percent=str(percent))
        gross = to_cents(Decimal(order.total) * share / HUNDRED)
    lines = sorted(order.lines, key=lambda line: line.position)
    rate = Decimal(lines[0].tax_rate) if lines else Decimal("13")
    _check_rate("1", lines[0].product.sku if lines else "", rate)
    customer = session.get(Customer, order.customer_id)
    assert customer is not None
    chosen_type = _invoice_type(session, customer, None)
    untaxed = to_cents(gross * HUNDRED / (HUNDRED + rate))
    invoice = BillingInvoice(
        company_id=order.company_id,
        kind="invoice",
        status="draft",
        basis="prepayment",
        invoice_type=chosen_type,
        customer_id=order.customer_id,
        order_id=order.id,
        currency=order.currency or "CNY",
        buyer_name=customer.name,
        buyer_tax_id=customer.tax_id or "",
        created_by_id=actor.id,
    )
    invoice.lines = [
        BillingInvoiceLine(
            position=1,
            order_line_id=None,
            product_id=None,
            description=PREPAYMENT_LINE % {"number": order.number},
            quantity=Decimal("1"),
            unit="",
            unit_price=untaxed,
            discount=ZERO,
            tax_rate=rate,
            amount=untaxed,
            tax=gross - untaxed,
        )
    ]
    _totals(invoice)
    session.add(invoice)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_invoice",
        invoice.id,
        "create",
        {"order": order.number, "basis": "prepayment", "total": invoice.total},
        order_id=order.id,
    )
    return invoice


# --- drafts -------------------------------------------------------------------------------------


def _draft(session: Session, actor: User, invoice_id: int, version: int | None = None) -> BillingInvoice:
    """The draft ``invoice_id`` locked; 404 out of scope, 409 when issued or stale."""
    _require(actor, flow.INVOICES_MANAGE)
    invoice = get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.status != "draft":
        raise BillingError("invoice_issued", IMMUTABLE, 409, number=_label(invoice))
    if version is not None and int(version) != invoice.version:
        raise BillingError("stale_version", STALE, 409, yours=str(version), current=str(invoice.version))
    return invoice


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise BillingError("invalid_date", BAD_DATE) from None


def update_draft(
    session: Session, actor: User, invoice_id: int, values: Mapping[str, Any], version: int | None = None
) -> BillingInvoice:
    """Change a draft: ``quantities`` (order line id → quantity; for a credit note: the credited
    invoice's line id → quantity), ``invoice_type``, ``note``, ``invoice_date``.

    An issued invoice is refused (409 "issued invoices are immutable; correct them with a
    credit note"), as is a stale ``version``; everything is validated before any change.
    """
    invoice = _draft(session, actor, invoice_id, version)
    unknown = [name for name in values if name not in DRAFT_FIELDS]
    if unknown:
        raise BillingError("invalid_field", UNKNOWN_FIELD, field=str(unknown[0]))
    changes: dict[str, Any] = {}
    new_lines: list[BillingInvoiceLine] | None = None
    customer = session.get(Customer, invoice.customer_id)
    assert customer is not None
    new_type = invoice.invoice_type
    if "invoice_type" in values and values["invoice_type"] not in (None, ""):
        new_type = _invoice_type(session, customer, str(values["invoice_type"]))
    new_date = _date(values["invoice_date"]) if "invoice_date" in values else invoice.invoice_date
    if "quantities" in values and values["quantities"] is not None:
        quantities = values["quantities"]
        if not isinstance(quantities, Mapping):
            raise BillingError("invalid_quantity", NOT_A_QUANTITY, line="quantities")
        if invoice.basis == "prepayment":
            raise BillingError("prepayment_quantities", NO_QUANTITIES_HERE)
        if invoice.kind == "credit_note":
            credited = get_invoice(session, actor, invoice.credited_invoice_id or 0)
            new_lines = _credit_lines(session, credited, quantities, exclude_note_id=invoice.id)
        else:
            order = get_order(session, actor, invoice.order_id or 0, for_update=True)
            goods = _goods_lines(session, order, invoice.basis, quantities, exclude_invoice_id=invoice.id)
            deduction = _prepayment_deduction(session, order, goods, exclude_invoice_id=invoice.id)
            new_lines = [*goods, *([deduction] if deduction is not None else [])]
    if new_type != invoice.invoice_type:
        changes["invoice_type"] = [invoice.invoice_type, new_type]
        invoice.invoice_type = new_type
    if "note" in values and str(values["note"] or "") != invoice.note:
        note = str(values["note"] or "")[:1000]
        changes["note"] = [invoice.note, note]
        invoice.note = note
    if new_date != invoice.invoice_date:
        changes["invoice_date"] = [invoice.invoice_date, new_date]
        invoice.invoice_date = new_date
    if new_lines is not None:
        before = invoice.total
        invoice.lines.clear()
        session.flush()
        invoice.lines.extend(new_lines)
        _totals(invoice)
        changes["total"] = [before, invoice.total]
    if changes:
        session.flush()
        plain = {k: [None if v is None else str(v) for v in pair] for k, pair in changes.items()}
        audit.record(session, actor, "billing_invoice", invoice.id, "update", plain, order_id=invoice.order_id)
    return invoice


def delete_draft(session: Session, actor: User, invoice_id: int, version: int | None = None) -> None:
    """Delete a draft invoice or credit note (it never had a number); issued ones are refused (409)."""
    invoice = _draft(session, actor, invoice_id, version)
    audit.record(
        session,
        actor,
        "billing_invoice",
        invoice.id,
        "delete",
        {"kind": invoice.kind, "total": invoice.total},
        order_id=invoice.order_id,
    )
    session.delete(invoice)
    session.flush()


# --- issuing ------------------------------------------------------------------------------------


def number_for(prefix: str, year: int, serial: int) -> str:
    """An invoice number: prefix, year, dash, six-digit serial (``INV2026-000001``)."""
    return f"{prefix}{year}-{serial:06d}"


def _recheck(session: Session, invoice: BillingInvoice, order: Order) -> None:
    """At issue, the draft's quantities must still fit: basis − issued invoices (drafts can go stale)."""
    if invoice.kind != "invoice" or invoice.basis == "prepayment":
        return
    if order.status not in INVOICEABLE_STATUSES:
        raise BillingError("order_not_invoiceable", ORDER_NOT_INVOICEABLE, 409, number=order.number, state=order.status)
    base = basis_quantities(session, order, invoice.basis)
    done = invoiced_quantities(session, order.id, exclude_invoice_id=invoice.id, drafts=False)
    lines = {line.id: line for line in order.lines}
    for line in invoice.lines:
        if line.order_line_id is None:
            continue
        left = max(ZERO, base.get(line.order_line_id, ZERO) - done.get(line.order_line_id, ZERO))
        if Decimal(line.quantity) > left:
            order_line = lines.get(line.order_line_id)
            raise BillingError(
                "above_delivered",
                ABOVE_INVOICEABLE,
                line=str(line.position),
                product=order_line.product.sku if order_line is not None else "",
                quantity=str(Decimal(line.quantity).normalize()),
                invoiceable=str(left.normalize()),
            )
        _check_rate(str(line.position), "", line.tax_rate)


def _dues(session: Session, invoice: BillingInvoice, order: Order | None, invoice_date: dt.date) -> None:
    from plugins.billing import terms
    from plugins.billing.accounts import account_for

    if invoice.kind == "credit_note":
        schedule = [(invoice_date, invoice.total)]
    elif order is not None:
        order_terms = terms.order_terms(session, order)
        schedule = terms.due_schedule(order_terms.term, order_terms.kind, invoice_date, invoice.total)
    else:
        term = account_for(session, invoice.customer_id).term
        schedule = terms.due_schedule(term, term.kind if term else "monthly_settlement", invoice_date, invoice.total)
    invoice.dues = [
        BillingInvoiceDue(sequence=n, due_date=day, amount=to_cents(Decimal(amount)))
        for n, (day, amount) in enumerate(schedule, start=1)
    ]
    invoice.due_date = max((day for day, _amount in schedule), default=invoice_date)


def _issue(
    session: Session, actor: User | None, invoice: BillingInvoice, invoice_date: dt.date | None
) -> BillingInvoice:
    """Number, date, dues, balance or credit, audit and the customer's notice (permission already checked)."""
    from plugins.billing import payments, settlement

    order = session.get(Order, invoice.order_id) if invoice.order_id is not None else None
    if order is not None and actor is not None:
        order = get_order(session, actor, order.id, for_update=True)  # serialises issues of the same order
    if order is not None:
        _recheck(session, invoice, order)
    day = invoice_date or invoice.invoice_date or _company_today()
    if day > _company_today():
        raise BillingError("future_date", FUTURE_DATE, date=day.isoformat())
    setting = flow.CREDIT_NOTE_PREFIX if invoice.kind == "credit_note" else flow.INVOICE_PREFIX
    prefix = str(get_setting(session, setting) or "")
    serial = next_serial(session, invoice.company_id, SEQUENCES[invoice.kind], day.year)
    invoice.number = number_for(prefix, day.year, serial)
    invoice.year = day.year
    invoice.invoice_date = day
    _dues(session, invoice, order, day)  # reads terms (an autoflush): before the invoice is issued
    invoice.status = "issued"  # from here on the database refuses any change but ``settled``
    invoice.issued_at = utcnow()
    invoice.issued_by_id = actor.id if actor is not None else None
    session.flush()
    audit.record(
        session,
        actor,
        "billing_invoice",
        invoice.id,
        "issue",
        {"number": invoice.number, "kind": invoice.kind, "invoice_date": day, "total": invoice.total},
        order_id=invoice.order_id,
    )
    if invoice.kind == "invoice":
        payments.apply_balance(session, actor, invoice)
    elif invoice.credited_invoice_id is not None:
        credited = session.get(BillingInvoice, invoice.credited_invoice_id)
        if credited is not None:
            session.refresh(credited)
            amount = min(credited.open_amount, invoice.open_amount)
            if amount > 0:
                ledger.allocate(session, credited, amount, credit_note=invoice, effective_on=day, actor=actor)
                if credited.order_id is not None:
                    settlement.on_paid(session, [credited.order_id], actor)
    notify(
        session,
        INVOICE_ISSUED.name,
        to=ToCustomer(invoice.customer_id),
        order=order,
        context={
            "kind": invoice.kind,
            "invoice_number": invoice.number,
            "order_number": order.number if order is not None else "",
            "invoice_date": day.isoformat(),
            "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
            "total": f"{invoice.total:,.2f}",
            "currency": invoice.currency,
            "pdf_path": f"/billing/invoices/{invoice.id}/pdf",
        },
        dedupe_key=f"billing.invoice_issued:{invoice.id}",
    )
    return invoice


def issue_invoice(
    session: Session, actor: User, invoice_id: int, *, invoice_date: dt.date | None = None
) -> BillingInvoice:
    """Issue the draft ``invoice_id``: gapless number, date, dues, then the balance or credit is applied.

    Refused: without ``billing.invoices.issue`` (403), out of scope (404), already
    issued (409), quantities above what is delivered and not yet issued (422).
    """
    _require(actor, flow.INVOICES_ISSUE)
    invoice = get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.status != "draft":
        raise BillingError("invoice_issued", IMMUTABLE, 409, number=_label(invoice))
    return _issue(session, actor, invoice, _date(invoice_date))


# --- credit notes -----------------------------------------------------------------------------


def credited_by_position(
    session: Session, invoice_id: int, *, exclude_note_id: int | None = None
) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    """Per line position of ``invoice_id``: quantity, amount and VAT already credited (draft and issued
    credit notes), as positive figures."""
    query = (
        select(
            BillingInvoiceLine.position,
            func.sum(BillingInvoiceLine.quantity),
            func.sum(BillingInvoiceLine.amount),
            func.sum(BillingInvoiceLine.tax),
        )
        .join(BillingInvoice, BillingInvoice.id == BillingInvoiceLine.invoice_id)
        .where(
            BillingInvoice.credited_invoice_id == invoice_id,
            BillingInvoice.kind == "credit_note",
            BillingInvoice.status.in_(("draft", "issued")),
        )
        .group_by(BillingInvoiceLine.position)
    )
    if exclude_note_id is not None:
        query = query.where(BillingInvoice.id != exclude_note_id)
    return {
        int(pos): (-Decimal(q or 0).quantize(QTY), -Decimal(a or 0), -Decimal(t or 0))
        for pos, q, a, t in session.execute(query)
    }


def _credit_lines(
    session: Session,
    invoice: BillingInvoice,
    quantities: Mapping[Any, Any] | None,
    *,
    exclude_note_id: int | None = None,
) -> list[BillingInvoiceLine]:
    """Negative lines crediting ``quantities`` (invoice line id → quantity; None: all not yet credited)."""
    credited = credited_by_position(session, invoice.id, exclude_note_id=exclude_note_id)
    by_id = {line.id: line for line in invoice.lines}
    wanted: dict[int, Decimal] = {}
    if quantities is None:
        for line in invoice.lines:
            done = credited.get(line.position, (ZERO, ZERO, ZERO))[0]
            left = Decimal(line.quantity) - done
            if left != 0:
                wanted[line.id] = left
    else:
        for raw_key, raw_value in quantities.items():
            key = _key(raw_key)
            if key is None or key not in by_id:
                raise BillingError("unknown_line", UNKNOWN_INVOICE_LINE, line=str(raw_key), number=_label(invoice))
            wanted[key] = _qty(raw_value, by_id[key].position)
    built: list[BillingInvoiceLine] = []
    for line_id in sorted(wanted, key=lambda k: by_id[k].position):
        line = by_id[line_id]
        quantity = wanted[line_id]
        done_q, done_a, done_t = credited.get(line.position, (ZERO, ZERO, ZERO))
        left = Decimal(line.quantity) - done_q
        if quantities is not None and (Decimal(line.quantity) < 0 or quantity > left):
            raise BillingError(
                "above_invoiced",
                ABOVE_CREDITABLE,
                line=str(line.position),
                product=line.description[:40],
                quantity=str(quantity.normalize()),
                creditable=str(max(left, ZERO).normalize()),
            )
        if quantity == 0:
            continue
        if quantity == left:  # the whole rest: exactly what is left, no rounding drift
            amount, tax = line.amount - done_a, line.tax - done_t
        else:
            amount, tax = line_amounts(quantity, line.unit_price, line.discount, line.tax_rate)
        built.append(
            BillingInvoiceLine(
                position=line.position,
                order_line_id=line.order_line_id,
                product_id=line.product_id,
                description=line.description,
                quantity=-quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                discount=line.discount,
                tax_rate=line.tax_rate,
                amount=-amount,
                tax=-tax,
            )
        )
    if not built or sum((line.amount + line.tax for line in built), ZERO) >= 0:
        raise BillingError("nothing_to_credit", NOTHING_TO_CREDIT, number=_label(invoice))
    return built


def create_credit_note(
    session: Session,
    actor: User,
    invoice_id: int,
    quantities: Mapping[Any, Any] | None,
    reason: str,
) -> BillingInvoice:
    """A draft credit note (红字发票) correcting the issued invoice ``invoice_id``.

    ``quantities`` maps the invoice's line ids to the quantity to credit (None: all not
    yet credited); each at most invoiced − already credited. The note copies the lines
    with negative quantities and amounts; issued, it gives the quantities back to
    invoice again (basis ``correction``) and settles the invoice up to its open amount.
    """
    _require(actor, flow.INVOICES_MANAGE)
    invoice = get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.kind != "invoice":
        raise BillingError("not_an_invoice", NOT_AN_INVOICE, 409, number=_label(invoice))
    if invoice.status != "issued":
        raise BillingError("invoice_not_issued", NOT_ISSUED, 409, number=_label(invoice))
    text = (reason or "").strip()
    if not text:
        raise BillingError("reason_required", REASON_REQUIRED)
    lines = _credit_lines(session, invoice, quantities)
    note = BillingInvoice(
        company_id=invoice.company_id,
        kind="credit_note",
        status="draft",
        basis="correction",
        invoice_type=invoice.invoice_type,
        customer_id=invoice.customer_id,
        order_id=invoice.order_id,
        credited_invoice_id=invoice.id,
        currency=invoice.currency,
        buyer_name=invoice.buyer_name,
        buyer_tax_id=invoice.buyer_tax_id,
        note=text[:1000],
        created_by_id=actor.id,
    )
    note.lines = lines
    _totals(note)
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_invoice",
        note.id,
        "create",
        {"credits": invoice.number, "total": note.total},
        reason=text,
        order_id=invoice.order_id,
    )
    return note


def credit_note_for_return(
    session: Session, order: Order, source_key: str, lines: list[tuple[int, Decimal]], *, reference: str = ""
) -> BillingInvoice | None:
    """An issued credit note for returned goods (called by logistics' bridge; no actor).

    Once per ``source_key``: a second call returns the note made the first time. The
    received quantities are credited at the invoiced price against the order's issued
    invoices, latest first, at most what is invoiced and not yet credited per order
    line; the note corrects the latest invoice concerned and settles it up to its open
    amount. With nothing invoiced yet, returns None (those goods are simply invoiced less).
    """
    existing = session.scalars(select(BillingInvoice).where(BillingInvoice.source_key == source_key)).first()
    if existing is not None:
        return existing
    invoices = list(
        session.scalars(
            select(BillingInvoice)
            .where(
                BillingInvoice.order_id == order.id,
                BillingInvoice.kind == "invoice",
                BillingInvoice.status == "issued",
                BillingInvoice.basis != "prepayment",
            )
            .order_by(BillingInvoice.invoice_date.desc(), BillingInvoice.id.desc())
        )
    )
    built: list[BillingInvoiceLine] = []
    credited_invoice: BillingInvoice | None = None
    returned: dict[int, Decimal] = {}
    for order_line_id, quantity in lines:
        returned[order_line_id] = returned.get(order_line_id, ZERO) + Decimal(quantity).quantize(QTY)
    for invoice in invoices:
        credited = credited_by_position(session, invoice.id)
        for line in invoice.lines:
            want = returned.get(line.order_line_id or 0, ZERO)
            if line.order_line_id is None or want <= 0:
                continue
            left = Decimal(line.quantity) - credited.get(line.position, (ZERO, ZERO, ZERO))[0]
            take = min(want, left)
            if take <= 0:
                continue
            returned[line.order_line_id] = want - take
            credited_invoice = credited_invoice or invoice
            amount, tax = line_amounts(take, line.unit_price, line.discount, line.tax_rate)
            built.append(
                BillingInvoiceLine(
                    position=line.position if invoice is credited_invoice else 1000 + line.position,
                    order_line_id=line.order_line_id,
                    product_id=line.product_id,
                    description=line.description,
                    quantity=-take,
                    unit=line.unit,
                    unit_price=line.unit_price,
                    discount=line.discount,
                    tax_rate=line.tax_rate,
                    amount=-amount,
                    tax=-tax,
                )
            )
    if credited_invoice is None or not built:
        return None
    note = BillingInvoice(
        company_id=credited_invoice.company_id,
        kind="credit_note",
        status="draft",
        basis="return",
        invoice_type=credited_invoice.invoice_type,
        customer_id=credited_invoice.customer_id,
        order_id=order.id,
        credited_invoice_id=credited_invoice.id,
        source_key=source_key,
        currency=credited_invoice.currency,
        buyer_name=credited_invoice.buyer_name,
        buyer_tax_id=credited_invoice.buyer_tax_id,
        note=(LESS_RETURN % {"reference": reference}) if reference else "",
    )
    note.lines = built
    _totals(note)
    session.add(note)
    session.flush()
    audit.record(
        session,
        None,
        "billing_invoice",
        note.id,
        "create",
        {"return": reference, "total": note.total},
        order_id=order.id,
    )
    return _issue(session, None, note, None)


# --- deliveries not invoiced in time (BL-3) ------------------------------------------------------


@dataclass(frozen=True)
class UninvoicedDelivery:
    """A delivery (shipment, or a confirmed order without logistics) not invoiced in time."""

    order_id: int
    order_number: str
    customer_id: int
    customer_name: str
    reference: str
    shipped_at: dt.datetime
    amount: Decimal
    days: int


def _deliveries(session: Session, before: dt.datetime) -> list[Any]:
    from plugins.billing.hookspecs import Delivery

    caller = session_registry(session).hook.ordo_billing_deliveries
    if caller.get_hookimpls():
        return [d for answer in caller(session=session, order_ids=None, shipped_before=before) for d in answer or ()]
    # Without logistics: a confirmed order counts as delivered when it was confirmed.
    confirmed_at = (
        select(OrderTransition.order_id, func.min(OrderTransition.at).label("at"))
        .where(OrderTransition.to_status == "confirmed", OrderTransition.from_status != "confirmed")
        .group_by(OrderTransition.order_id)
        .subquery()
    )
    rows = session.execute(
        select(Order, confirmed_at.c.at)
        .join(confirmed_at, confirmed_at.c.order_id == Order.id)
        .where(Order.status.in_(INVOICEABLE_STATUSES), confirmed_at.c.at < before)
    )
    return [Delivery(order.id, "", at, Decimal(order.total)) for order, at in rows]


def _as_instant(as_of: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(as_of, dt.datetime):
        return as_of
    return day_start(as_of + dt.timedelta(days=1))


def uninvoiced_deliveries(session: Session, actor: User, as_of: dt.date | dt.datetime) -> list[UninvoicedDelivery]:
    """Deliveries older than ``billing.invoices.late_days`` on ``as_of`` whose order is not fully
    invoiced and that have no recorded reason, of the orders in ``actor``'s scope (BL-3).

    "Fully invoiced": nothing of the order's delivered quantities is left to invoice (the
    same rule as the invoice form). Deliveries come from ``ordo_billing_deliveries``
    (logistics: shipments); without logistics, from the orders' confirmation.
    """
    _require(actor, flow.INVOICES_READ)
    end = _as_instant(as_of)
    late_days = int(get_setting(session, flow.INVOICE_LATE_DAYS) or 30)
    deliveries = _deliveries(session, end - dt.timedelta(days=late_days))
    if not deliveries:
        return []
    order_ids = {d.order_id for d in deliveries}
    visible = {o.id: o for o in session.scalars(visible_orders(actor).where(Order.id.in_(order_ids)))}
    reasons = {
        (r.order_id, r.shipment_reference)
        for r in session.scalars(select(BillingUninvoicedReason).where(BillingUninvoicedReason.order_id.in_(order_ids)))
    }
    open_orders: dict[int, bool] = {}
    customers: dict[int, str] = {}
    rows: list[UninvoicedDelivery] = []
    for delivery in deliveries:
        order = visible.get(delivery.order_id)
        if order is None or (order.id, delivery.reference) in reasons:
            continue
        if order.id not in open_orders:
            # Drafts do not count: a delivery is invoiced when its invoice is issued (BL-3).
            base = delivered_quantities(session, order)
            done = invoiced_quantities(session, order.id, drafts=False)
            left = {line.id: max(ZERO, base.get(line.id, ZERO) - done.get(line.id, ZERO)) for line in order.lines}
            open_orders[order.id] = any(v > 0 for v in left.values())
        if not open_orders[order.id]:
            continue
        if order.customer_id not in customers:
            customer = session.get(Customer, order.customer_id)
            customers[order.customer_id] = customer.name if customer is not None else ""
        shipped_at = delivery.shipped_at if delivery.shipped_at.tzinfo else delivery.shipped_at.replace(tzinfo=dt.UTC)
        rows.append(
            UninvoicedDelivery(
                order_id=order.id,
                order_number=order.number,
                customer_id=order.customer_id,
                customer_name=customers[order.customer_id],
                reference=delivery.reference,
                shipped_at=shipped_at,
                amount=to_cents(Decimal(delivery.amount or 0)),
                days=max(0, (end - shipped_at).days),
            )
        )
    rows.sort(key=lambda row: row.shipped_at)
    return rows


def record_uninvoiced_reason(
    session: Session, actor: User, order_id: int, shipment_reference: str, reason: str
) -> BillingUninvoicedReason:
    """Record why a delivery of ``order_id`` (``shipment_reference``; "" for the order) is not invoiced yet.

    A later reason for the same delivery replaces the earlier one (audited).
    """
    _require(actor, flow.INVOICES_MANAGE)
    order = get_order(session, actor, int(order_id))
    text = (reason or "").strip()
    if not text:
        raise BillingError("reason_required", UNINVOICED_REASON_REQUIRED)
    reference = (shipment_reference or "").strip()[:64]
    row = session.scalars(
        select(BillingUninvoicedReason).where(
            BillingUninvoicedReason.order_id == order.id, BillingUninvoicedReason.shipment_reference == reference
        )
    ).first()
    before = row.reason if row is not None else None
    if row is None:
        row = BillingUninvoicedReason(order_id=order.id, shipment_reference=reference, reason=text[:500])
        session.add(row)
    row.reason = text[:500]
    row.recorded_by_id = actor.id
    row.recorded_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "billing_uninvoiced_reason",
        row.id,
        "record",
        {"shipment": reference, "reason": [before, row.reason]},
        order_id=order.id,
    )
    return row

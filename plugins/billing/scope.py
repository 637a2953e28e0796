"""Which billing records a user may see: the order scope, and for customers the same rule.

Invoices of an order are seen by whoever sees the order (core's
:func:`core.security.scopes.order_visible`); invoices without an order, payments,
accounts and statements belong to a customer, seen by users whose data scope covers the
customer: *all*; *branch* — the customer's branch; *department*/*own* — customers they
look after (``Customer.owner_id``); a portal user — their own customer. Everything out
of scope answers 404, like an order (CORE-4).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from core.models import Customer, User
from core.security.scopes import customer_scope, customer_visible, order_visible
from core.services import NotFound
from plugins.billing.models import BillingAccount, BillingInvoice, BillingPayment


def invoice_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause on :class:`BillingInvoice`: through its order, or its customer if it has none."""
    return or_(
        and_(BillingInvoice.order_id.is_not(None), order_visible(BillingInvoice.order_id, user)),
        and_(BillingInvoice.order_id.is_(None), customer_visible(BillingInvoice.customer_id, user)),
    )


def payment_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause on :class:`BillingPayment`: through its customer."""
    return customer_visible(BillingPayment.customer_id, user)


def get_invoice(session: Session, user: User | None, invoice_id: int, *, for_update: bool = False) -> BillingInvoice:
    """The invoice or credit note ``invoice_id`` if ``user`` may see it; else :class:`NotFound` (404)."""
    query = select(BillingInvoice).where(BillingInvoice.id == invoice_id, invoice_scope(user))
    if for_update:
        query = query.with_for_update()
    invoice = session.scalars(query).first()
    if invoice is None:
        raise NotFound("invoice", invoice_id)
    return invoice


def get_payment(session: Session, user: User | None, payment_id: int, *, for_update: bool = False) -> BillingPayment:
    """The payment ``payment_id`` if ``user`` may see it; else :class:`NotFound` (404)."""
    query = select(BillingPayment).where(BillingPayment.id == payment_id, payment_scope(user))
    if for_update:
        query = query.with_for_update()
    payment = session.scalars(query).first()
    if payment is None:
        raise NotFound("payment", payment_id)
    return payment


def get_customer(session: Session, user: User | None, customer_id: int) -> Customer:
    """The customer ``customer_id`` if ``user``'s billing scope covers it; else :class:`NotFound`."""
    customer = session.scalars(select(Customer).where(Customer.id == customer_id, customer_scope(user))).first()
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer


def account_query(user: User | None) -> Any:
    """A SELECT of (Customer, BillingAccount or None) for the customers in ``user``'s scope."""
    return (
        select(Customer, BillingAccount)
        .outerjoin(BillingAccount, BillingAccount.customer_id == Customer.id)
        .where(customer_scope(user))
        .order_by(Customer.code)
    )

"""Shared helpers for the billing plugin's tests: accounts, confirmed orders, invoices, payments.

Built on the real services so every billing test sets things up the same way. Import
them by module name (pytest puts ``tests/plugins`` on ``sys.path``)::

    from billing_helpers import confirm, invoice_order, pay, set_account
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Customer, Order, User
from core.plugins import Registry
from core.services.orders import take_action
from plugins.billing import accounts, invoices, payments
from plugins.billing.models import BillingAccount, BillingInvoice, BillingPayment


def customer(session: Session, code: str) -> Customer:
    """The customer ``code`` (C001 local Chongqing, C002 Chengdu)."""
    return session.scalars(select(Customer).where(Customer.code == code)).one()


def set_account(session: Session, code: str, **values: Any) -> BillingAccount:
    """Give customer ``code``'s billing account ``values`` directly (no permission check) and commit."""
    account = accounts.account_for(session, customer(session, code).id)
    for name, value in values.items():
        setattr(account, name, value)
    session.commit()
    return account


def confirm(session: Session, registry: Registry, actor: User, order: Order) -> None:
    """Submit and confirm ``order`` (standard terms pass the finance check by themselves) and commit."""
    take_action(session, registry, actor, order, "submit")
    take_action(session, registry, actor, order, "confirm")
    session.commit()


def invoice_order(
    session: Session, actor: User, order: Order, *, basis: str = "ordered", invoice_date: dt.date | None = None
) -> BillingInvoice:
    """Create and issue an invoice for ``order`` (ordered quantities by default) and commit."""
    invoice = invoices.create_invoice(session, actor, order, basis=basis)
    invoices.issue_invoice(session, actor, invoice.id, invoice_date=invoice_date)
    session.commit()
    return invoice


def pay(
    session: Session,
    actor: User,
    customer_id: int,
    amount: Decimal | str,
    *,
    allocate_to: BillingInvoice | None = None,
    received_on: dt.date | None = None,
    payer_name: str | None = None,
) -> BillingPayment:
    """Record a bank transfer of ``amount`` (optionally allocated in full to ``allocate_to``) and commit."""
    payer = payer_name if payer_name is not None else session.get(Customer, customer_id).name  # type: ignore[union-attr]
    payment = payments.record_payment(
        session,
        actor,
        customer_id=customer_id,
        method="bank_transfer",
        amount=Decimal(str(amount)),
        received_on=received_on or dt.date.today(),
        payer_name=payer,
        reference="TEST",
    )
    if allocate_to is not None:
        payments.allocate_payment(session, actor, payment.id, [(allocate_to.id, Decimal(str(amount)))])
    session.commit()
    return payment


@contextmanager
def dues_rewritable(session: Session) -> Iterator[None]:
    """Test setup only: let the test hand-make an issued invoice's dues, then guard them again.

    The database refuses any change to an issued invoice's dues (migration b0005); a few
    tests need a schedule that no payment term makes (dues long past, uneven instalments).
    The guards are lifted on this connection's transaction and put back before it ends;
    commit inside the block.
    """
    names = ("billing_invoice_due_fixed", "billing_invoice_due_kept")
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        made = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)", names
        ).scalars()
        statements = list(made)
        assert len(statements) == len(names)
        for name in names:
            connection.exec_driver_sql(f"DROP TRIGGER {name}")
        yield
        connection = session.connection()
        for statement in statements:
            connection.exec_driver_sql(statement)
    else:
        for name in names:
            connection.exec_driver_sql(f"ALTER TABLE billing_invoice_due DISABLE TRIGGER {name}")
        yield
        connection = session.connection()
        for name in names:
            connection.exec_driver_sql(f"ALTER TABLE billing_invoice_due ENABLE TRIGGER {name}")
    session.commit()

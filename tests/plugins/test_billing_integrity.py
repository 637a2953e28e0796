"""Issued invoices and recorded payments cannot be altered through any channel (BL-3, BL-6).

Three layers are attacked: raw SQL against the database (its triggers, migration b0005,
must refuse), the ORM (a service that forgot the rule), and every state-changing billing
route of the screens and the API, called with an issued invoice's or a payment's id and a
body that tries to change it. Afterwards the invoice, its lines and dues, and the payment
are exactly as they were; only what matching money moves (``settled``, ``allocated``) and
the payer proof may change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, invoice_order, pay
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from core.models import User
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, ApiCaller, csrf_token, login, make_order, token_for
from plugins.billing import invoices
from plugins.billing.models import BillingInvoice, BillingInvoiceDue, BillingInvoiceLine, BillingPayment

pytestmark = [pytest.mark.req("BL-3")]


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def money(session: Session, state: Any, admin: User, seed: dict[str, Any]) -> dict[str, Any]:
    """An issued invoice, a draft, and a recorded payment (part of it matched to the invoice)."""
    order = make_order(session, admin)
    confirm(session, state.registry, admin, order)
    issued = invoice_order(session, admin, order)
    other = make_order(session, admin)
    confirm(session, state.registry, admin, other)
    draft = invoices.create_invoice(session, admin, other)
    session.commit()
    payment = pay(session, admin, order.customer_id, "50.00", allocate_to=None)
    return {"issued": issued.id, "draft": draft.id, "payment": payment.id, "customer": order.customer_id}


INVOICE_SNAPSHOT = text(
    "SELECT kind, number, year, status, customer_id, order_id, currency, untaxed, tax, total, invoice_date, "
    "due_date, buyer_name, buyer_tax_id, note, issued_at, issued_by_id, invoice_type "
    "FROM billing_invoice WHERE id = :id"
)
LINES_SNAPSHOT = text(
    "SELECT id, position, product_id, description, quantity, unit_price, discount, tax_rate, amount "
    "FROM billing_invoice_line WHERE invoice_id = :id ORDER BY id"
)
DUES_SNAPSHOT = text(
    "SELECT id, sequence, due_date, amount FROM billing_invoice_due WHERE invoice_id = :id ORDER BY id"
)
PAYMENT_SNAPSHOT = text(
    "SELECT number, customer_id, method, amount, currency, rate, amount_base, received_on, payer_name, reference, "
    "note, recorded_by_id, created_at FROM billing_payment WHERE id = :id"
)


def snapshot(session: Session, money: dict[str, Any]) -> tuple[Any, ...]:
    """Everything about the issued invoice and the payment that must never change."""
    session.expire_all()
    invoice = {"id": money["issued"]}
    return (
        session.execute(INVOICE_SNAPSHOT, invoice).one(),
        session.execute(LINES_SNAPSHOT, invoice).all(),
        session.execute(DUES_SNAPSHOT, invoice).all(),
        session.execute(PAYMENT_SNAPSHOT, {"id": money["payment"]}).one(),
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing_invoice SET total = total + 1 WHERE id = :invoice",
        "UPDATE billing_invoice SET number = 'INV-FORGED' WHERE id = :invoice",
        "UPDATE billing_invoice SET status = 'draft' WHERE id = :invoice",
        "UPDATE billing_invoice SET customer_id = customer_id + 1 WHERE id = :invoice",
        "UPDATE billing_invoice SET invoice_date = '2020-01-01' WHERE id = :invoice",
        "UPDATE billing_invoice SET buyer_name = 'Someone else' WHERE id = :invoice",
        "UPDATE billing_invoice SET note = 'rewritten' WHERE id = :invoice",
        "DELETE FROM billing_invoice WHERE id = :invoice",
        "UPDATE billing_invoice_line SET quantity = quantity + 1 WHERE invoice_id = :invoice",
        "UPDATE billing_invoice_line SET unit_price = 0 WHERE invoice_id = :invoice",
        "DELETE FROM billing_invoice_line WHERE invoice_id = :invoice",
        "INSERT INTO billing_invoice_line (invoice_id, position, description, quantity, unit, unit_price, discount, "
        "tax_rate, amount, tax) VALUES (:invoice, 99, 'slipped in', 1, 'pc', 1, 0, 0, 1, 0)",
        "UPDATE billing_invoice_due SET amount = 0 WHERE invoice_id = :invoice",
        "UPDATE billing_invoice_due SET due_date = '2099-01-01' WHERE invoice_id = :invoice",
        "DELETE FROM billing_invoice_due WHERE invoice_id = :invoice",
        "UPDATE billing_payment SET amount = amount + 1, amount_base = amount_base + 1 WHERE id = :payment",
        "UPDATE billing_payment SET payer_name = 'Someone else' WHERE id = :payment",
        "UPDATE billing_payment SET received_on = '2020-01-01' WHERE id = :payment",
        "DELETE FROM billing_payment WHERE id = :payment",
    ],
)
def test_the_database_refuses_every_change_to_issued_money(session: Session, money: dict[str, Any], statement: str):
    before = snapshot(session, money)
    with pytest.raises(DatabaseError, match="immutable"):
        session.execute(text(statement), {"invoice": money["issued"], "payment": money["payment"]})
    session.rollback()
    assert snapshot(session, money) == before


def test_what_matching_money_moves_still_moves(session: Session, money: dict[str, Any]):
    before = snapshot(session, money)
    session.execute(text("UPDATE billing_invoice SET settled = settled + 1 WHERE id = :id"), {"id": money["issued"]})
    session.execute(
        text("UPDATE billing_payment SET allocated = allocated + 1 WHERE id = :id"), {"id": money["payment"]}
    )
    session.commit()
    assert snapshot(session, money) == before
    invoice = session.get(BillingInvoice, money["issued"])
    assert invoice is not None and invoice.settled == Decimal("1.00")


def test_a_draft_is_still_edited_and_deleted_freely(session: Session, money: dict[str, Any]):
    draft = {"id": money["draft"]}
    session.execute(text("UPDATE billing_invoice SET note = 'fine' WHERE id = :id"), draft)
    session.execute(text("UPDATE billing_invoice_line SET description = 'fine' WHERE invoice_id = :id"), draft)
    session.commit()
    session.execute(text("DELETE FROM billing_invoice_line WHERE invoice_id = :id"), draft)
    session.execute(text("DELETE FROM billing_invoice WHERE id = :id"), draft)
    session.commit()
    session.expire_all()
    assert session.get(BillingInvoice, money["draft"]) is None


def test_the_orm_cannot_change_an_issued_invoice_or_a_payment_either(session: Session, money: dict[str, Any]):
    before = snapshot(session, money)
    changes = [
        (BillingInvoice, money["issued"], {"total": Decimal("1.00")}),
        (BillingPayment, money["payment"], {"amount": Decimal("1.00")}),
    ]
    for model, ident, values in changes:
        row = session.get(model, ident)
        for name, value in values.items():
            setattr(row, name, value)
        with pytest.raises(DatabaseError, match="immutable"):
            session.flush()
        session.rollback()
    invoice = session.get(BillingInvoice, money["issued"])
    assert invoice is not None
    for child in (*invoice.lines, *invoice.dues):
        session.delete(child)
        with pytest.raises(DatabaseError, match="immutable"):
            session.flush()
        session.rollback()
    assert all(isinstance(c, BillingInvoiceLine | BillingInvoiceDue) for c in (*invoice.lines, *invoice.dues))
    assert snapshot(session, money) == before


#: A body that tries every field an invoice or payment has, for forms and JSON alike.
TAMPERING = {
    "total": "1.00",
    "untaxed": "1.00",
    "number": "INV-FORGED",
    "invoice_date": "2020-01-01",
    "due_date": "2099-01-01",
    "buyer_name": "Someone else",
    "note": "rewritten",
    "invoice_type": "special",
    "amount": "1.00",
    "payer_name": "Someone else",
    "received_on": "2020-01-01",
    "reason": "tampering",
    "lines": [{"description": "slipped in", "quantity": "1", "unit_price": "1"}],
}


def money_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, rule, kind) of every state-changing route that takes an invoice's or a payment's id."""
    found = []
    for rule in app.url_map.iter_rules():
        kind = "invoice" if "invoice_id" in rule.arguments else "payment" if "payment_id" in rule.arguments else ""
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            if kind:
                found.append((method, rule.rule, kind))
    return found


def test_no_screen_or_api_route_alters_issued_money(
    app: Flask, client: FlaskClient, session: Session, admin: User, money: dict[str, Any]
):
    routes = money_routes(app)
    assert {r for _m, r, _k in routes} >= {
        "/api/v1/billing/invoices/<int:invoice_id>",
        "/billing/invoices/<int:invoice_id>/edit",
        "/billing/payments/<int:payment_id>/allocate",
    }
    api = ApiCaller(app.test_client(), token_for(session, admin))
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    token = csrf_token(client, "/billing/payments/new")
    before = snapshot(session, money)
    answers = []
    for method, rule, kind in routes:
        path = re.sub(r"<int:(invoice|payment)_id>", str(money[kind if kind == "payment" else "issued"]), rule)
        if path.startswith("/api/"):
            answer = api.call(method, path, json=TAMPERING)
        else:
            form = {k: v for k, v in TAMPERING.items() if isinstance(v, str)} | {"csrf_token": token}
            answer = client.open(path, method=method, data=form)
        assert answer.status_code < 500, (method, path, answer.status_code)
        answers.append((method, path, answer.status_code))
        assert snapshot(session, money) == before, (method, path, answer.status_code)
    api_refusals = [a for a in answers if a[1].startswith("/api/") and a[2] == 409]
    assert any("/issue" not in path for _m, path, _s in api_refusals), answers  # the edit itself says 409

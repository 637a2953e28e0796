"""Statement of account (对账单, BL-7): every movement in date order, and it reconciles with the ledger.

The statement's closing balance over all time must equal the ledger's open receivables
less the customer's unallocated balance (prepayments, unused credit notes), plus late
interest charged; a period's opening balance carries what came before. Built with the
real invoice and payment services (billing_helpers) where they serve.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, invoice_order, pay
from pypdf import PdfReader
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Customer, User
from core.testing import PASSWORD, login, make_order, make_user, token_for
from plugins.billing import dunning_documents, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingInterestCharge, BillingInvoice, BillingInvoiceDue

pytestmark = pytest.mark.req("BL-7")

TODAY = dt.datetime.now(COMPANY_TIMEZONE).date()


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any], admin: User) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "admin": admin,
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "outsider": make_user(session, "outsider@example.com", ["sales"], branch=seed["cd"]),
    }


def invoiced(session: Session, state: Any, people: dict[str, User], quantity: str, on: dt.date) -> BillingInvoice:
    """A confirmed order of C001 invoiced (ordered quantities) on ``on`` through the services."""
    order = make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": quantity}])
    confirm(session, state.registry, people["admin"], order)
    return invoice_order(session, people["finance"], order, invoice_date=on)


def credit_note(session: Session, invoice: BillingInvoice, amount: str, on: dt.date) -> BillingInvoice:
    """An issued credit note of ``amount`` on ``invoice`` (negative total; built directly)."""
    note = BillingInvoice(
        company_id=invoice.company_id,
        kind="credit_note",
        number=f"CN-S{on.isoformat()}",
        year=on.year,
        status="issued",
        basis="correction",
        customer_id=invoice.customer_id,
        order_id=invoice.order_id,
        credited_invoice_id=invoice.id,
        untaxed=-Decimal(amount),
        tax=Decimal("0"),
        total=-Decimal(amount),
        invoice_date=on,
        due_date=on,
    )
    note.dues = [BillingInvoiceDue(sequence=1, due_date=on, amount=-Decimal(amount))]
    session.add(note)
    session.commit()
    return note


@pytest.fixture
def history(session: Session, state: Any, people: dict[str, User]) -> dict[str, Any]:
    """Two invoices, a payment allocated, a prepayment left in the balance, a credit note, interest."""
    first = invoiced(session, state, people, "2", TODAY - dt.timedelta(days=40))
    second = invoiced(session, state, people, "3", TODAY - dt.timedelta(days=10))
    customer = session.get(Customer, first.customer_id)
    assert customer is not None
    paid = pay(
        session,
        people["finance"],
        customer.id,
        first.total,
        allocate_to=first,
        received_on=TODAY - dt.timedelta(days=20),
    )
    prepaid = pay(session, people["finance"], customer.id, "150.00", received_on=TODAY - dt.timedelta(days=2))
    note = credit_note(session, second, "20.00", TODAY - dt.timedelta(days=5))
    charge = BillingInterestCharge(
        invoice_id=second.id,
        customer_id=customer.id,
        period_start=TODAY - dt.timedelta(days=4),
        period_end=TODAY - dt.timedelta(days=1),
        daily_rate=Decimal("0.05"),
        amount=Decimal("3.21"),
        detail=[],
    )
    session.add(charge)
    session.commit()
    return {"first": first, "second": second, "customer": customer, "paid": paid, "prepaid": prepaid, "note": note}


def test_the_statement_reconciles_with_the_ledger(
    session: Session, people: dict[str, User], history: dict[str, Any]
) -> None:
    customer, first, second = history["customer"], history["first"], history["second"]
    result = dunning_documents.statement(session, people["finance"], customer.id, TODAY - dt.timedelta(days=60), TODAY)
    assert result.opening == Decimal("0.00")
    assert [e.kind for e in result.entries] == ["invoice", "payment", "invoice", "credit_note", "payment", "interest"]
    expected = first.total + second.total - first.total - Decimal("20.00") - Decimal("150.00") + Decimal("3.21")
    assert result.closing == expected
    assert result.entries[-1].balance == result.closing
    receivables = ledger.open_receivables(session, customer.id)
    balance = ledger.customer_balance(session, customer.id)
    assert receivables == second.total
    assert balance == Decimal("170.00")  # the prepayment and the unused credit note
    assert result.closing == receivables - balance + Decimal("3.21") == result.ledger_closing
    assert result.reconciles and result.current


def test_a_period_carries_its_opening_balance(
    session: Session, people: dict[str, User], history: dict[str, Any]
) -> None:
    customer, first = history["customer"], history["first"]
    whole = dunning_documents.statement(session, people["finance"], customer.id, TODAY - dt.timedelta(days=60), TODAY)
    start = TODAY - dt.timedelta(days=15)
    part = dunning_documents.statement(session, people["finance"], customer.id, start, TODAY)
    assert part.opening == first.total - first.total == Decimal("0.00")
    early = dunning_documents.statement(session, people["finance"], customer.id, TODAY - dt.timedelta(days=30), TODAY)
    assert early.opening == first.total
    assert part.closing == whole.closing == early.closing
    assert all(e.date >= start for e in part.entries)
    before = dunning_documents.statement(
        session, people["finance"], customer.id, TODAY - dt.timedelta(days=60), TODAY - dt.timedelta(days=30)
    )
    assert before.closing == first.total and not before.current


def test_statement_pdf_is_readable(
    session: Session, state: Any, people: dict[str, User], history: dict[str, Any]
) -> None:
    customer = history["customer"]
    result = dunning_documents.statement(session, people["finance"], customer.id, TODAY - dt.timedelta(days=60), TODAY)
    pdf = dunning_documents.render_statement_pdf(session, state.registry, result, "zh_CN")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "对账单" in text
    assert customer.name in text
    assert f"{result.closing:,.2f}" in text
    assert history["second"].number in text
    english = dunning_documents.render_statement_pdf(session, state.registry, result, "en")
    assert "Statement of account" in "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(english)).pages)


def test_statement_refusals(session: Session, people: dict[str, User], history: dict[str, Any]) -> None:
    customer = history["customer"]
    with pytest.raises(BillingError) as period:
        dunning_documents.statement(session, people["finance"], customer.id, TODAY, TODAY - dt.timedelta(days=1))
    assert period.value.status == 422
    with pytest.raises(Exception) as outside:
        dunning_documents.statement(session, people["outsider"], customer.id, TODAY - dt.timedelta(days=9), TODAY)
    assert getattr(outside.value, "status", None) == 404


def test_statement_screens_and_api(
    client: Any, session: Session, people: dict[str, User], history: dict[str, Any]
) -> None:
    customer = history["customer"]
    start = (TODAY - dt.timedelta(days=60)).isoformat()
    headers = {"Authorization": f"Bearer {token_for(session, people['finance'])}"}
    answer = client.get(f"/api/v1/billing/customers/{customer.id}/statement?start={start}", headers=headers)
    data = answer.get_json()
    assert answer.status_code == 200, data
    assert data["reconciles"] is True and data["closing"] == data["ledger_closing"]
    assert data["entries"][0]["kind"] == "invoice"
    api_pdf = client.get(
        f"/api/v1/billing/customers/{customer.id}/statement.pdf?start={start}&lang=en", headers=headers
    )
    assert api_pdf.status_code == 200 and api_pdf.data.startswith(b"%PDF")
    bad = client.get(
        f"/api/v1/billing/customers/{customer.id}/statement?start={TODAY.isoformat()}&end={start}", headers=headers
    )
    assert bad.status_code == 422
    outsider = {"Authorization": f"Bearer {token_for(session, people['outsider'])}"}
    assert client.get(f"/api/v1/billing/customers/{customer.id}/statement", headers=outsider).status_code == 404
    login(client, "finance@example.com", PASSWORD)
    page = client.get(f"/billing/customers/{customer.id}/statement?start={start}&end={TODAY.isoformat()}")
    assert page.status_code == 200
    assert history["second"].number in page.get_data(as_text=True)
    pdf = client.get(f"/billing/customers/{customer.id}/statement.pdf?start={start}&end={TODAY.isoformat()}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    client.get("/logout")
    login(client, "outsider@example.com", PASSWORD)
    assert client.get(f"/billing/customers/{customer.id}/statement.pdf").status_code == 404

"""Payments (BL-6), the customer balance (BL-7) and the payer-proof rule (BL-3).

Invoices for the allocation rules are built as issued rows directly, so these tests
depend only on payments and the ledger; one test goes end to end through
``invoices.issue_invoice`` (the balance applied on issuing).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, customer, invoice_order, pay
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attachments.service import add_attachment
from core.clock import company_now
from core.models import AuditLog, User
from core.services import NotFound
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.billing import payments, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue, BillingPayment

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
_numbers = iter(range(1, 10_000))


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def finance(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "finance@example.com", ["finance"])


def today() -> dt.date:
    return company_now().date()


def issued(
    session: Session,
    code: str,
    total: str,
    *,
    due_in: int = 30,
    invoice_date: dt.date | None = None,
    kind: str = "invoice",
    status: str = "issued",
) -> BillingInvoice:
    """An issued invoice (or credit note, or a draft) of ``total`` for customer ``code`` (no order), committed.

    Made whole in one INSERT: the database refuses any later change to an issued invoice.
    """
    cust = customer(session, code)
    day = invoice_date or today()
    prefix = "TCN" if kind == "credit_note" else "TINV"
    number = None if status == "draft" else f"{prefix}-{next(_numbers):05d}"
    amount = Decimal(total) if kind == "invoice" else -Decimal(total)
    invoice = BillingInvoice(
        company_id=cust_company(session),
        kind=kind,
        number=number,
        year=day.year,
        status=status,
        basis="ordered",
        customer_id=cust.id,
        untaxed=amount,
        tax=Decimal("0"),
        total=amount,
        settled=Decimal("0"),
        invoice_date=day,
        due_date=day + dt.timedelta(days=due_in),
        buyer_name=cust.name,
    )
    invoice.dues = [BillingInvoiceDue(sequence=1, due_date=day + dt.timedelta(days=due_in), amount=Decimal(total))]
    session.add(invoice)
    session.commit()
    return invoice


def cust_company(session: Session) -> int:
    from core.services.orders import default_company

    return default_company(session).id


def record(session: Session, actor: User | None, code: str, amount: str, **kw: Any) -> BillingPayment:
    cust = customer(session, code)
    values: dict[str, Any] = {
        "customer_id": cust.id,
        "method": "bank_transfer",
        "amount": amount,
        "received_on": today(),
        "payer_name": cust.name,
        **kw,
    }
    payment = payments.record_payment(session, actor, **values)
    session.commit()
    return payment


def snapshot(session: Session) -> tuple[Any, ...]:
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(BillingPayment)),
        session.scalar(select(func.count()).select_from(BillingAllocation)),
        tuple(session.execute(select(BillingPayment.id, BillingPayment.allocated).order_by(BillingPayment.id))),
        tuple(session.execute(select(BillingInvoice.id, BillingInvoice.settled).order_by(BillingInvoice.id))),
    )


# --------------------------------------------------------------------------- recording


@pytest.mark.req("BL-6")
def test_a_payment_is_numbered_converted_and_audited(session: Session, finance: User) -> None:
    payment = record(session, finance, "C001", "1000.50", reference="招行 001")
    assert payment.number == f"PAY{company_now().year}-000001"
    assert payment.amount_base == Decimal("1000.50") and payment.rate == Decimal("1")
    assert payment.unallocated == Decimal("1000.50")
    second = record(session, finance, "C001", "10")
    assert second.number.endswith("-000002")
    entry = session.scalar(
        select(AuditLog).where(AuditLog.entity == "billing_payment", AuditLog.entity_id == payment.id)
    )
    assert entry is not None and entry.action == "record" and entry.changes["amount_base"] == "1000.50"


@pytest.mark.req("BL-6")
def test_another_currency_needs_a_rate_and_is_converted_with_it(session: Session, finance: User) -> None:
    before = snapshot(session)
    with pytest.raises(BillingError) as refused:
        record(session, finance, "C001", "100", currency="USD")
    assert refused.value.code == "invalid" and refused.value.status == 422
    assert "USD" in refused.value.message and "rate" in refused.value.details
    session.rollback()
    assert snapshot(session) == before
    payment = record(session, finance, "C001", "100.00", currency="usd", rate="7.1234")
    assert payment.currency == "USD" and payment.rate == Decimal("7.1234")
    assert payment.amount_base == Decimal("712.34")


@pytest.mark.req("BL-6")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"method": "cheque"}, "method"),
        ({"currency": "US"}, "currency"),
        ({"currency": "EUR", "rate": "0"}, "rate"),
        ({"payer_name": "  "}, "payer_name"),
        ({"received_on": None}, "received_on"),
    ],
)
def test_bad_payments_are_refused_and_nothing_is_written(
    session: Session, finance: User, changes: dict[str, Any], field: str
) -> None:
    before = snapshot(session)
    with pytest.raises(BillingError) as refused:
        record(session, finance, "C001", changes.pop("amount", "100"), **changes)
    assert refused.value.status == 422 and field in refused.value.details
    session.rollback()
    assert snapshot(session) == before


@pytest.mark.req("BL-6")
def test_a_payment_received_tomorrow_is_refused(session: Session, finance: User) -> None:
    with pytest.raises(BillingError) as refused:
        record(session, finance, "C001", "100", received_on=today() + dt.timedelta(days=1))
    assert "received_on" in refused.value.details


@pytest.mark.req("BL-6")
def test_recording_needs_the_permission_and_reading_the_customer_in_scope(
    client: FlaskClient, session: Session, seed: dict[str, Any], finance: User
) -> None:
    sales = make_user(session, "sales@example.com", ["sales"])
    with pytest.raises(BillingError) as refused:
        record(session, sales, "C001", "100")
    assert refused.value.status == 403
    session.rollback()
    payment = record(session, finance, "C001", "100")
    # A branch-scoped manager of Chengdu does not see the Chongqing customer's payment: 404, as if unknown.
    customer(session, "C002").branch_id = seed["cd"].id
    customer(session, "C001").branch_id = seed["hq"].id
    session.commit()
    manager = make_user(session, "sm-cd@example.com", ["sales_manager"], branch=seed["cd"])
    with pytest.raises(NotFound):
        scope.get_payment(session, manager, payment.id)
    api = ApiCaller(client, token_for(session, manager))
    assert api.get(f"/api/v1/billing/payments/{payment.id}").status_code == 404
    assert api.get("/api/v1/billing/payments").get_json()["items"] == []
    assert api.post(f"/api/v1/billing/payments/{payment.id}/allocations", json={"auto": True}).status_code == 404


# --------------------------------------------------------------------------- allocation


@pytest.mark.req("BL-6")
def test_one_payment_pays_several_invoices_partly_and_fully(session: Session, finance: User) -> None:
    first, second = issued(session, "C001", "300.00"), issued(session, "C001", "500.00")
    payment = record(session, finance, "C001", "600.00")
    made = payments.allocate_payment(session, finance, payment.id, [(first.id, "300"), (second.id, Decimal("200.00"))])
    session.commit()
    session.expire_all()
    assert [a.amount for a in made] == [Decimal("300.00"), Decimal("200.00")]
    assert first.open_amount == 0 and second.open_amount == Decimal("300.00")
    assert payment.allocated == Decimal("500.00") and payment.unallocated == Decimal("100.00")
    assert all(a.effective_on == payment.received_on for a in made)
    # The rest goes to the partly paid invoice later.
    payments.allocate_payment(session, finance, payment.id, [(second.id, "100")])
    session.commit()
    session.expire_all()
    assert second.open_amount == Decimal("200.00") and payment.unallocated == 0


@pytest.mark.req("BL-6")
def test_an_allocation_above_the_open_amount_is_refused_with_the_numbers(session: Session, finance: User) -> None:
    first, second = issued(session, "C001", "300.00"), issued(session, "C001", "500.00")
    payment = record(session, finance, "C001", "2000.00")
    before = snapshot(session)
    with pytest.raises(BillingError) as refused:
        payments.allocate_payment(session, finance, payment.id, [(first.id, "100"), (second.id, "500.01")])
    assert refused.value.code == "above_open" and refused.value.status == 422
    assert (
        "500.01" in refused.value.message
        and "500.00" in refused.value.message
        and second.number in refused.value.message
    )
    session.rollback()
    assert snapshot(session) == before  # all or nothing: the valid first row was not made either


@pytest.mark.req("BL-6")
def test_allocations_above_what_is_left_of_the_payment_are_refused(session: Session, finance: User) -> None:
    first, second = issued(session, "C001", "300.00"), issued(session, "C001", "500.00")
    payment = record(session, finance, "C001", "600.00")
    before = snapshot(session)
    with pytest.raises(BillingError) as refused:
        payments.allocate_payment(session, finance, payment.id, [(first.id, "300"), (second.id, "300.01")])
    assert refused.value.code == "above_unallocated"
    assert "600.01" in refused.value.message and "600.00" in refused.value.message
    session.rollback()
    assert snapshot(session) == before


@pytest.mark.req("BL-6")
def test_other_customers_invoices_drafts_and_bad_amounts_are_refused(session: Session, finance: User) -> None:
    mine, theirs = issued(session, "C001", "300.00"), issued(session, "C002", "300.00")
    draft = issued(session, "C001", "100.00", status="draft")
    payment = record(session, finance, "C001", "600.00")
    before = snapshot(session)
    cases = [
        ([(theirs.id, "10")], "invalid"),
        ([(draft.id, "10")], "invoice_not_open"),
        ([(mine.id, "0")], "invalid"),
        ([(mine.id, "10"), (mine.id, "10")], "invalid"),
        ([], "invalid"),
    ]
    for rows, code in cases:
        with pytest.raises(BillingError) as refused:
            payments.allocate_payment(session, finance, payment.id, rows)
        assert refused.value.code == code, rows
        session.rollback()
    with pytest.raises(NotFound):
        payments.allocate_payment(session, finance, payment.id, [(999_999, "1")])
    session.rollback()
    assert snapshot(session) == before


def _run(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool), "a thread hung"
    return errors


@pytest.mark.req("BL-6")
@pytest.mark.parametrize("threads", [2, 8])
def test_concurrent_allocations_never_take_more_than_the_payment(
    threads: int, app: Flask, session: Session, state: Any, finance: User
) -> None:
    invoices = [issued(session, "C001", "300.00").id for _ in range(threads)]
    payment = record(session, finance, "C001", "1000.00")

    def allocate(i: int) -> None:
        with app.app_context(), state.sessions() as own:
            actor = own.get(User, finance.id)
            try:
                payments.allocate_payment(own, actor, payment.id, [(invoices[i], "300")])
                own.commit()
            except BillingError as exc:
                own.rollback()
                assert exc.code in ("above_unallocated", "above_available")

    assert _run(threads, allocate) == []
    session.expire_all()
    stored = session.get(BillingPayment, payment.id)
    assert stored is not None
    total = session.scalar(select(func.sum(BillingAllocation.amount)).where(BillingAllocation.payment_id == payment.id))
    assert stored.allocated == Decimal(total or 0) <= Decimal("1000.00")
    assert stored.allocated == Decimal(300 * min(threads, 3))


# --------------------------------------------------------------------------- balance


@pytest.mark.req("BL-7")
def test_an_overpayment_stays_in_the_balance_and_pays_the_next_invoice(session: Session, finance: User) -> None:
    from plugins.billing import ledger

    first = issued(session, "C001", "300.00")
    payment = record(session, finance, "C001", "500.00")
    payments.allocate_payment(session, finance, payment.id, [(first.id, "300")])
    session.commit()
    cust = customer(session, "C001")
    assert ledger.customer_balance(session, cust.id) == Decimal("200.00")
    later = issued(session, "C001", "250.00")
    made = payments.apply_balance(session, finance, later)
    session.commit()
    session.expire_all()
    assert [a.amount for a in made] == [Decimal("200.00")]
    assert later.open_amount == Decimal("50.00")
    assert ledger.customer_balance(session, cust.id) == 0


@pytest.mark.req("BL-7")
def test_the_balance_uses_credit_notes_and_oldest_payments_first(session: Session, finance: User) -> None:
    older = record(session, finance, "C001", "100.00", received_on=today() - dt.timedelta(days=5))
    newer = record(session, finance, "C001", "100.00")
    note = issued(session, "C001", "40.00", kind="credit_note")
    invoice = issued(session, "C001", "150.00")
    made = payments.apply_balance(session, finance, invoice)
    session.commit()
    session.expire_all()
    assert [(a.credit_note_id, a.payment_id, a.amount) for a in made] == [
        (note.id, None, Decimal("40.00")),
        (None, older.id, Decimal("100.00")),
        (None, newer.id, Decimal("10.00")),
    ]
    assert invoice.open_amount == 0 and newer.unallocated == Decimal("90.00")


@pytest.mark.req("BL-7")
def test_issuing_an_invoice_applies_a_prepayment_end_to_end(
    session: Session, state: Any, finance: User, admin: User
) -> None:
    cust = customer(session, "C001")
    prepaid = pay(session, finance, cust.id, "1000.00")
    order = make_order(session, admin, lines=[{"product": "P-300", "quantity": "10", "unit_price": "50.00"}])
    confirm(session, state.registry, admin, order)
    invoice = invoice_order(session, finance, order)
    session.expire_all()
    assert invoice.status == "issued" and invoice.number
    applied = min(Decimal("1000.00"), invoice.total)
    assert invoice.settled == applied
    assert prepaid.unallocated == Decimal("1000.00") - applied


# --------------------------------------------------------------------------- payer proof


@pytest.mark.req("BL-3")
def test_a_third_party_payment_is_allocated_only_after_the_customers_proof(
    session: Session, finance: User, admin: User
) -> None:
    invoice = issued(session, "C001", "300.00")
    payment = record(session, finance, "C001", "300.00", payer_name="重庆某某投资有限公司")
    assert payments.needs_proof(session, payment)
    before = snapshot(session)
    with pytest.raises(BillingError) as refused:
        payments.allocate_payment(session, finance, payment.id, [(invoice.id, "300")])
    assert refused.value.code == "proof_required" and "重庆某某投资有限公司" in refused.value.message
    session.rollback()
    assert snapshot(session) == before
    assert payments.auto_allocate(session, finance, payment) == []  # not automatically either
    assert payments.apply_balance(session, finance, invoice) == []
    session.rollback()
    # A file of another customer's order is no proof.
    other = make_order(session, admin, customer="C002")
    foreign = add_attachment(session, admin, other.id, filename="proof.pdf", data=PDF)
    session.commit()
    with pytest.raises(BillingError):
        payments.attach_proof(session, finance, payment.id, foreign.id)
    session.rollback()
    order = make_order(session, admin)
    payments.upload_proof(session, finance, payment.id, order.id, filename="代付证明.pdf", data=PDF)
    session.commit()
    assert not payments.needs_proof(session, payment)
    payments.allocate_payment(session, finance, payment.id, [(invoice.id, "300")])
    session.commit()
    session.expire_all()
    assert invoice.open_amount == 0


@pytest.mark.req("BL-3")
def test_the_payer_name_compares_trimmed_and_case_insensitive(session: Session, finance: User) -> None:
    invoice = issued(session, "C002", "100.00")
    cust = customer(session, "C002")
    cust.name = "Chengdu Rongjin Trading Co."
    session.commit()
    payment = record(session, finance, "C002", "100.00", payer_name="  CHENGDU RONGJIN trading co. ")
    assert not payments.needs_proof(session, payment)
    payments.allocate_payment(session, finance, payment.id, [(invoice.id, "100")])


# --------------------------------------------------------------------------- auto allocation


@pytest.mark.req("BL-6")
def test_auto_allocation_serves_the_named_invoice_then_the_oldest_due(session: Session, finance: User) -> None:
    late = issued(session, "C001", "100.00", due_in=5)
    early = issued(session, "C001", "100.00", due_in=1)
    named = issued(session, "C001", "100.00", due_in=60)
    payment = record(session, finance, "C001", "150.00", reference=f"付 {named.number}")
    made = payments.auto_allocate(session, finance, payment)
    session.commit()
    assert [(a.invoice_id, a.amount) for a in made] == [(named.id, Decimal("100.00")), (early.id, Decimal("50.00"))]
    session.expire_all()
    assert late.open_amount == Decimal("100.00")


# --------------------------------------------------------------------------- API and screens


@pytest.mark.req("BL-6")
def test_api_records_allocates_and_refuses(client: FlaskClient, session: Session, finance: User) -> None:
    api = ApiCaller(client, token_for(session, finance))
    invoice = issued(session, "C001", "300.00")
    cust = customer(session, "C001")
    body = {
        "customer_id": cust.id,
        "method": "bank_transfer",
        "amount": "500.00",
        "received_on": today().isoformat(),
        "payer_name": cust.name,
    }
    refused = api.post("/api/v1/billing/payments", json={**body, "currency": "USD"})
    assert refused.status_code == 422 and "rate" in refused.get_json()["error"]["details"]
    created = api.post("/api/v1/billing/payments", json=body)
    assert created.status_code == 201, created.get_json()
    payment = created.get_json()
    over = api.post(
        f"/api/v1/billing/payments/{payment['id']}/allocations",
        json={"allocations": [{"invoice_id": invoice.id, "amount": "300.01"}]},
    )
    assert over.status_code == 422 and over.get_json()["error"]["code"] == "above_open"
    done = api.post(
        f"/api/v1/billing/payments/{payment['id']}/allocations",
        json={"allocations": [{"invoice_id": invoice.id, "amount": "300"}]},
    )
    assert done.status_code == 200
    assert done.get_json()["unallocated"] == "200.00" and done.get_json()["allocations"][0]["amount"] == "300.00"
    listed = api.get("/api/v1/billing/payments?unallocated=true").get_json()
    assert [p["number"] for p in listed["items"]] == [payment["number"]]
    assert api.get(f"/api/v1/billing/payments/{payment['id']}").status_code == 200
    balance = api.get(f"/api/v1/billing/balances/{cust.id}").get_json()
    assert balance["balance"] == "200.00"
    assert api.get("/api/v1/billing/payments/999999").status_code == 404


@pytest.mark.req("BL-6")
def test_api_needs_the_permissions(client: FlaskClient, session: Session, seed: dict[str, Any]) -> None:
    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    api = ApiCaller(client, token_for(session, clerk))
    assert api.get("/api/v1/billing/payments").status_code == 403
    assert api.get("/api/v1/billing/payment-providers").status_code == 403


@pytest.mark.req("BL-6")
def test_finance_records_and_allocates_a_payment_on_the_screens(
    client: FlaskClient, session: Session, finance: User
) -> None:
    invoice = issued(session, "C001", "300.00")
    cust = customer(session, "C001")
    login(client, "finance@example.com", PASSWORD)
    form = client.get("/billing/payments/new")
    assert form.status_code == 200 and 'id="rate-field"' in form.get_data(as_text=True)
    token = csrf_token(client, "/billing/payments/new")
    refused = client.post(
        "/billing/payments/new",
        data={
            "csrf_token": token,
            "customer": cust.id,
            "method": "bank_transfer",
            "amount": "100",
            "currency": "EUR",
            "received_on": today().isoformat(),
        },
    )
    assert refused.status_code == 200 and "EUR" in refused.get_data(as_text=True)
    recorded = client.post(
        "/billing/payments/new",
        data={
            "csrf_token": token,
            "customer": cust.id,
            "method": "bank_transfer",
            "amount": "400",
            "currency": "CNY",
            "received_on": today().isoformat(),
            "payer_name": "",
        },
    )
    assert recorded.status_code == 302
    session.rollback()
    payment = session.scalars(select(BillingPayment)).one()
    assert payment.payer_name == cust.name
    page = client.get(f"/billing/payments/{payment.id}")
    assert invoice.number in page.get_data(as_text=True) and "data-confirm" in page.get_data(as_text=True)
    client.post(f"/billing/payments/{payment.id}/allocate", data={"csrf_token": token, f"amount-{invoice.id}": "300"})
    session.rollback()
    assert invoice.open_amount == 0 and payment.unallocated == Decimal("100.00")
    balance = client.get(f"/billing/customers/{cust.id}/balance")
    assert balance.status_code == 200 and "100.00" in balance.get_data(as_text=True)
    listing = client.get("/billing/payments?unallocated=1")
    assert payment.number in listing.get_data(as_text=True)

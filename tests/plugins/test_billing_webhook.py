"""The signed online-payment webhook (BL-6): records and allocates automatically, idempotently."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import customer
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import Notification, User
from core.services.orders import default_company
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_user, token_for
from plugins.billing import webhook
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingInvoiceDue, BillingPayment

URL = "/api/v1/billing/webhooks/{code}/payments"


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def finance(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "finance@example.com", ["finance"])


@pytest.fixture
def secret(session: Session, finance: User) -> str:
    _provider, value = webhook.create_provider(session, finance, "wechat", "微信支付")
    session.commit()
    return value


def issued(session: Session, code: str, total: str, number: str) -> BillingInvoice:
    cust = customer(session, code)
    day = company_now().date()
    invoice = BillingInvoice(
        company_id=default_company(session).id,
        kind="invoice",
        number=number,
        year=day.year,
        status="issued",
        customer_id=cust.id,
        untaxed=Decimal(total),
        total=Decimal(total),
        invoice_date=day,
        due_date=day + dt.timedelta(days=30),
        dues=[BillingInvoiceDue(sequence=1, due_date=day + dt.timedelta(days=30), amount=Decimal(total))],
    )
    session.add(invoice)
    session.commit()
    return invoice


def event(session: Session, **changes: Any) -> dict[str, Any]:
    body = {
        "event_id": "evt-1",
        "customer": "C001",
        "amount": "300.00",
        "currency": "CNY",
        "paid_at": company_now().date().isoformat(),
        "payer_name": customer(session, "C001").name,
        "reference": "WX-0001",
    }
    body.update(changes)
    return body


def deliver(
    client: FlaskClient,
    secret: str,
    body: dict[str, Any],
    *,
    code: str = "wechat",
    at: int | None = None,
    header: Any = ...,
) -> Any:
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = webhook.sign(secret, int(time.time()) if at is None else at, raw) if header is ... else header
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[webhook.SIGNATURE_HEADER] = signature
    return client.post(URL.format(code=code), data=raw, headers=headers)


def count(session: Session) -> tuple[int, int]:
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(BillingPayment)) or 0,
        session.scalar(select(func.count()).select_from(BillingAllocation)) or 0,
    )


@pytest.mark.req("BL-6")
def test_a_signed_payment_is_recorded_and_allocated_automatically(
    client: FlaskClient, session: Session, secret: str
) -> None:
    other = issued(session, "C001", "100.00", "INV-A")
    named = issued(session, "C001", "300.00", "INV-B")
    answer = deliver(client, secret, event(session, amount="350.00", invoice="INV-B"))
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()
    assert data["duplicate"] is False and data["unallocated"] == "0.00"
    assert [(a["invoice_number"], a["amount"]) for a in data["allocations"]] == [
        ("INV-B", "300.00"),
        ("INV-A", "50.00"),
    ]
    session.rollback()
    payment = session.scalars(select(BillingPayment)).one()
    assert payment.method == "online" and payment.provider == "wechat" and payment.event_id == "evt-1"
    assert payment.recorded_by_id is None and payment.number == data["payment_number"]
    assert session.get(BillingInvoice, named.id).open_amount == 0  # type: ignore[union-attr]
    assert session.get(BillingInvoice, other.id).open_amount == Decimal("50.00")  # type: ignore[union-attr]


@pytest.mark.req("BL-6")
@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("v1=abc", 401), ("t=1,v1=" + "0" * 64, 403)],
    ids=["missing", "malformed", "wrong"],
)
def test_a_bad_signature_records_nothing(
    client: FlaskClient, session: Session, secret: str, header: str | None, status: int
) -> None:
    issued(session, "C001", "300.00", "INV-A")
    before = count(session)
    answer = deliver(client, secret, event(session), header=header)
    assert answer.status_code == status
    assert answer.get_json()["error"]["code"] in ("signature_missing", "signature_malformed", "bad_signature")
    assert count(session) == before


@pytest.mark.req("BL-6")
def test_a_body_signed_with_another_secret_or_changed_after_signing_is_refused(
    client: FlaskClient, session: Session, secret: str
) -> None:
    body = event(session)
    assert deliver(client, "0" * 64, body).status_code == 403
    raw = json.dumps(body).encode()
    signature = webhook.sign(secret, int(time.time()), raw)
    tampered = json.dumps({**body, "amount": "30000.00"}).encode()
    answer = client.post(
        URL.format(code="wechat"),
        data=tampered,
        headers={"Content-Type": "application/json", webhook.SIGNATURE_HEADER: signature},
    )
    assert answer.status_code == 403
    assert count(session) == (0, 0)


@pytest.mark.req("BL-6")
def test_an_old_signature_is_refused_as_a_replay(client: FlaskClient, session: Session, secret: str) -> None:
    answer = deliver(client, secret, event(session), at=int(time.time()) - 301)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "replayed_event"
    assert count(session) == (0, 0)
    assert deliver(client, secret, event(session), at=int(time.time()) - 200).status_code == 201


@pytest.mark.req("BL-6")
def test_the_same_event_twice_is_one_payment_and_other_content_is_a_conflict(
    client: FlaskClient, session: Session, secret: str
) -> None:
    issued(session, "C001", "300.00", "INV-A")
    first = deliver(client, secret, event(session))
    again = deliver(client, secret, event(session))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["payment_number"] == first.get_json()["payment_number"]
    assert count(session) == (1, 1)
    changed = deliver(client, secret, event(session, amount="299.00"))
    assert changed.status_code == 409 and changed.get_json()["error"]["code"] == "event_conflict"
    assert count(session) == (1, 1)


@pytest.mark.req("BL-6")
def test_ten_concurrent_deliveries_of_one_event_record_one_payment(app: Flask, session: Session, secret: str) -> None:
    issued(session, "C001", "300.00", "INV-A")
    body = event(session)
    threads = 10
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            own = app.test_client()
            barrier.wait(timeout=30)
            statuses.append(deliver(own, secret, body).status_code)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    pool = [threading.Thread(target=post) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert errors == [] and not any(t.is_alive() for t in pool)
    assert sorted(statuses) == [200] * (threads - 1) + [201]
    assert count(session) == (1, 1)
    session.rollback()
    assert session.scalars(select(BillingPayment)).one().allocated == Decimal("300.00")


@pytest.mark.req("BL-6")
def test_an_unknown_or_deactivated_provider_is_not_found(
    client: FlaskClient, session: Session, secret: str, finance: User
) -> None:
    assert deliver(client, secret, event(session), code="alipay").status_code == 404
    provider = webhook.providers(session)[0]
    webhook.deactivate_provider(session, finance, provider.id)
    session.commit()
    assert deliver(client, secret, event(session)).status_code == 404
    assert count(session) == (0, 0)


@pytest.mark.req("BL-6")
def test_bad_event_content_is_refused_with_details(client: FlaskClient, session: Session, secret: str) -> None:
    unknown = deliver(client, secret, event(session, customer="C999"))
    assert unknown.status_code == 422 and "customer" in unknown.get_json()["error"]["details"]
    foreign = deliver(client, secret, event(session, event_id="evt-2", currency="USD"))
    assert foreign.status_code == 422 and "rate" in foreign.get_json()["error"]["details"]
    assert count(session) == (0, 0)
    converted = deliver(client, secret, event(session, event_id="evt-3", currency="USD", rate="7.2", amount="10"))
    assert converted.status_code == 201 and converted.get_json()["amount_base"] == "72.00"


@pytest.mark.req("BL-3")
@pytest.mark.req("BL-6")
def test_a_third_party_online_payment_waits_in_the_balance_and_finance_is_told(
    client: FlaskClient, session: Session, secret: str, finance: User
) -> None:
    issued(session, "C001", "300.00", "INV-A")
    answer = deliver(client, secret, event(session, payer_name="某某代付公司"))
    assert answer.status_code == 201
    assert answer.get_json()["allocations"] == [] and answer.get_json()["unallocated"] == "300.00"
    session.rollback()
    notice = session.scalars(select(Notification).where(Notification.user_id == finance.id)).all()
    assert len(notice) == 1 and answer.get_json()["payment_number"] in notice[0].subject


@pytest.mark.req("BL-6")
def test_providers_are_managed_with_the_secret_shown_once(client: FlaskClient, session: Session, finance: User) -> None:
    sales = make_user(session, "sales@example.com", ["sales"])
    api = ApiCaller(client, token_for(session, finance))
    created = api.post("/api/v1/billing/payment-providers", json={"code": "alipay", "name": "支付宝"})
    assert created.status_code == 201 and len(created.get_json()["secret"]) == 64
    assert api.post("/api/v1/billing/payment-providers", json={"code": "alipay", "name": "x"}).status_code == 409
    assert api.post("/api/v1/billing/payment-providers", json={"code": "A B", "name": "x"}).status_code == 422
    listed = api.get("/api/v1/billing/payment-providers").get_json()["items"]
    assert [p["code"] for p in listed] == ["alipay"] and "secret" not in listed[0]
    secret = created.get_json()["secret"]
    assert deliver(client, secret, event(session), code="alipay").status_code == 201
    session.rollback()
    assert ApiCaller(client, token_for(session, sales)).get("/api/v1/billing/payment-providers").status_code == 403


@pytest.mark.req("BL-6")
def test_the_provider_screen_shows_a_new_secret_once(client: FlaskClient, session: Session, finance: User) -> None:
    login(client, "finance@example.com", PASSWORD)
    token = csrf_token(client, "/billing/payment-providers")
    shown = client.post("/billing/payment-providers", data={"csrf_token": token, "code": "unionpay", "name": "银联"})
    assert shown.status_code == 200
    session.rollback()
    provider = webhook.providers(session)[0]
    assert provider.secret in shown.get_data(as_text=True)
    listing = client.get("/billing/payment-providers").get_data(as_text=True)
    assert "unionpay" in listing and provider.secret not in listing


def rows_written(session: Session) -> dict[str, int]:
    """Counts of everything a webhook delivery writes: payments, allocations, notices, audit."""
    from core.models import AuditLog, OutboxMessage

    session.rollback()
    return {
        model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (BillingPayment, BillingAllocation, Notification, OutboxMessage, AuditLog)
    }


@pytest.mark.req("BL-6")
def test_a_delivery_that_lost_a_race_runs_again_and_writes_and_notifies_once(
    app: Flask, client: FlaskClient, session: Session, secret: str
) -> None:
    """A serialization failure (or SQLite's busy database) injected at the allocation's INSERT:
    the request runs again and the payment, its allocation and its notices exist once — the
    provider's own retry of the same event afterwards adds nothing."""
    import sqlite3

    import psycopg.errors
    from sqlalchemy import event as sa_event

    from core.web import ordo

    issued(session, "C001", "300.00", "INV-A")
    issued(session, "C001", "300.00", "INV-B")
    start = rows_written(session)
    assert deliver(client, secret, event(session, event_id="evt-control", invoice="INV-A")).status_code == 201
    control = rows_written(session)
    written_once = {name: control[name] - start[name] for name in control}
    assert written_once["BillingPayment"] == written_once["BillingAllocation"] == 1

    with app.app_context():
        engine = ordo().engine
    failures: list[str] = []

    def fail_first_allocation(_cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO BILLING_ALLOCATION") and not failures:
            failures.append(statement)
            if engine.dialect.name == "postgresql":
                raise psycopg.errors.SerializationFailure("could not serialize access due to concurrent update")
            raise sqlite3.OperationalError("database is locked")

    sa_event.listen(engine, "do_execute", fail_first_allocation)
    try:
        answer = deliver(client, secret, event(session, event_id="evt-raced", invoice="INV-B"))
    finally:
        sa_event.remove(engine, "do_execute", fail_first_allocation)
    assert failures, "the allocation INSERT was never reached: this test proves nothing"
    assert answer.status_code == 201, answer.get_json()
    after = rows_written(session)
    assert {name: after[name] - control[name] for name in after} == written_once

    again = deliver(client, secret, event(session, event_id="evt-raced", invoice="INV-B"))
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert rows_written(session) == after

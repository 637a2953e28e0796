"""The credit gate's arithmetic and rules (BL-5, RV-7): exposure, the four hold reasons,
exceptions granted by the named roles (one person per role, reason, expiry, revocation),
the weekly report of passes under exception, list badges, the API and the screens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Customer, Notification, Order, StepSetting, User
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import PASSWORD, login, make_order, make_user, token_for
from core.workflow import Workflow
from plugins.billing import credit, flow, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAccount, BillingCreditException, BillingExceptionUse


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


def account(session: Session, code: str = "C001", **values: Any) -> BillingAccount:
    """Give customer ``code`` a billing account with ``values`` (created directly) and commit."""
    customer = session.scalars(select(Customer).where(Customer.code == code)).one()
    row = session.scalar(select(BillingAccount).where(BillingAccount.customer_id == customer.id))
    if row is None:
        row = BillingAccount(customer_id=customer.id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.commit()
    return row


def confirmed(session: Session, state: Any, actor: User, **payload: Any) -> Order:
    """A confirmed order (the finance check switched off, so no other step is involved)."""
    session.merge(StepSetting(key=flow.FINANCE_CHECK, enabled=False))
    order = make_order(session, actor, **payload)
    take_action(session, state.registry, actor, order, "submit")
    take_action(session, state.registry, actor, order, "confirm")
    session.commit()
    return order


@pytest.fixture
def gm(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])


@pytest.fixture
def vp(session: Session, seed: dict[str, Any]) -> User:
    from core.models import Role

    if session.scalar(select(Role).where(Role.code == "vice_president")) is None:
        session.add(Role(code="vice_president", name="Vice president", data_scope="all"))
        session.commit()
    return make_user(session, "vp@example.com", ["vice_president", "general_manager"], branch=seed["hq"])


# --------------------------------------------------------------------------- exposure


@pytest.mark.req("BL-5")
def test_exposure_adds_open_receivables_uninvoiced_confirmed_orders_and_this_order(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    from billing_helpers import invoice_order, pay

    c001 = seed["local"].id
    invoiced = confirmed(session, state, admin, lines=[{"product": "P-100", "quantity": "2", "unit_price": "1000"}])
    other = confirmed(session, state, admin, lines=[{"product": "P-300", "quantity": "10", "unit_price": "10"}])
    invoice = invoice_order(session, admin, invoiced)
    pay(session, admin, c001, "500.00", allocate_to=invoice)
    draft = make_order(session, admin, lines=[{"product": "P-300", "quantity": "4", "unit_price": "25"}])
    make_order(session, admin, customer="C002")  # another customer's order counts nowhere here

    exp = credit.exposure(session, c001, draft)
    assert exp.open_receivables == ledger.open_receivables(session, c001) == invoice.total - Decimal("500.00")
    assert exp.uninvoiced == other.total  # the invoiced order has nothing left to invoice
    assert exp.this_order == draft.total
    assert exp.total == exp.open_receivables + other.total + draft.total
    assert exp.limit is None and exp.available is None
    # A confirmed order is counted once; a copy's total always counts.
    assert credit.exposure(session, c001, other).this_order == Decimal("0.00")
    assert credit.exposure(session, c001, other, "copy").this_order == other.total

    account(session, credit_limit=exp.total)
    assert credit.hold_reasons(session, c001, draft) == []  # at the limit is not over it
    account(session, credit_limit=exp.total - Decimal("0.01"))
    limit = exp.total - Decimal("0.01")
    assert credit.hold_reasons(session, c001, draft) == [
        f"Customer {seed['local'].name} is over the credit limit: exposure {credit.money(exp.total)} CNY "
        f"against a limit of {credit.money(limit)} CNY."
    ]
    assert credit.exposure(session, c001, draft).available == Decimal("-0.01")


@pytest.mark.req("BL-5")
def test_a_new_account_uses_the_default_limit_setting(session: Session, admin: User, seed: dict[str, Any]) -> None:
    order = make_order(session, admin)
    assert credit.exposure(session, seed["local"].id, order).limit is None
    set_setting(session, flow.DEFAULT_CREDIT_LIMIT, 100.0)
    session.commit()
    assert credit.exposure(session, seed["local"].id, order).limit == Decimal("100.00")
    assert credit.hold_reasons(session, seed["local"].id, order)


@pytest.mark.req("BL-5")
def test_amounts_overdue_past_the_grace_period_hold_the_customer(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    from billing_helpers import invoice_order

    c001 = seed["local"].id
    order = confirmed(session, state, admin)
    old = dt.date.today() - dt.timedelta(days=200)
    invoice = invoice_order(session, admin, order, invoice_date=old)
    reasons = credit.hold_reasons(session, c001)
    assert reasons == [
        f"Customer {seed['local'].name} has {credit.money(invoice.total)} CNY overdue by more than 5 days."
    ]
    set_setting(session, flow.GRACE_DAYS, 400)
    session.commit()
    assert credit.hold_reasons(session, c001) == []


@pytest.mark.req("BL-5")
def test_a_missing_required_prepayment_holds_release_and_shipment_only(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    from billing_helpers import pay

    from plugins.billing import terms

    c001 = seed["local"].id
    account(session, prepayment_ratio=Decimal("30"))
    order = confirmed(session, state, admin)
    required = terms.required_prepayment(session, order)
    assert required == (order.total * Decimal("0.3")).quantize(Decimal("0.01"))
    assert credit.gate_reasons(session, order, "confirm") == []
    (reason,) = credit.gate_reasons(session, order, "release")
    assert reason == (
        f"The required prepayment of {credit.money(required)} CNY is not covered: 0.00 CNY paid on the order or "
        "in the customer's balance."
    )
    assert credit.gate_reasons(session, order, "shipment") == [reason]
    pay(session, admin, c001, required)  # sits in the customer's balance (BL-7)
    assert credit.gate_reasons(session, order, "release") == []


# --------------------------------------------------------------------------- exceptions


@pytest.mark.req("RV-7")
def test_each_named_role_grants_once_by_a_different_person_with_a_reason(
    session: Session, admin: User, gm: User, vp: User, seed: dict[str, Any]
) -> None:
    order = make_order(session, admin)
    with pytest.raises(BillingError) as exc:
        credit.grant_exception(session, gm, order.id, "nothing to except")
    assert (exc.value.status, exc.value.code) == (409, "no_hold")
    account(session, blocked=True)
    set_setting(session, flow.EXCEPTION_ROLES, "vice_president,general_manager")
    session.commit()

    with pytest.raises(BillingError) as exc:
        credit.grant_exception(session, gm, order.id, "   ")
    assert exc.value.status == 422 and exc.value.message == "Give the reason for the credit exception."
    auditor = make_user(session, "auditor@example.com", ["auditor"])  # sees the order, may not grant
    with pytest.raises(BillingError) as exc:
        credit.grant_exception(session, auditor, order.id, "please")
    assert exc.value.status == 403
    assert session.scalars(select(BillingCreditException)).all() == []

    first = credit.grant_exception(session, vp, order.id, "Long-standing customer")
    session.commit()
    assert first.role_code == "vice_president"
    assert first.hold_reasons == [f"Customer {seed['local'].name} is blocked by finance."]
    assert not credit.valid_exception(session, order.id)
    with pytest.raises(BillingError) as exc:
        credit.grant_exception(session, vp, order.id, "again, as general manager")
    assert exc.value.code == "already_granted"
    second = credit.grant_exception(session, gm, order.id, "Agreed")
    session.commit()
    assert second.role_code == "general_manager"
    assert credit.valid_exception(session, order.id)
    assert credit.gate_reasons(session, order, "confirm") == []
    days = (second.expires_at - second.granted_at).days
    assert days == 7

    with pytest.raises(BillingError) as exc:
        credit.grant_exception(session, gm, order.id, "more")
    assert exc.value.code == "already_valid"

    credit.revoke_exception(session, gm, first.id)
    session.commit()
    assert not credit.valid_exception(session, order.id)
    assert credit.gate_reasons(session, order, "confirm")
    with pytest.raises(BillingError) as exc:
        credit.revoke_exception(session, gm, first.id)
    assert exc.value.status == 409


@pytest.mark.req("RV-7")
def test_an_exception_expires_after_the_set_days(session: Session, admin: User, gm: User) -> None:
    set_setting(session, flow.EXCEPTION_DAYS, 2)
    account(session, blocked=True)
    order = make_order(session, admin)
    grant = credit.grant_exception(session, gm, order.id, "two days")
    session.commit()
    assert credit.valid_exception(session, order.id)
    later = grant.granted_at + dt.timedelta(days=2, seconds=1)
    assert not credit.valid_exception(session, order.id, at=later)
    assert credit.valid_exception(session, order.id, at=later - dt.timedelta(seconds=2))


# --------------------------------------------------------------------------- weekly report


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
def test_the_weekly_report_lists_passes_under_exception_once(
    session: Session, state: Any, admin: User, gm: User
) -> None:
    session.merge(StepSetting(key=flow.FINANCE_CHECK, enabled=False))
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    assert credit.exception_report(session, dt.datetime.now(dt.UTC)) == 0
    assert session.scalars(select(Notification).where(Notification.template == "billing.exception_report")).all() == []

    account(session, blocked=True)
    credit.grant_exception(session, gm, order.id, "urgent")
    take_action(session, state.registry, admin, order, "confirm")
    credit.shipment_reasons(session, order, "SHP-1")
    credit.shipment_reasons(session, order, "SHP-1")  # the same shipment asked twice counts once
    session.commit()
    assert [(u.path, u.reference) for u in session.scalars(select(BillingExceptionUse))] == [
        ("confirm", ""),
        ("shipment", "SHP-1"),
    ]

    assert credit.exception_report(session, dt.datetime.now(dt.UTC)) == 2
    session.commit()
    (notice,) = session.scalars(
        select(Notification).where(Notification.template == "billing.exception_report", Notification.user_id == gm.id)
    )
    assert order.number in notice.body and "SHP-1" in notice.body
    assert credit.exception_report(session, dt.datetime.now(dt.UTC)) == 0
    assert (
        len(session.scalars(select(Notification).where(Notification.template == "billing.exception_report")).all()) == 1
    )
    job = next(job for job in credit.JOBS if job.name == "billing.exception_report")
    assert job.schedule == "weekly:mon:08:00"


# --------------------------------------------------------------------------- badges, API, screens


@pytest.mark.req("BL-5")
def test_list_badges_mark_open_orders_of_customers_on_hold(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    mine = make_order(session, admin)
    theirs = make_order(session, admin, customer="C002")
    assert credit.hold_badges(session, [mine, theirs]) == {}
    account(session, "C002", blocked=True)
    badges = credit.hold_badges(session, [mine, theirs])
    assert list(badges) == [theirs.id] and badges[theirs.id][0].style == "danger"


@pytest.mark.req("BL-5")
def test_list_badges_say_a_customer_is_late_without_adding_up_how_much(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    from billing_helpers import invoice_order, pay

    c001, name = seed["local"].id, seed["local"].name
    order = confirmed(session, state, admin)
    invoice = invoice_order(session, admin, order, invoice_date=dt.date.today() - dt.timedelta(days=200))
    (badge,) = credit.hold_badges(session, [order])[order.id]
    assert badge.title == f"Customer {name} has amounts overdue by more than 5 days."
    # The order's page and the gate still say how much.
    assert credit.hold_reasons(session, c001) == [
        f"Customer {name} has {credit.money(invoice.total)} CNY overdue by more than 5 days."
    ]
    pay(session, admin, c001, invoice.total - Decimal("0.01"), allocate_to=invoice)
    assert credit.hold_badges(session, [order])  # one cent still overdue
    pay(session, admin, c001, "0.01", allocate_to=invoice)
    assert credit.hold_badges(session, [order]) == {} and credit.hold_reasons(session, c001) == []


@pytest.mark.req("BL-5")
@pytest.mark.parametrize(("settled", "late"), [("0.00", True), ("39.99", True), ("40.00", False), ("70.00", False)])
def test_a_late_due_covered_by_what_was_paid_holds_nobody(
    session: Session, state: Any, admin: User, seed: dict[str, Any], settled: str, late: bool
) -> None:
    """Settled amounts cover the oldest dues first: the list's check agrees with the amount."""
    from billing_helpers import invoice_order

    from plugins.billing.models import BillingInvoiceDue

    c001 = seed["local"].id
    order = confirmed(session, state, admin, lines=[{"product": "P-300", "quantity": "10", "unit_price": "10"}])
    invoice = invoice_order(session, admin, order)
    assert invoice.total == Decimal("113.00")
    today = dt.date.today()
    from billing_helpers import dues_rewritable

    with dues_rewritable(session):
        (first,) = invoice.dues  # two instalments instead: 40.00 sixty days ago, 73.00 next month
        first.due_date, first.amount = today - dt.timedelta(days=60), Decimal("40.00")
        invoice.dues.append(
            BillingInvoiceDue(sequence=2, due_date=today + dt.timedelta(days=30), amount=Decimal("73.00"))
        )
        invoice.settled = Decimal(settled)
        session.commit()
    overdue = ledger.overdue_amount(session, c001, today, 5)
    assert overdue == max(Decimal("0.00"), Decimal("40.00") - Decimal(settled))
    assert bool(credit.hold_badges(session, [order])) is late
    assert bool(credit.hold_reasons(session, c001)) is late


@pytest.mark.req("BL-5")
def test_the_api_answers_exposure_gate_grant_list_and_revoke(
    session: Session, client: Any, admin: User, gm: User, seed: dict[str, Any]
) -> None:
    order = make_order(session, admin)
    account(session, credit_limit=Decimal("10"))
    headers = {"Authorization": f"Bearer {token_for(session, gm)}"}

    answer = client.get(f"/api/v1/billing/credit/{seed['local'].id}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["on_hold"] is False and body["exposure"]["limit"] == "10.00"

    answer = client.get(f"/api/v1/billing/orders/{order.id}/credit", headers=headers)
    body = answer.get_json()
    assert answer.status_code == 200 and body["exception_valid"] is False
    assert body["paths"]["confirm"] and body["paths"]["copy"] and body["roles_still_to_grant"] == ["general_manager"]

    bad = client.post(f"/api/v1/billing/orders/{order.id}/credit-exceptions", json={}, headers=headers)
    assert bad.status_code == 422
    granted = client.post(
        f"/api/v1/billing/orders/{order.id}/credit-exceptions", json={"reason": "Pays Friday"}, headers=headers
    )
    assert granted.status_code == 201, granted.get_json()
    grant = granted.get_json()
    assert grant["state"] == "valid" and grant["role_code"] == "general_manager"
    again = client.post(f"/api/v1/billing/orders/{order.id}/credit-exceptions", json={"reason": "x"}, headers=headers)
    assert again.status_code == 409

    listed = client.get("/api/v1/billing/credit-exceptions?state=valid", headers=headers).get_json()
    assert [item["id"] for item in listed["items"]] == [grant["id"]]
    assert client.get(f"/api/v1/billing/orders/{order.id}/credit", headers=headers).get_json()["paths"]["confirm"] == []

    revoked = client.post(f"/api/v1/billing/credit-exceptions/{grant['id']}/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert client.post(f"/api/v1/billing/credit-exceptions/{grant['id']}/revoke", headers=headers).status_code == 409
    assert client.post("/api/v1/billing/credit-exceptions/999999/revoke", headers=headers).status_code == 404

    stranger = make_user(session, "cd@example.com", ["sales"], branch=seed["cd"])
    other = {"Authorization": f"Bearer {token_for(session, stranger)}"}
    assert client.get(f"/api/v1/billing/orders/{order.id}/credit", headers=other).status_code == 404
    assert (
        client.post(
            f"/api/v1/billing/orders/{order.id}/credit-exceptions", json={"reason": "x"}, headers=other
        ).status_code
        == 404
    )
    auditor = make_user(session, "aud@example.com", ["auditor"])
    reader = {"Authorization": f"Bearer {token_for(session, auditor)}"}
    assert (
        client.post(
            f"/api/v1/billing/orders/{order.id}/credit-exceptions", json={"reason": "x"}, headers=reader
        ).status_code
        == 403
    )


@pytest.mark.req("RV-7")
def test_screens_list_holds_grant_and_revoke(session: Session, client: Any, admin: User, gm: User) -> None:
    order = make_order(session, admin)
    account(session, blocked=True, block_reason="Cheque bounced")
    login(client, gm.email, PASSWORD)

    page = client.get("/billing/credit/holds")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Cheque bounced" in html and order.number in html

    page = client.get(f"/billing/credit/orders/{order.id}")
    assert page.status_code == 200 and 'id="grant-form"' in page.get_data(as_text=True)
    from core.testing import csrf_token

    token = csrf_token(client, f"/billing/credit/orders/{order.id}")
    empty = client.post(f"/billing/credit/orders/{order.id}/exceptions", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 422 and "Give the reason" in empty.get_data(as_text=True)
    done = client.post(f"/billing/credit/orders/{order.id}/exceptions", data={"csrf_token": token, "reason": "Urgent"})
    assert done.status_code == 302
    session.rollback()
    grant = session.scalars(select(BillingCreditException)).one()

    listing = client.get("/billing/credit/exceptions").get_data(as_text=True)
    assert "Urgent" in listing and "data-confirm" in listing
    revoked = client.post(f"/billing/credit/exceptions/{grant.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302, revoked.get_data(as_text=True)
    follow = client.get(revoked.headers["Location"]).get_data(as_text=True)
    assert "was revoked" in follow, follow
    session.rollback()  # end the test's read transaction to see what the request committed
    assert session.get(BillingCreditException, grant.id).revoked_at is not None  # type: ignore[union-attr]
    assert client.get("/billing/credit/exceptions?state=revoked").status_code == 200


def test_reading_the_screens_needs_the_permission(session: Session, client: Any, seed: dict[str, Any]) -> None:
    make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])
    login(client, "wh@example.com", PASSWORD)
    assert client.get("/billing/credit/holds").status_code == 403
    assert client.get("/billing/credit/exceptions").status_code == 403


def test_a_completed_order_counts_only_what_it_has_not_invoiced_when_reopened(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    order = confirmed(session, state, admin)
    Workflow(state.registry, session).apply(order, "complete", "completed", admin, "")
    session.commit()
    assert credit.exposure(session, seed["local"].id, order, "reopen").this_order == order.total
    assert credit.exposure(session, seed["local"].id).uninvoiced == Decimal("0.00")

"""Customer accounts (BL-5): defaults, changes with bad input refused and nothing changed, optimistic
locking, the rating review raising the prepayment ratio, the review job, screens and API with scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, Customer, Notification, User
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_user, token_for
from plugins.billing import accounts
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAccount, BillingRatingReview

D = Decimal


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def finance(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "finance@example.com", ["finance"], branch=seed["hq"])


def cid(session: Session, code: str) -> int:
    return session.scalars(select(Customer.id).where(Customer.code == code)).one()


def snapshot(account: BillingAccount) -> tuple[Any, ...]:
    return (
        account.term_id,
        account.credit_limit,
        account.blocked,
        account.block_reason,
        account.prepayment_ratio,
        account.invoice_type,
        account.version,
    )


@pytest.mark.req("BL-5")
def test_a_new_account_gets_the_defaults(session: Session, seed: dict[str, Any]) -> None:
    account = accounts.account_for(session, cid(session, "C001"))
    session.commit()
    assert account.term is not None and account.term.code == "MONTHLY30"
    assert account.credit_limit is None and account.rating == "B" and account.prepayment_ratio == D("0")
    assert account.next_review_on == accounts.add_months(accounts.today(), 12)
    assert accounts.account_for(session, cid(session, "C001")) is account
    assert accounts.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)


@pytest.mark.req("BL-5")
def test_finance_changes_an_account_and_the_difference_is_audited(session: Session, finance: User) -> None:
    customer_id = cid(session, "C001")
    version = accounts.account_for(session, customer_id).version
    session.commit()
    account = accounts.update_account(
        session,
        finance,
        customer_id,
        {
            "term": "COD",
            "credit_limit": "200000",
            "guarantee_on_file": True,
            "guarantee_note": "银行保函",
            "version": version,
        },
    )
    session.commit()
    assert account.term.code == "COD" and account.credit_limit == D("200000.00") and account.guarantee_on_file
    entry = session.scalars(
        select(AuditLog).where(AuditLog.entity == "billing_account", AuditLog.action == "update")
    ).one()
    assert entry.changes["credit_limit"] == [None, "200000"] and entry.changes["term"] == ["MONTHLY30", "COD"]


@pytest.mark.req("BL-5")
def test_bad_account_input_is_refused_with_nothing_changed(session: Session, finance: User) -> None:
    customer_id = cid(session, "C001")
    account = accounts.account_for(session, customer_id)
    session.commit()
    before = snapshot(account)
    cases = [
        ({"credit_limit": "-1"}, "negative_limit", 422),
        ({"term": "NOPE"}, "unknown_term", 422),
        ({"blocked": True, "block_reason": ""}, "reason_required", 422),
        ({"prepayment_ratio": "120"}, "bad_ratio", 422),
        ({"invoice_type": "special"}, "needs_tax_id", 422),  # C001 has no tax id
        ({"credit_limit": "5", "version": account.version + 1}, "stale", 409),
    ]
    for values, code, status in cases:
        with pytest.raises(BillingError) as refused:
            accounts.update_account(session, finance, customer_id, {"credit_limit": "1000", **values})
        assert (refused.value.code, refused.value.status) == (code, status)
        session.rollback()
        session.expire_all()
        assert snapshot(accounts.account_for(session, customer_id)) == before
    sales = make_user(session, "s@example.com", ["sales"])
    with pytest.raises(BillingError) as refused:
        accounts.update_account(session, sales, customer_id, {"credit_limit": "1"})
    assert refused.value.status == 403


@pytest.mark.req("BL-5")
def test_a_special_invoice_needs_the_tax_id_and_blocking_needs_a_reason(session: Session, finance: User) -> None:
    customer = session.get(Customer, cid(session, "C002"))
    customer.tax_id = "91510100MA6C000000"
    session.commit()
    account = accounts.update_account(
        session, finance, customer.id, {"invoice_type": "special", "blocked": True, "block_reason": "拖欠货款"}
    )
    session.commit()
    assert account.invoice_type == "special" and account.blocked and account.block_reason == "拖欠货款"
    accounts.update_account(session, finance, customer.id, {"blocked": False})
    assert not account.blocked and account.block_reason == ""


@pytest.mark.req("BL-5")
def test_rating_d_raises_the_prepayment_to_100_and_a_better_rating_never_lowers_it(
    session: Session, finance: User
) -> None:
    customer_id = cid(session, "C001")
    account = accounts.set_rating(session, finance, customer_id, "D", "连续三个月逾期")
    session.commit()
    assert account.rating == "D" and account.prepayment_ratio == D("100")
    assert account.next_review_on == accounts.add_months(accounts.today(), 12)
    told = session.scalars(select(Notification).where(Notification.user_id == finance.id)).all()
    assert any("100%" in n.subject for n in told)
    later = accounts.today() + dt.timedelta(days=90)
    accounts.set_rating(session, finance, customer_id, "A", "已全部还清", next_review_on=later)
    session.commit()
    assert account.rating == "A" and account.prepayment_ratio == D("100") and account.next_review_on == later
    reviews = session.scalars(select(BillingRatingReview).order_by(BillingRatingReview.id)).all()
    assert [(r.rating_from, r.rating_to) for r in reviews] == [("B", "D"), ("D", "A")]


@pytest.mark.req("BL-5")
def test_rating_c_raises_to_the_setting_and_bad_reviews_are_refused(session: Session, finance: User) -> None:
    customer_id = cid(session, "C002")
    accounts.update_account(session, finance, customer_id, {"prepayment_ratio": "10"})
    session.commit()
    for rating, note, review, code in [
        ("E", "x", None, "bad_rating"),
        ("C", "", None, "note_required"),
        ("C", "x", accounts.today().isoformat(), "past_review"),
        ("C", "x", "someday", "bad_date"),
    ]:
        with pytest.raises(BillingError) as refused:
            accounts.set_rating(session, finance, customer_id, rating, note, review)
        assert refused.value.code == code
        session.rollback()
    assert session.scalars(select(BillingRatingReview)).first() is None
    account = accounts.set_rating(session, finance, customer_id, "C", "观察")
    assert account.prepayment_ratio == D("30")


@pytest.mark.req("BL-5")
def test_the_review_job_lists_and_tells_finance_about_overdue_reviews_once_a_day(
    session: Session, finance: User
) -> None:
    due = accounts.account_for(session, cid(session, "C001"))
    accounts.account_for(session, cid(session, "C002"))
    due.next_review_on = dt.date(2026, 1, 10)
    session.commit()
    assert accounts.overdue_reviews(session, dt.date(2026, 1, 9)) == []
    assert accounts.overdue_reviews(session, dt.date(2026, 1, 10)) == [due]
    now = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)
    assert accounts.remind_reviews(session, now) == 1
    assert accounts.remind_reviews(session, now) == 1
    session.commit()
    told = session.scalars(select(Notification).where(Notification.user_id == finance.id)).all()
    assert len([n for n in told if "C001" in n.subject]) == 1
    assert [job.name for job in accounts.JOBS] == ["billing.rating_reviews"]


@pytest.mark.req("BL-5")
def test_reading_accounts_writes_nothing_until_one_is_changed(
    client: Any, session: Session, finance: User, seed: dict[str, Any]
) -> None:
    """The screens and the API show a customer without an account its defaults, unsaved."""
    from sqlalchemy import func

    customer_id = cid(session, "C001")
    api = ApiCaller(client, token_for(session, finance))
    login(client, finance.email, PASSWORD)
    for path in (
        "/billing/accounts",
        f"/billing/accounts/{customer_id}",
        "/api/v1/billing/accounts",
        f"/api/v1/billing/accounts/{customer_id}",
    ):
        answer = api.get(path) if path.startswith("/api/") else client.get(path)
        assert answer.status_code == 200, path
    shown = api.get(f"/api/v1/billing/accounts/{customer_id}").get_json()
    assert shown["rating"] == "B" and shown["term"] == "MONTHLY30" and shown["version"] == 1
    session.rollback()
    assert session.scalar(select(func.count()).select_from(BillingAccount)) == 0
    changed = api.patch(
        f"/api/v1/billing/accounts/{customer_id}", json={"version": shown["version"], "credit_limit": "5000.00"}
    )
    assert changed.status_code == 200, changed.get_json()
    session.rollback()
    stored = session.scalars(select(BillingAccount)).one()
    assert stored.customer_id == customer_id and stored.credit_limit == D("5000.00")


@pytest.mark.req("BL-5")
def test_account_screens_render_and_save(client: Any, session: Session, finance: User) -> None:
    customer_id = cid(session, "C001")
    login(client, finance.email, PASSWORD)
    listing = client.get("/billing/accounts")
    assert listing.status_code == 200 and "C001" in listing.get_data(as_text=True)
    assert client.get("/billing/accounts?blocked=1&rating=D&review_due=1").status_code == 200
    page = client.get(f"/billing/accounts/{customer_id}")
    assert page.status_code == 200 and "account-form" in page.get_data(as_text=True)
    token = csrf_token(client, f"/billing/accounts/{customer_id}")
    session.rollback()
    version = accounts.account_view(session, customer_id).version  # not stored yet: reading wrote nothing
    refused = client.post(
        f"/billing/accounts/{customer_id}",
        data={
            "csrf_token": token,
            "credit_limit": "-1",
            "prepayment_ratio": "0",
            "invoice_type": "normal",
            "version": version,
        },
    )
    assert refused.status_code == 422 and "cannot be negative" in refused.get_data(as_text=True)
    saved = client.post(
        f"/billing/accounts/{customer_id}",
        data={
            "csrf_token": token,
            "credit_limit": "50000",
            "prepayment_ratio": "20",
            "invoice_type": "normal",
            "term": "",
            "blocked": "1",
            "block_reason": "对账未完成",
            "version": version,
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200
    rated = client.post(
        f"/billing/accounts/{customer_id}/rating",
        data={"csrf_token": token, "rating": "C", "note": "付款变慢"},
        follow_redirects=True,
    )
    assert rated.status_code == 200 and "付款变慢" in rated.get_data(as_text=True)
    session.rollback()
    account = accounts.account_for(session, customer_id)
    assert (account.credit_limit, account.prepayment_ratio, account.blocked, account.term_id, account.rating) == (
        D("50000.00"),
        D("30"),
        True,
        None,
        "C",
    )
    stale = client.post(
        f"/billing/accounts/{customer_id}",
        data={
            "csrf_token": token,
            "credit_limit": "1",
            "prepayment_ratio": "0",
            "invoice_type": "normal",
            "version": version,
        },
    )
    assert stale.status_code == 409


@pytest.mark.req("BL-5")
def test_accounts_api_reads_changes_and_hides_customers_out_of_scope(
    client: Any, session: Session, seed: dict[str, Any], finance: User
) -> None:
    local = session.get(Customer, cid(session, "C001"))
    remote = session.get(Customer, cid(session, "C002"))
    local.branch_id = seed["hq"].id
    remote.branch_id = seed["cd"].id
    session.commit()
    manager = make_user(session, "sm@example.com", ["sales_manager"], branch=seed["hq"])
    scoped = ApiCaller(client, token_for(session, manager))
    assert scoped.get(f"/api/v1/billing/accounts/{remote.id}").status_code == 404
    assert scoped.get(f"/api/v1/billing/accounts/{local.id}").status_code == 200
    assert scoped.patch(f"/api/v1/billing/accounts/{remote.id}", json={"credit_limit": "1"}).status_code == 404
    assert scoped.patch(f"/api/v1/billing/accounts/{local.id}", json={"credit_limit": "1"}).status_code == 403
    listed = scoped.get("/api/v1/billing/accounts").get_json()["items"]
    assert [a["customer_code"] for a in listed] == ["C001"]

    api = ApiCaller(client, token_for(session, finance))
    read = api.get(f"/api/v1/billing/accounts/{remote.id}").get_json()
    changed = api.patch(
        f"/api/v1/billing/accounts/{remote.id}", json={"credit_limit": "80000", "version": read["version"]}
    )
    assert changed.status_code == 200 and changed.get_json()["credit_limit"] == "80000.00"
    stale = api.patch(f"/api/v1/billing/accounts/{remote.id}", json={"credit_limit": "1", "version": read["version"]})
    assert stale.status_code == 409
    bad = api.patch(f"/api/v1/billing/accounts/{remote.id}", json={"credit_limit": "-1"})
    assert bad.status_code == 422 and "credit_limit" in bad.get_json()["error"]["details"]
    unknown = api.patch(f"/api/v1/billing/accounts/{remote.id}", json={"rating": "A"})
    assert unknown.status_code == 422
    rated = api.post(f"/api/v1/billing/accounts/{remote.id}/rating", json={"rating": "D", "note": "严重逾期"})
    assert rated.status_code == 200 and rated.get_json()["prepayment_ratio"] == "100.0000"

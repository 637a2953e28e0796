"""Payment terms (BL-1): every kind's due dates, term management with bad input refused, the finance
check (special terms wait for finance, standard terms pass by themselves), the terms screens and API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Notification, User
from core.services.orders import take_action
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.billing import accounts, terms
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingOrderTerms, BillingPaymentTerm, BillingTermInstalment

D = Decimal


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def finance(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "finance@example.com", ["finance"], branch=seed["hq"])


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "clerk@example.com", ["order_clerk", "sales_manager"], branch=seed["hq"])


def term(**values: Any) -> BillingPaymentTerm:
    """A transient term (due_schedule needs no database)."""
    rows = values.pop("instalments", [])
    t = BillingPaymentTerm(
        code=values.pop("code", "T"),
        name="t",
        kind=values.pop("kind"),
        prepayment_percent=values.pop("prepayment_percent", D("100")),
        cutoff_day=values.pop("cutoff_day", 31),
        days_after_month_end=values.pop("days_after_month_end", 30),
        due_days=values.pop("due_days", 0),
    )
    t.instalments = [BillingTermInstalment(sequence=i, percent=D(p), due_days=d) for i, (p, d) in enumerate(rows, 1)]
    return t


def count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- due dates ---------------------------------------------------------------------------------


@pytest.mark.req("BL-1")
def test_prepayment_and_cash_on_delivery_fall_due_days_after_the_invoice_date() -> None:
    day = dt.date(2026, 3, 10)
    assert terms.due_schedule(term(kind="prepayment", due_days=3), "prepayment", day, D("500")) == [
        (dt.date(2026, 3, 13), D("500.00"))
    ]
    assert terms.due_schedule(term(kind="cash_on_delivery", due_days=7), "cash_on_delivery", day, D("99.99")) == [
        (dt.date(2026, 3, 17), D("99.99"))
    ]
    assert terms.due_schedule(None, "cash_on_delivery", day, D("10")) == [(day, D("10.00"))]


@pytest.mark.req("BL-1")
def test_monthly_settlement_without_cutoff_is_due_after_the_invoice_month() -> None:
    monthly = term(kind="monthly_settlement", cutoff_day=31, days_after_month_end=30)
    assert terms.due_schedule(monthly, "monthly_settlement", dt.date(2026, 1, 31), D("100")) == [
        (dt.date(2026, 3, 2), D("100.00"))  # 31 January + 30 days
    ]
    # Defaults without terms: cut-off 31, 30 days after the month end.
    assert terms.due_schedule(None, "monthly_settlement", dt.date(2026, 4, 1), D("100")) == [
        (dt.date(2026, 5, 30), D("100.00"))
    ]


@pytest.mark.req("BL-1")
def test_monthly_settlement_after_the_cutoff_rolls_into_next_month_including_february_ends() -> None:
    monthly = term(kind="monthly_settlement", cutoff_day=25, days_after_month_end=0)
    assert terms.due_schedule(monthly, "monthly_settlement", dt.date(2026, 1, 25), D("1")) == [
        (dt.date(2026, 1, 31), D("1.00"))
    ]
    assert terms.due_schedule(monthly, "monthly_settlement", dt.date(2026, 1, 26), D("1")) == [
        (dt.date(2026, 2, 28), D("1.00"))
    ]
    assert terms.due_schedule(monthly, "monthly_settlement", dt.date(2028, 1, 26), D("1")) == [
        (dt.date(2028, 2, 29), D("1.00"))  # leap year
    ]
    assert terms.due_schedule(monthly, "monthly_settlement", dt.date(2026, 12, 28), D("1")) == [
        (dt.date(2027, 1, 31), D("1.00"))  # over the year end
    ]
    late = term(kind="monthly_settlement", cutoff_day=20, days_after_month_end=15)
    assert terms.due_schedule(late, "monthly_settlement", dt.date(2026, 2, 21), D("1")) == [
        (dt.date(2026, 4, 15), D("1.00"))
    ]


@pytest.mark.req("BL-1")
def test_instalments_split_the_total_and_the_last_takes_the_rounding_remainder() -> None:
    thirds = term(kind="instalments", instalments=[("33.33", 0), ("33.33", 30), ("33.34", 60)])
    schedule = terms.due_schedule(thirds, "instalments", dt.date(2026, 5, 1), D("100.01"))
    assert schedule == [
        (dt.date(2026, 5, 1), D("33.33")),
        (dt.date(2026, 5, 31), D("33.33")),
        (dt.date(2026, 6, 30), D("33.35")),
    ]
    assert sum(a for _d, a in schedule) == D("100.01")
    odd = term(kind="instalments", instalments=[("50", 0), ("50", 10)])
    assert [a for _d, a in terms.due_schedule(odd, "instalments", dt.date(2026, 5, 1), D("0.03"))] == [
        D("0.02"),
        D("0.01"),
    ]


@pytest.mark.req("BL-1")
def test_a_credit_note_is_due_at_once() -> None:
    monthly = term(kind="monthly_settlement")
    day = dt.date(2026, 5, 20)
    assert terms.due_schedule(monthly, "credit_note", day, D("-50")) == [(day, D("-50.00"))]
    assert terms.due_schedule(monthly, "monthly_settlement", day, D("-50")) == [(day, D("-50.00"))]


# --- managing terms ------------------------------------------------------------------------------


@pytest.mark.req("BL-1")
def test_finance_creates_instalment_terms_and_bad_input_changes_nothing(session: Session, finance: User) -> None:
    created = terms.create_term(
        session,
        finance,
        {
            "code": "inst-2",
            "name": "Two instalments",
            "kind": "instalments",
            "instalments": [{"percent": "40", "due_days": "0"}, {"percent": "60", "due_days": "30"}],
        },
    )
    session.commit()
    assert created.code == "INST-2" and [(i.percent, i.due_days) for i in created.instalments] == [
        (D("40"), 0),
        (D("60"), 30),
    ]
    before = (count(session, BillingPaymentTerm), count(session, BillingTermInstalment))
    bad_inputs = [
        ({"instalments": [{"percent": "40", "due_days": 0}, {"percent": "50", "due_days": 30}]}, "instalments_not_100"),
        ({"instalments": [{"percent": "100", "due_days": 0}]}, "few_instalments"),
        (
            {"instalments": [{"percent": "50", "due_days": 30}, {"percent": "50", "due_days": 0}]},
            "instalments_out_of_order",
        ),
        (
            {"instalments": [{"percent": "0", "due_days": 0}, {"percent": "100", "due_days": 0}]},
            "bad_instalment_percent",
        ),
        ({"kind": "barter"}, "bad_kind"),
        ({"code": "INST-2"}, "duplicate_code"),
        ({"kind": "prepayment", "prepayment_percent": "0"}, "bad_prepayment"),
        ({"kind": "prepayment", "prepayment_percent": "101"}, "bad_prepayment"),
        ({"kind": "monthly_settlement", "cutoff_day": "32"}, "bad_cutoff"),
        ({"kind": "monthly_settlement", "days_after_month_end": "-1"}, "negative_days"),
        ({"kind": "cash_on_delivery", "due_days": "x"}, "not_a_number"),
    ]
    for change, code in bad_inputs:
        data = {"code": "NEW", "name": "New", "kind": "instalments", **change}
        with pytest.raises(BillingError) as refused:
            terms.create_term(session, finance, data)
        assert refused.value.code == code, change
        session.rollback()
    assert (count(session, BillingPaymentTerm), count(session, BillingTermInstalment)) == before
    with pytest.raises(BillingError) as refused:
        terms.update_term(session, finance, created.id, {"instalments": [{"percent": "90"}, {"percent": "0.5"}]})
    assert refused.value.code == "bad_instalment_percent" or refused.value.code == "instalments_not_100"
    session.rollback()
    session.expire_all()
    assert [i.percent for i in session.get(BillingPaymentTerm, created.id).instalments] == [D("40"), D("60")]


@pytest.mark.req("BL-1")
def test_only_finance_manages_terms_and_deactivated_terms_are_not_chosen(
    session: Session, finance: User, clerk: User
) -> None:
    with pytest.raises(BillingError) as refused:
        terms.create_term(session, clerk, {"code": "X", "name": "x", "kind": "cash_on_delivery"})
    assert refused.value.status == 403
    session.rollback()
    cod = session.scalars(select(BillingPaymentTerm).where(BillingPaymentTerm.code == "COD")).one()
    terms.deactivate_term(session, finance, cod.id)
    session.commit()
    order = make_order(session, clerk, payment_method="cash_on_delivery")
    fixed = terms.order_terms(session, order)
    assert fixed.term_id is None and fixed.kind == "cash_on_delivery" and fixed.special


# --- the finance check -----------------------------------------------------------------------------


@pytest.mark.req("BL-1")
def test_special_terms_wait_at_the_finance_check_until_finance_approves(
    session: Session, state: Any, finance: User, clerk: User
) -> None:
    order = make_order(session, clerk, payment_method="instalments")
    take_action(session, state.registry, clerk, order, "submit")
    session.commit()
    assert order.step == "billing.finance_check"
    fixed = session.scalars(select(BillingOrderTerms).where(BillingOrderTerms.order_id == order.id)).one()
    assert (
        fixed.special and fixed.kind == "instalments" and fixed.term is not None and fixed.term.code == "INST3"
    )  # seeded by the migration
    told = session.scalars(select(Notification).where(Notification.user_id == finance.id)).all()
    assert any(order.number in n.subject for n in told)
    with pytest.raises(Exception):  # noqa: B017 - the clerk may not approve terms
        take_action(session, state.registry, clerk, order, "approve_terms")
    session.rollback()
    take_action(session, state.registry, finance, order, "approve_terms", "分期已与客户确认")
    session.commit()
    assert order.step == "submitted"
    session.refresh(fixed)
    assert fixed.approved_by_id == finance.id and fixed.approved_at is not None and fixed.note == "分期已与客户确认"


@pytest.mark.req("BL-1")
def test_standard_terms_pass_the_finance_check_by_themselves(session: Session, state: Any, clerk: User) -> None:
    order = make_order(session, clerk, payment_method="monthly_settlement")
    take_action(session, state.registry, clerk, order, "submit")
    session.commit()
    assert order.step == "submitted"
    fixed = terms.order_terms(session, order)
    assert not fixed.special and fixed.prepayment_percent == D("0") and fixed.approved_at is None


@pytest.mark.req("BL-1")
def test_prepayment_terms_fix_the_required_prepayment(session: Session, finance: User, clerk: User) -> None:
    """The account's prepayment terms decide; the account's ratio raises the percentage when higher."""
    customer_id = make_order(session, clerk).customer_id
    accounts.update_account(session, finance, customer_id, {"term": "PREPAY30"})
    session.commit()
    order = make_order(session, clerk, payment_method="prepayment")
    assert terms.order_terms(session, order).prepayment_percent == D("30")
    assert terms.required_prepayment(session, order) == (order.total * D("0.3")).quantize(D("0.01"))
    accounts.update_account(session, finance, customer_id, {"prepayment_ratio": "50"})
    session.commit()
    cod = make_order(session, clerk, payment_method="cash_on_delivery")
    assert terms.order_terms(session, cod).prepayment_percent == D("50")
    assert terms.order_terms(session, cod).term.code == "COD"


# --- screens and API ------------------------------------------------------------------------------


@pytest.mark.req("BL-1")
def test_terms_screens_render_and_save_instalment_rows(client: Any, session: Session, finance: User) -> None:
    login(client, finance.email, PASSWORD)
    assert client.get("/billing/terms").status_code == 200
    page = client.get("/billing/terms/new")
    assert page.status_code == 200 and "data-add-row" in page.get_data(as_text=True)
    seeded = count(session, BillingPaymentTerm)
    token = csrf_token(client, "/billing/terms/new")
    refused = client.post(
        "/billing/terms/new",
        data={
            "csrf_token": token,
            "code": "I3",
            "name": "Three",
            "kind": "instalments",
            "active": "1",
            "instalments-0-percent": "30",
            "instalments-0-due_days": "0",
            "instalments-1-percent": "30",
            "instalments-1-due_days": "30",
            "instalments-2-percent": "30",
            "instalments-2-due_days": "60",
        },
    )
    assert refused.status_code == 422 and "exactly 100" in refused.get_data(as_text=True)
    session.rollback()
    assert count(session, BillingPaymentTerm) == seeded
    saved = client.post(
        "/billing/terms/new",
        data={
            "csrf_token": token,
            "code": "I3",
            "name": "Three",
            "kind": "instalments",
            "active": "1",
            "instalments-0-percent": "30",
            "instalments-0-due_days": "0",
            "instalments-1-percent": "30",
            "instalments-1-due_days": "30",
            "instalments-5-percent": "40",
            "instalments-5-due_days": "60",
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "I3" in saved.get_data(as_text=True)
    session.rollback()
    created = session.scalars(select(BillingPaymentTerm).where(BillingPaymentTerm.code == "I3")).one()
    assert [(i.percent, i.due_days) for i in created.instalments] == [(D("30"), 0), (D("30"), 30), (D("40"), 60)]
    assert client.get(f"/billing/terms/{created.id}/edit").status_code == 200
    client.post(f"/billing/terms/{created.id}/active", data={"csrf_token": token, "active": "0"})
    session.rollback()
    assert session.get(BillingPaymentTerm, created.id).active is False


@pytest.mark.req("BL-1")
def test_terms_api_creates_lists_and_computes_a_schedule(
    client: Any, session: Session, finance: User, clerk: User
) -> None:
    api = ApiCaller(client, token_for(session, finance))
    created = api.post(
        "/api/v1/billing/terms",
        json={
            "code": "M25",
            "name": "月结 25 日",
            "kind": "monthly_settlement",
            "cutoff_day": 25,
            "days_after_month_end": 0,
        },
    )
    assert created.status_code == 201, created.get_json()
    term_id = created.get_json()["id"]
    listed = api.get("/api/v1/billing/terms?kind=monthly_settlement").get_json()["items"]
    assert [t["code"] for t in listed] == ["M25", "MONTHLY30"]
    schedule = api.get(f"/api/v1/billing/terms/{term_id}/schedule?invoice_date=2026-01-26&total=100")
    assert schedule.get_json()["dues"] == [{"due_on": "2026-02-28", "amount": "100.00"}]
    bad = api.patch(f"/api/v1/billing/terms/{term_id}", json={"cutoff_day": 40})
    assert bad.status_code == 422 and "cutoff_day" in bad.get_json()["error"]["details"]
    assert api.get("/api/v1/billing/terms/9999").status_code == 404
    other = ApiCaller(client, token_for(session, clerk))
    assert other.post("/api/v1/billing/terms", json={"code": "Z", "name": "z", "kind": "prepayment"}).status_code == 403

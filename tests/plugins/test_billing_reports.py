"""Receivables reports (BL-6 statistics, BL-7 balances): ageing buckets exact, scope, balances, collections.

One invoice of C001 gets six dues (set here so the days overdue are known): 500 due 91
days before the report date, 600 at 61, 700 at 31, 800 at 30, 300 at 1 day, the rest on
the day itself. A payment of 800 covers the oldest dues first: 500, then 300 of the 600.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, invoice_order, pay
from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import User
from core.testing import PASSWORD, ApiCaller, login, make_order, make_user, token_for
from plugins.billing import reports
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingInvoice, BillingInvoiceDue

pytestmark = pytest.mark.req("BL-6")


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq, cd = seed["hq"], seed["cd"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "cd_seller": make_user(session, "cdseller@example.com", ["sales"], branch=cd),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "cd_manager": make_user(session, "cdm@example.com", ["sales_manager"], branch=cd),
    }


def set_dues(session: Session, invoice: BillingInvoice, dues: list[tuple[dt.date, Decimal]]) -> None:
    """Replace the invoice's dues (the rest of the total on the last one)."""
    from billing_helpers import dues_rewritable

    with dues_rewritable(session):
        session.execute(delete(BillingInvoiceDue).where(BillingInvoiceDue.invoice_id == invoice.id))
        rest = invoice.total - sum((amount for _day, amount in dues[:-1]), Decimal("0"))
        for sequence, (day, amount) in enumerate(dues, start=1):
            value = rest if sequence == len(dues) else amount
            session.add(BillingInvoiceDue(invoice_id=invoice.id, sequence=sequence, due_date=day, amount=value))
        session.commit()


@pytest.fixture
def data(session: Session, state: Any, admin: User, people: dict[str, User]) -> dict[str, Any]:
    today = company_now().date()
    order = make_order(session, people["seller"])
    confirm(session, state.registry, admin, order)
    invoice = invoice_order(session, people["finance"], order, invoice_date=today - dt.timedelta(days=120))
    days = [91, 61, 31, 30, 1, 0]
    amounts = ["500", "600", "700", "800", "300", "0"]
    set_dues(session, invoice, [(today - dt.timedelta(days=d), Decimal(a)) for d, a in zip(days, amounts, strict=True)])
    pay(session, people["finance"], order.customer_id, "800.00", allocate_to=invoice)
    cd_order = make_order(session, people["cd_seller"], customer="C002")
    confirm(session, state.registry, admin, cd_order)
    cd_invoice = invoice_order(session, people["finance"], cd_order, invoice_date=today - dt.timedelta(days=10))
    set_dues(session, cd_invoice, [(today - dt.timedelta(days=45), Decimal("0"))])
    pay(session, people["finance"], cd_order.customer_id, "250.00")  # unallocated: C002's balance
    session.refresh(invoice)
    session.refresh(cd_invoice)
    return {"today": today, "invoice": invoice, "cd_invoice": cd_invoice}


def test_ageing_buckets_are_exact(session: Session, people: dict[str, User], data: dict[str, Any]) -> None:
    today, invoice, cd_invoice = data["today"], data["invoice"], data["cd_invoice"]
    rows = reports.ageing(session, people["finance"], today, "customer")
    by_code = {row.code: row for row in rows}
    c001 = by_code["C001"].buckets
    rest = invoice.total - Decimal("2900")
    assert c001 == {
        "not_due": rest,
        "d0_30": Decimal("1100.00"),  # 800 at 30 days + 300 at 1 day
        "d31_60": Decimal("700.00"),
        "d61_90": Decimal("300.00"),  # 600 less the 300 left of the payment
        "over_90": Decimal("0.00"),  # paid first
    }
    assert by_code["C001"].total == invoice.total - Decimal("800")
    assert by_code["C002"].buckets["d31_60"] == cd_invoice.total
    total = reports.ageing_total(rows)
    assert total.total == invoice.total - Decimal("800") + cd_invoice.total
    assert reports.bucket_of(0) == "not_due" and reports.bucket_of(30) == "d0_30" and reports.bucket_of(91) == "over_90"


def test_ageing_on_an_earlier_date_leaves_later_invoices_out(
    session: Session, people: dict[str, User], data: dict[str, Any]
) -> None:
    earlier = data["today"] - dt.timedelta(days=60)
    rows = reports.ageing(session, people["finance"], earlier, "customer")
    assert [row.code for row in rows] == ["C001"]  # C002's invoice is dated 10 days ago
    assert rows[0].buckets["d0_30"] == Decimal("300.00")  # the 600 due 61 days ago was 1 day overdue then


def test_by_salesperson_and_by_branch(session: Session, people: dict[str, User], data: dict[str, Any]) -> None:
    today = data["today"]
    sellers = {row.name: row.total for row in reports.ageing(session, people["finance"], today, "salesperson")}
    assert set(sellers) == {"seller", "cdseller"}
    branches = {row.code: row.total for row in reports.ageing(session, people["finance"], today, "branch")}
    assert set(branches) == {"HQ", "CD"}
    with pytest.raises(BillingError):
        reports.ageing(session, people["finance"], today, "colour")


def test_a_branch_sales_manager_sees_only_its_branch(
    session: Session, people: dict[str, User], data: dict[str, Any]
) -> None:
    rows = reports.ageing(session, people["cd_manager"], data["today"], "branch")
    assert [row.code for row in rows] == ["CD"]
    assert [row.code for row in reports.ageing(session, people["cd_manager"], data["today"])] == ["C002"]
    with pytest.raises(BillingError) as refused:
        reports.ageing(session, people["seller"], data["today"])  # sales may not read reports
    assert refused.value.status == 403


@pytest.mark.req("BL-7")
def test_customer_balances(session: Session, people: dict[str, User], data: dict[str, Any]) -> None:
    rows = {row.code: row for row in reports.customer_balances(session, people["finance"])}
    c001, c002 = rows["C001"], rows["C002"]
    assert (c001.open_receivables, c001.balance) == (data["invoice"].total - Decimal("800"), Decimal("0"))
    assert (c002.open_receivables, c002.unallocated) == (data["cd_invoice"].total, Decimal("250.00"))
    assert c002.net == data["cd_invoice"].total - Decimal("250.00")


def test_collections_per_period(session: Session, people: dict[str, User], data: dict[str, Any]) -> None:
    today = data["today"]
    found = reports.collections(session, people["finance"], today.replace(day=1), today)
    assert found.count == 2 and found.received == Decimal("1050.00")
    assert found.allocated == Decimal("800.00")
    assert [(r.method, r.count) for r in found.rows] == [("bank_transfer", 2)]
    assert found.allocations["payment"] == Decimal("800.00")
    with pytest.raises(BillingError):
        reports.collections(session, people["finance"], today, today - dt.timedelta(days=1))


def test_report_screens_and_exports(
    session: Session, people: dict[str, User], data: dict[str, Any], client: Any
) -> None:
    login(client, "finance@example.com", PASSWORD)
    page = client.get("/billing/reports/receivables?group=customer")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-code="C001"' in html and 'data-code="C002"' in html
    export = client.get("/billing/reports/receivables.csv?group=branch")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "HQ" in export.get_data(as_text=True)
    assert client.get("/billing/reports/balances").status_code == 200
    assert client.get("/billing/reports/balances.xlsx").status_code == 200
    collections = client.get("/billing/reports/collections").get_data(as_text=True)
    assert 'data-method="bank_transfer"' in collections
    assert client.get("/billing/reports/collections.csv").status_code == 200


def test_report_screens_for_a_branch_manager_and_refused_to_sales(
    session: Session, people: dict[str, User], data: dict[str, Any], client: Any
) -> None:
    login(client, "cdm@example.com", PASSWORD)
    html = client.get("/billing/reports/receivables").get_data(as_text=True)
    assert 'data-code="C002"' in html and 'data-code="C001"' not in html
    client.post("/logout")
    other = client.application.test_client()
    login(other, "seller@example.com", PASSWORD)
    assert other.get("/billing/reports/receivables").status_code == 403


def test_report_api(session: Session, people: dict[str, User], data: dict[str, Any], client: Any) -> None:
    api = ApiCaller(client, token_for(session, people["finance"]))
    body = api.get("/api/v1/billing/reports/ageing?group_by=customer").get_json()
    c001 = next(row for row in body["rows"] if row["code"] == "C001")
    assert c001["buckets"]["d31_60"] == "700.00" and c001["buckets"]["d61_90"] == "300.00"
    assert api.get("/api/v1/billing/reports/ageing?group_by=colour").status_code == 422
    balances = api.get("/api/v1/billing/reports/balances").get_json()
    assert {row["code"] for row in balances["rows"]} == {"C001", "C002"}
    collections = api.get("/api/v1/billing/reports/collections").get_json()
    assert collections["received"] == "1050.00"
    manager = ApiCaller(client, token_for(session, people["cd_manager"]))
    rows = manager.get("/api/v1/billing/reports/ageing?group_by=branch").get_json()["rows"]
    assert [row["code"] for row in rows] == ["CD"]
    seller = ApiCaller(client, token_for(session, people["seller"]))
    assert seller.get("/api/v1/billing/reports/balances").status_code == 403

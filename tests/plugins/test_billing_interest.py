"""Late interest (BL-4): on the remaining balance day by day, right after partial payments, never twice.

The hand-computed case of the brief: 10,000 due on 1 January, 4,000 received on 11 January,
interest up to 31 January at 0.05 % a day: 10,000 × 10 days × 0.0005 + 6,000 × 20 days ×
0.0005 = 50 + 60 = 110.00. A second charge starts after the first one's last day; with the
setting off, charging is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Order, User
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.billing import flow, interest, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingInterestCharge, BillingInvoice, BillingInvoiceDue, BillingPayment

pytestmark = pytest.mark.req("BL-4")

TODAY = dt.datetime.now(COMPANY_TIMEZONE).date()
YEAR = TODAY.year - 1 if TODAY.month < 4 else TODAY.year
JAN = lambda day: dt.date(YEAR, 1, day)  # noqa: E731
FEB = lambda day: dt.date(YEAR, 2, day)  # noqa: E731


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
    }


@pytest.fixture
def order(session: Session, people: dict[str, User]) -> Order:
    return make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": "2"}])


@pytest.fixture
def enabled(session: Session) -> None:
    set_setting(session, flow.INTEREST_ENABLED, True)
    set_setting(session, flow.INTEREST_DAILY_RATE, 0.05)
    session.commit()


def issue(session: Session, order: Order, dues: list[tuple[dt.date, str]], number: str = "INV-I0001") -> BillingInvoice:
    """An issued invoice with ``dues`` (built directly, so the dates are exactly the test's)."""
    total = sum((Decimal(a) for _, a in dues), Decimal("0"))
    invoice = BillingInvoice(
        company_id=order.company_id,
        kind="invoice",
        number=number,
        year=YEAR,
        status="issued",
        customer_id=order.customer_id,
        order_id=order.id,
        untaxed=total,
        tax=Decimal("0"),
        total=total,
        invoice_date=dues[0][0] - dt.timedelta(days=30),
        due_date=dues[-1][0],
    )
    invoice.dues = [BillingInvoiceDue(sequence=i + 1, due_date=d, amount=Decimal(a)) for i, (d, a) in enumerate(dues)]
    session.add(invoice)
    session.commit()
    return invoice


def pay(session: Session, actor: User, invoice: BillingInvoice, amount: str, on: dt.date) -> None:
    payment = BillingPayment(
        company_id=invoice.company_id,
        number=f"PAY-I{on.isoformat()}-{amount}",
        customer_id=invoice.customer_id,
        method="bank_transfer",
        amount=Decimal(amount),
        amount_base=Decimal(amount),
        received_on=on,
        payer_name="payer",
    )
    session.add(payment)
    session.flush()
    ledger.allocate(session, invoice, Decimal(amount), payment=payment, effective_on=on, actor=actor)
    session.commit()


def test_interest_after_a_partial_payment_is_the_hand_computed_figure(
    session: Session, order: Order, people: dict[str, User], enabled: None
) -> None:
    invoice = issue(session, order, [(JAN(1), "10000.00")])
    pay(session, people["finance"], invoice, "4000.00", JAN(11))
    amount, rows = interest.compute(session, invoice, JAN(31))
    assert amount == Decimal("110.00")
    assert [(r["from"], r["to"], r["days"], r["balance"], r["amount"]) for r in rows] == [
        (JAN(2), JAN(11), 10, Decimal("10000.00"), Decimal("50.00")),
        (JAN(12), JAN(31), 20, Decimal("6000.00"), Decimal("60.00")),
    ]
    charge = interest.charge_interest(session, people["finance"], invoice.id, JAN(31))
    session.commit()
    assert charge is not None
    assert (charge.amount, charge.period_start, charge.period_end) == (Decimal("110.00"), JAN(2), JAN(31))
    assert charge.detail[1]["balance"] == "6000.00"


def test_no_day_is_charged_twice(session: Session, order: Order, people: dict[str, User], enabled: None) -> None:
    invoice = issue(session, order, [(JAN(1), "10000.00")])
    pay(session, people["finance"], invoice, "4000.00", JAN(11))
    interest.charge_interest(session, people["finance"], invoice.id, JAN(31))
    session.commit()
    with pytest.raises(BillingError) as again:
        interest.charge_interest(session, people["finance"], invoice.id, JAN(31))
    assert again.value.code == "nothing_due"
    with pytest.raises(BillingError):
        interest.charge_interest(session, people["finance"], invoice.id, JAN(20))
    amount, rows = interest.compute(session, invoice, FEB(10))
    assert amount == Decimal("30.00")  # 6,000 × 10 days × 0.0005: February 1–10 only
    assert rows[0]["from"] == FEB(1)
    second = interest.charge_interest(session, people["finance"], invoice.id, FEB(10))
    session.commit()
    assert second is not None and second.amount == Decimal("30.00")
    total = session.scalar(select(func.sum(BillingInterestCharge.amount)))
    assert Decimal(total) == Decimal("140.00")
    assert interest.interest_total(session, order.customer_id) == Decimal("140.00")


def test_instalments_are_charged_each_from_its_own_date(
    session: Session, order: Order, people: dict[str, User], enabled: None
) -> None:
    invoice = issue(session, order, [(JAN(1), "5000.00"), (FEB(1), "5000.00")])
    pay(session, people["finance"], invoice, "6000.00", JAN(15))
    amount, rows = interest.compute(session, invoice, FEB(28))
    # First due: 5,000 from 2 to 15 January (14 days); then paid. Second: 4,000 open from 2 to 28 February.
    assert [(r["due"], r["days"], r["balance"]) for r in rows] == [
        (1, 14, Decimal("5000.00")),
        (2, 27, Decimal("4000.00")),
    ]
    assert amount == Decimal("35.00") + Decimal("54.00")


def test_paid_in_time_owes_nothing(session: Session, order: Order, people: dict[str, User], enabled: None) -> None:
    invoice = issue(session, order, [(JAN(10), "1000.00")])
    pay(session, people["finance"], invoice, "1000.00", JAN(10))
    assert interest.compute(session, invoice, JAN(31)) == (Decimal("0.00"), [])
    with pytest.raises(BillingError) as nothing:
        interest.charge_interest(session, people["finance"], invoice.id, JAN(31))
    assert nothing.value.status == 422


def test_disabled_is_refused(session: Session, order: Order, people: dict[str, User]) -> None:
    invoice = issue(session, order, [(JAN(1), "10000.00")])
    with pytest.raises(BillingError) as disabled:
        interest.charge_interest(session, people["finance"], invoice.id, JAN(31))
    assert disabled.value.status == 409 and disabled.value.code == "interest_disabled"
    assert session.scalar(select(func.count(BillingInterestCharge.id))) == 0


def test_refusals(session: Session, order: Order, people: dict[str, User], enabled: None) -> None:
    invoice = issue(session, order, [(JAN(1), "10000.00")])
    with pytest.raises(BillingError) as forbidden:
        interest.charge_interest(session, people["seller"], invoice.id, JAN(31))
    assert forbidden.value.status == 403
    with pytest.raises(BillingError) as future:
        interest.charge_interest(session, people["finance"], invoice.id, TODAY + dt.timedelta(days=1))
    assert future.value.code == "future"
    assert session.scalar(select(func.count(BillingInterestCharge.id))) == 0


def test_the_api_charges_and_the_board_shows_it(
    client: Any, session: Session, order: Order, people: dict[str, User], enabled: None
) -> None:
    from core.testing import token_for

    invoice = issue(session, order, [(JAN(1), "10000.00")])
    pay(session, people["finance"], invoice, "4000.00", JAN(11))
    headers = {"Authorization": f"Bearer {token_for(session, people['finance'])}"}
    answer = client.post(
        f"/api/v1/billing/invoices/{invoice.id}/interest", headers=headers, json={"until": JAN(31).isoformat()}
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["amount"] == "110.00"
    again = client.post(
        f"/api/v1/billing/invoices/{invoice.id}/interest", headers=headers, json={"until": JAN(31).isoformat()}
    )
    assert again.status_code == 422
    board = client.get("/api/v1/billing/dunning", headers=headers).get_json()
    assert board["customers"][0]["interest_charged"] == "110.00"
    seller = {"Authorization": f"Bearer {token_for(session, people['seller'])}"}
    assert client.post(f"/api/v1/billing/invoices/{invoice.id}/interest", headers=seller, json={}).status_code == 403

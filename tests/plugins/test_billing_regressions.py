"""Billing regressions found in review: a shared balance, rounding of partial invoices, invoicing
ahead of delivery, future invoice dates, and copying an order waiting at logistics' release."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import pay, set_account
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, StepSetting, User
from core.services.orders import copy_order, take_action
from core.testing import make_order
from plugins.billing import credit, flow, invoices, payments, settlement
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingInvoice


@pytest.fixture
def ordo_plugins(request: pytest.FixtureRequest) -> Sequence[str]:
    return getattr(request, "param", ["billing"])


def _confirmed(session: Session, state: Any, actor: User, **payload: Any) -> Order:
    session.merge(StepSetting(key=flow.FINANCE_CHECK, enabled=False))
    order = make_order(session, actor, **payload)
    take_action(session, state.registry, actor, order, "submit")
    take_action(session, state.registry, actor, order, "confirm")
    session.commit()
    return order


@pytest.mark.req("BL-7")
def test_one_balance_covers_the_prepayment_of_one_order_not_of_every_order(session, state, admin, seed):
    set_account(session, "C001", prepayment_ratio=Decimal("50"))
    first = _confirmed(session, state, admin)
    second = _confirmed(session, state, admin)
    pay(session, admin, seed["local"].id, (first.total / 2).quantize(Decimal("0.01")))
    assert credit.gate_reasons(session, first, "release") == []
    (reason,) = credit.gate_reasons(session, second, "release")
    assert "required prepayment" in reason


@pytest.mark.req("BL-2")
def test_a_line_invoiced_in_parts_settles_despite_the_cents_of_rounding(session, state, admin, seed):
    line = {"product": "P-100", "quantity": "2", "unit_price": "12.35"}
    order = _confirmed(session, state, admin, lines=[line])
    (order_line,) = order.lines
    parts = []
    for _ in range(2):
        invoice = invoices.create_invoice(
            session, admin, order, basis="ordered", quantities={order_line.id: Decimal("1")}
        )
        invoices.issue_invoice(session, admin, invoice.id)
        session.commit()
        parts.append(invoice)
    invoiced = sum(i.total for i in parts)
    assert invoiced != settlement.delivered_amount(session, order) or order_line.tax_rate == 0
    for invoice in parts:
        pay(session, admin, seed["local"].id, invoice.open_amount, allocate_to=invoice)
    assert not [p for p in settlement.check(session, order).texts if "differs" in p or "invoiced" in p.lower()]


@pytest.mark.req("BL-3")
@pytest.mark.parametrize("ordo_plugins", [["billing", "logistics"]], indirect=True)
def test_ordered_quantities_are_not_invoiced_when_deliveries_are_tracked(session, state, admin, seed):
    order = _confirmed(session, state, admin)
    before = session.scalar(select(func.count(BillingInvoice.id)))
    with pytest.raises(BillingError) as refused:
        invoices.create_invoice(session, admin, order, basis="ordered")
    assert refused.value.code == "deliveries_tracked"
    session.rollback()
    assert session.scalar(select(func.count(BillingInvoice.id))) == before


@pytest.mark.req("BL-3")
def test_an_invoice_cannot_be_dated_in_the_future_and_takes_no_number(session, state, admin, seed):
    order = _confirmed(session, state, admin)
    draft = invoices.create_invoice(session, admin, order, basis="ordered")
    session.commit()
    with pytest.raises(BillingError) as refused:
        invoices.issue_invoice(session, admin, draft.id, invoice_date=dt.date.today() + dt.timedelta(days=400))
    assert refused.value.code == "future_date"
    session.rollback()
    session.refresh(draft)
    assert (draft.status, draft.number) == ("draft", None)


@pytest.mark.parametrize("ordo_plugins", [["billing", "logistics"]], indirect=True)
def test_an_order_waiting_at_the_outbound_check_can_be_copied(session, state, admin, seed):
    order = _confirmed(session, state, admin)  # nothing in stock: nothing reserved, not releasable
    assert order.step == "logistics.outbound_check"
    copy = copy_order(session, state.registry, admin, order)
    session.commit()
    assert copy.status == "draft" and copy.id != order.id


def test_a_payment_shows_only_the_allocations_the_viewer_may_see(session, state, admin, seed):
    from core.testing import make_user as new_user

    local = _confirmed(session, state, admin)
    invoice = invoices.create_invoice(session, admin, local, basis="ordered")
    invoices.issue_invoice(session, admin, invoice.id)
    session.commit()
    payment = pay(session, admin, seed["local"].id, invoice.open_amount, allocate_to=invoice)
    outsider = new_user(session, "cd.finance@example.com", ["sales_manager"], branch=seed["cd"])
    assert payments.allocations_of(session, payment.id) and not payments.allocations_of(session, payment.id, outsider)

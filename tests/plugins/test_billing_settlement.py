"""The settlement check and step (BL-2), write-offs, and the order page's billing panel.

Billing alone (services): a confirmed order waits at ``billing.settlement``; invoicing the
ordered quantities and paying completes it by itself. Core's ``complete`` is refused while
the documents disagree. A write-off approved by another person closes the rest (BL-6:
settled automatically). With logistics the unsigned delivery note, an acceptance not
accepted and invoiced ≠ delivered are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, invoice_order, pay
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Notification, Order, OrderTransition, StepSetting, User
from core.services import NotFound, ServiceError
from core.services.orders import take_action
from core.testing import PASSWORD, login, make_order, make_user
from plugins.billing import flow, invoices, settlement
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAllocation, BillingWriteOff

pytestmark = pytest.mark.req("BL-2")


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "both": make_user(session, "both@example.com", ["finance", "general_manager"], branch=hq),
    }


def settled_order(session: Session, state: Any, admin: User, people: dict[str, User]) -> Order:
    order = make_order(session, people["seller"], reference="PO-SETTLE-1")
    confirm(session, state.registry, admin, order)
    return order


def moves(session: Session, order: Order) -> list[str]:
    return list(
        session.scalars(
            select(OrderTransition.action).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
        )
    )


@pytest.mark.req("BL-6")
def test_billing_alone_a_service_order_completes_when_invoiced_and_paid(
    session: Session, state: Any, admin: User, people: dict[str, User]
) -> None:
    order = settled_order(session, state, admin, people)
    assert order.step == flow.SETTLEMENT
    assert any("delivered" in p for p in settlement.settlement_problems(session, order))
    invoice = invoice_order(session, people["finance"], order)
    session.refresh(order)
    assert order.step == flow.SETTLEMENT  # invoiced, not paid
    problems = settlement.settlement_problems(session, order)
    assert problems == [f"Invoice {invoice.number} still has {invoice.total} open."]
    pay(session, people["finance"], order.customer_id, invoice.total, allocate_to=invoice)
    session.refresh(order)
    assert (order.status, order.step) == ("completed", "completed")
    assert moves(session, order)[-1] == flow.SETTLED


def test_partial_payment_keeps_the_order_at_settlement(
    session: Session, state: Any, admin: User, people: dict[str, User]
) -> None:
    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, "100.00", allocate_to=invoice)
    session.refresh(order)
    assert order.step == flow.SETTLEMENT
    assert settlement.settlement_problems(session, order) == [
        f"Invoice {invoice.number} still has {invoice.total - Decimal('100.00')} open."
    ]


def test_no_contract_nor_reference_is_listed(
    session: Session, state: Any, admin: User, people: dict[str, User]
) -> None:
    order = make_order(session, people["seller"], reference="")
    confirm(session, state.registry, admin, order)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, invoice.total, allocate_to=invoice)
    session.refresh(order)
    assert order.step == flow.SETTLEMENT
    assert settlement.settlement_problems(session, order) == [settlement.NO_CONTRACT]


def test_complete_is_refused_while_not_settled_and_allowed_when_the_step_is_off(
    session: Session, state: Any, admin: User, people: dict[str, User]
) -> None:
    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, invoice.total, allocate_to=invoice)
    session.refresh(order)
    assert order.status == "completed"
    take_action(session, state.registry, admin, order, "reopen", reason="开错发票，需冲红")
    session.commit()
    assert order.step == "confirmed"
    note = invoices.create_credit_note(session, people["finance"], invoice.id, None, "开票错误")
    invoices.issue_invoice(session, people["finance"], note.id)
    session.commit()
    with pytest.raises(ServiceError) as refused:
        take_action(session, state.registry, admin, order, "complete")
    session.rollback()
    assert any(r.startswith("Invoiced 0.00 but delivered") for r in refused.value.details["reasons"])
    session.add(StepSetting(key=flow.SETTLEMENT, enabled=False))
    session.commit()
    assert settlement.completion_blockers(session, order) == []


@pytest.mark.req("BL-6")
def test_an_approved_write_off_completes_the_order(
    session: Session, state: Any, admin: User, people: dict[str, User]
) -> None:
    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, invoice.total - Decimal("50.00"), allocate_to=invoice)
    write_off = settlement.request_write_off(session, people["finance"], invoice.id, "50.00", "尾差无法收回")
    session.commit()
    assert write_off.status == "requested" and write_off.order_id == order.id
    gm_notices = session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == people["gm"].id)
    )
    assert gm_notices == 1
    settlement.decide_write_off(session, people["gm"], write_off.id, True, "同意")
    session.commit()
    session.refresh(order)
    session.refresh(invoice)
    assert invoice.open_amount == 0
    assert (order.status, moves(session, order)[-1]) == ("completed", flow.WRITTEN_OFF)
    allocation = session.scalars(select(BillingAllocation).where(BillingAllocation.write_off_id == write_off.id)).one()
    assert allocation.amount == Decimal("50.00")
    told = session.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == people["finance"].id)
    )
    assert told == 1


def test_write_off_refusals_change_nothing(session: Session, state: Any, admin: User, people: dict[str, User]) -> None:
    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, invoice.total - Decimal("50.00"), allocate_to=invoice)
    with pytest.raises(BillingError) as above:
        settlement.request_write_off(session, people["finance"], invoice.id, "50.01", "多核销")
    assert (above.value.code, above.value.status) == ("above_open", 422)
    with pytest.raises(BillingError) as no_reason:
        settlement.request_write_off(session, people["finance"], invoice.id, "10", "  ")
    assert no_reason.value.code == "reason_required"
    with pytest.raises(BillingError) as bad:
        settlement.request_write_off(session, people["finance"], invoice.id, "1.001", "x")
    assert bad.value.code == "invalid_amount"
    with pytest.raises(BillingError) as forbidden:
        settlement.request_write_off(session, people["seller"], invoice.id, "10", "x")
    assert forbidden.value.status == 403
    session.rollback()
    assert session.scalar(select(func.count()).select_from(BillingWriteOff)) == 0

    own = settlement.request_write_off(session, people["both"], invoice.id, "30.00", "客户破产")
    session.commit()
    with pytest.raises(BillingError) as same:
        settlement.decide_write_off(session, people["both"], own.id, True)
    assert (same.value.code, same.value.status) == ("same_person", 403)
    with pytest.raises(BillingError) as pending:
        settlement.request_write_off(session, people["finance"], invoice.id, "20.01", "再核销")
    assert pending.value.code == "above_open"  # 30 requested already: 20 left
    with pytest.raises(BillingError) as note:
        settlement.decide_write_off(session, people["gm"], own.id, False)
    assert note.value.code == "note_required"
    session.rollback()
    refused = settlement.decide_write_off(session, people["gm"], own.id, False, "证据不足")
    session.commit()
    assert refused.status == "refused"
    session.refresh(invoice)
    assert invoice.open_amount == Decimal("50.00")
    with pytest.raises(BillingError) as again:
        settlement.decide_write_off(session, people["gm"], own.id, True)
    assert again.value.status == 409
    with pytest.raises(NotFound):
        settlement.decide_write_off(session, people["gm"], 999999, True)


def test_write_off_screens_request_and_approve(
    session: Session, state: Any, admin: User, people: dict[str, User], client: Any
) -> None:
    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    pay(session, people["finance"], order.customer_id, invoice.total - Decimal("8.00"), allocate_to=invoice)
    order_id, invoice_id = order.id, invoice.id
    login(client, "finance@example.com", PASSWORD)
    page = client.get(f"/orders/{order_id}")
    html = page.get_data(as_text=True)
    assert 'id="billing-panel"' in html and f"/billing/invoices/{invoice_id}/write-off" in html
    assert "still has 8.00 open" in html
    form = client.get(f"/billing/invoices/{invoice_id}/write-off")
    token = form.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    bad = client.post(
        f"/billing/invoices/{invoice_id}/write-off", data={"amount": "9", "reason": "x", "csrf_token": token}
    )
    assert bad.status_code == 200 and "more than the 8.00" in bad.get_data(as_text=True)
    done = client.post(
        f"/billing/invoices/{invoice_id}/write-off",
        data={"amount": "8.00", "reason": "尾差", "csrf_token": token},
        follow_redirects=True,
    )
    assert done.status_code == 200
    write_off = session.scalars(select(BillingWriteOff)).one()
    session.rollback()
    client.post("/logout", data={"csrf_token": token})
    login(client, "gm@example.com", PASSWORD)
    listing = client.get("/billing/write-offs").get_data(as_text=True)
    assert f'data-write-off="{write_off.id}"' in listing and "data-confirm" in listing
    token = listing.split('name="csrf_token" value="')[1].split('"')[0]
    decided = client.post(
        f"/billing/write-offs/{write_off.id}/decide",
        data={"decision": "approve", "note": "", "csrf_token": token},
        follow_redirects=True,
    )
    assert "The write-off is approved." in decided.get_data(as_text=True)
    session.rollback()
    assert session.get(BillingWriteOff, write_off.id).status == "approved"  # type: ignore[union-attr]
    assert session.get(Order, order_id).status == "completed"  # type: ignore[union-attr]


def test_the_api_reads_the_settlement_check(
    session: Session, state: Any, admin: User, people: dict[str, User], client: Any
) -> None:
    from core.testing import ApiCaller, token_for

    order = settled_order(session, state, admin, people)
    invoice = invoice_order(session, people["finance"], order)
    api = ApiCaller(client, token_for(session, people["finance"]))
    body = api.get(f"/api/v1/billing/orders/{order.id}/settlement").get_json()
    assert body["settled"] is False and body["invoiced"] == str(invoice.total)
    assert body["problems"] == [f"Invoice {invoice.number} still has {invoice.total} open."]
    answer = api.post(f"/api/v1/billing/invoices/{invoice.id}/write-offs", json={"amount": "1.00", "reason": "尾差"})
    assert answer.status_code == 201 and answer.get_json()["status"] == "requested"
    refused = api.post(f"/api/v1/billing/write-offs/{answer.get_json()['id']}/decision", json={"approve": True})
    assert refused.status_code == 403  # finance may not approve
    outsider = make_user(session, "other@example.com", ["sales"], branch=None)
    other = ApiCaller(client, token_for(session, outsider))
    assert other.get(f"/api/v1/billing/orders/{order.id}/settlement").status_code == 404


class TestWithLogistics:
    """Billing with logistics: delivered means shipped; delivery notes and acceptance are checked."""

    @pytest.fixture
    def ordo_plugins(self) -> Sequence[str]:
        return ["billing", "logistics"]

    def test_unsigned_note_acceptance_and_invoiced_differences_are_listed(
        self, session: Session, state: Any, admin: User, seed: dict[str, Any], people: dict[str, User]
    ) -> None:
        from logistics_helpers import location, make_warehouse, receive

        from plugins.logistics import delivery, shipping

        keeper = make_user(session, "keeper@example.com", ["warehouse"], branch=seed["hq"])
        wh = make_warehouse(session, seed["hq"].company_id)
        p100 = seed["products"][0]
        receive(session, admin, p100, location(wh, "A-01"), "10")
        order = make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": "4"}])
        confirm(session, state.registry, admin, order)
        take_action(session, state.registry, keeper, order, "release")
        session.commit()
        shipment = shipping.plan_shipment(session, keeper, order, lines={order.lines[0].id: Decimal("3")})
        shipping.ship(session, keeper, shipment.id)
        session.commit()
        problems = settlement.settlement_problems(session, order)
        assert f"Shipment {shipment.number} has no signed delivery note." in problems
        delivered = settlement.delivered_amount(session, order)
        line = order.lines[0]
        expected = Decimal("3") * line.unit_price
        assert delivered == expected + (expected * line.tax_rate / 100).quantize(Decimal("0.01"))
        assert any(p.startswith("Invoiced 0.00 but delivered") for p in problems)
        assert any(p.startswith("Line 1 (P-100): invoiced 0, delivered 3") for p in problems)
        invoice = invoice_order(session, people["finance"], order, basis="delivered")
        assert invoice.total == delivered
        delivery.confirm_receipt(session, keeper, shipment.id)
        delivery.record_acceptance(session, keeper, order.id, "rework", "外观划伤")
        session.commit()
        problems = settlement.settlement_problems(session, order)
        assert not any("signed delivery note" in p for p in problems)
        assert not any(p.startswith("Invoiced") for p in problems)
        assert "The latest acceptance report says “rework”, not accepted." in problems

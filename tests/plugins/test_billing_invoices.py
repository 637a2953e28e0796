"""Invoices and credit notes (BL-3, BL-7): from delivered or ordered quantities, VAT rates and
types, drafts without numbers, immutability of issued invoices through services, API and
screens, credit notes, the prepayment deduction and the balance applied at issue, and the
report of deliveries not invoiced within a month."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from billing_helpers import confirm, customer, pay
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import Order, OrderLine, OrderTransition, User
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.billing import invoices
from plugins.billing.errors import BillingError
from plugins.billing.models import BillingAllocation, BillingInvoice, BillingUninvoicedReason


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


@pytest.fixture
def finance(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "fin@example.com", ["finance"], branch=seed["hq"])


def confirmed(session: Session, state: Any, admin: User, **payload: Any) -> Order:
    order = make_order(session, admin, **payload)
    confirm(session, state.registry, admin, order)
    return order


def lines_by_sku(order: Order) -> dict[str, OrderLine]:
    return {line.product.sku: line for line in order.lines}


def snapshot(session: Session, invoice_id: int) -> tuple[Any, ...]:
    session.expire_all()
    inv = session.get(BillingInvoice, invoice_id)
    assert inv is not None
    return (
        inv.status,
        inv.number,
        inv.invoice_type,
        inv.note,
        inv.total,
        inv.version,
        tuple((li.quantity, li.amount) for li in inv.lines),
    )


@pytest.mark.req("BL-3")
def test_without_logistics_the_ordered_quantities_of_a_confirmed_order_are_invoiced(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = make_order(session, admin)
    with pytest.raises(BillingError) as refused:
        invoices.create_invoice(session, finance, order)
    assert refused.value.status == 409 and refused.value.code == "order_not_invoiceable"
    session.rollback()
    confirm(session, state.registry, admin, order)
    assert invoices.delivered_quantities(session, order) == {
        line.id: Decimal(line.quantity).quantize(Decimal("0.001")) for line in order.lines
    }
    invoice = invoices.create_invoice(session, finance, order)
    assert invoice.status == "draft" and invoice.number is None and invoice.year is None
    assert invoice.total == order.total
    assert {li.order_line_id: li.quantity for li in invoice.lines} == {li.id: li.quantity for li in order.lines}
    session.commit()
    # Everything is on the draft: nothing more to invoice, and asking for more is refused.
    with pytest.raises(BillingError) as nothing:
        invoices.create_invoice(session, finance, order)
    assert nothing.value.code == "nothing_to_invoice"
    session.rollback()
    line = lines_by_sku(order)["P-100"]
    with pytest.raises(BillingError) as above:
        invoices.create_invoice(session, finance, order, quantities={line.id: "1"})
    assert above.value.code == "above_delivered" and above.value.status == 422
    session.rollback()
    assert session.scalar(select(func.count()).select_from(BillingInvoice)) == 1


@pytest.mark.req("BL-3")
def test_partial_invoice_unknown_line_and_bad_quantities_are_refused_before_any_change(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    p100 = lines_by_sku(order)["P-100"]
    for quantities, code in (
        ({999999: "1"}, "unknown_line"),
        ({p100.id: "abc"}, "invalid_quantity"),
        ({p100.id: "-1"}, "invalid_quantity"),
        ({p100.id: "2.5"}, "above_delivered"),
        ({p100.id: "0"}, "nothing_to_invoice"),
    ):
        with pytest.raises(BillingError) as refused:
            invoices.create_invoice(session, finance, order, quantities=quantities)
        assert refused.value.code == code
        session.rollback()
    assert session.scalar(select(func.count()).select_from(BillingInvoice)) == 0
    first = invoices.create_invoice(session, finance, order, quantities={str(p100.id): "1"})
    assert first.total == Decimal("1299.50")  # 1 × 1150.00 + 13 % VAT
    rest = invoices.create_invoice(session, finance, order)
    assert {li.order_line_id: li.quantity for li in rest.lines}[p100.id] == Decimal("1")


@pytest.mark.req("BL-3")
@pytest.mark.parametrize(
    ("rate", "tax"),
    [("13", "299.00"), ("9", "207.00"), ("6", "138.00"), ("0", "0.00")],
)
def test_vat_rates_are_computed_per_line(
    rate: str, tax: str, session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin, lines=[{"product": "P-100", "quantity": "2", "unit_price": "1150.00"}])
    order.lines[0].tax_rate = Decimal(rate)
    session.commit()
    invoice = invoices.create_invoice(session, finance, order, basis="ordered")
    assert invoice.untaxed == Decimal("2300.00")
    assert invoice.tax == Decimal(tax)
    assert invoice.total == Decimal("2300.00") + Decimal(tax)


@pytest.mark.req("BL-3")
def test_a_vat_rate_of_14_percent_is_refused_with_the_line(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    lines_by_sku(order)["P-300"].tax_rate = Decimal("14")
    session.commit()
    with pytest.raises(BillingError) as refused:
        invoices.create_invoice(session, finance, order)
    assert refused.value.code == "invalid_vat_rate"
    assert "P-300" in refused.value.message and "14" in refused.value.message
    session.rollback()
    assert session.scalar(select(func.count()).select_from(BillingInvoice)) == 0


@pytest.mark.req("BL-3")
def test_special_vat_invoice_needs_the_customers_tax_id_normal_does_not(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    with pytest.raises(BillingError) as refused:
        invoices.create_invoice(session, finance, order, invoice_type="special")
    assert refused.value.code == "tax_id_required"
    session.rollback()
    with pytest.raises(BillingError):
        invoices.create_invoice(session, finance, order, invoice_type="fancy")
    session.rollback()
    normal = invoices.create_invoice(session, finance, order, invoice_type="normal")
    assert normal.invoice_type == "normal"
    invoices.delete_draft(session, finance, normal.id)
    customer(session, "C001").tax_id = "91500000MA5U000001"
    session.commit()
    special = invoices.create_invoice(session, finance, order, invoice_type="special")
    assert special.invoice_type == "special" and special.buyer_tax_id == "91500000MA5U000001"
    assert special.buyer_name == "重庆山城机电有限公司"


@pytest.mark.req("BL-3")
def test_issue_numbers_per_kind_and_year_and_drafts_have_none(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    a = invoices.create_invoice(session, finance, confirmed(session, state, admin))
    b = invoices.create_invoice(session, finance, confirmed(session, state, admin))
    c = invoices.create_invoice(session, finance, confirmed(session, state, admin))
    session.commit()
    assert a.number is None and b.number is None
    invoices.issue_invoice(session, finance, b.id, invoice_date=dt.date(2025, 12, 1))
    invoices.issue_invoice(session, finance, a.id, invoice_date=dt.date(2025, 12, 2))
    invoices.issue_invoice(session, finance, c.id, invoice_date=dt.date(2026, 1, 5))
    session.commit()
    assert (b.number, a.number, c.number) == ("INV2025-000001", "INV2025-000002", "INV2026-000001")
    assert b.year == 2025 and c.year == 2026 and b.status == "issued" and b.issued_by_id == finance.id
    assert b.dues and sum(d.amount for d in b.dues) == b.total
    note = invoices.create_credit_note(session, finance, a.id, None, "wrong price")
    invoices.issue_invoice(session, finance, note.id, invoice_date=dt.date(2026, 3, 3))
    assert note.number == "CN2026-000001"


@pytest.mark.req("BL-3")
def test_issuing_without_the_permission_or_twice_is_refused(
    session: Session, state: Any, admin: User, finance: User, seed: dict[str, Any]
) -> None:
    sales = make_user(session, "s@example.com", ["sales"], branch=seed["hq"])
    draft = invoices.create_invoice(session, finance, confirmed(session, state, admin))
    session.commit()
    with pytest.raises(BillingError) as forbidden:
        invoices.issue_invoice(session, sales, draft.id)
    assert forbidden.value.status == 403
    session.rollback()
    invoices.issue_invoice(session, finance, draft.id)
    session.commit()
    with pytest.raises(BillingError) as twice:
        invoices.issue_invoice(session, finance, draft.id)
    assert twice.value.status == 409


@pytest.mark.req("BL-3")
def test_an_issued_invoice_cannot_be_edited_or_deleted_through_the_service(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    invoice = invoices.create_invoice(session, finance, order)
    invoices.issue_invoice(session, finance, invoice.id)
    session.commit()
    before = snapshot(session, invoice.id)
    for values in ({"note": "changed"}, {"invoice_type": "special"}, {"quantities": {}}):
        with pytest.raises(BillingError) as refused:
            invoices.update_draft(session, finance, invoice.id, values)
        assert refused.value.status == 409 and "immutable" in refused.value.message
        session.rollback()
    with pytest.raises(BillingError):
        invoices.delete_draft(session, finance, invoice.id)
    session.rollback()
    assert snapshot(session, invoice.id) == before


def test_a_draft_can_be_edited_and_a_stale_version_is_refused(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    p100 = lines_by_sku(order)["P-100"]
    draft = invoices.create_invoice(session, finance, order)
    session.commit()
    version = draft.version
    invoices.update_draft(session, finance, draft.id, {"quantities": {p100.id: "1"}, "note": "first"}, version)
    session.commit()
    assert [li.quantity for li in draft.lines] == [Decimal("1")] and draft.note == "first"
    with pytest.raises(BillingError) as stale:
        invoices.update_draft(session, finance, draft.id, {"note": "x"}, version)
    assert stale.value.code == "stale_version"
    session.rollback()
    with pytest.raises(BillingError) as unknown:
        invoices.update_draft(session, finance, draft.id, {"total": "1"})
    assert unknown.value.code == "invalid_field"


@pytest.mark.req("BL-3")
def test_a_partial_credit_note_allocates_to_the_invoice_and_gives_the_quantity_back(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    invoice = invoices.create_invoice(session, finance, order)
    invoices.issue_invoice(session, finance, invoice.id)
    session.commit()
    p100_line = next(li for li in invoice.lines if li.description and li.quantity == Decimal("2"))
    with pytest.raises(BillingError) as above:
        invoices.create_credit_note(session, finance, invoice.id, {p100_line.id: "3"}, "too many")
    assert above.value.code == "above_invoiced"
    session.rollback()
    with pytest.raises(BillingError) as no_reason:
        invoices.create_credit_note(session, finance, invoice.id, {p100_line.id: "1"}, "  ")
    assert no_reason.value.code == "reason_required"
    session.rollback()
    note = invoices.create_credit_note(session, finance, invoice.id, {p100_line.id: "1"}, "one motor damaged")
    assert note.kind == "credit_note" and note.status == "draft" and note.number is None
    assert note.total == Decimal("-1299.50") and note.lines[0].quantity == Decimal("-1")
    invoices.issue_invoice(session, finance, note.id)
    session.commit()
    assert note.number is not None and note.number.startswith("CN")
    allocation = session.scalars(select(BillingAllocation).where(BillingAllocation.credit_note_id == note.id)).one()
    assert allocation.invoice_id == invoice.id and allocation.amount == Decimal("1299.50")
    session.refresh(invoice)
    assert invoice.open_amount == invoice.total - Decimal("1299.50")
    # The corrected quantity may be invoiced again; more than the rest may not be credited.
    again = invoices.create_invoice(session, finance, order)
    assert [li.quantity for li in again.lines] == [Decimal("1")]
    with pytest.raises(BillingError):
        invoices.create_credit_note(session, finance, invoice.id, {p100_line.id: "1.5"}, "again")


@pytest.mark.req("BL-7")
def test_a_prepayment_invoice_is_deducted_from_the_later_invoice_and_the_balance_applied(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    prepayment = invoices.create_prepayment_invoice(session, finance, order, Decimal("30"))
    assert prepayment.basis == "prepayment" and prepayment.total == (order.total * Decimal("0.3")).quantize(
        Decimal("0.01")
    )
    invoices.issue_invoice(session, finance, prepayment.id)
    session.commit()
    pay(session, finance, order.customer_id, prepayment.total, allocate_to=prepayment)
    final = invoices.create_invoice(session, finance, order)
    deduction = [li for li in final.lines if li.order_line_id is None]
    assert len(deduction) == 1 and prepayment.number in deduction[0].description
    assert final.total == order.total - prepayment.total
    invoices.issue_invoice(session, finance, final.id)
    session.commit()
    # An overpayment in the balance is applied when the next invoice is issued (BL-7).
    order2 = confirmed(session, state, admin)
    pay(session, finance, order2.customer_id, "1000.00")
    second = invoices.create_invoice(session, finance, order2)
    invoices.issue_invoice(session, finance, second.id)
    session.commit()
    session.refresh(second)
    assert second.settled == Decimal("1000.00")


@pytest.mark.req("BL-3")
def test_uninvoiced_report_lists_late_deliveries_until_a_reason_is_recorded(
    session: Session, state: Any, admin: User, finance: User
) -> None:
    old = confirmed(session, state, admin)
    recent = confirmed(session, state, admin)
    done = confirmed(session, state, admin)
    for order in (old, done):
        for transition in session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)):
            transition.at = transition.at - dt.timedelta(days=40)
    session.commit()
    draft = invoices.create_invoice(session, finance, done)
    session.commit()
    today = company_now().date()  # the company's day: near midnight UTC it is not the server's
    # A draft does not invoice the delivery: it is still late until the invoice is issued.
    assert done.number in [r.order_number for r in invoices.uninvoiced_deliveries(session, finance, today)]
    invoices.issue_invoice(session, finance, draft.id)
    session.commit()
    rows = invoices.uninvoiced_deliveries(session, finance, today)
    assert [r.order_number for r in rows] == [old.number]
    assert rows[0].days >= 40 and rows[0].amount == old.total
    assert recent.number not in [r.order_number for r in rows]
    with pytest.raises(BillingError):
        invoices.record_uninvoiced_reason(session, finance, old.id, "", " ")
    session.rollback()
    invoices.record_uninvoiced_reason(session, finance, old.id, "", "customer asked for one monthly invoice")
    session.commit()
    assert invoices.uninvoiced_deliveries(session, finance, today) == []
    assert session.scalar(select(func.count()).select_from(BillingUninvoicedReason)) == 1


def test_out_of_scope_invoices_and_orders_answer_404(
    session: Session, state: Any, admin: User, finance: User, seed: dict[str, Any]
) -> None:
    order = confirmed(session, state, admin)
    draft = invoices.create_invoice(session, finance, order)
    session.commit()
    portal = make_user(session, "c2@example.com", ["customer"], customer=seed["remote"])
    with pytest.raises(Exception) as hidden:
        invoices.update_draft(session, portal, draft.id, {"note": "x"})
    assert getattr(hidden.value, "status", None) in (403, 404)


# --- API and screens ---------------------------------------------------------------------


@pytest.mark.req("BL-3")
def test_api_invoice_lifecycle_and_patch_of_an_issued_invoice_refused(
    client: FlaskClient, session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    client = ApiCaller(client, token_for(session, finance))  # type: ignore[assignment]
    created = client.post("/api/v1/billing/invoices", json={"order_id": order.id, "basis": "ordered"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["number"] is None and body["status"] == "draft"
    patched = client.patch(
        f"/api/v1/billing/invoices/{body['id']}", json={"note": "PO 4711", "version": body["version"]}
    )
    assert patched.status_code == 200 and patched.get_json()["note"] == "PO 4711"
    issued = client.post(f"/api/v1/billing/invoices/{body['id']}/issue", json={})
    assert issued.status_code == 200 and issued.get_json()["number"].startswith("INV")
    before = snapshot(session, body["id"])
    refused = client.patch(f"/api/v1/billing/invoices/{body['id']}", json={"note": "sneaky"})
    assert refused.status_code == 409
    assert "immutable" in refused.get_json()["error"]["message"]
    assert client.delete(f"/api/v1/billing/invoices/{body['id']}").status_code == 409
    assert snapshot(session, body["id"]) == before
    listed = client.get("/api/v1/billing/invoices?status=issued")
    assert listed.status_code == 200 and [i["id"] for i in listed.get_json()["items"]] == [body["id"]]
    line_id = issued.get_json()["lines"][0]["id"]
    note = client.post(
        f"/api/v1/billing/invoices/{body['id']}/credit-notes", json={"quantities": {str(line_id): "1"}, "reason": "x"}
    )
    assert note.status_code == 201 and note.get_json()["kind"] == "credit_note"
    pdf = client.get(f"/api/v1/billing/invoices/{body['id']}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    too_much = client.post(
        "/api/v1/billing/invoices", json={"order_id": order.id, "quantities": {str(order.lines[0].id): "99"}}
    )
    assert too_much.status_code == 422
    assert client.get("/api/v1/billing/invoices/999999").status_code == 404


@pytest.mark.req("BL-3")
def test_screen_refuses_editing_an_issued_invoice_and_shows_the_invoice(
    client: FlaskClient, session: Session, state: Any, admin: User, finance: User
) -> None:
    order = confirmed(session, state, admin)
    invoice = invoices.create_invoice(session, finance, order)
    session.commit()
    login(client, finance.email, PASSWORD)
    page = client.get(f"/billing/invoices/{invoice.id}")
    assert page.status_code == 200 and b"data-confirm" in page.data
    form = client.get(f"/billing/orders/{order.id}/invoice")
    assert form.status_code == 200
    token = csrf_token(client, f"/billing/invoices/{invoice.id}")
    issued = client.post(
        f"/billing/invoices/{invoice.id}/issue", data={"invoice_date": "", "csrf_token": token}, follow_redirects=True
    )
    assert issued.status_code == 200
    session.expire_all()
    assert session.get(BillingInvoice, invoice.id).status == "issued"  # type: ignore[union-attr]
    before = snapshot(session, invoice.id)
    edit = client.post(
        f"/billing/invoices/{invoice.id}/edit", data={"note": "sneaky", "csrf_token": token}, follow_redirects=True
    )
    assert edit.status_code == 200 and b"immutable" in edit.data
    assert snapshot(session, invoice.id) == before
    listing = client.get("/billing/invoices?status=issued")
    assert listing.status_code == 200 and invoice.number.encode() in listing.data  # type: ignore[union-attr]
    assert client.get("/billing/uninvoiced").status_code == 200


@pytest.mark.req("BL-3")
@pytest.mark.parametrize("ordo_plugins", [["billing", "logistics"]])
def test_with_logistics_only_shipped_quantities_are_invoiced(
    ordo_plugins: Sequence[str], session: Session, state: Any, admin: User, finance: User, seed: dict[str, Any]
) -> None:
    from logistics_helpers import location, make_warehouse, receive

    from core.services.orders import take_action
    from plugins.logistics import shipping

    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "1")
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=seed["hq"])
    order = make_order(session, sales, lines=[{"product": "P-100", "quantity": "3", "unit_price": "1000"}])
    confirm(session, state.registry, admin, order)
    clerk = make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])
    take_action(session, state.registry, admin, order, "release")
    session.commit()
    line = order.lines[0]
    with pytest.raises(BillingError) as nothing:
        invoices.create_invoice(session, finance, order)
    assert nothing.value.code == "nothing_to_invoice"  # nothing shipped yet
    session.rollback()
    shipment = shipping.plan_shipment(session, clerk, order)
    shipping.ship(session, clerk, shipment.id)
    session.commit()
    assert invoices.delivered_quantities(session, order) == {line.id: Decimal("1.000")}
    with pytest.raises(BillingError) as above:
        invoices.create_invoice(session, finance, order, quantities={line.id: "2"})
    assert above.value.code == "above_delivered"
    session.rollback()
    invoice = invoices.create_invoice(session, finance, order)
    assert [li.quantity for li in invoice.lines] == [Decimal("1")] and invoice.untaxed == Decimal("1000.00")
    with pytest.raises(BillingError) as ahead:  # deliveries are tracked: nothing invoiced ahead of them
        invoices.create_invoice(session, finance, order, basis="ordered")
    assert ahead.value.code == "deliveries_tracked"

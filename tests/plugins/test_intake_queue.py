"""The manual-check queue and check screen, corrections and the order-page panel (IN-4, IN-5, IN-7, IN-9,
CORE-9): the clerk sees the orders of their scope, urgent first; corrects an order against its original
document, each change recorded and marked as entry error or not; accepts or rejects it and moves on."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attachments.service import add_attachment
from core.clock import COMPANY_TIMEZONE
from core.models import AuditLog, Notification, Order, OrderTransition, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.intake import corrections, flow, panel
from plugins.intake.models import IntakeCorrection, IntakeFinding, IntakeOrder

pytestmark = pytest.mark.req("IN-5")

#: Intake's clock for these tests: Thursday 2030-01-03.
THURSDAY = dt.datetime(2030, 1, 3, 10, 0, tzinfo=COMPANY_TIMEZONE)
FAR = "2030-03-15"
QUEUE = "/intake/queue/"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "company_now", lambda: THURSDAY)


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    return {
        "clerk": make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"]),
        "clerk2": make_user(session, "clerk2@example.com", ["order_clerk"], branch=seed["hq"]),
        "cd_clerk": make_user(session, "cd.clerk@example.com", ["order_clerk"], branch=seed["cd"]),
        "cd_sales": make_user(session, "cd.sales@example.com", ["sales"], branch=seed["cd"]),
    }


def submit(session: Session, registry: Registry, actor: User, **overrides: Any) -> Order:
    order = make_order(session, actor, requested_date=overrides.pop("requested_date", FAR), **overrides)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def reread(session: Session) -> None:
    """Forget what the test's session holds, so it reads what the requests committed."""
    session.rollback()
    session.expire_all()


def as_user(client: Any, user: User) -> Any:
    login(client, user.email, PASSWORD)
    return client


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def queue_numbers(client: Any, query: str = "") -> list[str]:
    page = html(client.get(QUEUE + query))
    return re.findall(r'<tr data-order="([^"]+)"', page)


def correction_form(client: Any, order: Order, **fields: str) -> dict[str, str]:
    """The check screen's form as the browser would post it, with ``fields`` changed."""
    page = html(client.get(f"{QUEUE}{order.id}"))
    form = re.search(r'<form method="post" action="[^"]+" id="correction-form".*?</form>', page, re.S)
    assert form, "no correction form"
    data = {"csrf_token": csrf_token(client, f"{QUEUE}{order.id}")}
    for name, value in re.findall(
        r'<input class="form-control[^"]*" type="[^"]+" (?:inputmode="decimal" )?'
        r'(?:id="[^"]+" )?name="([^"]+)"(?: id="[^"]+")? value="([^"]*)"',
        form.group(0),
    ):
        data[name] = value
    for name in ("payment_method", "urgency", "transaction_type"):
        match = re.search(rf'<select[^>]*name="{name}">.*?<option value="([^"]+)" selected', form.group(0), re.S)
        if match:
            data[name] = match.group(1)
    data["version"] = re.search(r'name="version" value="(\d+)"', form.group(0)).group(1)
    data.update(fields)
    return data


# --- the queue ---------------------------------------------------------------------------


@pytest.mark.req("CORE-9")
def test_the_queue_shows_urgent_orders_first_then_by_due_date(client, session, registry, people):
    first = submit(session, registry, people["clerk"], reference="A")
    second = submit(session, registry, people["clerk"], reference="B")
    urgent = submit(session, registry, people["clerk"], reference="C", urgency="urgent")
    session.get(IntakeOrder, second.id).check_due = dt.date(2030, 1, 4)  # due earlier than the first
    session.commit()
    as_user(client, people["clerk"])
    assert queue_numbers(client) == [urgent.number, second.number, first.number]
    page = html(client.get(QUEUE))
    row = re.search(rf'<tr data-order="{first.number}".*?</tr>', page, re.S).group(0)
    assert "2 working days left" in row and "clerk" in row
    assert 'data-warnings="1"' in row  # the unit price 1150 differs from the list price


def test_the_queue_filters_by_channel_urgency_and_overdue(client, session, registry, people):
    phone = submit(session, registry, people["clerk"], reference="P")
    mail = submit(session, registry, people["clerk"], reference="E", channel="email")
    urgent = submit(session, registry, people["clerk"], reference="U", urgency="urgent")
    session.get(IntakeOrder, mail.id).check_due = dt.date(2030, 1, 2)  # yesterday: overdue
    session.commit()
    as_user(client, people["clerk"])
    assert queue_numbers(client, "?channel=email") == [mail.number]
    assert queue_numbers(client, "?urgent=1") == [urgent.number]
    assert queue_numbers(client, "?overdue=1") == [mail.number]
    assert queue_numbers(client, f"?q={phone.number}") == [phone.number]
    row = re.search(rf'<tr data-order="{mail.number}"[^>]*>', html(client.get(QUEUE))).group(0)
    assert "table-danger" in row


def test_the_queue_pages(client, session, registry, people):
    orders = [submit(session, registry, people["clerk"], reference=f"R{i}") for i in range(22)]
    as_user(client, people["clerk"])
    assert len(queue_numbers(client)) == 20
    assert queue_numbers(client, "?page=2") == [o.number for o in orders[20:]]


@pytest.mark.req("CORE-4")
def test_a_clerk_sees_only_the_orders_of_their_scope(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    as_user(client, people["cd_clerk"])
    assert queue_numbers(client) == []
    assert client.get(f"{QUEUE}{order.id}").status_code == 404
    assert client.get(f"{QUEUE}999999").status_code == 404


def test_the_queue_needs_the_check_permission(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    as_user(client, people["cd_sales"])
    assert client.get(QUEUE).status_code == 403
    assert client.get(f"{QUEUE}{order.id}").status_code == 403
    token = csrf_token(client, "/orders")
    assert client.post(f"{QUEUE}{order.id}/act", data={"csrf_token": token, "action": "accept"}).status_code == 403
    assert session.get(Order, order.id).step == flow.MANUAL_CHECK


def test_the_menu_offers_the_queue_to_clerks(client, session, registry, people):
    as_user(client, people["clerk"])
    assert 'href="/intake/queue/"' in html(client.get("/orders"))


# --- corrections -------------------------------------------------------------------------


@pytest.mark.req("IN-9")
def test_a_correction_is_recorded_per_field_audited_and_the_totals_recomputed(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    total_before = order.total
    as_user(client, people["clerk2"])
    data = correction_form(
        client,
        order,
        **{
            "lines-0-quantity": "3",
            "error-lines[0].quantity": "1",
            "contact_phone": "023-6000-9999",
            "note": "Fax shows 3 pieces",
            "transaction_type": "export",
        },
    )
    response = client.post(f"{QUEUE}{order.id}", data=data, follow_redirects=True)
    assert response.status_code == 200
    assert "2 corrections saved (1 entry errors)" in html(response)
    reread(session)
    rows = session.scalars(select(IntakeCorrection).where(IntakeCorrection.order_id == order.id)).all()
    assert sorted((r.field, r.before, r.after, r.entry_error) for r in rows) == [
        ("contact_phone", "", "023-6000-9999", False),
        ("lines[0].quantity", "2", "3", True),
    ]
    assert {r.note for r in rows} == {"Fax shows 3 pieces"} and {r.user_id for r in rows} == {people["clerk2"].id}
    fresh = session.get(Order, order.id)
    assert fresh.lines[0].quantity == Decimal("3")
    assert fresh.total == total_before + Decimal("1150.00") * Decimal("1.13")
    assert fresh.step == flow.MANUAL_CHECK  # a correction does not move the order
    assert session.get(IntakeOrder, order.id).transaction_type == "export"
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "intake_correction")).one()
    assert entry.order_id == order.id and entry.actor_id == people["clerk2"].id
    assert entry.changes["lines[0].quantity"] == ["2", "3"] and entry.changes["entry_errors"] == ["lines[0].quantity"]
    assert entry.changes["transaction_type"] == ["domestic", "export"] and entry.reason == "Fax shows 3 pieces"


@pytest.mark.req("IN-5")
def test_correcting_the_price_re_runs_the_precheck_and_clears_its_warning(session, registry, people):
    order = submit(session, registry, people["clerk"])
    assert session.get(IntakeOrder, order.id).precheck_level == "warn"
    result = corrections.correct_order(
        session, people["clerk2"], order.id, order.version, {"lines": {0: {"unit_price": "1200"}}}
    )
    session.commit()
    assert [c.field for c in result.corrections] == ["lines[0].unit_price"]
    assert session.get(IntakeOrder, order.id).precheck_level == "pass"
    levels = session.scalars(select(IntakeFinding.level).where(IntakeFinding.order_id == order.id)).all()
    assert "warn" not in levels and levels


@pytest.mark.req("IN-9")
def test_bad_input_is_refused_field_by_field_and_nothing_changes(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    version = order.version
    as_user(client, people["clerk"])
    data = correction_form(
        client,
        order,
        **{"lines-0-quantity": "abc", "lines-1-discount": "150", "payment_method": "barter", "contact_phone": "x" * 51},
    )
    response = client.post(f"{QUEUE}{order.id}", data=data)
    assert response.status_code == 422
    page = html(response)
    assert "Not a valid number." in page
    assert "Discount is a percentage from 0 to 100." in page
    assert "Must be one of" in page or "payment" in page.lower()
    assert 'value="abc"' in page  # the clerk's input is kept to fix
    reread(session)
    assert session.scalars(select(IntakeCorrection)).all() == []
    fresh = session.get(Order, order.id)
    assert fresh.version == version and fresh.lines[0].quantity == Decimal("2")
    assert session.scalars(select(AuditLog).where(AuditLog.action == "intake_correction")).all() == []


@pytest.mark.req("CORE-9")
def test_an_order_made_urgent_while_checking_is_announced(session, registry, people):
    order = submit(session, registry, people["clerk"])
    corrections.correct_order(session, people["clerk2"], order, order.version, {"urgency": "urgent"})
    session.commit()
    told = session.scalars(
        select(Notification.user_id).where(
            Notification.template == flow.URGENT_ORDER.name, Notification.order_id == order.id
        )
    ).all()
    assert sorted(told) == sorted([people["clerk"].id, people["clerk2"].id])


def test_the_service_refuses_unknown_fields_and_lines(session, registry, people):
    order = submit(session, registry, people["clerk"])
    with pytest.raises(ServiceError) as refused:
        corrections.correct_order(
            session, people["clerk"], order, order.version, {"customer": "C002", "lines": {7: {"quantity": "1"}}}
        )
    assert refused.value.status == 422
    assert refused.value.details["customer"] == ["This field cannot be corrected here."]
    assert "7" in refused.value.details["lines"]


def test_a_stale_version_is_refused_with_409(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    with pytest.raises(ServiceError) as refused:
        corrections.correct_order(session, people["clerk"], order, order.version - 1, {"reference": "X"})
    assert (refused.value.status, refused.value.code) == (409, "stale_version")
    reread(session)
    as_user(client, people["clerk"])
    data = correction_form(client, order, reference="PO-NEW")
    data["version"] = str(order.version - 1)
    response = client.post(f"{QUEUE}{order.id}", data=data)
    assert response.status_code == 409
    assert "Someone changed this order meanwhile" in html(response)
    reread(session)
    assert session.get(Order, order.id).reference == "PO-2026-001"


def test_only_orders_in_the_manual_check_are_corrected(session, registry, people):
    order = submit(session, registry, people["clerk"])
    take_action(session, registry, people["clerk2"], order, "accept")
    session.commit()
    with pytest.raises(ServiceError) as refused:
        corrections.correct_order(session, people["clerk2"], order, order.version, {"reference": "X"})
    assert refused.value.status == 409 and "manual check" in refused.value.message


def test_corrections_need_the_permission_and_the_scope(session, registry, people):
    order = submit(session, registry, people["clerk"])
    with pytest.raises(ServiceError) as outside:
        corrections.correct_order(session, people["cd_clerk"], order.id, order.version, {"reference": "X"})
    assert outside.value.status == 404
    sales = make_user(session, "own.sales@example.com", ["sales"])
    order.owner_id = sales.id
    session.commit()
    with pytest.raises(ServiceError) as forbidden:
        corrections.correct_order(session, sales, order.id, order.version, {"reference": "X"})
    assert forbidden.value.status == 403


# --- accept and reject from the screen ----------------------------------------------------


def test_accepting_from_the_check_screen_goes_on_to_the_next_order(client, session, registry, people):
    first = submit(session, registry, people["clerk"], urgency="urgent")
    second = submit(session, registry, people["clerk"], reference="PO-2")
    as_user(client, people["clerk2"])
    token = csrf_token(client, f"{QUEUE}{first.id}")
    response = client.post(
        f"{QUEUE}{first.id}/act", data={"csrf_token": token, "action": "accept", "version": first.version}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(f"{QUEUE}{second.id}")
    reread(session)
    assert session.get(Order, first.id).step == "submitted"
    record = session.get(IntakeOrder, first.id)
    assert (record.check_outcome, record.checked_by_id) == ("accepted", people["clerk2"].id)
    response = client.post(
        f"{QUEUE}{second.id}/act",
        data={"csrf_token": token, "action": "reject", "version": second.version, "reason": "Duplicate of PO-1"},
        follow_redirects=True,
    )
    assert "The queue is empty" in html(response)
    reread(session)
    assert session.get(Order, second.id).status == "rejected"
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == second.id)).all()[-1]
    assert (last.action, last.reason) == ("reject", "Duplicate of PO-1")


def test_reject_without_a_reason_or_with_a_stale_version_does_nothing(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    as_user(client, people["clerk2"])
    token = csrf_token(client, f"{QUEUE}{order.id}")
    page = html(
        client.post(f"{QUEUE}{order.id}/act", data={"csrf_token": token, "action": "reject"}, follow_redirects=True)
    )
    assert "needs a reason" in page
    stale = {"csrf_token": token, "action": "accept", "version": order.version - 1}
    page = html(client.post(f"{QUEUE}{order.id}/act", data=stale, follow_redirects=True))
    assert "Someone changed this order meanwhile" in page
    reread(session)
    assert session.get(Order, order.id).step == flow.MANUAL_CHECK


def test_four_eyes_is_shown_on_the_check_screen_and_refuses_the_entering_clerk(client, session, registry, people):
    set_setting(session, flow.FOUR_EYES, True, registry=registry)
    session.commit()
    order = submit(session, registry, people["clerk"])
    as_user(client, people["clerk"])
    page = html(client.get(f"{QUEUE}{order.id}"))
    assert "Four-eyes verification: another clerk must accept an order you entered." in page
    token = csrf_token(client, f"{QUEUE}{order.id}")
    page = html(
        client.post(
            f"{QUEUE}{order.id}/act",
            data={"csrf_token": token, "action": "accept", "version": order.version},
            follow_redirects=True,
        )
    )
    assert "was refused" in page and "Four-eyes" in page
    reread(session)
    assert session.get(Order, order.id).step == flow.MANUAL_CHECK


def test_the_check_screen_shows_findings_and_the_original_document(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    pdf = io.BytesIO()
    writer.write(pdf)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(jpeg, format="JPEG")
    original = add_attachment(
        session, people["clerk"], order.id, filename="fax.pdf", data=pdf.getvalue(), kind="customer_order"
    )
    scan = add_attachment(session, people["clerk"], order.id, filename="scan.jpg", data=jpeg.getvalue())
    session.commit()
    as_user(client, people["clerk2"])
    page = html(client.get(f"{QUEUE}{order.id}"))
    view = f"{QUEUE}{order.id}/attachments/{original.id}/view"
    assert f'id="check-pdf" title="fax.pdf" src="{view}"' in page
    assert f'src="{QUEUE}{order.id}/attachments/{scan.id}/view"' in page
    assert 'data-level="warn"' in page and "1150" in page
    shown = client.get(view)
    assert shown.status_code == 200 and shown.data == pdf.getvalue()
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN" and shown.headers["Content-Type"] == "application/pdf"
    as_user(client, people["cd_clerk"])
    assert client.get(view).status_code == 404


# --- the order-page panel ----------------------------------------------------------------


@pytest.mark.req("IN-7")
def test_the_order_panel_shows_classification_findings_check_and_corrections(client, session, registry, people):
    order = submit(session, registry, people["clerk"])
    corrections.correct_order(
        session,
        people["clerk2"],
        order,
        order.version,
        {"lines": {0: {"quantity": "3"}}},
        entry_errors=["lines[0].quantity"],
        note="Fax says 3",
    )
    take_action(session, registry, people["clerk2"], order, "accept")
    session.commit()
    as_user(client, people["clerk"])
    page = html(client.get(f"/orders/{order.id}"))
    block = re.search(r'<div class="intake-panel".*?</table>', page, re.S).group(0)
    assert "Non-regular order" in block and "Domestic sale" in block
    assert "Accepted" in block and "clerk2" in block
    assert 'data-level="warn"' in block and "1150" in block
    assert 'data-field="lines[0].quantity" data-entry-error="1"' in block
    assert "Line 1 · Quantity" in block and "Fax says 3" in block


def test_portal_users_and_users_outside_the_scope_get_no_intake_panel(app, client, session, registry, people, seed):
    order = submit(session, registry, people["clerk"])
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    with app.test_request_context():
        assert panel.panels(session, order, buyer) == []
        assert panel.panels(session, order, people["cd_sales"]) == []
        assert len(panel.panels(session, order, people["clerk"])) == 1
    as_user(client, buyer)
    page = client.get(f"/orders/{order.id}", follow_redirects=True)  # the portal may show its own page
    assert page.status_code == 200 and order.number in html(page) and "intake-panel" not in html(page)


def test_a_draft_has_no_intake_panel(session, registry, people):
    draft = make_order(session, people["clerk"])
    assert panel.panels(session, draft, people["clerk"]) == []

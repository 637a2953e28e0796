"""Dunning (BL-4): every ladder step fires on its day and only once, pauses stop it, letters are PDFs.

Invoices are issued with due dates around a fixed day ``DUE`` and ``run_dunning`` is called
with a ``now`` on the days that matter, so the ladder is walked day by day: reminder 3 days
before, friendly reminder 7 days after, the formal letter (催款函, archived PDF) at 30, legal
escalation at 60 — each to the right recipients, each once. Disputes and promises pause it;
paid dues get nothing; the dunning board, its forms and the API do the same.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Customer, Notification, Order, OutboxMessage, User
from core.models.files import OrderAttachment
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.billing import dunning, dunning_documents, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    BillingDunningEvent,
    BillingDunningLevel,
    BillingInvoice,
    BillingInvoiceDue,
    BillingPayment,
)

pytestmark = pytest.mark.req("BL-4")

TODAY = dt.datetime.now(COMPANY_TIMEZONE).date()
#: The due date of the test invoices: in the future, so promises can be dated after it.
DUE = TODAY + dt.timedelta(days=10)


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
    }


_numbers = iter(range(1, 10_000))


def issue(
    session: Session, order: Order, total: str, *, due: dt.date = DUE, invoice_date: dt.date | None = None
) -> BillingInvoice:
    """An issued invoice of ``order`` with one due (built directly: the invoice service is another helper's)."""
    amount = Decimal(total)
    invoice = BillingInvoice(
        company_id=order.company_id,
        kind="invoice",
        number=f"INV-T{next(_numbers):04d}",
        year=(invoice_date or due).year,
        status="issued",
        basis="ordered",
        customer_id=order.customer_id,
        order_id=order.id,
        untaxed=amount,
        tax=Decimal("0"),
        total=amount,
        invoice_date=invoice_date or due - dt.timedelta(days=30),
        due_date=due,
        issued_at=dt.datetime.now(dt.UTC),
    )
    invoice.dues = [BillingInvoiceDue(sequence=1, due_date=due, amount=amount)]
    session.add(invoice)
    session.commit()
    return invoice


def pay(session: Session, actor: User, invoice: BillingInvoice, amount: str, on: dt.date) -> BillingPayment:
    """A bank transfer allocated to ``invoice`` (ledger.allocate, the shared arithmetic)."""
    payment = BillingPayment(
        company_id=invoice.company_id,
        number=f"PAY-T{next(_numbers):04d}",
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
    return payment


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    """``day`` at ``hour`` o'clock company time."""
    return dt.datetime.combine(day, dt.time(hour), COMPANY_TIMEZONE)


def run(session: Session, day: dt.date) -> int:
    """Run the dunning job on ``day`` and commit."""
    count = dunning.run_dunning(session, at(day))
    session.commit()
    return count


def days(n: int) -> dt.date:
    return DUE + dt.timedelta(days=n)


def sent(session: Session, template: str) -> list[Notification]:
    """In-app notices of ``template`` (users' bells and customers' portal lists)."""
    return list(session.scalars(select(Notification).where(Notification.template == template)))


@pytest.fixture
def order(session: Session, people: dict[str, User], seed: dict[str, Any]) -> Order:
    return make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": "2"}])


@pytest.fixture
def customer(session: Session, order: Order) -> Customer:
    found = session.get(Customer, order.customer_id)
    assert found is not None
    return found


def test_the_seeded_ladder(session: Session) -> None:
    ladder = [
        (level.code, level.days, level.kind, level.letter, level.notify_sales) for level in dunning.levels(session)
    ]
    assert ladder == [
        ("before_due", -3, "reminder", False, False),
        ("friendly", 7, "friendly", False, False),
        ("letter", 30, "letter", True, True),
        ("legal", 60, "legal", False, True),
    ]


def test_the_job_is_registered(state: Any) -> None:
    job = state.registry.jobs["billing.dunning"]
    assert job.schedule == "daily:09:00"


def test_every_step_fires_on_its_day_and_only_once(
    session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    invoice = issue(session, order, "1000.00")
    assert run(session, days(-4)) == 0
    assert run(session, days(-3)) == 1
    reminders = sent(session, "billing.dunning_reminder")
    assert [(n.customer_id, n.user_id) for n in reminders] == [(customer.id, None)]
    assert invoice.number in reminders[0].subject
    assert run(session, days(-3)) == 0  # idempotent: the same day again sends nothing
    assert run(session, days(6)) == 0
    assert run(session, days(7)) == 1
    assert [n.customer_id for n in sent(session, "billing.dunning_friendly")] == [customer.id]
    assert run(session, days(8)) == 0
    assert run(session, days(29)) == 0
    assert run(session, days(30)) == 1
    letters = sent(session, "billing.dunning_letter")
    # The letter goes to the customer and tells the salesperson (the order's owner).
    assert {(n.customer_id, n.user_id) for n in letters} == {(customer.id, None), (None, people["seller"].id)}
    assert run(session, days(45)) == 0
    assert run(session, days(60)) == 1
    legal = sent(session, "billing.dunning_legal")
    users = {n.user_id for n in legal if n.user_id}
    assert {people["seller"].id, people["finance"].id, people["gm"].id} <= users
    assert any(n.customer_id == customer.id for n in legal)
    assert run(session, days(90)) == 0
    events = session.scalars(select(BillingDunningEvent).order_by(BillingDunningEvent.id)).all()
    codes = [session.get(BillingDunningLevel, e.level_id).code for e in events]  # type: ignore[union-attr]
    assert codes == ["before_due", "friendly", "letter", "legal"]
    assert all(e.open_amount == Decimal("1000.00") for e in events)
    # The customer's e-mail contact got each step once too.
    mails = session.scalars(
        select(OutboxMessage.template).where(OutboxMessage.customer_id == customer.id).order_by(OutboxMessage.id)
    ).all()
    assert mails == [
        "billing.dunning_reminder",
        "billing.dunning_friendly",
        "billing.dunning_letter",
        "billing.dunning_legal",
    ]


def test_only_the_highest_step_goes_when_several_are_due(session: Session, order: Order) -> None:
    issue(session, order, "500.00")
    assert run(session, days(35)) == 1
    assert sent(session, "billing.dunning_reminder") == []
    assert sent(session, "billing.dunning_friendly") == []
    assert sent(session, "billing.dunning_letter")
    # The skipped lower steps never fire later: the ladder only climbs.
    assert run(session, days(36)) == 0
    assert run(session, days(60)) == 1
    assert session.scalar(select(func.count(BillingDunningEvent.id))) == 2


def test_letter_is_a_pdf_archived_on_the_order(
    session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    invoice = issue(session, order, "12345.60")
    assert run(session, days(30)) == 1
    event = session.scalars(select(BillingDunningEvent)).one()
    assert event.letter_attachment_id is not None
    attachment = session.get(OrderAttachment, event.letter_attachment_id)
    assert attachment is not None and attachment.order_id == order.id and attachment.customer_visible
    name, pdf = dunning_documents.letter_pdf(session, people["finance"], event.id)
    assert name == attachment.filename and pdf.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "催款函" in text
    assert customer.name in text
    assert "12,345.60" in text
    assert invoice.number in text  # type: ignore[operator]
    english = dunning_documents.letter_pdf(session, people["finance"], event.id, "en")[1]
    english_text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(english)).pages)
    assert "Dunning letter" in english_text and "12,345.60" in english_text


def test_a_dispute_pauses_and_ending_it_resumes(
    session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    issue(session, order, "800.00")
    pause = dunning.pause_dunning(session, people["finance"], customer.id, "dispute", "Quantity disputed")
    session.commit()
    assert run(session, days(7)) == 0
    assert run(session, days(40)) == 0
    dunning.end_pause(session, people["finance"], pause.id)
    session.commit()
    assert run(session, days(41)) == 1
    assert sent(session, "billing.dunning_letter")
    with pytest.raises(BillingError) as ended:
        dunning.end_pause(session, people["finance"], pause.id)
    assert ended.value.status == 409


def test_a_promise_pauses_until_its_date(
    session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    issue(session, order, "800.00")
    dunning.pause_dunning(session, people["finance"], customer.id, "promise", "Pays on the 20th", until=days(10))
    session.commit()
    assert run(session, days(7)) == 0
    assert run(session, days(10)) == 0
    assert run(session, days(11)) == 1
    assert sent(session, "billing.dunning_friendly")


def test_a_pause_of_one_invoice_leaves_the_others(
    session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    disputed = issue(session, order, "300.00")
    other = issue(session, order, "400.00")
    dunning.pause_dunning(session, people["finance"], customer.id, "dispute", "Wrong price", invoice_id=disputed.id)
    session.commit()
    assert run(session, days(7)) == 1
    assert session.scalars(select(BillingDunningEvent.invoice_id)).all() == [other.id]


def test_paid_dues_get_nothing_and_partial_payments_lower_the_amount(
    session: Session, order: Order, people: dict[str, User]
) -> None:
    paid = issue(session, order, "600.00")
    partly = issue(session, order, "1000.00")
    pay(session, people["finance"], paid, "600.00", TODAY)
    pay(session, people["finance"], partly, "250.00", TODAY)
    assert run(session, days(7)) == 1
    event = session.scalars(select(BillingDunningEvent)).one()
    assert event.invoice_id == partly.id
    assert event.open_amount == Decimal("750.00")


def test_pause_refusals(session: Session, order: Order, customer: Customer, people: dict[str, User]) -> None:
    finance, seller = people["finance"], people["seller"]
    with pytest.raises(BillingError) as no_note:
        dunning.pause_dunning(session, finance, customer.id, "dispute", "  ")
    assert no_note.value.code == "note_required"
    with pytest.raises(BillingError) as no_date:
        dunning.pause_dunning(session, finance, customer.id, "promise", "Will pay")
    assert no_date.value.code == "promise_date"
    with pytest.raises(BillingError) as past:
        dunning.pause_dunning(session, finance, customer.id, "promise", "Will pay", until=TODAY)
    assert past.value.code == "promise_date"
    with pytest.raises(BillingError) as kind:
        dunning.pause_dunning(session, finance, customer.id, "holiday", "Away")
    assert kind.value.status == 422
    with pytest.raises(BillingError) as forbidden:
        dunning.pause_dunning(session, seller, customer.id, "dispute", "Disputed")
    assert forbidden.value.status == 403
    assert dunning.active_pauses(session, TODAY) == []


def test_ladder_levels_are_managed_and_checked(session: Session, order: Order, people: dict[str, User]) -> None:
    finance, seller = people["finance"], people["seller"]
    with pytest.raises(BillingError) as taken:
        dunning.save_level(session, finance, {"code": "second", "days": 30, "kind": "friendly"})
    assert taken.value.code == "days_taken"
    with pytest.raises(BillingError) as kind:
        dunning.save_level(session, finance, {"code": "second", "days": 15, "kind": "shouting"})
    assert kind.value.code == "invalid_kind"
    with pytest.raises(BillingError) as forbidden:
        dunning.save_level(session, seller, {"code": "second", "days": 15, "kind": "friendly"})
    assert forbidden.value.status == 403
    level = dunning.save_level(session, finance, {"code": "second", "days": 15, "kind": "friendly"})
    session.commit()
    issue(session, order, "100.00")
    assert run(session, days(7)) == 1
    assert run(session, days(15)) == 1
    assert (
        session.scalar(select(func.count(BillingDunningEvent.id)).where(BillingDunningEvent.level_id == level.id)) == 1
    )
    with pytest.raises(BillingError) as in_use:
        dunning.delete_level(session, finance, level.id)
    assert in_use.value.status == 409
    dunning.save_level(session, finance, {"active": False}, level.id)
    session.commit()
    assert level.id not in [lv.id for lv in dunning.levels(session, active_only=True)]


# --------------------------------------------------------------------------- screens and API


def test_the_board_shows_and_runs_and_pauses(
    client: Any, session: Session, order: Order, customer: Customer, people: dict[str, User]
) -> None:
    invoice = issue(session, order, "2000.00", due=TODAY - dt.timedelta(days=31))
    login(client, "finance@example.com", PASSWORD)
    page = client.get("/billing/dunning")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert invoice.number in html and customer.name in html
    token = _token(html)
    done = client.post("/billing/dunning/run", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200
    session.rollback()
    event = session.scalars(select(BillingDunningEvent)).one()
    assert event.actor_id == people["finance"].id
    letter = client.get(f"/billing/dunning/events/{event.id}/letter.pdf")
    assert letter.status_code == 200 and letter.data.startswith(b"%PDF")
    added = client.post(
        "/billing/dunning/pauses",
        data={"csrf_token": token, "customer_id": customer.id, "kind": "dispute", "note": ""},
        follow_redirects=True,
    )
    assert added.status_code == 200
    assert dunning.active_pauses(session, TODAY) == []  # refused: no note
    client.post(
        "/billing/dunning/pauses",
        data={"csrf_token": token, "customer_id": customer.id, "kind": "dispute", "note": "Goods damaged"},
    )
    session.rollback()
    assert [p.note for p in dunning.active_pauses(session, TODAY)] == ["Goods damaged"]
    assert "Goods damaged" in client.get("/billing/dunning").get_data(as_text=True)
    assert client.get("/billing/dunning/events").status_code == 200
    assert client.get("/billing/dunning/levels").status_code == 200


def test_the_board_is_scoped_and_guarded(
    client: Any, session: Session, order: Order, people: dict[str, User], seed: dict[str, Any]
) -> None:
    issue(session, order, "2000.00", due=TODAY - dt.timedelta(days=31))
    assert dunning.run_dunning(session, at(TODAY)) == 1
    session.commit()
    event = session.scalars(select(BillingDunningEvent)).one()
    make_user(session, "other@example.com", ["sales"], branch=seed["cd"])
    make_user(session, "clerk@example.com", ["warehouse"], branch=seed["hq"])
    login(client, "other@example.com", PASSWORD)
    assert order.number not in client.get("/billing/dunning").get_data(as_text=True)
    assert client.get(f"/billing/dunning/events/{event.id}/letter.pdf").status_code == 404
    token = csrf_token(client, "/billing/dunning")
    assert client.post("/billing/dunning/run", data={"csrf_token": token}).status_code == 403
    session.rollback()
    assert session.scalar(select(func.count(BillingDunningEvent.id))) == 1
    client.get("/logout")
    login(client, "clerk@example.com", PASSWORD)
    assert client.get("/billing/dunning").status_code == 403


def test_the_api(
    client: Any, session: Session, order: Order, customer: Customer, people: dict[str, User], app: Any
) -> None:
    issue(session, order, "900.00", due=TODAY - dt.timedelta(days=8))
    headers = _api_headers(app, session, people["finance"])
    board = client.get("/api/v1/billing/dunning", headers=headers)
    assert board.status_code == 200, board.get_json()
    assert board.get_json()["customers"][0]["dues"][0]["balance"] == "900.00"
    run_answer = client.post("/api/v1/billing/dunning/run", headers=headers)
    assert run_answer.status_code == 200 and run_answer.get_json()["sent"] == 1
    events = client.get("/api/v1/billing/dunning/events", headers=headers).get_json()
    assert events["items"][0]["level"] == "friendly"
    refused = client.post(
        "/api/v1/billing/dunning/pauses", headers=headers, json={"customer_id": customer.id, "kind": "dispute"}
    )
    assert refused.status_code == 422
    made = client.post(
        "/api/v1/billing/dunning/pauses",
        headers=headers,
        json={"customer_id": customer.id, "kind": "promise", "until": days(5).isoformat(), "note": "Phone call"},
    )
    assert made.status_code == 201, made.get_json()
    pause_id = made.get_json()["id"]
    ended = client.post(f"/api/v1/billing/dunning/pauses/{pause_id}/end", headers=headers, json={})
    assert ended.status_code == 200 and ended.get_json()["ended_at"]
    again = client.post(f"/api/v1/billing/dunning/pauses/{pause_id}/end", headers=headers, json={})
    assert again.status_code == 409
    seller = _api_headers(app, session, people["seller"])
    assert client.post("/api/v1/billing/dunning/run", headers=seller).status_code == 403


def _token(html: str) -> str:
    from core.testing import _csrf_from

    return _csrf_from(html)


def _api_headers(app: Any, session: Session, user: User) -> dict[str, str]:
    from core.testing import token_for

    return {"Authorization": f"Bearer {token_for(session, user)}"}


def test_a_real_invoice_climbs_the_ladder(session: Session, state: Any, admin: User, people: dict[str, User]) -> None:
    """The invoice and terms services (billing_helpers) give the dues; the ladder follows them."""
    from billing_helpers import confirm, invoice_order

    order = make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    invoice = invoice_order(session, people["finance"], order, invoice_date=TODAY - dt.timedelta(days=5))
    due = invoice.dues[-1].due_date
    assert run(session, due + dt.timedelta(days=30)) == len(invoice.dues)
    event = session.scalars(select(BillingDunningEvent).order_by(BillingDunningEvent.id)).first()
    assert event is not None and event.letter_attachment_id is not None
    assert session.get(BillingDunningLevel, event.level_id).code == "letter"  # type: ignore[union-attr]
    assert run(session, due + dt.timedelta(days=30)) == 0

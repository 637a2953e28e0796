"""The third-party inspection plugin, enabled: its step, guard, reports, panel, menu, setting and certificate.

The plugin comes from its own distribution (tests/thirdparty) through the same
``ordo.plugins`` entry point as the built-in plugins; these tests drive it through
core's workflow and screens exactly as a company using it would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from flask.testing import FlaskClient
from ordo_inspection.models import InspectionReport
from ordo_inspection.services import record_report
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, Order, OrderTransition, User
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, make_order, make_user
from core.views.menu import menu_for
from core.web import OrdoState

STEP = "inspection.inspect"


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["inspection"]


def awaiting_inspection(session: Session, state: OrdoState, actor: User, **overrides: Any) -> Order:
    """A new order submitted and confirmed, so it waits for inspection."""
    order = make_order(session, actor, **overrides)
    take_action(session, state.registry, actor, order, "submit")
    take_action(session, state.registry, actor, order, "confirm")
    session.commit()
    return order


def refusal(session: Session, state: OrdoState, actor: User, order: Order, action: str) -> list[str]:
    """The reasons ``action`` is refused on ``order`` (fails the test if it is not refused)."""
    with pytest.raises(ServiceError) as refused:
        take_action(session, state.registry, actor, order, action)
    session.rollback()
    assert refused.value.code == "transition_refused"
    return list(refused.value.details["reasons"])


def log_in(client: FlaskClient, email: str, password: str) -> None:
    """Log in through the login form (without following the redirect to the first screen)."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token.group(1)})
    assert response.status_code == 302


@pytest.mark.req("CORE-2")
def test_confirming_sends_the_order_to_inspection_in_the_confirmed_phase(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    assert (order.step, order.status) == (STEP, "confirmed")
    pipeline = [s.key for s in state.registry.steps.values() if s.key not in ("cancelled", "rejected")]
    assert sorted(pipeline, key=lambda k: state.registry.steps[k].position) == [
        "draft",
        "submitted",
        STEP,
        "confirmed",
        "completed",
    ]


@pytest.mark.req("CORE-2")
def test_passing_is_refused_until_a_passing_report_exists_then_the_order_goes_on(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)

    reasons = refusal(session, state, admin, order, "pass_inspection")
    assert reasons == [f"order {order.number} has no inspection report yet: record a passing inspection (验货) first"]

    record_report(session, admin, order, passed=False, note="外箱破损 damaged cartons")
    session.commit()
    reasons = refusal(session, state, admin, order, "pass_inspection")
    assert len(reasons) == 1
    assert "failed: 外箱破损 damaged cartons" in reasons[0]
    assert session.get(Order, order.id).step == STEP

    record_report(session, admin, order, passed=True, note="re-packed, 20 units checked")
    session.commit()
    take_action(session, state.registry, admin, order, "pass_inspection")
    session.commit()
    assert (order.step, order.status) == ("confirmed", "confirmed")
    take_action(session, state.registry, admin, order, "complete")
    session.commit()
    assert order.status == "completed"

    history = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()
    assert [(t.from_step, t.to_step, t.action) for t in history] == [
        ("draft", "submitted", "submit"),
        ("submitted", STEP, "confirm"),
        (STEP, "confirmed", "pass_inspection"),
        ("confirmed", "completed", "complete"),
    ]


def test_a_later_failed_inspection_blocks_again(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=True)
    session.commit()
    record_report(session, admin, order, passed=False, note="wrong voltage label")
    session.commit()
    assert "wrong voltage label" in refusal(session, state, admin, order, "pass_inspection")[0]


def test_the_guard_speaks_only_about_passing_inspection(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    take_action(session, state.registry, admin, order, "cancel", reason="customer withdrew")
    session.commit()
    assert order.status == "cancelled"


def test_reports_are_recorded_with_inspector_and_audited(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    report = record_report(session, admin, order, passed=True, note="  all good  ")
    session.commit()
    stored = session.scalars(select(InspectionReport).where(InspectionReport.order_id == order.id)).one()
    assert (stored.id, stored.inspector_id, stored.passed, stored.note) == (report.id, admin.id, True, "all good")
    assert stored.at.tzinfo is not None
    entry = session.scalars(select(AuditLog).where(AuditLog.entity == "inspection_report")).one()
    assert (entry.entity_id, entry.actor_id, entry.changes["order"]) == (report.id, admin.id, order.number)


def test_recording_is_refused_outside_the_step_without_a_note_or_without_permission(session, state, admin, seed):
    draft = make_order(session, admin)
    with pytest.raises(ServiceError) as not_there:
        record_report(session, admin, draft, passed=True)
    assert (not_there.value.code, not_there.value.status) == ("not_waiting_for_inspection", 409)

    order = awaiting_inspection(session, state, admin, reference="PO-2")
    with pytest.raises(ServiceError) as no_note:
        record_report(session, admin, order, passed=False, note="   ")
    assert no_note.value.details == {"note": ["Say what failed."]}

    seller = make_user(session, "sales@example.com", ["sales"])
    with pytest.raises(ServiceError) as forbidden:
        record_report(session, seller, order, passed=True)
    assert forbidden.value.status == 403
    session.rollback()
    assert session.scalars(select(InspectionReport)).all() == []


def test_passing_needs_the_inspection_permission(session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=True)
    session.commit()
    manager = make_user(session, "manager@example.com", ["sales_manager"])
    with pytest.raises(ServiceError) as forbidden:
        take_action(session, state.registry, manager, order, "pass_inspection")
    assert (forbidden.value.code, forbidden.value.status) == ("forbidden", 403)
    assert "inspection.report.create" in forbidden.value.message


@pytest.mark.req("CORE-9")
def test_the_setting_lets_urgent_orders_pass_without_a_report(session, state, admin, seed):
    urgent = awaiting_inspection(session, state, admin, urgency="urgent")
    normal = awaiting_inspection(session, state, admin, reference="PO-2")
    assert refusal(session, state, admin, urgent, "pass_inspection")

    set_setting(session, "inspection.urgent_without_report", True, admin)
    session.commit()
    assert refusal(session, state, admin, normal, "pass_inspection")
    take_action(session, state.registry, admin, urgent, "pass_inspection")
    session.commit()
    assert urgent.step == "confirmed"


@pytest.mark.req("CORE-2")
def test_a_company_can_switch_the_inspection_step_off(session, state, admin, seed):
    from core.installation import set_step_enabled

    set_step_enabled(session, state.registry, STEP, False, admin)
    session.commit()
    order = awaiting_inspection(session, state, admin)
    assert order.step == "confirmed"


def test_the_menu_item_appears_for_those_who_may_read_reports(app, session, state, admin, seed):
    items = [item for group in state.registry.hook.ordo_menu_items(user=admin) for item in group or ()]
    assert ("Inspections", "inspection.list_reports", "inspection.report.read") in {
        (i.label, i.endpoint, i.permission) for i in items
    }
    warehouse = make_user(session, "wh@example.com", ["warehouse"])
    customer_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    with app.app_context():
        assert "inspection.list_reports" in [i.endpoint for i in menu_for(warehouse)]
        assert "inspection.list_reports" not in [i.endpoint for i in menu_for(customer_user)]


def test_the_order_panel_lists_reports_and_offers_the_form_to_inspectors(app, session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=False, note="scratched casing")
    session.commit()
    seller = make_user(session, "sales@example.com", ["sales"])
    customer_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])

    def panels_for(user: User) -> list[Any]:
        """The inspection plugin's panels for ``user`` (core adds its own beside them)."""
        with app.test_request_context(f"/orders/{order.id}"):
            groups = state.registry.results_by_plugin("ordo_order_panels", order=order, user=user, session=session)
            return [panel for plugin, group in groups if plugin == "inspection" for panel in group]

    (panel,) = panels_for(admin)
    assert panel.title == "Inspection 验货"
    assert "scratched casing" in panel.html
    assert f'action="/inspection/orders/{order.id}/reports"' in panel.html
    assert re.search(r'name="csrf_token" value="[^"]+"', panel.html)
    seller_panels = panels_for(seller)
    assert [p.title for p in seller_panels] == ["Inspection 验货"]
    assert "scratched casing" in seller_panels[0].html and "<form" not in seller_panels[0].html
    assert panels_for(customer_user) == []


def test_the_certificate_renders_to_pdf_with_the_reports(app, session, state, admin, seed):
    import io

    from pypdf import PdfReader

    from core.documents import render_document, render_html

    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=True, note="20 units checked")
    session.commit()
    html = render_html(session, state.registry, "inspection.certificate", order)
    assert order.number in html and "20 units checked" in html and "合格 Passed" in html
    pdf = render_document(session, state.registry, "inspection.certificate", order)
    assert pdf.startswith(b"%PDF")
    assert order.number in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


# --- screens ----------------------------------------------------------------------------


def test_recording_through_the_screen_needs_csrf_and_lands_in_the_list(app, client, session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    inspector = make_user(session, "wh@example.com", ["warehouse", "general_manager"])
    log_in(client, inspector.email, PASSWORD)
    listing = client.get("/inspection/reports")
    assert listing.status_code == 200
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', listing.get_data(as_text=True))
    assert token is not None

    no_token = client.post(f"/inspection/orders/{order.id}/reports", data={"result": "passed"})
    assert no_token.status_code == 400
    recorded = client.post(
        f"/inspection/orders/{order.id}/reports",
        data={
            "result": "failed",
            "note": "标签错误 wrong labels",
            "csrf_token": token.group(1),
            "next": "//evil.example",
        },
    )
    assert recorded.status_code == 302
    assert recorded.headers["Location"].endswith("/inspection/reports")
    page = client.get("/inspection/reports").get_data(as_text=True)
    assert order.number in page and "标签错误 wrong labels" in page
    assert session.scalars(select(InspectionReport.passed)).all() == [False]


def test_the_reports_screen_obeys_permissions_and_data_scope(app, client, session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    record_report(session, admin, order, passed=True, note="checked")
    session.commit()
    customer_user = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    log_in(client, customer_user.email, PASSWORD)
    assert client.get("/inspection/reports").status_code == 403

    seller = make_user(session, "other-sales@example.com", ["sales"])  # data scope "own": not this order
    other = app.test_client()
    log_in(other, seller.email, PASSWORD)
    page = other.get("/inspection/reports")
    assert page.status_code == 200
    assert order.number not in page.get_data(as_text=True)

    manager = app.test_client()
    log_in(manager, ADMIN_EMAIL, ADMIN_PASSWORD)  # data scope "all"
    assert order.number in manager.get("/inspection/reports").get_data(as_text=True)


def test_the_order_page_shows_the_panel(app, client, session, state, admin, seed):
    order = awaiting_inspection(session, state, admin)
    log_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = client.get(f"/orders/{order.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Inspection 验货" in html and "Not inspected yet." in html
    assert f'action="/inspection/orders/{order.id}/reports"' in html

    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    form = {
        "result": "passed",
        "note": "外观良好 looks fine",
        "csrf_token": token.group(1),
        "next": f"/orders/{order.id}",
    }
    back = client.post(f"/inspection/orders/{order.id}/reports", data=form, follow_redirects=True)
    assert back.request.path == f"/orders/{order.id}"
    assert "外观良好 looks fine" in back.get_data(as_text=True)
    take_action(session, state.registry, admin, session.get(Order, order.id), "pass_inspection")
    session.commit()
    assert session.get(Order, order.id).step == "confirmed"


# --- a notification and a job, declared through hooks alone -------------------------------


def test_a_failed_inspection_tells_the_order_owner_and_the_sales_manager(app, session, state, admin, seed):
    from core.models import Notification, OutboxMessage

    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    manager = make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    manager.language = "zh_CN"
    order = make_order(session, seller)  # the seller's order …
    take_action(session, state.registry, seller, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")  # … confirmed by someone who may
    session.commit()

    record_report(session, admin, order, passed=True, note="all good")
    session.commit()
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.template == "inspection.failed")).all() == []

    record_report(session, admin, order, passed=False, note="scratched casing")
    session.commit()
    mails = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "inspection.failed")).all()
    assert {m.address for m in mails} == {"seller@example.com", "manager@example.com"}
    assert all("scratched casing" in m.body and order.number in m.subject for m in mails)
    subjects = {m.address: m.subject for m in mails}
    assert "验货未通过" in subjects["manager@example.com"]  # each in the recipient's language
    assert "failed inspection" in subjects["seller@example.com"]
    bells = session.scalars(select(Notification).where(Notification.template == "inspection.failed")).all()
    assert {n.user_id for n in bells} == {seller.id, manager.id}


def test_the_daily_reminder_counts_working_days_and_reminds_once(app, session, state, admin, seed):
    import datetime as dt

    from core.clock import COMPANY_TIMEZONE
    from core.jobs.runner import run_job
    from core.models import CalendarDay, Company, OutboxMessage

    warehouse = make_user(session, "store@example.com", ["warehouse"], branch=seed["hq"])
    order = awaiting_inspection(session, state, admin)
    order.branch_id = seed["hq"].id  # the head office's order: its warehouse sees it
    friday = dt.datetime(2026, 11, 20, 17, 0, tzinfo=COMPANY_TIMEZONE)
    arrival = session.scalars(
        select(OrderTransition).where(
            OrderTransition.order_id == order.id, OrderTransition.to_step == "inspection.inspect"
        )
    ).one()
    arrival.at = friday
    company = session.scalars(select(Company)).first()
    session.add(CalendarDay(company_id=company.id, day=dt.date(2026, 11, 23), kind="holiday", name="公司假日"))
    session.commit()

    def reminders() -> list[OutboxMessage]:
        session.rollback()
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.template == "inspection.waiting")))

    def run_on(day: int) -> None:
        at = dt.datetime(2026, 11, day, 8, 30, tzinfo=COMPANY_TIMEZONE)
        run_job(state.sessions, state.registry, "inspection.remind_waiting", worker="test", now=at, force=True)

    run_on(24)  # Tuesday: Monday was a holiday, so only one working day has passed
    assert reminders() == []
    run_on(25)  # Wednesday: two working days (the default setting)
    (reminder,) = reminders()
    assert reminder.address == warehouse.email and "2" in reminder.subject
    run_on(25)  # the same morning again (a retried run): nobody is reminded twice
    assert len(reminders()) == 1

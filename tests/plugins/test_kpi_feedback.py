"""Complaints (客诉) and follow-up visits (客户回访), KP-6: lifecycle, metrics, scope, reminders, screens, API.

The complaint metrics are checked against hand-computed fixtures: two complaints
received and resolved in October 2026 with known instants (one resolved after its due
date in company time though on it in UTC).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE
from core.models import AuditLog, Notification, OutboxMessage
from core.settings import session_registry
from core.testing import ADMIN_PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.kpi import feedback
from plugins.kpi.engine import EVERYONE, breakdown, fact_orders, get_metric, measure
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiComplaint, KpiVisit
from plugins.kpi.periods import period_of

pytestmark = pytest.mark.req("KP-6")


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(day: int, hour: int = 10, month: int = 10) -> dt.datetime:
    """A company-time instant in 2026."""
    return dt.datetime(2026, month, day, hour, tzinfo=COMPANY_TIMEZONE)


@pytest.fixture
def cs(session, seed):
    """A customer service agent (scope: all)."""
    return make_user(session, "cs@example.com", ["customer_service"])


@pytest.fixture
def october(session, seed, admin, cs):
    """A: received 1 Oct 10:00, due 3 Oct, resolved 3 Oct 22:00 (2.5 days, on time).
    B: received 5 Oct 10:00, due 5 Oct, resolved 6 Oct 07:00 company time = 5 Oct 23:00 UTC
    (0.875 days, late by the company date). C: received 1 Nov, open."""
    order = make_order(session, admin, customer="C001")
    a = feedback.record_complaint(
        session,
        cs,
        seed["local"].id,
        "外包装破损",
        order_id=order.id,
        category="delivery",
        due_date=dt.date(2026, 10, 3),
        received_at=at(1),
    )
    b = feedback.record_complaint(
        session,
        cs,
        seed["remote"].id,
        "发票抬头错误",
        category="billing",
        due_date=dt.date(2026, 10, 5),
        received_at=at(5),
    )
    c = feedback.record_complaint(
        session, cs, seed["remote"].id, "服务态度", category="service", received_at=at(1, 9, 11)
    )
    feedback.resolve_complaint(session, cs, a.id, "补发", "包装强度不足", resolved_at=at(3, 22))
    feedback.resolve_complaint(session, cs, b.id, "重开发票", "开票信息未核对", resolved_at=at(6, 7))
    session.commit()
    return {"a": a, "b": b, "c": c, "order": order}


def test_complaint_metrics_by_hand(session, october, seed):
    registry = session_registry(session)
    month = period_of("month", dt.date(2026, 10, 15))
    count = measure(session, get_metric(registry, "kpi.complaints"), month, viewer=EVERYONE)
    assert count.value == 2  # C was received in November
    assert (
        measure(
            session, get_metric(registry, "kpi.complaints"), period_of("month", dt.date(2026, 11, 2)), viewer=EVERYONE
        ).value
        == 1
    )
    time = measure(session, get_metric(registry, "kpi.complaint_resolution_time"), month, viewer=EVERYONE)
    assert time.numerator.quantize(Decimal("0.001")) == Decimal("3.375") and time.denominator == 2
    assert time.value == Decimal("1.7")  # 3.375 / 2 = 1.6875 → one place
    on_time = measure(session, get_metric(registry, "kpi.complaints_resolved_on_time"), month, viewer=EVERYONE)
    assert (on_time.numerator, on_time.denominator, on_time.value) == (1, 2, Decimal("50.00"))
    # Complaints without an order count through their customer.
    by_customer = {
        p.key: p.value.value
        for p in breakdown(session, get_metric(registry, "kpi.complaints"), month, "customer", viewer=EVERYONE)
    }
    assert by_customer == {seed["local"].id: 1, None: 1}
    # Drill-down lists the orders behind the number (B has none).
    rows, total = fact_orders(session, get_metric(registry, "kpi.complaints"), month, viewer=EVERYONE, problems=True)
    assert total == 1 and rows[0].order_id == october["order"].id


def test_complaints_break_down_by_category(session, october):
    metric = get_metric(session_registry(session), "kpi.complaints")
    month = period_of("month", dt.date(2026, 10, 15))
    parts = {p.key: p.value.value for p in breakdown(session, metric, month, "complaint_category", viewer=EVERYONE)}
    assert parts == {"delivery": 1, "billing": 1}


def test_complaint_lifecycle(session, seed, admin, cs):
    agent = make_user(session, "agent@example.com", ["customer_service"])
    complaint = feedback.record_complaint(session, cs, seed["local"].id, "  两台电机噪音大  ", category="quality")
    session.commit()
    today = dt.datetime.now(COMPANY_TIMEZONE).date()
    year = today.year
    assert (
        complaint.number == f"KS{year}-000001"
        and complaint.status == "open"
        and complaint.description == "两台电机噪音大"
    )
    assert complaint.due_date == add_working_days(session, today, 3)
    second = feedback.record_complaint(session, cs, seed["local"].id, "again")
    assert second.number == f"KS{year}-000002" and second.category == "other"
    # Assigning tells the owner and puts the complaint in progress.
    feedback.update_complaint(session, cs, complaint.id, owner_id=agent.id)
    session.commit()
    assert complaint.status == "in_progress" and complaint.owner_id == agent.id
    told = session.scalar(select(Notification).where(Notification.user_id == agent.id))
    assert told is not None and complaint.number in told.subject
    # Resolution and root cause are both required; nothing changes without them.
    for resolution, cause, field in (("", "x", "resolution"), ("fixed", " ", "root_cause")):
        with pytest.raises(KpiError) as missing:
            feedback.resolve_complaint(session, cs, complaint.id, resolution, cause)
        session.rollback()
        assert missing.value.status == 422 and field in missing.value.details
        assert session.get(KpiComplaint, complaint.id).status == "in_progress"
    feedback.resolve_complaint(session, cs, complaint.id, "更换轴承", "装配润滑不足")
    session.commit()
    assert (complaint.status, complaint.root_cause) == ("resolved", "装配润滑不足") and complaint.resolved_at
    with pytest.raises(KpiError) as again:
        feedback.resolve_complaint(session, cs, complaint.id, "x", "y")
    assert again.value.status == 409
    with pytest.raises(KpiError) as late_change:
        feedback.update_complaint(session, cs, complaint.id, status="open")
    assert late_change.value.status == 409
    session.rollback()
    actions = set(
        session.scalars(
            select(AuditLog.action).where(AuditLog.entity == "kpi_complaint", AuditLog.entity_id == complaint.id)
        )
    )
    assert actions == {"created", "updated", "resolved"}


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"description": ""}, 422, "description"),
        ({"category": "weather"}, 422, "category"),
        ({"due_date": "2026-13-01"}, 422, "due_date"),
        ({"due_date": "2020-01-01"}, 422, "due_date"),
        ({"customer_id": 999999}, 404, "customer_id"),
        ({"order_id": 999999}, 404, "order_id"),
        ({"received_at": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)}, 422, "received_at"),
    ],
)
def test_bad_complaints_are_refused_and_nothing_is_written(session, seed, cs, kwargs, status, field):
    args = {"customer_id": seed["local"].id, "description": "x"} | kwargs
    with pytest.raises(KpiError) as refused:
        feedback.record_complaint(session, cs, args.pop("customer_id"), args.pop("description"), **args)
    session.rollback()
    assert refused.value.status == status and field in refused.value.details
    assert session.scalar(select(func.count()).select_from(KpiComplaint)) == 0


def test_an_order_of_another_customer_and_a_customer_as_owner_are_refused(session, seed, admin, cs):
    order = make_order(session, admin, customer="C002")
    with pytest.raises(KpiError) as other:
        feedback.record_complaint(session, cs, seed["local"].id, "x", order_id=order.id)
    assert other.value.status == 422
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    with pytest.raises(KpiError) as owner:
        feedback.record_complaint(session, cs, seed["local"].id, "x", owner_id=buyer.id)
    assert owner.value.status == 422 and "owner_id" in owner.value.details


def test_scope_a_salesperson_sees_complaints_of_their_orders_and_customers(session, seed, admin, cs):
    seller = make_user(session, "seller@example.com", ["sales"])
    theirs = make_order(session, seller, customer="C001")
    others = make_order(session, admin, customer="C002")
    mine = feedback.record_complaint(session, cs, seed["local"].id, "on my order", order_id=theirs.id)
    foreign = feedback.record_complaint(session, cs, seed["remote"].id, "not mine", order_id=others.id)
    loose = feedback.record_complaint(session, cs, seed["remote"].id, "customer only")
    session.commit()
    visible = set(session.scalars(select(KpiComplaint.id).where(feedback.complaint_scope(seller))))
    assert visible == {mine.id}
    assert feedback.get_complaint(session, seller, mine.id).id == mine.id
    for hidden in (foreign, loose):
        with pytest.raises(KpiError) as out:
            feedback.get_complaint(session, seller, hidden.id)
        assert out.value.status == 404
    # Owning the customer makes its complaints without an order visible too.
    seed["remote"].owner_id = seller.id
    session.commit()
    assert set(session.scalars(select(KpiComplaint.id).where(feedback.complaint_scope(seller)))) == {
        mine.id,
        foreign.id,
        loose.id,
    }
    # A salesperson cannot record a complaint for a customer outside their scope.
    with pytest.raises(KpiError) as outside:
        feedback.record_complaint(session, seller, seed["local"].id, "x")
    assert outside.value.status == 404
    warehouse = make_user(session, "wh@example.com", ["warehouse"])
    with pytest.raises(KpiError) as forbidden:
        feedback.record_complaint(session, warehouse, seed["local"].id, "x")
    assert forbidden.value.status == 403


def test_visits_are_planned_and_recorded(session, seed, cs):
    visit = feedback.plan_visit(session, cs, seed["local"].id, "2026-12-01", kind="onsite", purpose="季度回访")
    session.commit()
    assert (visit.status, visit.owner_id, visit.kind) == ("planned", cs.id, "onsite")
    with pytest.raises(KpiError) as no_outcome:
        feedback.record_visit(session, cs, visit.id, "  ")
    session.rollback()
    assert no_outcome.value.status == 422
    feedback.record_visit(session, cs, visit.id, "满意", "发票寄送慢", "快递月结流程")
    session.commit()
    assert (visit.status, visit.issue, visit.root_cause) == ("done", "发票寄送慢", "快递月结流程")
    with pytest.raises(KpiError) as twice:
        feedback.record_visit(session, cs, visit.id, "again")
    assert twice.value.status == 409
    for bad in ({"kind": "pigeon"}, {"due_date": None}):
        args = {"kind": "phone", "due_date": "2026-12-01"} | bad
        with pytest.raises(KpiError) as refused:
            feedback.plan_visit(session, cs, seed["local"].id, args.pop("due_date"), **args)
        assert refused.value.status == 422


def test_overdue_reminders_once_a_day(session, seed, cs):
    agent = make_user(session, "agent@example.com", ["customer_service"])
    complaint = feedback.record_complaint(
        session, cs, seed["local"].id, "x", owner_id=agent.id, due_date=dt.date(2026, 10, 3), received_at=at(1)
    )
    visit = feedback.plan_visit(session, cs, seed["local"].id, dt.date(2026, 10, 2), owner_id=agent.id)
    done = feedback.record_complaint(
        session, cs, seed["local"].id, "y", due_date=dt.date(2026, 10, 3), received_at=at(1)
    )
    feedback.resolve_complaint(session, cs, done.id, "ok", "cause", resolved_at=at(2))
    session.commit()
    assert feedback.notify_overdue(session, at(3, 8, 10)) == 1  # the visit only: the complaint is due that day
    assert feedback.notify_overdue(session, at(5, 8, 10)) == 2
    assert feedback.notify_overdue(session, at(5, 9, 10)) == 2  # same day: nothing new queued
    session.commit()
    reminders = session.scalars(select(Notification.subject).where(Notification.user_id == agent.id)).all()
    assert len([s for s in reminders if complaint.number in s and "overdue" in s]) == 1
    assert len([s for s in reminders if "Follow-up" in s]) == 2  # 3 and 5 October
    job = session_registry(session).jobs["kpi.feedback_overdue"]
    assert job.schedule == "daily:08:30"
    assert visit.id


def test_screens_record_assign_and_resolve(session, seed, admin, cs, client):
    login(client, admin.email, ADMIN_PASSWORD)
    order = make_order(session, admin, customer="C001")
    form = client.get("/kpi/complaints/new")
    assert form.status_code == 200
    token = csrf_token(client, "/kpi/complaints/new")
    bad = client.post(
        "/kpi/complaints/new", data={"csrf_token": token, "customer_id": seed["local"].id, "description": ""}
    )
    assert bad.status_code == 422 and "Describe the complaint" in bad.get_data(as_text=True)
    unknown = client.post(
        "/kpi/complaints/new",
        data={"csrf_token": token, "customer_id": seed["local"].id, "description": "x", "order": "SO-NOPE"},
    )
    assert unknown.status_code == 404 and 'id="complaint-form"' in unknown.get_data(as_text=True)
    created = client.post(
        "/kpi/complaints/new",
        data={
            "csrf_token": token,
            "customer_id": seed["local"].id,
            "description": "漏发",
            "order": order.number,
            "category": "delivery",
            "owner_id": cs.id,
        },
    )
    assert created.status_code == 302
    complaint = session.scalar(select(KpiComplaint))
    assert complaint.order_id == order.id and complaint.owner_id == cs.id
    detail = client.get(f"/kpi/complaints/{complaint.id}").get_data(as_text=True)
    assert complaint.number in detail and "data-confirm" in detail
    refused = client.post(f"/kpi/complaints/{complaint.id}/resolve", data={"csrf_token": token, "resolution": "补发"})
    assert refused.status_code == 422 and "Give the root cause" in refused.get_data(as_text=True)
    resolved = client.post(
        f"/kpi/complaints/{complaint.id}/resolve",
        data={"csrf_token": token, "resolution": "补发", "root_cause": "拣货漏项"},
    )
    assert resolved.status_code == 302
    session.rollback()
    assert session.get(KpiComplaint, complaint.id).status == "resolved"
    listing = client.get("/kpi/complaints?status=resolved").get_data(as_text=True)
    assert complaint.number in listing
    assert client.get("/kpi/complaints?status=open").get_data(as_text=True).count("data-complaint=") == 0
    # Visits: plan, record.
    planned = client.post(
        "/kpi/visits/new",
        data={
            "csrf_token": token,
            "customer_id": seed["local"].id,
            "kind": "phone",
            "due_date": "2026-12-01",
            "owner_id": cs.id,
            "purpose": "回访",
        },
    )
    assert planned.status_code == 302
    session.rollback()
    visit = session.scalar(select(KpiVisit))
    assert client.get("/kpi/visits").get_data(as_text=True).count("data-visit=") == 1
    recorded = client.post(f"/kpi/visits/{visit.id}/done", data={"csrf_token": token, "outcome": "满意"})
    assert recorded.status_code == 302
    session.rollback()
    assert session.get(KpiVisit, visit.id).status == "done"


def test_api_complaints_and_visits(session, seed, admin, cs, client):
    api = ApiCaller(client, token_for(session, cs))
    created = api.post(
        "/api/v1/kpi/complaints", json={"customer_id": seed["local"].id, "description": "噪音", "category": "quality"}
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "open" and body["number"].startswith("KS")
    bad = api.post(
        "/api/v1/kpi/complaints", json={"customer_id": seed["local"].id, "description": "x", "category": "?"}
    )
    assert bad.status_code == 422 and "category" in bad.get_json()["error"]["details"]
    assert api.get("/api/v1/kpi/complaints/999999").status_code == 404
    patched = api.patch(f"/api/v1/kpi/complaints/{body['id']}", json={"owner_id": cs.id, "due_date": "2026-12-31"})
    assert patched.status_code == 200 and patched.get_json()["status"] == "in_progress"
    missing = api.post(f"/api/v1/kpi/complaints/{body['id']}/resolve", json={"resolution": "x", "root_cause": ""})
    assert missing.status_code == 422
    resolved = api.post(
        f"/api/v1/kpi/complaints/{body['id']}/resolve", json={"resolution": "换货", "root_cause": "轴承"}
    )
    assert resolved.status_code == 200 and resolved.get_json()["resolved_at"]
    assert (
        api.post(
            f"/api/v1/kpi/complaints/{body['id']}/resolve", json={"resolution": "a", "root_cause": "b"}
        ).status_code
        == 409
    )
    listed = api.get("/api/v1/kpi/complaints?status=resolved").get_json()
    assert listed["total"] == 1
    visit = api.post(
        "/api/v1/kpi/visits", json={"customer_id": seed["local"].id, "due_date": "2026-12-10", "kind": "online"}
    )
    assert visit.status_code == 201
    done = api.post(f"/api/v1/kpi/visits/{visit.get_json()['id']}/done", json={"outcome": "ok"})
    assert done.status_code == 200 and done.get_json()["status"] == "done"
    assert api.get("/api/v1/kpi/visits").get_json()["total"] == 1
    warehouse = ApiCaller(client, token_for(session, make_user(session, "wh@example.com", ["warehouse"])))
    assert warehouse.get("/api/v1/kpi/complaints").status_code == 403
    assert (
        warehouse.post("/api/v1/kpi/complaints", json={"customer_id": seed["local"].id, "description": "x"}).status_code
        == 403
    )
    assert (
        session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.template == "kpi.complaint_assigned")
        )
        >= 1
    )


def test_a_complaint_seen_through_its_customer_never_shows_an_out_of_scope_order(session, client, seed, admin):
    """CD's manager sees CD's customer's complaint, but not the number of its order in HQ."""
    from sqlalchemy import update

    from core.models import Customer, Order
    from core.testing import PASSWORD

    session.execute(update(Customer).where(Customer.id == seed["remote"].id).values(branch_id=seed["cd"].id))
    order = make_order(session, admin, customer="C002")
    session.execute(update(Order).where(Order.id == order.id).values(branch_id=seed["hq"].id, status="submitted"))
    complaint = feedback.record_complaint(session, admin, seed["remote"].id, "Late again", order_id=order.id)
    boss = make_user(session, "cdboss@example.com", ["sales_manager"], branch=seed["cd"])
    session.commit()
    login(client, "cdboss@example.com", PASSWORD)
    listing = client.get("/kpi/complaints").get_data(as_text=True)
    assert complaint.number in listing and order.number not in listing
    detail = client.get(f"/kpi/complaints/{complaint.id}")
    assert detail.status_code == 200 and order.number not in detail.get_data(as_text=True)
    api = ApiCaller(client, token_for(session, boss))
    found = api.get(f"/api/v1/kpi/complaints/{complaint.id}")
    assert found.status_code == 200 and found.json["order_number"] is None

"""Supervision (KP-5): monthly random samples, automatic checklist, findings tracked to closure.

Samples: size, month bounds (company time, drafts excluded), one per month (409), the
monthly job; automatic checks: a move by someone without the action's permission and a
step over its working-day limit; findings: owner corrects, another supervisor closes, the
owner cannot; overdue reminders once a day; bad input refused with nothing changed;
permissions and scope (403/404) on services, API and screens.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE, company_now
from core.models import IssuedDocument, Notification, Order, OrderTransition
from core.testing import PASSWORD, login, make_order, make_user, token_for
from plugins.kpi import supervision
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiCheck, KpiFinding, KpiSample, KpiSampleOrder

pytestmark = pytest.mark.req("KP-5")

SEPT = dt.date(2026, 9, 1)
AUG = dt.date(2026, 8, 1)
JULY = dt.date(2026, 7, 1)


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    """A company-time instant in 2026."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=COMPANY_TIMEZONE)


def place(session, order, created, status="submitted", step=None):
    session.execute(
        update(Order).where(Order.id == order.id).values(created_at=created, status=status, step=step or status)
    )


def move(session, order, action, from_step, to_step, actor, when):
    session.add(
        OrderTransition(
            order_id=order.id,
            action=action,
            from_step=from_step,
            to_step=to_step,
            from_status=from_step,
            to_status=to_step,
            actor_id=actor.id if actor else None,
            at=when,
        )
    )


@pytest.fixture
def people(session, seed):
    return {
        "sup": make_user(session, "sup@example.com", ["supervisor"]),
        "sup2": make_user(session, "sup2@example.com", ["supervisor"]),
        "owner": make_user(session, "owner@example.com", ["sales"]),
        "stranger": make_user(session, "stranger@example.com", ["sales"]),
        "gm": make_user(session, "gm@example.com", ["general_manager"]),
    }


@pytest.fixture
def months(session, seed, admin):
    """Five orders received in September; a September draft; one on 31 Aug 23:30 and one on
    1 Oct 00:00 company time (outside September); a July draft only."""
    sept = [make_order(session, admin, customer="C001" if i % 2 else "C002") for i in range(5)]
    for i, order in enumerate(sept):
        place(session, order, at(9, 1 + i * 7))
    draft = make_order(session, admin)
    place(session, draft, at(9, 10), status="draft")
    august = make_order(session, admin)
    place(session, august, at(8, 31, 23, 30))
    october = make_order(session, admin)
    place(session, october, at(10, 1, 0, 0))
    july_draft = make_order(session, admin)
    place(session, july_draft, at(7, 15), status="draft")
    session.commit()
    return {"sept": sept, "draft": draft, "august": august, "october": october}


def sampled_ids(session, sample):
    return set(session.scalars(select(KpiSampleOrder.order_id).where(KpiSampleOrder.sample_id == sample.id)))


def test_sample_size_and_month_bounds(session, months, people):
    sample = supervision.draw_sample(session, people["sup"], SEPT, 3)
    session.commit()
    ids = sampled_ids(session, sample)
    assert sample.size == 3 and len(ids) == 3
    assert ids <= {o.id for o in months["sept"]}
    checks = session.scalars(
        select(KpiCheck.item).join(KpiSampleOrder).where(KpiSampleOrder.sample_id == sample.id)
    ).all()
    assert sorted(checks) == sorted(["roles", "sla", "documents", "data"] * 3)
    # August has one order (31 Aug 23:30 company time): the size is capped at it.
    august = supervision.draw_sample(session, people["sup"], AUG, 10)
    session.commit()
    assert august.size == 1 and sampled_ids(session, august) == {months["august"].id}
    # July has only a draft: nothing to sample.
    with pytest.raises(KpiError) as empty:
        supervision.draw_sample(session, people["sup"], JULY)
    assert empty.value.status == 422
    session.rollback()
    # The default size is the setting (10), capped at September's five: never the draft or October.
    session.execute(KpiSample.__table__.delete().where(KpiSample.month == SEPT))
    session.commit()
    full = supervision.draw_sample(session, people["sup"], SEPT)
    assert sampled_ids(session, full) == {o.id for o in months["sept"]}


def test_second_draw_409_and_refusals_change_nothing(session, months, people):
    supervision.draw_sample(session, people["sup"], SEPT, 2)
    session.commit()
    with pytest.raises(KpiError) as twice:
        supervision.draw_sample(session, people["sup"], SEPT, 2)
    assert twice.value.status == 409
    with pytest.raises(KpiError) as forbidden:
        supervision.draw_sample(session, people["owner"], AUG)
    assert forbidden.value.status == 403
    for month, size in ((AUG, 0), (AUG, 501), (dt.date(2026, 8, 2), None), (company_now().date().replace(day=1), None)):
        with pytest.raises(KpiError) as bad:
            supervision.draw_sample(session, people["sup"], month, size)
        assert bad.value.status == 422
    session.rollback()
    assert session.scalar(select(func.count()).select_from(KpiSample)) == 1


def test_job_draws_once_on_the_first_and_tells_the_supervisors(session, months, people):
    assert [(j.name, j.schedule) for j in supervision.JOBS] == [
        ("kpi.draw_sample", "daily:07:30"),
        ("kpi.findings_overdue", "daily:08:15"),
    ]
    first = supervision.draw_monthly(session, at(10, 1, 7, 30))
    session.commit()
    assert first is not None and first.month == SEPT and first.drawn_by_id is None and first.size == 5
    assert supervision.draw_monthly(session, at(10, 1, 7, 31)) is None
    assert supervision.draw_monthly(session, at(10, 2, 7, 30)) is None
    session.commit()
    assert session.scalar(select(func.count()).select_from(KpiSample)) == 1
    told = session.scalars(select(Notification.user_id).where(Notification.template == "kpi.sample_drawn")).all()
    assert sorted(told) == sorted([people["sup"].id, people["sup2"].id])


def test_auto_checks_find_a_move_without_permission_and_a_step_over_its_limit(session, seed, admin, people):
    manager = make_user(session, "manager@example.com", ["sales_manager"])
    late = make_order(session, admin)
    fine = make_order(session, admin, customer="C002")
    place(session, late, at(9, 7, 9), status="confirmed")
    place(session, fine, at(9, 8, 9), status="completed")
    # Late: submitted Mon 7 Sep, confirmed Mon 14 Sep (5 working days) by a salesman without orders.confirm.
    move(session, late, "submit", "draft", "submitted", admin, at(9, 7))
    move(session, late, "confirm", "submitted", "confirmed", people["owner"], at(9, 14))
    # Fine: a day per step, each by someone holding the permission; confirmation issued.
    move(session, fine, "submit", "draft", "submitted", admin, at(9, 8))
    move(session, fine, "confirm", "submitted", "confirmed", manager, at(9, 9))
    move(session, fine, "complete", "confirmed", "completed", manager, at(9, 11))
    session.add(
        IssuedDocument(
            order_id=fine.id,
            document="order_confirmation",
            language="zh_CN",
            filename="c.pdf",
            size=1,
            sha256="0" * 64,
            issued_by_id=manager.id,
        )
    )
    session.commit()
    sample = supervision.draw_sample(session, people["sup"], SEPT, 50)
    session.commit()
    found = {(so.order_id, c.item): supervision.found_lines(c.found) for so in sample.orders for c in so.checks}
    roles = found[(late.id, "roles")]
    assert roles[0] == "1 of 2 manual moves by someone without the permission."
    assert any(line.startswith("VIOLATION") and "owner" in line and "orders.confirm" in line for line in roles)
    sla = found[(late.id, "sla")]
    assert "VIOLATION: submitted took 5 working days (limit 2)." in sla
    assert any("VIOLATION" in line for line in found[(late.id, "documents")])  # confirmed, no confirmation
    assert found[(late.id, "data")] == []
    assert found[(fine.id, "roles")][0] == "0 of 3 manual moves by someone without the permission."
    assert found[(fine.id, "sla")][0] == "0 of 2 steps over their time limit."
    assert not any("VIOLATION" in line for item in ("roles", "sla", "documents") for line in found[(fine.id, item)])


@pytest.fixture
def sampled(session, months, people):
    sample = supervision.draw_sample(session, people["sup"], SEPT, 2)
    session.commit()
    return sample.orders[0]


def test_checks_verdicts_complete_the_order(session, sampled, people):
    checks = sampled.checks
    with pytest.raises(KpiError) as no_note:
        supervision.record_check(session, people["sup"], checks[0].id, False, "  ")
    assert no_note.value.status == 422
    session.rollback()
    assert session.get(KpiCheck, checks[0].id).passed is None
    with pytest.raises(KpiError) as forbidden:
        supervision.record_check(session, people["gm"], checks[0].id, True)
    assert forbidden.value.status == 403
    supervision.record_check(session, people["sup"], checks[0].id, False, "Confirmed by a clerk")
    with pytest.raises(KpiError) as incomplete:
        supervision.complete_sample_order(session, people["sup"], sampled.id)
    assert incomplete.value.status == 409
    for check in checks[1:]:
        supervision.record_check(session, people["sup"], check.id, True)
    session.commit()
    assert session.get(KpiSampleOrder, sampled.id).checked_at is not None
    assert session.get(KpiSampleOrder, sampled.id).checked_by_id == people["sup"].id


def test_finding_lifecycle_owner_corrects_another_supervisor_closes(session, sampled, people):
    sup, sup2, owner, stranger = people["sup"], people["sup2"], people["owner"], people["stranger"]
    finding = supervision.open_finding(
        session, sup, sample_order_id=sampled.id, item="roles", description="Confirmed by a clerk", owner_id=owner.id
    )
    session.commit()
    assert finding.order_id == sampled.order_id and finding.status == "open"
    assert finding.due_date == add_working_days(session, company_now().date(), 10)
    notice = session.scalar(select(Notification).where(Notification.template == "kpi.finding_assigned"))
    assert notice.user_id == owner.id and "Confirmed by a clerk" in notice.body
    # The owner sees only their own findings; a stranger none.
    assert [f.id for f in session.scalars(supervision.findings_query(owner))] == [finding.id]
    assert list(session.scalars(supervision.findings_query(stranger))) == []
    with pytest.raises(KpiError) as hidden:
        supervision.correct_finding(session, stranger, finding.id, "done")
    assert hidden.value.status == 404
    with pytest.raises(KpiError) as early:
        supervision.close_finding(session, sup, finding.id)
    assert early.value.status == 409
    with pytest.raises(KpiError) as empty:
        supervision.correct_finding(session, owner, finding.id, "   ")
    assert empty.value.status == 422
    session.rollback()
    assert session.get(KpiFinding, finding.id).status == "open"
    supervision.correct_finding(session, owner, finding.id, "Re-confirmed by the sales manager")
    session.commit()
    with pytest.raises(KpiError) as by_owner:
        supervision.close_finding(session, owner, finding.id)
    assert by_owner.value.status == 403
    supervision.close_finding(session, sup2, finding.id, "Verified")
    session.commit()
    closed = session.get(KpiFinding, finding.id)
    assert (closed.status, closed.closed_by_id) == ("closed", sup2.id) and closed.closed_at is not None
    # A supervisor who owns and corrects a finding cannot close it; another can.
    own = supervision.open_finding(session, sup2, description="Missing delivery note", owner_id=sup.id)
    supervision.correct_finding(session, sup, own.id, "Attached")
    session.commit()
    with pytest.raises(KpiError) as four_eyes:
        supervision.close_finding(session, sup, own.id)
    assert four_eyes.value.status == 403
    supervision.reopen_finding(session, sup2, own.id, "The note is unsigned")
    session.commit()
    assert session.get(KpiFinding, own.id).status == "open"


def test_overdue_findings_are_reminded_once_a_day(session, sampled, people):
    finding = supervision.open_finding(
        session, people["sup"], sample_order_id=sampled.id, description="No confirmation", owner_id=people["owner"].id
    )
    done = supervision.open_finding(
        session, people["sup"], description="Corrected in time", owner_id=people["owner"].id
    )
    session.commit()
    today = company_now().date()
    session.execute(update(KpiFinding).values(due_date=today - dt.timedelta(days=1)))
    session.commit()
    supervision.correct_finding(session, people["owner"], done.id, "Fixed")
    session.commit()
    assert [f.id for f in session.scalars(supervision.findings_query(people["sup"], overdue=True))] == [finding.id]
    now = company_now()
    supervision.remind_overdue(session, now)
    supervision.remind_overdue(session, now + dt.timedelta(minutes=5))
    session.commit()

    def reminders():
        return session.scalars(select(Notification).where(Notification.template == "kpi.finding_overdue")).all()

    assert [(n.user_id, "No confirmation" in n.body) for n in reminders()] == [(people["owner"].id, True)]
    supervision.remind_overdue(session, now + dt.timedelta(days=1))
    session.commit()
    assert len(reminders()) == 2


def test_bad_finding_input_is_refused_and_changes_nothing(session, sampled, people, seed):
    sup = people["sup"]
    inactive = make_user(session, "gone@example.com", ["sales"])
    inactive.active = False
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    session.commit()
    bad = [
        {"description": "   ", "owner_id": people["owner"].id},
        {"description": "x", "owner_id": inactive.id},
        {"description": "x", "owner_id": portal.id},
        {"description": "x", "owner_id": people["owner"].id, "due_date": company_now().date() - dt.timedelta(days=1)},
        {"description": "x", "owner_id": people["owner"].id, "item": "mood"},
        {"description": "x" * 4001, "owner_id": people["owner"].id},
    ]
    for values in bad:
        with pytest.raises(KpiError) as refused:
            supervision.open_finding(session, sup, sample_order_id=sampled.id, **values)
        assert refused.value.status == 422, values
        session.rollback()
    with pytest.raises(KpiError) as missing:
        supervision.open_finding(session, sup, order_id=999999, description="x", owner_id=people["owner"].id)
    assert missing.value.status == 404
    with pytest.raises(KpiError) as forbidden:
        supervision.open_finding(session, people["gm"], description="x", owner_id=people["owner"].id)
    assert forbidden.value.status == 403
    session.rollback()
    assert session.scalar(select(func.count()).select_from(KpiFinding)) == 0
    assert session.scalar(select(func.count()).where(Notification.template == "kpi.finding_assigned")) == 0


def test_api_samples_checks_and_findings(client, session, months, people):
    sup = {"Authorization": f"Bearer {token_for(session, people['sup'])}"}
    sup2 = {"Authorization": f"Bearer {token_for(session, people['sup2'])}"}
    owner = {"Authorization": f"Bearer {token_for(session, people['owner'])}"}
    drawn = client.post("/api/v1/kpi/samples", json={"month": "2026-09", "size": 2}, headers=sup)
    assert drawn.status_code == 201, drawn.get_json()
    body = drawn.get_json()
    assert body["month"] == "2026-09" and len(body["orders"]) == 2
    assert client.post("/api/v1/kpi/samples", json={"month": "2026-09"}, headers=sup).status_code == 409
    assert client.post("/api/v1/kpi/samples", json={"month": "Sept"}, headers=sup).status_code == 422
    assert client.get("/api/v1/kpi/samples", headers=owner).status_code == 403
    listed = client.get("/api/v1/kpi/samples", headers=sup).get_json()
    assert [s["month"] for s in listed["items"]] == ["2026-09"]
    detail = client.get(f"/api/v1/kpi/samples/{body['id']}", headers=sup).get_json()
    check = detail["orders"][0]["checks"][0]
    assert check["item"] == "roles" and check["found"]
    failed = client.post(f"/api/v1/kpi/checks/{check['id']}", json={"passed": False}, headers=sup)
    assert failed.status_code == 422
    ok = client.post(f"/api/v1/kpi/checks/{check['id']}", json={"passed": False, "note": "clerk"}, headers=sup)
    assert ok.status_code == 200 and ok.get_json()["passed"] is False
    assert client.post(f"/api/v1/kpi/checks/{check['id']}", json={"passed": True}, headers=owner).status_code == 403
    opened = client.post(
        "/api/v1/kpi/findings",
        json={
            "sample_order_id": detail["orders"][0]["id"],
            "item": "roles",
            "description": "Clerk confirmed",
            "owner_id": people["owner"].id,
        },
        headers=sup,
    )
    assert opened.status_code == 201, opened.get_json()
    finding = opened.get_json()
    assert finding["order_id"] == detail["orders"][0]["order_id"] and finding["status"] == "open"
    bad = client.post("/api/v1/kpi/findings", json={"description": "", "owner_id": people["owner"].id}, headers=sup)
    assert bad.status_code == 422
    mine = client.get("/api/v1/kpi/findings", headers=owner).get_json()
    assert [f["id"] for f in mine["items"]] == [finding["id"]]
    fid = finding["id"]
    corrected = client.post(f"/api/v1/kpi/findings/{fid}/correct", json={"correction": "Re-confirmed"}, headers=owner)
    assert corrected.status_code == 200 and corrected.get_json()["status"] == "corrected"
    assert client.post(f"/api/v1/kpi/findings/{fid}/close", headers=owner).status_code == 403
    closed = client.post(f"/api/v1/kpi/findings/{fid}/close", json={"note": "ok"}, headers=sup2)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    assert client.post(f"/api/v1/kpi/findings/{fid}/close", headers=sup).status_code == 409
    stranger = {"Authorization": f"Bearer {token_for(session, people['stranger'])}"}
    assert client.get(f"/api/v1/kpi/findings/{fid}", headers=stranger).status_code == 404


def test_screens_draw_check_and_find(client, session, months, people):
    assert login(client, "owner@example.com", PASSWORD).status_code == 200
    assert client.get("/kpi/supervision/samples").status_code == 403
    client.get("/logout")
    login(client, "sup@example.com", PASSWORD)
    page = client.get("/kpi/supervision/samples")
    assert page.status_code == 200 and "data-confirm" in page.get_data(as_text=True)
    token = _csrf(page.get_data(as_text=True))
    drawn = client.post("/kpi/supervision/samples", data={"month": "2026-09", "size": "2", "csrf_token": token})
    assert drawn.status_code == 302
    sample = session.scalar(select(KpiSample))
    assert sample is not None and sample.size == 2
    again = client.post(
        "/kpi/supervision/samples", data={"month": "2026-09", "csrf_token": token}, follow_redirects=True
    )
    assert "sampled already" in again.get_data(as_text=True)
    view = client.get(f"/kpi/supervision/samples/{sample.id}")
    html = view.get_data(as_text=True)
    assert view.status_code == 200 and sample.orders[0].order_id and "passed-" in html
    so = sample.orders[0]
    form = {"csrf_token": token, **{f"passed-{c.id}": "1" for c in so.checks}}
    assert client.post(f"/kpi/supervision/sampled/{so.id}/checks", data=form).status_code == 302
    session.rollback()
    assert session.get(KpiSampleOrder, so.id).checked_at is not None
    created = client.post(
        "/kpi/supervision/findings/new",
        data={
            "csrf_token": token,
            "sample_order_id": str(so.id),
            "item": "data",
            "description": "Wrong price",
            "owner_id": str(people["owner"].id),
        },
    )
    assert created.status_code == 302
    listing = client.get("/kpi/supervision/findings?status=open").get_data(as_text=True)
    assert "Wrong price" in listing
    refused = client.post(
        "/kpi/supervision/findings/new",
        data={"csrf_token": token, "description": "", "owner_id": str(people["owner"].id)},
    )
    assert refused.status_code == 422
    session.rollback()
    assert session.scalar(select(func.count()).select_from(KpiFinding)) == 1


def test_findings_export(client, session, sampled, people):
    supervision.open_finding(session, people["sup"], description="=HYPERLINK(1)", owner_id=people["owner"].id)
    session.commit()
    login(client, "sup@example.com", PASSWORD)
    answer = client.get("/kpi/supervision/findings/export.csv")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text
    assert client.get("/kpi/supervision/findings/export.xlsx").status_code == 200


def _csrf(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match
    return match.group(1)

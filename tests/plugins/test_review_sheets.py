"""The review sheet (订单评审表, RV-1 … RV-5): opened on submission with one task per department
and working-day due dates, verdicts with the department's figures, escalation to the president,
the two-tier committee re-review, consolidation and negotiation that re-opens only the departments
a change affects, and every refusal leaving nothing changed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import AuditLog, Notification, Order, OrderTransition, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.testing import make_order, make_user
from core.workflow import Workflow
from plugins.review import flow, sheets
from plugins.review.errors import ReviewError
from plugins.review.models import ReviewDepartment, ReviewNegotiation, ReviewSheet, ReviewTask, ReviewVerdict

#: A Thursday: two working days later is Monday 2030-01-07.
THURSDAY = dt.datetime(2030, 1, 3, 10, 0, tzinfo=COMPANY_TIMEZONE)
CABINET = [{"product": "P-200", "quantity": "1", "unit_price": "8800.00"}]  # non-regular: five departments
LARGE = [{"product": "P-100", "quantity": "500", "unit_price": "1200.00"}]  # 678,000: two tiers

#: Valid figures per department kind.
FIGURES: dict[str, dict[str, Any]] = {
    "technical": {"feasible": True, "solution": "Standard drawing", "solution_date": "2030-02-01"},
    "production": {"capacity_ok": True, "materials_ok": "yes", "completion_date": "2030-02-20"},
    "purchasing": {"material_cost": "3000", "market_cost": "3100", "in_line_with_market": True},
    "quality": {"achievable": True, "stated_completely": True},
    "finance": {"cost": "5000", "gross_margin": "30", "profit_margin": "12", "payment_terms": "30 days", "risk": "low"},
}
ROLES = {
    "technical": "review_technical",
    "production": "review_production",
    "quality": "review_quality",
    "purchasing": "review_purchasing",
    "finance": "finance",
}


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """The sheets' clock stands on Thursday 2030-01-03."""
    monkeypatch.setattr(sheets, "company_now", lambda: THURSDAY)
    return THURSDAY


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    """A salesperson, one reviewer per department, the president, a general manager, an outsider."""
    users = {code: make_user(session, f"{code}@example.com", [role], branch=seed["hq"]) for code, role in ROLES.items()}
    users["sales"] = make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])
    users["president"] = make_user(session, "president@example.com", ["president"], branch=seed["hq"])
    users["gm"] = make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    users["manager"] = make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"])
    return users


def submit(session: Session, registry: Registry, actor: User, **overrides: Any) -> Order:
    order = make_order(session, actor, requested_date=overrides.pop("requested_date", "2030-03-15"), **overrides)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def sheet_of(session: Session, order: Order) -> ReviewSheet:
    sheet = sheets.current_sheet(session, order.id)
    assert sheet is not None
    return sheet


def task(session: Session, order: Order, code: str, tier: int | None = None) -> ReviewTask:
    sheet = sheet_of(session, order)
    found = [t for t in sheet.tasks if t.department.code == code and (tier is None or t.tier == tier)]
    assert found, f"no {code} task"
    return found[-1]


def decide(
    session: Session,
    registry: Registry,
    people: dict[str, User],
    order: Order,
    code: str,
    verdict: str = "approve",
    **kw: Any,
) -> ReviewVerdict:
    """``code``'s reviewer gives a verdict on the order's current task of that department; committed."""
    kw.setdefault("figures", FIGURES[code])
    if verdict == "reject":
        kw.setdefault("comment", "Cannot be done at this price.")
    if verdict == "approve_with_conditions":
        kw.setdefault("conditions", "Prepayment of 30 %.")
    row = sheets.record_verdict(session, registry, people[code], task(session, order, code), verdict=verdict, **kw)
    session.commit()
    return row


def moves(session: Session, order: Order) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
    )
    return [(t.action, t.from_step, t.to_step) for t in rows]


def notified(session: Session, template: str, order: Order) -> set[int | None]:
    query = select(Notification.user_id).where(Notification.template == template, Notification.order_id == order.id)
    return set(session.scalars(query))


def department(session: Session, code: str) -> ReviewDepartment:
    return session.scalars(select(ReviewDepartment).where(ReviewDepartment.code == code)).one()


def refused(call: Any) -> ReviewError:
    with pytest.raises(ReviewError) as info:
        call()
    return info.value


# --- opening the sheet --------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_submitting_opens_a_sheet_with_a_task_per_department_due_in_working_days(session, registry, people):
    department(session, "production").sla_days = 5
    session.commit()
    order = submit(session, registry, people["sales"])  # regular: production and finance
    assert order.step == flow.DEPARTMENT_REVIEW
    sheet = sheet_of(session, order)
    assert (sheet.round, sheet.status, sheet.tier, sheet.two_tier) == (1, "open", 1, False)
    assert sheet.amount == order.total and sheet.template_id is not None
    due = {t.department.code: (t.status, t.due_date) for t in sheet.tasks}
    # Thursday + 2 working days (the setting) = Monday; + 5 (production's own) = next Thursday.
    assert due == {"production": ("open", dt.date(2030, 1, 10)), "finance": ("open", dt.date(2030, 1, 7))}
    assigned = notified(session, "review.task_assigned", order)
    assert assigned == {people["production"].id, people["finance"].id}
    assert people["technical"].id not in assigned


@pytest.mark.req("RV-5")
def test_a_non_regular_order_is_reviewed_by_every_department(session, registry, people):
    order = submit(session, registry, people["sales"], lines=CABINET)
    codes = [t.department.code for t in sheet_of(session, order).tasks]
    assert codes == ["technical", "production", "quality", "purchasing", "finance"]


# --- verdicts and where they lead -------------------------------------------------------------


@pytest.mark.req("RV-1")
@pytest.mark.req("RV-4")
def test_when_every_department_approves_the_order_goes_to_consolidation(session, registry, people):
    order = submit(session, registry, people["sales"])
    first = decide(session, registry, people, order, "production", "approve_with_conditions")
    assert order.step == flow.DEPARTMENT_REVIEW and sheet_of(session, order).status == "open"
    assert first.proposed_date == dt.date(2030, 2, 20) and first.figures["materials_ok"] is True
    assert notified(session, "review.ready_for_consolidation", order) == set()
    decide(session, registry, people, order, "finance")
    assert (order.status, order.step) == ("submitted", flow.CONSOLIDATION)
    assert moves(session, order)[-1] == ("reviewed", flow.DEPARTMENT_REVIEW, flow.CONSOLIDATION)
    sheet = sheet_of(session, order)
    assert sheet.status == "complete" and sheet.completed_at is not None
    assert {t.department.code: (t.status, t.verdict) for t in sheet.tasks} == {
        "production": ("answered", "approve_with_conditions"),
        "finance": ("answered", "approve"),
    }
    assert notified(session, "review.ready_for_consolidation", order) == {people["sales"].id}
    audit = session.scalars(select(AuditLog).where(AuditLog.order_id == order.id, AuditLog.action == "verdict")).all()
    assert len(audit) == 2


@pytest.mark.req("RV-3")
def test_an_escalating_reject_makes_the_order_not_acceptable_and_sends_it_to_the_president(session, registry, people):
    order = submit(session, registry, people["sales"], lines=CABINET)
    for code in ("technical", "production", "quality", "purchasing"):
        decide(session, registry, people, order, code)
    decide(session, registry, people, order, "finance", "reject")
    assert order.step == flow.PRESIDENT
    action, _, _ = moves(session, order)[-1]
    assert action == "not_acceptable"
    assert sheet_of(session, order).status == "not_acceptable"
    # The president has it re-quoted: a new round, the old sheet closed as re-quoted.
    take_action(session, registry, people["president"], order, "requote", "New material prices")
    session.commit()
    rounds = session.scalars(select(ReviewSheet).where(ReviewSheet.order_id == order.id).order_by(ReviewSheet.round))
    old, new = rounds.all()
    assert (old.status, old.outcome, old.closed_at is not None) == ("closed", "requoted", True)
    assert (new.round, new.status, len(new.tasks)) == (2, "open", 5)


@pytest.mark.req("RV-3")
def test_the_president_abandoning_closes_the_sheet_as_abandoned(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "finance", "reject")  # production still open: the order waits
    assert order.step == flow.DEPARTMENT_REVIEW
    decide(session, registry, people, order, "production")
    assert order.step == flow.PRESIDENT
    take_action(session, registry, people["president"], order, "abandon", "No profit")
    session.commit()
    assert order.status == "rejected"
    assert (sheet_of(session, order).status, sheet_of(session, order).outcome) == ("closed", "abandoned")


@pytest.mark.req("RV-1")
def test_a_reject_from_a_non_escalating_department_still_goes_to_consolidation(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "production", "reject", comment="No capacity in March.")
    decide(session, registry, people, order, "finance")
    assert order.step == flow.CONSOLIDATION
    assert task(session, order, "production").verdict == "reject"


@pytest.mark.req("RV-2")
def test_two_tiers_the_committee_reviews_only_after_the_branch_review(session, registry, people):
    order = submit(session, registry, people["sales"], lines=LARGE)
    sheet = sheet_of(session, order)
    assert sheet.two_tier and sheet.tier == 1
    assert [t.department.code for t in sheet.tasks] == ["technical", "production", "quality"]
    for code in ("technical", "production", "quality"):
        decide(session, registry, people, order, code)
    assert order.step == flow.DEPARTMENT_REVIEW and sheet.tier == 2
    tier2 = [(t.department.code, t.status) for t in sheet.tasks if t.tier == 2]
    assert tier2 == [("quality", "open"), ("purchasing", "open"), ("finance", "open")]
    assert task(session, order, "quality", tier=1).status == "answered"
    assert people["finance"].id in notified(session, "review.task_assigned", order)
    for code in ("quality", "purchasing", "finance"):
        decide(session, registry, people, order, code)
    assert order.step == flow.CONSOLIDATION


@pytest.mark.req("RV-2")
def test_an_escalating_reject_in_the_branch_review_skips_the_committee(session, registry, people):
    order = submit(session, registry, people["sales"], lines=LARGE)
    decide(session, registry, people, order, "technical")
    decide(session, registry, people, order, "production")
    decide(
        session, registry, people, order, "quality", "reject", figures={"achievable": False, "stated_completely": True}
    )
    assert order.step == flow.PRESIDENT
    assert all(t.tier == 1 for t in sheet_of(session, order).tasks)


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_a_verdict_from_outside_the_department_is_refused(session, registry, people, admin):
    order = submit(session, registry, people["sales"])
    production = task(session, order, "production")
    for outsider in (people["sales"], people["quality"], admin):
        error = refused(
            lambda u=outsider: sheets.record_verdict(
                session, registry, u, production, verdict="approve", figures=FIGURES["production"]
            )
        )
        assert (error.status, error.code) == (403, "not_department_member")
    session.rollback()
    assert production.status == "open" and production.verdicts == []


@pytest.mark.req("RV-1")
def test_a_second_verdict_on_an_answered_task_is_refused(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "production")
    error = refused(lambda: decide(session, registry, people, order, "production", "reject"))
    assert (error.status, error.code) == (409, "task_closed")
    session.rollback()
    assert task(session, order, "production").verdict == "approve"
    assert len(task(session, order, "production").verdicts) == 1


@pytest.mark.req("RV-1")
def test_bad_figures_missing_conditions_or_comment_are_refused_per_field(session, registry, people):
    order = submit(session, registry, people["sales"])
    finance = task(session, order, "finance")
    bad = {"cost": "lots", "gross_margin": "30", "payment_terms": "", "risk": "extreme", "colour": "red"}
    error = refused(
        lambda: sheets.record_verdict(session, registry, people["finance"], finance, verdict="approve", figures=bad)
    )
    assert error.status == 422
    assert set(error.details) == {"cost", "profit_margin", "payment_terms", "risk", "colour"}
    error = refused(
        lambda: sheets.record_verdict(
            session, registry, people["finance"], finance, verdict="approve_with_conditions", figures=FIGURES["finance"]
        )
    )
    assert error.status == 422 and set(error.details) == {"conditions"}
    error = refused(
        lambda: sheets.record_verdict(
            session, registry, people["finance"], finance, verdict="reject", figures=FIGURES["finance"]
        )
    )
    assert error.status == 422 and set(error.details) == {"comment"}
    error = refused(
        lambda: sheets.record_verdict(
            session, registry, people["finance"], finance, verdict="maybe", figures=FIGURES["finance"]
        )
    )
    assert (error.status, error.code) == (422, "unknown_verdict")
    session.rollback()
    assert finance.status == "open" and finance.verdicts == [] and order.step == flow.DEPARTMENT_REVIEW


@pytest.mark.req("RV-1")
def test_a_verdict_after_the_order_moved_is_refused(session, registry, people):
    order = submit(session, registry, people["sales"])
    production = task(session, order, "production")
    # Moved on by other means (an administrator's correction) with the task still open.
    Workflow(registry, session).apply(order, "test_move", flow.CONSOLIDATION, None, "test")
    session.commit()
    error = refused(lambda: decide(session, registry, people, order, "production"))
    assert (error.status, error.code) == (409, "not_in_review")
    session.rollback()
    assert production.verdicts == []


@pytest.mark.req("RV-1")
def test_withdrawing_to_draft_withdraws_the_open_tasks(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "production")
    take_action(session, registry, people["sales"], order, "withdraw", "Customer revises the order")
    session.commit()
    sheet = sheet_of(session, order)
    assert (order.step, sheet.status, sheet.outcome) == ("draft", "closed", "superseded")
    assert {t.department.code: t.status for t in sheet.tasks} == {"production": "answered", "finance": "withdrawn"}
    error = refused(lambda: decide(session, registry, people, order, "finance"))
    assert (error.status, error.code) == (409, "task_closed")


@pytest.mark.req("RV-4")
def test_send_for_approval_is_refused_while_a_task_is_open(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "production")
    decide(session, registry, people, order, "finance")
    task(session, order, "finance").status = "open"
    session.commit()
    with pytest.raises(ServiceError) as info:
        take_action(session, registry, people["sales"], order, "send_for_approval")
    assert sheets.OPEN_TASKS_REASON in info.value.details["reasons"]
    session.rollback()
    task(session, order, "finance").status = "answered"
    session.commit()
    take_action(session, registry, people["sales"], order, "send_for_approval")
    session.commit()
    assert order.step == flow.FINAL_APPROVAL


@pytest.mark.req("RV-4")
def test_final_approval_closes_the_sheet_as_approved(session, registry, people):
    order = submit(session, registry, people["sales"])
    decide(session, registry, people, order, "production")
    decide(session, registry, people, order, "finance")
    take_action(session, registry, people["sales"], order, "send_for_approval")
    take_action(session, registry, people["manager"], order, "approve")
    session.commit()
    assert order.step == "submitted"
    assert (sheet_of(session, order).status, sheet_of(session, order).outcome) == ("closed", "approved")


# --- negotiation ----------------------------------------------------------------------------


def consolidated(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    """A non-regular order every department approved, waiting in consolidation."""
    order = submit(session, registry, people["sales"], lines=[*CABINET, {"product": "P-300", "quantity": "100"}])
    for code in ROLES:
        decide(session, registry, people, order, code)
    assert order.step == flow.CONSOLIDATION
    return order


@pytest.mark.req("RV-4")
def test_a_price_change_reopens_only_purchasing_and_finance(session, registry, people):
    order = consolidated(session, registry, people)
    cabinet = order.lines[0]
    version, total = order.version, order.total
    negotiation = sheets.negotiate(
        session,
        registry,
        people["sales"],
        order,
        unit_prices={cabinet.id: Decimal("8500")},
        note="Customer asked 3 % off",
    )
    session.commit()
    assert cabinet.unit_price == Decimal("8500") and order.total < total and order.version > version
    assert order.step == flow.DEPARTMENT_REVIEW
    assert moves(session, order)[-1] == ("renegotiate", flow.CONSOLIDATION, flow.DEPARTMENT_REVIEW)
    sheet = sheet_of(session, order)
    assert sheet.round == 1 and sheet.status == "open" and sheet.amount == order.total
    state = {t.department.code: t.status for t in sheet.tasks}
    assert state == {
        "technical": "answered",
        "production": "answered",
        "quality": "answered",
        "purchasing": "open",
        "finance": "open",
    }
    assert task(session, order, "finance").due_date == dt.date(2030, 1, 7)
    assert negotiation.changes["kinds"] == ["price"]
    assert negotiation.changes["changes"]["lines"][str(cabinet.id)]["unit_price"] == ["8800", "8500"]
    assert sorted(negotiation.reopened) == ["finance", "purchasing"]
    assert session.scalars(select(AuditLog).where(AuditLog.order_id == order.id, AuditLog.action == "negotiate")).one()
    # The re-opened departments answer again; the earlier verdicts are kept.
    decide(session, registry, people, order, "purchasing")
    decide(session, registry, people, order, "finance", "approve_with_conditions")
    assert order.step == flow.CONSOLIDATION
    finance = task(session, order, "finance")
    assert [v.verdict for v in finance.verdicts] == ["approve", "approve_with_conditions"]


@pytest.mark.req("RV-4")
def test_a_date_or_quantity_change_reopens_the_departments_naming_it(session, registry, people):
    order = consolidated(session, registry, people)
    negotiation = sheets.negotiate(session, registry, people["sales"], order, requested_date=dt.date(2030, 4, 1))
    session.commit()
    assert order.requested_date == dt.date(2030, 4, 1)
    assert sorted(negotiation.reopened) == ["production", "technical"]
    decide(session, registry, people, order, "technical")
    decide(session, registry, people, order, "production")
    assert order.step == flow.CONSOLIDATION
    cable = order.lines[1]
    negotiation = sheets.negotiate(session, registry, people["sales"], order, quantities={cable.id: "150"})
    session.commit()
    assert cable.quantity == Decimal("150") and negotiation.changes["kinds"] == ["quantity"]
    assert sorted(negotiation.reopened) == ["production", "purchasing"]


@pytest.mark.req("RV-4")
def test_a_change_no_department_reviews_again_keeps_the_order_in_consolidation(session, registry, people):
    order = consolidated(session, registry, people)
    for code in ROLES:
        department(session, code).reopen_on = ""
    session.commit()
    negotiation = sheets.negotiate(session, registry, people["sales"], order, unit_prices={order.lines[0].id: "8000"})
    session.commit()
    assert negotiation.reopened == [] and order.step == flow.CONSOLIDATION
    assert order.lines[0].unit_price == Decimal("8000")
    assert all(t.status == "answered" for t in sheet_of(session, order).tasks)


@pytest.mark.req("RV-4")
def test_negotiation_refusals_change_nothing(session, registry, people):
    order = consolidated(session, registry, people)
    line = order.lines[0]
    error = refused(lambda: sheets.negotiate(session, registry, people["sales"], order, unit_prices={999999: "1"}))
    assert (error.status, error.code) == (422, "unknown_line")
    error = refused(lambda: sheets.negotiate(session, registry, people["sales"], order, unit_prices={line.id: "-5"}))
    assert error.status == 422 and "unit_prices" in error.details
    error = refused(lambda: sheets.negotiate(session, registry, people["sales"], order, unit_prices={line.id: "8800"}))
    assert (error.status, error.code) == (422, "nothing_changed")
    error = refused(lambda: sheets.negotiate(session, registry, people["finance"], order, unit_prices={line.id: "1"}))
    assert error.status == 403
    session.rollback()
    assert line.unit_price == Decimal("8800") and order.step == flow.CONSOLIDATION
    assert session.scalars(select(ReviewNegotiation)).all() == []
    fresh = submit(session, registry, people["sales"], reference="PO-9")
    error = refused(
        lambda: sheets.negotiate(session, registry, people["sales"], fresh, unit_prices={fresh.lines[0].id: "1"})
    )
    assert (error.status, error.code) == (409, "not_in_consolidation")


# --- queues ----------------------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_each_department_sees_its_own_tasks_most_urgent_first(session, registry, people):
    later = submit(session, registry, people["sales"])
    department(session, "production").sla_days = 1
    session.commit()
    sooner = submit(session, registry, people["sales"], reference="PO-2")
    urgent = submit(session, registry, people["sales"], reference="PO-3", urgency="urgent")
    tasks = session.scalars(sheets.tasks_for(session, people["production"])).all()
    # Urgent orders first, then the earliest due date.
    assert [t.sheet.order_id for t in tasks] == [urgent.id, sooner.id, later.id]
    assert session.scalars(sheets.tasks_for(session, people["quality"])).all() == []
    assert sheets.member_departments(session, people["finance"]) == [department(session, "finance")]
    decide(session, registry, people, sooner, "production")
    assert len(session.scalars(sheets.tasks_for(session, people["production"])).all()) == 2
    assert len(session.scalars(sheets.tasks_for(session, people["production"], status=None)).all()) == 3

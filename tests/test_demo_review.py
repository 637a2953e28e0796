"""``ordo demo`` enables review and leaves orders at every review state, plus a revised order
with its change history and a pending cancellation (RV-1 … RV-9, CORE-5).

The demo is loaded once, through the command line, into a fresh instance; each test reads
one state back from the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli import cli
from core.clock import company_now
from core.db import make_engine
from core.demo import DEMO_PASSWORD, DEMO_PLUGINS
from core.installation import enabled_plugins
from core.models import Order, OrderTransition, OutboxMessage, User
from core.security.passwords import verify_password
from plugins.review import flow
from plugins.review.demo import CREDIT_REASONS, ORDERS, REVIEWERS, reference
from plugins.review.models import (
    ReviewApprovalLimit,
    ReviewChangeRequest,
    ReviewCreditHold,
    ReviewNegotiation,
    ReviewOrderRevision,
    ReviewQuotation,
    ReviewSheet,
    ReviewSupervision,
    ReviewTask,
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fresh instance with the demo loaded through the command line, and what it printed."""
    folder = tmp_path_factory.mktemp("demo") / "instance"
    result = CliRunner().invoke(cli, ["--instance", str(folder), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder, result.output


@pytest.fixture(scope="module")
def engine(loaded: tuple[Path, str]) -> Iterator[object]:
    engine = make_engine(f"sqlite:///{loaded[0] / 'ordo.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def s(engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def demo_order(s: Session, key: str) -> Order:
    """The review demo's order ``key`` (found by its customer's purchase-order number)."""
    number = reference(key, company_now().date().year)
    return s.scalars(select(Order).where(Order.reference == number)).one()


def sheet_of(s: Session, order: Order) -> ReviewSheet:
    """The order's latest review sheet."""
    stmt = select(ReviewSheet).where(ReviewSheet.order_id == order.id).order_by(ReviewSheet.round.desc())
    return s.scalars(stmt).first()  # type: ignore[return-value]


def actions(s: Session, order: Order) -> list[OrderTransition]:
    stmt = select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
    return list(s.scalars(stmt))


def roles_of(s: Session, user_id: int | None) -> set[str]:
    user = s.get(User, user_id)
    assert user is not None
    return {role.code for role in user.roles}


def test_the_demo_enables_review_after_intake(engine):
    assert DEMO_PLUGINS.index("review") > DEMO_PLUGINS.index("intake")
    assert enabled_plugins(engine) == ["billing", "intake", "kpi", "logistics", "review"]


@pytest.mark.req("RV-1")
def test_the_demo_reviewers_and_leaders_log_in_with_the_demo_password(s, loaded):
    for email, _name, role, _department in REVIEWERS:
        user = s.scalars(select(User).where(User.email == email)).one()
        assert {r.code for r in user.roles} == {role} and user.branch_id is not None
        assert verify_password(user.password_hash, DEMO_PASSWORD)
        assert email in loaded[1], f"`ordo demo` does not list the login {email}"


@pytest.mark.req("RV-1")
def test_every_demo_order_rests_in_a_real_step_and_every_review_step_holds_one(s):
    steps = set(s.scalars(select(Order.step)))
    review_steps = {step.key for step in flow.STEPS}
    assert review_steps <= steps
    for order in s.scalars(select(Order).where(Order.step.in_(review_steps))):
        assert order.status == "submitted"
        if order.step != flow.CREDIT_CHECK:
            assert sheet_of(s, order) is not None, order.number


@pytest.mark.req("RV-1")
def test_core_demo_orders_were_confirmed_only_after_every_department_approved(s):
    # kpi's generated history (numbers "H<yyyymm>-…") has review records of its own making.
    live = Order.number.not_like("H%")
    confirmed = s.scalars(select(Order).where(Order.status.in_(("confirmed", "completed")), live)).all()
    assert len(confirmed) >= 5
    for order in confirmed:
        sheet = sheet_of(s, order)
        assert sheet is not None and (sheet.status, sheet.outcome) == ("closed", "approved"), order.number
        for task in sheet.tasks:
            assert task.status == "answered" and task.verdict == "approve"
            verdict = task.verdicts[-1]
            assert task.department.role_code in roles_of(s, verdict.decided_by_id)
            if task.department.kind != "other":
                assert verdict.figures, f"{order.number}: {task.department.code} gave no figures"
        done = [t.action for t in actions(s, order)]
        assert done.index("reviewed") < done.index("approve") < done.index("confirm")


@pytest.mark.req("RV-7")
def test_an_order_is_held_at_the_credit_gate_with_one_of_two_exceptions_granted(s):
    order = demo_order(s, "credit_hold")
    assert (order.status, order.step) == ("submitted", flow.CREDIT_CHECK)
    hold = s.scalars(select(ReviewCreditHold).where(ReviewCreditHold.order_id == order.id)).one()
    assert hold.outcome == "" and hold.released_at is None and hold.reasons == list(CREDIT_REASONS)
    (granted,) = hold.exceptions
    assert granted.role_code == "vice_president" and granted.reason
    assert "vice_president" in roles_of(s, granted.granted_by_id)
    notices = s.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id, OutboxMessage.template == "review.credit_hold")
    ).all()
    assert notices


@pytest.mark.req("RV-1")
def test_an_order_in_department_review_has_some_verdicts_in_and_some_tasks_open(s):
    order = demo_order(s, "department_review")
    assert order.step == flow.DEPARTMENT_REVIEW
    sheet = sheet_of(s, order)
    answered = [t for t in sheet.tasks if t.status == "answered"]
    waiting = [t for t in sheet.tasks if t.status == "open"]
    assert answered and waiting and sheet.status == "open"
    assert all(t.due_date >= company_now().date() for t in waiting)
    conditional = [t for t in answered if t.verdict == "approve_with_conditions"]
    assert not conditional or conditional[0].verdicts[-1].conditions
    assert all(t.verdicts[-1].comment for t in answered)


@pytest.mark.req("RV-2")
def test_a_large_order_is_at_the_head_office_committee_after_the_branch_review(s):
    order = demo_order(s, "tier_two")
    assert order.step == flow.DEPARTMENT_REVIEW and order.total >= Decimal("500000")
    sheet = sheet_of(s, order)
    assert sheet.two_tier and sheet.tier == 2
    first = [t for t in sheet.tasks if t.tier == 1]
    second = [t for t in sheet.tasks if t.tier == 2]
    assert first and all(t.status == "answered" for t in first)
    assert second and any(t.status == "open" for t in second)


@pytest.mark.req("RV-3")
def test_a_not_acceptable_order_waits_for_the_president(s):
    order = demo_order(s, "president")
    assert order.step == flow.PRESIDENT
    sheet = sheet_of(s, order)
    assert sheet.status == "not_acceptable"
    rejected = [t for t in sheet.tasks if t.verdict == "reject"]
    assert rejected and all(t.department.escalating for t in rejected)
    assert rejected[0].verdicts[-1].comment
    quotation = s.scalars(select(ReviewQuotation).where(ReviewQuotation.order_id == order.id)).one()
    assert quotation.below_minimum and quotation.gross_margin is not None and quotation.gross_margin < 15
    assert "not_acceptable" in [t.action for t in actions(s, order)]


@pytest.mark.req("RV-3")
def test_sales_appealed_a_rejection_to_the_chairman(s):
    order = demo_order(s, "appeal")
    assert order.step == flow.APPEAL
    appeal = [t for t in actions(s, order) if t.action == "appeal"]
    assert len(appeal) == 1 and appeal[0].reason and appeal[0].from_step == flow.PRESIDENT
    assert "sales" in roles_of(s, appeal[0].actor_id)
    assert any(t.verdict == "reject" and t.department.code == "purchasing" for t in sheet_of(s, order).tasks)


@pytest.mark.req("RV-3")
@pytest.mark.req("RV-9")
def test_the_president_abandoned_an_order_and_the_reason_is_kept(s):
    order = demo_order(s, "abandoned")
    assert (order.status, order.step) == ("rejected", "rejected")
    (abandon,) = [t for t in actions(s, order) if t.action == "abandon"]
    assert abandon.reason and "president" in roles_of(s, abandon.actor_id)
    sheet = sheet_of(s, order)
    assert (sheet.status, sheet.outcome) == ("closed", "abandoned")
    assert any(t.verdict == "reject" and t.department.code == "quality" for t in sheet.tasks)


@pytest.mark.req("RV-4")
def test_sales_consolidates_after_a_negotiation_the_affected_departments_reviewed_again(s):
    order = demo_order(s, "consolidation")
    assert order.step == flow.CONSOLIDATION
    sheet = sheet_of(s, order)
    (negotiation,) = s.scalars(select(ReviewNegotiation).where(ReviewNegotiation.sheet_id == sheet.id)).all()
    assert negotiation.note and negotiation.reopened and {"price", "date"} <= set(negotiation.changes["kinds"])
    for task in sheet.tasks:
        assert task.status == "answered"
        expected = 2 if task.department.code in negotiation.reopened else 1
        assert len(task.verdicts) == expected, task.department.code
    assert order.lines[0].unit_price < order.lines[0].product.list_price
    assert [t.action for t in actions(s, order)].count("renegotiate") == 1


@pytest.mark.req("RV-6")
def test_an_order_above_the_sales_managers_limit_waits_for_the_general_manager(s):
    order = demo_order(s, "final_approval")
    assert order.step == flow.FINAL_APPROVAL
    limit = s.get(ReviewApprovalLimit, "sales_manager")
    assert limit is not None and limit.max_amount is not None and order.total > limit.max_amount
    assert sheet_of(s, order).approver_role == "general_manager"
    assert s.get(ReviewSupervision, order.id) is None


@pytest.mark.req("RV-6")
def test_an_order_above_a_million_is_supervised_by_internal_audit_at_every_step(s):
    order = demo_order(s, "supervised")
    assert order.step == flow.FINAL_APPROVAL and order.total > Decimal("1000000")
    supervision = s.get(ReviewSupervision, order.id)
    assert supervision is not None and supervision.amount > supervision.threshold
    sheet = sheet_of(s, order)
    assert sheet.two_tier and sheet.approver_role == "general_manager"
    followed = s.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id, OutboxMessage.template == "review.supervised_step"
        )
    ).all()
    auditors = {m.user_id for m in followed}
    assert len(followed) >= 2 and all("auditor" in roles_of(s, a) for a in auditors)


@pytest.mark.req("RV-8")
@pytest.mark.req("CORE-5")
def test_a_confirmed_order_was_revised_by_an_approved_change_request(s):
    order = demo_order(s, "revised")
    assert order.status == "confirmed"  # confirmed again; logistics' steps follow
    revisions = s.scalars(
        select(ReviewOrderRevision).where(ReviewOrderRevision.order_id == order.id).order_by(ReviewOrderRevision.number)
    ).all()
    assert [r.number for r in revisions] == [1, 2]
    assert revisions[0].snapshot != revisions[1].snapshot
    requests = s.scalars(
        select(ReviewChangeRequest).where(ReviewChangeRequest.order_id == order.id).order_by(ReviewChangeRequest.number)
    ).all()
    assert [(r.kind, r.status) for r in requests] == [("change", "rejected"), ("change", "approved")]
    refused, approved = requests
    assert refused.decision_reason and refused.revision_id is None
    assert approved.revision_id == revisions[1].id and approved.new_delivery_date == order.requested_date
    assert all(a.verdict for r in requests for a in r.assessments)
    assert order.lines[0].quantity == Decimal(ORDERS["revised"].lines[0][1]) + 10
    done = [t.action for t in actions(s, order)]
    assert done.count("confirm") == 2 and done.index("revise") > done.index("confirm")
    rounds = s.scalars(select(ReviewSheet.round).where(ReviewSheet.order_id == order.id)).all()
    assert sorted(rounds) == [1, 2]
    told = s.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id,
            OutboxMessage.template == "review.change_decided",
            OutboxMessage.customer_id == order.customer_id,
        )
    ).all()
    assert told


@pytest.mark.req("RV-8")
@pytest.mark.req("RV-9")
def test_a_confirmed_order_has_a_cancellation_request_waiting(s):
    order = demo_order(s, "cancellation")
    assert order.status == "confirmed"
    (request,) = s.scalars(select(ReviewChangeRequest).where(ReviewChangeRequest.order_id == order.id)).all()
    assert request.kind == "cancel" and request.status in ("assessing", "pending_approval") and request.reason
    assert request.decided_at is None


@pytest.mark.req("RV-1")
def test_review_tasks_are_due_in_working_days_from_today(s):
    today = company_now().date()
    open_tasks = s.scalars(select(ReviewTask).where(ReviewTask.status == "open")).all()
    assert open_tasks
    assert all(today <= t.due_date <= today + dt.timedelta(days=30) for t in open_tasks)

"""Final approval by approval limits and audit supervision of large orders (RV-6): the sales
manager approves within 200,000, the general manager beyond; the approver is named on the
review sheet and notified; above ``review.audit.threshold`` internal audit is flagged and
told of every later step of the order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.models import Notification, Order, OrderTransition, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from core.workflow import Workflow
from plugins.review import approval
from plugins.review.flow import AUDIT_THRESHOLD, CONSOLIDATION, DEPARTMENT_REVIEW, FINAL_APPROVAL
from plugins.review.models import ReviewApprovalLimit, ReviewSupervision
from plugins.review.sheets import current_sheet, record_verdict

#: Figures each kind of department gives with an approval.
FIGURES: dict[str, dict[str, Any]] = {
    "technical": {"feasible": True},
    "production": {"capacity_ok": True, "materials_ok": True, "completion_date": "2030-03-01"},
    "purchasing": {"material_cost": "1000", "in_line_with_market": True},
    "quality": {"achievable": True, "stated_completely": True},
    "finance": {"cost": "1000", "gross_margin": "20", "profit_margin": "8", "payment_terms": "30 days", "risk": "low"},
    "other": {},
}
REVIEWER_ROLES = ("review_technical", "review_production", "review_quality", "review_purchasing", "finance")


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    users = {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "auditor": make_user(session, "auditor@example.com", ["auditor"], branch=hq),
        "auditor_zh": make_user(session, "auditor.zh@example.com", ["auditor"], branch=hq, language="zh_CN"),
    }
    for role in REVIEWER_ROLES:
        users[role] = make_user(session, f"{role}@example.com", [role], branch=hq)
    return users


def order_of(session: Session, actor: User, quantity: int) -> Order:
    """A draft order of ``quantity`` gear motors at 1,200.00 (plus tax)."""
    lines = [{"product": "P-100", "quantity": str(quantity), "unit_price": "1200.00"}]
    return make_order(session, actor, requested_date="2030-03-15", lines=lines)


def review_all(session: Session, registry: Registry, order: Order, people: dict[str, User]) -> None:
    """Every department of every tier approves; the order reaches consolidation."""
    for _tier in range(3):
        sheet = current_sheet(session, order.id)
        assert sheet is not None
        tasks = [t for t in sheet.tasks if t.status == "open"]
        if order.step != DEPARTMENT_REVIEW or not tasks:
            break
        for task in tasks:
            department = task.department
            record_verdict(
                session,
                registry,
                people[department.role_code],
                task,
                verdict="approve",
                comment="OK",
                figures=FIGURES[department.kind],
            )
        session.commit()
    assert order.step == CONSOLIDATION


def to_final_approval(session: Session, registry: Registry, people: dict[str, User], quantity: int) -> Order:
    order = order_of(session, people["sales"], quantity)
    take_action(session, registry, people["sales"], order, "submit")
    session.commit()
    review_all(session, registry, order, people)
    take_action(session, registry, people["sales"], order, "send_for_approval")
    session.commit()
    assert order.step == FINAL_APPROVAL
    return order


def notified(session: Session, template: str, order: Order) -> list[int | None]:
    query = select(Notification.user_id).where(Notification.template == template, Notification.order_id == order.id)
    return list(session.scalars(query.order_by(Notification.id)))


def refusal(session: Session, registry: Registry, actor: User, order: Order, action: str, reason: str = "") -> Any:
    with pytest.raises(ServiceError) as refused:
        take_action(session, registry, actor, order, action, reason)
    session.rollback()
    return refused.value


@pytest.mark.req("RV-6")
def test_the_approver_is_the_role_with_the_smallest_limit_covering_the_total(session, registry, people):
    assert approval.approver_role(session, Decimal("150000")) == "sales_manager"
    assert approval.approver_role(session, Decimal("200000")) == "sales_manager"
    assert approval.approver_role(session, Decimal("200000.01")) == "general_manager"
    assert approval.approver_role(session, Decimal("90000000")) == "general_manager"
    session.add(ReviewApprovalLimit(role_code="vice_president", max_amount=Decimal("500000")))
    session.commit()
    assert approval.approver_role(session, Decimal("300000")) == "vice_president"
    assert approval.may_approve(session, people["manager"], Decimal("150000"))
    assert not approval.may_approve(session, people["manager"], Decimal("300000"))
    assert approval.may_approve(session, people["gm"], Decimal("300000"))
    assert not approval.may_approve(session, people["sales"], Decimal("1"))
    session.execute(delete(ReviewApprovalLimit).where(ReviewApprovalLimit.max_amount.is_(None)))
    session.commit()
    assert approval.approver_role(session, Decimal("600000")) is None
    assert not approval.may_approve(session, people["gm"], Decimal("600000"))


@pytest.mark.req("RV-6")
def test_the_sales_manager_approves_an_order_within_the_limit(session, registry, people):
    order = to_final_approval(session, registry, people, 110)
    assert Decimal("100000") < order.total <= Decimal("200000")
    sheet = current_sheet(session, order.id)
    assert sheet is not None and sheet.approver_role == "sales_manager"
    assert notified(session, "review.approval_requested", order) == [people["manager"].id]
    take_action(session, registry, people["manager"], order, "approve")
    session.commit()
    assert (order.status, order.step) == ("submitted", "submitted")


@pytest.mark.req("RV-6")
def test_beyond_the_sales_managers_limit_only_the_general_manager_approves_or_rejects(session, registry, people):
    order = to_final_approval(session, registry, people, 230)
    assert order.total > Decimal("200000")
    sheet = current_sheet(session, order.id)
    assert sheet is not None and sheet.approver_role == "general_manager"
    assert notified(session, "review.approval_requested", order) == [people["gm"].id]
    body = session.scalars(select(Notification.body).where(Notification.template == "review.approval_requested")).one()
    assert "General manager" in body

    for action, reason in (("approve", ""), ("reject", "Too risky.")):
        refused = refusal(session, registry, people["manager"], order, action, reason)
        assert refused.code == "transition_refused"
        assert refused.details["reasons"] == [approval.BEYOND_LIMIT_GM]
    assert order.step == FINAL_APPROVAL
    options = {o.action.name: o for o in Workflow(registry, session).options(order, people["manager"])}
    assert options["approve"].blocked_by == [approval.BEYOND_LIMIT_GM]
    assert options["send_back"].allowed, "sending back is not limited"

    take_action(session, registry, people["gm"], order, "approve")
    session.commit()
    assert (order.status, order.step) == ("submitted", "submitted")
    last = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id.desc())
    ).first()
    assert last is not None and (last.action, last.actor_id) == ("approve", people["gm"].id)


@pytest.mark.req("RV-6")
def test_no_limit_covering_the_total_is_named_as_such(session, registry, people):
    session.execute(delete(ReviewApprovalLimit).where(ReviewApprovalLimit.max_amount.is_(None)))
    session.commit()
    order = to_final_approval(session, registry, people, 230)
    sheet = current_sheet(session, order.id)
    assert sheet is not None and sheet.approver_role == ""
    refused = refusal(session, registry, people["gm"], order, "approve")
    assert refused.details["reasons"] == [approval.NO_LIMIT_COVERS]


@pytest.mark.req("RV-6")
def test_an_order_above_the_audit_threshold_is_supervised_and_the_auditor_told_of_every_later_step(
    session, registry, people
):
    set_setting(session, AUDIT_THRESHOLD, 250000, registry=registry)
    session.commit()
    small = to_final_approval(session, registry, people, 110)
    assert not approval.is_supervised(session, small.id)
    assert notified(session, "review.supervised_step", small) == []

    order = to_final_approval(session, registry, people, 230)
    assert order.total > Decimal("250000")
    supervision = session.get(ReviewSupervision, order.id)
    assert supervision is not None
    assert (supervision.amount, supervision.threshold) == (order.total, Decimal("250000"))
    assert notified(session, "review.supervision_flagged", order) == [people["auditor"].id, people["auditor_zh"].id]
    # Every move after the submission that flagged it: one notice each, to the auditor.
    moves = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
    ).all()
    steps = notified(session, "review.supervised_step", order)
    assert steps == [people["auditor"].id, people["auditor_zh"].id] * (len(moves) - 1)
    approval_body = session.scalars(
        select(Notification.body).where(
            Notification.template == "review.approval_requested", Notification.order_id == order.id
        )
    ).one()
    assert "internal audit" in approval_body

    take_action(session, registry, people["gm"], order, "send_back", "Ask the customer for a deposit.")
    session.commit()
    last = session.scalars(
        select(Notification)
        .where(
            Notification.template == "review.supervised_step",
            Notification.order_id == order.id,
            Notification.user_id == people["auditor"].id,
        )
        .order_by(Notification.id.desc())
    ).first()
    assert last is not None
    assert "Ask the customer for a deposit." in last.body and "gm" in last.body
    assert "Final approval" in last.subject and "Consolidation" in last.subject
    assert len(notified(session, "review.supervised_step", order)) == 2 * len(moves)
    assert notified(session, "review.supervision_flagged", order) == [people["auditor"].id, people["auditor_zh"].id], (
        "flagged once"
    )


@pytest.mark.req("RV-6")
def test_an_order_is_flagged_when_it_reaches_final_approval_above_a_threshold_lowered_meanwhile(
    session, registry, people
):
    order = order_of(session, people["sales"], 230)
    take_action(session, registry, people["sales"], order, "submit")
    session.commit()
    assert not approval.is_supervised(session, order.id), "the default threshold is 1,000,000"
    review_all(session, registry, order, people)
    set_setting(session, AUDIT_THRESHOLD, 200000, registry=registry)
    take_action(session, registry, people["sales"], order, "send_for_approval")
    session.commit()
    assert approval.is_supervised(session, order.id)
    assert notified(session, "review.supervision_flagged", order) == [people["auditor"].id, people["auditor_zh"].id]
    take_action(session, registry, people["gm"], order, "approve")
    session.commit()
    assert notified(session, "review.supervised_step", order) == [people["auditor"].id, people["auditor_zh"].id]


def test_whether_audit_follows_an_order_is_asked_once_per_transaction_and_never_stale(session, registry, people):
    from sqlalchemy import event

    order = order_of(session, people["sales"], 230)
    set_setting(session, AUDIT_THRESHOLD, 200000, registry=registry)
    session.commit()
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.startswith("SELECT") and "FROM review_supervision" in statement:
            reads.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert not any(approval.is_supervised(session, order.id) for _ in range(3))
        assert len(reads) == 1
        assert approval.flag_supervision(session, order)  # flagged in the same transaction: seen
        assert approval.is_supervised(session, order.id)
        session.execute(delete(ReviewSupervision).where(ReviewSupervision.order_id == order.id))
        assert not approval.is_supervised(session, order.id)
        session.rollback()
        assert not approval.is_supervised(session, order.id)
    finally:
        event.remove(engine, "before_cursor_execute", count)

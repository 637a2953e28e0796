"""Escalation of not-acceptable orders (RV-3, RV-9): when purchasing, quality or finance rejects,
the president is told who rejected and why and abandons the order (rejected, the reason kept)
or has it re-quoted (a new review round); sales may appeal to the chairman, who accepts the
order (on to consolidation) or dismisses the appeal (back to the president)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Notification, Order, OrderTransition, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.review.flow import APPEAL, CONSOLIDATION, DEPARTMENT_REVIEW, PRESIDENT
from plugins.review.models import ReviewSheet
from plugins.review.sheets import current_sheet, record_verdict

#: Figures each kind of department gives with its verdict.
FIGURES: dict[str, dict[str, Any]] = {
    "technical": {"feasible": True},
    "production": {"capacity_ok": True, "materials_ok": True, "completion_date": "2030-03-01"},
    "purchasing": {"material_cost": "1000", "in_line_with_market": False},
    "quality": {"achievable": True, "stated_completely": True},
    "finance": {
        "cost": "1000",
        "gross_margin": "2",
        "profit_margin": "-3",
        "payment_terms": "180 days",
        "risk": "high",
    },
    "other": {},
}
REVIEWER_ROLES = ("review_technical", "review_production", "review_quality", "review_purchasing", "finance")
WHY = "The gross margin is 2%, far below our minimum; the customer pays in 180 days."


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
        "other_sales": make_user(session, "other.sales@example.com", ["sales"], branch=hq),
        "president": make_user(session, "president@example.com", ["president"], branch=hq),
        "chairman": make_user(session, "chairman@example.com", ["chairman"], branch=hq, language="zh_CN"),
    }
    for role in REVIEWER_ROLES:
        users[role] = make_user(session, f"{role}@example.com", [role], branch=hq)
    return users


def not_acceptable(session: Session, registry: Registry, people: dict[str, User]) -> tuple[Order, str]:
    """Submit an order; the first escalating department rejects it, the others approve."""
    order = make_order(session, people["sales"], requested_date="2030-03-15")
    take_action(session, registry, people["sales"], order, "submit")
    session.commit()
    sheet = current_sheet(session, order.id)
    assert sheet is not None and order.step == DEPARTMENT_REVIEW
    escalating = [t for t in sheet.tasks if t.department.escalating and t.status == "open"]
    assert escalating, "the shipped templates name an escalating department"
    rejecting = escalating[0]
    name = rejecting.department.name
    for _tier in range(3):
        tasks = [t for t in sheet.tasks if t.status == "open"]
        if order.step != DEPARTMENT_REVIEW or not tasks:
            break
        for task in tasks:
            department = task.department
            verdict = "reject" if task.id == rejecting.id else "approve"
            record_verdict(
                session,
                registry,
                people[department.role_code],
                task,
                verdict=verdict,
                comment=WHY if verdict == "reject" else "OK",
                figures=FIGURES[department.kind],
            )
        session.commit()
    assert order.step == PRESIDENT
    return order, name


def notices(session: Session, template: str, order: Order) -> list[Notification]:
    query = select(Notification).where(Notification.template == template, Notification.order_id == order.id)
    return list(session.scalars(query.order_by(Notification.id)))


def last_move(session: Session, order: Order) -> OrderTransition:
    query = select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id.desc())
    move = session.scalars(query).first()
    assert move is not None
    return move


def sheets_of(session: Session, order: Order) -> list[ReviewSheet]:
    return list(
        session.scalars(select(ReviewSheet).where(ReviewSheet.order_id == order.id).order_by(ReviewSheet.round))
    )


@pytest.mark.req("RV-3")
def test_a_reject_by_an_escalating_department_sends_the_order_to_the_president_with_who_and_why(
    session, registry, people
):
    order, department = not_acceptable(session, registry, people)
    told = notices(session, "review.not_acceptable", order)
    assert sorted(n.user_id for n in told) == sorted([people["president"].id, people["sales"].id])
    assert people["other_sales"].id not in [n.user_id for n in told]
    body = told[0].body
    assert department in body and WHY in body
    rejecters = [people[role].name for role in REVIEWER_ROLES if f"({people[role].name})" in body]
    assert len(rejecters) == 1, "the reviewer who rejected is named"


@pytest.mark.req("RV-3")
@pytest.mark.req("RV-9")
def test_the_president_abandons_the_order_and_the_reason_is_kept(session, registry, people):
    order, _ = not_acceptable(session, registry, people)
    with pytest.raises(ServiceError) as not_his:
        take_action(session, registry, people["sales"], order, "abandon", "No profit.")
    assert not_his.value.code == "forbidden"
    session.rollback()
    with pytest.raises(ServiceError) as no_reason:
        take_action(session, registry, people["president"], order, "abandon")
    assert no_reason.value.code == "reason_required"
    session.rollback()

    take_action(session, registry, people["president"], order, "abandon", "No profit at this price.")
    session.commit()
    assert (order.status, order.step) == ("rejected", "rejected")
    move = last_move(session, order)
    assert (move.action, move.actor_id, move.reason) == ("abandon", people["president"].id, "No profit at this price.")
    (sheet,) = sheets_of(session, order)
    assert sheet.outcome == "abandoned"


@pytest.mark.req("RV-3")
def test_the_president_has_the_order_re_quoted_and_a_new_review_round_opens(session, registry, people):
    order, _ = not_acceptable(session, registry, people)
    take_action(session, registry, people["president"], order, "requote", "Re-quote with the new copper price.")
    session.commit()
    assert order.step == DEPARTMENT_REVIEW
    first, second = sheets_of(session, order)
    assert (first.round, first.outcome) == (1, "requoted")
    assert second.round == 2 and second.status == "open"
    assert second.tasks and all(t.status == "open" for t in second.tasks)


@pytest.mark.req("RV-3")
def test_sales_appeals_to_the_chairman_who_accepts_the_order(session, registry, people):
    order, _ = not_acceptable(session, registry, people)
    with pytest.raises(ServiceError):
        take_action(session, registry, people["sales"], order, "appeal")
    session.rollback()
    take_action(session, registry, people["sales"], order, "appeal", "Strategic customer: first order of a series.")
    session.commit()
    assert order.step == APPEAL
    (told,) = notices(session, "review.appeal_filed", order)
    assert told.user_id == people["chairman"].id
    assert "申诉理由：Strategic customer: first order of a series." in told.body, "in the chairman's language"
    assert people["sales"].name in told.body and "向董事长申诉" in told.subject

    with pytest.raises(ServiceError) as not_his:
        take_action(session, registry, people["president"], order, "accept_appeal", "Fine.")
    assert not_his.value.code == "forbidden"
    session.rollback()
    take_action(session, registry, people["chairman"], order, "accept_appeal", "Accepted for the series.")
    session.commit()
    assert order.step == CONSOLIDATION
    move = last_move(session, order)
    assert (move.action, move.actor_id, move.reason) == (
        "accept_appeal",
        people["chairman"].id,
        "Accepted for the series.",
    )


@pytest.mark.req("RV-3")
def test_the_chairman_dismisses_the_appeal_and_the_president_decides_again(session, registry, people):
    order, _ = not_acceptable(session, registry, people)
    take_action(session, registry, people["sales"], order, "appeal", "Strategic customer.")
    session.commit()
    take_action(session, registry, people["chairman"], order, "dismiss_appeal", "The margin cannot be defended.")
    session.commit()
    assert order.step == PRESIDENT
    president_notices = [
        n for n in notices(session, "review.not_acceptable", order) if n.user_id == people["president"].id
    ]
    assert len(president_notices) == 2
    assert "The margin cannot be defended." in president_notices[1].body
    assert "appeal" in president_notices[1].body and "appeal" not in president_notices[0].body
    take_action(session, registry, people["president"], order, "abandon", "Appeal dismissed; no profit.")
    session.commit()
    assert order.status == "rejected"

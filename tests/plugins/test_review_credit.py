"""Review's credit gate (RV-7): a customer not in good standing is held before review; the
roles the settings name each grant an exception (audited) before the order goes on; sales
may check again or take the order back. Billing answers the standing when enabled — here a
tiny integrator plugin implementing review's hook stands in for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import AuditLog, Notification, Order, OrderTransition, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.review import credit
from plugins.review.errors import ReviewError
from plugins.review.flow import CREDIT_CHECK, DEPARTMENT_REVIEW, EXCEPTION_ROLES
from plugins.review.models import ReviewCreditException, ReviewCreditHold

OVERDUE = "Invoice INV-2030-007 (12,000.00) is 45 days overdue."
LIMIT = "The order would take the customer beyond its credit limit of 50,000.00."


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


class CreditStanding:
    """Stands in for billing: answers review's credit question with ``reasons``."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.asked = 0

    @hookimpl(optionalhook=True)
    def ordo_review_credit_standing(self, order: Order, session: Session) -> list[str]:
        self.asked += 1
        return list(self.reasons)


@pytest.fixture
def standing(registry: Registry) -> Iterator[CreditStanding]:
    plugin = CreditStanding()
    registry.pm.register(plugin, name="test_credit")
    yield plugin
    registry.pm.unregister(name="test_credit")


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "vp": make_user(session, "vp@example.com", ["vice_president"], branch=hq),
        "vp2": make_user(session, "vp2@example.com", ["vice_president"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "both": make_user(session, "both@example.com", ["vice_president", "general_manager"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
    }


def submit(session: Session, registry: Registry, actor: User) -> Order:
    order = make_order(session, actor, requested_date="2030-03-15")
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def moves(session: Session, order: Order) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
    )
    return [(t.action, t.from_step, t.to_step) for t in rows]


def holds(session: Session, order: Order) -> list[ReviewCreditHold]:
    query = select(ReviewCreditHold).where(ReviewCreditHold.order_id == order.id).order_by(ReviewCreditHold.id)
    return list(session.scalars(query))


def notified(session: Session, template: str, order: Order) -> list[int | None]:
    query = select(Notification.user_id).where(Notification.template == template, Notification.order_id == order.id)
    return sorted(uid for uid in session.scalars(query) if uid is not None)


@pytest.mark.req("RV-7")
def test_without_an_answer_the_customer_is_in_good_standing_and_the_order_goes_to_review(session, registry, people):
    order = submit(session, registry, people["sales"])
    assert order.step == DEPARTMENT_REVIEW
    assert moves(session, order)[:2] == [
        ("submit", "draft", CREDIT_CHECK),
        ("credit_ok", CREDIT_CHECK, DEPARTMENT_REVIEW),
    ]
    assert holds(session, order) == []


@pytest.mark.req("RV-7")
def test_a_clean_answer_passes_and_reasons_hold_the_order_and_tell_sales_and_the_exception_roles(
    session, registry, people, standing
):
    clean = submit(session, registry, people["sales"])
    assert clean.step == DEPARTMENT_REVIEW and standing.asked == 1

    standing.reasons = [OVERDUE, LIMIT, OVERDUE]
    order = submit(session, registry, people["sales"])
    assert (order.status, order.step) == ("submitted", CREDIT_CHECK)
    (hold,) = holds(session, order)
    assert hold.reasons == [OVERDUE, LIMIT] and hold.outcome == "" and hold.released_at is None
    last = moves(session, order)[-1]
    assert last == ("credit_hold", CREDIT_CHECK, CREDIT_CHECK)
    reason = session.scalars(select(OrderTransition.reason).where(OrderTransition.order_id == order.id)).all()[-1]
    assert OVERDUE in reason and LIMIT in reason
    # The salesperson and every holder of the exception roles; nobody else.
    expected = sorted(people[k].id for k in ("sales", "vp", "vp2", "gm", "both"))
    assert notified(session, "review.credit_hold", order) == expected
    body = session.scalars(
        select(Notification.body).where(
            Notification.template == "review.credit_hold", Notification.user_id == people["sales"].id
        )
    ).one()
    assert OVERDUE in body and "vice_president" in body


@pytest.mark.req("RV-7")
def test_an_exception_needs_the_vice_president_and_the_general_manager_each_with_a_reason_audited(
    session, registry, people, standing
):
    standing.reasons = [OVERDUE]
    order = submit(session, registry, people["sales"])
    hold = credit.open_hold(session, order.id)
    assert hold is not None
    assert credit.roles_still_to_grant(session, hold) == ["vice_president", "general_manager"]

    credit.grant_exception(session, registry, people["vp"], order, "  Long-standing customer, pays in Q1.  ")
    session.commit()
    assert order.step == CREDIT_CHECK, "one grant is not enough"
    assert credit.roles_still_to_grant(session, hold) == ["general_manager"]

    credit.grant_exception(session, registry, people["gm"], order, "Agreed with finance: guarantee received.")
    session.commit()
    assert order.step == DEPARTMENT_REVIEW
    assert ("credit_exception", CREDIT_CHECK, DEPARTMENT_REVIEW) in moves(session, order)
    session.refresh(hold)
    assert hold.outcome == "exception" and hold.released_at is not None
    grants = [(g.role_code, g.granted_by_id, g.reason) for g in hold.exceptions]
    assert grants == [
        ("vice_president", people["vp"].id, "Long-standing customer, pays in Q1."),
        ("general_manager", people["gm"].id, "Agreed with finance: guarantee received."),
    ]
    audits = session.scalars(
        select(AuditLog).where(AuditLog.action == "credit_exception_granted").order_by(AuditLog.id)
    ).all()
    assert [(a.actor_id, a.order_id, a.changes["role"]) for a in audits] == [
        (people["vp"].id, order.id, "vice_president"),
        (people["gm"].id, order.id, "general_manager"),
    ]
    assert audits[0].reason == "Long-standing customer, pays in Q1."


@pytest.mark.req("RV-7")
def test_exceptions_are_refused_without_a_hold_a_reason_the_permission_or_a_named_role_still_to_grant(
    session, registry, people, standing, admin
):
    clean = submit(session, registry, people["sales"])
    with pytest.raises(ReviewError) as no_hold:
        credit.grant_exception(session, registry, people["vp"], clean, "why not")
    assert no_hold.value.status == 409 and no_hold.value.code == "no_credit_hold"

    standing.reasons = [OVERDUE]
    order = submit(session, registry, people["sales"])
    refusals = [
        (people["vp"], "   ", 422, "reason_required"),
        (people["manager"], "I know them", 403, "forbidden"),
        (admin, "I run the system", 403, "not_a_named_role"),
    ]
    for actor, reason, status, code in refusals:
        with pytest.raises(ReviewError) as refused:
            credit.grant_exception(session, registry, actor, order, reason)
        assert (refused.value.status, refused.value.code) == (status, code)
    session.rollback()

    credit.grant_exception(session, registry, people["vp"], order, "Known customer.")
    session.commit()
    with pytest.raises(ReviewError) as again:
        credit.grant_exception(session, registry, people["vp"], order, "Once more.")
    assert (again.value.status, again.value.code) == (409, "already_granted")
    with pytest.raises(ReviewError) as other_vp:
        credit.grant_exception(session, registry, people["vp2"], order, "Me too.")
    assert (other_vp.value.status, other_vp.value.code) == (403, "not_a_named_role")
    assert "general_manager" in str(other_vp.value)
    session.rollback()
    assert order.step == CREDIT_CHECK
    assert len(session.scalars(select(ReviewCreditException)).all()) == 1
    assert len(session.scalars(select(AuditLog).where(AuditLog.action == "credit_exception_granted")).all()) == 1


@pytest.mark.req("RV-7")
def test_one_person_holding_both_roles_grants_for_one_of_them_only(session, registry, people, standing):
    standing.reasons = [LIMIT]
    order = submit(session, registry, people["sales"])
    credit.grant_exception(session, registry, people["both"], order, "Strategic customer.")
    session.commit()
    with pytest.raises(ReviewError):
        credit.grant_exception(session, registry, people["both"], order, "And as GM too.")
    session.rollback()
    credit.grant_exception(session, registry, people["gm"], order, "Agreed.")
    session.commit()
    assert order.step == DEPARTMENT_REVIEW


@pytest.mark.req("RV-7")
def test_the_roles_that_grant_are_a_setting(session, registry, people, standing):
    set_setting(session, EXCEPTION_ROLES, " general_manager ", registry=registry)
    session.commit()
    standing.reasons = [OVERDUE]
    order = submit(session, registry, people["sales"])
    assert notified(session, "review.credit_hold", order) == sorted(people[k].id for k in ("sales", "gm", "both"))
    with pytest.raises(ReviewError):
        credit.grant_exception(session, registry, people["vp"], order, "VP says yes.")
    session.rollback()
    credit.grant_exception(session, registry, people["gm"], order, "GM says yes.")
    session.commit()
    assert order.step == DEPARTMENT_REVIEW


@pytest.mark.req("RV-7")
def test_checking_again_keeps_the_hold_until_the_standing_clears_then_moves_on(session, registry, people, standing):
    standing.reasons = [OVERDUE, LIMIT]
    order = submit(session, registry, people["sales"])
    credit.grant_exception(session, registry, people["vp"], order, "Known customer.")
    session.commit()

    standing.reasons = [LIMIT]  # the overdue invoice was paid
    take_action(session, registry, people["sales"], order, "recheck_credit")
    session.commit()
    assert order.step == CREDIT_CHECK
    (hold,) = holds(session, order)
    assert hold.reasons == [LIMIT] and hold.outcome == ""
    assert [g.role_code for g in hold.exceptions] == ["vice_president"], "grants survive a re-check"
    assert len(notified(session, "review.credit_hold", order)) == 5, "a re-check does not notify again"

    standing.reasons = []
    take_action(session, registry, people["sales"], order, "recheck_credit")
    session.commit()
    assert order.step == DEPARTMENT_REVIEW
    session.refresh(hold)
    assert hold.outcome == "cleared" and hold.released_at is not None
    assert [m[0] for m in moves(session, order)][:6] == [
        "submit",
        "credit_hold",
        "recheck_credit",
        "credit_hold",
        "recheck_credit",
        "credit_ok",
    ]


@pytest.mark.req("RV-7")
@pytest.mark.req("RV-9")
def test_sales_takes_a_held_order_back_with_a_reason_and_a_new_submission_asks_again(
    session, registry, people, standing
):
    standing.reasons = [OVERDUE]
    order = submit(session, registry, people["sales"])
    with pytest.raises(ServiceError) as no_reason:
        take_action(session, registry, people["sales"], order, "return_to_sales")
    assert no_reason.value.code == "reason_required"
    take_action(session, registry, people["sales"], order, "return_to_sales", "Customer asked for prepayment terms.")
    session.commit()
    assert (order.status, order.step) == ("draft", "draft")
    (first,) = holds(session, order)
    assert first.outcome == "returned"
    last = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id.desc())
    ).first()
    assert last is not None and last.reason == "Customer asked for prepayment terms."

    take_action(session, registry, people["sales"], order, "submit")
    session.commit()
    assert order.step == CREDIT_CHECK
    assert [h.outcome for h in holds(session, order)] == ["returned", ""]

    take_action(session, registry, people["manager"], order, "cancel", "Customer withdrew.")
    session.commit()
    assert [h.outcome for h in holds(session, order)] == ["returned", "cancelled"]

"""Intake's steps (IN-4, IN-5, CORE-9): the automatic pre-check routes a submitted order, the
manual check has a due date in working days with reminders and escalation, four-eyes, urgent
orders reach the teams, and intake alone takes an order from submission to confirmation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import CalendarDay, Notification, Order, OrderTransition, OutboxMessage, StepSetting, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.intake import flow
from plugins.intake.models import IntakeFinding, IntakeOrder, IntakeProductRule

#: A Thursday; Friday 2030-01-04 is made a holiday in some tests.
THURSDAY = dt.datetime(2030, 1, 3, 10, 0, tzinfo=COMPANY_TIMEZONE)
FAR = "2030-03-15"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    """Two clerks and a sales manager of HQ, a clerk of the Chengdu branch."""
    return {
        "clerk": make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"]),
        "clerk2": make_user(session, "clerk2@example.com", ["order_clerk"], branch=seed["hq"]),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=seed["hq"]),
        "cd_clerk": make_user(session, "cd.clerk@example.com", ["order_clerk"], branch=seed["cd"]),
    }


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """Intake's clock stands on Thursday 2030-01-03 (the pre-check rules keep the real date)."""
    monkeypatch.setattr(flow, "company_now", lambda: THURSDAY)
    return THURSDAY


def submit(session: Session, registry: Registry, actor: User, **overrides: Any) -> Order:
    """Enter an order as ``actor`` (requested far ahead) and submit it; committed."""
    order = make_order(session, actor, requested_date=overrides.pop("requested_date", FAR), **overrides)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def steps_of(session: Session, order: Order) -> list[tuple[str, str]]:
    rows = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id))
    return [(t.from_step, t.to_step) for t in rows.all()]


def notices(session: Session, template: str, order: Order) -> list[Notification]:
    query = select(Notification).where(Notification.template == template, Notification.order_id == order.id)
    return list(session.scalars(query.order_by(Notification.id)))


def mails(session: Session, template: str, order: Order) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.template == template, OutboxMessage.order_id == order.id)
    return list(session.scalars(query.order_by(OutboxMessage.id)))


def at(day: str, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), COMPANY_TIMEZONE)


# --- routing -----------------------------------------------------------------------------


@pytest.mark.req("IN-4")
def test_a_clean_order_goes_through_the_precheck_to_the_manual_check(session, registry, people, frozen):
    order = submit(session, registry, people["clerk"])
    assert (order.status, order.step) == ("submitted", flow.MANUAL_CHECK)
    assert steps_of(session, order) == [("draft", flow.PRECHECK), (flow.PRECHECK, flow.MANUAL_CHECK)]
    record = session.get(IntakeOrder, order.id)
    # Line 1 is priced 1150 against the list price 1200: a warning, kept as a finding.
    assert record.precheck_level == "warn" and record.prechecked_at is not None
    levels = dict(
        session.execute(select(IntakeFinding.rule, IntakeFinding.level).where(IntakeFinding.order_id == order.id)).all()
    )
    assert levels["price"] == "warn" and levels["required"] == "pass"
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()[-1]
    assert last.action == "precheck_pass" and "1150" in last.reason and last.actor_id is None


@pytest.mark.req("IN-4")
def test_the_manual_check_is_due_in_working_days_skipping_weekend_and_holiday(session, registry, people, frozen, seed):
    # Thursday + 2 working days = Monday; with Friday a holiday it is Tuesday.
    assert submit(session, registry, people["clerk"]).id
    first = session.scalars(select(IntakeOrder)).one()
    assert first.check_due == dt.date(2030, 1, 7)
    session.add(CalendarDay(company_id=seed["hq"].company_id, day=dt.date(2030, 1, 4), kind="holiday"))
    set_setting(session, flow.CHECK_DAYS, 3, registry=registry)
    session.commit()
    second = submit(session, registry, people["clerk"], reference="PO-2")
    assert session.get(IntakeOrder, second.id).check_due == dt.date(2030, 1, 9)


@pytest.mark.req("IN-4")
def test_an_order_with_obvious_errors_is_rejected_with_every_reason_and_the_customer_told_once(
    session, registry, people, frozen, seed
):
    session.add(IntakeProductRule(product_id=seed["products"][2].id, max_quantity=Decimal("50")))
    session.commit()
    bad = make_order(session, people["clerk"], requested_date="2020-01-01", reference="PO-BAD")
    bad.ship_to_address = ""
    session.commit()
    take_action(session, registry, people["clerk"], bad, "submit")
    session.commit()
    assert (bad.status, bad.step) == ("rejected", "rejected")
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == bad.id)).all()[-1]
    assert last.action == "precheck_reject"
    for text in ("ship-to address is missing", "2020-01-01", "above the maximum 50"):
        assert text in last.reason
    rejects = session.scalars(
        select(IntakeFinding.rule).where(IntakeFinding.order_id == bad.id, IntakeFinding.level == "reject")
    ).all()
    assert sorted(rejects) == ["quantity", "requested_date", "required"]
    assert session.get(IntakeOrder, bad.id).precheck_level == "reject"

    # One notice to the customer with the reasons (in-app and e-mail), in Chinese by default.
    (notice,) = notices(session, flow.PRECHECK_REJECTED.name, bad)
    assert notice.customer_id == seed["local"].id and "未通过审核" in notice.subject
    (mail,) = mails(session, flow.PRECHECK_REJECTED.name, bad)
    assert mail.address == "zhang@example.com" and "2020-01-01" in mail.body
    # Core's generic status notice goes out for the submission, not for the rejection.
    generic = mails(session, "order_status_changed", bad)
    assert len(generic) == 1 and "已提交" in generic[0].subject


@pytest.mark.req("IN-4")
def test_the_rejection_notice_speaks_the_customers_language(session, registry, people, frozen, seed):
    seed["local"].language = "en"
    session.commit()
    bad = make_order(session, people["clerk"], requested_date="2020-01-01")
    take_action(session, registry, people["clerk"], bad, "submit")
    session.commit()
    (mail,) = mails(session, flow.PRECHECK_REJECTED.name, bad)
    assert mail.subject == f"Order {bad.number} could not be accepted"
    assert "2020-01-01 is in the past" in mail.body


@pytest.mark.req("IN-4")
def test_with_the_manual_check_switched_off_a_clean_order_goes_straight_to_submitted(session, registry, people):
    session.add(StepSetting(key=flow.MANUAL_CHECK, enabled=False))
    session.commit()
    order = submit(session, registry, people["clerk"])
    assert (order.status, order.step) == ("submitted", "submitted")
    assert session.get(IntakeOrder, order.id).check_due is None


@pytest.mark.req("IN-5")
def test_with_the_precheck_switched_off_the_clerk_still_sees_the_findings(session, registry, people, frozen):
    session.add(StepSetting(key=flow.PRECHECK, enabled=False))
    session.commit()
    order = submit(session, registry, people["clerk"])
    assert steps_of(session, order) == [("draft", flow.MANUAL_CHECK)]
    assert session.get(IntakeOrder, order.id).check_due == dt.date(2030, 1, 7)
    rules = session.scalars(select(IntakeFinding.rule).where(IntakeFinding.order_id == order.id)).all()
    assert "price" in rules and session.get(IntakeOrder, order.id).precheck_level == "warn"


@pytest.mark.req("IN-4")
def test_run_precheck_re_runs_the_rules_for_an_order_waiting_in_the_precheck(session, registry, people, frozen):
    order = make_order(session, people["clerk"], requested_date=FAR)
    # An order left in the pre-check (e.g. the plugin was enabled while it waited there).
    order.step, order.status = flow.PRECHECK, "submitted"
    session.commit()
    take_action(session, registry, people["clerk"], order, "run_precheck")
    session.commit()
    assert order.step == flow.MANUAL_CHECK
    assert session.scalar(select(func.count()).select_from(IntakeFinding).where(IntakeFinding.order_id == order.id))
    assert steps_of(session, order)[-2:] == [(flow.PRECHECK, flow.PRECHECK), (flow.PRECHECK, flow.MANUAL_CHECK)]


def test_run_precheck_needs_the_check_permission(session, registry, seed, people):
    sales = make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])
    order = make_order(session, sales, requested_date=FAR)
    order.step, order.status = flow.PRECHECK, "submitted"
    session.commit()
    with pytest.raises(ServiceError) as refused:
        take_action(session, registry, sales, order, "run_precheck")
    assert refused.value.status == 403
    session.rollback()
    assert session.get(Order, order.id).step == flow.PRECHECK


# --- the manual check --------------------------------------------------------------------


@pytest.mark.req("IN-5")
def test_intake_alone_takes_an_order_from_submission_to_confirmed(session, registry, admin, people, frozen):
    order = submit(session, registry, people["clerk"])
    take_action(session, registry, people["clerk2"], order, "accept")
    session.commit()
    assert (order.status, order.step) == ("submitted", "submitted")
    record = session.get(IntakeOrder, order.id)
    assert record.check_outcome == "accepted" and record.checked_by_id == people["clerk2"].id
    assert record.checked_at is not None
    take_action(session, registry, people["manager"], order, "confirm")
    session.commit()
    assert (order.status, order.step) == ("confirmed", "confirmed")


@pytest.mark.req("IN-5")
def test_a_clerk_rejects_with_a_reason_and_the_outcome_is_kept(session, registry, people, frozen):
    order = submit(session, registry, people["clerk"])
    with pytest.raises(ServiceError) as no_reason:
        take_action(session, registry, people["clerk2"], order, "reject")
    assert no_reason.value.code == "reason_required"
    take_action(session, registry, people["clerk2"], order, "reject", "Customer withdrew by phone")
    session.commit()
    assert order.status == "rejected"
    record = session.get(IntakeOrder, order.id)
    assert (record.check_outcome, record.checked_by_id) == ("rejected", people["clerk2"].id)


@pytest.mark.req("IN-5")
def test_four_eyes_keeps_the_clerk_who_entered_an_order_from_accepting_it(session, registry, people, frozen):
    set_setting(session, flow.FOUR_EYES, True, registry=registry)
    session.commit()
    order = submit(session, registry, people["clerk"])
    with pytest.raises(ServiceError) as refused:
        take_action(session, registry, people["clerk"], order, "accept")
    assert refused.value.code == "transition_refused"
    assert any("four-eyes" in r.lower() for r in refused.value.details["reasons"])
    session.rollback()
    assert session.get(Order, order.id).step == flow.MANUAL_CHECK
    take_action(session, registry, people["clerk2"], order, "accept")
    session.commit()
    assert order.step == "submitted"


@pytest.mark.req("IN-5")
def test_without_four_eyes_the_entering_clerk_may_accept(session, registry, people, frozen):
    order = submit(session, registry, people["clerk"])
    take_action(session, registry, people["clerk"], order, "accept")
    session.commit()
    assert order.step == "submitted"


# --- reminders and escalation -------------------------------------------------------------


@pytest.mark.req("IN-4")
def test_clerks_are_reminded_before_the_due_day_and_managers_told_once_it_is_overdue(
    session, registry, people, frozen, seed
):
    company_id = seed["hq"].company_id
    session.add(CalendarDay(company_id=company_id, day=dt.date(2030, 1, 4), kind="holiday"))
    session.commit()
    order = submit(session, registry, people["clerk"])
    record = session.get(IntakeOrder, order.id)
    assert record.check_due == dt.date(2030, 1, 8)  # Fri holiday, weekend: Mon, Tue

    def run(day: str) -> tuple[int, int]:
        result = flow.remind_and_escalate(session, at(day))
        session.commit()
        return result

    # Friday (holiday) and Saturday: still two working days to go, nothing is sent.
    assert run("2030-01-04") == (0, 0) and run("2030-01-05") == (0, 0)
    assert run("2030-01-07") == (1, 0)  # Monday: one working day before due
    reminded = notices(session, flow.CHECK_DUE_SOON.name, order)
    # Order clerks of the order's branch only: not the Chengdu clerk.
    assert sorted(n.user_id for n in reminded) == sorted([people["clerk"].id, people["clerk2"].id])
    assert "2030-01-08" in reminded[0].subject
    assert run("2030-01-07") == (0, 0)  # once
    assert run("2030-01-08") == (0, 0)  # the due day itself is not overdue
    assert notices(session, flow.CHECK_OVERDUE.name, order) == []
    assert run("2030-01-09") == (0, 1)
    (escalated,) = notices(session, flow.CHECK_OVERDUE.name, order)
    assert escalated.user_id == people["manager"].id
    assert run("2030-01-10") == (0, 0)
    assert len(notices(session, flow.CHECK_DUE_SOON.name, order)) == 2


@pytest.mark.req("IN-4")
def test_a_checked_order_is_neither_reminded_nor_escalated(session, registry, people, frozen):
    order = submit(session, registry, people["clerk"])
    take_action(session, registry, people["clerk2"], order, "accept")
    session.commit()
    assert flow.remind_and_escalate(session, at("2030-02-01")) == (0, 0)


@pytest.mark.req("IN-4")
def test_escalation_goes_to_the_configured_roles(session, registry, people, frozen, seed):
    gm = make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    set_setting(session, flow.ESCALATE_TO, "general_manager", registry=registry)
    session.commit()
    order = submit(session, registry, people["clerk"])
    assert flow.remind_and_escalate(session, at("2030-01-20")) == (0, 1)
    session.commit()
    assert [n.user_id for n in notices(session, flow.CHECK_OVERDUE.name, order)] == [gm.id]


# --- urgent orders -----------------------------------------------------------------------


@pytest.mark.req("CORE-9")
def test_an_urgent_order_notifies_the_configured_roles_of_its_branch(session, registry, people, frozen):
    order = submit(session, registry, people["clerk"], urgency="urgent")
    told = notices(session, flow.URGENT_ORDER.name, order)
    assert sorted(n.user_id for n in told) == sorted([people["clerk"].id, people["clerk2"].id, people["manager"].id])
    assert "紧急" in told[0].subject or "Urgent" in told[0].subject
    normal = submit(session, registry, people["clerk"], reference="PO-N")
    assert notices(session, flow.URGENT_ORDER.name, normal) == []


@pytest.mark.req("CORE-9")
def test_the_urgent_roles_are_a_setting(session, registry, people, frozen):
    set_setting(session, flow.NOTIFY_URGENT, "sales_manager", registry=registry)
    session.commit()
    order = submit(session, registry, people["clerk"], urgency="urgent")
    assert [n.user_id for n in notices(session, flow.URGENT_ORDER.name, order)] == [people["manager"].id]

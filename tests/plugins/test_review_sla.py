"""Review tasks' SLA (RV-1): each task is due in working days; the job reminds the department's
reviewers before the due day and escalates overdue tasks to the department head (or the role
the settings name), each once; answered tasks are left alone, re-opened ones start afresh."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import CalendarDay, Notification, Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.review import flow, sheets, sla
from plugins.review.models import ReviewDepartment, ReviewTask

THURSDAY = dt.datetime(2030, 1, 3, 10, 0, tzinfo=COMPANY_TIMEZONE)
FIGURES: dict[str, dict[str, Any]] = {
    "production": {"capacity_ok": True, "materials_ok": True, "completion_date": "2030-02-20"},
    "finance": {"cost": "5000", "gross_margin": "30", "profit_margin": "12", "payment_terms": "30 days", "risk": "low"},
}


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    monkeypatch.setattr(sheets, "company_now", lambda: THURSDAY)
    return THURSDAY


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "production": make_user(session, "production@example.com", ["review_production"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "head": make_user(session, "head@example.com", ["review_production"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "vp": make_user(session, "vp@example.com", ["vice_president"], branch=hq),
    }


def at(day: str, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), COMPANY_TIMEZONE)


def submit(session: Session, registry: Registry, actor: User, **overrides: Any) -> Order:
    """A regular order: production and finance review it, both due Monday 2030-01-07."""
    order = make_order(session, actor, requested_date="2030-03-15", **overrides)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    assert order.step == flow.DEPARTMENT_REVIEW
    return order


def run(session: Session, day: str) -> tuple[int, int]:
    result = sla.remind_and_escalate(session, at(day))
    session.commit()
    return result


def recipients(session: Session, template: str, order: Order) -> list[int | None]:
    query = select(Notification.user_id).where(Notification.template == template, Notification.order_id == order.id)
    return sorted(session.scalars(query), key=lambda i: i or 0)


def department(session: Session, code: str) -> ReviewDepartment:
    return session.scalars(select(ReviewDepartment).where(ReviewDepartment.code == code)).one()


def task_of(session: Session, order: Order, code: str) -> ReviewTask:
    sheet = sheets.current_sheet(session, order.id)
    assert sheet is not None
    return next(t for t in sheet.tasks if t.department.code == code)


@pytest.mark.req("RV-1")
def test_reviewers_are_reminded_once_the_day_before_due(session, registry, people):
    order = submit(session, registry, people["sales"])
    assert task_of(session, order, "finance").due_date == dt.date(2030, 1, 7)
    assert run(session, "2030-01-03") == (0, 0)  # two working days left
    assert run(session, "2030-01-04") == (2, 0)  # Friday: one working day left
    assert recipients(session, "review.task_due_soon", order) == sorted(
        [people["production"].id, people["head"].id, people["finance"].id]
    )
    assert task_of(session, order, "finance").reminded_at is not None
    assert run(session, "2030-01-05") == (0, 0)  # Saturday, already reminded: nobody twice
    assert len(recipients(session, "review.task_due_soon", order)) == 3


@pytest.mark.req("RV-1")
def test_reminders_count_working_days_of_the_company_calendar(session, registry, people, seed):
    set_setting(session, flow.SLA_REMIND_BEFORE, 0, registry=registry)
    session.add(CalendarDay(company_id=seed["hq"].company_id, day=dt.date(2030, 1, 4), kind="holiday"))
    session.commit()
    order = submit(session, registry, people["sales"])
    # Friday is a holiday: Thursday + 2 working days is Tuesday.
    assert task_of(session, order, "production").due_date == dt.date(2030, 1, 8)
    assert run(session, "2030-01-07") == (0, 0)
    assert run(session, "2030-01-08") == (2, 0)


@pytest.mark.req("RV-1")
def test_overdue_tasks_escalate_once_to_the_head_or_else_the_configured_role(session, registry, people):
    department(session, "production").head_user_id = people["head"].id
    session.commit()
    order = submit(session, registry, people["sales"])
    assert run(session, "2030-01-07") == (2, 0)  # due today: reminded, not overdue
    assert run(session, "2030-01-08") == (0, 2)
    overdue = recipients(session, "review.task_overdue", order)
    # Production's head; finance has no head: the general manager (the setting's default).
    assert overdue == sorted([people["head"].id, people["gm"].id])
    assert people["production"].id not in overdue
    assert task_of(session, order, "production").escalated_at is not None
    assert run(session, "2030-01-09") == (0, 0)
    assert len(recipients(session, "review.task_overdue", order)) == 2


@pytest.mark.req("RV-1")
def test_the_escalation_role_is_a_setting_and_answered_tasks_are_left_alone(session, registry, people):
    set_setting(session, flow.SLA_ESCALATE_TO, "vice_president", registry=registry)
    session.commit()
    order = submit(session, registry, people["sales"])
    sheets.record_verdict(
        session,
        registry,
        people["production"],
        task_of(session, order, "production"),
        verdict="approve",
        figures=FIGURES["production"],
    )
    session.commit()
    assert run(session, "2030-01-10") == (0, 1)
    assert recipients(session, "review.task_overdue", order) == [people["vp"].id]
    assert task_of(session, order, "production").escalated_at is None


@pytest.mark.req("RV-4")
def test_a_task_reopened_by_negotiation_is_reminded_and_escalated_afresh(session, registry, people, monkeypatch):
    order = submit(session, registry, people["sales"])
    assert run(session, "2030-01-08") == (0, 2)
    for code in ("production", "finance"):
        sheets.record_verdict(
            session, registry, people[code], task_of(session, order, code), verdict="approve", figures=FIGURES[code]
        )
    session.commit()
    assert order.step == flow.CONSOLIDATION
    monkeypatch.setattr(sheets, "company_now", lambda: at("2030-01-10"))
    sheets.negotiate(session, registry, people["sales"], order, unit_prices={order.lines[0].id: "1100"})
    session.commit()
    finance = task_of(session, order, "finance")
    assert (finance.status, finance.due_date, finance.escalated_at) == ("open", dt.date(2030, 1, 14), None)
    assert run(session, "2030-01-11") == (1, 0)
    assert run(session, "2030-01-15") == (0, 1)
    assert len(recipients(session, "review.task_overdue", order)) == 2 + 1

"""Generated history for intake and review (KP-1, demo year and benchmark): ``ordo_kpi_history``
adds each plugin's records to orders kpi wrote, in bulk and repeatably, so that every intake and
review metric has a plausible value over the history's months."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Order, User
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.intake.models import IntakeCorrection, IntakeOrder
from plugins.kpi.engine import EVERYONE, collect_metrics, measure
from plugins.kpi.hookspecs import HistoryBatch, HistoryOrder
from plugins.kpi.periods import period_of
from plugins.kpi.sql import company_date
from plugins.review.models import ReviewChangeRequest, ReviewSheet, ReviewTask, ReviewVerdict

pytestmark = pytest.mark.req("KP-1")

KEYS = (
    "intake.entry_accuracy",
    "intake.precheck_reject_rate",
    "intake.manual_check_timeliness",
    "review.timeliness",
    "review.acceptance_rate",
    "review.change_requests_per_order",
)
OCTOBER = period_of("month", dt.date(2026, 10, 1))


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake", "review", "kpi"]


def at(day: int, hour: int = 10) -> dt.datetime:
    """A company-time instant in October 2026."""
    return dt.datetime(2026, 10, day, hour, tzinfo=COMPANY_TIMEZONE)


@pytest.fixture
def batch(session: Session, admin: User, seed: dict[str, Any]) -> HistoryBatch:
    """Three completed orders received on 5, 12 and 19 October, confirmed 2 and completed 10 days later."""
    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    reviewer = make_user(session, "tech@example.com", ["review_technical"])
    history = []
    for number, day in enumerate((5, 12, 19), start=1):
        order = make_order(session, admin, customer="C001" if number % 2 else "C002")
        received, confirmed, completed = at(day), at(day + 2, 15), at(day + 10, 11)
        session.execute(update(Order).where(Order.id == order.id).values(created_at=received, status="completed"))
        history.append(
            HistoryOrder(
                id=order.id,
                number=order.number,
                customer_id=order.customer_id,
                branch_id=order.branch_id,
                owner_id=order.owner_id,
                total=order.total,
                received_at=received,
                confirmed_at=confirmed,
                completed_at=completed,
                lines=tuple((line.id, line.product_id, line.quantity, line.amount) for line in order.lines),
                seed=1000 + number,
            )
        )
    session.commit()
    users = {"order_clerk": [clerk.id], "review_technical": [reviewer.id], "admin": [admin.id]}
    return HistoryBatch(orders=history, users=users, today=dt.date(2026, 11, 23))


def generate(session: Session, batch: HistoryBatch) -> None:
    session_registry(session).hook.ordo_kpi_history(session=session, batch=batch)


def snapshot(session: Session) -> list[Any]:
    """The generated rows without their ids (which a second run numbers anew)."""
    return [
        session.execute(
            select(
                IntakeOrder.order_id, IntakeOrder.prechecked_at, IntakeOrder.checked_at, IntakeOrder.check_due
            ).order_by(IntakeOrder.order_id)
        ).all(),
        session.execute(select(IntakeCorrection.order_id, IntakeCorrection.entry_error)).all(),
        session.execute(
            select(ReviewSheet.order_id, ReviewSheet.round, ReviewSheet.outcome, ReviewSheet.closed_at).order_by(
                ReviewSheet.order_id, ReviewSheet.round
            )
        ).all(),
        session.execute(
            select(ReviewTask.department_id, ReviewTask.due_date, ReviewTask.answered_at).order_by(
                ReviewTask.answered_at, ReviewTask.department_id
            )
        ).all(),
        session.execute(select(ReviewChangeRequest.order_id, ReviewChangeRequest.kind)).all(),
    ]


def test_history_gives_every_intake_and_review_metric_a_plausible_value(session, batch):
    generate(session, batch)
    session.commit()
    metrics = collect_metrics(session_registry(session))
    values = {key: measure(session, metrics[key], OCTOBER, viewer=EVERYONE) for key in KEYS}
    for key in ("intake.entry_accuracy", "intake.manual_check_timeliness", "intake.precheck_reject_rate"):
        assert values[key].denominator == 3, key  # each order pre-checked and checked in October
        assert values[key].value is not None and Decimal(0) <= values[key].value <= Decimal(100), key
    assert values["intake.precheck_reject_rate"].value == 0  # completed orders passed the pre-check
    timeliness = values["review.timeliness"]
    assert timeliness.denominator >= 6 and Decimal(0) <= timeliness.value <= Decimal(100)  # 2 to 5 tasks a sheet
    acceptance = values["review.acceptance_rate"]
    assert acceptance.numerator == 3 and acceptance.denominator >= 3 and Decimal(50) <= acceptance.value <= 100
    changes = values["review.change_requests_per_order"]
    assert changes.denominator == 3 and changes.value is not None and Decimal(0) <= changes.value <= Decimal(1)


def test_history_rows_are_consistent_with_the_orders(session, batch):
    generate(session, batch)
    session.commit()
    by_id = {order.id: order for order in batch.orders}
    for record in session.scalars(select(IntakeOrder)):
        order = by_id[record.order_id]
        assert order.received_at < record.prechecked_at < record.checked_at
        assert record.check_outcome == "accepted" and record.precheck_level in ("pass", "warn")
        assert record.check_due is not None and record.check_due >= order.received_at.date()
    for sheet in session.scalars(select(ReviewSheet)):
        order = by_id[sheet.order_id]
        assert order.received_at < sheet.opened_at <= sheet.completed_at <= sheet.closed_at
        assert sheet.status == "closed" and sheet.outcome in ("approved", "requoted")
        assert all(t.status == "answered" and t.answered_at >= sheet.opened_at for t in sheet.tasks)
    finals = session.execute(select(ReviewSheet.order_id).where(ReviewSheet.outcome == "approved")).scalars().all()
    assert sorted(finals) == sorted(by_id)  # one approved sheet per order
    tasks = session.scalar(select(func.count()).select_from(ReviewTask))
    assert session.scalar(select(func.count()).select_from(ReviewVerdict)) == tasks  # every answer has its verdict


def test_history_is_repeatable_from_the_seeds(session, batch):
    generate(session, batch)
    first = snapshot(session)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(IntakeOrder)) == 0
    generate(session, batch)
    assert snapshot(session) == first


def test_late_and_mistyped_shares_are_realistic_over_many_orders(session, batch):
    """Over 400 generated orders: about 6 % of checks late, 3 % entry errors, 7 % late review answers."""
    template = batch.orders[0]
    ids = []
    for n in range(400):
        clone = session.execute(select(Order).where(Order.id == template.id)).scalar_one()
        session.expunge(clone)
        copy = Order(**{c.key: getattr(clone, c.key) for c in Order.__table__.columns if c.key not in ("id", "number")})
        copy.number = f"H-{n:05d}"
        session.add(copy)
        session.flush()
        ids.append(copy.id)
    many = HistoryBatch(
        orders=[
            HistoryOrder(
                id=order_id,
                number=f"H-{n:05d}",
                customer_id=template.customer_id,
                branch_id=template.branch_id,
                owner_id=template.owner_id,
                total=template.total,
                received_at=at(1 + n % 20, 9 + n % 8),
                confirmed_at=at(3 + n % 20, 15),
                completed_at=at(8 + n % 20, 11),
                lines=(),
                seed=n,
            )
            for n, order_id in enumerate(ids)
        ],
        users=batch.users,
        today=batch.today,
    )
    generate(session, many)
    late_checks = session.scalar(
        select(func.count()).where(company_date(IntakeOrder.checked_at) > IntakeOrder.check_due)
    )
    errors = session.scalar(select(func.count()).where(IntakeCorrection.entry_error.is_(True)))
    tasks = session.scalar(select(func.count()).select_from(ReviewTask))
    late_tasks = session.scalar(select(func.count()).where(company_date(ReviewTask.answered_at) > ReviewTask.due_date))
    assert 8 <= late_checks <= 45, late_checks  # 6 % of 400 = 24
    assert 3 <= errors <= 25, errors  # 3 % of 400 = 12
    assert 0.03 <= late_tasks / tasks <= 0.12, (late_tasks, tasks)

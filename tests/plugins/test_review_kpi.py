"""Review's indicators for kpi (KP-1): review timeliness per department, acceptance rate and change
requests per reviewed order, computed from review rows made here; the bridge is loaded only when
both plugins are enabled."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.models import Order, User
from core.plugins import Registry
from core.testing import make_order
from plugins.kpi.indicators import collect_indicators, compute_indicators
from plugins.review.models import ReviewChangeRequest, ReviewDepartment, ReviewSheet, ReviewTask

pytestmark = pytest.mark.req("KP-1")

CODES = ["review.timeliness", "review.acceptance_rate", "review.change_requests_per_order"]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review", "kpi"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


def today() -> dt.date:
    return company_now().date()


def at(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    """``day`` at ``hour:minute`` company time, as the UTC instant Ordo stores."""
    return dt.datetime.combine(day, dt.time(hour, minute), COMPANY_TIMEZONE).astimezone(dt.UTC)


def departments(session: Session) -> dict[str, ReviewDepartment]:
    return {d.code: d for d in session.scalars(select(ReviewDepartment))}


def sheet(
    session: Session,
    order: Order,
    *,
    round: int = 1,
    opened: dt.datetime,
    closed: dt.datetime | None = None,
    outcome: str = "",
) -> ReviewSheet:
    found = ReviewSheet(
        order_id=order.id,
        round=round,
        status="closed" if closed else "open",
        outcome=outcome,
        amount=order.total,
        opened_at=opened,
        closed_at=closed,
    )
    session.add(found)
    session.flush()
    return found


def task(
    session: Session,
    on: ReviewSheet,
    department: ReviewDepartment,
    *,
    due: dt.date,
    answered: dt.datetime | None,
    status: str = "answered",
) -> ReviewTask:
    found = ReviewTask(
        sheet_id=on.id,
        department_id=department.id,
        status=status if answered else "open",
        verdict="approve" if answered else "",
        due_date=due,
        answered_at=answered,
        opened_at=at(due - dt.timedelta(days=3)),
    )
    session.add(found)
    session.flush()
    return found


def change_request(session: Session, order: Order, admin: User, number: int, kind: str, when: dt.datetime) -> None:
    session.add(
        ReviewChangeRequest(
            order_id=order.id,
            number=number,
            kind=kind,
            status="assessing",
            reason="客户要求",
            requested_by_id=admin.id,
            requested_at=when,
        )
    )
    session.flush()


@pytest.fixture
def rows(session: Session, admin: User, seed: dict[str, Any]) -> dict[str, Any]:
    """Three orders reviewed today (one over two rounds), one reviewed last month.

    Tasks answered today: technical on time (due today), technical late (due yesterday),
    production on time (due tomorrow), production late, finance on time; one withdrawn
    after an answer long ago, one still open, one answered last month (late).
    Sheets closed today: approved, approved, requoted, abandoned; one approved last month.
    Change requests today: three changes and one cancellation; one change last month.
    """
    d = departments(session)
    t, yesterday, tomorrow = today(), today() - dt.timedelta(days=1), today() + dt.timedelta(days=1)
    last_month = t - dt.timedelta(days=40)
    a, b, c, old = (make_order(session, admin) for _ in range(4))
    a1 = sheet(session, a, opened=at(t, 9), closed=at(t, 11), outcome="requoted")
    a2 = sheet(session, a, round=2, opened=at(t, 11), closed=at(t, 16), outcome="approved")
    b1 = sheet(session, b, opened=at(t, 9), closed=at(t, 17), outcome="approved")
    c1 = sheet(session, c, opened=at(t, 9), closed=at(t, 18), outcome="abandoned")
    o1 = sheet(session, old, opened=at(last_month), closed=at(last_month, 15), outcome="approved")
    task(session, a1, d["technical"], due=t, answered=at(t, 10))
    task(session, a2, d["technical"], due=yesterday, answered=at(t, 12))
    task(session, b1, d["production"], due=tomorrow, answered=at(t, 12))
    task(session, c1, d["production"], due=yesterday, answered=at(t, 13))
    task(session, c1, d["finance"], due=t, answered=at(t, 23, 30))
    task(session, b1, d["finance"], due=t, answered=None)
    task(session, a2, d["quality"], due=t, answered=at(t, 12), status="withdrawn")
    task(session, o1, d["quality"], due=last_month - dt.timedelta(days=1), answered=at(last_month))
    for number, kind in enumerate(("change", "change", "cancel"), start=1):
        change_request(session, a if number < 3 else b, admin, number, kind, at(t, 14))
    change_request(session, c, admin, 1, "change", at(t, 15))
    change_request(session, old, admin, 1, "change", at(last_month, 16))
    session.commit()
    return {"last_month": last_month}


def test_review_contributes_its_three_indicators_when_kpi_is_enabled(registry: Registry) -> None:
    indicators = collect_indicators(registry)
    assert [code for code in indicators if code.startswith("review.")] == CODES
    assert {indicators[code].plugin for code in CODES} == {"review"}
    assert [indicators[code].unit for code in CODES] == ["percent", "percent", "count"]
    assert all(indicators[code].label and indicators[code].description for code in CODES)


def test_timeliness_compares_the_answer_day_with_the_due_day_per_department(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    value = compute_indicators(session, today(), today(), registry)["review.timeliness"]
    # answered today: technical 1 of 2 on time, production 1 of 2, finance 1 of 1 (23:30 on its due day).
    assert (value.numerator, value.denominator, value.value) == (3, 5, Decimal("60.00"))
    assert {code: (p.numerator, p.denominator, p.value) for code, p in value.breakdown.items()} == {
        "finance": (1, 1, Decimal("100.00")),
        "production": (1, 2, Decimal("50.00")),
        "technical": (1, 2, Decimal("50.00")),
    }


def test_acceptance_rate_counts_approved_sheets_among_those_closed(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    value = compute_indicators(session, today(), today(), registry)["review.acceptance_rate"]
    assert (value.numerator, value.denominator, value.value) == (2, 4, Decimal("50.00"))
    assert {outcome: p.numerator for outcome, p in value.breakdown.items()} == {
        "abandoned": 1,
        "approved": 2,
        "requoted": 1,
    }
    assert value.breakdown["requoted"].value == Decimal("25.00")


@pytest.mark.req("RV-8")
def test_change_requests_per_order_divides_requests_by_orders_reviewed(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    value = compute_indicators(session, today(), today(), registry)["review.change_requests_per_order"]
    # 4 requests filed today; orders a (two rounds, counted once), b and c were reviewed today.
    assert (value.numerator, value.denominator, value.value) == (4, 3, Decimal("1.33"))
    assert {kind: (p.numerator, p.value) for kind, p in value.breakdown.items()} == {
        "cancel": (1, Decimal("0.33")),
        "change": (3, Decimal("1.00")),
    }


def test_a_longer_period_takes_in_last_month(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    values = compute_indicators(session, rows["last_month"], today(), registry)
    assert (values["review.timeliness"].numerator, values["review.timeliness"].denominator) == (3, 6)
    assert values["review.timeliness"].breakdown["quality"].value == Decimal("0.00")
    assert values["review.acceptance_rate"].value == Decimal("60.00")
    cr = values["review.change_requests_per_order"]
    assert (cr.numerator, cr.denominator, cr.value) == (5, 4, Decimal("1.25"))


def test_a_period_without_reviews_has_no_value(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    yesterday = today() - dt.timedelta(days=1)
    values = compute_indicators(session, yesterday - dt.timedelta(days=5), yesterday, registry)
    for code in CODES:
        assert (values[code].value, values[code].denominator) == (None, 0), code
        assert values[code].breakdown == {}, code


def test_periods_are_company_days(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    """00:30 company time (the previous day in UTC) is today; 23:30 the day before is yesterday."""
    yesterday = today() - dt.timedelta(days=1)
    technical = session.scalars(
        select(ReviewTask).join(ReviewDepartment).where(ReviewDepartment.code == "technical").order_by(ReviewTask.id)
    ).all()
    technical[0].answered_at = at(today(), 0, 30)
    technical[1].answered_at = at(yesterday, 23, 30)  # due yesterday: now on time
    session.commit()
    on_today = compute_indicators(session, today(), today(), registry, codes=["review.timeliness"])
    assert on_today["review.timeliness"].breakdown["technical"].denominator == 1
    on_yesterday = compute_indicators(session, yesterday, yesterday, registry)["review.timeliness"]
    assert (on_yesterday.numerator, on_yesterday.denominator) == (1, 1)


def test_kpi_alone_has_no_review_indicators() -> None:
    registry = Registry(["kpi"])
    assert registry.pm.get_plugin("review+kpi") is None
    assert not [code for code in collect_indicators(registry) if code.startswith("review.")]


def test_review_alone_never_loads_the_bridge() -> None:
    """In a fresh interpreter: a registry with review alone imports neither the bridge nor kpi's hook."""
    code = (
        "import sys\n"
        "from core.plugins import Registry\n"
        "registry = Registry(['review'])\n"
        "assert registry.pm.get_plugin('review+kpi') is None\n"
        "assert not hasattr(registry.hook, 'ordo_kpi_indicators')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plugins.kpi.', 'plugins.review.bridges.kpi'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

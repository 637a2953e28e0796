"""Review's metrics for kpi (KP-1): review timeliness per department, acceptance rate and change
requests per reviewed order, computed by kpi's engine from review rows made here; the bridge is
loaded only when both plugins are enabled."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.models import Order, User
from core.plugins import Registry
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.kpi.engine import EVERYONE, breakdown, collect_dimensions, collect_metrics, fact_orders, measure
from plugins.kpi.hookspecs import Period
from plugins.kpi.periods import period, period_of
from plugins.review.models import ReviewChangeRequest, ReviewDepartment, ReviewSheet, ReviewTask

pytestmark = pytest.mark.req("KP-1")

KEYS = ["review.timeliness", "review.acceptance_rate", "review.change_requests_per_order"]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review", "kpi"]


@pytest.fixture
def registry(session: Session) -> Registry:
    return session_registry(session)


def today() -> dt.date:
    return company_now().date()


def day(on: dt.date | None = None) -> Period:
    return period_of("day", on or today())


def value(session: Session, registry: Registry, key: str, over: Period, **kwargs: Any) -> tuple[Any, Any, Any]:
    """(numerator, denominator, value) of ``key`` over ``over`` for everyone unless a viewer is given."""
    kwargs.setdefault("viewer", EVERYONE)
    found = measure(session, collect_metrics(registry)[key], over, **kwargs)
    return found.numerator, found.denominator, found.value


def parts(session: Session, registry: Registry, key: str, over: Period, dimension: str) -> dict[Any, tuple[Any, ...]]:
    """The breakdown of ``key`` by ``dimension``: key → (numerator, denominator, value)."""
    found = breakdown(session, collect_metrics(registry)[key], over, dimension, viewer=EVERYONE)
    return {p.key: (p.value.numerator, p.value.denominator, p.value.value) for p in found}


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
    return {"last_month": last_month, "a": a, "b": b, "c": c, "old": old}


def test_review_contributes_its_three_metrics_when_kpi_is_enabled(registry: Registry) -> None:
    metrics = collect_metrics(registry)
    assert [key for key in metrics if key.startswith("review.")] == KEYS
    assert {metrics[key].plugin for key in KEYS} == {"review"}
    assert [metrics[key].unit for key in KEYS] == ["percent", "percent", "ratio"]
    assert [metrics[key].aggregate for key in KEYS] == ["percent", "percent", "mean"]
    assert [metrics[key].direction for key in KEYS] == ["higher", "higher", "lower"]
    assert metrics["review.timeliness"].target == Decimal(95)
    assert all(metrics[key].label and metrics[key].description for key in KEYS)
    assert "review_department" in metrics["review.timeliness"].dimensions
    assert "review_outcome" in metrics["review.acceptance_rate"].dimensions
    dimensions = collect_dimensions(registry)
    assert dimensions["review_department"].expression is None and dimensions["review_outcome"].expression is None
    assert "customer_group" not in dimensions  # intake is not enabled: the metrics simply lack it


def test_timeliness_compares_the_answer_day_with_the_due_day_per_department(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    # answered today: technical 1 of 2 on time, production 1 of 2, finance 1 of 1 (23:30 on its due day).
    assert value(session, registry, "review.timeliness", day()) == (3, 5, Decimal("60.00"))
    assert parts(session, registry, "review.timeliness", day(), "review_department") == {
        "finance": (1, 1, Decimal("100.00")),
        "production": (1, 2, Decimal("50.00")),
        "technical": (1, 2, Decimal("50.00")),
    }
    metric = collect_metrics(registry)["review.timeliness"]
    names = {p.key: p.name for p in breakdown(session, metric, day(), "review_department", viewer=EVERYONE)}
    assert names["technical"] == departments(session)["technical"].name
    late, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)
    assert total == 2 and {row.order_id for row in late} == {rows["a"].id, rows["c"].id}
    production = value(session, registry, "review.timeliness", day(), filters={"review_department": "production"})
    assert production == (1, 2, Decimal("50.00"))


def test_acceptance_rate_counts_approved_sheets_among_those_closed(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    assert value(session, registry, "review.acceptance_rate", day()) == (2, 4, Decimal("50.00"))
    assert parts(session, registry, "review.acceptance_rate", day(), "review_outcome") == {
        "approved": (2, 2, Decimal("100.00")),
        "abandoned": (0, 1, Decimal("0.00")),
        "requoted": (0, 1, Decimal("0.00")),
    }
    metric = collect_metrics(registry)["review.acceptance_rate"]
    names = {p.key: p.name for p in breakdown(session, metric, day(), "review_outcome", viewer=EVERYONE)}
    assert names["requoted"] == "Re-quoted"
    # Order a had a re-quoted round and an approved one: it pulls the rate down (1 of 2).
    not_accepted, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)
    assert total == 2 and {(row.order_id, row.numerator, row.denominator) for row in not_accepted} == {
        (rows["a"].id, 1, 2),
        (rows["c"].id, 0, 1),
    }


@pytest.mark.req("RV-8")
def test_change_requests_per_order_divides_requests_by_orders_reviewed(
    session: Session, registry: Registry, rows: dict[str, Any]
) -> None:
    # 4 requests filed today; orders a (two rounds, counted once), b and c were reviewed today.
    assert value(session, registry, "review.change_requests_per_order", day()) == (4, 3, Decimal("1.33"))
    metric = collect_metrics(registry)["review.change_requests_per_order"]
    with_requests, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)
    assert total == 3 and {(row.order_id, row.numerator, row.value) for row in with_requests} == {
        (rows["a"].id, 2, Decimal("2.00")),
        (rows["b"].id, 1, Decimal("1.00")),
        (rows["c"].id, 1, Decimal("1.00")),
    }


def test_a_longer_period_takes_in_last_month(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    longer = period(rows["last_month"], today())
    assert value(session, registry, "review.timeliness", longer)[:2] == (3, 6)
    assert parts(session, registry, "review.timeliness", longer, "review_department")["quality"][2] == Decimal("0.00")
    assert value(session, registry, "review.acceptance_rate", longer)[2] == Decimal("60.00")
    assert value(session, registry, "review.change_requests_per_order", longer) == (5, 4, Decimal("1.25"))


def test_the_viewer_scope_limits_every_number(
    session: Session, registry: Registry, rows: dict[str, Any], seed: dict[str, Any]
) -> None:
    """A Chengdu sales manager sees order c only; a salesperson who owns nothing sees nothing."""
    session.execute(update(Order).where(Order.id == rows["c"].id).values(branch_id=seed["cd"].id))
    manager = make_user(session, "cd-manager@example.com", ["sales_manager"], branch=seed["cd"])
    stranger = make_user(session, "stranger@example.com", ["sales"])
    session.commit()
    assert value(session, registry, "review.timeliness", day(), viewer=manager) == (1, 2, Decimal("50.00"))
    assert value(session, registry, "review.acceptance_rate", day(), viewer=manager) == (0, 1, Decimal("0.00"))
    assert value(session, registry, "review.change_requests_per_order", day(), viewer=manager) == (
        1,
        1,
        Decimal("1.00"),
    )
    for key in KEYS:
        assert value(session, registry, key, day(), viewer=stranger) == (0, 0, None), key


def test_a_period_without_reviews_has_no_value(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    yesterday = today() - dt.timedelta(days=1)
    quiet = period(yesterday - dt.timedelta(days=5), yesterday)
    for key in KEYS:
        assert value(session, registry, key, quiet) == (0, 0, None), key
    assert parts(session, registry, "review.timeliness", quiet, "review_department") == {}


def test_periods_are_company_days(session: Session, registry: Registry, rows: dict[str, Any]) -> None:
    """00:30 company time (the previous day in UTC) is today; 23:30 the day before is yesterday."""
    yesterday = today() - dt.timedelta(days=1)
    technical = session.scalars(
        select(ReviewTask).join(ReviewDepartment).where(ReviewDepartment.code == "technical").order_by(ReviewTask.id)
    ).all()
    technical[0].answered_at = at(today(), 0, 30)
    technical[1].answered_at = at(yesterday, 23, 30)  # due yesterday: now on time
    session.commit()
    assert parts(session, registry, "review.timeliness", day(), "review_department")["technical"][1] == 1
    assert value(session, registry, "review.timeliness", day(yesterday)) == (1, 1, Decimal("100.00"))


def test_kpi_alone_has_no_review_metrics() -> None:
    registry = Registry(["kpi"])
    assert registry.pm.get_plugin("review+kpi") is None
    assert not [key for key in collect_metrics(registry) if key.startswith("review.")]
    assert "review_department" not in collect_dimensions(registry)


def test_review_alone_never_loads_the_bridge() -> None:
    """In a fresh interpreter: a registry with review alone imports neither the bridge nor kpi's hook."""
    code = (
        "import sys\n"
        "from core.plugins import Registry\n"
        "registry = Registry(['review'])\n"
        "assert registry.pm.get_plugin('review+kpi') is None\n"
        "assert not hasattr(registry.hook, 'ordo_kpi_metrics')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plugins.kpi.', 'plugins.review.bridges.kpi'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""kpi's metric engine (KP-1): metrics are SQL aggregations over a period, within the viewer's scope.

Core's order metrics (``orders.count``, ``orders.value``, ``orders.cycle_time``) against
hand-computed fixtures; breakdowns by order dimensions; drill-down to the orders behind a
number; data scope; periods; refusals.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import update

from core.clock import COMPANY_TIMEZONE
from core.models import Order, OrderTransition
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.kpi.engine import EVERYONE, breakdown, fact_orders, get_metric, mark, measure
from plugins.kpi.errors import KpiError
from plugins.kpi.periods import parse_period, period, period_of, previous, trend

pytestmark = pytest.mark.req("KP-1")


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(day: int, hour: int = 10, month: int = 10) -> dt.datetime:
    """A company-time instant in 2026."""
    return dt.datetime(2026, month, day, hour, tzinfo=COMPANY_TIMEZONE)


def place(session, order, created, completed=None):
    """Submit ``order`` as created at ``created`` (and completed at ``completed``)."""
    status = "completed" if completed else "submitted"
    session.execute(update(Order).where(Order.id == order.id).values(created_at=created, status=status))
    if completed is not None:
        session.add(
            OrderTransition(
                order_id=order.id,
                action="complete",
                from_step="confirmed",
                to_step="completed",
                from_status="confirmed",
                to_status="completed",
                at=completed,
            )
        )
    session.flush()


@pytest.fixture
def october(session, seed, admin):
    """Three orders received in October 2026, one draft, one in November; two completed in October."""
    a = make_order(session, admin, customer="C001")
    b = make_order(session, admin, customer="C002")
    c = make_order(session, admin, customer="C001")
    draft = make_order(session, admin, customer="C002")
    session.execute(update(Order).where(Order.id == draft.id).values(created_at=at(5)))
    d = make_order(session, admin, customer="C001")
    place(session, a, at(1), completed=at(4))  # 3 days
    place(session, b, at(10), completed=at(17, 22))  # 7.5 days
    place(session, c, at(31, 23))  # 31 Oct 23:00 company time = still October
    place(session, d, at(1, 0, month=11))  # November
    session.commit()
    return {"a": a, "b": b, "c": c, "d": d, "draft": draft}


def test_order_count_value_and_cycle_time_by_hand(session, october):
    registry = session_registry(session)
    month = period_of("month", dt.date(2026, 10, 15))
    count = measure(session, get_metric(registry, "orders.count"), month, viewer=EVERYONE)
    assert count.value == 3
    value = measure(session, get_metric(registry, "orders.value"), month, viewer=EVERYONE)
    expected = sum((o.total for o in (october["a"], october["b"], october["c"])), Decimal(0))
    assert value.value == expected.quantize(Decimal("0.01"))
    cycle = measure(session, get_metric(registry, "orders.cycle_time"), month, viewer=EVERYONE)
    assert (cycle.numerator.quantize(Decimal("0.01")), cycle.denominator) == (Decimal("10.50"), 2)
    assert cycle.value == Decimal("5.3")  # 10.5 / 2 = 5.25 → one place, half up


def test_breakdown_and_drill_down(session, october, seed):
    registry = session_registry(session)
    month = period_of("month", dt.date(2026, 10, 15))
    metric = get_metric(registry, "orders.count")
    parts = {part.name: part.value.value for part in breakdown(session, metric, month, "customer", viewer=EVERYONE)}
    assert parts == {f"{seed['local'].code} {seed['local'].name}": 2, f"{seed['remote'].code} {seed['remote'].name}": 1}
    orders, total = fact_orders(session, metric, month, viewer=EVERYONE)
    assert total == 3 and {o.order_id for o in orders} == {october[k].id for k in "abc"}
    slow = get_metric(registry, "orders.cycle_time")
    filtered = measure(session, slow, month, viewer=EVERYONE, filters={"customer": str(seed["remote"].id)})
    assert filtered.value == Decimal("7.5")


def test_scope_limits_every_number(session, october, seed):
    registry = session_registry(session)
    month = period_of("month", dt.date(2026, 10, 15))
    metric = get_metric(registry, "orders.count")
    stranger = make_user(session, "stranger@example.com", ["sales"])
    session.commit()
    assert measure(session, metric, month, viewer=stranger).value == 0
    assert measure(session, metric, month, viewer=None).value == 0
    assert fact_orders(session, metric, month, viewer=stranger) == ([], 0)


def test_unknown_metric_is_404_and_bad_periods_422(session):
    registry = session_registry(session)
    with pytest.raises(KpiError) as missing:
        get_metric(registry, "nobody.nothing")
    assert missing.value.status == 404
    with pytest.raises(KpiError) as reversed_:
        period(dt.date(2026, 11, 2), dt.date(2026, 11, 1))
    assert reversed_.value.status == 422
    with pytest.raises(KpiError):
        parse_period({"period": "custom", "start": "2026-11-05", "end": "2026-11-01"})
    with pytest.raises(KpiError):
        parse_period({"period": "fortnight"})
    with pytest.raises(KpiError):
        parse_period({"period": "month", "date": "yesterday"})


def test_periods():
    q = period_of("quarter", dt.date(2026, 11, 22))
    assert (q.start, q.end, q.days) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31), 92)
    w = period_of("week", dt.date(2026, 11, 22))  # a Sunday
    assert (w.start, w.end) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert previous(period_of("month", dt.date(2026, 3, 31))).start == dt.date(2026, 2, 1)
    months = trend(period_of("month", dt.date(2026, 1, 10)), 3)
    assert [m.start for m in months] == [dt.date(2025, 11, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1)]
    custom = parse_period({"period": "custom", "start": "2026-11-01", "end": "2026-11-10"})
    assert previous(custom).start == dt.date(2026, 10, 22)


def test_marks_follow_the_direction(session):
    registry = session_registry(session)
    higher = get_metric(registry, "orders.count")
    lower = get_metric(registry, "orders.cycle_time")
    band = Decimal(5)
    assert mark(higher, Decimal(100), Decimal(100), band) == "green"
    assert mark(higher, Decimal(96), Decimal(100), band) == "amber"
    assert mark(higher, Decimal(94), Decimal(100), band) == "red"
    assert mark(lower, Decimal(10), Decimal(10), band) == "green"
    assert mark(lower, Decimal("10.4"), Decimal(10), band) == "amber"
    assert mark(lower, Decimal(11), Decimal(10), band) == "red"
    assert mark(lower, None, Decimal(10), band) is None

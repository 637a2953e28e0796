"""kpi's generated history (demo year, benchmark data): orders, lines and transitions written in
bulk over core's tables, consistent with each order's status, and handed to the plugins (KP-1).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, text

from core.models import Order, OrderLine, OrderTransition
from core.models.system import SettingValue
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.kpi.engine import EVERYONE, collect_metrics, measure
from plugins.kpi.history import daily_counts, generate, insert_numbered, insert_rows
from plugins.kpi.models import KpiRule, KpiRuleResult
from plugins.kpi.periods import period_of

TODAY = dt.date(2026, 11, 20)
CENT = Decimal("0.01")


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


@pytest.fixture
def staff(session, seed):
    """Salespeople in both branches, a sales manager, a warehouse clerk (the orders' actors)."""
    return {
        "hq_sales": make_user(session, "s.hq@example.com", ["sales"], branch=seed["hq"], department=seed["sales_dept"]),
        "cd_sales": make_user(session, "s.cd@example.com", ["sales"], branch=seed["cd"]),
        "manager": make_user(session, "m@example.com", ["sales_manager"], branch=seed["hq"]),
        "warehouse": make_user(session, "w@example.com", ["warehouse"], branch=seed["hq"]),
    }


def test_daily_counts_add_up_with_weekday_seasonality_and_growth():
    counts = daily_counts(10_000, dt.date(2025, 11, 1), dt.date(2026, 10, 31))
    assert sum(n for _, n in counts) == 10_000 and len(counts) == 365
    weekdays = [n for day, n in counts if day.weekday() < 5]
    sundays = [n for day, n in counts if day.weekday() == 6]
    assert min(weekdays) > max(sundays)
    first, last = counts[:28], counts[-28:]
    assert sum(n for _, n in last) > sum(n for _, n in first)  # growth


def test_generated_orders_are_consistent(session, seed, staff, admin):
    real = make_order(session, admin, customer="C001")  # a real order keeps its id and number
    written = generate(session, orders=200, today=TODAY, months=12, seed=7, batch=64)
    session.commit()
    assert written == 200
    orders = list(session.scalars(select(Order).where(Order.id != real.id)))
    assert len(orders) == 200 and min(o.id for o in orders) > real.id
    assert len({o.number for o in orders} | {real.number}) == 201
    assert all(o.number.startswith("H") for o in orders)

    # Spread over the 12 whole months before November 2026 and November up to yesterday.
    per_month = Counter((o.created_at.year, o.created_at.month) for o in orders)
    assert min(o.created_at for o in orders).date() >= dt.date(2025, 10, 31)  # UTC of 1 Nov 2025 company time
    assert max(o.created_at for o in orders).date() < TODAY
    assert len(per_month) >= 12 and max(per_month.values()) < 40

    lines = defaultdict(list)
    for line in session.scalars(select(OrderLine)):
        lines[line.order_id].append(line)
    transitions = defaultdict(list)
    for t in session.scalars(select(OrderTransition).order_by(OrderTransition.id)):
        transitions[t.order_id].append(t)
    statuses = Counter(o.status for o in orders)
    assert statuses["completed"] > 150 and statuses.keys() <= {
        "submitted",
        "confirmed",
        "completed",
        "rejected",
        "cancelled",
    }
    for order in orders:
        assert 1 <= len(lines[order.id]) <= 5
        untaxed = sum((line.amount for line in lines[order.id]), Decimal(0))
        tax = sum(
            ((line.amount * line.tax_rate / 100).quantize(CENT, ROUND_HALF_UP) for line in lines[order.id]),
            Decimal(0),
        )
        for line in lines[order.id]:
            gross = line.quantity * line.unit_price * (100 - line.discount) / 100
            assert line.amount == gross.quantize(CENT, ROUND_HALF_UP)
        assert (order.untaxed_amount, order.tax_amount, order.total) == (untaxed, tax, untaxed + tax)
        path = transitions[order.id]
        assert path[0].action == "submit" and path[0].from_status == "draft"
        assert path[-1].to_status == order.status == order.step
        for before, after in itertools.pairwise(path):
            assert after.from_status == before.to_status and after.at >= before.at
        assert path[0].at >= order.created_at
        if order.status == "completed":
            confirm, complete = path[-2], path[-1]
            days = (complete.at - confirm.at).total_seconds() / 86400
            assert confirm.action == "confirm" and 3 <= days <= 20
        if order.status in ("rejected", "cancelled"):
            assert order.reason and path[-1].reason
        assert order.owner_id is not None and order.branch_id is not None


def test_recent_orders_are_partly_still_open(session, seed, staff):
    generate(session, orders=400, today=TODAY, months=2, seed=3)
    session.commit()
    cutoff = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
    recent = Counter(o.status for o in session.scalars(select(Order).where(Order.created_at >= cutoff)))
    older = Counter(
        o.status
        for o in session.scalars(select(Order).where(Order.created_at < dt.datetime(2026, 10, 1, tzinfo=dt.UTC)))
    )
    assert recent["confirmed"] + recent["submitted"] > 0
    assert older["confirmed"] == 0 and older["submitted"] == 0


def test_same_seed_same_history_and_batches_commit(session, seed, staff):
    seen = []
    generate(session, orders=50, today=TODAY, months=3, seed=11, batch=20, on_batch=lambda n: seen.append(n))
    assert seen == [20, 40, 50]
    first = [(o.created_at, o.total, o.status) for o in session.scalars(select(Order).order_by(Order.id))]
    session.rollback()
    generate(session, orders=50, today=TODAY, months=3, seed=11, batch=20)
    again = [(o.created_at, o.total, o.status) for o in session.scalars(select(Order).order_by(Order.id))]
    assert first == again
    session.rollback()


def test_core_metrics_have_a_history(session, seed, staff):
    """With kpi alone: every metric kpi itself computes from core's tables has a value each month."""
    generate(session, orders=300, today=TODAY, months=12, seed=5)
    session.commit()
    registry = session_registry(session)
    metrics = collect_metrics(registry)
    october = period_of("month", dt.date(2026, 10, 1))
    for key in ("orders.count", "orders.value", "orders.cycle_time"):
        value = measure(session, metrics[key], october, viewer=EVERYONE).value
        assert value is not None and value > 0, key
    cycle = measure(session, metrics["orders.cycle_time"], october, viewer=EVERYONE).value
    assert cycle is not None and Decimal(3) <= cycle <= Decimal(25)
    count = measure(session, metrics["orders.count"], october, viewer=EVERYONE).value
    created = session.scalar(
        select(func.count())
        .select_from(Order)
        .where(
            Order.created_at >= october.lower,
            Order.created_at < october.upper,
        )
    )
    assert count == created


def test_without_master_data_it_refuses(session):
    with pytest.raises(ValueError):
        generate(session, orders=5, today=TODAY)
    assert session.scalar(select(func.count()).select_from(Order)) == 0


def _rules(prefix: str) -> list[dict]:
    """Rules with a datetime in another zone, microseconds, Decimals, booleans and a repeated value."""
    shanghai = ZoneInfo("Asia/Shanghai")
    return [
        {
            "name": f"{prefix} {n}",
            "kind": "alert",
            "metric": "orders.count",
            "comparison": ">",
            "threshold": Decimal(threshold),
            "active": n % 2 == 0,
            "created_at": at,
        }
        for n, (threshold, at) in enumerate(
            (
                ("1.5", dt.datetime(2026, 11, 20, 9, 30, tzinfo=shanghai)),
                ("2.25", dt.datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=dt.UTC)),
                ("2.25", dt.datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=dt.UTC)),
            )
        )
    ]


def _stored(session, prefix: str) -> list[tuple]:
    """The rules' columns as the database holds them, without the name's prefix."""
    rows = session.execute(
        text(
            "SELECT name, kind, metric, comparison, threshold, active, months, subject, note, created_at "
            "FROM kpi_rule WHERE name LIKE :prefix ORDER BY id"
        ),
        {"prefix": f"{prefix} %"},
    )
    return [(row[0].split(" ", 1)[1], *row[1:]) for row in rows]


def test_insert_rows_stores_what_an_orm_bulk_insert_stores(session):
    session.execute(insert(KpiRule), _rules("orm"))
    insert_rows(session, KpiRule, _rules("fast"))
    orm, fast = _stored(session, "orm"), _stored(session, "fast")
    assert fast == orm and len(fast) == 3
    assert {row[6:9] for row in fast} == {(1, "company", "")}  # the scalar defaults

    # A column whose values are equal but of different types is not converted as one value.
    insert_rows(session, SettingValue, [{"key": "t.true", "value": True}, {"key": "t.one", "value": 1}])
    values = dict(session.execute(select(SettingValue.key, SettingValue.value)).tuples().all())
    assert values["t.true"] is True and type(values["t.one"]) is int and values["t.one"] == 1


def test_insert_numbered_numbers_after_the_largest_id(session):
    before = dt.datetime.now(dt.UTC)
    existing = KpiRule(name="real", kind="alert", metric="orders.count", comparison=">", threshold=Decimal(1))
    session.add(existing)
    session.flush()
    rules = [{key: value for key, value in rule.items() if key != "created_at"} for rule in _rules("numbered")]
    ids = insert_numbered(session, KpiRule, rules)
    assert ids == [existing.id + 1, existing.id + 2, existing.id + 3]
    assert [rule["id"] for rule in rules] == ids
    created = session.scalars(select(KpiRule.created_at).where(KpiRule.id.in_(ids))).all()
    assert all(before <= at <= dt.datetime.now(dt.UTC) for at in created)  # the callable default, called
    insert_rows(
        session,
        KpiRuleResult,
        [{"rule_id": rule_id, "month": dt.date(2026, 10, 1), "subject_kind": "company"} for rule_id in ids],
    )
    months = session.execute(select(KpiRuleResult.rule_id, KpiRuleResult.month).order_by(KpiRuleResult.id)).all()
    assert months == [(rule_id, dt.date(2026, 10, 1)) for rule_id in ids]
    # The next row added the ordinary way gets the next id (PostgreSQL: the sequence moved on).
    later = KpiRule(name="later", kind="alert", metric="orders.count", comparison=">", threshold=Decimal(1))
    session.add(later)
    session.flush()
    assert later.id == ids[-1] + 1


class TestWithAllPlugins:
    """With every plugin enabled, each plugin's ``ordo_kpi_history`` adds its records."""

    @pytest.fixture
    def ordo_plugins(self):
        return ["kpi", "intake", "review", "logistics", "billing"]

    def test_every_plugin_adds_its_history(self, session, seed, staff):
        for role, email in (("finance", "f@example.com"), ("order_clerk", "c@example.com")):
            make_user(session, email, [role], branch=seed["hq"])
        registry = session_registry(session)
        called = {impl.plugin_name.split("+", 1)[0] for impl in registry.hook.ordo_kpi_history.get_hookimpls()}
        generate(session, orders=150, today=TODAY, months=3, seed=2)
        session.commit()
        metrics = collect_metrics(registry)
        october = period_of("month", dt.date(2026, 10, 1))
        measured = [key for key, m in metrics.items() if m.plugin in called or key.startswith("orders.")]
        assert len(measured) > 3 and called >= {"intake", "review", "logistics", "billing"}
        missing = [key for key in measured if measure(session, metrics[key], october, viewer=EVERYONE).value is None]
        assert not missing, f"metrics without history: {missing} (history hooks from {sorted(called)})"

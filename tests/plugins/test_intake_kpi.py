"""Intake's metrics for kpi (IN-9, KP-1, KP-3): entry accuracy, pre-check rejection rate and manual
check timeliness, computed by kpi's engine from orders taken through the real flow; the customer
group dimension; the bridge is loaded only when both plugins are enabled."""

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
from core.models import Order, OrderTransition, User
from core.plugins import Registry
from core.services.orders import take_action
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.intake.models import IntakeCorrection, IntakeCustomerGroup, IntakeCustomerProfile, IntakeOrder
from plugins.kpi.engine import EVERYONE, breakdown, collect_dimensions, collect_metrics, fact_orders, measure
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Period
from plugins.kpi.periods import period, period_of

pytestmark = pytest.mark.req("KP-1")

KEYS = ["intake.entry_accuracy", "intake.precheck_reject_rate", "intake.manual_check_timeliness"]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake", "kpi"]


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


def submitted(session: Session, registry: Registry, admin: User, customer: str = "C001", **overrides: Any) -> Order:
    """A new order submitted through the flow (pre-checked on submission); committed."""
    overrides.setdefault("requested_date", (today() + dt.timedelta(days=60)).isoformat())
    order = make_order(session, admin, customer=customer, **overrides)
    take_action(session, registry, admin, order, "submit")
    session.commit()
    return order


def record(session: Session, order: Order) -> IntakeOrder:
    """Intake's record of ``order``."""
    found = session.get(IntakeOrder, order.id)
    assert found is not None
    return found


def correct(session: Session, order: Order, admin: User, *, entry_error: bool) -> None:
    """A correction the clerk made while checking ``order``."""
    session.add(
        IntakeCorrection(
            order_id=order.id,
            field="ship_to_phone",
            before="023-6000-0010",
            after="023-6000-0001",
            entry_error=entry_error,
            note="typed wrong" if entry_error else "customer changed it",
            user_id=admin.id,
        )
    )
    session.commit()


@pytest.fixture
def orders(session: Session, registry: Registry, admin: User, seed: dict[str, Any]) -> dict[str, Order]:
    """Six orders through the flow today.

    accurate: accepted, no correction; mistyped: an entry-error correction, accepted;
    late: a correction that was no entry error, rejected in the check after its due day;
    withdrawn: cancelled while waiting in the check; past: rejected by the pre-check
    (past date); blocked: rejected by the pre-check (blocked customer C002 and past date).
    """
    past = (today() - dt.timedelta(days=3)).isoformat()
    found = {name: submitted(session, registry, admin) for name in ("accurate", "mistyped", "late", "withdrawn")}
    found["past"] = submitted(session, registry, admin, requested_date=past)
    session.add(IntakeCustomerProfile(customer_id=seed["remote"].id, blocked=True, blocked_reason="overdue invoices"))
    session.commit()
    found["blocked"] = submitted(session, registry, admin, customer="C002", requested_date=past)
    for name in ("accurate", "mistyped", "late", "withdrawn"):
        assert found[name].step == "intake.manual_check", name
    assert found["past"].status == found["blocked"].status == "rejected"

    correct(session, found["mistyped"], admin, entry_error=True)
    correct(session, found["late"], admin, entry_error=False)
    record(session, found["late"]).check_due = today() - dt.timedelta(days=1)
    take_action(session, registry, admin, found["accurate"], "accept")
    take_action(session, registry, admin, found["mistyped"], "accept")
    take_action(session, registry, admin, found["late"], "reject", "the drawing does not match the order")
    take_action(session, registry, admin, found["withdrawn"], "cancel", "customer withdrew it")
    session.commit()
    return found


def test_intake_contributes_its_three_metrics_and_the_customer_group_when_kpi_is_enabled(registry):
    metrics = collect_metrics(registry)
    assert [key for key in metrics if key.startswith("intake.")] == KEYS
    assert {metrics[key].plugin for key in KEYS} == {"intake"}
    assert all(metrics[key].unit == "percent" and metrics[key].aggregate == "percent" for key in KEYS)
    assert [metrics[key].direction for key in KEYS] == ["higher", "lower", "higher"]
    assert [metrics[key].target for key in KEYS] == [Decimal(98), Decimal(5), Decimal(95)]
    assert all("customer_group" in metrics[key].dimensions for key in KEYS)
    dimensions = collect_dimensions(registry)
    assert dimensions["customer_group"].plugin == "intake" and dimensions["customer_group"].expression is not None


@pytest.mark.req("IN-9")
def test_entry_accuracy_counts_checked_orders_without_an_entry_error(session, registry, orders):
    # accurate, mistyped and late were checked (withdrawn was not); only mistyped had an entry error.
    assert value(session, registry, "intake.entry_accuracy", day()) == (2, 3, Decimal("66.67"))
    metric = collect_metrics(registry)["intake.entry_accuracy"]
    wrong, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)
    assert total == 1 and [row.order_id for row in wrong] == [orders["mistyped"].id]
    everything, total = fact_orders(session, metric, day(), viewer=EVERYONE)
    assert total == 3 and {row.order_id for row in everything} == {
        orders[k].id for k in ("accurate", "mistyped", "late")
    }


def test_precheck_reject_rate_counts_the_orders_the_precheck_rejected(session, registry, orders):
    assert value(session, registry, "intake.precheck_reject_rate", day()) == (2, 6, Decimal("33.33"))
    rejected = session.scalars(select(OrderTransition.order_id).where(OrderTransition.action == "precheck_reject"))
    assert sorted(rejected) == sorted([orders["past"].id, orders["blocked"].id])
    metric = collect_metrics(registry)["intake.precheck_reject_rate"]
    found, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)  # lower is better: num > 0
    assert total == 2 and {row.order_id for row in found} == {orders["past"].id, orders["blocked"].id}
    assert "rule" not in metric.dimensions


def test_manual_check_timeliness_compares_the_check_day_with_its_due_day(session, registry, orders):
    assert value(session, registry, "intake.manual_check_timeliness", day()) == (2, 3, Decimal("66.67"))
    metric = collect_metrics(registry)["intake.manual_check_timeliness"]
    late, total = fact_orders(session, metric, day(), viewer=EVERYONE, problems=True)
    assert total == 1 and late[0].order_id == orders["late"].id and late[0].value == Decimal("0.00")
    # No due day: on time.
    record(session, orders["late"]).check_due = None
    session.commit()
    assert value(session, registry, "intake.manual_check_timeliness", day()) == (3, 3, Decimal("100.00"))


@pytest.mark.req("KP-3")
def test_metrics_split_by_customer_group(session, registry, orders, seed):
    """C001 in "Distributors" (5 orders, 1 rejected by the pre-check); C002 in "Retail" (1, rejected)."""
    distributors = IntakeCustomerGroup(code="DIST", name="Distributors")
    retail = IntakeCustomerGroup(code="RETAIL", name="Retail")
    session.add_all([distributors, retail])
    session.flush()
    session.add(IntakeCustomerProfile(customer_id=seed["local"].id, group_id=distributors.id))
    session.execute(
        update(IntakeCustomerProfile)
        .where(IntakeCustomerProfile.customer_id == seed["remote"].id)
        .values(group_id=retail.id)
    )
    session.commit()
    metric = collect_metrics(registry)["intake.precheck_reject_rate"]
    parts = breakdown(session, metric, day(), "customer_group", viewer=EVERYONE)
    assert [(p.key, p.name, p.value.numerator, p.value.denominator, p.value.value) for p in parts] == [
        (distributors.id, "Distributors", 1, 5, Decimal("20.00")),
        (retail.id, "Retail", 1, 1, Decimal("100.00")),
    ]
    # Filters take the value as the screens send it (a string).
    accuracy = ("intake.entry_accuracy", day())
    assert value(session, registry, *accuracy, filters={"customer_group": str(distributors.id)}) == (
        2,
        3,
        Decimal("66.67"),
    )
    assert value(session, registry, *accuracy, filters={"customer_group": str(retail.id)})[1] == 0
    with pytest.raises(KpiError) as bad:
        measure(session, metric, day(), viewer=EVERYONE, filters={"customer_group": "retail"})
    assert bad.value.status == 422


def test_a_customer_without_a_group_falls_under_none(session, registry, orders):
    metric = collect_metrics(registry)["intake.entry_accuracy"]
    parts = breakdown(session, metric, day(), "customer_group", viewer=EVERYONE)
    assert [(p.key, p.value.denominator) for p in parts] == [(None, 3)]


def test_the_viewer_scope_limits_every_number(session, registry, orders, seed):
    """A Chengdu sales manager sees the Chengdu orders only: mistyped and past; a stranger nothing."""
    ids = [orders["mistyped"].id, orders["past"].id]
    session.execute(update(Order).where(Order.id.in_(ids)).values(branch_id=seed["cd"].id))
    manager = make_user(session, "cd-manager@example.com", ["sales_manager"], branch=seed["cd"])
    stranger = make_user(session, "stranger@example.com", ["sales"])
    session.commit()
    assert value(session, registry, "intake.entry_accuracy", day(), viewer=manager) == (0, 1, Decimal("0.00"))
    assert value(session, registry, "intake.precheck_reject_rate", day(), viewer=manager) == (1, 2, Decimal("50.00"))
    assert value(session, registry, "intake.manual_check_timeliness", day(), viewer=manager) == (
        1,
        1,
        Decimal("100.00"),
    )
    for key in KEYS:
        assert value(session, registry, key, day(), viewer=stranger) == (0, 0, None), key


def test_a_period_without_orders_has_no_value(session, registry, orders):
    yesterday = today() - dt.timedelta(days=1)
    for key in KEYS:
        assert value(session, registry, key, period(yesterday - dt.timedelta(days=30), yesterday)) == (0, 0, None), key


def test_periods_are_company_days(session, registry, orders):
    """Days are the company's: 00:30 today (the previous day in UTC) counts today, 23:30 yesterday yesterday."""
    yesterday = today() - dt.timedelta(days=1)
    just_after_midnight = dt.datetime.combine(today(), dt.time(0, 30), COMPANY_TIMEZONE).astimezone(dt.UTC)
    late_evening = dt.datetime.combine(yesterday, dt.time(23, 30), COMPANY_TIMEZONE).astimezone(dt.UTC)
    record(session, orders["accurate"]).checked_at = just_after_midnight
    record(session, orders["mistyped"]).checked_at = late_evening
    session.commit()
    assert value(session, registry, "intake.entry_accuracy", day())[:2] == (2, 2)
    assert value(session, registry, "intake.entry_accuracy", day(yesterday)) == (0, 1, Decimal("0.00"))
    assert value(session, registry, "intake.entry_accuracy", period(yesterday, today()))[1] == 3
    # The late check was due yesterday, done at 23:30 yesterday: on time by the company's day.
    record(session, orders["late"]).checked_at = late_evening
    session.commit()
    assert value(session, registry, "intake.manual_check_timeliness", day(yesterday))[:2] == (2, 2)


def test_kpi_alone_has_no_intake_metrics():
    registry = Registry(["kpi"])
    assert registry.pm.get_plugin("intake+kpi") is None
    assert not [key for key in collect_metrics(registry) if key.startswith("intake.")]
    assert "customer_group" not in collect_dimensions(registry)


def test_intake_alone_never_loads_the_bridge():
    """In a fresh interpreter: a registry with intake alone imports neither the bridge nor kpi's hook."""
    code = (
        "import sys\n"
        "from core.plugins import Registry\n"
        "registry = Registry(['intake'])\n"
        "assert registry.pm.get_plugin('intake+kpi') is None\n"
        "assert not hasattr(registry.hook, 'ordo_kpi_metrics')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plugins.kpi.', 'plugins.intake.bridges'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

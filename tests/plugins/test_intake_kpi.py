"""Intake's indicators for kpi (IN-9, KP-1): entry accuracy, pre-check rejection rate and manual
check timeliness, computed from orders taken through the real flow; the bridge is loaded only
when both plugins are enabled."""

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
from core.models import Order, OrderTransition, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import make_order
from plugins.intake.models import IntakeCorrection, IntakeCustomerProfile, IntakeOrder
from plugins.kpi.indicators import collect_indicators, compute_indicators

pytestmark = pytest.mark.req("KP-1")

CODES = ["intake.entry_accuracy", "intake.precheck_reject_rate", "intake.manual_check_timeliness"]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake", "kpi"]


@pytest.fixture
def registry(app: Any) -> Registry:
    return app.extensions["ordo"].registry


def today() -> dt.date:
    return company_now().date()


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
    (past date); blocked: rejected by the pre-check (blocked customer and past date).
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


def test_intake_contributes_its_three_indicators_when_kpi_is_enabled(registry):
    indicators = collect_indicators(registry)
    assert [code for code in indicators if code.startswith("intake.")] == CODES
    assert {indicators[code].plugin for code in CODES} == {"intake"}
    assert all(indicators[code].unit == "percent" and indicators[code].label for code in CODES)


@pytest.mark.req("IN-9")
def test_entry_accuracy_counts_checked_orders_without_an_entry_error(session, registry, orders):
    value = compute_indicators(session, today(), today(), registry)["intake.entry_accuracy"]
    # accurate, mistyped and late were checked (withdrawn was not); only mistyped had an entry error.
    assert (value.numerator, value.denominator, value.value) == (2, 3, Decimal("66.67"))


def test_precheck_reject_rate_counts_rejections_by_rule(session, registry, orders):
    value = compute_indicators(session, today(), today(), registry)["intake.precheck_reject_rate"]
    assert (value.numerator, value.denominator, value.value) == (2, 6, Decimal("33.33"))
    assert {rule: (part.numerator, part.value) for rule, part in value.breakdown.items()} == {
        "customer": (1, Decimal("16.67")),
        "requested_date": (2, Decimal("33.33")),
    }
    rejected = session.scalars(
        select(OrderTransition.order_id).where(OrderTransition.action == "precheck_reject")
    ).all()
    assert sorted(rejected) == sorted([orders["past"].id, orders["blocked"].id])


def test_manual_check_timeliness_compares_the_check_day_with_its_due_day(session, registry, orders):
    value = compute_indicators(session, today(), today(), registry)["intake.manual_check_timeliness"]
    assert (value.numerator, value.denominator, value.value) == (2, 3, Decimal("66.67"))


def test_a_period_without_orders_has_no_value(session, registry, orders):
    yesterday = today() - dt.timedelta(days=1)
    values = compute_indicators(session, yesterday - dt.timedelta(days=30), yesterday, registry)
    for code in CODES:
        assert (values[code].value, values[code].denominator) == (None, 0), code
    assert values["intake.precheck_reject_rate"].breakdown == {}


def test_periods_are_company_days(session, registry, orders):
    """Days are the company's: 00:30 today (the previous day in UTC) counts today, 23:30 yesterday yesterday."""
    yesterday = today() - dt.timedelta(days=1)
    just_after_midnight = dt.datetime.combine(today(), dt.time(0, 30), COMPANY_TIMEZONE).astimezone(dt.UTC)
    late_evening = dt.datetime.combine(yesterday, dt.time(23, 30), COMPANY_TIMEZONE).astimezone(dt.UTC)
    record(session, orders["accurate"]).checked_at = just_after_midnight
    record(session, orders["mistyped"]).checked_at = late_evening
    session.commit()
    on_today = compute_indicators(session, today(), today(), registry)["intake.entry_accuracy"]
    assert (on_today.numerator, on_today.denominator) == (2, 2)
    on_yesterday = compute_indicators(session, yesterday, yesterday, registry)["intake.entry_accuracy"]
    assert (on_yesterday.numerator, on_yesterday.denominator, on_yesterday.value) == (0, 1, Decimal("0.00"))
    both = compute_indicators(session, yesterday, today(), registry, codes=["intake.entry_accuracy"])
    assert list(both) == ["intake.entry_accuracy"] and both["intake.entry_accuracy"].denominator == 3


def test_kpi_alone_has_no_intake_indicators():
    registry = Registry(["kpi"])
    assert registry.pm.get_plugin("intake+kpi") is None
    assert collect_indicators(registry) == {}


def test_intake_alone_never_loads_the_bridge():
    """In a fresh interpreter: a registry with intake alone imports neither the bridge nor kpi's hook."""
    code = (
        "import sys\n"
        "from core.plugins import Registry\n"
        "registry = Registry(['intake'])\n"
        "assert registry.pm.get_plugin('intake+kpi') is None\n"
        "assert not hasattr(registry.hook, 'ordo_kpi_indicators')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('plugins.kpi.', 'plugins.intake.bridges'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

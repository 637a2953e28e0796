"""Logistics' metrics for kpi (KP-1) on a small data set built through the real services.

Two local orders: A (2 × P-100, 100 × P-300) ships complete in one shipment, delivered
before its promised date and received; B (12 × P-100, only 8 in stock) ships 8 first —
delivered after its promised date, the customer objects (short) — and the remaining 4
later (not delivered). A return of 10 × P-300 (quality) is received; a delay and a
damage are reported. Expected: on-time 1 of 2, fill rate 2 of 3 lines, shipping accuracy
1 of 2, return rate 10 of 114 units, 2 exceptions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import Order, User
from core.services.orders import take_action
from core.settings import session_registry
from core.testing import make_order, make_user
from plugins.kpi.engine import EVERYONE, breakdown, collect_metrics, fact_orders, get_metric, measure
from plugins.kpi.periods import period
from plugins.logistics import delivery, exceptions, returns, shipping
from plugins.logistics.models import LogisticsShipment

pytestmark = pytest.mark.req("KP-1")

CODES = (
    "logistics.on_time_delivery",
    "logistics.fill_rate",
    "logistics.shipping_accuracy",
    "logistics.return_rate",
    "logistics.exceptions",
)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics", "kpi"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "keeper": make_user(session, "keeper@example.com", ["warehouse"], branch=hq),
        "rm": make_user(session, "rm@example.com", ["regional_manager"], branch=hq),
        "md": make_user(session, "md@example.com", ["marketing_director"], branch=hq),
    }


def released(session: Session, state: Any, admin: User, people: dict[str, User], lines: list[dict[str, str]]) -> Order:
    order = make_order(session, people["seller"], lines=lines)
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, people["keeper"], order, "release")
    session.commit()
    return order


def ship(session: Session, keeper: User, order: Order, promised: dt.date) -> LogisticsShipment:
    shipment = shipping.plan_shipment(session, keeper, order)
    shipment.promised_date = promised
    shipping.ship(session, keeper, shipment.id)
    session.commit()
    return shipment


@pytest.fixture
def data(session: Session, state: Any, admin: User, seed: dict[str, Any], people: dict[str, User]) -> dict[str, Any]:
    today = company_now().date()
    keeper = people["keeper"]
    wh = make_warehouse(session, seed["hq"].company_id)
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(wh, "A-01"), "10")
    receive(session, admin, p300, location(wh, "B-01"), "200")
    a = released(
        session, state, admin, people, [{"product": "P-100", "quantity": "2"}, {"product": "P-300", "quantity": "100"}]
    )
    b = released(session, state, admin, people, [{"product": "P-100", "quantity": "12"}])
    first_a = ship(session, keeper, a, today + dt.timedelta(days=1))
    first_b = ship(session, keeper, b, today - dt.timedelta(days=1))
    receive(session, admin, p100, location(wh, "A-01"), "4", backorders=True)
    second_b = ship(session, keeper, b, today + dt.timedelta(days=3))
    delivery.confirm_receipt(session, keeper, first_a.id)  # delivered and received now: on time
    delivery.mark_delivered(session, keeper, first_b.id)  # delivered now: a day late
    delivery.object_to_delivery(session, keeper, first_b.id, "short", "少了 1 台")
    exceptions.report_exception(session, keeper, first_b.id, "delay", "路上耽搁")
    exceptions.report_exception(session, keeper, first_a.id, "damage", "外箱破损")
    cable = next(line for line in a.lines if line.product.sku == "P-300")
    request = returns.request_return(
        session, people["seller"], a.id, [returns.ReturnLineInput(cable.id, Decimal("10"), "quality", "绝缘层破损")]
    )
    returns.review_return(session, people["rm"], request.id, approve=True, note="属实")
    returns.decide_return(session, people["md"], request.id, approve=True, note="同意")
    returns.receive_return(session, keeper, request.id, {request.lines[0].id: Decimal("10")})
    session.commit()
    return {"today": today, "second_b": second_b, "a": a, "b": b}


def values(session: Session, start: dt.date, end: dt.date, viewer: Any = EVERYONE) -> dict[str, Any]:
    registry = session_registry(session)
    return {key: measure(session, get_metric(registry, key), period(start, end), viewer=viewer) for key in CODES}


def parts(session: Session, key: str, day: dt.date, dimension: str) -> dict[Any, tuple[Any, ...]]:
    metric = get_metric(session_registry(session), key)
    return {
        part.key: (part.value.value, part.value.numerator, part.value.denominator)
        for part in breakdown(session, metric, period(day, day), dimension, viewer=EVERYONE)
    }


def test_logistics_contributes_its_five_metrics(state: Any) -> None:
    found = collect_metrics(state.registry)
    assert {key: (found[key].unit, found[key].direction, found[key].target) for key in CODES} == {
        "logistics.on_time_delivery": ("percent", "higher", Decimal("98")),
        "logistics.fill_rate": ("percent", "higher", Decimal("95")),
        "logistics.shipping_accuracy": ("percent", "higher", Decimal("99")),
        "logistics.return_rate": ("percent", "lower", Decimal("2")),
        "logistics.exceptions": ("count", "lower", None),
    }
    assert all(found[key].plugin == "logistics" for key in CODES)


def test_the_metrics_on_a_small_data_set(session: Session, data: dict[str, Any]) -> None:
    today = data["today"]
    got = values(session, today, today)
    on_time = got["logistics.on_time_delivery"]
    assert (on_time.value, on_time.numerator, on_time.denominator) == (Decimal("50.00"), 1, 2)
    fill = got["logistics.fill_rate"]
    assert (fill.value, fill.numerator, fill.denominator) == (Decimal("66.67"), 2, 3)
    accuracy = got["logistics.shipping_accuracy"]
    assert (accuracy.value, accuracy.numerator, accuracy.denominator) == (Decimal("50.00"), 1, 2)
    rate = got["logistics.return_rate"]
    assert (rate.numerator, rate.denominator) == (Decimal("10"), Decimal("114"))
    assert rate.value == Decimal("8.77")
    assert got["logistics.exceptions"].value == 2


def test_breakdowns_by_fact_and_order_dimensions(session: Session, data: dict[str, Any]) -> None:
    today = data["today"]
    assert parts(session, "logistics.shipping_accuracy", today, "objection") == {
        "none": (Decimal("100.00"), 1, 1),
        "short": (Decimal("0.00"), 0, 1),
    }
    assert parts(session, "logistics.exceptions", today, "exception_kind") == {
        "damage": (Decimal("1"), 1, 1),
        "delay": (Decimal("1"), 1, 1),
    }
    by_reason = parts(session, "logistics.return_rate", today, "return_reason")
    assert by_reason["quality"][1:] == (Decimal("10"), Decimal("0"))
    assert by_reason[None][1:] == (Decimal("0"), Decimal("114"))
    assert parts(session, "logistics.on_time_delivery", today, "remote") == {"local": (Decimal("50.00"), 1, 2)}


def test_drill_down_lists_the_order_with_the_late_shipment(session: Session, data: dict[str, Any]) -> None:
    today = data["today"]
    metric = get_metric(session_registry(session), "logistics.on_time_delivery")
    late, total = fact_orders(session, metric, period(today, today), viewer=EVERYONE, problems=True)
    assert total == 1 and [order.order_id for order in late] == [data["b"].id]
    every, total = fact_orders(session, metric, period(today, today), viewer=EVERYONE)
    assert total == 2 and {order.order_id for order in every} == {data["a"].id, data["b"].id}
    returns = get_metric(session_registry(session), "logistics.return_rate")
    returned, _count = fact_orders(session, returns, period(today, today), viewer=EVERYONE, problems=True)
    assert [order.order_id for order in returned] == [data["a"].id]


def test_the_metrics_obey_the_viewers_scope(
    session: Session, data: dict[str, Any], people: dict[str, User], seed: dict[str, Any]
) -> None:
    today = data["today"]
    stranger = make_user(session, "stranger@example.com", ["sales"], branch=seed["cd"])
    session.commit()
    theirs = values(session, today, today, viewer=stranger)
    assert theirs["logistics.on_time_delivery"].value is None
    assert theirs["logistics.exceptions"].value == 0
    mine = values(session, today, today, viewer=people["rm"])
    assert mine["logistics.on_time_delivery"].value == Decimal("50.00")


def test_a_quiet_period_has_no_data_and_no_exceptions(session: Session, data: dict[str, Any]) -> None:
    month_ago = data["today"] - dt.timedelta(days=40)
    got = values(session, month_ago, month_ago + dt.timedelta(days=5))
    for code in CODES[:4]:
        assert got[code].value is None, code
    assert got["logistics.exceptions"].value == 0


def test_a_later_delivery_of_the_second_shipment_counts_in_its_own_period(
    session: Session, data: dict[str, Any], people: dict[str, User]
) -> None:
    shipment = data["second_b"]
    tomorrow = data["today"] + dt.timedelta(days=1)
    shipment = session.get(LogisticsShipment, shipment.id)
    assert shipment is not None
    shipment.delivered_at = dt.datetime.combine(tomorrow, dt.time(11), company_now().tzinfo)
    session.commit()
    got = values(session, tomorrow, tomorrow)
    assert got["logistics.on_time_delivery"].value == Decimal("100.00")  # promised in three days
    assert got["logistics.fill_rate"].value is None  # no line had its first shipment tomorrow


def test_the_daily_report_lists_the_shipped_orders(session: Session, data: dict[str, Any], state: Any) -> None:
    today = data["today"]
    lower = period(today, today).lower
    sections = [
        section
        for answer in state.registry.hook.ordo_kpi_report_sections(
            session=session, start=lower, end=lower + dt.timedelta(days=1)
        )
        for section in answer
    ]
    (shipped,) = [section for section in sections if section.key == "shipped"]
    assert len(shipped.columns) == 5
    assert sorted(row[0] for row in shipped.rows) == sorted([data["a"].id, data["b"].id, data["b"].id])
    assert {row[1] for row in shipped.rows} == {data["a"].number, data["b"].number}
    yesterday = [
        section
        for answer in state.registry.hook.ordo_kpi_report_sections(
            session=session, start=lower - dt.timedelta(days=1), end=lower
        )
        for section in answer
    ]
    assert all(not section.rows for section in yesterday if section.key == "shipped")

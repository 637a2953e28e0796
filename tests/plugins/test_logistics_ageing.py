"""Ageing of goods ready but unshipped (LG-10): thresholds in WORKING days, each level told once.

The job ``logistics.ageing`` tells the salesperson (5 working days), the sales manager
(10, abnormal stock) and the general manager (22); weekends and holidays do not count;
an order found past several thresholds gets the highest notice only; shipped goods age no
more. The "Unshipped goods" screen lists the same figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import CalendarDay, Notification, Order, User
from core.services.orders import take_action
from core.testing import PASSWORD, login, make_order, make_user
from plugins.logistics import ageing, shipping
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsOrder

pytestmark = pytest.mark.req("LG-10")

#: A Friday: goods ready that morning.
FRIDAY = dt.date(2026, 11, 6)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "seller": make_user(session, "seller@example.com", ["sales"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "keeper": make_user(session, "keeper@example.com", ["warehouse"], branch=hq),
    }


@pytest.fixture
def ready_order(session: Session, state: Any, admin: User, seed: dict[str, Any], people: dict[str, User]) -> Order:
    """An HQ order released to shipping, its goods ready on FRIDAY at 10:00 (company time)."""
    wh = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "10")
    order = make_order(session, people["seller"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, people["keeper"], order, "release")
    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None
    facts.ready_at = at(FRIDAY, 10)
    session.commit()
    return order


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), COMPANY_TIMEZONE)


def run(session: Session, day: dt.date) -> int:
    told = ageing.escalate(session, at(day, 8))
    session.commit()
    return told


def notices(session: Session, template: str) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.template == template)))


def level(session: Session, order: Order) -> int:
    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None
    session.refresh(facts)
    return facts.ageing_level


def test_weekends_do_not_count_and_the_salesperson_is_told_once_after_five_working_days(
    session: Session, ready_order: Order, people: dict[str, User]
) -> None:
    # Thursday: six calendar days, but only four working days (Mon–Thu) since Friday.
    assert run(session, FRIDAY + dt.timedelta(days=6)) == 0
    assert notices(session, "logistics.ageing_sales") == []
    # Friday after: five working days.
    assert run(session, FRIDAY + dt.timedelta(days=7)) == 1
    told = notices(session, "logistics.ageing_sales")
    assert [n.user_id for n in told] == [people["seller"].id]
    assert "5" in told[0].subject
    assert level(session, ready_order) == 1
    # The next runs tell nobody again.
    assert run(session, FRIDAY + dt.timedelta(days=7)) == 0
    assert run(session, FRIDAY + dt.timedelta(days=10)) == 0
    assert len(notices(session, "logistics.ageing_sales")) == 1


def test_a_holiday_does_not_count_either(
    session: Session, ready_order: Order, people: dict[str, User], seed: dict[str, Any]
) -> None:
    session.add(CalendarDay(company_id=seed["hq"].company_id, day=FRIDAY + dt.timedelta(days=3), kind="holiday"))
    session.commit()
    assert run(session, FRIDAY + dt.timedelta(days=7)) == 0  # Monday was a holiday: four working days
    assert run(session, FRIDAY + dt.timedelta(days=10)) == 1


def test_abnormal_stock_tells_the_sales_manager_and_a_month_the_general_manager(
    session: Session, ready_order: Order, people: dict[str, User]
) -> None:
    run(session, FRIDAY + dt.timedelta(days=7))  # 5 working days: sales
    assert run(session, FRIDAY + dt.timedelta(days=13)) == 0  # Thursday: 9 working days
    assert run(session, FRIDAY + dt.timedelta(days=14)) == 1  # 10 working days
    abnormal = notices(session, "logistics.ageing_abnormal")
    assert [n.user_id for n in abnormal] == [people["manager"].id]
    assert level(session, ready_order) == 2
    # 22 working days: Friday + 4 weeks is 20, two more working days is Tuesday.
    assert run(session, FRIDAY + dt.timedelta(days=28 + 3)) == 0
    assert run(session, FRIDAY + dt.timedelta(days=28 + 4)) == 1
    assert [n.user_id for n in notices(session, "logistics.ageing_general_manager")] == [people["gm"].id]
    assert level(session, ready_order) == 3
    assert run(session, FRIDAY + dt.timedelta(days=60)) == 0
    assert len(notices(session, "logistics.ageing_sales")) == 1
    assert len(notices(session, "logistics.ageing_abnormal")) == 1


def test_an_order_found_past_every_threshold_gets_only_the_highest_notice(
    session: Session, ready_order: Order, people: dict[str, User]
) -> None:
    assert run(session, FRIDAY + dt.timedelta(days=45)) == 1
    assert notices(session, "logistics.ageing_sales") == []
    assert notices(session, "logistics.ageing_abnormal") == []
    assert [n.user_id for n in notices(session, "logistics.ageing_general_manager")] == [people["gm"].id]
    assert level(session, ready_order) == 3
    assert run(session, FRIDAY + dt.timedelta(days=46)) == 0


def test_shipped_goods_age_no_more_and_levels_never_go_back(
    session: Session, ready_order: Order, people: dict[str, User]
) -> None:
    run(session, FRIDAY + dt.timedelta(days=7))
    assert level(session, ready_order) == 1
    shipment = shipping.plan_shipment(session, people["keeper"], ready_order)
    shipping.ship(session, people["keeper"], shipment.id)
    session.commit()
    assert run(session, FRIDAY + dt.timedelta(days=45)) == 0
    assert notices(session, "logistics.ageing_general_manager") == []
    assert level(session, ready_order) == 1


def test_lowering_the_settings_does_not_lower_the_level(
    session: Session, ready_order: Order, people: dict[str, User]
) -> None:
    from core.settings import set_setting

    run(session, FRIDAY + dt.timedelta(days=14))  # level 2
    set_setting(session, "logistics.ageing.sales_days", 20)
    set_setting(session, "logistics.ageing.abnormal_days", 30)
    set_setting(session, "logistics.ageing.general_manager_days", 40)
    session.commit()
    assert run(session, FRIDAY + dt.timedelta(days=15)) == 0
    assert level(session, ready_order) == 2


def test_the_ageing_list_uses_working_days_and_the_data_scope(
    session: Session, ready_order: Order, people: dict[str, User], seed: dict[str, Any]
) -> None:
    rows = ageing.ageing_list(session, people["manager"], today=FRIDAY + dt.timedelta(days=14))
    assert [(r.order.id, r.days, r.level, r.notified) for r in rows] == [(ready_order.id, 10, 2, 0)]
    other_branch = make_user(session, "cd.manager@example.com", ["sales_manager"], branch=seed["cd"])
    assert ageing.ageing_list(session, other_branch, today=FRIDAY + dt.timedelta(days=14)) == []
    with pytest.raises(LogisticsError) as refused:
        ageing.ageing_list(session, people["seller"])
    assert refused.value.status == 403


def test_the_unshipped_goods_screen(client: Any, session: Session, ready_order: Order, people: dict[str, User]) -> None:
    login(client, "manager@example.com", PASSWORD)
    page = client.get("/logistics/ageing")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-order="{ready_order.number}"' in html
    assert client.get("/logistics/ageing?level=3").get_data(as_text=True).count(ready_order.number) == 0
    login(client, "seller@example.com", PASSWORD)
    assert client.get("/logistics/ageing").status_code == 403


def test_the_job_is_registered_daily(state: Any) -> None:
    job = next(job for job in state.registry.jobs.values() if job.name == "logistics.ageing")
    assert job.schedule == "daily:08:30"

"""The dashboard's rollups (KP-1): the same figures as live, within every data scope, read fast.

A few hundred generated orders over three months give every plugin's metrics facts;
complaints without an order give customer-level facts. After :func:`rollups.refresh`,
each metric's rolled-up value for each period equals :func:`engine.measure` for the
administrator, branch managers, a department head and salespeople (own orders), so a
rollup never shows anyone a figure their scope would not. Stale rollups, custom periods
and scopes the rollups cannot express (customer portal) fall back to live figures; the
dashboard and the API say how old rolled-up figures are and compute live on request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import company_now
from core.models import Customer, Order, Role, RolePermission
from core.settings import session_registry, set_setting
from core.testing import PASSWORD, ApiCaller, login, make_order, make_user, token_for
from plugins.kpi import flow, periods, rollups
from plugins.kpi.engine import EVERYONE, collect_metrics, measure
from plugins.kpi.history import generate
from plugins.kpi.models import KpiComplaint, KpiRollup, KpiRollupPeriod

pytestmark = pytest.mark.req("KP-1")

CENT = Decimal("0.01")


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["intake", "review", "logistics", "billing", "kpi"]


@pytest.fixture
def viewers(session: Session, seed: dict[str, Any], admin: Any) -> dict[str, Any]:
    """People with every kind of data scope, customers with a branch and an owner."""
    head = Role(code="dept_head", name="Department head", data_scope="department")
    head.permissions = [RolePermission(code="orders.read"), RolePermission(code=flow.DASHBOARD_READ)]
    session.add(head)
    session.commit()
    found = {
        "admin": admin,
        "hq_manager": make_user(session, "hq-sm@example.com", ["sales_manager"], branch=seed["hq"]),
        "cd_manager": make_user(session, "cd-sm@example.com", ["sales_manager"], branch=seed["cd"]),
        "hq_seller": make_user(
            session, "hq-s@example.com", ["sales"], branch=seed["hq"], department=seed["sales_dept"]
        ),
        "cd_seller": make_user(session, "cd-s@example.com", ["sales"], branch=seed["cd"]),
        "head": make_user(session, "head@example.com", ["dept_head"], branch=seed["hq"], department=seed["sales_dept"]),
    }
    for customer, branch, owner in (
        (seed["local"], seed["hq"], found["hq_seller"]),
        (seed["remote"], seed["cd"], found["cd_seller"]),
    ):
        session.execute(
            update(Customer).where(Customer.id == customer.id).values(branch_id=branch.id, owner_id=owner.id)
        )
    session.commit()
    return found


@pytest.fixture
def history(session: Session, seed: dict[str, Any], viewers: dict[str, Any]) -> dt.date:
    """Three months of generated orders, and complaints without an order for both customers."""
    today = company_now().date()
    generate(session, orders=360, today=today, months=3, seed=11, batch=120)
    moment = company_now() - dt.timedelta(days=1)
    for index, customer in enumerate((seed["local"], seed["remote"], seed["remote"])):
        session.add(
            KpiComplaint(
                number=f"KS-T{index}",
                customer_id=customer.id,
                received_at=moment,
                description="Late answer",
                status="resolved",
                resolved_at=moment + dt.timedelta(hours=20),
            )
        )
    session.commit()
    return today


def checked_periods(today: dt.date) -> list[periods.Period]:
    return [
        *rollups.current_periods(today),
        periods.previous(periods.period_of("month", today)),
        periods.previous(periods.period_of("day", today)),
    ]


def rounded(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT)


def test_rolled_up_figures_equal_live_ones_in_every_data_scope(session, history, viewers):
    targets = checked_periods(history)
    stamps = rollups.refresh(session, targets)
    session.commit()
    metrics = collect_metrics(session_registry(session))
    assert len(metrics) >= 20 and {stamp.kind for stamp in stamps} == set(rollups.KINDS)
    assert all(set(stamp.metrics.split(",")) == set(metrics) for stamp in stamps)

    compared = nonzero = 0
    for period in targets:
        for name, viewer in [("everyone", EVERYONE), *viewers.items()]:
            found = rollups.stored(session, metrics, period, viewer=viewer)
            assert found is not None, (name, period)
            for key, metric in metrics.items():
                live = measure(session, metric, period, viewer=viewer)
                rolled = found.values[key]
                where = (name, period.kind, period.start, key)
                assert rounded(rolled.numerator) == rounded(live.numerator), where
                assert rounded(rolled.denominator) == rounded(live.denominator), where
                assert rolled.value == live.value, where
                compared += 1
                nonzero += bool(live.denominator or live.numerator)
    assert compared > 800 and nonzero > compared // 3  # real figures compared, not zeros

    # The scopes really differ: each branch manager sees a part of the company's orders.
    month = periods.previous(periods.period_of("month", history))
    count = metrics["orders.count"]
    company = rollups.stored(session, metrics, month, viewer=EVERYONE).values["orders.count"].value
    branches = [
        rollups.stored(session, metrics, month, viewer=viewers[name]).values["orders.count"].value
        for name in ("hq_manager", "cd_manager")
    ]
    assert all(0 < part < company for part in branches) and sum(branches) == company
    assert 0 < measure(session, count, month, viewer=viewers["hq_seller"]).value <= branches[0]


def test_customer_level_facts_follow_the_customer_scope(session, history, viewers, seed):
    yesterday = periods.previous(periods.period_of("day", history))
    rollups.refresh(session, [yesterday])
    session.commit()
    metrics = collect_metrics(session_registry(session))
    complaints = {
        name: rollups.stored(session, metrics, yesterday, viewer=viewers[name]).values["kpi.complaints"].value
        for name in ("admin", "hq_manager", "cd_manager", "hq_seller", "cd_seller")
    }
    assert complaints["admin"] >= 3
    assert complaints["hq_manager"] >= 1 and complaints["cd_manager"] >= 2  # the customers' branches
    assert complaints["cd_seller"] >= 2  # owner of the remote customer
    assert complaints["hq_manager"] + complaints["cd_manager"] <= complaints["admin"]


def test_a_portal_user_custom_periods_and_stale_rollups_are_computed_live(session, history, viewers, seed):
    month = periods.period_of("month", history)
    stamp = rollups.refresh(session, [month])[0]
    session.commit()
    metrics = collect_metrics(session_registry(session))
    portal = make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"])
    assert rollups.stored(session, metrics, month, viewer=portal) is None  # the rollups keep no customer id
    custom = periods.period(month.start, month.end)
    assert rollups.stored(session, metrics, custom, viewer=EVERYONE) is None

    max_age = dt.timedelta(minutes=30)
    assert rollups.is_fresh(stamp, stamp.computed_at + max_age, max_age)
    assert not rollups.is_fresh(stamp, stamp.computed_at + max_age + dt.timedelta(seconds=1), max_age)
    assert not rollups.is_fresh(stamp, stamp.computed_at, dt.timedelta(0))
    later = stamp.computed_at + dt.timedelta(hours=2)
    assert rollups.stored(session, metrics, month, viewer=EVERYONE, now=later) is None
    set_setting(session, flow.ROLLUP_MAX_AGE, 0)
    session.commit()
    assert rollups.stored(session, metrics, month, viewer=EVERYONE) is None


def test_a_past_period_computed_after_it_ended_stays_fresh_a_day_longer(session, history):
    month = periods.previous(periods.period_of("month", history))
    stamp = rollups.refresh(session, [month])[0]
    max_age = dt.timedelta(minutes=30)
    assert rollups.is_fresh(stamp, stamp.computed_at + dt.timedelta(hours=24, minutes=30), max_age)
    assert not rollups.is_fresh(stamp, stamp.computed_at + dt.timedelta(hours=24, minutes=31), max_age)


def test_refresh_replaces_the_rows_of_a_period_and_leaves_others(session, history):
    day, month = rollups.current_periods(history)[0], rollups.current_periods(history)[2]
    rollups.refresh(session, [day, month])
    session.commit()

    def rows(kind: str) -> int:
        return session.scalar(select(func.count()).select_from(KpiRollup).where(KpiRollup.kind == kind)) or 0

    before = rows("month"), rows("day")
    assert before[0] > 0
    rollups.refresh(session, [month])
    session.commit()
    assert (rows("month"), rows("day")) == before
    assert session.scalar(select(func.count()).select_from(KpiRollupPeriod)) == 2
    with pytest.raises(ValueError, match="rolled up"):
        rollups.refresh(session, [periods.period(month.start, month.end)])


def test_the_jobs_refresh_the_current_and_the_past_periods(session, history, state):
    now = dt.datetime.combine(history, dt.time(3, 0), company_now().tzinfo)
    names = {job.name for job in rollups.JOBS}
    assert names == {"kpi.refresh_rollups", "kpi.refresh_past_rollups"} and names <= set(state.registry.jobs)
    assert state.registry.jobs["kpi.refresh_rollups"].function is rollups.refresh_current
    rollups.refresh_current(session, now)
    rollups.refresh_past(session, now)
    session.commit()
    done = {(stamp.kind, stamp.start) for stamp in session.scalars(select(KpiRollupPeriod))}
    expected = {(p.kind, p.start) for p in [*rollups.current_periods(history), *rollups.past_periods(history)]}
    assert done == expected
    assert len([kind for kind, _ in done if kind == "month"]) == rollups.PAST_MONTHS + 1


def test_the_dashboard_shows_rolled_up_figures_with_their_age_and_computes_live_on_request(
    session, history, seed, client, viewers
):
    month = periods.period_of("month", history)
    rollups.refresh(session, [month])
    session.commit()
    gm = make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    before = measure(session, collect_metrics(session_registry(session))["orders.count"], month, viewer=gm).value
    # A new order after the rollup: the rolled-up dashboard does not count it yet, live does.
    order = make_order(session, viewers["admin"], customer="C001")
    session.execute(update(Order).where(Order.id == order.id).values(status="submitted"))
    session.commit()

    login(client, gm.email, PASSWORD)
    args = f"period=month&date={month.start.isoformat()}"
    page = client.get(f"/kpi/?{args}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="kpi-rolled-up"' in html and 'id="kpi-compute-now"' in html
    assert _tile_value(html, "orders.count") == before

    live = client.get(f"/kpi/?{args}&live=1").get_data(as_text=True)
    assert 'id="kpi-computed-live"' in live and 'id="kpi-rolled-up"' not in live
    assert _tile_value(live, "orders.count") == before + 1

    token = token_for(session, gm)
    api = ApiCaller(client, token)
    rolled = api.get(f"/api/v1/kpi/metrics?{args}").json
    assert rolled["computed_at"] is not None
    assert _api_value(rolled, "orders.count") == before
    fresh = api.get(f"/api/v1/kpi/metrics?{args}&live=true").json
    assert fresh["computed_at"] is None and _api_value(fresh, "orders.count") == before + 1
    assert api.get(f"/api/v1/kpi/metrics?{args}&live=maybe").status_code == 422


def _tile_value(html: str, key: str) -> Decimal:
    start = html.index(f'data-metric="{key}"')
    marker = 'data-value="'
    at = html.index(marker, start) + len(marker)
    return Decimal(html[at : html.index('"', at)])


def _api_value(body: dict[str, Any], key: str) -> Decimal:
    item = next(item for item in body["items"] if item["key"] == key)
    return Decimal(str(item["value"]))

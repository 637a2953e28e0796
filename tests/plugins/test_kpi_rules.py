"""Reward and alert rules evaluated monthly (KP-2), against hand-placed orders over four months.

Orders received (``orders.count``, a sum) per branch, June–September 2025:

=========  ====  ====  ====  ====
branch     Jun   Jul   Aug   Sep
=========  ====  ====  ====  ====
HQ         1     2     2     2
CD         2     2     —     3
company    3     4     2     5
=========  ====  ====  ====  ====

- reward "at least 2 orders three months running", each branch: September → HQ only
  (CD has no order in August: the gap breaks its run); August → nobody (HQ had 1 in June).
- alert "fewer than 5 orders two months running", company: August (4, 2) matches,
  September (2, 5) does not.
- cycle time (a mean: no completion = no value): completions in June and August only, so
  an alert "cycle time above 1 day two months running" never matches — July is a gap.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import func, select, update

from core.clock import COMPANY_TIMEZONE
from core.models import AuditLog, Notification, Order, OrderTransition
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_order, make_user, token_for
from plugins.kpi import rules
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiRule, KpiRuleResult

pytestmark = pytest.mark.req("KP-2")

JUN, JUL, AUG, SEP = (dt.date(2025, m, 1) for m in (6, 7, 8, 9))
COUNTS = {"hq": {6: 1, 7: 2, 8: 2, 9: 2}, "cd": {6: 2, 7: 2, 9: 3}}


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, tzinfo=COMPANY_TIMEZONE)


@pytest.fixture
def gm(session, seed):
    return make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])


@pytest.fixture
def months(session, seed, admin):
    """The orders of the table above (submitted, with their branch and creation date)."""
    orders: dict[str, list[Order]] = {"hq": [], "cd": []}
    for branch, per_month in COUNTS.items():
        for month, count in per_month.items():
            for n in range(count):
                order = make_order(session, admin, customer="C001")
                session.execute(
                    update(Order)
                    .where(Order.id == order.id)
                    .values(created_at=at(month, 5 + n), status="submitted", branch_id=seed[branch].id)
                )
                orders[branch].append(order)
    session.commit()
    return orders


def rule(session, actor, **data: Any) -> KpiRule:
    made = rules.create_rule(session, actor, data)
    session.commit()
    return made


@pytest.fixture
def reward(session, gm, months):
    return rule(
        session,
        gm,
        name="至少 2 单连续三个月",
        kind="reward",
        metric="orders.count",
        comparison=">=",
        threshold="2",
        months=3,
        subject="branch",
    )


@pytest.fixture
def alert(session, gm, months):
    return rule(
        session,
        gm,
        name="订单少于 5 单连续两个月",
        kind="alert",
        metric="orders.count",
        comparison="<",
        threshold="5",
        months=2,
        subject="company",
    )


def found(results):
    return sorted((r.rule.kind, r.subject_kind, r.subject_name, r.values) for r in results)


def test_reward_three_months_running_finds_exactly_the_right_branch(session, seed, reward):
    results = rules.evaluate_month(session, SEP)
    session.commit()
    assert found(results) == [("reward", "branch", seed["hq"].name, "2,2,2")]
    assert results[0].subject_key == str(seed["hq"].id) and results[0].status == "open"
    # August: HQ had one order in June, CD none in August → nobody.
    assert rules.evaluate_month(session, AUG) == []


def test_a_month_without_data_breaks_the_run(session, seed, reward):
    """CD has 2, 2, —, 3: neither July–September nor June–August is a run."""
    assert all(r.subject_key != str(seed["cd"].id) for r in rules.evaluate_month(session, SEP))
    session.execute(update(KpiRule).where(KpiRule.id == reward.id).values(months=1))
    session.commit()
    names = {r.subject_name for r in rules.evaluate_month(session, SEP)}
    assert names == {seed["hq"].name, seed["cd"].name}  # one month: both have ≥ 2 in September


def test_alert_two_months_running_on_the_company(session, alert):
    august = rules.evaluate_month(session, AUG)
    assert found(august) == [("alert", "company", "", "4,2")]
    assert rules.evaluate_month(session, SEP) == []  # 2, then 5


def test_a_mean_metric_without_value_in_a_month_breaks_the_run(session, gm, months):
    hq = months["hq"]
    for order, (made, done) in zip(hq[:2], ((at(6, 5), at(6, 8)), (at(8, 5), at(8, 9))), strict=True):
        session.execute(update(Order).where(Order.id == order.id).values(created_at=made, status="completed"))
        session.add(
            OrderTransition(
                order_id=order.id,
                action="complete",
                from_step="confirmed",
                to_step="completed",
                from_status="confirmed",
                to_status="completed",
                at=done,
            )
        )
    session.commit()
    slow = rule(
        session,
        gm,
        name="周期超过 1 天",
        kind="alert",
        metric="orders.cycle_time",
        comparison=">",
        threshold="1",
        months=2,
        subject="company",
    )
    assert rules.evaluate_month(session, AUG) == []  # July has no completion
    session.execute(update(KpiRule).where(KpiRule.id == slow.id).values(months=1))
    assert found(rules.evaluate_month(session, AUG)) == [("alert", "company", "", "4.0")]


def test_evaluating_again_adds_nothing_and_tells_the_general_manager_once(session, gm, reward, alert):
    first = rules.evaluate_month(session, AUG) + rules.evaluate_month(session, SEP)
    session.commit()
    again = rules.evaluate_month(session, AUG) + rules.evaluate_month(session, SEP)
    session.commit()
    assert [r.id for r in again] == [r.id for r in first] and len(first) == 2
    assert session.scalar(select(func.count()).select_from(KpiRuleResult)) == 2
    notices = session.scalars(
        select(Notification).where(Notification.user_id == gm.id, Notification.template == "kpi.rule_results")
    ).all()
    assert sorted(n.subject for n in notices) == [
        "Monthly evaluation 2025-08: 0 rewards, 1 alerts",
        "Monthly evaluation 2025-09: 1 rewards, 0 alerts",
    ]


def test_inactive_rules_are_not_evaluated(session, gm, reward):
    rules.deactivate_rule(session, gm, reward.id)
    session.commit()
    assert rules.evaluate_month(session, SEP) == []


def test_the_job_evaluates_the_previous_month_on_the_first_days_only(session, reward):
    assert [job.name for job in rules.JOBS] == ["kpi.evaluate_rules"]
    assert rules.JOBS[0].schedule == "daily:06:00"
    assert rules.run(session, dt.datetime(2025, 10, 5, 6, tzinfo=COMPANY_TIMEZONE)) == []
    assert session.scalar(select(func.count()).select_from(KpiRuleResult)) == 0
    results = rules.run(session, dt.datetime(2025, 10, 1, 6, tzinfo=COMPANY_TIMEZONE))
    assert [r.month for r in results] == [SEP]
    assert rules.run(session, dt.datetime(2025, 10, 3, 6, tzinfo=COMPANY_TIMEZONE)) == results


def test_bad_rules_are_refused_with_nothing_changed(session, gm, seed):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    good = {"name": "x", "kind": "reward", "metric": "orders.count", "comparison": ">=", "threshold": "1"}
    with pytest.raises(KpiError) as bad:
        rules.create_rule(
            session,
            gm,
            {**good, "kind": "bonus", "comparison": "=", "threshold": "many", "months": 13, "subject": "team"},
        )
    assert bad.value.status == 422
    assert set(bad.value.details) == {"kind", "comparison", "threshold", "months", "subject"}
    with pytest.raises(KpiError) as missing:
        rules.create_rule(session, gm, {**good, "metric": "nobody.nothing"})
    assert missing.value.status == 404
    with pytest.raises(KpiError) as forbidden:
        rules.create_rule(session, clerk, good)
    assert forbidden.value.status == 403
    with pytest.raises(KpiError) as unknown:
        rules.create_rule(session, gm, {**good, "colour": "red"})
    assert unknown.value.details == {"colour": ["Unknown field."]}
    session.rollback()
    assert session.scalar(select(func.count()).select_from(KpiRule)) == 0
    made = rules.create_rule(session, gm, good)
    with pytest.raises(KpiError):
        rules.update_rule(session, gm, made.id, {"months": 0})
    assert made.months == 1
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == "kpi_rule")) == 1


def test_mark_done_once_with_a_note(session, gm, reward, seed):
    result = rules.evaluate_month(session, SEP)[0]
    session.commit()
    rules.mark_done(session, gm, result.id, "月度例会表彰")
    session.commit()
    assert (result.status, result.note, result.done_by_id) == ("done", "月度例会表彰", gm.id)
    with pytest.raises(KpiError) as twice:
        rules.mark_done(session, gm, result.id, "again")
    assert twice.value.status == 409
    other = make_user(session, "cd-sm@example.com", ["sales_manager"], branch=seed["cd"])
    with pytest.raises(KpiError) as hidden:  # HQ's result is out of a CD manager's scope
        rules.mark_done(session, other, result.id, "")
    assert hidden.value.status == 404
    assert rules.month_results(session, other, SEP) == []
    mine = make_user(session, "hq-sm@example.com", ["sales_manager"], branch=seed["hq"])
    assert [r.id for r in rules.month_results(session, mine, SEP)] == [result.id]


def test_rule_screens_create_evaluate_mark_done_and_export(client, session, gm, months, seed):
    login(client, gm.email, PASSWORD)
    page = client.get("/kpi/rules")
    assert page.status_code == 200 and "rule-form" in page.get_data(as_text=True)
    token = csrf_token(client, "/kpi/rules")
    refused = client.post(
        "/kpi/rules",
        data={
            "csrf_token": token,
            "name": "x",
            "kind": "reward",
            "metric": "orders.count",
            "comparison": ">=",
            "threshold": "abc",
            "months": "3",
            "subject": "branch",
        },
    )
    assert refused.status_code == 422 and "Not a number." in refused.get_data(as_text=True)
    made = client.post(
        "/kpi/rules",
        data={
            "csrf_token": token,
            "name": "连续三个月",
            "kind": "reward",
            "metric": "orders.count",
            "comparison": ">=",
            "threshold": "2",
            "months": "3",
            "subject": "branch",
        },
        follow_redirects=True,
    )
    assert made.status_code == 200 and "连续三个月" in made.get_data(as_text=True)
    rule_id = session.scalar(select(KpiRule.id))
    assert client.get(f"/kpi/rules/{rule_id}/edit").status_code == 200
    evaluated = client.post(
        "/kpi/rules/evaluate", data={"csrf_token": token, "month": "2025-09"}, follow_redirects=True
    )
    body = evaluated.get_data(as_text=True)
    assert evaluated.status_code == 200 and seed["hq"].name in body and "2 · 2 · 2" in body
    assert "data-confirm" in client.get("/kpi/rules/results?month=2025-09").get_data(as_text=True)
    session.rollback()
    result_id = session.scalar(select(KpiRuleResult.id))
    assert result_id is not None
    done = client.post(
        f"/kpi/rules/results/{result_id}/done", data={"csrf_token": token, "note": "已表彰"}, follow_redirects=True
    )
    assert done.status_code == 200 and "已表彰" in done.get_data(as_text=True)
    exported = client.get("/kpi/rules/results/export.csv?month=2025-09")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][2] == "连续三个月" and rows[1][4] == seed["hq"].name and rows[1][5] == "2,2,2"
    assert client.get("/kpi/rules/results/export.xlsx?month=2025-09").status_code == 200
    deactivated = client.post(f"/kpi/rules/{rule_id}/deactivate", data={"csrf_token": token})
    assert deactivated.status_code == 302
    session.rollback()
    assert session.get(KpiRule, rule_id).active is False


def test_rule_screens_need_their_permissions(client, session, seed):
    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["hq"])
    login(client, seller.email, PASSWORD)
    assert client.get("/kpi/rules").status_code == 403
    assert client.get("/kpi/rules/results").status_code == 403


def test_rules_api(client, session, gm, months, seed):
    api = ApiCaller(client, token_for(session, gm))
    created = api.post(
        "/api/v1/kpi/rules",
        json={
            "name": "连续两个月少于 5 单",
            "kind": "alert",
            "metric": "orders.count",
            "comparison": "<",
            "threshold": "5",
            "months": 2,
        },
    )
    assert created.status_code == 201, created.get_json()
    rule_id = created.get_json()["id"]
    bad = api.post(
        "/api/v1/kpi/rules",
        json={"name": "x", "kind": "alert", "metric": "orders.count", "comparison": "<", "threshold": "x"},
    )
    assert bad.status_code == 422 and "threshold" in bad.get_json()["error"]["details"]
    assert (
        api.post(
            "/api/v1/kpi/rules",
            json={"name": "x", "kind": "alert", "metric": "no.such", "comparison": "<", "threshold": "1"},
        ).status_code
        == 404
    )
    patched = api.patch(f"/api/v1/kpi/rules/{rule_id}", json={"note": "财务跟进"})
    assert patched.status_code == 200 and patched.get_json()["note"] == "财务跟进"
    assert api.get("/api/v1/kpi/rules").get_json()["items"][0]["id"] == rule_id
    evaluated = api.post("/api/v1/kpi/evaluations", json={"month": "2025-08"})
    assert evaluated.status_code == 200
    items = evaluated.get_json()["items"]
    assert [(i["subject_kind"], i["values"]) for i in items] == [("company", ["4", "2"])]
    assert api.post("/api/v1/kpi/evaluations", json={"month": "2025-8x"}).status_code == 422
    listed = api.get("/api/v1/kpi/rule-results?month=2025-08").get_json()
    assert [i["id"] for i in listed["items"]] == [items[0]["id"]]
    done = api.post(f"/api/v1/kpi/rule-results/{items[0]['id']}/done", json={"note": "已跟进"})
    assert done.status_code == 200 and done.get_json()["status"] == "done"
    assert api.post(f"/api/v1/kpi/rule-results/{items[0]['id']}/done", json={}).status_code == 409
    assert api.post("/api/v1/kpi/rule-results/999999/done", json={}).status_code == 404
    seller = ApiCaller(client, token_for(session, make_user(session, "s@example.com", ["sales"], branch=seed["hq"])))
    assert seller.get("/api/v1/kpi/rule-results").status_code == 403
    assert seller.post("/api/v1/kpi/evaluations", json={"month": "2025-08"}).status_code == 403


def test_demo_rules_can_be_created_by_the_system(session, months):
    made = rules.create_rule(
        session,
        None,
        {
            "name": "回款率连续两个月低于 80%",
            "kind": "alert",
            "metric": "orders.count",
            "comparison": "<",
            "threshold": "80",
            "months": 2,
            "subject": "company",
        },
    )
    assert made.created_by_id is None and made.id

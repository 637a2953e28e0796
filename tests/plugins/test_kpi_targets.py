"""Targets per metric for the company, a branch or a department (KP-2).

``orders.cycle_time`` has the default target 10 (days). The most specific stored row
applies: branch + department, branch, department, company, default.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.models import AuditLog, Role
from core.settings import session_registry
from core.testing import PASSWORD, ApiCaller, csrf_token, login, make_user, token_for
from plugins.kpi import targets
from plugins.kpi.engine import EVERYONE, get_metric
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiTarget

pytestmark = pytest.mark.req("KP-2")

KEY = "orders.cycle_time"


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


@pytest.fixture
def gm(session, seed):
    return make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])


@pytest.fixture
def metric(session):
    return get_metric(session_registry(session), KEY)


def stored(session) -> list[tuple]:
    rows = session.scalars(select(KpiTarget).order_by(KpiTarget.id)).all()
    return [(t.metric, t.branch_id, t.department_id, t.value) for t in rows]


def test_the_most_specific_target_applies(session, gm, seed, metric):
    hq, cd, sales = seed["hq"].id, seed["cd"].id, seed["sales_dept"].id
    assert targets.effective_target(session, metric) == Decimal("10")  # the default
    targets.set_target(session, gm, KEY, "8", branch_id=None)
    targets.set_target(session, gm, KEY, "6.5", branch_id=cd)
    targets.set_target(session, gm, KEY, "7", department_id=sales)
    targets.set_target(session, gm, KEY, "5", branch_id=cd, department_id=sales)
    session.commit()
    assert targets.effective_target(session, metric) == Decimal("8")
    assert targets.effective_target(session, metric, branch_id=hq) == Decimal("8")
    assert targets.effective_target(session, metric, branch_id=cd) == Decimal("6.5")
    assert targets.effective_target(session, metric, department_id=sales) == Decimal("7")
    assert targets.effective_target(session, metric, branch_id=hq, department_id=sales) == Decimal("7")
    assert targets.effective_target(session, metric, branch_id=cd, department_id=sales) == Decimal("5")
    other = get_metric(session_registry(session), "orders.count")
    assert targets.effective_target(session, other, branch_id=cd) is None  # no default, no row


def test_one_row_per_place_is_updated_in_place_and_audited(session, gm, seed):
    first = targets.set_target(session, gm, KEY, "9", branch_id=seed["cd"].id)
    again = targets.set_target(session, gm, KEY, " 7.25 ", branch_id=str(seed["cd"].id))
    session.commit()
    assert again.id == first.id
    assert stored(session) == [(KEY, seed["cd"].id, None, Decimal("7.2500"))]
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.entity == "kpi_target").order_by(AuditLog.id)
    ).all()
    assert actions == ["create", "update"]
    targets.clear_target(session, gm, first.id)
    session.commit()
    assert stored(session) == []


def test_viewer_target_follows_the_data_scope(session, gm, seed, metric):
    targets.set_target(session, gm, KEY, "8")
    targets.set_target(session, gm, KEY, "6", branch_id=seed["cd"].id)
    targets.set_target(session, gm, KEY, "7", department_id=seed["sales_dept"].id)
    head = Role(code="dept_head", name="Department head", data_scope="department")
    session.add(head)
    session.commit()
    cd_manager = make_user(session, "cd-sm@example.com", ["sales_manager"], branch=seed["cd"])
    seller = make_user(session, "seller@example.com", ["sales"], branch=seed["cd"])
    department = make_user(session, "head@example.com", ["dept_head"], branch=seed["cd"], department=seed["sales_dept"])
    assert targets.viewer_target(session, metric, cd_manager) == Decimal("6")  # branch scope
    assert targets.viewer_target(session, metric, department) == Decimal("7")  # department scope
    assert targets.viewer_target(session, metric, gm) == Decimal("8")  # all
    assert targets.viewer_target(session, metric, seller) == Decimal("8")  # own orders: the company's
    assert targets.viewer_target(session, metric, EVERYONE) == Decimal("8")


def test_a_target_that_is_not_a_number_is_refused_and_nothing_changes(session, gm, seed):
    targets.set_target(session, gm, KEY, "8")
    session.commit()
    for bad in ("abc", "", "NaN", "Infinity", "1e20"):
        with pytest.raises(KpiError) as refused:
            targets.set_target(session, gm, KEY, bad)
        assert refused.value.status == 422 and refused.value.details == {"value": ["Not a number."]}
    assert "is not a number" in refused.value.message
    session.rollback()
    assert stored(session) == [(KEY, None, None, Decimal("8.0000"))]
    assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == "kpi_target")) == 1


def test_unknown_metric_place_or_permission_is_refused(session, gm, seed):
    with pytest.raises(KpiError) as metric:
        targets.set_target(session, gm, "nobody.nothing", "1")
    assert metric.value.status == 404
    with pytest.raises(KpiError) as branch:
        targets.set_target(session, gm, KEY, "1", branch_id=999999)
    assert branch.value.status == 422 and "branch_id" in branch.value.details
    with pytest.raises(KpiError) as department:
        targets.set_target(session, gm, KEY, "1", department_id=999999)
    assert department.value.status == 422 and "department_id" in department.value.details
    manager = make_user(session, "sm@example.com", ["sales_manager"], branch=seed["hq"])
    with pytest.raises(KpiError) as forbidden:
        targets.set_target(session, manager, KEY, "1")
    assert forbidden.value.status == 403
    with pytest.raises(KpiError) as gone:
        targets.clear_target(session, gm, 999999)
    assert gone.value.status == 404
    session.rollback()
    assert stored(session) == []


def test_targets_table_lists_every_metric_with_its_overrides(session, gm, seed):
    targets.set_target(session, gm, KEY, "8")
    targets.set_target(session, gm, KEY, "6", branch_id=seed["cd"].id, department_id=seed["sales_dept"].id)
    session.commit()
    table = {row.metric.key: row for row in targets.targets_table(session, session_registry(session))}
    assert {"orders.count", "orders.value", KEY} <= set(table)
    cycle = table[KEY]
    assert (cycle.default, cycle.effective) == (Decimal("10"), Decimal("8"))
    assert [(name, t.value) for name, t in cycle.overrides] == [
        (f"{seed['cd'].name} / {seed['sales_dept'].name}", Decimal("6"))
    ]
    assert table["orders.count"].company is None and table["orders.count"].effective is None


def test_targets_screen_sets_refuses_and_removes(client, session, gm, seed):
    login(client, gm.email, PASSWORD)
    page = client.get("/kpi/targets")
    assert page.status_code == 200 and "target-form" in page.get_data(as_text=True)
    token = csrf_token(client, "/kpi/targets")
    refused = client.post("/kpi/targets", data={"csrf_token": token, "metric": KEY, "value": "fast"})
    assert refused.status_code == 422 and "Not a number." in refused.get_data(as_text=True)
    session.rollback()
    assert stored(session) == []
    saved = client.post(
        "/kpi/targets",
        data={"csrf_token": token, "metric": KEY, "branch_id": str(seed["cd"].id), "value": "6"},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and seed["cd"].name in saved.get_data(as_text=True)
    session.rollback()
    target_id = session.scalar(select(KpiTarget.id))
    assert "data-confirm" in saved.get_data(as_text=True)
    removed = client.post(f"/kpi/targets/{target_id}/delete", data={"csrf_token": token})
    assert removed.status_code == 302
    session.rollback()
    assert stored(session) == []


def test_readers_see_targets_but_cannot_change_them(client, session, seed):
    manager = make_user(session, "sm@example.com", ["sales_manager"], branch=seed["hq"])
    login(client, manager.email, PASSWORD)
    page = client.get("/kpi/targets")
    assert page.status_code == 200 and "target-form" not in page.get_data(as_text=True)
    token = csrf_token(client, "/kpi/targets")
    assert client.post("/kpi/targets", data={"csrf_token": token, "metric": KEY, "value": "1"}).status_code == 403
    session.rollback()
    assert stored(session) == []


def test_targets_api(client, session, gm, seed):
    api = ApiCaller(client, token_for(session, gm))
    put = api.call("PUT", "/api/v1/kpi/targets", json={"metric": KEY, "branch_id": seed["cd"].id, "value": "6"})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["value"] == "6.0000"
    target_id = put.get_json()["id"]
    listed = {i["metric"]: i for i in api.get("/api/v1/kpi/targets").get_json()["items"]}
    assert listed[KEY]["default"] == "10" and [t["id"] for t in listed[KEY]["targets"]] == [target_id]
    bad = api.call("PUT", "/api/v1/kpi/targets", json={"metric": KEY, "value": "soon"})
    assert bad.status_code == 422 and bad.get_json()["error"]["details"] == {"value": ["Not a number."]}
    assert api.call("PUT", "/api/v1/kpi/targets", json={"metric": "no.such", "value": "1"}).status_code == 404
    assert api.call("PUT", "/api/v1/kpi/targets", json={"metric": KEY, "value": "1", "x": 1}).status_code == 422
    seller = ApiCaller(client, token_for(session, make_user(session, "s@example.com", ["sales"], branch=seed["hq"])))
    assert seller.get("/api/v1/kpi/targets").status_code == 200
    assert seller.call("PUT", "/api/v1/kpi/targets", json={"metric": KEY, "value": "1"}).status_code == 403
    assert seller.delete(f"/api/v1/kpi/targets/{target_id}").status_code == 403
    assert api.delete(f"/api/v1/kpi/targets/{target_id}").status_code == 204
    assert api.delete(f"/api/v1/kpi/targets/{target_id}").status_code == 404
    session.rollback()
    assert stored(session) == []

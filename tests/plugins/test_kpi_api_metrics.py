"""The metrics API (KP-1): list, detail with trend, breakdown, drill-down; scope; refusals.

Same hand-computed October as test_kpi_dashboard.py: A (C001, branch CD, completed after 3
days), B (C002, HQ, 7.5 days), C (C001, HQ, open): ``orders.count`` 3 (CD: 1),
``orders.cycle_time`` 5.3 days (CD: 3.0).
"""

from __future__ import annotations

import pytest
from test_kpi_dashboard import at, place

from core.testing import ApiCaller, make_order, make_user, token_for

pytestmark = pytest.mark.req("KP-1")

OCTOBER = "period=month&date=2026-10-15"


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


@pytest.fixture
def october(session, seed, admin):
    """A (CD), B and C (HQ) received in October; A and B completed."""
    a = make_order(session, admin, customer="C001")
    b = make_order(session, admin, customer="C002")
    c = make_order(session, admin, customer="C001")
    place(session, a, at(1), seed["cd"], completed=at(4))
    place(session, b, at(10), seed["hq"], completed=at(17, 22))
    place(session, c, at(31, 23), seed["hq"])
    gm = make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    boss = make_user(session, "cdboss@example.com", ["sales_manager"], branch=seed["cd"])
    nobody = make_user(session, "nobody@example.com", [], branch=seed["hq"])
    session.commit()
    return {"a": a, "b": b, "c": c, "gm": gm, "boss": boss, "nobody": nobody}


def caller(client, session, user):
    return ApiCaller(client, token_for(session, user))


def test_list_metrics_with_values_targets_and_marks(client, session, october):
    api = caller(client, session, october["gm"])
    response = api.get(f"/api/v1/kpi/metrics?{OCTOBER}")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["period"] == {"kind": "month", "start": "2026-10-01", "end": "2026-10-31", "label": "2026-10"}
    items = {item["key"]: item for item in body["items"]}
    count, cycle = items["orders.count"], items["orders.cycle_time"]
    assert (count["value"], count["numerator"], count["denominator"]) == ("3", "3", "3")
    assert count["unit"] == "count" and count["aggregate"] == "sum" and count["plugin"] == "kpi"
    assert {"key": "branch", "label": "Branch"} in count["dimensions"]
    assert (cycle["value"], cycle["target"], cycle["mark"], cycle["direction"]) == ("5.3", "10", "green", "lower")
    assert count["target"] is None and count["mark"] is None


def test_metric_detail_has_trend_and_filters(client, session, october, seed):
    api = caller(client, session, october["gm"])
    body = api.get(f"/api/v1/kpi/metrics/orders.count?{OCTOBER}&customer={seed['local'].id}").json
    assert body["value"] == "2" and body["filters"] == {"customer": str(seed["local"].id)}
    assert len(body["trend"]) == 12
    assert body["trend"][-1]["period"]["start"] == "2026-10-01" and body["trend"][-1]["value"] == "2"
    assert body["trend"][-2]["value"] == "0"
    custom = api.get("/api/v1/kpi/metrics/orders.cycle_time?period=custom&start=2026-10-15&end=2026-10-20").json
    assert custom["value"] == "7.5" and custom["trend"][-2]["period"]["end"] == "2026-10-14"


def test_breakdown_and_orders(client, session, october, seed):
    api = caller(client, session, october["gm"])
    body = api.get(f"/api/v1/kpi/metrics/orders.count/breakdown?{OCTOBER}&dimension=branch").json
    assert {(p["key"], p["name"], p["value"]) for p in body["parts"]} == {
        (str(seed["hq"].id), seed["hq"].name, "2"),
        (str(seed["cd"].id), seed["cd"].name, "1"),
    }
    assert body["parts"][0]["key"] == str(seed["hq"].id)  # largest denominator first
    orders = api.get(f"/api/v1/kpi/metrics/orders.cycle_time/orders?{OCTOBER}&problems=true").json
    assert orders["total"] == 2 and [o["number"] for o in orders["items"]] == [october["b"].number, october["a"].number]
    assert orders["items"][0]["value"] == "7.5"
    paged = api.get(f"/api/v1/kpi/metrics/orders.count/orders?{OCTOBER}&size=2&page=2").json
    assert (paged["total"], len(paged["items"]), paged["page"]) == (3, 1, 2)
    assert paged["items"][0]["number"] == october["a"].number  # newest id first: c, b | a


def test_branch_manager_token_sees_only_the_branch(client, session, october, seed):
    api = caller(client, session, october["boss"])
    items = {i["key"]: i for i in api.get(f"/api/v1/kpi/metrics?{OCTOBER}").json["items"]}
    assert items["orders.count"]["value"] == "1" and items["orders.cycle_time"]["value"] == "3.0"
    parts = api.get(f"/api/v1/kpi/metrics/orders.count/breakdown?{OCTOBER}&dimension=branch").json["parts"]
    assert [p["key"] for p in parts] == [str(seed["cd"].id)]
    orders = api.get(f"/api/v1/kpi/metrics/orders.count/orders?{OCTOBER}").json
    assert [o["number"] for o in orders["items"]] == [october["a"].number]
    hq = api.get(f"/api/v1/kpi/metrics/orders.count?{OCTOBER}&branch={seed['hq'].id}").json
    assert hq["value"] == "0"


def test_refusals(client, session, october):
    api = caller(client, session, october["gm"])
    missing = api.get("/api/v1/kpi/metrics/nobody.nothing")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert api.get("/api/v1/kpi/metrics/nobody.nothing/orders").status_code == 404
    reversed_ = api.get("/api/v1/kpi/metrics?period=custom&start=2026-10-10&end=2026-10-01")
    assert reversed_.status_code == 422
    assert reversed_.json["error"]["details"] == {"end": ["The end of the period must not be before its start."]}
    assert api.get("/api/v1/kpi/metrics?period=fortnight").status_code == 422
    assert api.get("/api/v1/kpi/metrics/orders.count?date=someday").status_code == 422
    bad_dimension = api.get(f"/api/v1/kpi/metrics/orders.count/breakdown?{OCTOBER}&dimension=colour")
    assert bad_dimension.status_code == 422 and "dimension" in bad_dimension.json["error"]["details"]
    assert api.get(f"/api/v1/kpi/metrics/orders.count/breakdown?{OCTOBER}").status_code == 422  # no dimension
    bad_filter = api.get(f"/api/v1/kpi/metrics/orders.count?{OCTOBER}&colour=red")
    assert bad_filter.status_code == 422 and "colour" in bad_filter.json["error"]["details"]
    bad_value = api.get(f"/api/v1/kpi/metrics/orders.count?{OCTOBER}&customer=abc")
    assert bad_value.status_code == 422 and "customer" in bad_value.json["error"]["details"]
    assert api.get(f"/api/v1/kpi/metrics/orders.count/orders?{OCTOBER}&page=0").status_code == 422
    forbidden = caller(client, session, october["nobody"]).get(f"/api/v1/kpi/metrics?{OCTOBER}")
    assert forbidden.status_code == 403
    assert client.get("/api/v1/kpi/metrics").status_code == 401


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    for path in (
        "/api/v1/kpi/metrics",
        "/api/v1/kpi/metrics/{key}",
        "/api/v1/kpi/metrics/{key}/breakdown",
        "/api/v1/kpi/metrics/{key}/orders",
    ):
        assert "get" in paths[path], path
    assert any(tag["name"] == "kpi_api_metrics" and tag["description"] == "KPI: metrics." for tag in spec["tags"])

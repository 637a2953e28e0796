"""kpi's screens (KP-1): dashboard tiles, metric page, drill-down and exports, in the viewer's scope.

Hand-computed fixture (as in test_kpi_engine.py): in October 2026 three orders are
received — A (customer C001, branch CD, completed after 3 days), B (C002, HQ, completed
after 7.5 days) and C (C001, HQ, open) — plus a draft and a November order that do not
count. So ``orders.count`` is 3 for the company and 1 for CD; ``orders.cycle_time`` is
(3 + 7.5) / 2 = 5.25 → 5.3 days for the company and 3.0 for CD (target 10: green).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from core.clock import COMPANY_TIMEZONE
from core.models import Customer, Order, OrderTransition
from core.testing import PASSWORD, login, make_order, make_user
from plugins.kpi import charts, exports

pytestmark = pytest.mark.req("KP-1")

OCTOBER = "period=month&date=2026-10-15"


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(day: int, hour: int = 10, month: int = 10) -> dt.datetime:
    """A company-time instant in 2026."""
    return dt.datetime(2026, month, day, hour, tzinfo=COMPANY_TIMEZONE)


def place(session, order, created, branch, completed=None):
    """Submit ``order`` as created at ``created`` in ``branch`` (and completed at ``completed``)."""
    status = "completed" if completed else "submitted"
    session.execute(
        update(Order).where(Order.id == order.id).values(created_at=created, status=status, branch_id=branch.id)
    )
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
    """A (CD, done in 3 days), B (HQ, done in 7.5 days), C (HQ, open) in October; a draft; D in November."""
    a = make_order(session, admin, customer="C001")
    b = make_order(session, admin, customer="C002")
    c = make_order(session, admin, customer="C001")
    draft = make_order(session, admin, customer="C002")
    session.execute(update(Order).where(Order.id == draft.id).values(created_at=at(5), branch_id=seed["cd"].id))
    d = make_order(session, admin, customer="C001")
    place(session, a, at(1), seed["cd"], completed=at(4))
    place(session, b, at(10), seed["hq"], completed=at(17, 22))
    place(session, c, at(31, 23), seed["hq"])
    place(session, d, at(1, 0, month=11), seed["cd"])
    make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    make_user(session, "cdboss@example.com", ["sales_manager"], branch=seed["cd"])
    make_user(session, "cs-less@example.com", [], branch=seed["hq"])
    session.commit()
    return {k: (o.id, o.number) for k, o in {"a": a, "b": b, "c": c, "d": d, "draft": draft}.items()}


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Tree(HTMLParser):
    """A page parsed into an ElementTree (the standard library has no HTML DOM)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = ET.Element("document")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = ET.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        parent = self.stack[-1]
        if len(parent):
            parent[-1].tail = (parent[-1].tail or "") + data
        else:
            parent.text = (parent.text or "") + data


def page_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    tree = _Tree()
    tree.feed(response.get_data(as_text=True))
    return tree.root


def text(element):
    return " ".join("".join(element.itertext()).split())


def by_id(doc, ident):
    found = doc.find(f".//*[@id='{ident}']")
    assert found is not None, ident
    return found


def with_class(element, name):
    return [e for e in element.iter() if name in (e.get("class") or "").split()]


def tile(doc, key):
    found = doc.findall(f".//div[@data-metric='{key}']")
    assert len(found) == 1, key
    return found[0]


def value_of(element):
    return with_class(element, "kpi-value")[0].get("data-value")


def rows_of(doc, table):
    return doc.findall(f".//table[@id='{table}']/tbody/tr")


def link(row):
    return row.find(".//a")


def orders_in(doc):
    return doc.findall(".//table[@id='kpi-orders-table']/tbody/tr[@data-order]")


def csv_rows(response):
    assert response.status_code == 200
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- the dashboard ---------------------------------------------------------------------------


def test_dashboard_tiles_are_hand_computed_with_target_and_mark(client, october):
    login(client, "gm@example.com", PASSWORD)
    doc = page_of(client.get(f"/kpi/?{OCTOBER}"))
    count = tile(doc, "orders.count")
    assert value_of(count) == "3"
    cycle = tile(doc, "orders.cycle_time")
    assert value_of(cycle) == "5.3"
    assert cycle.get("data-mark") == "green"  # 5.3 days ≤ target 10
    assert with_class(cycle, "kpi-target")[0].get("data-target") == "10"
    badge = text(with_class(cycle, "kpi-mark")[0])
    assert badge == "On target"  # the mark is said in words, not by colour alone
    assert "5.3 days" in text(cycle)
    # The tile links to the metric page for the same period.
    assert link(cycle).get("href") == "/kpi/metrics/orders.cycle_time?period=month&date=2026-10-01"
    # Previous and next periods.
    assert by_id(doc, "kpi-previous").get("href").endswith("period=month&date=2026-09-01")
    assert by_id(doc, "kpi-next").get("href").endswith("period=month&date=2026-11-01")
    november = page_of(client.get("/kpi/?period=month&date=2026-11-20"))
    assert value_of(tile(november, "orders.count")) == "1"
    assert value_of(tile(november, "orders.cycle_time")) == ""  # nothing completed: no value, no mark


def test_dashboard_custom_period_and_day(client, october):
    login(client, "gm@example.com", PASSWORD)
    doc = page_of(client.get("/kpi/?period=custom&start=2026-10-01&end=2026-10-10"))
    assert value_of(tile(doc, "orders.count")) == "2"  # A (1 Oct) and B (10 Oct)
    day = page_of(client.get("/kpi/?period=day&date=2026-10-31"))
    assert value_of(tile(day, "orders.count")) == "1"  # C, 31 Oct 23:00 company time


def test_amber_and_red_marks_follow_the_band_setting(client, session, october, seed, admin):
    from core.settings import set_setting

    slow = make_order(session, admin, customer="C002")
    place(session, slow, at(1, 10, month=12), seed["hq"], completed=at(11, 16, month=12))  # 10.25 days
    session.commit()
    login(client, "gm@example.com", PASSWORD)
    december = "/kpi/?period=month&date=2026-12-05"
    doc = page_of(client.get(december))
    cycle = tile(doc, "orders.cycle_time")
    assert value_of(cycle) == "10.3"
    assert cycle.get("data-mark") == "amber"  # misses 10 by 0.3 ≤ 5 % of 10
    assert "Near target" in text(cycle)
    set_setting(session, "kpi.dashboard.amber_band", 1.0)
    session.commit()
    cycle = tile(page_of(client.get(december)), "orders.cycle_time")
    assert cycle.get("data-mark") == "red"  # 0.3 > 1 % of 10
    assert "Off target" in text(cycle)


def test_bad_period_is_refused_clearly(client, october):
    login(client, "gm@example.com", PASSWORD)
    response = client.get("/kpi/?period=custom&start=2026-10-10&end=2026-10-01")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "The period ends 2026-10-01, before it starts (2026-10-10)." in body
    assert 'data-metric="' not in body
    assert client.get("/kpi/?period=fortnight").status_code == 400
    assert client.get("/kpi/metrics/orders.count?period=month&date=yesterday").status_code == 400
    assert client.get("/kpi/metrics/orders.count/orders?period=custom&start=2026-10-10").status_code == 400
    assert (
        client.get("/kpi/metrics/orders.count/export.csv?period=custom&start=2026-10-10&end=2026-10-01").status_code
        == 400
    )


def test_unknown_metric_is_404(client, october):
    login(client, "gm@example.com", PASSWORD)
    assert client.get("/kpi/metrics/nobody.nothing").status_code == 404
    assert client.get("/kpi/metrics/nobody.nothing/orders").status_code == 404
    assert client.get("/kpi/metrics/nobody.nothing/export.csv").status_code == 404
    assert client.get("/kpi/metrics/orders.count/export.pdf").status_code == 404


def test_without_permission_403(client, october):
    login(client, "cs-less@example.com", PASSWORD)
    assert client.get("/kpi/").status_code == 403
    assert client.get("/kpi/metrics/orders.count").status_code == 403
    assert client.get("/kpi/export.csv").status_code == 403


# --- the metric page, drill-down -------------------------------------------------------------


def test_metric_page_formula_trend_and_breakdown(client, october, seed):
    login(client, "gm@example.com", PASSWORD)
    doc = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&dimension=customer"))
    assert "Orders created in the period and submitted" in text(by_id(doc, "kpi-formula"))
    assert value_of(by_id(doc, "kpi-headline")) == "3"
    trend = rows_of(doc, "kpi-trend-table")
    assert len(trend) == 12
    assert [row.get("data-period") for row in trend][-2:] == ["2026-09-01", "2026-10-01"]
    assert link(trend[-1]).get("data-value") == "3"
    assert by_id(doc, "kpi-trend-chart").find(".//svg") is not None
    rows = {
        text(row.findall("td")[0]): (row.get("data-key"), link(row).get("data-value"), link(row).get("href"))
        for row in rows_of(doc, "kpi-breakdown-table")
    }
    local, remote = seed["local"], seed["remote"]
    assert set(rows) == {f"{local.code} {local.name}", f"{remote.code} {remote.name}"}
    key, value, href = rows[f"{local.code} {local.name}"]
    assert (key, value) == (str(local.id), "2")
    assert f"customer={local.id}" in href and href.startswith("/kpi/metrics/orders.count/orders?")
    assert by_id(doc, "kpi-breakdown-chart").find(".//rect") is not None
    # Following the breakdown's link: the two orders of C001.
    drill = page_of(client.get(href))
    numbers = [row.get("data-number") for row in rows_of(drill, "kpi-orders-table")]
    assert set(numbers) == {october["a"][1], october["c"][1]}
    # A filter is carried over to the metric page: C001's count is 2.
    filtered = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&customer={local.id}&dimension=branch"))
    assert value_of(by_id(filtered, "kpi-headline")) == "2"
    branches = {
        text(row.findall("td")[0]): link(row).get("data-value") for row in rows_of(filtered, "kpi-breakdown-table")
    }
    assert branches == {seed["cd"].name: "1", seed["hq"].name: "1"}


def test_breakdown_names_are_translated_and_none_is_a_filter(client, october):
    login(client, "gm@example.com", PASSWORD)
    doc = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&dimension=department"))
    rows = rows_of(doc, "kpi-breakdown-table")
    assert len(rows) == 1 and text(rows[0].findall("td")[0]) == "(none)"
    href = link(rows[0]).get("href")
    assert "department=~" in href or "department=%7E" in href
    drill = page_of(client.get(href))
    assert len(orders_in(drill)) == 3
    remote = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&dimension=remote"))
    names = {text(row.findall("td")[0]) for row in rows_of(remote, "kpi-breakdown-table")}
    assert names <= {"Remote", "Local"} and names


def test_bad_filter_value_is_400_not_500(client, october):
    login(client, "gm@example.com", PASSWORD)
    response = client.get(f"/kpi/metrics/orders.count?{OCTOBER}&customer=abc")
    assert response.status_code == 400
    assert "abc is not a valid customer." in response.get_data(as_text=True)


def test_drill_down_problems_only(client, october):
    login(client, "gm@example.com", PASSWORD)
    # Cycle time, lower is better: every completion with num > 0 is a "problem"; both A and B.
    doc = page_of(client.get(f"/kpi/metrics/orders.cycle_time/orders?{OCTOBER}&problems=1"))
    rows = orders_in(doc)
    assert {row.get("data-number") for row in rows} == {october["b"][1], october["a"][1]}
    assert link(rows[0]).get("href") == f"/orders/{october['b'][0]}"  # newest first, linked to the order
    all_orders = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}"))
    assert len(orders_in(all_orders)) == 3
    # orders.count is "higher is better" with num = den for each order: nothing pulls it down.
    none = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}&problems=1"))
    assert not orders_in(none)
    assert "No order pulls this metric down" in text(none)


def test_drill_down_pages(client, session, admin, seed):
    orders = [make_order(session, admin, customer="C001") for _ in range(23)]
    for order in orders:
        place(session, order, at(3), seed["hq"])
    make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    session.commit()
    login(client, "gm@example.com", PASSWORD)
    first = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}"))
    assert len(orders_in(first)) == 20
    second = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}&page=2"))
    assert len(orders_in(second)) == 3
    beyond = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}&page=9"))
    assert len(orders_in(beyond)) == 3


# --- scope ----------------------------------------------------------------------------------


def test_branch_manager_sees_only_the_branch_everywhere(client, october, seed):
    login(client, "cdboss@example.com", PASSWORD)
    doc = page_of(client.get(f"/kpi/?{OCTOBER}"))
    assert value_of(tile(doc, "orders.count")) == "1"  # A only
    assert value_of(tile(doc, "orders.cycle_time")) == "3.0"
    metric = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&dimension=branch"))
    names = {text(row.findall("td")[0]) for row in rows_of(metric, "kpi-breakdown-table")}
    assert names == {seed["cd"].name}
    drill = page_of(client.get(f"/kpi/metrics/orders.count/orders?{OCTOBER}"))
    assert [row.get("data-number") for row in orders_in(drill)] == [october["a"][1]]
    # Asking for HQ's figures explicitly gives nothing.
    hq = page_of(client.get(f"/kpi/metrics/orders.count?{OCTOBER}&branch={seed['hq'].id}"))
    assert value_of(by_id(hq, "kpi-headline")) == "0"
    rows = csv_rows(client.get(f"/kpi/metrics/orders.count/export.csv?{OCTOBER}&table=orders"))
    assert [row[0] for row in rows[1:]] == [october["a"][1]]
    tiles = csv_rows(client.get(f"/kpi/export.csv?{OCTOBER}"))
    by_key = {row[1]: row for row in tiles[1:]}
    assert by_key["orders.count"][3] == "1"


# --- exports ---------------------------------------------------------------------------------


def test_exports_csv_and_xlsx_read_back(client, october, seed):
    login(client, "gm@example.com", PASSWORD)
    tiles = csv_rows(client.get(f"/kpi/export.csv?{OCTOBER}"))
    assert tiles[0][:4] == ["Group", "Key", "Metric", "Value"]
    by_key = {row[1]: row for row in tiles[1:]}
    assert by_key["orders.count"][3] == "3"
    cycle = by_key["orders.cycle_time"]
    assert (cycle[3], cycle[4], cycle[6], cycle[7], cycle[8]) == ("5.3", "days", "2", "10", "On target")
    trend = csv_rows(client.get(f"/kpi/metrics/orders.count/export.csv?{OCTOBER}&table=trend"))
    assert len(trend) == 13 and trend[-1][0] == "2026-10" and trend[-1][3] == "3"
    breakdown = csv_rows(
        client.get(f"/kpi/metrics/orders.count/export.csv?{OCTOBER}&table=breakdown&dimension=customer")
    )
    assert {(row[0], row[2]) for row in breakdown[1:]} == {
        (f"{seed['local'].code} {seed['local'].name}", "2"),
        (f"{seed['remote'].code} {seed['remote'].name}", "1"),
    }
    response = client.get(f"/kpi/metrics/orders.count/export.xlsx?{OCTOBER}&table=orders")
    assert response.status_code == 200
    assert response.mimetype == exports.XLSX_TYPE
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Order"
    assert {row[0] for row in values[1:]} == {october[k][1] for k in "abc"}
    assert {row[4] for row in values[1:]} == {1}
    xlsx_tiles = load_workbook(io.BytesIO(client.get(f"/kpi/export.xlsx?{OCTOBER}").get_data())).active
    assert any(row[1] == "orders.count" and row[3] == 3 for row in xlsx_tiles.iter_rows(values_only=True))
    assert client.get(f"/kpi/metrics/orders.count/export.csv?{OCTOBER}&table=nothing").status_code == 400


def test_exports_neutralise_formula_injection(client, session, october, seed):
    session.execute(update(Customer).where(Customer.id == seed["local"].id).values(name='=HYPERLINK("http://x")'))
    session.commit()
    login(client, "gm@example.com", PASSWORD)
    rows = csv_rows(client.get(f"/kpi/metrics/orders.count/export.csv?{OCTOBER}&table=orders"))
    customers = {row[1] for row in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in customers
    assert not any(name.startswith("=") for name in customers)
    response = client.get(f"/kpi/metrics/orders.count/export.xlsx?{OCTOBER}&table=orders")
    workbook = load_workbook(io.BytesIO(response.get_data()))
    cells = [cell for row in workbook.active.iter_rows(min_row=2) for cell in row]
    customers = {cell.value for cell in cells if cell.column == 2}
    assert '\'=HYPERLINK("http://x")' in customers
    assert all(cell.data_type != "f" for cell in cells)


def test_exports_module_neutralises_every_formula_start():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert exports.neutralise(f"{start}1+1") == f"'{start}1+1"
    assert exports.neutralise("SUM") == "SUM"
    assert exports.neutralise(Decimal("-5")) == Decimal("-5")
    text = "".join(exports.csv_lines(["名称"], [["=1+1", Decimal("-2.5"), None]]))
    assert text == "\ufeff名称\r\n'=1+1,-2.5,\r\n"


# --- charts ----------------------------------------------------------------------------------


def test_line_chart_is_svg_with_gaps_target_and_tooltips():
    points = [("2026-08", Decimal("90")), ("2026-09", None), ("2026-10", Decimal("100")), ("2026-11", Decimal("95"))]
    svg = str(charts.line_chart(points, target=Decimal("98"), unit="%", title="On-time <delivery>"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<title>On-time &lt;delivery&gt;</title>" in svg
    assert svg.count("<circle") == 3  # the gap has no point
    assert svg.count("<polyline") == 1  # a lone point before the gap draws no line; 10–11 one segment
    assert 'stroke-dasharray="6 4"' in svg and "<title>98%</title>" in svg
    assert "<title>2026-10: 100%</title>" in svg
    for label in ("2026-08", "2026-09", "2026-10", "2026-11"):
        assert f">{label}</text>" in svg
    assert svg == str(charts.line_chart(points, target=Decimal("98"), unit="%", title="On-time <delivery>"))
    empty = str(charts.line_chart([("2026-10", None)]))
    assert "<circle" not in empty and "—" in empty


def test_bar_chart_is_svg_with_labels_and_values():
    svg = str(charts.bar_chart([("成都分公司", Decimal("3")), ("HQ", Decimal("1.5")), ("(none)", None)], unit="days"))
    assert svg.startswith("<svg") and svg.count("<rect") == 2
    assert ">成都分公司</text>" in svg and ">3 days</text>" in svg and ">—</text>" in svg
    widths = [float(part.split('"')[0]) for part in svg.split('width="')[2:4]]
    assert widths[0] == pytest.approx(widths[1] * 2, rel=0.02)  # bars proportional to the values


# --- with other plugins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordo_plugins", "contributors"),
    [
        (["kpi", "intake"], {"intake"}),
        (["kpi", "intake", "review", "logistics", "billing"], {"intake", "review", "logistics", "billing"}),
    ],
    ids=["intake-only", "all-five"],
)
def test_dashboard_renders_every_enabled_plugins_tiles(client, session, seed, state, ordo_plugins, contributors):
    from core.settings import session_registry
    from plugins.kpi.engine import collect_metrics

    make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])
    session.commit()
    metrics = collect_metrics(session_registry(session))
    by_plugin = {metric.plugin for metric in metrics.values()}
    assert contributors <= by_plugin  # each enabled plugin contributes its metrics
    disabled = {"intake", "review", "logistics", "billing"} - contributors
    assert not any(key.split(".")[0] in disabled for key in metrics)  # disabled plugins' metrics do not appear
    login(client, "gm@example.com", PASSWORD)
    doc = page_of(client.get("/kpi/?period=month&date=2026-10-15"))
    shown = {element.get("data-metric") for element in doc.findall(".//div[@data-metric]")}
    assert shown == set(metrics)
    for key in metrics:  # every metric page renders too (trend, breakdown) over an empty month
        assert client.get(f"/kpi/metrics/{key}?period=month&date=2026-10-15").status_code == 200, key
        assert client.get(f"/kpi/metrics/{key}/orders?period=month&date=2026-10-15&problems=1").status_code == 200
    assert client.get("/kpi/export.csv?period=month&date=2026-10-15").status_code == 200


def test_a_filter_typed_in_never_names_an_out_of_scope_customer(client, october, seed):
    """CD's manager filtering by HQ's customer C002 sees its id, never its name (no in-scope fact has it)."""
    login(client, "cdboss@example.com", PASSWORD)
    remote = seed["remote"]
    for path in ("/kpi/metrics/orders.count", "/kpi/metrics/orders.count/orders"):
        page = client.get(f"{path}?period=month&date=2026-10-05&customer={remote.id}")
        assert page.status_code == 200
        assert remote.name not in page.get_data(as_text=True)
    own = client.get(f"/kpi/metrics/orders.count?period=month&date=2026-10-05&customer={seed['local'].id}")
    assert seed["local"].name in own.get_data(as_text=True)

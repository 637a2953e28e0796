"""List exports: CSV and XLSX carry exactly the orders in the user's scope, in the user's
language, and never turn text into a live spreadsheet formula."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, login, make_order, make_user


@pytest.fixture
def orders(session, admin, seed):
    mine = make_user(session, "mine@example.com", ["sales"])
    hostile = make_order(session, mine, reference='=HYPERLINK("http://evil.example","x")')
    theirs = make_order(session, admin, reference="PO-ADMIN")
    return {"mine": mine, "hostile": hostile, "theirs": theirs}


def _csv_rows(response) -> list[list[str]]:
    text = response.data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.req("CORE-4")
def test_csv_export_holds_only_the_orders_in_scope_and_defuses_formulas(client, orders):
    login(client, "mine@example.com", PASSWORD)
    response = client.get("/orders/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = _csv_rows(response)
    numbers = [row[0] for row in rows[1:]]
    assert numbers == [orders["hostile"].number]  # the admin's order is out of this salesperson's scope
    assert rows[1][6] == '\'=HYPERLINK("http://evil.example","x")'


@pytest.mark.req("CORE-4")
def test_xlsx_export_matches_the_list_and_keeps_text_as_text(client, orders):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = client.get("/orders/export.xlsx?q=PO-")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Number"
    assert [r[0] for r in rows[1:]] == [orders["theirs"].number]
    assert float(rows[1][13]) == float(orders["theirs"].total)

    everything = load_workbook(io.BytesIO(client.get("/orders/export.xlsx").data)).active
    hostile = next(r for r in everything.iter_rows() if r[0].value == orders["hostile"].number)
    assert hostile[6].data_type == "s"  # stored as a string, not a formula
    assert hostile[6].value.startswith("'=HYPERLINK")  # and prefixed, so editing the cell cannot revive it


def test_unknown_export_format_is_404(client, orders):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert client.get("/orders/export.pdf").status_code == 404

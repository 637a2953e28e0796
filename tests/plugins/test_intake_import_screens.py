"""Intake's import wizard (IN-1, IN-2): upload, preview, import all or the valid orders, error report."""

from __future__ import annotations

import html
import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order
from core.testing import PASSWORD, csrf_token, login, make_user

pytestmark = pytest.mark.req("IN-1")

HEADER = "order,customer,channel,reference,requested_date,payment_method,product,quantity"
GOOD = [
    "A,C001,phone,PO-A,2030-01-15,monthly_settlement,P-100,2",
    "A,,,,,,P-300,100",
    "F,C002,email,PO-F,2030-01-15,prepayment,P-200,1",
]
BAD = [
    "B,C001,email,PO-B,2030-01-15,prepayment,P-100,two",
    "C,C002,fax,PO-C,2030-01-15,prepayment,P-999,1",
]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def csv_file(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def order_count(session: Session) -> int:
    session.commit()  # end the read snapshot: the app wrote through its own session
    return session.scalar(select(func.count(Order.id))) or 0


@pytest.fixture
def clerk(app: Flask, session: Session, seed: dict[str, Any]) -> FlaskClient:
    make_user(session, "importer@example.com", ["admin"])
    session.commit()
    client = app.test_client()
    login(client, "importer@example.com", PASSWORD)
    return client


def upload(client: FlaskClient, data: bytes, name: str = "orders.csv") -> Any:
    token = csrf_token(client, "/intake/import/")
    return client.post(
        "/intake/import/",
        data={"csrf_token": token, "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def commit(client: FlaskClient, page: str, mode: str) -> Any:
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert sha256, page
    token = csrf_token(client, "/intake/import/")
    form = {"csrf_token": token, "sha256": sha256.group(1), "filename": "orders.csv", "mode": mode}
    return client.post("/intake/import/commit", data=form)


def test_upload_page_states_formats_limit_and_offers_the_template(clerk: FlaskClient) -> None:
    page = text(clerk.get("/intake/import/"))
    assert 'type="file"' in page and 'name="csrf_token"' in page
    assert "XLSX" in page and "5 MB" in page
    template = clerk.get("/intake/import/template.csv")
    assert template.status_code == 200 and template.mimetype == "text/csv"
    header = template.get_data(as_text=True).lstrip("\ufeff").splitlines()[0]
    assert header.startswith("order,customer,channel") and "quantity" in header


def test_good_file_previews_then_imports_all(clerk: FlaskClient, session: Session) -> None:
    before = order_count(session)
    answer = upload(clerk, csv_file(GOOD))
    page = text(answer)
    assert answer.status_code == 200, page
    assert "2 orders ready" in page and "0 orders with errors" in page
    assert 'data-order="A"' in page and 'data-order="F"' in page
    assert "Download error report" not in page
    assert order_count(session) == before  # the preview writes nothing
    result = commit(clerk, page, "all")
    done = text(result)
    assert result.status_code == 200, done
    assert order_count(session) == before + 2
    numbers = list(session.scalars(select(Order.number).order_by(Order.id.desc()).limit(2)))
    for number in numbers:
        assert number in done
    assert "/orders/" in done


def test_mixed_file_all_is_refused_valid_imports_the_good_ones(clerk: FlaskClient, session: Session) -> None:
    before = order_count(session)
    page = text(upload(clerk, csv_file(GOOD + BAD)))
    assert "2 orders ready" in page and "2 orders with errors" in page
    assert 'data-errors="quantity_not_number"' in page and 'data-errors="product_unknown"' in page
    assert "data-confirm=" in page
    refused = commit(clerk, page, "all")
    assert refused.status_code == 422
    assert "Nothing was imported" in text(refused)
    assert order_count(session) == before
    done = commit(clerk, page, "valid")
    body = text(done)
    assert done.status_code == 200, body
    assert order_count(session) == before + 2
    assert "Skipped orders" in body and "P-999" in body


def test_refused_file_shows_its_message_and_stores_nothing(clerk: FlaskClient, session: Session, app: Flask) -> None:
    before = order_count(session)
    answer = upload(clerk, b"<html><body>orders</body></html>", "orders.csv")
    assert answer.status_code == 422
    assert "web page" in text(answer) and 'type="file"' in text(answer)
    old = upload(clerk, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "orders.xls")
    assert old.status_code == 422 and ".xls" in text(old)
    assert order_count(session) == before


def test_error_report_downloads_as_xlsx(clerk: FlaskClient) -> None:
    page = text(upload(clerk, csv_file(GOOD + BAD)))
    link = re.search(r'id="import-error-report" href="([^"]+)"', page)
    assert link, page
    report = clerk.get(html.unescape(link.group(1)))
    assert report.status_code == 200
    assert report.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(report.data)).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "row" and "errors" in values[0]
    assert any("quantity_not_number" in str(v) for row in values for v in row)


def test_a_hash_not_uploaded_in_this_session_is_not_found(clerk: FlaskClient, app: Flask) -> None:
    page = text(upload(clerk, csv_file(GOOD)))
    other = app.test_client()
    login(other, "importer@example.com", PASSWORD)
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert sha256
    assert other.get(f"/intake/import/{sha256.group(1)}/errors.xlsx").status_code == 404
    assert clerk.get(f"/intake/import/{'0' * 64}/errors.xlsx").status_code == 404


def test_without_the_permission_every_step_is_403(app: Flask, session: Session, seed: dict[str, Any]) -> None:
    make_user(session, "fin@example.com", ["finance"])  # sees price lists, may not import
    session.commit()
    client = app.test_client()
    login(client, "fin@example.com", PASSWORD)
    assert client.get("/intake/import/").status_code == 403
    assert client.get("/intake/import/template.csv").status_code == 403
    assert client.get(f"/intake/import/{'0' * 64}/errors.xlsx").status_code == 403
    token = csrf_token(client, "/intake/price-lists")
    assert client.post("/intake/import/commit", data={"csrf_token": token, "mode": "all"}).status_code == 403
    assert "Import orders" not in text(client.get("/"))


def test_pages_render_in_chinese(app: Flask, session: Session, seed: dict[str, Any]) -> None:
    make_user(session, "zh@example.com", ["admin"], language="zh_CN")
    session.commit()
    client = app.test_client()
    login(client, "zh@example.com", PASSWORD)
    page = text(client.get("/intake/import/"))
    assert "导入订单" in page and "下载 CSV 模板" in page
    preview = text(upload(client, csv_file(GOOD + BAD)))
    assert "仅导入有效订单" in preview and "下载错误报告" in preview
    done = text(commit(client, preview, "valid"))
    assert "已跳过的订单" in done

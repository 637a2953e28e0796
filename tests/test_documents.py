"""Documents render to PDF with WeasyPrint; their text (Chinese included) reads back."""

import io

import pytest
from pypdf import PdfReader

from core.documents import render_document
from core.testing import make_order


def pdf_text(data: bytes) -> str:
    """All text of a PDF, pages joined."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.req("CORE-1")
def test_order_sheet_carries_the_key_information_in_chinese(session, state, admin, seed):
    order = make_order(session, admin)
    pdf = render_document(session, state.registry, "order_sheet", order, "zh_CN")
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert order.number in text
    assert "重庆山城机电有限公司" in text
    assert "4011.50" in text
    assert "P-100" in text
    assert "订单确认单" in text  # the labels are in Chinese too
    assert "电话" in text and "月结" in text  # channel and payment method as words, not codes


def test_order_sheet_in_english(session, state, admin, seed):
    order = make_order(session, admin)
    text = pdf_text(render_document(session, state.registry, "order_sheet", order, "en"))
    assert "Order sheet" in text and "订单确认单" not in text


@pytest.mark.req("CORE-4")
def test_order_page_links_the_pdf_and_it_obeys_the_data_scope(client, session, admin, seed):
    from core.testing import login, make_user

    order = make_order(session, admin)
    other_sales = make_user(session, "other@example.com", ["sales"])
    login(client, "admin@example.com", "admin-pass-1")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    link = f"/orders/{order.id}/documents/order_sheet.pdf"
    assert link in page
    pdf = client.get(link)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert order.number in pdf_text(pdf.data)
    assert client.get(f"/orders/{order.id}/documents/no_such_document.pdf").status_code == 404

    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, other_sales.email, "test-pass-1")
    assert client.get(link).status_code == 404  # a salesperson sees only their own orders


def _token(client) -> str:
    from core.testing import csrf_token

    return csrf_token(client, "/orders")

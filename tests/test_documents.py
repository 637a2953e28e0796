"""Documents render to PDF with WeasyPrint on the company letterhead; their text (Chinese
included) reads back, the logo is an image in the PDF, pages are numbered, and the order
confirmation (订单确认书) carries what a customer signs, with the total in capital figures."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from core.clock import COMPANY_TIMEZONE, company_now
from core.documents import data_only_fetcher, render_document, render_html
from core.documents.capitals import chinese_capitals
from core.files import file_store
from core.models import Company
from core.testing import make_order


def pdf_text(data: bytes) -> str:
    """All text of a PDF, pages joined."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def letterhead(session, **values) -> Company:
    """Set the company's letterhead fields (and commit)."""
    company = session.scalar(select(Company))
    for key, value in values.items():
        setattr(company, key, value)
    session.commit()
    return company


def png_logo(colour: str = "#c0392b") -> bytes:
    """A small PNG made here, so the test needs no file."""
    out = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.req("CORE-1")
def test_order_sheet_carries_the_key_information_in_chinese(session, state, admin, seed):
    order = make_order(session, admin)
    pdf = render_document(session, state.registry, "order_sheet", order, "zh_CN")
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert order.number in text
    assert "重庆山城机电有限公司" in text
    assert "4,011.50" in text
    assert "P-100" in text
    assert "订单" in text and "订单确认书" not in text  # the internal sheet, not the confirmation
    assert "电话" in text and "月结" in text  # channel and payment method as words, not codes
    assert "1.2E+2" not in text and "100" in text  # quantities print plainly


def test_order_sheet_in_english(session, state, admin, seed):
    order = make_order(session, admin)
    text = pdf_text(render_document(session, state.registry, "order_sheet", order, "en"))
    assert "Order sheet" in text and "订单" not in text


@pytest.mark.req("CORE-1")
def test_order_confirmation_in_chinese_has_parties_lines_capital_total_and_signatures(session, state, admin, seed):
    letterhead(
        session,
        address="重庆市渝中区解放碑 8 号",
        phone="023-6300-0000",
        email="sales@test.example",
        tax_id="91500000MA5U000000",
    )
    order = make_order(session, admin, reference="HT-2026-007")
    text = pdf_text(render_document(session, state.registry, "order_confirmation", order, "zh_CN"))
    assert "订单确认书" in text
    assert order.number in text and "HT-2026-007" in text and "2026-12-15" in text
    # Seller and buyer, each with what identifies them.
    assert "供方" in text and "需方" in text
    assert "Test Co." in text and "重庆市渝中区解放碑 8 号" in text and "91500000MA5U000000" in text
    assert "重庆山城机电有限公司" in text and "渝北区金开大道 1 号" in text
    # Lines: SKU, product, quantity, unit price, tax rate, amount.
    assert "P-100" in text and "P-300" in text and "减速电机" in text
    assert "1,150.00" in text and "13%" in text and "2,300.00" in text
    # Totals in figures and in capital figures (大写金额).
    assert "3,550.00" in text and "461.50" in text and "4,011.50" in text
    assert "肆仟零壹拾壹元伍角整" in text
    assert "月结" in text  # payment method
    assert "供方（签字盖章）" in text and "需方（签字盖章）" in text  # both parties sign and seal
    assert "本确认书经供需双方签字盖章后生效" in text  # the default terms


def test_order_confirmation_in_english(session, state, admin, seed):
    order = make_order(session, admin)
    text = pdf_text(render_document(session, state.registry, "order_confirmation", order, "en"))
    assert "Order confirmation" in text and order.number in text
    assert "Seller" in text and "Buyer" in text and "signature and seal" in text
    assert "重庆山城机电有限公司" in text  # the customer's name as it is
    assert "4,011.50" in text and "Monthly settlement" in text
    assert "肆仟" not in text and "订单确认书" not in text


def test_the_terms_come_from_the_settings_per_language(session, state, admin, seed):
    from core.settings import set_setting

    set_setting(session, "core.documents.terms_en", "Goods remain ours until paid in full.", registry=state.registry)
    session.commit()
    order = make_order(session, admin)
    english = pdf_text(render_document(session, state.registry, "order_confirmation", order, "en"))
    assert "Goods remain ours until paid in full." in english
    chinese = pdf_text(render_document(session, state.registry, "order_confirmation", order, "zh_CN"))
    assert "Goods remain ours" not in chinese


def test_every_page_is_numbered_page_of_pages(session, state, admin, seed):
    lines = [{"product": "P-300", "quantity": str(n + 1)} for n in range(70)]
    order = make_order(session, admin, lines=lines)
    reader = PdfReader(io.BytesIO(render_document(session, state.registry, "order_confirmation", order, "zh_CN")))
    pages = len(reader.pages)
    assert pages >= 2
    for number, page in enumerate(reader.pages, start=1):
        assert f"{number} / {pages}" in page.extract_text()


def test_the_printing_time_is_in_the_company_time_zone(session, state, admin, seed):
    order = make_order(session, admin)
    before = company_now().replace(second=0, microsecond=0)
    text = pdf_text(render_document(session, state.registry, "order_confirmation", order, "en"))
    after = company_now()
    match = re.search(r"Printed (\d{4}-\d\d-\d\d \d\d:\d\d) \(([\w/]+)\)", text)
    assert match, text
    printed = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=COMPANY_TIMEZONE)
    assert match.group(2) == str(COMPANY_TIMEZONE)
    assert before <= printed <= after  # company time, not UTC (8 hours off in Chongqing)


def test_the_letterhead_logo_is_an_image_in_the_pdf(session, state, admin, seed):
    order = make_order(session, admin)
    without = PdfReader(io.BytesIO(render_document(session, state.registry, "order_confirmation", order, "zh_CN")))
    assert not without.pages[0].images
    sha256 = file_store(session).put(png_logo())
    letterhead(session, logo_sha256=sha256, logo_type="png")
    html = render_html(session, state.registry, "order_confirmation", order, "zh_CN")
    assert 'src="data:image/png;base64,' in html  # carried in the document, no path, no network
    reader = PdfReader(io.BytesIO(render_document(session, state.registry, "order_confirmation", order, "zh_CN")))
    images = reader.pages[0].images
    assert len(images) == 1
    assert images[0].image.size == (40, 20)


def test_a_missing_logo_file_leaves_the_logo_off_but_still_prints(session, state, admin, seed):
    letterhead(session, logo_sha256="ab" * 32, logo_type="png")
    order = make_order(session, admin)
    pdf = render_document(session, state.registry, "order_sheet", order, "zh_CN")
    assert order.number in pdf_text(pdf)
    assert not PdfReader(io.BytesIO(pdf)).pages[0].images


def test_documents_fetch_nothing_from_files_or_the_network():
    fetch = data_only_fetcher()
    for url in ("file:///etc/passwd", "http://169.254.169.254/latest/meta-data", "https://example.com/x.png"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetch(url)
    assert fetch("data:text/plain;base64,aGk=").read() == b"hi"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("4011.50", "肆仟零壹拾壹元伍角整"),
        ("16", "壹拾陆元整"),
        ("10", "壹拾元整"),
        ("110000", "壹拾壹万元整"),
        ("1409.50", "壹仟肆佰零玖元伍角整"),
        ("6007.14", "陆仟零柒元壹角肆分"),
        ("325.04", "叁佰贰拾伍元零肆分"),
        ("107000.53", "壹拾万零柒仟元伍角叁分"),
        ("100500", "壹拾万零伍佰元整"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("0.50", "伍角整"),
        ("0.03", "叁分"),
        ("0", "零元整"),
        ("0.004", "零元整"),
        ("0.005", "壹分"),  # rounded half up to the fen
        ("-12.30", "负壹拾贰元叁角整"),
        ("1000000000000", "壹万亿元整"),
    ],
)
def test_amounts_in_chinese_capital_figures(amount, words):
    assert chinese_capitals(Decimal(amount)) == words


def test_capital_figures_refuse_what_they_cannot_write():
    with pytest.raises(ValueError, match="too large"):
        chinese_capitals(Decimal("1E16"))
    with pytest.raises(ValueError, match="not an amount"):
        chinese_capitals(Decimal("NaN"))


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
    assert client.get(f"/orders/{order.id}/documents/order_sheet.pdf?lang=fr").status_code == 400

    client.post("/logout", data={"csrf_token": _token(client)})
    login(client, other_sales.email, "test-pass-1")
    assert client.get(link).status_code == 404  # a salesperson sees only their own orders


def _token(client) -> str:
    from core.testing import csrf_token

    return csrf_token(client, "/orders")

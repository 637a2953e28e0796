"""The invoice PDF (BL-3): number, type, buyer and tax ID, lines with VAT, totals, in Chinese and English."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest
from billing_helpers import confirm, customer
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from core.models import User
from core.testing import PASSWORD, login, make_order, make_user
from plugins.billing import invoices
from plugins.billing.invoice_documents import render_invoice_pdf


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.req("BL-3")
@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_pdf_shows_number_buyer_tax_id_and_amounts(
    language: str, session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    finance = make_user(session, "fin@example.com", ["finance"], branch=seed["hq"])
    customer(session, "C001").tax_id = "91500000MA5U000001"
    session.commit()
    order = make_order(session, admin)
    confirm(session, state.registry, admin, order)
    invoice = invoices.create_invoice(session, finance, order, invoice_type="special")
    invoices.issue_invoice(session, finance, invoice.id)
    session.commit()
    text = text_of(render_invoice_pdf(session, state.registry, invoice, language)).replace(" ", "")
    assert invoice.number in text
    assert "91500000MA5U000001" in text
    assert "4,011.50" in text  # 2 × 1150 + 100 × 12.50, with 13 % VAT
    assert "461.50" in text  # the VAT
    if language == "zh_CN":
        assert "重庆山城机电有限公司" in text and "发票号码" in text


def test_the_pdf_route_needs_scope_and_answers_a_pdf(
    client: FlaskClient, session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    finance = make_user(session, "fin@example.com", ["finance"], branch=seed["hq"])
    order = make_order(session, admin)
    confirm(session, state.registry, admin, order)
    invoice = invoices.create_invoice(session, finance, order)
    session.commit()
    login(client, finance.email, PASSWORD)
    answer = client.get(f"/billing/invoices/{invoice.id}/pdf?lang=en")
    assert answer.status_code == 200 and answer.data.startswith(b"%PDF")
    assert "Draft" in text_of(answer.data)
    assert client.get("/billing/invoices/999999/pdf").status_code == 404

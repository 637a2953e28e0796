"""Staff order entry (IN-1, IN-2, IN-5, IN-6): phone, e-mail, fax and offline orders keyed in
from the customer's original document, which is attached; saved as a draft or submitted
to the automatic pre-check, all in one transaction."""

from __future__ import annotations

import datetime as dt
import html
import io
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.files import file_store
from core.models import Customer, Order, OrderAttachment, Role, RolePermission, User
from core.settings import set_setting
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.intake import entry_views
from plugins.intake.flow import MANUAL_CHECK
from plugins.intake.models import IntakeOrder, IntakePriceList, IntakePriceListItem

pytestmark = [pytest.mark.req("IN-1"), pytest.mark.req("IN-2")]

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = bytes.fromhex(  # a whole 1×1 PNG (attachments refuse a cut-off image)
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082"
)
NEW = "/intake/entry/new"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def future(days: int = 60) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def entry(**overrides: str) -> dict[str, str]:
    """A complete fax order as the form posts it (two lines, the first without a price)."""
    form = {
        "customer": "C001",
        "channel": "fax",
        "transaction_type": "domestic",
        "reference": "HT-2027-08",
        "external_reference": "",
        "urgency": "normal",
        "currency": "CNY",
        "requested_date": future(),
        "payment_method": "monthly_settlement",
        "contact_name": "张伟",
        "contact_phone": "023-6000-0001",
        "ship_to_contact": "张伟",
        "ship_to_phone": "023-6000-0001",
        "ship_to_province": "重庆市",
        "ship_to_city": "重庆市",
        "ship_to_address": "渝北区金开大道 1 号",
        "reason": "",
        "note": "",
        "lines-0-product": "P-100",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "",
        "lines-1-product": "P-300",
        "lines-1-quantity": "100",
        "lines-1-unit_price": "12.50",
        "save": "draft",
    }
    form.update(overrides)
    return form


def post(
    client: FlaskClient, form: dict[str, str], original: tuple[bytes, str] | None = None, token_page: str = NEW
) -> Any:
    data: dict[str, Any] = {"csrf_token": csrf_token(client, token_page), **form}
    if original is not None:
        data["original"] = (io.BytesIO(original[0]), original[1])
    return client.post(NEW, data=data, content_type="multipart/form-data")


def counts(session: Session) -> tuple[int, int, int]:
    """(orders, attachments, intake records) as committed."""
    session.commit()  # end the read snapshot: the app wrote through its own session
    return (
        session.scalar(select(func.count(Order.id))) or 0,
        session.scalar(select(func.count(OrderAttachment.id))) or 0,
        session.scalar(select(func.count(IntakeOrder.order_id))) or 0,
    )


def newest(session: Session) -> Order:
    session.commit()
    order = session.scalar(select(Order).order_by(Order.id.desc()).limit(1))
    assert order is not None
    return order


@pytest.fixture
def clerk_user(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])


@pytest.fixture
def clerk(app: Flask, clerk_user: User) -> FlaskClient:
    client = app.test_client()
    login(client, "clerk@example.com", PASSWORD)
    return client


@pytest.mark.req("IN-5")
@pytest.mark.req("IN-6")
@pytest.mark.req("IN-7")
def test_a_fax_order_with_its_pdf_is_entered_and_submitted_to_the_manual_check(
    clerk: FlaskClient, session: Session, clerk_user: User
) -> None:
    before = counts(session)
    answer = post(
        clerk,
        entry(save="submit", transaction_type="export", external_reference="FAX-0815"),
        (PDF, "传真订单 HT-2027-08.pdf"),
    )
    assert answer.status_code == 302, text(answer)
    order = newest(session)
    assert answer.headers["Location"].endswith(f"/orders/{order.id}")
    assert counts(session) == (before[0] + 1, before[1] + 1, before[2] + 1)
    assert (order.channel, order.reference, order.external_reference) == ("fax", "HT-2027-08", "FAX-0815")
    assert order.created_by_id == clerk_user.id  # four-eyes verification relies on it
    assert (order.status, order.step) == ("submitted", MANUAL_CHECK)
    record = session.get(IntakeOrder, order.id)
    assert record is not None
    assert record.transaction_type == "export"
    assert record.precheck_level in ("pass", "warn") and record.check_due is not None
    attachment = session.scalar(select(OrderAttachment).where(OrderAttachment.order_id == order.id))
    assert attachment is not None
    assert (attachment.kind, attachment.filename, attachment.content_type) == (
        "customer_order",
        "传真订单 HT-2027-08.pdf",
        "application/pdf",
    )
    assert attachment.uploaded_by_id == clerk_user.id
    assert file_store(session).get(attachment.sha256) == PDF
    page = text(clerk.get(f"/orders/{order.id}"))
    assert order.number in page and "传真订单 HT-2027-08.pdf" in page
    assert f"Order {order.number} was saved and submitted" in page


@pytest.mark.parametrize(
    ("channel", "original"),
    [("phone", None), ("email", (PDF, "mail.pdf")), ("offline", (PNG, "signed.png")), ("fax", (PDF, "fax.pdf"))],
)
def test_each_staff_channel_saves_a_draft_recording_its_channel(
    clerk: FlaskClient, session: Session, channel: str, original: tuple[bytes, str] | None
) -> None:
    before = counts(session)
    answer = post(clerk, entry(channel=channel, transaction_type="sample"), original)
    assert answer.status_code == 302, text(answer)
    order = newest(session)
    assert (order.channel, order.status, order.step) == (channel, "draft", "draft")
    attached = 0 if original is None else 1
    assert counts(session) == (before[0] + 1, before[1] + attached, before[2] + 1)
    record = session.get(IntakeOrder, order.id)
    assert record is not None and record.transaction_type == "sample"
    assert f"Order {order.number} was saved as a draft." in text(clerk.get(f"/orders/{order.id}"))


def test_an_empty_unit_price_takes_the_applicable_price_an_entered_one_is_kept(
    clerk: FlaskClient, session: Session, seed: dict[str, Any]
) -> None:
    customer, p100 = seed["local"], seed["products"][0]
    contract = IntakePriceList(code="C001-HT", name="合同价", currency="CNY", customer_id=customer.id)
    contract.items = [IntakePriceListItem(product_id=p100.id, unit_price=Decimal("990.00"), min_quantity=Decimal("0"))]
    session.add(contract)
    session.commit()
    assert post(clerk, entry(channel="phone")).status_code == 302
    order = newest(session)
    assert [(line.product.sku, line.unit_price) for line in order.lines] == [
        ("P-100", Decimal("990.00")),  # contract price, not the list price 1200
        ("P-300", Decimal("12.50")),  # as entered
    ]
    assert post(clerk, entry(channel="phone", **{"lines-0-unit_price": "1000"})).status_code == 302
    assert newest(session).lines[0].unit_price == Decimal("1000")


BAD_INPUTS = [
    pytest.param({"lines-0-product": "P-999"}, (PDF, "o.pdf"), "Unknown product", id="unknown-sku"),
    pytest.param({"lines-0-quantity": "two"}, (PDF, "o.pdf"), "Not a valid number.", id="text-quantity"),
    pytest.param({}, (b"<html><script>alert(1)</script></html>", "o.pdf"), "o.pdf", id="not-a-pdf"),
    pytest.param({}, (b"MZ\x90\x00" + b"\x00" * 200, "setup.exe"), "setup.exe", id="executable"),
    pytest.param({"channel": "email"}, None, "Attach the customer's original order", id="missing-original"),
    pytest.param({"channel": "portal"}, (PDF, "o.pdf"), "Staff enter phone, e-mail, fax", id="portal-channel"),
    pytest.param({"transaction_type": "barter"}, (PDF, "o.pdf"), "Choose a transaction type", id="bad-type"),
    pytest.param({"requested_date": "next week"}, (PDF, "o.pdf"), "Not a valid date.", id="bad-date"),
    pytest.param({"customer": "NOPE"}, (PDF, "o.pdf"), "Unknown customer", id="unknown-customer"),
]


@pytest.mark.req("IN-6")
@pytest.mark.parametrize(("changes", "original", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_its_message_and_nothing_is_written(
    clerk: FlaskClient, session: Session, changes: dict[str, str], original: Any, message: str
) -> None:
    before = counts(session)
    answer = post(clerk, entry(save="submit", **changes), original)
    page = text(answer)
    assert answer.status_code == 422, page
    assert message in page
    assert "Nothing was saved" in page
    assert counts(session) == before
    # What the clerk typed comes back.
    assert 'value="HT-2027-08"' in page and "渝北区金开大道 1 号" in page


def test_every_problem_is_shown_at_once_beside_its_field(clerk: FlaskClient, session: Session) -> None:
    before = counts(session)
    form = entry(channel="email", requested_date="soon", **{"lines-0-product": "P-999", "lines-1-quantity": "x"})
    page = text(post(clerk, form))
    for message in (
        "Not a valid date.",
        "Attach the customer's original order or contract",
        "Unknown product P-999.",
        "Not a valid number.",
    ):
        assert f'<div class="invalid-feedback d-block">{message}' in page
    assert counts(session) == before


def test_a_file_above_the_size_limit_is_refused_naming_both_sizes(
    app: Flask, clerk: FlaskClient, session: Session
) -> None:
    set_setting(session, "core.attachments.max_mb", 1, registry=app.extensions["ordo"].registry)
    session.commit()
    before = counts(session)
    big = PDF + b"0" * (1024 * 1024)
    answer = post(clerk, entry(), (big, "big.pdf"))
    assert answer.status_code == 422
    assert "The file is 1.1 MB; the limit is 1 MB." in text(answer)
    assert counts(session) == before


def test_a_duplicate_external_reference_names_the_existing_order(
    clerk: FlaskClient, session: Session, admin: User
) -> None:
    first = make_order(session, admin, channel="fax", external_reference="FAX-0815")
    before = counts(session)
    answer = post(clerk, entry(external_reference="FAX-0815"), (PDF, "again.pdf"))
    page = text(answer)
    assert answer.status_code == 422, page
    assert f"Order {first.number} already has the external reference “FAX-0815”" in page
    assert f'href="/orders/{first.id}"' in page
    assert counts(session) == before
    # Another channel, or another customer, is a different order.
    assert post(clerk, entry(external_reference="FAX-0815", channel="email"), (PDF, "m.pdf")).status_code == 302
    assert post(clerk, entry(external_reference="FAX-0815", customer="C002"), (PDF, "c.pdf")).status_code == 302


def test_without_the_original_setting_an_email_order_needs_no_file(
    app: Flask, clerk: FlaskClient, session: Session
) -> None:
    assert app.extensions["ordo"].registry.settings[entry_views.REQUIRE_ORIGINAL].default is True
    set_setting(session, entry_views.REQUIRE_ORIGINAL, False, registry=app.extensions["ordo"].registry)
    session.commit()
    before = counts(session)
    assert post(clerk, entry(channel="email")).status_code == 302
    assert counts(session) == (before[0] + 1, before[1], before[2] + 1)


def test_a_customer_outside_the_clerks_branch_is_refused(
    clerk: FlaskClient, session: Session, seed: dict[str, Any]
) -> None:
    remote = session.get(Customer, seed["remote"].id)
    assert remote is not None
    remote.branch_id = seed["cd"].id
    session.commit()
    before = counts(session)
    answer = post(clerk, entry(customer="C002"), (PDF, "o.pdf"))
    assert answer.status_code == 422
    assert "Customer C002 lies outside your data scope" in text(answer)
    assert counts(session) == before


def test_a_refused_submission_saves_nothing(app: Flask, session: Session, seed: dict[str, Any]) -> None:
    role = Role(code="entry_only", name="Entry only", data_scope="all")
    role.permissions = [
        RolePermission(code=code)
        for code in ("orders.read", "orders.create", "customers.read", "products.read", "attachments.upload")
    ]
    session.add(role)
    session.commit()
    make_user(session, "typist@example.com", ["entry_only"])
    client = app.test_client()
    login(client, "typist@example.com", PASSWORD)
    before = counts(session)
    answer = post(client, entry(save="submit"), (PDF, "o.pdf"))
    assert answer.status_code == 403
    assert "You may not do “Submit”" in text(answer)
    assert counts(session) == before
    assert post(client, entry(save="draft"), (PDF, "o.pdf")).status_code == 302


@pytest.mark.req("IN-4")
def test_a_submitted_order_with_an_obvious_error_is_rejected_by_the_precheck(
    clerk: FlaskClient, session: Session
) -> None:
    answer = post(clerk, entry(save="submit", ship_to_address=""), (PDF, "o.pdf"))
    assert answer.status_code == 302
    order = newest(session)
    assert (order.status, order.step) == ("rejected", "rejected")
    assert "the pre-check rejected it" in text(clerk.get(answer.headers["Location"]))


def test_the_form_prefills_contact_and_ship_to_from_the_chosen_customer(clerk: FlaskClient) -> None:
    page = text(clerk.get(NEW + "?customer=C002"))
    assert '<option selected value="C002">' in page
    assert 'value="李娜"' in page and 'value="高新区天府大道 100 号"' in page
    assert 'data-customer="C001" data-contact="张伟"' in page  # what the script fills from
    blank = text(clerk.get(NEW))
    assert 'enctype="multipart/form-data"' in blank and 'name="original"' in blank
    assert 'value="draft"' in blank and 'value="submit"' in blank
    for channel in ("phone", "email", "fax", "offline"):
        assert f'value="{channel}"' in blank
    assert 'value="portal"' not in blank and 'value="api"' not in blank


def test_entry_needs_orders_create_and_is_for_staff_only(app: Flask, session: Session, seed: dict[str, Any]) -> None:
    make_user(session, "store@example.com", ["warehouse"])
    store = app.test_client()
    login(store, "store@example.com", PASSWORD)
    before = counts(session)
    assert store.get(NEW).status_code == 403
    assert post(store, entry(channel="phone")).status_code == 403
    assert 'href="/intake/entry/new"' not in text(store.get("/", follow_redirects=True))
    # A customer's portal user holds orders.create but orders through the portal: never served here.
    make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    buyer = app.test_client()
    login(buyer, "buyer@example.com", PASSWORD)
    for answer in (buyer.get(NEW), post(buyer, entry(channel="phone"), token_page="/notifications")):
        assert answer.status_code in (302, 403)
        assert "/intake/entry" not in answer.headers.get("Location", "")
    assert counts(session) == before


def test_the_menu_offers_enter_order_to_clerks(clerk: FlaskClient) -> None:
    assert clerk.get(NEW).status_code == 200
    assert 'href="/intake/entry/new"' in text(clerk.get("/", follow_redirects=True))
    assert entry_views.MENU[0].endpoint == "intake.intake_entry.new"

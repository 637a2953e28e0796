"""Core services in a real browser: order attachments (IN-5), issued documents, the
notification bell (CORE-7) and the settings screen."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from pypdf import PdfWriter
from sqlalchemy import select

from core.attachments.service import MAX_MB
from core.models import IssuedDocument, OrderAttachment, SettingValue
from core.services.orders import take_action
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, make_order, make_user

pytestmark = pytest.mark.browser


def log_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/(orders|admin/\w+|account/tokens)$"))


def small_pdf() -> bytes:
    """A real one-page PDF, made here."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=100)
    writer.add_metadata({"/Title": "Customer PO 4711"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def panel(page: Any, title: str) -> Any:
    """The order page's panel headed ``title``."""
    return page.locator("section.ordo-panel").filter(has=page.get_by_role("heading", name=title, exact=True))


@pytest.mark.req("IN-5")
def test_attach_the_customers_pdf_download_it_and_a_disguised_text_file_is_refused(
    live_server, browser_page, session, seed, tmp_path
):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"], language="en")
    order_id = make_order(session, clerk).id
    session.rollback()
    fake = tmp_path / "purchase-order.pdf"
    fake.write_text("Not a PDF at all, just some notes.\n", encoding="utf-8")
    real = tmp_path / "PO-4711.pdf"
    real.write_bytes(small_pdf())

    page = browser_page
    log_in(page, live_server, "clerk@example.com")
    page.goto(f"{live_server}/orders/{order_id}")
    attachments = panel(page, "Attachments")
    assert "No attachments yet." in attachments.inner_text()
    assert "At most 20 MB." in attachments.inner_text()

    # A text file renamed .pdf is refused, by its content, with the reason.
    attachments.get_by_label("File").set_input_files(fake)
    attachments.get_by_label("Kind").select_option("customer_order")
    attachments.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(rf"/orders/{order_id}#attachments$"))
    alert = page.locator(".alert-danger")
    assert alert.inner_text().strip() == (
        "“purchase-order.pdf” is named .pdf but its content is TXT. Nothing was uploaded."
    )
    attachments = panel(page, "Attachments")
    assert "No attachments yet." in attachments.inner_text()
    assert attachments.locator("tr[data-attachment]").count() == 0

    # The customer's real PDF is attached, listed with its kind, and downloads byte for byte.
    attachments.get_by_label("File").set_input_files(real)
    attachments.get_by_label("Kind").select_option("customer_order")
    attachments.get_by_label("Note").fill("Faxed by 张伟")
    attachments.get_by_role("button", name="Upload").click()
    page.wait_for_selector(".alert-success >> text=was attached to the order")
    assert page.locator(".alert-success").inner_text().strip() == "“PO-4711.pdf” was attached to the order."
    rows = panel(page, "Attachments").locator("tr[data-attachment]")
    assert rows.count() == 1
    row_text = rows.first.inner_text()
    assert "Customer's original order" in row_text and "Faxed by 张伟" in row_text and "clerk" in row_text
    with page.expect_download() as download_info:
        rows.first.get_by_role("link", name="PO-4711.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "PO-4711.pdf"
    assert download.path().read_bytes() == real.read_bytes()

    session.rollback()
    stored = session.scalars(select(OrderAttachment).where(OrderAttachment.order_id == order_id)).all()
    assert [(a.filename, a.kind) for a in stored] == [("PO-4711.pdf", "customer_order")]
    session.rollback()


def test_print_the_order_confirmation_in_chinese_and_find_it_in_the_archive(live_server, browser_page, session, seed):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"], language="zh_CN")
    order = make_order(session, clerk)
    order_id, number = order.id, order.number
    session.rollback()

    page = browser_page
    # The bytes the server sends for each PDF tab, as the browser receives them (Chromium
    # shows them in its viewer rather than saving a file).
    received: dict[str, bytes] = {}

    def capture(route: Any) -> None:
        response = route.fetch()
        received[route.request.url] = response.body()
        route.fulfill(response=response)

    page.context.route(re.compile(r"/orders/\d+/(documents|issued-documents)/[^/]+\.pdf"), capture)
    log_in(page, live_server, "clerk@example.com")
    page.goto(f"{live_server}/orders/{order_id}")
    documents = panel(page, "单据")
    assert "本订单尚未出具任何单据。" in documents.inner_text()
    confirmation = documents.locator("tr", has=page.get_by_role("rowheader", name="订单确认书"))
    print_chinese = confirmation.get_by_role("link", name="中文")
    assert print_chinese.get_attribute("title") == "打印订单确认书（将存档）"

    with page.context.expect_page() as tab_info:
        print_chinese.click()
    tab = tab_info.value
    tab.wait_for_load_state()
    printed_url = f"{live_server}/orders/{order_id}/documents/order_confirmation.pdf?lang=zh_CN"
    assert tab.url == printed_url
    printed = received[printed_url]
    assert printed.startswith(b"%PDF")
    tab.close()

    page.reload()
    documents = panel(page, "单据")
    issued_rows = documents.locator("table.ordo-issued-documents tbody tr")
    assert issued_rows.count() == 1
    cells = issued_rows.first.get_by_role("cell")
    assert [cells.nth(i).inner_text().strip() for i in range(3)] == ["订单确认书", "中文", "clerk"]
    with page.context.expect_page() as archived_info:
        issued_rows.first.get_by_role("link", name="下载").click()
    archived_tab = archived_info.value
    archived_tab.wait_for_load_state()
    assert re.search(r"/issued-documents/\d+\.pdf$", archived_tab.url)
    assert received[archived_tab.url] == printed  # the archive keeps the issued bytes
    archived_tab.close()

    session.rollback()
    issued = session.scalars(select(IssuedDocument).where(IssuedDocument.order_id == order_id)).all()
    assert [(d.document, d.language) for d in issued] == [("order_confirmation", "zh_CN")]
    assert number in issued[0].filename
    session.rollback()


@pytest.mark.req("CORE-7")
def test_a_portal_customer_sees_the_status_notice_under_the_bell_and_marks_it_read(
    live_server, browser_page, session, state, admin, seed
):
    make_user(session, "buyer@example.com", ["customer"], customer=seed["local"], language="en")
    order = make_order(session, admin, customer="C001")
    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    number = order.number
    session.rollback()

    page = browser_page
    log_in(page, live_server, "buyer@example.com")
    bell = page.locator("a.ordo-bell")
    assert bell.get_attribute("data-unread") == "1"
    assert " ".join(bell.locator(".ordo-bell-count").inner_text().split()) == "1 unread"
    page.get_by_role("link", name=re.compile(r"^Notifications\s+1\s+unread$")).click()
    page.wait_for_url(re.compile(r"/notifications$"))

    notices = page.locator("#notification-list li[data-notification]")
    assert notices.count() == 1
    notice = notices.first
    assert notice.get_attribute("data-read") == "no"
    assert f"订单 {number} 状态更新：已提交" in notice.inner_text()
    assert "由「草稿」更新为：已提交" in notice.inner_text()
    assert notice.get_by_role("link", name=number).count() == 1

    page.get_by_role("button", name="Mark all read").click()
    page.wait_for_url(re.compile(r"/notifications"))
    page.wait_for_selector('li[data-notification][data-read="yes"]')
    assert page.locator("a.ordo-bell").get_attribute("data-unread") == "0"
    assert page.locator(".ordo-bell-count").count() == 0
    assert page.get_by_role("button", name="Mark all read").count() == 0
    page.get_by_role("link", name=re.compile(r"^Unread")).click()
    page.wait_for_url(re.compile(r"/notifications\?unread=1$"))
    assert page.locator("#notification-list li[data-notification]").count() == 0


def stored_max_mb(session) -> Any:
    session.rollback()
    row = session.get(SettingValue, MAX_MB)
    value = None if row is None else row.value
    session.rollback()
    return value


def test_the_administrator_changes_the_attachment_size_limit_and_a_bad_value_changes_nothing(
    live_server, browser_page, session
):
    page = browser_page
    log_in(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{live_server}/admin/settings")
    row = page.locator(f'li[data-setting="{MAX_MB}"]')
    field = page.get_by_label("Attachment size limit (MB)")
    assert field.input_value() == "20" and row.get_attribute("data-stored") == "no"

    field.fill("5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".alert-success >> text=Settings saved")
    page.reload()
    assert page.get_by_label("Attachment size limit (MB)").input_value() == "5"
    assert row.get_attribute("data-stored") == "yes" and "Changed" in row.inner_text()
    assert stored_max_mb(session) == 5

    # Not a whole number: the field says why, and nothing is stored.
    page.get_by_label("Attachment size limit (MB)").fill("2.5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector("[data-error-summary]")
    assert "Nothing was saved." in page.locator("[data-error-summary]").inner_text()
    field = page.get_by_label("Attachment size limit (MB)")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.input_value() == "2.5"  # what was typed stays, to be corrected
    assert row.locator(".invalid-feedback").inner_text().strip() == "Enter a whole number."
    assert stored_max_mb(session) == 5
    page.goto(f"{live_server}/admin/settings")
    assert page.get_by_label("Attachment size limit (MB)").input_value() == "5"


@pytest.mark.req("CORE-7")
def test_the_notification_tabs_mark_the_filter_shown(live_server, browser_page, session, state, admin, seed):
    make_user(session, "buyer@example.com", ["customer"], customer=seed["local"], language="en")
    order = make_order(session, admin, customer="C001")
    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    session.rollback()

    page = browser_page
    log_in(page, live_server, "buyer@example.com")
    tabs = page.get_by_role("list", name="Show")
    page.goto(f"{live_server}/notifications")
    assert tabs.get_by_role("link", name="All").get_attribute("aria-current") == "page"
    page.get_by_role("button", name="Mark all read").click()
    page.goto(f"{live_server}/notifications?unread=1")
    assert tabs.get_by_role("link", name=re.compile(r"^Unread")).get_attribute("aria-current") == "page"
    assert "No unread notifications." in page.locator("#notification-list").inner_text()


def test_saving_the_settings_screen_unchanged_changes_nothing(live_server, browser_page, session):
    page = browser_page
    log_in(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{live_server}/admin/settings")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".alert")
    session.rollback()
    stored = {row.key: row.value for row in session.scalars(select(SettingValue))}
    session.rollback()
    assert stored == {}
    assert page.locator(".alert-info").inner_text().strip() == "Nothing changed."


def test_a_negative_attachment_size_limit_is_refused(live_server, browser_page, session):
    page = browser_page
    log_in(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.goto(f"{live_server}/admin/settings")
    page.get_by_label("Attachment size limit (MB)").fill("-1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert stored_max_mb(session) is None
    assert page.get_by_label("Attachment size limit (MB)").get_attribute("aria-invalid") == "true"

"""kpi's reports (KP-4): the daily order detail report, the monthly KPI report and the archive.

The daily report's content against hand-placed orders (inside and outside its window),
its schedule on working days (not on Saturday; Monday covers the weekend; once a day),
its recipients by role, its PDF and XLSX read back, the e-mail over real SMTP with both
attachments; the monthly PDF with every metric; the archive screens and API.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import threading
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select, update

from core.clock import COMPANY_TIMEZONE
from core.documents import translations_for
from core.files import file_store
from core.models import Customer, Order, OrderTransition, OutboxFile, OutboxMessage
from core.notify.delivery import deliver_due
from core.settings import session_registry, set_setting
from core.testing import PASSWORD, login, make_order, make_user, token_for
from plugins.kpi import flow
from plugins.kpi.engine import collect_metrics
from plugins.kpi.errors import KpiError
from plugins.kpi.models import KpiReport
from plugins.kpi.reports import (
    daily_report,
    monthly_report_pdf,
    parse_month,
    render_daily_pdf,
    render_daily_xlsx,
    send_daily,
    send_monthly,
    window,
)

pytestmark = pytest.mark.req("KP-4")

TUESDAY = dt.date(2026, 11, 17)


@pytest.fixture
def ordo_plugins():
    return ["kpi"]


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    """A company-time instant in November 2026."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=COMPANY_TIMEZONE)


def place(session, order, *, created, status="submitted", requested=None):
    values = {"created_at": created, "status": status}
    if requested is not None:
        values["requested_date"] = requested
    session.execute(update(Order).where(Order.id == order.id).values(**values))


def move(session, order, when, actor, to_step="confirmed", to_status="confirmed"):
    session.add(
        OrderTransition(
            order_id=order.id,
            action="confirm",
            from_step="submitted",
            to_step=to_step,
            from_status="submitted",
            to_status=to_status,
            actor_id=actor.id if actor else None,
            at=when,
        )
    )


@pytest.fixture
def week(session, seed, admin):
    """Orders around Tuesday 17 Nov 2026's window (Mon 16 09:30 – Tue 17 09:30)."""
    o = {
        name: make_order(session, admin, customer="C001")
        for name in ("new", "early", "late", "draft", "moved", "overdue", "done", "today")
    }
    place(session, o["new"], created=at(16, 10))  # new
    place(session, o["early"], created=at(16, 9, 29))  # just before the window
    place(session, o["late"], created=at(17, 9, 30))  # the window's end is excluded
    place(session, o["draft"], created=at(16, 12), status="draft")  # not an order yet
    place(session, o["moved"], created=at(2, 10), status="confirmed")
    move(session, o["moved"], at(16, 15), admin)  # changed in the window
    move(session, o["early"], at(16, 9), admin)  # moved before the window
    place(session, o["overdue"], created=at(2, 10), status="confirmed", requested=dt.date(2026, 11, 10))
    place(session, o["done"], created=at(2, 10), status="completed", requested=dt.date(2026, 11, 10))
    place(session, o["today"], created=at(2, 10), status="confirmed", requested=TUESDAY)
    session.commit()
    return o


def numbers(rows):
    return {row.number for row in rows}


def test_window_runs_from_the_previous_working_day_at_0930(session, seed):
    assert window(session, TUESDAY) == (at(16, 9, 30), at(17, 9, 30))
    assert window(session, dt.date(2026, 11, 23)) == (at(20, 9, 30), at(23, 9, 30))  # Monday: since Friday


def test_daily_report_content_by_hand(session, week):
    report = daily_report(session, TUESDAY)
    assert numbers(report.new) == {week["new"].number}
    assert numbers(report.changed) == {week["moved"].number}
    (changed,) = report.changed
    assert (changed.step, changed.status, changed.actor) == ("confirmed", "confirmed", "Administrator")
    assert numbers(report.overdue) == {week["overdue"].number}
    assert report.overdue[0].days_overdue == 7
    assert report.counts == {"new": 1, "changed": 1, "overdue": 1}
    assert report.section_keys == ["new", "changed", "overdue"]  # no logistics: no "shipped"
    customer = session.get(Customer, week["new"].customer_id)
    assert report.new[0].customer == customer.name and report.new[0].total == week["new"].total


def test_a_screen_sees_only_its_scope(session, week, seed):
    stranger = make_user(session, "stranger@example.com", ["sales"], branch=seed.get("cd"))
    report = daily_report(session, TUESDAY, viewer=stranger)
    assert report.new == [] and report.changed == [] and report.overdue == []


def test_pdf_and_xlsx_read_back(session, week):
    week_new = week["new"]
    session.execute(update(Customer).where(Customer.id == week_new.customer_id).values(name='=HYPERLINK("x")'))
    session.commit()
    report = daily_report(session, TUESDAY)
    pdf = render_daily_pdf(session, report, "zh_CN")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for key in ("new", "moved", "overdue"):
        assert week[key].number in text
    zh = translations_for(session_registry(session), "zh_CN").gettext
    for title in ("Daily order detail report", "New orders", "Changed orders", "Overdue orders"):
        assert zh(title) in text
    assert zh("Confirmed") in text  # statuses in the reader's language
    workbook = load_workbook(io.BytesIO(render_daily_xlsx(session, report, "en")))
    assert workbook.sheetnames == ["New orders", "Changed orders", "Overdue orders"]
    rows = list(workbook["New orders"].values)
    assert rows[0][:5] == ("Order", "Customer", "Owner", "Status", "Total")
    assert rows[1][0] == week_new.number
    assert rows[1][1] == '\'=HYPERLINK("x")'  # never a formula
    assert rows[1][3] == "Submitted"
    assert list(workbook["Overdue orders"].values)[1][6] == 7


@pytest.fixture
def managers(session, seed):
    set_setting(
        session,
        flow.DAILY_REPORT_ROLES,
        "general_manager,no_such_role,sales_manager",
        registry=session_registry(session),
    )
    session.commit()
    return {
        "gm": make_user(session, "gm@example.com", ["general_manager"], language="en"),
        "sm": make_user(session, "sm@example.com", ["sales_manager"], language="zh_CN"),
        "sales": make_user(session, "sales@example.com", ["sales"]),
    }


def mails(session, template):
    return list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.template == template, OutboxMessage.channel == "email")
        )
    )


def test_saturday_sends_nothing_monday_covers_the_weekend_and_twice_sends_once(session, seed, admin, managers):
    weekend = make_order(session, admin, customer="C002")
    place(session, weekend, created=at(21, 11))  # Saturday
    session.commit()
    assert send_daily(session, at(21, 10)) is None  # Saturday
    assert send_daily(session, at(23, 9, 29)) is None  # Monday, before 09:30
    assert session.scalar(select(KpiReport.id)) is None

    sent = send_daily(session, at(23, 9, 30))
    session.commit()
    assert sent is not None and (sent.kind, sent.period_start) == ("daily", dt.date(2026, 11, 23))
    xlsx = load_workbook(io.BytesIO(file_store(session).get(sent.xlsx_sha256)))
    assert list(xlsx.worksheets[0].values)[1][0] == weekend.number  # the weekend's order is new on Monday
    first = len(mails(session, "kpi.daily_report"))

    assert send_daily(session, at(23, 10)) is None  # a second run (or worker) sends nothing
    session.commit()
    assert len(mails(session, "kpi.daily_report")) == first
    assert session.scalar(select(KpiReport.id).where(KpiReport.id != sent.id)) is None


def test_recipients_by_role_each_with_pdf_and_xlsx_in_their_language(session, seed, managers):
    sent = send_daily(session, at(17, 9, 45))
    session.commit()
    messages = {m.address: m for m in mails(session, "kpi.daily_report")}
    assert {"gm@example.com", "sm@example.com"} <= set(messages)
    assert "sales@example.com" not in messages
    assert messages["gm@example.com"].language == "en" and messages["sm@example.com"].language == "zh_CN"
    assert messages["gm@example.com"].subject == "Daily order detail report 2026-11-17"
    for address in ("gm@example.com", "sm@example.com"):
        attached = list(
            session.scalars(
                select(OutboxFile).where(OutboxFile.message_id == messages[address].id).order_by(OutboxFile.position)
            )
        )
        assert [f.filename for f in attached] == [
            "daily-order-report-2026-11-17.pdf",
            "daily-order-report-2026-11-17.xlsx",
        ]
    zh = session.scalars(
        select(OutboxFile.sha256)
        .where(OutboxFile.message_id == messages["sm@example.com"].id)
        .order_by(OutboxFile.position)
    ).all()
    en = session.scalars(
        select(OutboxFile.sha256)
        .where(OutboxFile.message_id == messages["gm@example.com"].id)
        .order_by(OutboxFile.position)
    ).all()
    assert zh == [sent.pdf_sha256, sent.xlsx_sha256]  # the archived copy is the Chinese one
    assert en[1] != zh[1]
    assert load_workbook(io.BytesIO(file_store(session).get(en[1]))).sheetnames[0] == "New orders"
    assert sent.recipients >= 2


class Mailbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd names its hooks so
        with self.lock:
            self.received.append(envelope.content)
        return "250 Message accepted"


def test_the_email_arrives_over_smtp_with_both_attachments(session, state, seed, week, managers):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for key, value in (("host", "127.0.0.1"), ("port", port), ("sender", "Ordo <o@ordo.example>"), ("timeout", 10)):
            set_setting(session, f"core.smtp.{key}", value, registry=state.registry)
        sent = send_daily(session, at(17, 9, 30))
        session.commit()
        deliver_due(state.sessions, state.registry, worker="test")
    finally:
        controller.stop()
    received = [message_from_bytes(raw, policy=default) for raw in box.received]
    (mail,) = [m for m in received if "sm@example.com" in str(m["To"])]
    pdf, xlsx = list(mail.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content() == file_store(session).get(sent.pdf_sha256)
    assert xlsx.get_content() == file_store(session).get(sent.xlsx_sha256)
    assert week["overdue"].number in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.get_content())).pages)


def test_monthly_pdf_shows_every_metric_with_a_chart(session, week):
    registry = session_registry(session)
    pdf = monthly_report_pdf(session, dt.date(2026, 11, 1), "en")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)
    metrics = collect_metrics(registry)
    assert metrics
    for metric in metrics.values():
        assert " ".join(metric.label.split()) in text
    assert "Monthly KPI report" in text and "2026-11" in text


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_monthly_pdf_prints_a_metric_description_holding_a_percent_sign(make_app, language):
    # billing.collection_rate's description says "above 100 % when…": printed as is, not %-formatted.
    app = make_app(["kpi", "billing"])
    with app.extensions["ordo"].sessions() as s:
        pdf = monthly_report_pdf(s, dt.date(2026, 11, 1), language)
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "100 %" in text


def test_monthly_report_goes_out_once_on_the_first_working_day(session, seed):
    set_setting(session, flow.MONTHLY_REPORT_ROLES, "general_manager", registry=session_registry(session))
    gm = make_user(session, "gm@example.com", ["general_manager"], language="en")
    assert send_monthly(session, at(1, 7, month=8)) is None  # Saturday 1 August: not a working day
    july = send_monthly(session, at(3, 7, month=8))  # Monday 3 August: the first working day
    assert july is not None and july.period_start == dt.date(2026, 7, 1)
    sent = send_monthly(session, at(1, 7, month=12))
    session.commit()
    assert sent is not None and (sent.kind, sent.period_start, sent.period_end) == (
        "monthly",
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )
    assert send_monthly(session, at(2, 7, month=12)) is None
    (message,) = [m for m in mails(session, "kpi.monthly_report") if m.user_id == gm.id and "2026-11" in m.subject]
    (attached,) = session.scalars(select(OutboxFile).where(OutboxFile.message_id == message.id))
    assert attached.filename == "monthly-kpi-report-2026-11.pdf"


def test_bad_months_and_dates_are_refused():
    assert parse_month("2026-02") == dt.date(2026, 2, 1)
    with pytest.raises(KpiError) as bad:
        parse_month("2026-13")
    assert bad.value.status == 422


def test_archive_screen_and_downloads(session, client, seed, managers):
    sent = send_daily(session, at(17, 9, 30))
    session.commit()
    login(client, "gm@example.com", PASSWORD)
    page = client.get("/kpi/reports")
    assert page.status_code == 200 and f'data-report="{sent.id}"' in page.get_data(as_text=True)
    pdf = client.get(f"/kpi/reports/{sent.id}/pdf")
    assert pdf.status_code == 200 and pdf.data == file_store(session).get(sent.pdf_sha256)
    assert client.get(f"/kpi/reports/{sent.id + 99}/pdf").status_code == 404
    preview = client.get("/kpi/reports/daily?date=2026-11-17")
    assert preview.status_code == 200 and "section-overdue" in preview.get_data(as_text=True)


def test_screens_need_the_permission(session, client, seed, managers):
    login(client, "sales@example.com", PASSWORD)
    assert client.get("/kpi/reports").status_code == 403


def test_api(session, client, seed, week, managers):
    sent = send_daily(session, at(17, 9, 30))
    session.commit()
    headers = {"Authorization": f"Bearer {token_for(session, managers['gm'])}"}
    listing = client.get("/api/v1/kpi/reports", headers=headers)
    assert listing.status_code == 200 and listing.json["items"][0]["id"] == sent.id
    xlsx = client.get(f"/api/v1/kpi/reports/{sent.id}/xlsx", headers=headers)
    assert xlsx.status_code == 200 and xlsx.data == file_store(session).get(sent.xlsx_sha256)
    assert client.get("/api/v1/kpi/reports/999/pdf", headers=headers).status_code == 404
    daily = client.get("/api/v1/kpi/reports/daily?date=2026-11-17", headers=headers)
    assert daily.status_code == 200
    sections = {s["key"]: s for s in daily.json["sections"]}
    assert [r["number"] for r in sections["overdue"]["rows"]] == [week["overdue"].number]
    assert sections["overdue"]["rows"][0]["days_overdue"] == 7
    assert client.get("/api/v1/kpi/reports/daily?date=yesterday", headers=headers).status_code == 422
    other = {"Authorization": f"Bearer {token_for(session, managers['sales'])}"}
    assert client.get("/api/v1/kpi/reports", headers=other).status_code == 403


def test_a_branch_manager_gets_no_company_wide_report(session, client, seed, week, managers):
    """The archived reports are company-wide: a reader with a narrower scope sees none of them."""
    sent = send_daily(session, at(17, 9, 30))
    session.commit()
    login(client, "sm@example.com", PASSWORD)
    page = client.get("/kpi/reports")
    assert page.status_code == 200 and f'data-report="{sent.id}"' not in page.get_data(as_text=True)
    assert client.get(f"/kpi/reports/{sent.id}/pdf").status_code == 404
    headers = {"Authorization": f"Bearer {token_for(session, managers['sm'])}"}
    assert client.get("/api/v1/kpi/reports", headers=headers).json["items"] == []
    assert client.get(f"/api/v1/kpi/reports/{sent.id}/xlsx", headers=headers).status_code == 404


def test_the_monthly_report_on_request_counts_only_the_readers_orders(session, seed, week, managers):
    """Generated on request, the monthly report measures within the reader's scope (none here)."""
    from plugins.kpi.reports import monthly_lines

    company = {line.metric.key: line.value for line in monthly_lines(session, dt.date(2026, 11, 1), "en")}
    scoped = {
        line.metric.key: line.value
        for line in monthly_lines(session, dt.date(2026, 11, 1), "en", viewer=managers["sm"])
    }
    assert company["orders.count"] > 0 and scoped["orders.count"] == 0

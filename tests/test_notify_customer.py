"""Customers hear about their orders (CORE-7): status changes as they happen, and a weekly report."""

from __future__ import annotations

import datetime as dt
import socket
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from core.models import Notification, OutboxMessage
from core.notify import digest
from core.notify.delivery import deliver_due
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order

pytestmark = pytest.mark.req("CORE-7")


def outbox(session, template: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if template:
        query = query.where(OutboxMessage.template == template)
    return list(session.scalars(query))


def portal(session, customer_id: int) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.customer_id == customer_id)))


def test_a_status_change_queues_an_email_to_the_contact_and_a_portal_notice(session, state, admin, seed):
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    session.commit()

    messages = outbox(session, "order_status_changed")
    assert [(m.channel, m.address, m.order_id) for m in messages] == [
        ("email", "zhang@example.com", order.id),
        ("email", "zhang@example.com", order.id),
    ]
    assert [m.subject for m in messages] == [
        f"订单 {order.number} 状态更新：已提交",
        f"订单 {order.number} 状态更新：已确认",
    ]
    assert "由「草稿」更新为：已提交" in messages[0].body
    notices = portal(session, seed["local"].id)
    assert [n.subject for n in notices] == [m.subject for m in messages]
    assert all(n.order_id == order.id and n.user_id is None for n in notices)


def test_a_transition_that_rolls_back_tells_the_customer_nothing(session, state, admin, seed):
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    assert len(outbox(session)) == 1
    session.rollback()
    assert outbox(session) == [] and portal(session, seed["local"].id) == []


def test_only_the_configured_statuses_are_announced(session, state, admin, seed):
    set_setting(session, "core.notify.customer_statuses", "confirmed, completed", registry=state.registry)
    set_setting(session, "core.notify.customer_channels", "email", registry=state.registry)
    session.commit()
    order = make_order(session, admin)

    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    assert outbox(session) == []

    take_action(session, state.registry, admin, order, "confirm")
    session.commit()
    assert [m.subject for m in outbox(session)] == [f"订单 {order.number} 状态更新：已确认"]
    assert portal(session, seed["local"].id) == []  # in-app is not among the channels


def test_an_english_speaking_customer_is_told_in_english(session, state, admin, seed):
    seed["remote"].language = "en"
    session.commit()
    order = make_order(session, admin, customer="C002")
    take_action(session, state.registry, admin, order, "cancel", reason="customer withdrew")
    session.commit()
    (message,) = outbox(session)
    assert message.subject == f"Order {order.number}: Cancelled"
    assert (message.address, message.language) == ("li@example.com", "en")
    assert "customer withdrew" not in message.body  # internal reasons stay internal


def orders_in_every_status(session, state, admin):
    """C001: draft, submitted, confirmed, completed; C002: cancelled. Returns them by status."""
    orders = {}
    for status, actions in {
        "draft": [],
        "submitted": ["submit"],
        "confirmed": ["submit", "confirm"],
        "completed": ["submit", "confirm", "complete"],
    }.items():
        order = make_order(session, admin, reference=f"PO-{status}")
        for action in actions:
            take_action(session, state.registry, admin, order, action)
        orders[status] = order
    cancelled = make_order(session, admin, customer="C002", reference="PO-cancelled")
    take_action(session, state.registry, admin, cancelled, "submit")
    take_action(session, state.registry, admin, cancelled, "cancel", reason="duplicate")
    orders["cancelled"] = cancelled
    session.commit()
    return orders


def test_the_weekly_report_lists_open_orders_only_and_is_sent_once_a_week(session, state, admin, seed):
    orders = orders_in_every_status(session, state, admin)
    before = len(outbox(session))
    monday = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai

    assert digest.run(session, monday) == 1
    session.commit()

    (report,) = outbox(session, "customer_progress_digest")
    assert report.address == "zhang@example.com" and report.customer_id == seed["local"].id
    assert report.subject == "订单进度周报（2026-W49）：2 笔订单处理中"
    assert orders["submitted"].number in report.body and orders["confirmed"].number in report.body
    assert "已提交" in report.body and "已确认" in report.body and "2026年12月15日" in report.body
    for closed in ("draft", "completed", "cancelled"):
        assert orders[closed].number not in report.body
    (notice,) = [n for n in portal(session, seed["local"].id) if n.template == "customer_progress_digest"]
    assert notice.subject == report.subject

    # Run again the same week (a retry, a manual run): nothing new.
    assert digest.run(session, monday + dt.timedelta(days=3)) == 1
    session.commit()
    assert len(outbox(session)) == before + 1
    digests = select(func.count()).select_from(Notification).where(Notification.template == "customer_progress_digest")
    assert session.scalar(digests) == 1

    # Next week brings the next report.
    digest.run(session, monday + dt.timedelta(days=7))
    session.commit()
    reports = outbox(session, "customer_progress_digest")
    assert len(reports) == 2 and "2026-W50" in reports[-1].subject


def test_weeks_are_counted_in_the_company_time_zone():
    # Sunday 17:00 UTC is already Monday 01:00 in Shanghai: the new week.
    assert digest.week_label(dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.UTC)) == "2026-W49"
    assert digest.week_label(dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)) == "2026-W48"


def test_the_report_is_a_weekly_job_an_administrator_can_reschedule(state):
    job = state.registry.jobs["core.customer_digest"]
    assert job.schedule == "weekly:mon:09:00" and job.function is digest.run and job.label


class _Keeper:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd names its hooks so
        self.received.append(envelope.content)
        return "250 OK"


def test_the_customer_receives_the_status_email_over_smtp(session, state, admin, seed):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keeper = _Keeper()
    server = Controller(keeper, hostname="127.0.0.1", port=port)
    server.start()
    try:
        set_setting(session, "core.smtp.host", "127.0.0.1", registry=state.registry)
        set_setting(session, "core.smtp.port", port, registry=state.registry)
        order = make_order(session, admin)
        take_action(session, state.registry, admin, order, "submit")
        session.commit()
        report = deliver_due(state.sessions, state.registry, worker="test")
    finally:
        server.stop()
    assert report.sent == 1
    (mail,) = [message_from_bytes(raw, policy=default) for raw in keeper.received]
    assert mail["Subject"] == f"订单 {order.number} 状态更新：已提交"
    assert str(mail["To"]) == "张伟 <zhang@example.com>"

"""Delivery of the outbox to a real SMTP server (aiosmtpd on loopback) and to plugin channels.

Covers what the issue asks of e-mail: the content and language of what arrives, a
server that is down (the message waits with its error and goes out once later), a
malformed address (failed, kept, error shown), an attached issued document, a worker
killed between handing a message over and recording it (never sent twice), and two
workers at once (each message once).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import types
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from core.contrib import Channel
from core.db import make_session_factory, utcnow
from core.files import file_store
from core.hookspecs import hookimpl
from core.models import CustomerContact, IssuedDocument, OutboxMessage
from core.notify import PermanentFailure, ToCustomer, notify
from core.notify.delivery import deliver_due
from core.plugins import PluginInfo, Registry, discover
from core.settings import set_setting

pytestmark = pytest.mark.req("CORE-7")

ROOT = Path(__file__).resolve().parents[1]
STATUS = {"from_status": "submitted", "to_status": "confirmed"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """An SMTP handler that keeps what it receives and can refuse or misbehave on demand."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse_rcpt: dict[str, str] = {}
        self.data_answers: list[str] = []
        self.on_data: object = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd names its hooks so
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd names its hooks so
        if self.data_answers:
            return self.data_answers.pop(0)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), envelope.content))
        if callable(self.on_data):
            self.on_data()
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(content, policy=default) for _, content in self.received]  # type: ignore[misc]


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(session, state):
    """A real SMTP server on a free loopback port, and the settings pointing Ordo at it (not started yet)."""
    server = SmtpServer(free_port())
    set_setting(session, "core.smtp.host", "127.0.0.1", registry=state.registry)
    set_setting(session, "core.smtp.port", server.port, registry=state.registry)
    set_setting(session, "core.smtp.sender", "山城订单 <orders@ordo.example>", registry=state.registry)
    set_setting(session, "core.smtp.timeout", 10, registry=state.registry)
    session.commit()
    yield server
    server.stop()


@pytest.fixture
def running(smtp):
    smtp.start()
    return smtp


def deliver(state, now=None, worker="test", **kwargs):
    return deliver_due(state.sessions, state.registry, worker=worker, now=now, **kwargs)


def reload(session, message: OutboxMessage) -> OutboxMessage:
    session.rollback()
    session.expire_all()
    found = session.get(OutboxMessage, message.id)
    assert found is not None
    return found


def queue_status_notice(session, customer, order=None, document=None) -> list[OutboxMessage]:
    queued = notify(
        session, "order_status_changed", to=ToCustomer(customer.id), order=order, context=STATUS, document=document
    )
    session.commit()
    return queued


def test_the_email_that_arrives_is_the_notice_in_the_customers_language(session, state, running, admin, seed):
    from core.testing import make_order

    seed["remote"].language = "en"
    session.commit()
    order = make_order(session, admin)
    (zh,) = queue_status_notice(session, seed["local"], order)
    (en,) = queue_status_notice(session, seed["remote"], order)

    report = deliver(state)

    assert (report.sent, report.retried, report.failed, report.uncertain) == (2, 0, 0, 0)
    by_to = {m["To"].addresses[0].addr_spec: m for m in running.mailbox.messages()}
    chinese, english = by_to["zhang@example.com"], by_to["li@example.com"]
    assert chinese["Subject"] == f"订单 {order.number} 状态更新：已确认"
    assert chinese["To"].addresses[0].display_name == "张伟"
    assert chinese["From"].addresses[0].display_name == "山城订单"
    assert chinese["From"].addresses[0].addr_spec == "orders@ordo.example"
    assert chinese["Content-Language"] == "zh-CN"
    assert chinese.get_content_charset() == "utf-8"
    assert "尊敬的张伟" in chinese.get_content() and "已确认" in chinese.get_content()
    assert english["Subject"] == f"Order {order.number}: Confirmed"
    assert english["Content-Language"] == "en"
    assert "Dear 李娜," in english.get_content()
    zh, en = reload(session, zh), reload(session, en)
    assert chinese["Message-ID"] == zh.message_id == f"<ordo-outbox-{zh.id}@ordo.example>"
    assert english["Message-ID"] == en.message_id
    assert (zh.status, zh.attempts, zh.claimed_by, zh.last_error) == ("sent", 1, "", "")
    assert zh.sent_at is not None and zh.handed_at is not None
    # Sent is sent: the next pass has nothing to do.
    assert deliver(state).handled == 0
    assert len(running.mailbox.received) == 2


def test_a_server_that_is_down_keeps_the_message_queued_until_it_is_back(session, state, smtp, seed):
    (message,) = queue_status_notice(session, seed["local"])
    start = utcnow()

    report = deliver(state, now=start)

    assert (report.sent, report.retried) == (0, 1)
    waiting = reload(session, message)
    assert (waiting.status, waiting.attempts) == ("queued", 1)
    assert f"cannot reach the SMTP server 127.0.0.1:{smtp.port}" in waiting.last_error
    assert "ConnectionRefusedError" in waiting.last_error
    assert dt.timedelta(seconds=59) < waiting.next_attempt_at - start < dt.timedelta(seconds=65)

    smtp.start()
    assert deliver(state, now=start + dt.timedelta(seconds=30)).handled == 0  # not due yet
    assert smtp.mailbox.received == []
    report = deliver(state, now=start + dt.timedelta(minutes=2))
    assert report.sent == 1
    sent = reload(session, message)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert deliver(state, now=start + dt.timedelta(hours=1)).handled == 0
    assert [rcpt for rcpt, _ in smtp.mailbox.received] == [["zhang@example.com"]]


def test_retries_back_off_and_give_up_after_the_configured_attempts(session, state, smtp, seed):
    set_setting(session, "core.notify.max_attempts", 3, registry=state.registry)
    (message,) = queue_status_notice(session, seed["local"])
    now = utcnow()
    waits = []
    for _ in range(3):
        deliver(state, now=now)
        row = reload(session, message)
        if row.status == "queued":
            waits.append(round((row.next_attempt_at - now).total_seconds() / 60))
            now = row.next_attempt_at + dt.timedelta(seconds=1)
    assert waits == [1, 2]
    failed = reload(session, message)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error.startswith("gave up after 3 attempts: cannot reach the SMTP server")
    assert deliver(state, now=now + dt.timedelta(days=1)).handled == 0


def test_a_malformed_address_fails_at_once_and_the_message_is_kept_with_its_error(session, state, running, seed):
    seed["local"].contacts[0].email = "zhang@@example"
    session.commit()
    (message,) = queue_status_notice(session, seed["local"])

    report = deliver(state)

    assert (report.sent, report.failed) == (0, 1)
    failed = reload(session, message)
    assert (failed.status, failed.attempts, failed.address) == ("failed", 1, "zhang@@example")
    assert "'zhang@@example' is not a valid e-mail address" in failed.last_error
    assert running.mailbox.received == []
    assert deliver(state, now=utcnow() + dt.timedelta(days=1)).handled == 0


def test_the_server_refusing_the_recipient_fails_for_good_or_waits_if_temporary(session, state, running, seed):
    customer = seed["local"]
    customer.contacts.append(CustomerContact(name="Busy", email="busy@example.com"))
    session.commit()
    running.mailbox.refuse_rcpt = {"zhang@example.com": "550 5.1.1 no such user", "busy@example.com": "451 4.3.0 later"}
    gone, busy = queue_status_notice(session, customer)

    report = deliver(state)

    assert (report.failed, report.retried) == (1, 1)
    gone, busy = reload(session, gone), reload(session, busy)
    assert gone.status == "failed" and "550" in gone.last_error and "no such user" in gone.last_error
    assert busy.status == "queued" and "451" in busy.last_error
    assert gone.handed_at is None and busy.handed_at is None


def test_a_refused_data_transfer_delivered_nothing_and_is_retried(session, state, running, seed):
    (message,) = queue_status_notice(session, seed["local"])
    running.mailbox.data_answers = ["452 4.3.1 insufficient storage"]
    start = utcnow()

    assert deliver(state, now=start).retried == 1
    row = reload(session, message)
    assert (row.status, row.handed_at) == ("queued", None)
    assert "452" in row.last_error
    assert deliver(state, now=start + dt.timedelta(minutes=2)).sent == 1
    assert len(running.mailbox.received) == 1


def tiny_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "订单确认书"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_an_issued_document_arrives_as_a_pdf_attachment(session, state, running, admin, seed):
    from core.testing import make_order

    order = make_order(session, admin)
    pdf = tiny_pdf()
    sha = file_store(session).put(pdf)
    document = IssuedDocument(
        order_id=order.id,
        document="order_confirmation",
        language="zh_CN",
        filename=f"订单确认书-{order.number}.pdf",
        size=len(pdf),
        sha256=sha,
        issued_by_id=admin.id,
    )
    session.add(document)
    session.flush()
    queue_status_notice(session, seed["local"], order, document=document)

    assert deliver(state).sent == 1

    (mail,) = running.mailbox.messages()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"订单确认书-{order.number}.pdf"
    content = attachment.get_content()
    assert content == pdf
    assert len(PdfReader(io.BytesIO(content)).pages) == 1
    assert "尊敬的张伟" in mail.get_body(preferencelist=("plain",)).get_content()


CHILD = """
import sys
from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.installation import enabled_plugins
from core.notify.delivery import deliver_due
from core.plugins import Registry

instance = load_instance(sys.argv[1])
engine = make_engine(instance.database_url)
registry = Registry(enabled_plugins(engine))
sessions = make_session_factory(engine, registry=registry, instance=instance)
print(deliver_due(sessions, registry, worker="doomed"), flush=True)
"""


def test_a_worker_killed_between_handing_over_and_recording_never_sends_twice(session, state, running, seed):
    (message,) = queue_status_notice(session, seed["local"])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state.instance.path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ORDO_DATABASE_URL": state.instance.database_url},
    )
    # The server has the whole message when the worker dies, before it hears "250".
    running.mailbox.on_data = lambda: os.kill(child.pid, signal.SIGKILL)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, stderr.decode()
    assert len(running.mailbox.received) == 1

    halfway = reload(session, message)
    assert halfway.status == "sending" and halfway.handed_at is not None
    assert halfway.claimed_by.startswith("doomed/")

    report = deliver(state, now=utcnow() + dt.timedelta(minutes=10))  # the lease has run out

    assert (report.uncertain, report.sent) == (1, 0)
    uncertain = reload(session, message)
    assert uncertain.status == "uncertain"
    assert "stopped while handing the message over" in uncertain.last_error
    assert "it may have been delivered" in uncertain.last_error
    assert deliver(state, now=utcnow() + dt.timedelta(days=1)).handled == 0
    assert len(running.mailbox.received) == 1  # exactly one copy


def test_a_worker_that_stopped_before_handing_over_leaves_the_message_to_the_next(session, state, running, seed):
    (message,) = queue_status_notice(session, seed["local"])
    message = reload(session, message)
    message.status, message.claimed_by, message.attempts = "sending", "gone/1", 1
    message.lease_until = utcnow() - dt.timedelta(seconds=1)
    session.commit()

    report = deliver(state)

    # Nothing was handed over, so it is sent again — after the backoff of a failed
    # attempt, so that a message that brings its worker down cannot loop.
    assert (report.recovered, report.sent) == (1, 0)
    waiting = reload(session, message)
    assert waiting.status == "queued" and waiting.next_attempt_at > utcnow()
    report = deliver(state, now=utcnow() + dt.timedelta(minutes=2))
    assert report.sent == 1
    sent = reload(session, message)
    assert (sent.status, sent.attempts) == ("sent", 2)
    assert len(running.mailbox.received) == 1


def test_a_message_whose_worker_keeps_dying_fails_after_its_attempts(session, state, running, seed):
    (message,) = queue_status_notice(session, seed["local"])
    message = reload(session, message)
    message.status, message.claimed_by, message.attempts = "sending", "gone/1", 8  # the default maximum
    message.lease_until = utcnow() - dt.timedelta(seconds=1)
    session.commit()

    report = deliver(state)

    failed = reload(session, message)
    assert (report.recovered, report.sent, failed.status) == (1, 0, "failed")
    assert "8 attempts" in failed.last_error and running.mailbox.received == []


def test_two_workers_at_once_deliver_each_message_once(session, state, running, seed):
    customer = seed["local"]
    for n in range(7):
        customer.contacts.append(CustomerContact(name=f"联系人{n}", email=f"buyer{n}@example.com"))
    session.commit()
    queued = queue_status_notice(session, customer)
    assert len(queued) == 8
    barrier = threading.Barrier(2)
    reports: dict[str, list] = {"a": [], "b": []}

    def work(name: str) -> None:
        barrier.wait()
        while True:
            report = deliver(state, worker=name, limit=1)
            reports[name].append(report)
            if report.handled == 0:
                return

    threads = [threading.Thread(target=work, args=(name,)) for name in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(r.sent for rs in reports.values() for r in rs) == 8
    recipients = sorted(rcpt[0] for rcpt, _ in running.mailbox.received)
    assert recipients == sorted({m.address for m in queued}) and len(recipients) == 8
    session.expire_all()
    assert {m.status for m in session.scalars(select(OutboxMessage))} == {"sent"}


# --- plugin channels -------------------------------------------------------------------


def sms_registry(deliveries: list[str]) -> Registry:
    """A registry with a made-up SMS plugin whose channel records what it is given."""

    busy = ["999-1"]

    def deliver_sms(message: OutboxMessage) -> None:
        if message.address.startswith("000"):
            raise PermanentFailure("not a mobile number")
        if message.address in busy:
            busy.remove(message.address)
            deliveries.append("(gateway busy)")
            raise TimeoutError("gateway busy")
        deliveries.append(f"{message.address}: {message.subject}")

    module = types.ModuleType("test_plugin_sms")
    module.__doc__ = "SMS: a channel made by the test."
    module.ordo_register_channels = hookimpl(lambda: [Channel("sms", "SMS", "phone", deliver_sms)])
    installed = {**discover(), "sms": PluginInfo("sms", "1.0", (), {}, "SMS", "", module)}
    return Registry(["sms"], installed)


def test_a_plugin_channel_delivers_to_contact_phones_with_retries(session, state, seed):
    deliveries: list[str] = []
    registry = sms_registry(deliveries)
    sessions = make_session_factory(state.engine, registry=registry, instance=state.instance)
    customer = seed["local"]
    customer.contacts.append(CustomerContact(name="坏号码", phone="000"))
    customer.contacts.append(CustomerContact(name="忙", phone="999-1"))
    session.commit()
    with sessions() as writer:
        queued = notify(writer, "order_status_changed", to=ToCustomer(customer.id), context=STATUS, channels=["sms"])
        writer.commit()
    assert [(m.channel, m.address) for m in queued] == [("sms", "023-6000-0001"), ("sms", "000"), ("sms", "999-1")]

    start = utcnow()
    report = deliver_due(sessions, registry, worker="sms", now=start)
    assert (report.sent, report.failed, report.retried) == (1, 1, 1)
    report = deliver_due(sessions, registry, worker="sms", now=start + dt.timedelta(minutes=2))
    assert report.sent == 1
    assert deliveries[0].startswith("023-6000-0001: 订单")
    assert deliveries[1:] == ["(gateway busy)", deliveries[2]] and deliveries[2].startswith("999-1: ")
    session.expire_all()
    rows = {m.address: m for m in session.scalars(select(OutboxMessage))}
    assert rows["000"].status == "failed" and rows["000"].last_error == "not a mobile number"
    assert rows["999-1"].status == "sent" and rows["999-1"].attempts == 2


def test_a_channel_whose_plugin_is_gone_waits_with_a_clear_error(session, state, seed):
    deliveries: list[str] = []
    sessions = make_session_factory(state.engine, registry=sms_registry(deliveries), instance=state.instance)
    with sessions() as writer:
        (message,) = notify(
            writer, "order_status_changed", to=ToCustomer(seed["local"].id), context=STATUS, channels=["sms"]
        )
        writer.commit()
    assert deliver(state).retried == 1  # the app's own registry has no sms plugin
    row = reload(session, message)
    assert row.status == "queued" and "channel 'sms' is not available" in row.last_error


def test_a_document_missing_from_the_file_store_fails_the_message_with_its_name(session, state, running, admin, seed):
    from core.testing import make_order

    order = make_order(session, admin)
    document = IssuedDocument(
        order_id=order.id, document="order_confirmation", language="zh_CN", filename="gone.pdf", size=1, sha256="a" * 64
    )
    session.add(document)
    session.flush()
    (message,) = queue_status_notice(session, seed["local"], order, document=document)

    assert deliver(state).failed == 1
    failed = reload(session, message)
    assert failed.status == "failed" and "'gone.pdf' is missing from the file store" in failed.last_error
    assert (failed.claimed_by, failed.lease_until) == ("", None)
    assert running.mailbox.received == []


# --- a message that cannot be delivered never holds up the others ------------------------


def issued_document(session, admin, order, pdf: bytes) -> IssuedDocument:
    document = IssuedDocument(
        order_id=order.id,
        document="order_confirmation",
        language="zh_CN",
        filename="订单确认书.pdf",
        size=len(pdf),
        sha256=file_store(session).put(pdf),
        issued_by_id=admin.id,
    )
    session.add(document)
    session.flush()
    return document


@pytest.mark.parametrize("damage", ["corrupt", "unreadable", "bad hash"])
def test_an_attachment_that_cannot_be_read_fails_its_message_and_the_queue_goes_on(
    session, state, running, admin, seed, monkeypatch, damage
):
    from core.files import FileStore
    from core.testing import make_order

    order = make_order(session, admin)
    pdf = tiny_pdf()
    document = issued_document(session, admin, order, pdf)
    (poisoned,) = queue_status_notice(session, seed["local"], order, document=document)
    others = [queue_status_notice(session, seed["remote"], order)[0] for _ in range(2)]
    if damage == "corrupt":  # bit rot, a partial restore: the content no longer matches its hash
        path = file_store(session).path(document.sha256)
        path.chmod(0o644)
        path.write_bytes(pdf + b"garbage")
    elif damage == "unreadable":

        def refused(self, sha256):
            raise PermissionError(13, "Permission denied", sha256)

        monkeypatch.setattr(FileStore, "get", refused)
    else:
        document.sha256 = "../not-a-hash"
        session.commit()

    report = deliver(state)

    assert (report.sent, report.failed) == (2, 1)
    failed = reload(session, poisoned)
    assert failed.status == "failed" and "订单确认书.pdf" in failed.last_error
    assert "cannot be read" in failed.last_error
    assert (failed.claimed_by, failed.lease_until, failed.attempts) == ("", None, 1)
    assert [reload(session, m).status for m in others] == ["sent", "sent"]
    assert len(running.mailbox.received) == 2
    assert deliver(state, now=utcnow() + dt.timedelta(days=1)).handled == 0


def test_an_unexpected_error_requeues_its_message_and_the_others_are_delivered(
    session, state, running, seed, monkeypatch
):
    from core.notify import delivery

    set_setting(session, "core.notify.max_attempts", 2, registry=state.registry)
    customer = seed["local"]
    customer.contacts.append(CustomerContact(name="坏", email="bad@example.com"))
    customer.contacts.append(CustomerContact(name="好", email="good@example.com"))
    session.commit()
    queued = queue_status_notice(session, customer)
    original = delivery._attachment

    def attachment(session, message):
        if message.address == "bad@example.com":
            raise RuntimeError("a bug")
        return original(session, message)

    monkeypatch.setattr(delivery, "_attachment", attachment)
    start = utcnow()

    report = deliver(state, now=start)

    assert (report.sent, report.retried) == (2, 1)
    bad = reload(session, next(m for m in queued if m.address == "bad@example.com"))
    assert (bad.status, bad.attempts, bad.claimed_by, bad.lease_until) == ("queued", 1, "", None)
    assert "RuntimeError: a bug" in bad.last_error
    assert dt.timedelta(seconds=59) < bad.next_attempt_at - start < dt.timedelta(seconds=65)
    assert sorted(rcpt[0] for rcpt, _ in running.mailbox.received) == ["good@example.com", "zhang@example.com"]

    report = deliver(state, now=start + dt.timedelta(minutes=2))
    assert report.failed == 1
    bad = reload(session, bad)
    assert (bad.status, bad.attempts) == ("failed", 2) and "RuntimeError: a bug" in bad.last_error


# --- fencing: a message another worker or an administrator took is left to them --------


def test_a_message_taken_by_another_worker_before_the_hand_over_is_not_sent(session, state, running, seed, monkeypatch):
    from core.notify.email import SmtpTransport

    (message,) = queue_status_notice(session, seed["local"])
    original = SmtpTransport._envelope

    def slow_envelope(self, address, utf8):
        # The set-up outlasted the lease: another worker recovered the message and claimed it.
        connection = original(self, address, utf8)
        with state.sessions() as other, other.begin():
            row = other.get(OutboxMessage, message.id)
            row.claimed_by, row.attempts = "other/1", row.attempts + 1
        return connection

    monkeypatch.setattr(SmtpTransport, "_envelope", slow_envelope)

    report = deliver(state)

    assert report.handled == 0 and report.lost == 1
    assert running.mailbox.received == []
    row = reload(session, message)
    assert (row.status, row.claimed_by, row.handed_at) == ("sending", "other/1", None)


def test_a_message_settled_elsewhere_during_the_transfer_is_not_overwritten(session, state, running, seed):
    (message,) = queue_status_notice(session, seed["local"])

    def settle_elsewhere() -> None:
        # The lease ran out during DATA: another worker's recovery marked it uncertain.
        with state.sessions() as other, other.begin():
            row = other.get(OutboxMessage, message.id)
            row.status, row.claimed_by, row.lease_until = "uncertain", "", None

    running.mailbox.on_data = settle_elsewhere

    report = deliver(state)

    assert (report.sent, report.lost) == (0, 1)
    assert len(running.mailbox.received) == 1
    assert reload(session, message).status == "uncertain"


def test_the_claim_outlasts_the_smtp_conversation_before_the_hand_over(session, state, running, seed, monkeypatch):
    from core.notify.email import SmtpTransport

    set_setting(session, "core.smtp.timeout", 120, registry=state.registry)
    session.commit()
    (message,) = queue_status_notice(session, seed["local"])
    original = SmtpTransport._envelope
    leases = []

    def envelope(self, address, utf8):
        with state.sessions() as other:
            leases.append(other.get(OutboxMessage, message.id).lease_until - utcnow())
        return original(self, address, utf8)

    monkeypatch.setattr(SmtpTransport, "_envelope", envelope)

    assert deliver(state).sent == 1
    # connect, EHLO, STARTTLS, EHLO, login, MAIL and RCPT may each wait the whole timeout.
    assert leases[0] >= dt.timedelta(seconds=6 * 120) - dt.timedelta(seconds=5)


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("core.smtp.port", 10**30, "core.smtp.port"),
        ("core.smtp.port", 0, "core.smtp.port"),
        ("core.smtp.timeout", 10**30, "core.smtp.timeout"),
        ("core.smtp.host", "a" * 64 + ".example", "core.smtp.host"),  # a label too long
    ],
)
def test_smtp_settings_that_cannot_work_keep_messages_waiting_with_a_clear_error(
    session, state, running, seed, key, value, says
):
    from core.models import SettingValue

    # Stored before the settings had bounds (or written by hand): not refused on the way in.
    session.merge(SettingValue(key=key, value=value))
    session.commit()
    (message,) = queue_status_notice(session, seed["local"])

    report = deliver(state)

    assert report.retried == 1
    row = reload(session, message)
    assert row.status == "queued" and says in row.last_error and "setting" in row.last_error
    assert running.mailbox.received == []

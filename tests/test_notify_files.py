"""Files sent along with a notice's e-mails (``notify(files=…)``): a report's PDF and XLSX.

``notify`` stores each file's content in the file store once and writes one
:class:`core.models.OutboxFile` per file and e-mail message; the worker attaches the
issued document (if any) and then the files in their order, over a real SMTP server on
loopback. A file that can no longer be read fails its message for good, naming the file.
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from core.files import file_store
from core.models import OutboxFile, OutboxMessage
from core.notify import NotifyFile, ToCustomer, notify
from core.notify.delivery import deliver_due
from core.settings import set_setting

pytestmark = pytest.mark.req("CORE-7")

STATUS = {"from_status": "submitted", "to_status": "confirmed"}
PDF_BYTES = b"%PDF-1.4\n% a report\n%%EOF\n"
XLSX_BYTES = b"PK\x03\x04 not really a workbook \x00\xff"


class Mailbox:
    """Keeps what the SMTP server receives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd names its hooks so
        with self.lock:
            self.received.append(envelope.content)
        return "250 Message accepted"


@pytest.fixture
def mailbox(session, state):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    set_setting(session, "core.smtp.host", "127.0.0.1", registry=state.registry)
    set_setting(session, "core.smtp.port", port, registry=state.registry)
    set_setting(session, "core.smtp.sender", "Ordo <orders@ordo.example>", registry=state.registry)
    set_setting(session, "core.smtp.timeout", 10, registry=state.registry)
    session.commit()
    yield box
    controller.stop()


def files() -> list[NotifyFile]:
    return [
        NotifyFile("日报-2026-11-02.pdf", "application/pdf", PDF_BYTES),
        NotifyFile(
            "daily-2026-11-02.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", XLSX_BYTES
        ),
    ]


def test_both_files_arrive_attached_in_order_with_equal_bytes(session, state, mailbox, seed):
    queued = notify(
        session,
        "order_status_changed",
        to=ToCustomer(seed["local"].id),
        context=STATUS,
        files=files(),
        channels=["email"],
    )
    session.commit()
    (message,) = queued
    rows = session.scalars(select(OutboxFile).where(OutboxFile.message_id == message.id).order_by(OutboxFile.position))
    assert [(f.position, f.filename, f.size) for f in rows] == [
        (0, "日报-2026-11-02.pdf", len(PDF_BYTES)),
        (1, "daily-2026-11-02.xlsx", len(XLSX_BYTES)),
    ]
    assert file_store(session).get(rows_sha(session, message.id)[0]) == PDF_BYTES

    assert deliver_due(state.sessions, state.registry, worker="test").sent == 1

    (raw,) = mailbox.received
    mail = message_from_bytes(raw, policy=default)
    attachments = list(mail.iter_attachments())  # type: ignore[attr-defined]
    assert [a.get_filename() for a in attachments] == ["日报-2026-11-02.pdf", "daily-2026-11-02.xlsx"]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[1].get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert attachments[0].get_content() == PDF_BYTES
    assert attachments[1].get_content() == XLSX_BYTES


def rows_sha(session, message_id: int) -> list[str]:
    return list(
        session.scalars(
            select(OutboxFile.sha256).where(OutboxFile.message_id == message_id).order_by(OutboxFile.position)
        )
    )


def test_files_are_stored_once_and_go_only_with_emails(session, state, seed):
    customer = seed["local"]
    queued = notify(
        session,
        "order_status_changed",
        to=ToCustomer(customer.id),
        context=STATUS,
        files=files(),
        channels=["inapp", "email"],
    )
    session.commit()
    assert len(queued) == 1  # the in-app notice is no outbox message and carries no file
    assert session.scalar(select(OutboxFile.id).where(OutboxFile.message_id != queued[0].id)) is None
    assert len(rows_sha(session, queued[0].id)) == 2
    assert all(file_store(session).exists(sha) for sha in rows_sha(session, queued[0].id))


def test_a_file_that_cannot_be_read_fails_its_message_naming_it(session, state, mailbox, seed):
    (message,) = notify(
        session,
        "order_status_changed",
        to=ToCustomer(seed["local"].id),
        context=STATUS,
        files=files(),
        channels=["email"],
    )
    session.commit()
    pdf_sha = rows_sha(session, message.id)[0]
    file_store(session).path(pdf_sha).unlink()

    report = deliver_due(state.sessions, state.registry, worker="test")

    assert report.failed == 1 and report.sent == 0
    session.rollback()
    session.expire_all()
    failed = session.get(OutboxMessage, message.id)
    assert failed.status == "failed"
    assert "日报-2026-11-02.pdf" in failed.last_error
    assert mailbox.received == []


def test_a_notify_file_needs_a_name_and_a_type():
    with pytest.raises(ValueError):
        NotifyFile("", "application/pdf", b"x")
    with pytest.raises(ValueError):
        NotifyFile("a.pdf", "pdf", b"x")

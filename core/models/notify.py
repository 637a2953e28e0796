"""The notification outbox (发件箱) and in-app notifications (the bell).

``notify`` writes :class:`OutboxMessage` rows in the transaction of the change they
report, so a rolled-back change sends nothing and a committed one is never lost; the
worker delivers them later. In-app notifications need no transport: they are written
as :class:`Notification` rows at once and show under the bell.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

#: An outbox message's life: queued (waiting, perhaps retrying) → sending → sent; or
#: failed (gave up: a permanent error or too many attempts), uncertain (the worker died
#: while handing it over, so it may have arrived: an administrator decides), cancelled.
OUTBOX_STATUSES = ("queued", "sending", "sent", "failed", "uncertain", "cancelled")


class OutboxMessage(Base):
    """One message to one address over one channel, rendered when it was queued."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    #: The e-mail address or phone number it goes to (as it was when queued).
    address: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    #: Exactly one of these says who the recipient is: a user or a customer's contact.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("customer_contact.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    #: An archived document (:class:`core.models.IssuedDocument`) sent along, if any.
    document_id: Mapped[int | None] = mapped_column(ForeignKey("issued_document.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(String(2000), default="")
    #: The worker pass that holds it while ``status == "sending"``, and until when.
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[dt.datetime | None]
    #: Set just before the message content is handed to the transport: a worker that
    #: dies after this may have delivered it, so it is not sent again automatically.
    handed_at: Mapped[dt.datetime | None]
    #: ``notify(dedupe_key=…)`` queues a message at most once per key, channel, address.
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    #: The transport's id for it (an e-mail's Message-ID), to trace it at the far end.
    message_id: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class OutboxFile(Base):
    """A file sent along with an e-mail besides its document (a report's PDF and XLSX).

    The content lives in the file store under ``sha256``; ``notify(files=…)`` writes it.
    """

    __tablename__ = "outbox_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))


class Notification(Base):
    """An in-app notification: under a user's bell, or in a customer's portal list."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at"),
        Index("ix_notification_customer_unread", "customer_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: For a customer (all its portal users see it) instead of one user.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    template: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]

"""Papers kept with an order: uploaded attachments and archived issued documents.

The bytes live in the instance's file store (outside the web root, named by their
SHA-256, see :mod:`core.files`); these rows say what they are, whose and since when.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

#: What an attachment is (IN-5, IN-6, LG-*, acceptance).
ATTACHMENT_KINDS = ("customer_order", "contract", "delivery_note", "acceptance_report", "other")


class OrderAttachment(Base):
    """A file uploaded to an order: the customer's original order, a contract, …"""

    __tablename__ = "order_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="other")
    filename: Mapped[str] = mapped_column(String(255))
    #: The type found in the content (not the one the browser claimed).
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Whether the customer's portal users see it: always for what they uploaded
    #: themselves; for staff uploads only when shared (a contract, a signed delivery note).
    customer_visible: Mapped[bool] = mapped_column(default=False)
    #: Removing an attachment only hides it (the file and the row stay, audited).
    removed_at: Mapped[dt.datetime | None]


class IssuedDocument(Base):
    """A PDF as it was issued: shown again byte for byte, whatever changed since."""

    __tablename__ = "issued_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    #: The document type's name (``order_confirmation``, …).
    document: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

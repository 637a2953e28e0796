"""The append-only audit log (CORE-6): every change to an order, a party or a setting.

Rows are only ever inserted. The ORM refuses updates and deletes, and the migration
adds database triggers so that not even raw SQL can rewrite history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, utcnow


class AuditLog(Base):
    """One recorded change: who changed which record how, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None]
    #: The order the change belongs to — the order itself, or the order a plugin's
    #: record (review sheet, shipment, invoice) is attached to. It puts the entry in
    #: the order's trail and scopes it like the order.
    order_id: Mapped[int | None] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Why, when the change came with a reason (a cancellation, a rejection, a correction).
    reason: Mapped[str] = mapped_column(String(1000), default="")
    #: The web request that made the change (also sent as ``X-Request-Id``), to tie the
    #: log to server logs; empty for changes made by commands and jobs.
    request_id: Mapped[str] = mapped_column(String(64), default="", index=True)


class AuditSeal(Base):
    """The hash chain over the audit log: entry ``audit_id``'s link (``core.services.audit_seal``).

    ``hash`` = SHA-256 of the previous entry's hash and this entry's canonical content, so
    changing, removing or slipping in an entry breaks every link after it. Written by the
    ``core.audit_seal`` job in entry order; append-only like the log itself.
    """

    __tablename__ = "audit_seal"

    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_log.id"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditLog | AuditSeal):
            raise PermissionError("the audit log is append-only")

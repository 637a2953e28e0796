"""In-app notifications (站内通知): what is under a user's bell and in a customer's portal list.

A user sees the notifications addressed to them (``user_id``); a portal user (one with
a ``customer_id``) also sees those addressed to their customer, which every portal user
of that customer shares (reading one marks it read for all of them). Anyone else's
notification answers 404, exactly like one that does not exist. Counting and listing
are single indexed queries (``ix_notification_user_unread`` and its customer twin).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import Notification, User
from core.schemas import MAX_ID
from core.services import NotFound, ServiceError
from core.services.paging import decode_cursor, encode_cursor

#: The cursor kind of notification lists (see :mod:`core.services.paging`).
CURSOR_KIND = "n"
#: The most notifications one call lists or marks.
MAX_LIMIT = 200


def addressed_to(user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the notifications ``user`` may see."""
    mine = Notification.user_id == user.id
    if user.customer_id is not None:
        return or_(mine, Notification.customer_id == user.customer_id)
    return mine


def notifications_query(user: User, *, unread_only: bool = False) -> Select[tuple[Notification]]:
    """``user``'s notifications, newest first (by id, which grows with time)."""
    stmt = select(Notification).where(addressed_to(user)).order_by(Notification.id.desc())
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt


def unread_count(session: Session, user: User) -> int:
    """How many of ``user``'s notifications are unread: the number on the bell (one COUNT)."""
    stmt = select(func.count(Notification.id)).where(addressed_to(user), Notification.read_at.is_(None))
    return session.scalar(stmt) or 0


#: The id a keyset cursor holds: ASCII digits only (``str.isdigit`` also takes "²" and "٣").
CURSOR_ID = re.compile(r"[0-9]{1,19}")


def cursor_id(kind: str, cursor: str) -> int:
    """The row id a cursor of list ``kind`` points after; a 422 naming ``cursor`` if it holds none."""
    value = decode_cursor(kind, cursor)
    if not CURSOR_ID.fullmatch(value) or not 0 < int(value) <= MAX_ID:
        raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
    return int(value)


def list_notifications(
    session: Session,
    user: User,
    *,
    unread_only: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Notification], str | None]:
    """One page of ``user``'s notifications, newest first, and the next page's cursor (or None).

    Keyset paging on the id, so a notification arriving between pages is neither
    skipped nor repeated.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ServiceError("invalid", f"limit must be 1–{MAX_LIMIT}", {"limit": [f"Give 1 to {MAX_LIMIT}."]})
    stmt = notifications_query(user, unread_only=unread_only)
    if cursor:
        stmt = stmt.where(Notification.id < cursor_id(CURSOR_KIND, cursor))
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor(CURSOR_KIND, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_notification(session: Session, user: User, notification_id: int) -> Notification:
    """One of ``user``'s notifications; anyone else's, like a missing one, is 404."""
    if not 0 < notification_id <= MAX_ID:
        raise NotFound("notification", notification_id)
    found = session.scalar(select(Notification).where(Notification.id == notification_id, addressed_to(user)))
    if found is None:
        raise NotFound("notification", notification_id)
    return found


def mark_read(session: Session, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s notifications ``ids`` read (``None``: all of them); returns how many changed.

    Refused with 404, changing nothing, when any id is not one of the user's. Marking a
    read notification again keeps its first reading time.
    """
    where = [addressed_to(user), Notification.read_at.is_(None)]
    if ids is not None:
        wanted = set(ids)
        for notification_id in sorted(wanted):
            get_notification(session, user, notification_id)
        if not wanted:
            return 0
        where.append(Notification.id.in_(wanted))
    result = session.execute(
        update(Notification).where(*where).values(read_at=utcnow()).execution_options(synchronize_session=False)
    )
    session.expire_all()
    return int(getattr(result, "rowcount", 0) or 0)

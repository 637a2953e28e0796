"""Ending login sessions that live only in signed cookies.

Flask's sessions are cookies the server keeps no record of, so a session cannot be
deleted on the server. Instead each session carries the user's *session epoch* in its
user id (``"<id>:<epoch>"``, :meth:`core.models.User.get_id`), and the app's user loader
accepts a session only while that epoch is current. Raising the epoch ends every
session made before, on every device, including a copied or replayed cookie.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.models import User
from core.schemas import MAX_ID


def end_sessions(session: Session, user: User) -> None:
    """End every login session of ``user``, on every device (in the caller's transaction).

    Raises the user's session epoch in the database (atomically, so two concurrent calls
    both count); a cookie issued before no longer logs anybody in. The user logs in again
    to get a new session. Call it on logout, password reset and deactivation. API tokens
    are not sessions and are not affected.
    """
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_epoch=User.session_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    if user in session:
        session.expire(user, ["session_epoch"])  # reloaded with the new value on next use


def parse_session_id(user_id: str) -> tuple[int, int] | None:
    """The user id and epoch of a session's ``"<id>:<epoch>"``; None when malformed."""
    ident, sep, epoch = user_id.partition(":")
    if not sep or not ident.isascii() or not ident.isdigit() or not epoch.isascii() or not epoch.isdigit():
        return None
    number = int(ident)
    if not 1 <= number <= MAX_ID or len(epoch) > 19:
        return None
    return number, int(epoch)

"""Ending login sessions that live only in signed cookies.

Flask's sessions are cookies the server keeps no record of, so a session cannot be
deleted on the server. Instead each session carries the user's *session epoch* in its
user id (``"<id>:<epoch>"``, :meth:`core.models.User.get_id`), and the app's user loader
accepts a session only while that epoch is current. Raising the epoch ends every
session made before, on every device, including a copied or replayed cookie.

A session also runs out by itself (:class:`SessionTimeouts`): the signed cookie keeps
when its user logged in and was last seen, and a request finding it idle longer than
``SESSION_IDLE_MINUTES`` or older than ``SESSION_ABSOLUTE_HOURS`` logs it out
(``core.app``; a screen is sent to the login page with a message). The times come from
:func:`core.clock.app_now`, so tests move a fake clock instead of waiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

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


# --- idle and absolute timeouts ---------------------------------------------------------

#: Defaults of the config keys: a session ends after 30 idle minutes, and 12 hours after
#: login whatever happens (OWASP ASVS V3.3.2 / the OWASP Session Management Cheat Sheet).
TIMEOUT_DEFAULTS: dict[str, float] = {"SESSION_IDLE_MINUTES": 30, "SESSION_ABSOLUTE_HOURS": 12}
#: Where the session cookie keeps when its user logged in and was last seen (POSIX seconds).
LOGIN_AT = "_login_at"
SEEN_AT = "_seen_at"
#: The last-seen time is written at most this often (seconds), so not every response
#: sends a new cookie; an idle timeout may therefore end up to this much later.
TOUCH_EVERY = 30.0


@dataclass(frozen=True)
class SessionTimeouts:
    """How long a login session lasts: ``idle`` seconds without a request, ``absolute``
    seconds after login at most."""

    idle: float
    absolute: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SessionTimeouts:
        """The timeouts from ``SESSION_IDLE_MINUTES`` and ``SESSION_ABSOLUTE_HOURS`` (defaults for those not set)."""

        def value(key: str) -> float:
            raw = config.get(key)
            number = float(TIMEOUT_DEFAULTS[key] if raw is None else raw)
            if not number > 0:
                raise ValueError(f"{key} must be a positive number, not {raw!r}")
            return number

        return cls(idle=value("SESSION_IDLE_MINUTES") * 60, absolute=value("SESSION_ABSOLUTE_HOURS") * 3600)


def start_clock(cookie: MutableMapping[str, Any], now: dt.datetime) -> None:
    """Note in a new login session (its cookie) that it starts ``now``."""
    cookie[LOGIN_AT] = cookie[SEEN_AT] = now.timestamp()


def expired(cookie: Mapping[str, Any], timeouts: SessionTimeouts, now: dt.datetime) -> bool:
    """Whether the login session in ``cookie`` has run out: idle too long, logged in too long
    ago, or without the times at all (made before they were kept, or not by logging in)."""
    login_at, seen_at = cookie.get(LOGIN_AT), cookie.get(SEEN_AT)
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return True
    moment = now.timestamp()
    return moment - seen_at > timeouts.idle or moment - login_at > timeouts.absolute or login_at > moment + 60


def touch(cookie: MutableMapping[str, Any], now: dt.datetime) -> None:
    """Note that the session's user was seen ``now`` (written at most every :data:`TOUCH_EVERY` s)."""
    seen_at = cookie.get(SEEN_AT)
    moment = now.timestamp()
    if not isinstance(seen_at, int | float) or moment - seen_at >= TOUCH_EVERY:
        cookie[SEEN_AT] = moment

"""Login throttling: repeated failed logins slow further attempts down (CORE-3).

Every attempt to log in is kept in ``login_attempt`` (e-mail, client address, success).
After ``LOGIN_THROTTLE_FAILURES`` failures for one account, or
``LOGIN_THROTTLE_ADDRESS_FAILURES`` from one client address, within
``LOGIN_THROTTLE_WINDOW`` seconds, further attempts are refused — even with the right
password — for ``LOGIN_THROTTLE_DELAY`` seconds after the last failure, doubling with
each further failure up to ``LOGIN_THROTTLE_MAX_DELAY``. A successful login resets the
account's count (not the address's: one valid account must not unlock guessing at
others). The settings are Flask config keys, so tests use short windows and delays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import LoginAttempt

#: Defaults of the config keys: 5 failures per account (20 per address) within 15 minutes
#: lock for 30 s, doubling with each further failure, at most an hour.
DEFAULTS: dict[str, int] = {
    "LOGIN_THROTTLE_FAILURES": 5,
    "LOGIN_THROTTLE_ADDRESS_FAILURES": 20,
    "LOGIN_THROTTLE_WINDOW": 15 * 60,
    "LOGIN_THROTTLE_DELAY": 30,
    "LOGIN_THROTTLE_MAX_DELAY": 60 * 60,
    "LOGIN_THROTTLE_RETENTION": 30 * 24 * 60 * 60,
}


@dataclass(frozen=True)
class ThrottleSettings:
    """How many failures lock, within which window, and for how long (seconds)."""

    failures: int = DEFAULTS["LOGIN_THROTTLE_FAILURES"]
    address_failures: int = DEFAULTS["LOGIN_THROTTLE_ADDRESS_FAILURES"]
    window: float = DEFAULTS["LOGIN_THROTTLE_WINDOW"]
    delay: float = DEFAULTS["LOGIN_THROTTLE_DELAY"]
    max_delay: float = DEFAULTS["LOGIN_THROTTLE_MAX_DELAY"]
    retention: float = DEFAULTS["LOGIN_THROTTLE_RETENTION"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ThrottleSettings:
        """The settings from an app's config (``LOGIN_THROTTLE_*``), defaults for those not set."""

        def value(key: str) -> float:
            raw = config.get(key)
            return float(DEFAULTS[key] if raw is None else raw)

        return cls(
            failures=max(1, int(value("LOGIN_THROTTLE_FAILURES"))),
            address_failures=max(1, int(value("LOGIN_THROTTLE_ADDRESS_FAILURES"))),
            window=value("LOGIN_THROTTLE_WINDOW"),
            delay=value("LOGIN_THROTTLE_DELAY"),
            max_delay=value("LOGIN_THROTTLE_MAX_DELAY"),
            retention=value("LOGIN_THROTTLE_RETENTION"),
        )


@dataclass(frozen=True)
class Lockout:
    """Attempts are refused until ``until`` because of ``failures`` recent failures of ``by``
    (``"account"`` or ``"address"``)."""

    until: dt.datetime
    by: str
    failures: int

    def seconds_left(self, now: dt.datetime | None = None) -> int:
        """Whole seconds until attempts are accepted again (at least 1)."""
        left = (self.until - (now or utcnow())).total_seconds()
        return max(1, int(left + 0.999))


def normalise_email(email: str) -> str:
    """The e-mail as attempts are recorded and users looked up: trimmed, lower case."""
    return (email or "").strip().lower()[:254]


def _failures(session: Session, where: ColumnElement[bool], since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many failed attempts match ``where`` since ``since``, and when the last one was."""
    row = session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(
            where, LoginAttempt.at > since, LoginAttempt.succeeded.is_(False)
        )
    ).one()
    return int(row[0] or 0), row[1]


def _lock_for(count: int, limit: int, last: dt.datetime | None, settings: ThrottleSettings) -> dt.datetime | None:
    """When a lock earned by ``count`` failures (the last at ``last``) ends; None below the limit."""
    if count < limit or last is None:
        return None
    doublings = min(count - limit, 40)
    seconds = min(settings.delay * (2**doublings), settings.max_delay)
    return last + dt.timedelta(seconds=seconds)


def lockout(
    session: Session, email: str, address: str, settings: ThrottleSettings, now: dt.datetime | None = None
) -> Lockout | None:
    """The lock on logging in as ``email`` from ``address`` now, or None when attempts are accepted.

    Counts the account's failures since its last success within the window, and the
    address's failures within the window; the longer of the two locks wins.
    """
    now = now or utcnow()
    since = now - dt.timedelta(seconds=settings.window)
    email = normalise_email(email)
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(True))
    )
    account_since = max(since, last_success) if last_success is not None else since
    locks: list[Lockout] = []
    count, last = _failures(session, LoginAttempt.email == email, account_since)
    until = _lock_for(count, settings.failures, last, settings)
    if until is not None and until > now:
        locks.append(Lockout(until, "account", count))
    if address:
        count, last = _failures(session, LoginAttempt.client_address == address, since)
        until = _lock_for(count, settings.address_failures, last, settings)
        if until is not None and until > now:
            locks.append(Lockout(until, "address", count))
    return max(locks, key=lambda lock: lock.until) if locks else None


def record_attempt(session: Session, email: str, address: str, succeeded: bool) -> LoginAttempt:
    """Keep one attempt (in the caller's transaction)."""
    attempt = LoginAttempt(
        at=utcnow(), email=normalise_email(email), client_address=(address or "")[:64], succeeded=succeeded
    )
    session.add(attempt)
    session.flush()
    return attempt


def prune(session: Session, email: str, settings: ThrottleSettings, now: dt.datetime | None = None) -> int:
    """Delete ``email``'s attempts older than the retention period; returns how many went."""
    before = (now or utcnow()) - dt.timedelta(seconds=max(settings.retention, settings.window, settings.max_delay))
    result = session.execute(
        delete(LoginAttempt).where(LoginAttempt.email == normalise_email(email), LoginAttempt.at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)

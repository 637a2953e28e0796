"""Login throttling: repeated failed logins slow further attempts down (CORE-3).

Every attempt to log in is kept in ``login_attempt`` (e-mail, client address, success).
After ``LOGIN_THROTTLE_FAILURES`` failures for one account, or
``LOGIN_THROTTLE_ADDRESS_FAILURES`` from one client address, within
``LOGIN_THROTTLE_WINDOW`` seconds, further attempts are refused — even with the right
password — for ``LOGIN_THROTTLE_DELAY`` seconds after the last failure, doubling with
each further failure up to ``LOGIN_THROTTLE_MAX_DELAY``. Failures during a lock or
within the window after it continue the run, so the delay reaches the cap even when
each lock outlasts the window; a window without failures after a lock starts afresh.
A successful login resets the account's count (not the address's: one valid account
must not unlock guessing at others). Attempts refused while their client address is
locked are not kept (the table cannot grow without bound), and attempts older than
``LOGIN_THROTTLE_RETENTION`` are deleted on every attempt. The settings are Flask
config keys, so tests use short windows and delays. The functions take the time as
``now`` (the login screen passes :func:`core.clock.app_now`, so tests move a fake clock
instead of sleeping).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
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


def _cap_doublings(settings: ThrottleSettings) -> int:
    """How many doublings take the delay from ``delay`` to ``max_delay`` (0 to 40)."""
    if settings.delay <= 0 or settings.max_delay <= settings.delay:
        return 0
    return min(40, math.ceil(math.log2(settings.max_delay / settings.delay)))


def _horizon(settings: ThrottleSettings, now: dt.datetime) -> dt.datetime:
    """Attempts before this are no longer kept (:func:`prune`) nor looked at."""
    return now - dt.timedelta(seconds=max(settings.retention, settings.window, settings.max_delay))


def _failures(session: Session, where: ColumnElement[bool], since: dt.datetime, limit: int) -> list[dt.datetime]:
    """When the last ``limit`` failed attempts matching ``where`` after ``since`` were, oldest first."""
    times = session.scalars(
        select(LoginAttempt.at)
        .where(where, LoginAttempt.at > since, LoginAttempt.succeeded.is_(False))
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
    ).all()
    return list(reversed(times))


def _replay(
    times: Sequence[dt.datetime], limit: int, settings: ThrottleSettings, truncated: bool
) -> tuple[int, dt.datetime | None]:
    """Replay failures (oldest first): how many count now, and when the lock they earned ends.

    ``limit`` failures within the window start a lock of ``delay`` after the last one.
    While locked, and within the window after a lock ends, every further failure
    continues the run: it counts and doubles the delay, up to ``max_delay``. So the delay
    keeps growing however long each lock is; only a window without failures after a
    lock ends starts counting afresh. When older failures were left out (``truncated``),
    the run is taken to have reached the cap already (the stricter assumption).
    """
    window = dt.timedelta(seconds=settings.window)
    count, until = 0, None
    recent: list[dt.datetime] = []
    if truncated and times:
        count, until = limit + _cap_doublings(settings) - 1, times[0]
    for at in times:
        if until is not None and at <= until + window:
            count += 1  # during a lock, or soon after it: the run goes on
        else:
            recent = [earlier for earlier in recent if earlier > at - window]
            count = len(recent) + 1
        recent.append(at)
        if count >= limit:
            seconds = min(settings.delay * (2 ** min(count - limit, 40)), settings.max_delay)
            until = at + dt.timedelta(seconds=seconds)
        else:
            until = None
    return count, until


def _locks(session: Session, email: str, address: str, settings: ThrottleSettings, now: dt.datetime) -> list[Lockout]:
    """The locks in force now: on the account, on the address, both or neither."""
    horizon = _horizon(settings, now)
    email = normalise_email(email)
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(True))
    )
    checks: list[tuple[str, ColumnElement[bool], dt.datetime, int]] = [
        ("account", LoginAttempt.email == email, max(horizon, last_success or horizon), settings.failures)
    ]
    if address:
        checks.append(("address", LoginAttempt.client_address == address, horizon, settings.address_failures))
    locks: list[Lockout] = []
    for by, where, since, limit in checks:
        # Enough of the latest failures to tell whether the delay reached the cap.
        enough = 2 * (limit + _cap_doublings(settings) + 1)
        times = _failures(session, where, since, enough)
        count, until = _replay(times, limit, settings, truncated=len(times) >= enough)
        if until is not None and until > now:
            locks.append(Lockout(until, by, count))
    return locks


def lockout(
    session: Session, email: str, address: str, settings: ThrottleSettings, now: dt.datetime | None = None
) -> Lockout | None:
    """The lock on logging in as ``email`` from ``address`` now, or None when attempts are accepted.

    The account's failures count since its last success, the address's regardless of
    successes (see :func:`_replay` for how they lock); the longer of the two locks wins.
    """
    locks = _locks(session, email, address, settings, now or utcnow())
    return max(locks, key=lambda lock: lock.until) if locks else None


def record_refused_attempt(
    session: Session, email: str, address: str, settings: ThrottleSettings, now: dt.datetime | None = None
) -> Lockout | None:
    """Deal with an attempt refused because of a lock; returns the lock in force after it.

    The attempt is kept as a failure — so the account's lock grows while guessing goes
    on — unless the client address is locked itself (or unknown): an address hammering
    away during its own lock adds no rows, so the table cannot grow without bound. Each
    address adds at most its own limit of failures plus one per lock it waits out.
    """
    now = now or utcnow()
    locks = _locks(session, email, address, settings, now)
    if address and not any(lock.by == "address" for lock in locks):
        record_attempt(session, email, address, succeeded=False, now=now)
        locks = _locks(session, email, address, settings, now)
    return max(locks, key=lambda lock: lock.until) if locks else None


def record_attempt(
    session: Session, email: str, address: str, succeeded: bool, now: dt.datetime | None = None
) -> LoginAttempt:
    """Keep one attempt made ``now`` (default: the real time; in the caller's transaction)."""
    attempt = LoginAttempt(
        at=now or utcnow(), email=normalise_email(email), client_address=(address or "")[:64], succeeded=succeeded
    )
    session.add(attempt)
    session.flush()
    return attempt


def prune(session: Session, settings: ThrottleSettings, now: dt.datetime | None = None) -> int:
    """Delete every attempt older than the retention period; returns how many went.

    Cheap enough for every attempt: attempts are numbered in the order they happen, so
    the old ones are the lowest ids. The first id still within the retention is found by
    walking the primary key from its start (past only the rows about to go), and the
    rows before it are deleted by primary-key range; ``at`` is checked too, so an
    attempt within the retention is never deleted.
    """
    cutoff = _horizon(settings, now or utcnow())
    first_kept = (
        select(LoginAttempt.id).where(LoginAttempt.at >= cutoff).order_by(LoginAttempt.id).limit(1).scalar_subquery()
    )
    result = session.execute(
        delete(LoginAttempt)
        .where(LoginAttempt.id < func.coalesce(first_kept, select(func.max(LoginAttempt.id) + 1).scalar_subquery()))
        .where(LoginAttempt.at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

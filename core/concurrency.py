"""Bounded retries of a transaction that lost a race with another one.

Two transactions that touch the same rows can make the database give up on one of
them: PostgreSQL reports a *serialization failure* (SQLSTATE 40001) or a *deadlock*
(40P01) and rolls that transaction back; SQLite reports *database is locked* when the
write lock did not come free within the busy timeout. None of these means the work was
wrong — run again, it usually succeeds. So, like Odoo's ``retrying``:

- a web request that fails this way is rolled back and dispatched again, at most
  :data:`MAX_ATTEMPTS` times in all, with a short random pause (``core.app``);
- in-process work (commands, imports, scripts) runs through :func:`retrying`.

Side effects stay single because everything Ordo sends (e-mail, notifications) is
written to the outbox inside the transaction and delivered after it commits: a
rolled-back attempt sent nothing. Work that reached outside the database before
failing (a carrier booked over the network) calls :func:`mark_external_effect`, and is
then never run a second time: the caller gets the error instead.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("ordo.concurrency")

#: How many times in all a transaction is tried before its error is reported.
MAX_ATTEMPTS = 3
#: The pause before the second attempt; it doubles for each further one (with jitter).
FIRST_PAUSE = 0.05

#: PostgreSQL's "run it again" SQLSTATEs: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: What SQLite says when the write lock did not come free in time.
SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")

#: The ``session.info`` key of :func:`mark_external_effect`.
_EXTERNAL_EFFECT = "ordo.external_effect"

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` says the transaction lost a race and may simply be run again."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        return sqlstate in RETRYABLE_SQLSTATES
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return any(busy in message for busy in SQLITE_BUSY)
    return False


def mark_external_effect(session: Session) -> None:
    """Record that the session's work changed something outside the database.

    Call it just before talking to another system whose effect a rollback cannot undo
    (booking a carrier, charging a card). A failed transaction that has this mark is
    not run again, so the outside effect happens at most once.
    """
    session.info[_EXTERNAL_EFFECT] = True


def had_external_effect(session: Session | None) -> bool:
    """Whether :func:`mark_external_effect` was called on ``session``."""
    return session is not None and bool(session.info.get(_EXTERNAL_EFFECT))


def pause(attempt: int) -> float:
    """The seconds to wait after failed attempt number ``attempt`` (1-based), with jitter.

    Random, so two transactions that collided do not collide again in step.
    """
    return FIRST_PAUSE * (2 ** (attempt - 1)) * (0.5 + random.random())


def should_retry(exc: BaseException, attempt: int, session: Session | None, attempts: int = MAX_ATTEMPTS) -> bool:
    """Whether attempt number ``attempt`` that raised ``exc`` may be followed by another one."""
    if attempt >= attempts or not is_retryable(exc) or had_external_effect(session):
        return False
    log.info("transaction lost a race (%s); attempt %d of %d", exc.__class__.__name__, attempt + 1, attempts)
    return True


def retrying(factory: sessionmaker[Session], work: Callable[[Session], T], attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``work(session)`` in a transaction of its own and commit; again if it lost a race.

    Each attempt gets a new session, so nothing of a failed attempt is seen by the next.
    ``work`` must not commit itself. After ``attempts`` tries (or on any other error)
    the error is raised with everything rolled back.
    """
    for attempt in range(1, attempts + 1):
        session = factory()
        try:
            with session.begin():
                return work(session)
        except DBAPIError as exc:
            if not should_retry(exc, attempt, session, attempts):
                raise
        finally:
            session.close()
        time.sleep(pause(attempt))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

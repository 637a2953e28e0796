"""The worker's side of the outbox: claim due messages, deliver them, record what happened.

One pass (:func:`deliver_due`, called by ``ordo worker`` and ``ordo jobs run-due``):

1. Recover messages whose worker vanished (``sending`` with an expired lease): back to
   ``queued`` if nothing was handed over yet, else ``uncertain`` — it may have arrived,
   so an administrator decides instead of the worker sending it twice.
2. Claim a batch with one conditional UPDATE (``status='queued'`` and due → ``sending``,
   with this pass's token and a lease), so several workers on SQLite or PostgreSQL
   never claim the same message.
3. Deliver each message in its own short transactions, never holding a database
   transaction open while talking to a server: ``sent``; or back to ``queued`` with
   exponential backoff and the error kept; or ``failed`` on a permanent error or after
   ``core.notify.max_attempts`` attempts. Messages are never deleted.

Every write about a claimed message — the hand-over, the outcome — is a conditional
UPDATE that matches only while the message is still ``sending`` under this pass's
token. If it matches nothing (the lease ran out and another worker took the message,
or it was settled elsewhere), the pass leaves the message alone: before the hand-over
it sends nothing, after it it records nothing. An error no one foresaw while one
message is delivered (an unreadable attachment, a bug) is recorded on that message,
which is retried or failed like any other; the pass goes on with the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Result, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import utcnow
from core.files import file_store
from core.models import IssuedDocument, OutboxFile, OutboxMessage
from core.notify.email import TIMEOUT_RANGE, Attachment, DeliveryError, SmtpSettings, SmtpTransport
from core.notify.recipients import PermanentFailure
from core.plugins import Registry
from core.settings import get_setting

log = logging.getLogger(__name__)

#: How long a claimed message stays reserved for the worker that claimed it, at least.
LEASE = dt.timedelta(minutes=5)
#: The lease is also at least this many SMTP timeouts: connecting, EHLO, STARTTLS,
#: EHLO again, login, MAIL and RCPT may each wait the whole timeout before the hand-over.
LEASE_TIMEOUTS = 10
#: Retry delays: 60 s after the first attempt, doubling, at most 6 hours.
BACKOFF_BASE = dt.timedelta(seconds=60)
BACKOFF_CAP = dt.timedelta(hours=6)
ERROR_LIMIT = 2000

STOPPED_BEFORE = "the worker stopped before handing the message over; queued again"
STOPPED_DURING = (
    "the worker stopped while handing the message over at {at}: it may have been delivered. "
    "Resend it (retry) or mark it sent."
)


@dataclass
class DeliveryReport:
    """What one pass did: messages sent, queued again for a retry, failed, found uncertain."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    #: Messages of vanished workers put back in the queue (nothing had been handed over).
    recovered: int = 0
    #: Claimed messages this pass left alone because someone else took them meanwhile.
    lost: int = 0

    @property
    def handled(self) -> int:
        """Messages this pass settled one way or another (sent, retried, failed, uncertain)."""
        return self.sent + self.retried + self.failed + self.uncertain


class ClaimLost(Exception):
    """This pass no longer holds the message (its lease ran out and someone else took it)."""


def lease_for(settings: SmtpSettings) -> dt.timedelta:
    """How long this pass reserves a message: :data:`LEASE`, or longer for a slow server's timeout."""
    timeout = settings.timeout if isinstance(settings.timeout, int) and not isinstance(settings.timeout, bool) else 0
    low, high = TIMEOUT_RANGE
    return max(LEASE, LEASE_TIMEOUTS * dt.timedelta(seconds=min(max(timeout, low), high)))


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait after attempt number ``attempts`` failed: 60 s · 2^(attempts−1), ≤ 6 h."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def deliver_due(
    sessions: sessionmaker[Session],
    registry: Registry,
    *,
    worker: str,
    now: dt.datetime | None = None,
    limit: int = 50,
) -> DeliveryReport:
    """Deliver up to ``limit`` due outbox messages; safe to run in many workers at once.

    ``now`` (aware UTC) lets tests and ``ordo jobs run-due`` fix the time; it advances
    with the real clock while the pass runs.
    """
    clock = _clock(now)
    report = DeliveryReport()
    token = f"{worker[:40]}/{uuid.uuid4().hex[:16]}"
    with sessions() as session, session.begin():
        settings = SmtpSettings.load(session, registry)
        max_attempts = _max_attempts(get_setting(session, "core.notify.max_attempts", registry))
        _recover(session, clock(), report, max_attempts)
    claim = _Claim(token, clock, lease_for(settings), max_attempts)
    with sessions() as session, session.begin():
        claimed = _claim(session, claim, limit)
    if not claimed:
        return report
    with SmtpTransport(settings) as transport:
        for message_id in claimed:
            try:
                with sessions() as session:
                    _deliver_one(session, registry, transport, message_id, claim, report)
            except Exception as exc:
                # One message's trouble never holds up the others (nor keeps this one claimed).
                log.exception("outbox pass %s: delivering message %s failed unexpectedly", token, message_id)
                transport.close()  # the connection may be mid-conversation: start afresh
                _give_back(sessions, message_id, claim, exc, report)
    log.info("outbox pass %s: %s", token, report)
    return report


@dataclass(frozen=True)
class _Claim:
    """This pass's hold on the messages it claimed, and how it settles them."""

    token: str
    clock: Callable[[], dt.datetime]
    lease: dt.timedelta
    max_attempts: int

    def hold(self, session: Session, message_id: int) -> bool:
        """Renew the lease if this pass still holds the message, as the first write of a transaction.

        The UPDATE matches only while the message is ``sending`` under this pass's token;
        from then until the commit the row is this transaction's (PostgreSQL's row lock,
        SQLite's write lock), so what the transaction then writes cannot overwrite
        another worker's or an administrator's change. Pending changes of the session's
        objects are not flushed before it.
        """
        with session.no_autoflush:
            renewed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "sending",
                    OutboxMessage.claimed_by == self.token,
                )
                .values(lease_until=self.clock() + self.lease)
                .execution_options(synchronize_session=False)
            )
        return _rowcount(renewed) == 1


def _max_attempts(value: Any) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError, OverflowError):
        return 1


def _clock(now: dt.datetime | None) -> Callable[[], dt.datetime]:
    if now is None:
        return utcnow
    started = time.monotonic()
    return lambda: now + dt.timedelta(seconds=time.monotonic() - started)


def _recover(session: Session, now: dt.datetime, report: DeliveryReport, max_attempts: int) -> None:
    """Settle messages whose lease ran out while ``sending`` (their worker is gone).

    One never handed over is safe to send again: it waits its backoff like any failed
    attempt (a message that kills its worker must not loop), and fails once it has used
    its attempts. One handed over may have arrived: it becomes *uncertain*.
    """
    stale = (OutboxMessage.status == "sending") & (OutboxMessage.lease_until < now)
    given_up = list(
        session.execute(
            select(OutboxMessage.id, OutboxMessage.attempts).where(stale, OutboxMessage.handed_at.is_(None))
        ).tuples()
    )
    for message_id, attempts in given_up:
        # Re-checked per row: the worker may have come back and settled it meanwhile.
        values: dict[str, Any] = (
            {"status": "failed", "last_error": f"{STOPPED_BEFORE} ({attempts} attempts)"}
            if attempts >= max_attempts
            else {"status": "queued", "next_attempt_at": now + backoff(attempts), "last_error": STOPPED_BEFORE}
        )
        report.recovered += _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, stale, OutboxMessage.handed_at.is_(None))
                .values(claimed_by="", lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
        )
    handed = list(
        session.execute(
            select(OutboxMessage.id, OutboxMessage.handed_at).where(stale, OutboxMessage.handed_at.is_not(None))
        ).tuples()
    )
    for message_id, handed_at in handed:
        # Re-checked per row: the worker may have come back and settled it meanwhile.
        report.uncertain += _rowcount(
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, stale, OutboxMessage.handed_at.is_not(None))
                .values(
                    status="uncertain",
                    claimed_by="",
                    lease_until=None,
                    last_error=STOPPED_DURING.format(at=handed_at.isoformat() if handed_at else "?"),
                )
                .execution_options(synchronize_session=False)
            )
        )


def _claim(session: Session, claim: _Claim, limit: int) -> list[int]:
    """Claim up to ``limit`` due messages for this pass; return their ids, oldest due first."""
    now, token = claim.clock(), claim.token
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(OutboxMessage)
        # Re-checked per row, so a message another worker took meanwhile is skipped.
        .where(OutboxMessage.id.in_(due.scalar_subquery()), OutboxMessage.status == "queued")
        .values(
            status="sending",
            claimed_by=token,
            lease_until=now + claim.lease,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.claimed_by == token, OutboxMessage.status == "sending")
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        )
    )


def _deliver_one(
    session: Session,
    registry: Registry,
    transport: SmtpTransport,
    message_id: int,
    claim: _Claim,
    report: DeliveryReport,
) -> None:
    """Deliver one claimed message and record the outcome, in transactions of its own."""
    # Renew the lease first: if it ran out while earlier messages were sent, another
    # worker may have taken this one, and then it is that worker's.
    if not claim.hold(session, message_id):
        session.rollback()
        report.lost += 1
        return
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None
    try:
        attachment = _attachments(session, message)
    except PermanentFailure as exc:
        _settle_failed(message, str(exc), report)
        _release(message)
        session.commit()
        return
    session.commit()  # no transaction stays open while a server is being talked to

    def hand_over() -> None:
        at = claim.clock()
        try:
            held = claim.hold(session, message_id)
            if held:
                message.handed_at = at
                session.commit()
        except Exception as exc:
            session.rollback()  # the row reloads as it is stored: not handed over
            raise DeliveryError(f"could not record the hand-over, so nothing was sent: {exc}") from exc
        if not held:
            session.rollback()
            raise ClaimLost(f"outbox message {message_id} was taken by someone else before it was handed over")

    outcome: Exception | None = None
    try:
        if message.channel == "email":
            transport.send(message, attachment, hand_over)
        elif message.channel == "inapp":
            raise PermanentFailure("in-app notifications are written directly, never through the outbox")
        elif message.channel in registry.channels:
            hand_over()
            try:
                registry.channels[message.channel].deliver(message)
            except Exception:
                # The channel answered with an error: it says nothing was delivered.
                message.handed_at = None
                raise
        else:
            raise DeliveryError(f"channel {message.channel!r} is not available (is its plugin enabled?)")
    except ClaimLost as exc:
        log.warning("%s; left to them", exc)
        report.lost += 1
        return
    except Exception as exc:  # any transport error is recorded on the message
        outcome = exc
    # Record the outcome only while this pass still holds the message: if the lease ran
    # out meanwhile, another worker or an administrator has settled it, and that stays.
    if not claim.hold(session, message_id):
        session.rollback()
        log.warning(
            "outbox message %s was settled elsewhere while it was being delivered (%s); left as it is",
            message_id,
            "delivered" if outcome is None else _name(outcome),
        )
        report.lost += 1
        return
    if outcome is None:
        message.status = "sent"
        message.sent_at = claim.clock()
        message.last_error = ""
        report.sent += 1
    else:
        _settle_error(message, outcome, claim, report)
    _release(message)
    session.commit()


def _settle_error(message: OutboxMessage, exc: Exception, claim: _Claim, report: DeliveryReport) -> None:
    """Record ``exc`` on ``message``: failed if permanent, uncertain if handed over, else retried or failed."""
    if isinstance(exc, PermanentFailure):
        _settle_failed(message, str(exc), report)
    elif message.handed_at is not None:
        message.status = "uncertain"
        message.last_error = _error(
            f"the connection was lost while handing the message over ({_name(exc)}); it may have been "
            "delivered. Resend it (retry) or mark it sent."
        )
        report.uncertain += 1
    elif message.attempts >= claim.max_attempts:
        _settle_failed(message, f"gave up after {message.attempts} attempts: {_name(exc)}", report)
    else:
        message.status = "queued"
        message.next_attempt_at = claim.clock() + backoff(message.attempts)
        message.last_error = _error(_name(exc))
        report.retried += 1


def _give_back(
    sessions: sessionmaker[Session], message_id: int, claim: _Claim, exc: Exception, report: DeliveryReport
) -> None:
    """After an unexpected error: record it on the message and release it (if this pass still holds it)."""
    try:
        with sessions() as session:
            if not claim.hold(session, message_id):
                session.rollback()
                report.lost += 1
                return
            message = session.get(OutboxMessage, message_id, populate_existing=True)
            assert message is not None
            _settle_error(message, exc, claim, report)
            _release(message)
            session.commit()
    except Exception:
        # The database itself is failing: the lease runs out and the next pass recovers it.
        log.exception("outbox pass %s: could not record the error of message %s", claim.token, message_id)


def _release(message: OutboxMessage) -> None:
    """Drop this pass's claim on ``message`` (its state says what happens next)."""
    message.claimed_by = ""
    message.lease_until = None


def _attachments(session: Session, message: OutboxMessage) -> list[Attachment]:
    """What goes along with ``message``: its issued document, then its files in position order.

    Each is read (and checked against its hash) from the file store; one that is missing
    or unreadable is a :class:`PermanentFailure` naming it (no retry reads it).
    """
    if message.channel != "email":
        return []
    found: list[Attachment] = []
    document = _attachment(session, message)
    if document is not None:
        found.append(document)
    files = session.scalars(
        select(OutboxFile).where(OutboxFile.message_id == message.id).order_by(OutboxFile.position, OutboxFile.id)
    )
    for item in files:
        content = _read(session, item.sha256, f"the file {item.filename!r}")
        maintype, _, subtype = item.content_type.partition("/")
        found.append(
            Attachment(
                filename=item.filename,
                content=content,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
            )
        )
    return found


def _read(session: Session, sha256: str, what: str) -> bytes:
    """The stored bytes of ``what`` (hash ``sha256``); :class:`PermanentFailure` if missing or unreadable."""
    try:
        return file_store(session).get(sha256)
    except FileNotFoundError:
        raise PermanentFailure(f"{what} is missing from the file store ({sha256})") from None
    except (OSError, ValueError) as exc:
        # Corrupt (no longer matching its hash), unreadable, or not a hash at all: no
        # retry reads it. Restore the file, then retry the message.
        raise PermanentFailure(f"{what} cannot be read from the file store: {_name(exc)}") from None


def _attachment(session: Session, message: OutboxMessage) -> Attachment | None:
    """The issued document sent with ``message``, read (and checked) from the file store."""
    if message.document_id is None or message.channel != "email":
        return None
    document = session.get(IssuedDocument, message.document_id)
    if document is None:
        raise PermanentFailure(f"the attached document #{message.document_id} no longer exists")
    try:
        content = file_store(session).get(document.sha256)
    except FileNotFoundError:
        raise PermanentFailure(
            f"the file of document {document.filename!r} is missing from the file store ({document.sha256})"
        ) from None
    except (OSError, ValueError) as exc:
        # Corrupt (no longer matching its hash), unreadable, or not a hash at all: no
        # retry reads it. Restore the file, then retry the message.
        raise PermanentFailure(
            f"the file of document {document.filename!r} cannot be read from the file store: {_name(exc)}"
        ) from None
    return Attachment(filename=document.filename, content=content)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE changed (``Result`` is typed without it; the cursor result has it)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _settle_failed(message: OutboxMessage, error: str, report: DeliveryReport) -> None:
    message.status = "failed"
    message.handed_at = None
    message.last_error = _error(error)
    report.failed += 1


def _name(exc: BaseException) -> str:
    text = str(exc)
    return text if isinstance(exc, DeliveryError | PermanentFailure) and text else f"{type(exc).__name__}: {text}"


def _error(text: str) -> str:
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"

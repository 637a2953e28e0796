"""What an administrator does with outgoing messages: resend, cancel, confirm, count.

The screens and API (permission ``outbox.manage``) call these. Each operation checks
the message's state, changes it in the caller's transaction and writes an audit entry
(entity ``outbox_message``); a message is never deleted, so what was sent, failed or
cancelled stays visible. The change is a conditional UPDATE that matches only while
the message is still in the state that was checked: if a worker claimed it (or it was
settled) in between, the operation is refused (409) instead of overwriting that.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.db import utcnow
from core.models import OUTBOX_STATUSES, OutboxMessage, User
from core.notify.recipients import PermanentFailure, check_email
from core.services import Conflict, NotFound, ServiceError, audit

#: States a message can be sent again from (``queued``: "send now" instead of waiting).
RETRYABLE = ("failed", "uncertain", "queued")
CANCELLABLE = ("queued", "failed", "uncertain")


def get_message(session: Session, message_id: int) -> OutboxMessage:
    """Outbox message ``message_id``; :class:`NotFound` (404) if there is none."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("outbox message", message_id)
    return message


def _check_state(message: OutboxMessage, allowed: tuple[str, ...], verb: str) -> None:
    if message.status not in allowed:
        raise Conflict(
            "wrong_state",
            f"outbox message {message.id} is {message.status}; only {', '.join(allowed)} messages can be {verb}",
            {"status": [message.status]},
        )


def _change(session: Session, message: OutboxMessage, **values: Any) -> None:
    """Write ``values`` to ``message`` only if it is still in the state it was checked in; else 409."""
    seen = message.status
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.status == seen)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if int(cast(CursorResult[Any], result).rowcount) != 1:
        session.refresh(message)
        raise Conflict(
            "wrong_state",
            f"outbox message {message.id} changed meanwhile: it was {seen} and is now {message.status}",
            {"status": [message.status]},
        )
    for key, value in values.items():
        set_committed_value(message, key, value)


def retry(session: Session, message_id: int, actor: User | None, address: str | None = None) -> OutboxMessage:
    """Queue a failed, uncertain or waiting message to be sent at once, perhaps to a corrected address.

    The attempt count is kept (it says how often delivery was tried), so a message that
    had used up its attempts gets one more. An *uncertain* message may then arrive twice:
    that is what the administrator chose. A new ``address`` is checked first (422).
    """
    message = get_message(session, message_id)
    _check_state(message, RETRYABLE, "sent again")
    changes: dict[str, list[object]] = {"status": [message.status, "queued"]}
    values: dict[str, Any] = {}
    if address is not None:
        corrected = _checked_address(message.channel, address)
        if corrected != message.address:
            changes["address"] = [message.address, corrected]
            values["address"] = corrected
    _change(
        session,
        message,
        status="queued",
        next_attempt_at=utcnow(),
        handed_at=None,
        claimed_by="",
        lease_until=None,
        **values,
    )
    audit.record(session, actor, "outbox_message", message.id, "retry", changes, order_id=message.order_id)
    session.flush()
    return message


def cancel(session: Session, message_id: int, actor: User | None) -> OutboxMessage:
    """Stop a queued, failed or uncertain message from being sent (kept, marked cancelled)."""
    message = get_message(session, message_id)
    _check_state(message, CANCELLABLE, "cancelled")
    before = message.status
    _change(session, message, status="cancelled", claimed_by="", lease_until=None)
    audit.record(
        session,
        actor,
        "outbox_message",
        message.id,
        "cancel",
        {"status": [before, "cancelled"]},
        order_id=message.order_id,
    )
    session.flush()
    return message


def mark_sent(session: Session, message_id: int, actor: User | None) -> OutboxMessage:
    """Record that an uncertain message did arrive (the administrator checked), so it is not resent."""
    message = get_message(session, message_id)
    _check_state(message, ("uncertain",), "marked sent")
    _change(session, message, status="sent", sent_at=message.handed_at or utcnow())
    audit.record(
        session,
        actor,
        "outbox_message",
        message.id,
        "mark_sent",
        {"status": ["uncertain", "sent"]},
        order_id=message.order_id,
    )
    session.flush()
    return message


def outbox_counts(session: Session) -> dict[str, int]:
    """How many messages are in each state (every state present, zero if none), counted in SQL."""
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    for status, count in session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).tuples():
        counts[status] = count
    return counts


def _checked_address(channel: str, address: str) -> str:
    """``address`` trimmed and, for e-mail, checked and normalised; 422 naming the problem."""
    address = address.strip()
    if not address:
        raise ServiceError("invalid", "the address is empty", {"address": ["Enter an address."]})
    if len(address) > 254:
        raise ServiceError("invalid", "the address is too long", {"address": ["At most 254 characters."]})
    if channel == "email":
        try:
            return check_email(address)
        except PermanentFailure as exc:
            raise ServiceError("invalid", str(exc), {"address": [str(exc)]}) from None
    return address

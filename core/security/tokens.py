"""API bearer tokens: random, shown once, stored as SHA-256, revocable, may expire."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from core.db import utcnow
from core.models import ApiToken, User

PREFIX = "ordo_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive,
    RFC 7235); ``""`` for a bearer header without a token, None for anything else."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def create_token(session: Session, user: User, name: str = "", expires_at: dt.datetime | None = None) -> str:
    """Create a token for ``user`` and return it; only its digest is kept."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=_digest(token), prefix=token[:12], expires_at=expires_at)
    )
    session.flush()
    return token


#: The last-used time is written at most this often per token, to spare the database.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to.

    The token's last-used time is recorded in a short transaction of its own (at most
    once a minute), so a read-only request stays read-only.
    """
    # The user comes with the token (one query): every API request asks.
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _digest(token)).options(joinedload(ApiToken.user))
    )
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if not row.user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        bind = session.get_bind()
        if bind.get_execution_options().get("ordo_read_only"):
            # A read-only session holds no write lock, so a short transaction of our own
            # cannot wait on it.
            with bind.engine.execution_options(ordo_read_only=False).begin() as conn:
                conn.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        else:
            row.last_used_at = now  # committed with the caller's transaction
    return row.user

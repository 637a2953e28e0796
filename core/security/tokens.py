"""API bearer tokens: random, shown once, stored as SHA-256, revocable, may expire."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import ApiToken, User

PREFIX = "ordo_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "", expires_at: dt.datetime | None = None) -> str:
    """Create a token for ``user`` and return it; only its digest is kept."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=_digest(token), prefix=token[:12], expires_at=expires_at)
    )
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to; marks it used."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if not row.user.active:
        return None
    row.last_used_at = now
    return row.user

"""Per-request helpers shared by screens and API: the Ordo state, the session, the actor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.config import Instance
from core.models import User
from core.plugins import Registry


@dataclass
class OrdoState:
    """What one app holds: its instance, database engine, session factory and plugins."""

    instance: Instance
    engine: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    #: Sessions for requests that only read (GET, HEAD): they never wait for writers.
    read_sessions: sessionmaker[Session]


def ordo() -> OrdoState:
    """The current app's Ordo state."""
    return cast(OrdoState, current_app.extensions["ordo"])


def db() -> Session:
    """The request's database session (opened on first use, closed after the request).

    GET and HEAD requests read in a deferred transaction; other methods write and take
    the write lock up front (on SQLite), so concurrent writers queue instead of failing.
    """
    if "db_session" not in g:
        state = ordo()
        reading = has_request_context() and request.method in ("GET", "HEAD")
        factory = state.read_sessions if reading else state.sessions
        g.db_session = factory()
    return cast(Session, g.db_session)


def actor() -> User | None:
    """The logged-in user (by session cookie or API token), or None."""
    user = current_user._get_current_object() if current_user else None
    return user if isinstance(user, User) else None


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and close the request's session."""
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()

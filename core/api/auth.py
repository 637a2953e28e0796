"""API authentication: every endpoint needs a logged-in user (bearer token or session).

The app's request loader already turns a valid ``Authorization: Bearer <token>`` into
the current user. Here a request is refused with 401 when there is no user, and also
when it presents a token that is malformed, wrong, expired or revoked even though a
browser session came along: a bad credential is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from flask import request
from flask_smorest import abort

from core.models import User
from core.security.tokens import bearer_token
from core.web import actor

F = TypeVar("F", bound=Callable[..., Any])


def _refuse(message: str, why: str) -> NoReturn:
    abort(401, message=message, errors={"Authorization": [why]})
    raise AssertionError("unreachable")  # pragma: no cover - abort raises


def api_user() -> User:
    """The calling user; aborts with 401 when the token is missing, malformed, wrong, expired or revoked."""
    header = request.headers.get("Authorization")
    user = actor()
    if header is None:
        if user is None:
            _refuse("a valid bearer token (or login session) is required", "Send 'Authorization: Bearer <token>'.")
        assert user is not None
        return user
    token = bearer_token(header)
    if not token:
        _refuse("the Authorization header is malformed", "Use the form 'Bearer <token>'.")
    if user is None:
        _refuse("the bearer token is not valid", "The token is unknown, expired or revoked.")
    assert user is not None
    # The app looked the token up once for the request, before anything else (a second
    # look-up per call cost a query each time: an endpoint asks twice).
    from core.app import token_authenticated

    if not token_authenticated():
        # A login session rode along with a bad token; the token is what the client meant.
        _refuse("the bearer token is not valid", "The token is unknown, expired or revoked.")
    return user


def require_api_user() -> None:
    """A ``before_request`` hook for API blueprints: refuse unauthenticated requests with 401."""
    api_user()

"""API authentication: every endpoint needs a logged-in user (bearer token or session)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask_smorest import abort

from core.models import User
from core.web import actor

F = TypeVar("F", bound=Callable[..., Any])


def api_user() -> User:
    """The calling user; aborts with 401 when the token is missing, wrong or expired."""
    user = actor()
    if user is None:
        abort(401, message="a valid bearer token (or login session) is required")
    assert user is not None
    return user


def authenticated(view: F) -> F:
    """Refuse the request with 401 unless a user is authenticated."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        api_user()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

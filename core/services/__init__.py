"""Business operations: each function takes a session and an actor and does one thing.

Views and API endpoints stay thin: they parse input, call a service and render.
Services never commit; the caller's transaction decides.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refused operation: ``code`` for machines, ``message`` for people, per-field ``details``.

    ``status`` is the HTTP status the API answers with.
    """

    def __init__(self, code: str, message: str, details: Any = None, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.status = status


class NotFound(ServiceError):
    """The record does not exist or lies outside the user's data scope (both answer 404)."""

    def __init__(self, what: str, ident: object):
        super().__init__("not_found", f"{what} {ident} was not found", status=404)


class Conflict(ServiceError):
    """The record changed meanwhile or is in a state that forbids the change (409)."""

    def __init__(self, code: str, message: str, details: Any = None):
        super().__init__(code, message, details, status=409)


class LocalizedError(ServiceError):
    """A refused operation whose message is a catalogue ``msgid`` (marked with ``N_``) with values.

    The API answers with the English ``message``; screens show :meth:`localized`, the
    same sentence in the reader's language with the values kept. Plugins subclass it
    (``ReviewError``, ``LogisticsError``) so their screens can tell their refusals apart.
    """

    def __init__(self, code: str, msgid: str, status: int = 422, details: Any = None, **params: Any):
        super().__init__(code, msgid % params if params else msgid, details, status=status)
        self.msgid = msgid
        self.params = params

    def localized(self) -> str:
        """The message in the current request's language (needs a Flask request context)."""
        from flask_babel import gettext

        return gettext(self.msgid, **self.params)

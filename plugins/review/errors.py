"""Review's refusals: a service error whose message is a catalogue msgid with values.

The API answers with the English ``message``; screens show ``localized()``, the same
sentence from review's catalogue in the reader's language with the values kept.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext

from core.services import ServiceError


class ReviewError(ServiceError):
    """A refused review operation: ``msgid`` (marked with ``N_``) and its ``params``.

    ``status`` defaults to 422 (bad input); use 409 for a state that forbids the change
    (a second verdict on a closed task) and 403 for a user outside the department.
    """

    def __init__(self, code: str, msgid: str, status: int = 422, details: Any = None, **params: Any):
        super().__init__(code, msgid % params if params else msgid, details, status=status)
        self.msgid = msgid
        self.params = params

    def localized(self) -> str:
        """The message in the current request's language (needs a Flask request context)."""
        return gettext(self.msgid, **self.params)

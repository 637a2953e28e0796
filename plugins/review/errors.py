"""Review's refusals: a service error whose message is a catalogue msgid with values.

The API answers with the English ``message``; screens show ``localized()``, the same
sentence from review's catalogue in the reader's language with the values kept.
"""

from __future__ import annotations

from core.services import LocalizedError


class ReviewError(LocalizedError):
    """A refused review operation: ``msgid`` (marked with ``N_``) and its ``params``.

    ``status`` defaults to 422 (bad input); use 409 for a state that forbids the change
    (a second verdict on a closed task) and 403 for a user outside the department.
    """

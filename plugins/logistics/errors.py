"""Logistics' refusals: a service error whose message is a catalogue msgid with values.

The API answers with the English ``message``; screens show ``localized()``, the same
sentence from logistics' catalogue in the reader's language with the values kept.
"""

from __future__ import annotations

from core.services import LocalizedError


class LogisticsError(LocalizedError):
    """A refused logistics operation: ``msgid`` (marked with ``N_``) and its ``params``.

    ``status`` defaults to 422 (bad input: a zero package weight, a return above the
    returnable quantity); 409 for a state that forbids the change (a count posted twice,
    shipping more than reserved, too little free stock); 403 for a wrong webhook secret.
    """

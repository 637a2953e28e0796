"""Billing's refusals: a service error whose message is a catalogue msgid with values.

The API answers with the English ``message``; screens show ``localized()``, the same
sentence from billing's catalogue in the reader's language with the values kept.
"""

from __future__ import annotations

from core.services import LocalizedError


class BillingError(LocalizedError):
    """A refused billing operation: ``BillingError(code, msgid, status=422, **params)``.

    ``status`` 422 for bad input (an allocation above the open amount, a foreign
    currency without a rate, more invoiced than delivered); 409 for a state that forbids
    the change (editing an issued invoice, a replayed payment event); 403 for a missing
    permission or a bad webhook signature; 404 for something unknown.
    """

"""The kpi plugin's refusals: a catalogue msgid with values, translated on screens."""

from __future__ import annotations

from core.services import LocalizedError


class KpiError(LocalizedError):
    """A refused kpi operation (bad period, unknown metric, target not a number…).

    ``KpiError("invalid", N_("…%(value)s…"), 422, {"field": [...]}, value=...)``: the API
    answers with the English message and ``details``; screens show ``.localized()``.
    """

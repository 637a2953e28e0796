"""English display labels for the codes Ordo stores: statuses, channels, payment methods,
urgencies, pre-check levels.

One source for every place people read them — screens (translated per request by
:mod:`core.views.labels`) and documents (translated by the document's language). The
strings are marked with ``N_`` so they join core's message catalogue.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now (gettext convention)."""
    return message


STATUSES = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "confirmed": N_("Confirmed"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
    "rejected": N_("Rejected"),
}
#: Channels an order arrives by (IN-1).
CHANNELS = {
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "fax": N_("Fax"),
    "portal": N_("Web portal"),
    "api": N_("API / EDI"),
    "offline": N_("Offline (sales rep)"),
}
#: Settlement methods (BL-1).
PAYMENT_METHODS = {
    "prepayment": N_("Prepayment"),
    "cash_on_delivery": N_("Cash on delivery"),
    "monthly_settlement": N_("Monthly settlement"),
    "instalments": N_("Instalments"),
}
URGENCIES = {
    "normal": N_("Normal"),
    "urgent": N_("Urgent"),
}
#: How serious a pre-check finding is.
FINDING_LEVELS = {
    "pass": N_("Passed"),
    "warn": N_("Warning"),
    "reject": N_("Problem"),
}

"""Invoices and credit notes (BL-3)."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()


def credit_note_for_return(session, order, source_key, lines, *, reference="") -> None:
    """Stub: a credit note for returned goods."""

"""Payment terms (BL-1) and their due dates; the order's terms and the finance check."""

from __future__ import annotations


def on_enter_finance_check(session, order, transition, user) -> None:
    """Stub: fix the order's terms; move on when standard and in good standing."""


def approve(session, order, user, reason) -> None:
    """Stub: record finance's approval of the order's terms."""

"""The settlement check and step (BL-2)."""

from __future__ import annotations

NOTIFICATIONS: tuple = ()


def completion_blockers(session, order) -> list[str]:
    """Stub: why an order may not complete."""
    return []


def advance(session, order, user) -> None:
    """Stub: move on from settlement when settled."""

"""The review panel on the order page (filled in by the screens helper)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.contrib import Panel
from core.models import Order, User


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """Review's panels for ``order`` as ``user`` may see them."""
    return []

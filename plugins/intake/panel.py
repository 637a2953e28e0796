"""Intake's panel on the order page (H2)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.contrib import Panel
from core.models import Order, User


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """Intake's panels for ``order`` as ``user`` sees it."""
    return []

"""The logistics panel of the order page (to be built in this issue)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.contrib import Panel
from core.models import Order, User


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """The order page's logistics panels for ``user``."""
    return []

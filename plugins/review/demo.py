"""Review's part of the demo company (helper "api")."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.models import Customer, User


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Orders at every review state and a revised order with its change history."""

"""Logistics' demo data (to be built in this issue)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.models import Customer, Order, User


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add logistics' part of the demo company."""


def pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Move a demo order on from a logistics step."""
    return False

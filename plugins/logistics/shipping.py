"""(to be built in this issue)."""

from sqlalchemy.orm import Session

from core.models import Order


def cancel_blockers(session: Session, order: Order) -> list[str]:
    """Why the order may not be cancelled now (goods on their way). To be built."""
    return []


def close_backorder_blockers(session: Session, order: Order) -> list[str]:
    """Why the backorder may not be closed now. To be built."""
    return []


def close_backorder(session: Session, order: Order, user: object) -> None:
    """Record the closed backorder and release the remaining reservations. To be built."""

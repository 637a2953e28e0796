"""Intake tells review whether an order is regular (IN-7 → RV-5); loaded only with intake."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Order
from plugins.intake.models import IntakeOrder


@hookimpl(optionalhook=True)
def ordo_review_is_regular(order: Order, session: Session) -> bool | None:
    """Intake's classification of ``order`` (None before the pre-check classified it)."""
    record = session.get(IntakeOrder, order.id)
    return None if record is None else record.regular

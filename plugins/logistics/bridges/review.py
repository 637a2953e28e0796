"""Logistics tells review what has shipped (CORE-5); loaded only when review is enabled too.

A change request may not take a line below what has left the warehouse, and an order
with goods issued is not cancelled but needs a return.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Order
from plugins.logistics.stock import shipped_quantities


@hookimpl(optionalhook=True)
def ordo_review_goods_issued(order: Order, session: Session) -> dict[int, Decimal]:
    """The quantity shipped per order line id (shipment moves; returns do not undo an issue)."""
    return {line_id: quantity for line_id, quantity in shipped_quantities(session, order.id).items() if quantity}

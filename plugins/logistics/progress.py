"""Logistics' automatic moves: on from shipping when all is shipped, from receipt when all is received.

:func:`advance` is called after every order transition and after every shipment,
receipt confirmation and acceptance report; it moves the order on when its step's
condition holds, and does nothing otherwise (so calling it twice is harmless).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.settings import get_setting, session_registry
from core.workflow import Workflow
from plugins.logistics.flow import ACCEPTANCE_REQUIRED, RECEIPT, SHIPPING
from plugins.logistics.models import LogisticsAcceptance, LogisticsOrder
from plugins.logistics.stock import q3, shipped_quantities

SHIPPED_ACTION = "shipped"
RECEIVED_ACTION = "received"


def fully_shipped(session: Session, order: Order) -> bool:
    """Whether every line has shipped in full, or the backorder was closed after something shipped."""
    shipped = shipped_quantities(session, order.id)
    facts = session.get(LogisticsOrder, order.id)
    if facts is not None and facts.backorder_closed_at is not None:
        return any(v > Decimal("0") for v in shipped.values())
    return bool(order.lines) and all(shipped.get(line.id, Decimal("0")) >= q3(line.quantity) for line in order.lines)


def fully_received(session: Session, order: Order) -> bool:
    """Whether every shipped shipment is received (and accepted, when the settings require it)."""
    from plugins.logistics.delivery import all_received

    if not all_received(session, order):
        return False
    if get_setting(session, ACCEPTANCE_REQUIRED):
        last = session.scalar(
            select(LogisticsAcceptance)
            .where(LogisticsAcceptance.order_id == order.id)
            .order_by(LogisticsAcceptance.round.desc())
            .limit(1)
        )
        return last is not None and last.result == "accepted"
    return True


def advance(session: Session, order: Order, user: User | None) -> None:
    """Move ``order`` on from shipping or receipt when that step's condition holds."""
    if order.step == SHIPPING and fully_shipped(session, order):
        _move_on(session, order, SHIPPED_ACTION, user)
    elif order.step == RECEIPT and fully_received(session, order):
        _move_on(session, order, RECEIVED_ACTION, user)


def _move_on(session: Session, order: Order, action: str, user: User | None) -> None:
    workflow = Workflow(session_registry(session), session)
    target = workflow.next_step(workflow.step(order.step)).key
    workflow.apply(order, action, target, user, "")

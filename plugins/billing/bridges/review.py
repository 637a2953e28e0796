"""Billing ↔ review (RV-7): review's credit question is answered by billing's one credit gate.

Registered only when review is enabled too (``extras`` in the manifest). Review asks
``ordo_review_credit_standing`` when an order enters its credit check; billing answers
with the gate's hold reasons (:func:`plugins.billing.credit.gate_reasons`, path
``review``). When review's named roles grant their own credit exception (the move
``credit_exception``), billing records it as its exception for the order, so the same
decision is not asked for twice at confirmation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import hookimpl

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User

#: Review's automatic move when every named role has granted its credit exception.
REVIEW_EXCEPTION_MOVE = "credit_exception"


@hookimpl(optionalhook=True)
def ordo_review_credit_standing(order: Order, session: Session) -> list[str]:
    """The credit gate's reasons against ``order`` (empty: in good standing)."""
    from plugins.billing.credit import gate_reasons

    return gate_reasons(session, order, "review")


@hookimpl
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    """Adopt review's credit exception as billing's for this order."""
    if transition.action == REVIEW_EXCEPTION_MOVE:
        from plugins.billing.credit import adopt_review_exception

        adopt_review_exception(session, order, user, transition.reason)

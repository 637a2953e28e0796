"""Review's own hooks: what other plugins tell review (credit standing, goods issued, kind).

Added to the plugin manager through ``ordo_add_hookspecs`` when review is enabled.
Implement them with ``@hookimpl(optionalhook=True)`` — usually in a bridge module
(``extras = {"review": "plugins.<name>.bridges.review"}``) — so the implementing plugin
still loads when review is disabled. With no implementation review assumes the
friendly answer: good standing, nothing shipped, kind unknown (the products decide).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order


@hookspec
def ordo_review_credit_standing(order: Order, session: Session) -> list[str]:  # type: ignore[empty-body]
    """Return why ``order``'s customer is not in good standing (empty: no objection).

    Asked when the order enters ``review.credit_check`` and when sales asks again
    (RV-7). Billing answers from overdue amounts and the credit limit. Every
    implementation's reasons are collected and kept on the credit hold; give them as
    sentences a salesperson can act on.
    """


@hookspec
def ordo_review_goods_issued(order: Order, session: Session) -> dict[int, Decimal]:  # type: ignore[empty-body]
    """Return the quantity already shipped per order line id (missing lines: none).

    Asked before a change request is filed or approved and before a cancellation: a
    revision may not take a line below what has left the warehouse, and an order with
    goods issued is not cancelled but needs a return (CORE-5). Logistics answers it.
    """


@hookspec(firstresult=True)
def ordo_review_is_regular(order: Order, session: Session) -> bool | None:
    """Return whether ``order`` is a regular order (常规订单), or None if you cannot tell.

    The first answer wins; intake answers with its classification (IN-7). Without one,
    an order is regular when every product on it is marked regular. Review templates
    choose departments by it (RV-5).
    """

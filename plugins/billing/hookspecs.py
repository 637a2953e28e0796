"""Billing's own hooks: what other plugins tell billing about deliveries and documents.

Added to the plugin manager through ``ordo_add_hookspecs`` when billing is enabled.
Implement them with ``@hookimpl(optionalhook=True)`` — in a bridge module
(``extras = {"billing": "plugins.<name>.bridges.billing"}``) or billing's own bridge to
the other plugin — so the implementing plugin still loads when billing is disabled.
Without an answer billing assumes a company that does not track deliveries: an order's
ordered quantities count as delivered once it is confirmed (services, BL-3).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order


@dataclass(frozen=True)
class Delivery:
    """Goods of an order that left the company: the shipment's number, when, their value."""

    order_id: int
    reference: str
    shipped_at: dt.datetime
    amount: Decimal


@hookspec(firstresult=True)
def ordo_billing_delivered_quantities(order: Order, session: Session) -> dict[int, Decimal] | None:
    """Return the quantity delivered per order line id, or None if you do not track deliveries.

    The first answer wins; logistics answers with the shipped quantities. Invoices from
    delivered quantities and the settlement check use it.
    """


@hookspec
def ordo_billing_deliveries(  # type: ignore[empty-body]
    session: Session, order_ids: list[int] | None, shipped_before: dt.datetime | None
) -> list[Delivery]:
    """Return the deliveries (shipments) of ``order_ids`` (None: all) shipped before a time.

    The report of shipments not invoiced within a month (BL-3) lists them.
    """


@hookspec
def ordo_billing_settlement_problems(order: Order, session: Session) -> list[str]:  # type: ignore[empty-body]
    """Return what is missing among ``order``'s settlement documents (BL-2), as sentences.

    Logistics answers: a shipment without a signed delivery note, an acceptance report
    that is missing or not accepted. Billing adds its own (contract, invoiced amount).
    """

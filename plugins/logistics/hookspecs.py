"""Logistics' own hooks: carrier connectors, a check before each shipment, returns inspected.

Added to the plugin manager through ``ordo_add_hookspecs`` when logistics is enabled.
Implement them with ``@hookimpl(optionalhook=True)`` — in a bridge module
(``extras = {"logistics": "plugins.<name>.bridges.logistics"}``) or an integrator's
plugin — so the implementing plugin still loads when logistics is disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order
    from plugins.logistics.connectors import CarrierConnector
    from plugins.logistics.models import LogisticsReturn, LogisticsShipment


@hookspec
def ordo_logistics_carrier_connectors() -> list[CarrierConnector]:  # type: ignore[empty-body]
    """Return connectors to carriers' systems: book a shipment, fetch its label, pull tracking.

    A carrier whose ``connector`` field names a connector's ``key`` is booked through it
    when shipped (the carrier's tracking number comes back), and its tracking is pulled
    by the job ``logistics.pull_tracking``. See :class:`plugins.logistics.connectors.CarrierConnector`.
    """


@hookspec
def ordo_logistics_shipment_guard(order: Order, shipment: LogisticsShipment, session: Session) -> list[str]:  # type: ignore[empty-body]
    """Return reasons to refuse shipping ``shipment`` of ``order`` now (empty: no objection).

    Asked before every shipment leaves, partial ones included, so a check that must hold
    at each shipment (billing's credit gate) cannot be bypassed by shipping in parts.
    Give sentences a warehouse clerk can pass on.
    """


@hookspec
def ordo_logistics_return_inspected(request: LogisticsReturn, session: Session) -> None:
    """React to a return whose goods were received and inspected (billing: a credit note).

    Called once per return, inside the transaction that closes it; the return's lines
    carry the received quantities and their dispositions.
    """

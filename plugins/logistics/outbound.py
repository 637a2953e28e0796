"""The outbound check (出库审核): whether an order may be released to shipping, and the release.

An order is released when stock is reserved for it (every line, or some when the
order may ship in parts), its ship-to address is complete, and the attachment kinds
the setting ``logistics.outbound.required_documents`` names are on file. The reasons
are fixed sentences (translated on screens), returned by the step's guard.
Releasing (or confirming, with the check disabled) marks the goods ready, which
starts the ageing clock (LG-10).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.labels import N_
from core.models import Order, OrderAttachment, User
from core.settings import get_setting
from plugins.logistics.flow import REQUIRED_DOCUMENTS
from plugins.logistics.models import LogisticsOrder
from plugins.logistics.stock import backorder_quantities, reserved_quantities

NO_WAREHOUSE = N_("No warehouse is set up to ship from.")
NOTHING_RESERVED = N_("No stock is reserved for this order yet.")
SHORT_NOT_PARTIAL = N_("Some lines are short of stock and this order may not ship in parts.")
ADDRESS_INCOMPLETE = N_("The ship-to address is incomplete: province, city, address, contact and phone are needed.")
DOCUMENTS_MISSING = N_("A document the outbound check requires is not attached to the order.")


def required_document_kinds(session: Session) -> list[str]:
    """The attachment kinds an order needs before release (setting, comma-separated)."""
    raw = str(get_setting(session, REQUIRED_DOCUMENTS) or "")
    return [kind.strip() for kind in raw.split(",") if kind.strip()]


def missing_documents(session: Session, order: Order) -> list[str]:
    """The required attachment kinds the order does not have."""
    kinds = required_document_kinds(session)
    if not kinds:
        return []
    present = set(
        session.scalars(
            select(OrderAttachment.kind).where(
                OrderAttachment.order_id == order.id, OrderAttachment.removed_at.is_(None)
            )
        )
    )
    return [kind for kind in kinds if kind not in present]


def address_complete(order: Order) -> bool:
    """Whether the ship-to address has what a waybill needs."""
    return all(
        (order.ship_to_province, order.ship_to_city, order.ship_to_address, order.ship_to_contact, order.ship_to_phone)
    )


def release_blockers(session: Session, order: Order) -> list[str]:
    """Every reason the order may not be released to shipping now (empty: it may)."""
    facts = session.get(LogisticsOrder, order.id)
    reasons = []
    if facts is None or facts.warehouse_id is None:
        reasons.append(NO_WAREHOUSE)
    reserved = reserved_quantities(session, order.id)
    if not any(q > Decimal("0") for q in reserved.values()):
        reasons.append(NOTHING_RESERVED)
    elif backorder_quantities(session, order) and facts is not None and not facts.allow_partial:
        reasons.append(SHORT_NOT_PARTIAL)
    if not address_complete(order):
        reasons.append(ADDRESS_INCOMPLETE)
    if missing_documents(session, order):
        reasons.append(DOCUMENTS_MISSING)
    return reasons


def mark_ready(session: Session, order: Order, user: User | None, *, checked: bool) -> None:
    """Record that the order's goods are ready to ship (and who checked them, if ``checked``)."""
    facts = session.get(LogisticsOrder, order.id)
    if facts is None:
        return
    now = utcnow()
    if checked:
        facts.checked_at = now
        facts.checked_by_id = user.id if user is not None else None
    if facts.ready_at is None:
        facts.ready_at = now
        facts.ageing_level = 0
    session.flush()

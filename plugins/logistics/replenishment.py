"""The replenishment list (补货): what backorders need and what falls below the reorder level.

One row per product that either has backorders on open (confirmed) orders or whose free
stock is below its reorder level. The suggested quantity to buy or make is::

    suggested = backorders + reorder level − free stock   (never below zero)

The waiting orders are listed earliest promised date first — the order in which
:func:`plugins.logistics.stock.reserve_backorders` serves them when stock arrives.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labels import N_
from core.models import Order, Product, User
from plugins.logistics import stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.flow import STOCK_MANAGE
from plugins.logistics.models import LogisticsOrder, LogisticsProduct


@dataclass
class WaitingOrder:
    """An open order short of a product: its number, promised date and missing quantity."""

    order_id: int
    number: str
    promised_date: dt.date | None
    quantity: Decimal


@dataclass
class ReplenishmentRow:
    """One product on the replenishment list."""

    product: Product
    backorder: Decimal
    free: Decimal
    reorder_level: Decimal
    orders: list[WaitingOrder] = field(default_factory=list)

    @property
    def suggested(self) -> Decimal:
        """Backorders + reorder level − free stock, at least zero."""
        return max(stock.ZERO, stock.q3(self.backorder + self.reorder_level - self.free))

    @property
    def earliest(self) -> dt.date | None:
        """The earliest promised date of the waiting orders."""
        dates = [o.promised_date for o in self.orders if o.promised_date is not None]
        return min(dates) if dates else None


def _sort_key(row: ReplenishmentRow) -> tuple[bool, dt.date, str]:
    earliest = row.earliest
    return (earliest is None, earliest or dt.date.max, row.product.sku)


def replenishment_list(session: Session) -> list[ReplenishmentRow]:
    """Products with backorders or below their reorder level, most urgent (earliest promise) first."""
    waiting: dict[int, list[WaitingOrder]] = defaultdict(list)
    stmt = (
        select(Order, LogisticsOrder)
        .join(LogisticsOrder, LogisticsOrder.order_id == Order.id)
        .where(Order.status.in_(stock.OPEN_STATUSES), LogisticsOrder.backorder_closed_at.is_(None))
        .order_by(LogisticsOrder.promised_date.is_(None), LogisticsOrder.promised_date, Order.id)
    )
    for order, facts in session.execute(stmt).tuples().all():
        short = stock.backorder_quantities(session, order)
        if not short:
            continue
        per_product: dict[int, Decimal] = defaultdict(lambda: stock.ZERO)
        for line in order.lines:
            if line.id in short:
                per_product[line.product_id] += short[line.id]
        for product_id, quantity in per_product.items():
            waiting[product_id].append(WaitingOrder(order.id, order.number, facts.promised_date, quantity))
    levels = {
        facts.product_id: stock.q3(facts.reorder_level)
        for facts in session.scalars(select(LogisticsProduct).where(LogisticsProduct.reorder_level > 0))
    }
    product_ids = set(waiting) | set(levels)
    if not product_ids:
        return []
    totals = stock.stock_by_product(session, product_ids)
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(product_ids)))}
    rows = []
    for product_id in product_ids:
        free = totals.get(product_id, {}).get("free", stock.ZERO)
        backorder = sum((o.quantity for o in waiting.get(product_id, [])), stock.ZERO)
        level = levels.get(product_id, stock.ZERO)
        if backorder <= stock.ZERO and free >= level:
            continue
        rows.append(ReplenishmentRow(products[product_id], backorder, free, level, waiting.get(product_id, [])))
    return sorted(rows, key=_sort_key)


def reserve_for_waiting(session: Session, actor: User, product_ids: Iterable[int] | None = None) -> list[int]:
    """Reserve free stock for waiting orders now (earliest promise first); the ids of orders served.

    Needs ``logistics.stock.manage``. Normally receipts do this by themselves; the
    button is for stock freed otherwise (a cancelled order, a closed backorder).
    """
    if not actor.can(STOCK_MANAGE):
        raise LogisticsError("forbidden", N_("You may not change stock."), status=403)
    return stock.reserve_backorders(session, product_ids, actor)

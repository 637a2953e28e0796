"""Quotations (报价单): cost lines against revenue give the margins; low margins are flagged.

OWNER: helper "quotation" — replace every ``NotImplementedError`` body; keep the signatures.

gross margin = (revenue − cost) / revenue; expense ratio = expenses / revenue; profit
margin = (revenue − cost − taxes − expenses) / revenue, where revenue is the order's
untaxed amount, cost the sum of material, outsourcing, labour, overhead and freight
lines, taxes the ``tax`` lines and expenses the ``expense`` lines. A quotation whose
gross or profit margin is under ``review.quotation.min_gross_margin`` /
``min_profit_margin`` is flagged ``below_minimum`` (and the sheet's readers see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.contrib import NotificationTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order, User
    from plugins.review.models import ReviewQuotation, ReviewSheet


@dataclass(frozen=True)
class Margins:
    """What a quotation's lines give: totals and percentages (None when revenue is 0)."""

    revenue: Decimal
    cost: Decimal
    taxes: Decimal
    expenses: Decimal
    gross_margin: Decimal | None
    expense_ratio: Decimal | None
    profit_margin: Decimal | None


def compute(revenue: Decimal, lines: list[tuple[str, Decimal]]) -> Margins:
    """The margins of ``(kind, amount)`` cost lines against ``revenue`` (percent, 2 places)."""
    raise NotImplementedError


def latest(session: Session, order_id: int) -> ReviewQuotation | None:
    """The order's newest quotation."""
    raise NotImplementedError


def on_sheet_opened(session: Session, order: Order, sheet: ReviewSheet) -> ReviewQuotation:
    """Start the round's quotation: the previous one's lines copied, revenue from the order."""
    raise NotImplementedError


def save(
    session: Session,
    actor: User,
    order: Order,
    *,
    lines: list[dict[str, Any]],
    payment_terms: str = "",
    note: str = "",
) -> ReviewQuotation:
    """Replace the latest quotation's cost lines, recompute and flag it; audited.

    ``lines`` are ``{"kind", "description", "amount"}``. Refused (ReviewError): no
    permission (403), order not in review (409), unknown kind or negative amount (422).
    """
    raise NotImplementedError


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()

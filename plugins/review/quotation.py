"""Quotations (报价单): cost lines against revenue give the margins; low margins are flagged.

Why: the company confirms only orders it can deliver profitably (RV-1, RV-2). Finance,
sales and engineering put the cost of an order into a quotation; the margins follow
from it and a quotation under the configured minimum margins is flagged, and finance
and the order's owner are told, before anybody approves the order.

gross margin = (revenue − cost) / revenue; expense ratio = expenses / revenue; profit
margin = (revenue − cost − taxes − expenses) / revenue, where revenue is the order's
untaxed amount, cost the sum of material, outsourcing, labour, overhead and freight
lines, taxes the ``tax`` lines and expenses the ``expense`` lines. A quotation whose
gross or profit margin is under ``review.quotation.min_gross_margin`` /
``min_profit_margin`` is flagged ``below_minimum`` (and the sheet's readers see it).
Without revenue the margins are unknown (None): such a quotation is flagged when it
carries any cost, tax or expense at all (nothing earns it back).

Each review round (sheet) starts a new quotation numbered per order (1, 2, …) with the
previous one's lines copied, so a re-quote starts from the last prices; earlier
quotations are kept. Saving replaces the latest quotation's lines while the order is
in department review, consolidation or at the president, and is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.contrib import NotificationTemplate
from core.labels import N_
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.services import audit
from core.services.orders import may_see_order
from core.settings import get_setting
from plugins.review import flow
from plugins.review.errors import ReviewError
from plugins.review.models import QUOTATION_LINE_KINDS, ReviewQuotation, ReviewQuotationLine, ReviewSheet

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order, User

#: Line kinds that make up the cost of goods (the rest: ``tax`` and ``expense``).
COST_KINDS = ("material", "outsourcing", "labour", "overhead", "freight")
#: The steps during which a quotation may be edited.
EDITABLE_STEPS = (flow.DEPARTMENT_REVIEW, flow.CONSOLIDATION, flow.PRESIDENT)
#: At most this many cost lines on a quotation.
MAX_LINES = 200
#: The longest description of a cost line, payment terms and note.
MAX_DESCRIPTION = 200
MAX_PAYMENT_TERMS = 200
MAX_NOTE = 2000
#: The largest amount of one cost line (200 of them still fit a money column).
MAX_AMOUNT = Decimal("99999999999.99")
#: Percentages are stored in a column holding less than ±1000.
_PERCENT_LIMIT = Decimal("999.99")
_CENT = Decimal("0.01")
_HUNDRED = Decimal("100")

# Refusals (msgids, translated in review's catalogue).
MSG_FORBIDDEN = N_("You may not prepare quotations.")
MSG_NOT_FOUND = N_("Order %(order)s was not found.")
MSG_NOT_IN_REVIEW = N_(
    "The quotation of order %(order)s can only be changed during department review, consolidation or at the president."
)
MSG_INVALID = N_("The quotation was not saved: correct the marked lines.")
MSG_TOO_MANY = N_("A quotation has at most %(max)s cost lines.")
MSG_NOT_A_LIST = N_("Give the cost lines as a list.")
MSG_LINE_NOT_OBJECT = N_("Give each cost line as kind, description and amount.")
MSG_UNKNOWN_KIND = N_("Choose one of the cost line kinds.")
MSG_AMOUNT_MISSING = N_("Give an amount.")
MSG_AMOUNT_NUMBER = N_("Give an amount as a number.")
MSG_AMOUNT_NEGATIVE = N_("An amount cannot be negative.")
MSG_AMOUNT_PLACES = N_("An amount has at most two decimal places.")
MSG_AMOUNT_LARGE = N_("An amount is at most 99,999,999,999.99.")
MSG_DESCRIPTION_LONG = N_("At most 200 characters.")
MSG_TEXT_TYPE = N_("Give text.")
MSG_NOTE_LONG = N_("At most 2000 characters.")


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


def _percent(part: Decimal, revenue: Decimal) -> Decimal:
    return (part * _HUNDRED / revenue).quantize(_CENT)


def compute(revenue: Decimal, lines: list[tuple[str, Decimal]]) -> Margins:
    """The margins of ``(kind, amount)`` cost lines against ``revenue`` (percent, 2 places).

    Revenue of zero (or less) leaves the percentages None: nothing to divide by.
    """
    cost = sum((amount for kind, amount in lines if kind in COST_KINDS), Decimal("0"))
    taxes = sum((amount for kind, amount in lines if kind == "tax"), Decimal("0"))
    expenses = sum((amount for kind, amount in lines if kind == "expense"), Decimal("0"))
    if revenue <= 0:
        return Margins(revenue, cost, taxes, expenses, None, None, None)
    return Margins(
        revenue=revenue,
        cost=cost,
        taxes=taxes,
        expenses=expenses,
        gross_margin=_percent(revenue - cost, revenue),
        expense_ratio=_percent(expenses, revenue),
        profit_margin=_percent(revenue - cost - taxes - expenses, revenue),
    )


def minima(session: Session) -> tuple[Decimal, Decimal]:
    """The configured minimum gross and profit margins (percent)."""
    return (
        Decimal(str(get_setting(session, flow.MIN_GROSS_MARGIN))),
        Decimal(str(get_setting(session, flow.MIN_PROFIT_MARGIN))),
    )


def is_below_minimum(margins: Margins, min_gross: Decimal, min_profit: Decimal) -> bool:
    """Whether ``margins`` fall under a minimum (a margin exactly at its minimum is fine).

    Without revenue a quotation is below minimum as soon as it carries any outlay.
    """
    if margins.gross_margin is None or margins.profit_margin is None:
        return margins.cost + margins.taxes + margins.expenses > 0
    return margins.gross_margin < min_gross or margins.profit_margin < min_profit


def _storable(value: Decimal | None) -> Decimal | None:
    """A percentage as its column holds it (within ±999.99; the flag uses the true value)."""
    if value is None:
        return None
    return max(-_PERCENT_LIMIT, min(_PERCENT_LIMIT, value))


def _apply(session: Session, quotation: ReviewQuotation, margins: Margins) -> None:
    quotation.revenue = margins.revenue
    quotation.cost = margins.cost
    quotation.taxes = margins.taxes
    quotation.expenses = margins.expenses
    quotation.gross_margin = _storable(margins.gross_margin)
    quotation.expense_ratio = _storable(margins.expense_ratio)
    quotation.profit_margin = _storable(margins.profit_margin)
    quotation.below_minimum = is_below_minimum(margins, *minima(session))


def margins_of(quotation: ReviewQuotation) -> Margins:
    """The margins of a stored quotation's lines against its revenue (recomputed)."""
    return compute(quotation.revenue, [(line.kind, line.amount) for line in quotation.lines])


def latest(session: Session, order_id: int) -> ReviewQuotation | None:
    """The order's newest quotation."""
    return session.scalar(
        select(ReviewQuotation)
        .where(ReviewQuotation.order_id == order_id)
        .order_by(ReviewQuotation.number.desc())
        .limit(1)
    )


def all_for(session: Session, order_id: int) -> list[ReviewQuotation]:
    """Every quotation of the order, newest first."""
    return list(
        session.scalars(
            select(ReviewQuotation).where(ReviewQuotation.order_id == order_id).order_by(ReviewQuotation.number.desc())
        )
    )


def on_sheet_opened(session: Session, order: Order, sheet: ReviewSheet) -> ReviewQuotation:
    """Start the round's quotation: the previous one's lines copied, revenue from the order."""
    if sheet.id is None:
        session.flush()
    previous = latest(session, order.id)
    quotation = ReviewQuotation(
        order_id=order.id,
        sheet_id=sheet.id,
        number=previous.number + 1 if previous is not None else 1,
        payment_terms=previous.payment_terms if previous is not None else "",
        lines=[
            ReviewQuotationLine(
                position=line.position, kind=line.kind, description=line.description, amount=line.amount
            )
            for line in (previous.lines if previous is not None else [])
        ],
    )
    _apply(session, quotation, compute(order.untaxed_amount, [(line.kind, line.amount) for line in quotation.lines]))
    session.add(quotation)
    session.flush()
    return quotation


def _amount(raw: Any) -> tuple[Decimal | None, str | None]:
    """A cost line's amount from what arrived, or the msgid saying why not."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, MSG_AMOUNT_MISSING
    if isinstance(raw, bool):
        return None, MSG_AMOUNT_NUMBER
    try:
        amount = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        return None, MSG_AMOUNT_NUMBER
    if not amount.is_finite():
        return None, MSG_AMOUNT_NUMBER
    if amount < 0:
        return None, MSG_AMOUNT_NEGATIVE
    if amount > MAX_AMOUNT:
        return None, MSG_AMOUNT_LARGE
    if amount != amount.quantize(_CENT):
        return None, MSG_AMOUNT_PLACES
    return amount.quantize(_CENT), None


def clean_lines(lines: Any) -> list[tuple[str, str, Decimal]]:
    """``lines`` checked: ``(kind, description, amount)`` each; ReviewError (422) listing every problem."""
    if not isinstance(lines, list | tuple):
        raise ReviewError("invalid", MSG_NOT_A_LIST, details={"lines": [MSG_NOT_A_LIST]})
    if len(lines) > MAX_LINES:
        raise ReviewError(
            "invalid", MSG_TOO_MANY, details={"lines": [MSG_TOO_MANY % {"max": MAX_LINES}]}, max=MAX_LINES
        )
    clean: list[tuple[str, str, Decimal]] = []
    problems: dict[int, dict[str, list[str]]] = {}
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            problems[index] = {"line": [MSG_LINE_NOT_OBJECT]}
            continue
        errors: dict[str, list[str]] = {}
        unknown = sorted(set(line) - {"kind", "description", "amount"})
        for name in unknown:
            errors[str(name)] = [N_("Unknown field.")]
        kind = line.get("kind")
        if not isinstance(kind, str) or kind not in QUOTATION_LINE_KINDS:
            errors["kind"] = [MSG_UNKNOWN_KIND]
        description = line.get("description") or ""
        if not isinstance(description, str):
            errors["description"] = [MSG_TEXT_TYPE]
        elif len(description.strip()) > MAX_DESCRIPTION:
            errors["description"] = [MSG_DESCRIPTION_LONG]
        amount, problem = _amount(line.get("amount"))
        if problem:
            errors["amount"] = [problem]
        if errors:
            problems[index] = errors
        else:
            assert amount is not None and isinstance(kind, str) and isinstance(description, str)
            clean.append((kind, description.strip(), amount))
    if problems:
        raise ReviewError("invalid", MSG_INVALID, details={"lines": problems})
    return clean


def _text(name: str, value: Any, limit: int, message: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError("invalid", MSG_TEXT_TYPE, details={name: [MSG_TEXT_TYPE]})
    value = value.strip()
    if len(value) > limit:
        raise ReviewError("invalid", message, details={name: [message]})
    return value


def _current_sheet_id(session: Session, order_id: int) -> int | None:
    return session.scalar(
        select(ReviewSheet.id).where(ReviewSheet.order_id == order_id).order_by(ReviewSheet.round.desc()).limit(1)
    )


def _plain(value: Any) -> Any:
    """A value as the audit trail keeps it (amounts and percentages as strings)."""
    return str(value) if isinstance(value, Decimal) else value


def _line_record(kind: str, description: str, amount: Decimal) -> dict[str, str]:
    return {"kind": kind, "description": description, "amount": str(amount)}


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
    Revenue is taken again from the order (a negotiated price changes it). When the
    save newly flags the quotation below minimum, finance and the order's owner are told.
    """
    if not actor.can(flow.QUOTATION_MANAGE):
        raise ReviewError("forbidden", MSG_FORBIDDEN, status=403)
    if not may_see_order(session, actor, order):
        raise ReviewError("not_found", MSG_NOT_FOUND, status=404, order=order.id)
    if order.step not in EDITABLE_STEPS:
        raise ReviewError("not_in_review", MSG_NOT_IN_REVIEW, status=409, order=order.number)
    clean = clean_lines(lines)
    payment_terms = _text("payment_terms", payment_terms, MAX_PAYMENT_TERMS, MSG_DESCRIPTION_LONG)
    note = _text("note", note, MAX_NOTE, MSG_NOTE_LONG)

    quotation = latest(session, order.id)
    if quotation is None:
        quotation = ReviewQuotation(order_id=order.id, sheet_id=_current_sheet_id(session, order.id), number=1)
        session.add(quotation)
        before_lines: list[dict[str, str]] = []
        was_flagged = False
    else:
        before_lines = [_line_record(line.kind, line.description, line.amount) for line in quotation.lines]
        was_flagged = quotation.below_minimum
    before = {
        "revenue": quotation.revenue,
        "gross_margin": quotation.gross_margin,
        "profit_margin": quotation.profit_margin,
        "below_minimum": quotation.below_minimum,
        "payment_terms": quotation.payment_terms,
        "note": quotation.note,
    }
    quotation.lines.clear()
    for position, (kind, description, amount) in enumerate(clean, start=1):
        quotation.lines.append(
            ReviewQuotationLine(position=position, kind=kind, description=description, amount=amount)
        )
    quotation.payment_terms = payment_terms
    quotation.note = note
    if quotation.created_by_id is None:
        quotation.created_by_id = actor.id
    margins = compute(order.untaxed_amount, [(kind, amount) for kind, _d, amount in clean])
    _apply(session, quotation, margins)
    session.flush()

    after_lines = [_line_record(*line) for line in clean]
    changes: dict[str, Any] = {
        key: [_plain(old), _plain(getattr(quotation, key))]
        for key, old in before.items()
        if old != getattr(quotation, key)
    }
    if before_lines != after_lines:
        changes["lines"] = [before_lines, after_lines]
    audit.record(
        session,
        actor,
        "review_quotation",
        quotation.id,
        "save",
        {"number": quotation.number, **changes},
        order_id=order.id,
    )
    if quotation.below_minimum and not was_flagged:
        _tell_below_minimum(session, order, quotation)
    return quotation


def _tell_below_minimum(session: Session, order: Order, quotation: ReviewQuotation) -> None:
    """Finance and the order's owner learn that the quotation fell under a minimum margin."""
    min_gross, min_profit = minima(session)
    owner = order.owner_id or order.created_by_id
    recipients: list[Recipient] = [ToRole("finance")]
    if owner is not None:
        recipients.append(ToUser(owner))
    notify(
        session,
        MARGIN_BELOW_MINIMUM.name,
        to=recipients,
        order=order,
        context={
            "number": quotation.number,
            "gross_margin": _shown(quotation.gross_margin),
            "profit_margin": _shown(quotation.profit_margin),
            "min_gross_margin": _shown(min_gross),
            "min_profit_margin": _shown(min_profit),
        },
    )


def _shown(value: Decimal | None) -> str:
    return "—" if value is None else f"{value.quantize(_CENT)}%"


MARGIN_BELOW_MINIMUM = NotificationTemplate(
    "review.margin_below_minimum",
    label=N_("Quotation margin below the minimum (to finance and the order's owner)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 报价单毛利低于下限",
        "en": "Order {{ order.number }}: quotation margin below the minimum",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）第 {{ number }} 版报价单的利润率"
        "低于公司规定：\n\n"
        "毛利率 {{ gross_margin }}（下限 {{ min_gross_margin }}）\n"
        "净利率 {{ profit_margin }}（下限 {{ min_profit_margin }}）\n\n"
        "请在评审中核实成本与价格。\n",
        "en": "Quotation no. {{ number }} of order {{ order.number }} ({{ order.customer.name }}) is under the "
        "company's minimum margins:\n\n"
        "Gross margin {{ gross_margin }} (minimum {{ min_gross_margin }})\n"
        "Profit margin {{ profit_margin }} (minimum {{ min_profit_margin }})\n\n"
        "Please check the costs and the price during the review.\n",
    },
)

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (MARGIN_BELOW_MINIMUM,)

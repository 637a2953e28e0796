"""Review's indicators for the kpi plugin (KP-1), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.review.bridges.kpi"}``, so
review never imports kpi when kpi is off. Every indicator counts the company days
``start`` … ``end`` inclusive (:func:`plugins.kpi.indicators.period_bounds`) and has
no value (None) when there was nothing to count:

- ``review.timeliness`` (percent): of the department tasks answered in the period
  (status ``answered``, ``answered_at`` in the period), the share answered on or before
  their due day (the company date of ``answered_at`` against ``due_date``). Broken down
  by department code; each department's part is that department's own timeliness (its
  on-time answers over its answers), so the parts' numerators and denominators add up
  to the whole. A task re-opened by a negotiation counts again when answered again.
- ``review.acceptance_rate`` (percent): of the review sheets closed in the period
  (``closed_at``), the share whose outcome is ``approved``; broken down by outcome over
  the same denominator (a re-quoted round counts as a sheet not accepted).
- ``review.change_requests_per_order`` (count): change and cancellation requests filed
  in the period (``requested_at``, whatever became of them) per order reviewed in the
  period — an order with a review sheet opened in the period, counted once however
  many rounds it had. Two decimals; broken down by request kind (``change``,
  ``cancel``) over the same denominator.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from plugins.kpi.hookspecs import PERCENT_PLACES, Indicator, IndicatorValue
from plugins.kpi.indicators import period_bounds
from plugins.review.models import ReviewChangeRequest, ReviewDepartment, ReviewSheet, ReviewTask

#: The sheet outcome that means the order was accepted.
APPROVED = "approved"


def _within(column: Any, start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """``column`` lies within the company days ``start`` … ``end`` inclusive."""
    lower, upper = period_bounds(start, end)
    condition: ColumnElement[bool] = column >= lower
    return condition & (column < upper) if upper is not None else condition


def per(numerator: int | Decimal, denominator: int | Decimal) -> IndicatorValue:
    """``numerator / denominator`` as a count with two decimals (None when nothing was measured)."""
    num, den = Decimal(numerator), Decimal(denominator)
    value = (num / den).quantize(PERCENT_PLACES, ROUND_HALF_UP) if den else None
    return IndicatorValue(value, num, den)


def timeliness(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Tasks answered in the period on or before their due day / tasks answered; by department."""
    rows = session.execute(
        select(ReviewTask.answered_at, ReviewTask.due_date, ReviewDepartment.code)
        .join(ReviewDepartment, ReviewDepartment.id == ReviewTask.department_id)
        .where(ReviewTask.status == "answered", _within(ReviewTask.answered_at, start, end))
    ).all()
    answered: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    for answered_at, due, code in rows:
        answered[code] += 1
        if answered_at.astimezone(COMPANY_TIMEZONE).date() <= due:
            on_time[code] += 1
    breakdown = {code: IndicatorValue.ratio(on_time[code], answered[code]) for code in sorted(answered)}
    return IndicatorValue.ratio(sum(on_time.values()), len(rows), breakdown)


def acceptance_rate(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Sheets closed in the period with outcome ``approved`` / sheets closed; by outcome."""
    outcomes = Counter(
        session.scalars(
            select(ReviewSheet.outcome).where(
                ReviewSheet.closed_at.is_not(None), _within(ReviewSheet.closed_at, start, end)
            )
        )
    )
    total = sum(outcomes.values())
    breakdown = {outcome or "-": IndicatorValue.ratio(count, total) for outcome, count in sorted(outcomes.items())}
    return IndicatorValue.ratio(outcomes[APPROVED], total, breakdown)


def change_requests_per_order(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Change requests filed in the period / orders with a review sheet opened in the period; by kind."""
    reviewed = (
        session.scalar(
            select(func.count(func.distinct(ReviewSheet.order_id))).where(_within(ReviewSheet.opened_at, start, end))
        )
        or 0
    )
    kinds = Counter(
        session.scalars(select(ReviewChangeRequest.kind).where(_within(ReviewChangeRequest.requested_at, start, end)))
    )
    whole = per(sum(kinds.values()), reviewed)
    breakdown = {kind: per(count, reviewed) for kind, count in sorted(kinds.items())}
    return IndicatorValue(whole.value, whole.numerator, whole.denominator, breakdown)


INDICATORS = (
    Indicator(
        "review.timeliness",
        N_("Review timeliness"),
        "percent",
        N_(
            "Share of the department review tasks answered in the period that were answered on or before "
            "their due day, by department."
        ),
        timeliness,
    ),
    Indicator(
        "review.acceptance_rate",
        N_("Review acceptance rate"),
        "percent",
        N_("Share of the review sheets closed in the period whose order was approved, by outcome."),
        acceptance_rate,
    ),
    Indicator(
        "review.change_requests_per_order",
        N_("Change requests per reviewed order"),
        "count",
        N_(
            "Change and cancellation requests filed in the period per order whose review started in the period, "
            "by kind of request."
        ),
        change_requests_per_order,
    ),
)


@hookimpl(optionalhook=True)
def ordo_kpi_indicators() -> list[Indicator]:
    """Review's indicators: review timeliness, acceptance rate, change requests per order."""
    return list(INDICATORS)

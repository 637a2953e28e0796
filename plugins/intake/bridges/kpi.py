"""Intake's indicators for the kpi plugin (KP-1, IN-9), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.intake.bridges.kpi"}``, so
intake never imports kpi when kpi is off. Every indicator counts company days
``start`` … ``end`` inclusive and is a percentage (None when there was nothing to count):

- ``intake.entry_accuracy``: of the orders whose manual check ended in the period with a
  verdict (accepted or rejected; ``checked_at``), the share with no correction marked
  as an entry error (``IntakeCorrection.entry_error``).
- ``intake.precheck_reject_rate``: of the orders pre-checked in the period
  (``prechecked_at``), the share the pre-check rejected (a ``precheck_reject``
  transition); broken down by the code of each rule that gave a rejecting finding (an
  order rejected by two rules counts under both).
- ``intake.manual_check_timeliness``: of the manual checks done in the period (as for
  entry accuracy), the share done on or before their due day (``check_due``), comparing
  the company date of ``checked_at``.

An order cancelled or moved on by a disabled plugin while waiting in the manual check
was not checked, so it counts in neither check indicator.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.labels import N_
from core.models import OrderTransition
from plugins.intake.flow import company_today
from plugins.intake.models import IntakeCorrection, IntakeFinding, IntakeOrder
from plugins.kpi.hookspecs import Indicator, IndicatorValue
from plugins.kpi.indicators import period_bounds

#: The manual-check outcomes that are a clerk's verdict (a check done).
CHECKED = ("accepted", "rejected")
#: The transition the pre-check records when it rejects an order (plugins.intake.flow).
PRECHECK_REJECT = "precheck_reject"


def _within(column: Any, start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """``column`` lies within the company days ``start`` … ``end`` inclusive."""
    lower, upper = period_bounds(start, end)
    condition: ColumnElement[bool] = column >= lower
    return condition & (column < upper) if upper is not None else condition


def _checked(start: dt.date, end: dt.date) -> ColumnElement[bool]:
    return IntakeOrder.check_outcome.in_(CHECKED) & _within(IntakeOrder.checked_at, start, end)


def entry_accuracy(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Orders checked in the period without an entry-error correction / orders checked (IN-9)."""
    entry_error = exists().where(
        IntakeCorrection.order_id == IntakeOrder.order_id, IntakeCorrection.entry_error.is_(True)
    )
    checked = session.scalar(select(func.count()).select_from(IntakeOrder).where(_checked(start, end))) or 0
    with_errors = (
        session.scalar(select(func.count()).select_from(IntakeOrder).where(_checked(start, end), entry_error)) or 0
    )
    return IndicatorValue.ratio(checked - with_errors, checked)


def precheck_reject_rate(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Orders pre-checked in the period that the pre-check rejected / orders pre-checked; by rule."""
    prechecked = _within(IntakeOrder.prechecked_at, start, end)
    rejected = exists().where(
        OrderTransition.order_id == IntakeOrder.order_id, OrderTransition.action == PRECHECK_REJECT
    )
    total = session.scalar(select(func.count()).select_from(IntakeOrder).where(prechecked)) or 0
    rejected_ids = list(session.scalars(select(IntakeOrder.order_id).where(prechecked, rejected)))
    by_rule: Counter[str] = Counter()
    if rejected_ids:
        pairs = session.execute(
            select(IntakeFinding.rule, IntakeFinding.order_id)
            .where(IntakeFinding.order_id.in_(rejected_ids), IntakeFinding.level == "reject")
            .distinct()
        )
        by_rule.update(rule for rule, _ in pairs)
    breakdown = {rule: IndicatorValue.ratio(count, total) for rule, count in sorted(by_rule.items())}
    return IndicatorValue.ratio(len(rejected_ids), total, breakdown)


def manual_check_timeliness(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Manual checks done in the period on or before their due day / checks done.

    A check without a due day (none was set) counts as on time.
    """
    rows = session.execute(select(IntakeOrder.checked_at, IntakeOrder.check_due).where(_checked(start, end))).all()
    on_time = sum(1 for checked_at, due in rows if due is None or company_today(checked_at) <= due)
    return IndicatorValue.ratio(on_time, len(rows))


INDICATORS = (
    Indicator(
        "intake.entry_accuracy",
        N_("Order entry accuracy"),
        "percent",
        N_(
            "Share of the orders checked in the period (accepted or rejected in the manual check) "
            "with no correction marked as an entry error."
        ),
        entry_accuracy,
    ),
    Indicator(
        "intake.precheck_reject_rate",
        N_("Pre-check rejection rate"),
        "percent",
        N_(
            "Share of the orders pre-checked in the period that the pre-check rejected, "
            "broken down by the rule that rejected them."
        ),
        precheck_reject_rate,
    ),
    Indicator(
        "intake.manual_check_timeliness",
        N_("Manual check timeliness"),
        "percent",
        N_("Share of the manual checks done in the period on or before their due day."),
        manual_check_timeliness,
    ),
)


@hookimpl(optionalhook=True)
def ordo_kpi_indicators() -> list[Indicator]:
    """Intake's indicators: entry accuracy, pre-check rejection rate, manual check timeliness."""
    return list(INDICATORS)

"""Intake's metrics for the kpi plugin (KP-1, IN-9), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.intake.bridges.kpi"}``, so
intake never imports kpi when kpi is off. Every metric is a percentage over the company
days of a period (:class:`plugins.kpi.hookspecs.Period`), computed by kpi in SQL from
one fact row per order (``num`` 1 or 0, ``den`` 1), and has no value (None) when there
was nothing to count:

- ``intake.entry_accuracy`` (higher is better, target 98): of the orders whose manual
  check ended in the period with a verdict (accepted or rejected; ``checked_at``), the
  share with no correction marked as an entry error (``IntakeCorrection.entry_error``).
- ``intake.precheck_reject_rate`` (lower is better, target 5): of the orders pre-checked
  in the period (``prechecked_at``), the share the pre-check rejected (a
  ``precheck_reject`` transition). Not broken down by rule: an order rejected by two
  rules would count twice, and a part's own denominator would be its rejected orders.
- ``intake.manual_check_timeliness`` (higher is better, target 95): of the manual checks
  done in the period (as for entry accuracy), the share done on or before their due day
  (``check_due``), comparing the company date of ``checked_at``; a check without a due
  day counts as on time.

An order cancelled or moved on by a disabled plugin while waiting in the manual check
was not checked, so it counts in neither check metric. Each metric can be split by the
order dimensions and by ``customer_group`` — the dimension intake contributes: the
group of the order's customer in its intake profile (none when the customer has no
profile or no group).

``ordo_kpi_history`` adds intake's records to generated history orders (demo, benchmark):
each order pre-checked minutes after it was received and accepted in the manual check,
about 6 % of checks late and about 3 % of orders corrected for an entry error.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, literal, or_, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.calendar import working_calendar
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from core.models import Order, OrderTransition
from core.settings import get_setting
from plugins.intake.flow import CHECK_DAYS
from plugins.intake.models import IntakeCorrection, IntakeCustomerGroup, IntakeCustomerProfile, IntakeOrder
from plugins.kpi.history import insert_rows
from plugins.kpi.hookspecs import ORDER_DIMENSIONS, Dimension, HistoryBatch, Metric, Period
from plugins.kpi.sql import company_date

#: The manual-check outcomes that are a clerk's verdict (a check done).
CHECKED = ("accepted", "rejected")
#: The transition the pre-check records when it rejects an order (plugins.intake.flow).
PRECHECK_REJECT = "precheck_reject"
#: The dimension intake contributes: the customer group of the order's customer.
CUSTOMER_GROUP = "customer_group"
#: What intake's metrics can be split by (once, should kpi list the customer group itself).
DIMENSIONS = tuple(dict.fromkeys((*ORDER_DIMENSIONS, CUSTOMER_GROUP)))

#: Shares used by the generated history.
LATE_CHECKS = 0.06
ENTRY_ERRORS = 0.03
OTHER_CORRECTIONS = 0.02
WARNINGS = 0.10
#: Fields a clerk corrects, with a wrong and a right value, for generated corrections.
_CORRECTED = (
    ("ship_to_phone", "023-6000-0010", "023-6000-0001"),
    ("requested_date", "2026-02-30", "2026-03-02"),
    ("ship_to_address", "渝北区金开大道 18 号", "渝北区金开大道 81 号"),
    ("customer_reference", "PO-2026-0I1", "PO-2026-011"),
)


def _checked(period: Period) -> ColumnElement[bool]:
    return IntakeOrder.check_outcome.in_(CHECKED) & period.within(IntakeOrder.checked_at)


def entry_accuracy_facts(period: Period) -> Select[Any]:
    """One row per order checked in the period: 0 with an entry-error correction, else 1 (IN-9)."""
    entry_error = exists().where(
        IntakeCorrection.order_id == IntakeOrder.order_id, IntakeCorrection.entry_error.is_(True)
    )
    return select(
        IntakeOrder.order_id.label("order_id"),
        case((entry_error, 0), else_=1).label("num"),
        literal(1).label("den"),
    ).where(_checked(period))


def precheck_reject_facts(period: Period) -> Select[Any]:
    """One row per order pre-checked in the period: 1 when the pre-check rejected it, else 0."""
    rejected = exists().where(
        OrderTransition.order_id == IntakeOrder.order_id, OrderTransition.action == PRECHECK_REJECT
    )
    return select(
        IntakeOrder.order_id.label("order_id"),
        case((rejected, 1), else_=0).label("num"),
        literal(1).label("den"),
    ).where(period.within(IntakeOrder.prechecked_at))


def manual_check_timeliness_facts(period: Period) -> Select[Any]:
    """One row per manual check done in the period: 1 when done on or before its due day, else 0."""
    on_time = or_(IntakeOrder.check_due.is_(None), company_date(IntakeOrder.checked_at) <= IntakeOrder.check_due)
    return select(
        IntakeOrder.order_id.label("order_id"),
        case((on_time, 1), else_=0).label("num"),
        literal(1).label("den"),
    ).where(_checked(period))


METRICS = (
    Metric(
        "intake.entry_accuracy",
        N_("Order entry accuracy"),
        "percent",
        "higher",
        N_(
            "Share of the orders checked in the period (accepted or rejected in the manual check) "
            "with no correction marked as an entry error."
        ),
        entry_accuracy_facts,
        target=Decimal("98"),
        dimensions=DIMENSIONS,
    ),
    Metric(
        "intake.precheck_reject_rate",
        N_("Pre-check rejection rate"),
        "percent",
        "lower",
        N_("Share of the orders pre-checked in the period that the pre-check rejected."),
        precheck_reject_facts,
        target=Decimal("5"),
        dimensions=DIMENSIONS,
    ),
    Metric(
        "intake.manual_check_timeliness",
        N_("Manual check timeliness"),
        "percent",
        "higher",
        N_(
            "Share of the manual checks done in the period on or before their due day "
            "(a check without a due day counts as on time)."
        ),
        manual_check_timeliness_facts,
        target=Decimal("95"),
        dimensions=DIMENSIONS,
    ),
)


def customer_group_expression() -> ColumnElement[Any]:
    """The intake customer group of the order's customer (NULL without a profile or group)."""
    return (
        select(IntakeCustomerProfile.group_id)
        .where(IntakeCustomerProfile.customer_id == Order.customer_id)
        .scalar_subquery()
    )


def customer_group_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    """Group ids → group names."""
    rows = session.execute(
        select(IntakeCustomerGroup.id, IntakeCustomerGroup.name).where(IntakeCustomerGroup.id.in_(list(values)))
    )
    return dict(rows.tuples().all())


DIMENSION = Dimension(CUSTOMER_GROUP, N_("Customer group"), customer_group_expression, customer_group_names)


@hookimpl(optionalhook=True)
def ordo_kpi_metrics() -> list[Metric]:
    """Intake's metrics: entry accuracy, pre-check rejection rate, manual check timeliness."""
    return list(METRICS)


@hookimpl(optionalhook=True)
def ordo_kpi_dimensions() -> list[Dimension]:
    """Intake's order dimension ``customer_group`` (KP-3 "analysis by customer group")."""
    return [DIMENSION]


# --- generated history ------------------------------------------------------------------


def _company_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(COMPANY_TIMEZONE).date()


def _day_end(day: dt.date) -> dt.datetime:
    """The last minute of the company day ``day``, as a UTC instant."""
    return dt.datetime.combine(day, dt.time(23, 59), COMPANY_TIMEZONE).astimezone(dt.UTC)


@hookimpl(optionalhook=True)
def ordo_kpi_history(session: Session, batch: HistoryBatch) -> None:
    """Intake's records of generated orders, in bulk: pre-check, manual check, corrections.

    Every history order was confirmed, so it passed the pre-check (10 % with a warning)
    and the manual check: checked between its receipt and its confirmation, due
    ``intake.manual_check.days`` working days after its receipt; about 6 % of checks are
    late (done after their due day) and about 3 % of orders carry a correction marked as
    an entry error (2 % another correction). Deterministic from each order's seed.
    """
    if not batch.orders:
        return
    days = int(get_setting(session, CHECK_DAYS))
    first = min(_company_day(order.received_at) for order in batch.orders)
    last = max(_company_day(order.received_at) for order in batch.orders)
    calendar = working_calendar(session, start=first, end=last + dt.timedelta(days=days * 3 + 31))
    add_working_days = functools.cache(calendar.add_working_days)  # many orders share their days
    day_end = functools.cache(_day_end)
    clerks = batch.users.get("order_clerk") or batch.users.get("sales_manager") or []
    records: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    for order in batch.orders:
        rng = random.Random(order.seed * 7919 + 1)
        received = order.received_at
        span = max((order.confirmed_at - received).total_seconds(), 3600.0)
        prechecked = received + dt.timedelta(minutes=rng.randint(1, 15))
        due = add_working_days(_company_day(received), days)
        checked = prechecked + dt.timedelta(seconds=span * rng.uniform(0.05, 0.45))
        if checked > day_end(due):
            checked = max(prechecked + dt.timedelta(minutes=20), day_end(due) - dt.timedelta(hours=rng.randint(1, 6)))
        if rng.random() < LATE_CHECKS:
            # Late: the clerk got to it the working day after the due day.
            after = add_working_days(due, 1)
            checked = dt.datetime.combine(after, dt.time(rng.randint(9, 16), rng.randint(0, 59)), COMPANY_TIMEZONE)
            checked = checked.astimezone(dt.UTC)
        clerk = rng.choice(clerks) if clerks else None
        records.append(
            {
                "order_id": order.id,
                "regular": rng.random() < 0.7,
                "transaction_type": "domestic" if rng.random() < 0.9 else rng.choice(("export", "project", "sample")),
                "precheck_level": "warn" if rng.random() < WARNINGS else "pass",
                "prechecked_at": prechecked,
                "check_due": due,
                "checked_at": checked,
                "checked_by_id": clerk,
                "check_outcome": "accepted",
                "reminded_at": None,
                "escalated_at": None,
            }
        )
        roll = rng.random()
        if roll < ENTRY_ERRORS + OTHER_CORRECTIONS:
            field, wrong, right = rng.choice(_CORRECTED)
            entry_error = roll < ENTRY_ERRORS
            corrections.append(
                {
                    "order_id": order.id,
                    "field": field,
                    "before": wrong,
                    "after": right,
                    "entry_error": entry_error,
                    "note": "录入错误" if entry_error else "客户更改",
                    "user_id": clerk,
                    "at": checked - dt.timedelta(minutes=rng.randint(2, 30)),
                }
            )
    insert_rows(session, IntakeOrder, records)
    insert_rows(session, IntakeCorrection, corrections)

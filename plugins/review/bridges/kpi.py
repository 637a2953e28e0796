"""Review's metrics for the kpi plugin (KP-1), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.review.bridges.kpi"}``, so
review never imports kpi when kpi is off. Every metric counts the company days of a
period (:class:`plugins.kpi.hookspecs.Period`), is computed by kpi in SQL from fact rows
and has no value (None) when there was nothing to count:

- ``review.timeliness`` (percent, higher is better, target 95): of the department tasks
  answered in the period (status ``answered``, ``answered_at`` in the period), the share
  answered on or before their due day (the company date of ``answered_at`` against
  ``due_date``). One fact per task; broken down by ``review_department`` (the
  department's code), each department's part is that department's own timeliness (its
  on-time answers over its answers), so the parts add up to the whole. A task re-opened
  by a negotiation counts again when answered again.
- ``review.acceptance_rate`` (percent, higher is better): of the review sheets closed in
  the period (``closed_at``), the share whose outcome is ``approved`` (a re-quoted round
  counts as a sheet not accepted). One fact per sheet; broken down by ``review_outcome``
  each part holds the sheets that ended so (its denominator is their number).
- ``review.change_requests_per_order`` (ratio, mean, lower is better): change and
  cancellation requests filed in the period (``requested_at``, whatever became of them)
  per order reviewed in the period — an order with a review sheet opened in the period,
  counted once however many rounds it had. Facts: one row per request (num 1, den 0)
  and one per reviewed order (num 0, den 1). Not broken down by request kind: a part
  would hold requests but no reviewed orders, so it would have no value.

All three can also be split by the order dimensions (and ``customer_group`` when intake
is enabled). ``ordo_kpi_history`` adds review's records to generated history orders.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, literal, select, union_all
from sqlalchemy.orm import Session

from core import hookimpl
from core.calendar import working_calendar
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from core.settings import get_setting
from plugins.kpi.history import insert_numbered, insert_rows
from plugins.kpi.hookspecs import ORDER_DIMENSIONS, Dimension, HistoryBatch, Metric, Period
from plugins.kpi.sql import company_date
from plugins.review.flow import SLA_DAYS
from plugins.review.models import (
    SHEET_OUTCOMES,
    ReviewChangeRequest,
    ReviewDepartment,
    ReviewSheet,
    ReviewTask,
    ReviewVerdict,
)

#: The sheet outcome that means the order was accepted.
APPROVED = "approved"
#: Review's fact dimensions (the order dimension ``department`` is core's department of
#: the order; the department that answered a task is ``review_department``).
REVIEW_DEPARTMENT = "review_department"
REVIEW_OUTCOME = "review_outcome"
#: Order dimensions, with intake's customer group (skipped when intake is disabled).
_ORDER = tuple(dict.fromkeys((*ORDER_DIMENSIONS, "customer_group")))

#: Shares used by the generated history.
LATE_TASKS = 0.07
REQUOTED = 0.04
CHANGE_REQUESTS = 0.06
CANCEL_REQUESTS = 0.01
#: Which departments review a generated order: regular (two) or not (all five).
_REGULAR = ("production", "finance")
_FULL = ("technical", "production", "quality", "purchasing", "finance")


def timeliness_facts(period: Period) -> Select[Any]:
    """One row per task answered in the period: 1 when answered on or before its due day, else 0."""
    on_time = company_date(ReviewTask.answered_at) <= ReviewTask.due_date
    return (
        select(
            ReviewSheet.order_id.label("order_id"),
            case((on_time, 1), else_=0).label("num"),
            literal(1).label("den"),
            ReviewDepartment.code.label(REVIEW_DEPARTMENT),
        )
        .join(ReviewSheet, ReviewSheet.id == ReviewTask.sheet_id)
        .join(ReviewDepartment, ReviewDepartment.id == ReviewTask.department_id)
        .where(ReviewTask.status == "answered", period.within(ReviewTask.answered_at))
    )


def acceptance_facts(period: Period) -> Select[Any]:
    """One row per sheet closed in the period: 1 when its outcome is ``approved``, else 0."""
    return select(
        ReviewSheet.order_id.label("order_id"),
        case((ReviewSheet.outcome == APPROVED, 1), else_=0).label("num"),
        literal(1).label("den"),
        ReviewSheet.outcome.label(REVIEW_OUTCOME),
    ).where(ReviewSheet.closed_at.is_not(None), period.within(ReviewSheet.closed_at))


def change_request_facts(period: Period) -> Select[Any]:
    """Requests filed in the period (num 1, den 0) and orders reviewed in the period (num 0, den 1)."""
    requests = select(
        ReviewChangeRequest.order_id.label("order_id"), literal(1).label("num"), literal(0).label("den")
    ).where(period.within(ReviewChangeRequest.requested_at))
    reviewed = (
        select(ReviewSheet.order_id.label("order_id"), literal(0).label("num"), literal(1).label("den"))
        .where(period.within(ReviewSheet.opened_at))
        .distinct()
    )
    return select(union_all(requests, reviewed).subquery("change_facts"))


METRICS = (
    Metric(
        "review.timeliness",
        N_("Review timeliness"),
        "percent",
        "higher",
        N_(
            "Share of the department review tasks answered in the period that were answered on or before "
            "their due day, by department."
        ),
        timeliness_facts,
        target=Decimal("95"),
        dimensions=(*_ORDER, REVIEW_DEPARTMENT),
    ),
    Metric(
        "review.acceptance_rate",
        N_("Review acceptance rate"),
        "percent",
        "higher",
        N_("Share of the review sheets closed in the period whose order was approved, by outcome."),
        acceptance_facts,
        dimensions=(*_ORDER, REVIEW_OUTCOME),
    ),
    Metric(
        "review.change_requests_per_order",
        N_("Change requests per reviewed order"),
        "ratio",
        "lower",
        N_(
            "Change and cancellation requests filed in the period divided by the orders whose review "
            "started in the period."
        ),
        change_request_facts,
        aggregate="mean",
        dimensions=_ORDER,
    ),
)


def _department_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    rows = session.execute(
        select(ReviewDepartment.code, ReviewDepartment.name).where(ReviewDepartment.code.in_(values))
    )
    return dict(rows.tuples().all())


def _outcome_names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
    return {value: SHEET_OUTCOMES.get(value, value) for value in values}


DIMENSIONS = (
    Dimension(REVIEW_DEPARTMENT, N_("Review department"), None, _department_names),
    Dimension(REVIEW_OUTCOME, N_("Review outcome"), None, _outcome_names),
)


@hookimpl(optionalhook=True)
def ordo_kpi_metrics() -> list[Metric]:
    """Review's metrics: review timeliness, acceptance rate, change requests per order."""
    return list(METRICS)


@hookimpl(optionalhook=True)
def ordo_kpi_dimensions() -> list[Dimension]:
    """Review's fact dimensions: the department that answered a task, the outcome of a sheet."""
    return list(DIMENSIONS)


# --- generated history ------------------------------------------------------------------


def _company_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(COMPANY_TIMEZONE).date()


def _next_day_start(day: dt.date) -> dt.datetime:
    """The start of the company day after ``day``, in UTC."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), COMPANY_TIMEZONE).astimezone(dt.UTC)


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    """A working-hours instant of the company day ``day``, in UTC."""
    clock = dt.time(rng.randint(9, 17), rng.randint(0, 59))
    return dt.datetime.combine(day, clock, COMPANY_TIMEZONE).astimezone(dt.UTC)


@hookimpl(optionalhook=True)
def ordo_kpi_history(session: Session, batch: HistoryBatch) -> None:
    """Review's records of generated orders, in bulk: sheets, tasks, verdicts, change requests.

    Each order gets a sheet opened a little after its receipt and closed ``approved`` at
    its confirmation; about 4 % first went through a round closed ``requoted``. Two
    departments review a regular order, five the others; each task is due the
    department's SLA (or ``review.sla.days``) working days after the sheet opened and is
    answered before it, except about 7 % answered after their due day. About 6 % of the
    orders get a change request and 1 % a cancellation request (rejected: the order went
    on) after confirmation. Deterministic from each order's seed.
    """
    if not batch.orders:
        return
    departments = {
        code: (department_id, sla, role)
        for department_id, code, sla, role in session.execute(
            select(
                ReviewDepartment.id, ReviewDepartment.code, ReviewDepartment.sla_days, ReviewDepartment.role_code
            ).where(ReviewDepartment.active.is_(True))
        )
    }
    if not departments:
        return
    default_sla = int(get_setting(session, SLA_DAYS))
    everyone = sorted({user for ids in batch.users.values() for user in ids})
    first = min(_company_day(order.received_at) for order in batch.orders)
    last = max(_company_day(order.confirmed_at) for order in batch.orders)
    longest = max((sla or default_sla) for _, sla, _ in departments.values())
    calendar = working_calendar(session, start=first, end=last + dt.timedelta(days=longest * 3 + 31))
    add_working_days = functools.cache(calendar.add_working_days)  # many orders share their days
    tomorrow_starts = functools.cache(_next_day_start)

    sheets: list[dict[str, Any]] = []
    plans: list[list[tuple[int, dt.date, dt.datetime, int | None]]] = []  # per sheet: tasks
    requests: list[dict[str, Any]] = []
    for order in batch.orders:
        rng = random.Random(order.seed * 104729 + 2)
        received, confirmed = order.received_at, order.confirmed_at
        span = max((confirmed - received).total_seconds(), 7200.0)
        opened = received + dt.timedelta(seconds=span * rng.uniform(0.2, 0.4))
        rounds = 2 if rng.random() < REQUOTED else 1
        codes = _REGULAR if rng.random() < 0.6 else _FULL
        round_opened = opened
        for number in range(1, rounds + 1):
            final = number == rounds
            closed = confirmed if final else round_opened + dt.timedelta(seconds=span * 0.15)
            tasks = []
            start = _company_day(round_opened)
            for code in codes:
                if code not in departments:
                    continue
                department_id, sla, role = departments[code]
                due = add_working_days(start, sla or default_sla)
                if rng.random() < LATE_TASKS:
                    answered = _at(add_working_days(due, rng.randint(1, 2)), rng)
                else:
                    answered = round_opened + dt.timedelta(
                        seconds=(closed - round_opened).total_seconds() * rng.uniform(0.1, 0.8)
                    )
                    if answered >= tomorrow_starts(due):  # answered after its due day
                        answered = _at(due, rng)
                reviewers = batch.users.get(role) or everyone
                tasks.append(
                    (department_id, due, max(answered, round_opened), rng.choice(reviewers) if reviewers else None)
                )
            completed = max((task[2] for task in tasks), default=round_opened)
            sheets.append(
                {
                    "order_id": order.id,
                    "round": number,
                    "template_id": None,
                    "two_tier": False,
                    "tier": 1,
                    "status": "closed",
                    "outcome": APPROVED if final else "requoted",
                    "amount": order.total,
                    "approver_role": "",
                    "opened_at": round_opened,
                    "completed_at": completed,
                    "closed_at": max(closed, completed),
                }
            )
            plans.append(tasks)
            round_opened = max(closed, completed) + dt.timedelta(minutes=30)
        roll = rng.random()
        requester = order.owner_id or (rng.choice(everyone) if everyone else None)
        if roll < CHANGE_REQUESTS + CANCEL_REQUESTS and requester is not None:
            cancel = roll < CANCEL_REQUESTS
            end = order.completed_at or (confirmed + dt.timedelta(days=10))
            requested = confirmed + dt.timedelta(
                seconds=max((end - confirmed).total_seconds(), 3600.0) * rng.uniform(0.1, 0.6)
            )
            approved = not cancel and rng.random() < 0.7
            requests.append(
                {
                    "order_id": order.id,
                    "number": 1,
                    "kind": "cancel" if cancel else "change",
                    "status": "approved" if approved else "rejected",
                    "content": {},
                    "scope": "",
                    "reason": "客户取消需求"
                    if cancel
                    else rng.choice(("客户要求改期", "客户调整数量", "更改收货地址")),
                    "impact": {},
                    "expected_days": None,
                    "new_delivery_date": None,
                    "rewind_to": "",
                    "requested_by_id": requester,
                    "requested_at": requested,
                    "decided_by_id": requester if approved else None,
                    "decided_at": requested + dt.timedelta(hours=rng.randint(2, 30)),
                    "decision_reason": "" if approved else "已排产，无法变更",
                    "revision_id": None,
                }
            )

    sheet_ids = insert_numbered(session, ReviewSheet, sheets)
    tasks_rows: list[dict[str, Any]] = []
    deciders: list[tuple[int | None, dt.datetime]] = []
    for sheet_id, sheet, tasks in zip(sheet_ids, sheets, plans, strict=True):
        for department_id, due, answered, reviewer in tasks:
            tasks_rows.append(
                {
                    "sheet_id": sheet_id,
                    "department_id": department_id,
                    "tier": 1,
                    "status": "answered",
                    "verdict": "approve",
                    "opened_at": sheet["opened_at"],
                    "answered_at": answered,
                    "due_date": due,
                    "reminded_at": None,
                    "escalated_at": None,
                }
            )
            deciders.append((reviewer, answered))
    task_ids = insert_numbered(session, ReviewTask, tasks_rows)
    verdicts: list[dict[str, Any]] = [
        {
            "task_id": task_id,
            "verdict": "approve",
            "comment": "",
            "conditions": "",
            "figures": {},
            "proposed_date": None,
            "decided_by_id": reviewer,
            "decided_at": answered,
        }
        for task_id, (reviewer, answered) in zip(task_ids, deciders, strict=True)
        if reviewer is not None
    ]
    insert_rows(session, ReviewVerdict, verdicts)
    insert_rows(session, ReviewChangeRequest, requests)

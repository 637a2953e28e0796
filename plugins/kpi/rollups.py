"""Rollups: every metric's sums per day, week, month and quarter, kept for the dashboard.

Why: a dashboard of some 25 metrics over a month of a million-order company reads
hundreds of thousands of facts per metric; live, that takes seconds. The rollup job
computes each metric once per period and stores its sums grouped by the columns the
data scopes filter on — the order's branch, department, owner and creator, or for
facts without an order their customer's branch and owner. A viewer's scope
(:func:`core.security.scopes.order_scope`, :func:`~core.security.scopes.customer_scope`)
is rewritten onto those columns, so a branch manager's dashboard sums only their
branch's rows: the same figures as live (tested metric by metric), read in
milliseconds.

Freshness. ``kpi.refresh_rollups`` (every 10 minutes) recomputes the day, week, month
and quarter containing today; ``kpi.refresh_past_rollups`` (nightly) the previous day
and week, the twelve months and four quarters before the current ones. The dashboard
uses a period's rollups while they are at most ``kpi.dashboard.rollup_max_age``
minutes old (a past period's computed after it ended: a day longer), and computes
live otherwise — and always for custom periods, dimension filters, a viewer whose
scope the rollup columns cannot express (a customer portal user) or a metric missing
from the rollup (its plugin enabled since). The page says how old the figures are and
offers to compute them now.

The jobs read in a read-only session (:func:`core.jobs.reading`), so on SQLite writers
are not held up while a month is computed; each period's rows are replaced in one
short transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, not_, null, or_, select
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause, True_

from core.clock import COMPANY_TIMEZONE
from core.contrib import Job
from core.db import utcnow
from core.jobs import reading
from core.labels import N_
from core.models import Customer, Order, User
from core.security.scopes import customer_scope, order_scope
from core.settings import get_setting, session_registry
from plugins.kpi import flow, periods
from plugins.kpi.engine import EVERYONE, MetricValue, Viewer, collect_metrics, value_of
from plugins.kpi.hookspecs import Metric, Period
from plugins.kpi.models import KpiRollup, KpiRollupPeriod

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The period kinds rolled up (custom periods are always computed live).
KINDS = ("day", "week", "month", "quarter")
#: How many past months and quarters the nightly job keeps rolled up (the metric trends' reach).
PAST_MONTHS = 12
PAST_QUARTERS = 4
#: The order columns a data scope may filter on, and the rollup columns holding them.
ORDER_COLUMNS = {
    "branch_id": KpiRollup.branch_id,
    "department_id": KpiRollup.department_id,
    "owner_id": KpiRollup.owner_id,
    "created_by_id": KpiRollup.created_by_id,
}
#: The customer columns a customer scope may filter on (facts without an order).
CUSTOMER_COLUMNS = {"branch_id": KpiRollup.customer_branch_id, "owner_id": KpiRollup.customer_owner_id}


@dataclass(frozen=True)
class Stored:
    """The rolled-up values of one period for one viewer, and when they were computed."""

    values: Mapping[str, MetricValue]
    computed_at: dt.datetime


# --- computing ------------------------------------------------------------------------


def scope_rows(session: Session, metric: Metric, period: Period) -> list[dict[str, Any]]:
    """``metric``'s sums over ``period`` grouped by the scope columns, as rows for :class:`KpiRollup`."""
    facts = metric.facts(period).subquery("facts")
    orderless = facts.c.order_id.is_(None)
    by_customer = "customer_id" in facts.c
    customer_branch: Any = Customer.branch_id if by_customer else null()
    customer_owner: Any = Customer.owner_id if by_customer else null()
    keys = (
        facts.c.order_id.is_not(None).label("has_order"),
        Order.branch_id.label("branch_id"),
        Order.department_id.label("department_id"),
        Order.owner_id.label("owner_id"),
        Order.created_by_id.label("created_by_id"),
        customer_branch.label("customer_branch_id"),
        customer_owner.label("customer_owner_id"),
    )
    stmt = (
        select(*keys, func.coalesce(func.sum(facts.c.num), 0), func.coalesce(func.sum(facts.c.den), 0))
        .select_from(facts)
        .outerjoin(Order, Order.id == facts.c.order_id)
    )
    if by_customer:
        stmt = stmt.outerjoin(Customer, and_(orderless, Customer.id == facts.c.customer_id))
    # Grouped by the expressions, never by a constant (PostgreSQL refuses ``GROUP BY NULL``).
    stmt = stmt.group_by(*(key.element for key in keys if by_customer or not key.name.startswith("customer_")))
    names = [key.name for key in keys]
    found = []
    for row in session.execute(stmt):
        values = dict(zip(names, row[:-2], strict=True))
        values["has_order"] = bool(values["has_order"])
        found.append({**values, "num": row[-2], "den": row[-1]})
    return found


def refresh(session: Session, targets: Iterable[Period]) -> list[KpiRollupPeriod]:
    """Recompute the rollups of ``targets`` (days, weeks, months or quarters), one at a time.

    Each period is read in a read-only session when run as a job (:func:`core.jobs.reading`)
    and written in one short transaction: its old rows deleted, the new ones inserted,
    :class:`KpiRollupPeriod` stamped with the time the reading began.
    """
    done = []
    for period in targets:
        if period.kind not in KINDS:
            raise ValueError(f"only {', '.join(KINDS)} are rolled up, not {period.kind!r}")
        began, clock = utcnow(), time.monotonic()
        with reading(session) as reader:
            metrics = collect_metrics(session_registry(reader))
            rows = {key: scope_rows(reader, metric, period) for key, metric in metrics.items()}
        milliseconds = round((time.monotonic() - clock) * 1000)
        done.append(_replace(session, period, rows, began, milliseconds))
    return done


def _replace(
    session: Session, period: Period, rows: Mapping[str, list[dict[str, Any]]], began: dt.datetime, ms: int
) -> KpiRollupPeriod:
    session.execute(delete(KpiRollup).where(KpiRollup.kind == period.kind, KpiRollup.start == period.start))
    values = [
        {"kind": period.kind, "start": period.start, "metric": key, **row}
        for key, found in rows.items()
        for row in found
    ]
    if values:
        session.execute(insert(KpiRollup), values)
    stamp = session.get(KpiRollupPeriod, (period.kind, period.start))
    if stamp is None:
        stamp = KpiRollupPeriod(kind=period.kind, start=period.start)
        session.add(stamp)
    stamp.end, stamp.computed_at, stamp.milliseconds = period.end, began, ms
    stamp.metrics = ",".join(rows)
    session.flush()
    return stamp


def current_periods(today: dt.date) -> list[Period]:
    """The day, week, month and quarter containing ``today`` (what the frequent job refreshes)."""
    return [periods.period_of(kind, today) for kind in KINDS]


def past_periods(today: dt.date) -> list[Period]:
    """Yesterday, last week, and the :data:`PAST_MONTHS` months and :data:`PAST_QUARTERS` quarters before now."""
    found = [periods.previous(periods.period_of("day", today)), periods.previous(periods.period_of("week", today))]
    for kind, count in (("month", PAST_MONTHS), ("quarter", PAST_QUARTERS)):
        current = periods.period_of(kind, today)
        found.extend(reversed(periods.trend(periods.previous(current), count)))
    return found


def _company_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(COMPANY_TIMEZONE).date() if moment.tzinfo else moment.date()


def refresh_current(session: Session, now: dt.datetime) -> None:
    """Job ``kpi.refresh_rollups``: the periods containing today."""
    refresh(session, current_periods(_company_day(now)))


def refresh_past(session: Session, now: dt.datetime) -> None:
    """Job ``kpi.refresh_past_rollups``: the past periods the dashboard and trends look at most."""
    refresh(session, past_periods(_company_day(now)))


# --- reading ----------------------------------------------------------------------------


class _Inexpressible(Exception):
    """A scope filters on a column the rollups do not keep."""


def _onto(clause: ColumnElement[bool], table: Any, columns: Mapping[str, Any]) -> ColumnElement[bool]:
    """``clause`` over ``table``'s columns rewritten onto the rollup ``columns`` (same names)."""

    def replace(element: Any, **_kw: Any) -> Any:
        if isinstance(element, ColumnClause) and getattr(element, "table", None) is table:
            if element.key not in columns:
                raise _Inexpressible(element.key)
            return columns[element.key]
        return None

    rewritten: ColumnElement[bool] = visitors.replacement_traverse(clause, {}, replace)
    return rewritten


def scope_clause(viewer: Viewer) -> ColumnElement[bool] | None:
    """The WHERE clause on :class:`KpiRollup` limiting rows to ``viewer``'s data scope (None: no limit).

    The live engine's rule (:func:`plugins.kpi.engine._scope_clause`) over the rollup's
    columns: facts of an order in the viewer's order scope, and facts without an order
    whose customer is in their customer scope. Raises :class:`_Inexpressible` when the
    scope needs a column the rollups lack.
    """
    if viewer is EVERYONE:
        return None
    user = viewer if isinstance(viewer, User) else None
    orders = order_scope(user)
    if isinstance(orders, True_):
        return None
    by_order = and_(KpiRollup.has_order, _onto(orders, Order.__table__, ORDER_COLUMNS))
    by_customer = and_(not_(KpiRollup.has_order), _onto(customer_scope(user), Customer.__table__, CUSTOMER_COLUMNS))
    return or_(by_order, by_customer)


def is_fresh(stamp: KpiRollupPeriod, now: dt.datetime, max_age: dt.timedelta) -> bool:
    """Whether rollups computed at ``stamp.computed_at`` may still be shown at ``now``.

    At most ``max_age`` old; a period that had ended when it was computed (refreshed
    nightly) a day longer.
    """
    if max_age <= dt.timedelta(0):
        return False
    limit = max_age + (dt.timedelta(days=1) if stamp.end < _company_day(stamp.computed_at) else dt.timedelta(0))
    return now - stamp.computed_at <= limit


def stored(
    session: Session, metrics: Mapping[str, Metric], period: Period, *, viewer: Viewer, now: dt.datetime | None = None
) -> Stored | None:
    """The rolled-up values of ``metrics`` over ``period`` for ``viewer``, if fresh ones exist.

    None when the period is not rolled up (a custom one, never computed, too old, the
    setting 0) or the viewer's scope cannot be applied to rollups; the caller computes
    live then. Metrics missing from the rollup are missing from the result.
    """
    if period.kind not in KINDS:
        return None
    max_age = dt.timedelta(minutes=int(get_setting(session, flow.ROLLUP_MAX_AGE)))
    stamp = session.get(KpiRollupPeriod, (period.kind, period.start))
    if stamp is None or not is_fresh(stamp, now or utcnow(), max_age):
        return None
    try:
        scope = scope_clause(viewer)
    except _Inexpressible:
        return None
    computed = set(filter(None, stamp.metrics.split(",")))
    stmt = (
        select(KpiRollup.metric, func.sum(KpiRollup.num), func.sum(KpiRollup.den))
        .where(KpiRollup.kind == period.kind, KpiRollup.start == period.start)
        .group_by(KpiRollup.metric)
    )
    if scope is not None:
        stmt = stmt.where(scope)
    sums = {row[0]: (row[1], row[2]) for row in session.execute(stmt)}
    values = {key: value_of(metric, *sums.get(key, (0, 0))) for key, metric in metrics.items() if key in computed}
    return Stored(values, stamp.computed_at)


def measure_all(
    session: Session, metrics: Mapping[str, Metric], period: Period, *, viewer: Viewer, live: bool = False
) -> tuple[dict[str, MetricValue], dt.datetime | None]:
    """Every metric in ``metrics`` over ``period`` for ``viewer``: from fresh rollups where
    possible, the rest live (:func:`plugins.kpi.engine.measure`).

    Returns the values by key and when the rolled-up ones were computed (None when all
    are live, as with ``live=True``).
    """
    from plugins.kpi.engine import measure

    found = None if live else stored(session, metrics, period, viewer=viewer)
    values = dict(found.values) if found else {}
    for key, metric in metrics.items():
        if key not in values:
            values[key] = measure(session, metric, period, viewer=viewer)
    return values, (found.computed_at if found and found.values else None)


JOBS: tuple[Job, ...] = (
    Job(
        "kpi.refresh_rollups",
        "every:600",
        refresh_current,
        plugin="kpi",
        label=N_("KPI: roll up today's, this week's, month's and quarter's metrics for the dashboard"),
        timeout=1800,
    ),
    Job(
        "kpi.refresh_past_rollups",
        "daily:01:30",
        refresh_past,
        plugin="kpi",
        label=N_("KPI: roll up the past days, weeks, months and quarters for the dashboard"),
        timeout=3600,
    ),
)

__all__ = [
    "JOBS",
    "KINDS",
    "Stored",
    "current_periods",
    "is_fresh",
    "measure_all",
    "past_periods",
    "refresh",
    "refresh_current",
    "refresh_past",
    "scope_clause",
    "scope_rows",
    "stored",
]

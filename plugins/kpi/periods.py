"""Periods a metric is measured over: a day, a week, a month, a quarter or custom days.

A period is company days ``start`` … ``end`` inclusive (:class:`plugins.kpi.hookspecs.Period`).
:func:`period` builds one (refusing an end before the start); :func:`period_of` the
day/week/month/quarter containing a date; :func:`previous` the one before (same kind and
length); :func:`trend` the last *n* periods ending with a given one, oldest first, for
trend charts; :func:`parse_period` reads the period picker's query parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from core.clock import company_now, day_start
from core.labels import N_
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Period

#: The period picker's kinds.
KINDS = ("day", "week", "month", "quarter", "custom")
#: The longest custom period accepted (a guard against a scan of decades).
MAX_DAYS = 3 * 366


def period(start: dt.date, end: dt.date, kind: str = "custom") -> Period:
    """The company days ``start`` … ``end`` inclusive.

    Raises a 422 :class:`plugins.kpi.errors.KpiError` when the end precedes the start or
    the period is longer than :data:`MAX_DAYS`.
    """
    if end < start:
        raise KpiError(
            "invalid",
            N_("The period ends %(end)s, before it starts (%(start)s)."),
            422,
            {"end": ["The end of the period must not be before its start."]},
            end=end.isoformat(),
            start=start.isoformat(),
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise KpiError(
            "invalid",
            N_("The period has %(days)s days; at most %(most)s can be measured at once."),
            422,
            {"end": [f"A period may have at most {MAX_DAYS} days."]},
            days=(end - start).days + 1,
            most=MAX_DAYS,
        )
    return Period(start, end, day_start(start), day_start(end + dt.timedelta(days=1)), kind)


def _month_end(first: dt.date) -> dt.date:
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def period_of(kind: str, day: dt.date) -> Period:
    """The day, week (Monday–Sunday), month or quarter containing ``day``."""
    if kind == "day":
        return period(day, day, kind)
    if kind == "week":
        monday = day - dt.timedelta(days=day.weekday())
        return period(monday, monday + dt.timedelta(days=6), kind)
    if kind == "month":
        first = day.replace(day=1)
        return period(first, _month_end(first), kind)
    if kind == "quarter":
        first = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        last_month = first.replace(month=first.month + 2)
        return period(first, _month_end(last_month), kind)
    raise KpiError("invalid", N_("Unknown period %(kind)s."), 422, {"period": [f"Unknown period {kind!r}."]}, kind=kind)


def previous(current: Period) -> Period:
    """The period just before ``current``: the previous day/week/month/quarter, or as many days."""
    if current.kind in ("day", "week", "month", "quarter"):
        return period_of(current.kind, current.start - dt.timedelta(days=1))
    length = dt.timedelta(days=current.days)
    return period(current.start - length, current.end - length, "custom")


def trend(current: Period, count: int) -> list[Period]:
    """The ``count`` periods ending with ``current``, oldest first."""
    periods = [current]
    while len(periods) < count:
        periods.append(previous(periods[-1]))
    return list(reversed(periods))


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise KpiError(
            "invalid",
            N_("%(value)s is not a date (YYYY-MM-DD)."),
            422,
            {field: ["Not a date (YYYY-MM-DD)."]},
            value=value,
        ) from None


def parse_period(args: Mapping[str, str], default_kind: str = "month") -> Period:
    """The period the picker's parameters name: ``period`` (a kind) with ``date``, or ``start``/``end``.

    ``?period=month&date=2026-10-05`` is October 2026; ``?period=custom&start=…&end=…``
    custom days; without parameters the current ``default_kind`` period. Bad values raise
    a 422 :class:`plugins.kpi.errors.KpiError` naming the parameter.
    """
    kind = (args.get("period") or "").strip() or default_kind
    if kind not in KINDS:
        raise KpiError(
            "invalid", N_("Unknown period %(kind)s."), 422, {"period": [f"Unknown period {kind!r}."]}, kind=kind
        )
    if kind == "custom":
        start, end = args.get("start", ""), args.get("end", "")
        if not start or not end:
            raise KpiError(
                "invalid", N_("A custom period needs a start and an end."), 422, {"start": ["Give a start and an end."]}
            )
        return period(_date(start, "start"), _date(end, "end"), "custom")
    anchor = _date(args["date"], "date") if args.get("date") else company_now().date()
    return period_of(kind, anchor)

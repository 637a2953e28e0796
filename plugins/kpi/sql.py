"""SQL building blocks the metrics share, written once for SQLite and PostgreSQL.

Metrics compare company dates (a task answered "on or before its due day" in
Chongqing, not in UTC) and measure durations in SQL, never in Python, so that a month
over a million orders is one aggregate query. These constructs compile to each
database's own functions:

- :func:`company_date` — the company date of a stored UTC datetime;
- :func:`days_between` / :func:`hours_between` — the time from one datetime to another,
  in (fractional) days or hours.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from core.clock import COMPANY_TIMEZONE, TIMEZONE_NAME


class company_date(FunctionElement[dt.date]):
    """``company_date(column)``: the company-time-zone date of a UTC datetime column."""

    type = Date()
    inherit_cache = True
    name = "company_date"


class days_between(FunctionElement[float]):
    """``days_between(start, end)``: ``end - start`` in days (a fraction; negative when end is earlier)."""

    type = Float()
    inherit_cache = True
    name = "days_between"


class hours_between(FunctionElement[float]):
    """``hours_between(start, end)``: ``end - start`` in hours."""

    type = Float()
    inherit_cache = True
    name = "hours_between"


def _offset_hours() -> float:
    """The company zone's offset from UTC in hours (China has had no summer time since 1991)."""
    offset = dt.datetime(2026, 1, 1, tzinfo=COMPANY_TIMEZONE).utcoffset() or dt.timedelta()
    return offset.total_seconds() / 3600


@compiles(company_date, "sqlite")
def _company_date_sqlite(element: company_date, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"date({compiler.process(column, **kw)}, '{_offset_hours():+g} hours')"


@compiles(company_date)
def _company_date_default(element: company_date, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"CAST(({compiler.process(column, **kw)} AT TIME ZONE '{TIMEZONE_NAME}') AS DATE)"


def _pair(element: Any, compiler: Any, **kw: Any) -> tuple[str, str]:
    start, end = list(element.clauses)
    return compiler.process(start, **kw), compiler.process(end, **kw)


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = _pair(element, compiler, **kw)
    return f"(julianday({end}) - julianday({start}))"


@compiles(days_between)
def _days_default(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = _pair(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"


@compiles(hours_between, "sqlite")
def _hours_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = _pair(element, compiler, **kw)
    return f"((julianday({end}) - julianday({start})) * 24.0)"


@compiles(hours_between)
def _hours_default(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = _pair(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 3600.0)"

"""The company's clock: years and day boundaries in the company's time zone, not UTC.

An order entered in Chongqing at 07:00 on 1 January belongs to the new year, and a
list filtered "from 3 March" starts at midnight Chongqing time. Times are stored in
UTC; this module turns company dates into UTC instants. ``ORDO_TIMEZONE`` (an IANA
name) sets the zone; the default suits a company in mainland China.

:func:`app_now` is the time as the running app sees it: the real time, unless the app's
``CLOCK`` config key holds a clock of its own (a callable returning an aware UTC
datetime). Tests set a fake one (:class:`core.testing.FakeClock`) to move time on
without sleeping; login throttling and session timeouts read the time through it.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

#: The zone staff live in (screens show times in it; numbering and filters count in it).
TIMEZONE_NAME = os.environ.get("ORDO_TIMEZONE", "Asia/Shanghai")
COMPANY_TIMEZONE = ZoneInfo(TIMEZONE_NAME)


def app_now() -> dt.datetime:
    """The current UTC time as the app sees it: its ``CLOCK`` (when in an app context and set),
    else the real time."""
    if has_app_context():
        clock = current_app.config.get("CLOCK")
        if clock is not None:
            now = clock()
            if not isinstance(now, dt.datetime) or now.tzinfo is None:
                raise TypeError("the CLOCK config must return an aware datetime")
            return now.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def company_now() -> dt.datetime:
    """The current time in the company's zone."""
    return dt.datetime.now(COMPANY_TIMEZONE)


def day_start(day: dt.date) -> dt.datetime:
    """The instant the company's day ``day`` begins (the calendar's first instant at most)."""
    if day <= dt.date.min + dt.timedelta(days=1):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(day, dt.time(), COMPANY_TIMEZONE)


def day_end(day: dt.date) -> dt.datetime | None:
    """The instant after the company's day ``day`` ends (None past the calendar's end)."""
    if day >= dt.date.max:
        return None
    return day_start(day + dt.timedelta(days=1))

"""When a job runs next: ``every:<seconds>``, ``daily:HH:MM`` and ``weekly:<day>:HH:MM``.

Times are stored and compared in UTC, but people mean their own clock: a report "daily
at 09:00" is due at 09:00 in the company's time zone (:data:`core.clock.COMPANY_TIMEZONE`),
which is 01:00 UTC in Chongqing. So daily and weekly schedules are worked out on the
company's wall clock and turned back into UTC; ``every:N`` is plain arithmetic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.clock import COMPANY_TIMEZONE
from core.contrib import SCHEDULE, Job
from core.models import JobState

#: The day names of ``weekly:`` schedules, Monday first (``datetime.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: What a schedule must look like, for error messages.
SCHEDULE_FORMS = "every:<seconds>, daily:HH:MM or weekly:<mon..sun>:HH:MM"


class ScheduleError(ValueError):
    """A schedule that is not ``every:<seconds>``, ``daily:HH:MM`` or ``weekly:<day>:HH:MM``."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``kind`` is every, daily or weekly.

    ``seconds`` is the interval of an ``every`` schedule; ``at`` the company-time of day
    and ``weekday`` (0 = Monday) the day of the others.
    """

    kind: str
    seconds: int = 0
    at: dt.time = dt.time()
    weekday: int = 0


def validate_schedule(text: str) -> str:
    """``text`` as a canonical schedule string (trimmed, lower case); :class:`ScheduleError` if malformed.

    Uses the same rule as job declarations (:data:`core.contrib.SCHEDULE`), so what an
    administrator may type is exactly what a plugin may declare.
    """
    cleaned = (text or "").strip().lower()
    if not SCHEDULE.match(cleaned):
        raise ScheduleError(f"schedule {text!r} is not {SCHEDULE_FORMS}")
    return cleaned


def parse_schedule(text: str) -> Schedule:
    """Split a schedule string into its parts (checked with :func:`validate_schedule`)."""
    kind, _, rest = validate_schedule(text).partition(":")
    if kind == "every":
        return Schedule("every", seconds=int(rest))
    weekday = 0
    if kind == "weekly":
        day, _, rest = rest.partition(":")
        weekday = WEEKDAYS.index(day)
    hour, minute = (int(part) for part in rest.split(":"))
    return Schedule(kind, at=dt.time(hour, minute), weekday=weekday)


def next_run(schedule: str, after: dt.datetime) -> dt.datetime:
    """The first moment strictly after ``after`` at which ``schedule`` is due (aware UTC in and out).

    ``every:N`` is ``after`` + N seconds. ``daily:HH:MM`` and ``weekly:<day>:HH:MM`` are
    the next such wall-clock time in the company's time zone, so "daily:09:00" stays at
    09:00 company time whatever UTC says (and across daylight-saving changes where the
    zone has them).
    """
    if after.tzinfo is None:
        raise ValueError("next_run needs an aware datetime; Ordo works in UTC")
    parsed = parse_schedule(schedule)
    if parsed.kind == "every":
        return (after + dt.timedelta(seconds=parsed.seconds)).astimezone(dt.UTC)
    local_day = after.astimezone(COMPANY_TIMEZONE).date()
    if parsed.kind == "weekly":
        local_day += dt.timedelta(days=(parsed.weekday - local_day.weekday()) % 7)
    step = dt.timedelta(days=7 if parsed.kind == "weekly" else 1)
    while True:
        candidate = dt.datetime.combine(local_day, parsed.at, COMPANY_TIMEZONE).astimezone(dt.UTC)
        if candidate > after:
            return candidate
        local_day += step


def effective_schedule(job: Job, state: JobState | None) -> str:
    """The schedule a job runs on: the administrator's override if one is set, else the registered one."""
    if state is not None and state.schedule:
        return state.schedule
    return job.schedule

"""The company's working calendar: which days are worked, and counting in working days.

A day is worked unless it falls on one of the company's weekend days
(``Company.weekend_days``, e.g. ``sat,sun``) — with two exceptions kept as
:class:`core.models.CalendarDay` rows, the way China's official calendar moves days
around public holidays (调休):

* a **make-up working day** (kind ``workday``, 调休上班) is worked even on a weekend day;
* a **holiday** (kind ``holiday``, 节假日) is not worked even on a weekday.

Plugins measure every SLA with these functions ("manual review within N working days",
"goods ready one week ago"):

* :func:`add_working_days` — for ``n > 0`` the n-th working day after ``start`` (``start``
  itself is not counted); ``n == 0`` gives ``start`` when it is worked, else the next
  working day; ``n < 0`` counts backwards the same way.
* :func:`working_days_between` — the number of working days ``d`` with
  ``start < d <= end`` (negative, and counted the other way round, when ``end < start``),
  so ``working_days_between(s, add_working_days(s, n)) == n`` for every ``n >= 1``.
* :func:`is_working_day`.

Each takes the session and, optionally, a company (default: the first company). They
load only the calendar days of the range they need, widening it while they count, so
their cost does not grow with the size of the calendar table. :class:`WorkingCalendar`
is the same arithmetic without a database, for tests and bulk use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import CalendarDay, Company
from core.txcache import remembered

#: Day codes as ``Company.weekend_days`` stores them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The most working days one call may count (about fourteen years); more is a mistake.
MAX_WORKING_DAYS = 3650

_ONE_DAY = dt.timedelta(days=1)


class CalendarError(ValueError):
    """A question the calendar cannot answer: absurd input or a week with no working day."""


class OutsideKnownRange(CalendarError):
    """The count reached a day outside the range a :class:`WorkingCalendar` was loaded for."""


def parse_weekend(text: str | Iterable[str]) -> frozenset[int]:
    """The weekday numbers (Monday 0 … Sunday 6) of ``sat,sun`` or ``["sat", "sun"]``.

    Raises :class:`CalendarError` naming an unknown day code.
    """
    codes = [c.strip().lower() for c in (text.split(",") if isinstance(text, str) else text)]
    days: set[int] = set()
    for code in codes:
        if not code:
            continue
        if code not in WEEKDAYS:
            raise CalendarError(f"unknown day of the week {code!r}; use {', '.join(WEEKDAYS)}")
        days.add(WEEKDAYS.index(code))
    return frozenset(days)


def format_weekend(days: Iterable[int]) -> str:
    """``Company.weekend_days`` text for weekday numbers, Monday first: ``{5, 6}`` → ``sat,sun``."""
    return ",".join(WEEKDAYS[d] for d in sorted(set(days)))


def check_day_count(days: int) -> None:
    """Refuse a count of working days beyond :data:`MAX_WORKING_DAYS` either way."""
    if abs(days) > MAX_WORKING_DAYS:
        raise CalendarError(
            f"{days} working days is too many to count; at most {MAX_WORKING_DAYS} either way (about fourteen years)"
        )


@dataclass(frozen=True)
class WorkingCalendar:
    """A company's working days: its weekend, its holidays and its make-up working days.

    Pure arithmetic (no database). ``known``, when given, is the range of days the
    holidays and make-up days were loaded for: counting beyond it raises
    :class:`OutsideKnownRange` instead of answering from incomplete data.
    """

    weekend: frozenset[int]
    holidays: set[dt.date] = field(default_factory=set)
    workdays: set[dt.date] = field(default_factory=set)
    known: tuple[dt.date, dt.date] | None = None

    def __post_init__(self) -> None:
        if not self.weekend <= set(range(7)):
            raise CalendarError(f"weekend days are numbers 0 (Monday) to 6 (Sunday), not {sorted(self.weekend)}")
        if len(self.weekend) == 7:
            raise CalendarError(
                "every day of the week is a weekend day, so no working day can be counted; "
                "make at least one day of the week a working day"
            )
        both = self.holidays & self.workdays
        if both:
            raise CalendarError(f"{min(both).isoformat()} cannot be both a holiday and a make-up working day")

    def _check_known(self, day: dt.date) -> None:
        if self.known is not None and not self.known[0] <= day <= self.known[1]:
            raise OutsideKnownRange(
                f"{day.isoformat()} lies outside the days loaded "
                f"({self.known[0].isoformat()} to {self.known[1].isoformat()})"
            )

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is worked: a make-up day is, a holiday is not, else the weekly pattern decides."""
        self._check_known(day)
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The ``days``-th working day after ``start`` (before it when negative).

        ``start`` itself is not counted; ``days == 0`` gives ``start`` if it is worked,
        else the next working day.
        """
        check_day_count(days)
        step = -_ONE_DAY if days < 0 else _ONE_DAY
        remaining = abs(days)
        day = start
        try:
            if remaining == 0:
                while not self.is_working_day(day):
                    day += _ONE_DAY
                return day
            while remaining:
                day += step
                if self.is_working_day(day):
                    remaining -= 1
        except OverflowError:
            raise CalendarError(f"counting {days} working days from {start.isoformat()} leaves the calendar") from None
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """The number of working days ``d`` with ``start < d <= end``; negative when ``end < start``.

        Counted arithmetically (whole weeks, then the exceptions in the range), so a long
        span costs no more than a short one.
        """
        if end < start:
            return -self.working_days_between(end, start)
        if end == start:
            return 0
        self._check_known(start + _ONE_DAY)
        self._check_known(end)
        total = (end - start).days
        weeks, rest = divmod(total, 7)
        count = weeks * (7 - len(self.weekend))
        first_weekday = (start.weekday() + 1) % 7
        count += sum(1 for i in range(rest) if (first_weekday + i) % 7 not in self.weekend)
        count -= sum(1 for d in self.holidays if start < d <= end and d.weekday() not in self.weekend)
        count += sum(1 for d in self.workdays if start < d <= end and d.weekday() in self.weekend)
        return count


# --- reading a company's calendar from the database ---------------------------------------


def company_for(session: Session, company_id: int | None = None) -> Company:
    """Company ``company_id``, or the first company (an installation usually has one)."""
    if company_id is not None:
        company = session.get(Company, company_id)
        if company is None:
            raise CalendarError(f"there is no company {company_id}")
        return company
    company = session.scalars(select(Company).order_by(Company.id).limit(1)).first()
    if company is None:
        raise CalendarError("there is no company yet; run `ordo init` first")
    return company


def company_week(session: Session, company_id: int | None = None) -> tuple[int, frozenset[int]]:
    """The id and weekend days of company ``company_id`` (default: the first company).

    The first company's is read once per transaction with it (:func:`core.company.service.first_company`),
    another's as columns; either way a long-lived session (the worker's) sees a weekend
    changed meanwhile.
    """
    from core.company.service import first_company  # core.company reads the calendar's helpers

    first = first_company(session)
    if first is not None and company_id in (None, first.id):
        return first.id, parse_weekend(first.weekend_days)
    stmt = select(Company.id, Company.weekend_days)
    stmt = stmt.where(Company.id == company_id) if company_id is not None else stmt.order_by(Company.id).limit(1)
    row = session.execute(stmt).first()
    if row is None:
        if company_id is not None:
            raise CalendarError(f"there is no company {company_id}")
        raise CalendarError("there is no company yet; run `ordo init` first")
    return row[0], parse_weekend(row[1])


def working_calendar(
    session: Session, company_id: int | None = None, *, start: dt.date, end: dt.date
) -> WorkingCalendar:
    """The company's calendar with the holidays and make-up days from ``start`` to ``end``.

    Only that range is loaded; the calendar refuses to count outside it (see
    :attr:`WorkingCalendar.known`).
    """
    if end < start:
        start, end = end, start
    return _load(session, *company_week(session, company_id), start, end)


#: Ranges of calendar days read in a transaction: (first day, last day, (day, kind) rows).
_Ranges = list[tuple[dt.date, dt.date, list[tuple[dt.date, str]]]]


def _no_ranges() -> _Ranges:
    return []


def _load(session: Session, company_id: int, weekend: frozenset[int], start: dt.date, end: dt.date) -> WorkingCalendar:
    """The calendar from ``start`` to ``end``; a range read earlier in the transaction that covers it is reused.

    An order's move counts several due dates from today (each review department's, each
    carrier's delivery, the manual check's): the windows overlap, and the first wide
    enough one serves the others (:mod:`core.txcache`; a calendar day or the company
    changed through the session is seen at once).
    """
    key, watch = ("calendar.days", company_id), (CalendarDay, Company)
    read = remembered(session, key, _no_ranges, watch=watch)
    for low, high, days in read:
        if low <= start and end <= high:
            rows = [(day, kind) for day, kind in days if start <= day <= end]
            break
    else:
        rows = [
            (day, kind)
            for day, kind in session.execute(
                select(CalendarDay.day, CalendarDay.kind).where(
                    CalendarDay.company_id == company_id, CalendarDay.day >= start, CalendarDay.day <= end
                )
            )
        ]
        # Asked again: the query's autoflush may have written a change, forgetting the list.
        remembered(session, key, _no_ranges, watch=watch).append((start, end, rows))
    return WorkingCalendar(
        weekend=weekend,
        holidays={day for day, kind in rows if kind == "holiday"},
        workdays={day for day, kind in rows if kind == "workday"},
        known=(start, end),
    )


def _window(start: dt.date, span: int, forward: bool) -> tuple[dt.date, dt.date]:
    """``span`` days from ``start`` in the direction counted, clipped to the calendar's limits."""
    if forward:
        end = dt.date.max if span >= (dt.date.max - start).days else start + dt.timedelta(days=span)
        return start, end
    begin = dt.date.min if span >= (start - dt.date.min).days else start - dt.timedelta(days=span)
    return begin, start


def add_working_days(session: Session, start: dt.date, days: int, company_id: int | None = None) -> dt.date:
    """The ``days``-th working day after ``start`` in the company's calendar (before it if negative).

    ``start`` is not counted; ``days == 0`` gives ``start`` when it is worked, else the
    next working day. The range of calendar days read starts at about two weeks per
    ten working days and doubles until the count fits in it.
    """
    check_day_count(days)
    company, weekend = company_week(session, company_id)
    WorkingCalendar(weekend)  # refuses a week without working days before any query
    span = abs(days) * 7 // (7 - len(weekend)) + 31
    while True:
        low, high = _window(start, span, forward=days >= 0)
        try:
            return _load(session, company, weekend, low, high).add_working_days(start, days)
        except OutsideKnownRange:
            if (low, high) == _window(start, span * 2, forward=days >= 0):
                raise CalendarError(
                    f"counting {days} working days from {start.isoformat()} leaves the calendar"
                ) from None
            span *= 2


def working_days_between(session: Session, start: dt.date, end: dt.date, company_id: int | None = None) -> int:
    """The number of the company's working days ``d`` with ``start < d <= end`` (negative if ``end < start``).

    ``working_days_between(s, add_working_days(s, n)) == n`` for every ``n >= 1``.
    """
    low, high = min(start, end), max(start, end)
    return working_calendar(session, company_id, start=low, end=high).working_days_between(start, end)


def is_working_day(session: Session, day: dt.date, company_id: int | None = None) -> bool:
    """Whether the company works on ``day``."""
    return working_calendar(session, company_id, start=day, end=day).is_working_day(day)

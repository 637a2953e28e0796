"""Working-day arithmetic (IN-4's "within N working days", every plugin SLA): weekends, holidays
and make-up working days, pure and from the database.

The calendar is China's National Day week of 2026 as companies keep it: 1–7 October off,
Sunday 20 September and Saturday 10 October worked (调休), plus a company holiday on a
Wednesday. Answers are checked against hand-counted dates and, over many start days and
counts, against a day-by-day reference count written out here independently.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.calendar import (
    MAX_WORKING_DAYS,
    CalendarError,
    OutsideKnownRange,
    WorkingCalendar,
    add_working_days,
    format_weekend,
    is_working_day,
    parse_weekend,
    working_calendar,
    working_days_between,
)
from core.models import CalendarDay, Company

pytestmark = pytest.mark.req("IN-4")

D = dt.date
SAT_SUN = frozenset({5, 6})
GOLDEN_WEEK = {D(2026, 10, d) for d in range(1, 8)}
MAKE_UP = {D(2026, 9, 20), D(2026, 10, 10)}  # a Sunday and a Saturday
ANNIVERSARY = D(2026, 6, 17)  # a Wednesday


def china_2026() -> WorkingCalendar:
    return WorkingCalendar(SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY}, set(MAKE_UP))


def worked(day: dt.date, weekend: frozenset[int], holidays: set[dt.date], workdays: set[dt.date]) -> bool:
    """The reference rule, written out independently of core.calendar."""
    return day in workdays or (day not in holidays and day.weekday() not in weekend)


def reference_between(start: dt.date, end: dt.date, *rules: Any) -> int:
    """Working days d with start < d <= end, counted one day at a time (negative if end < start)."""
    if end < start:
        return -reference_between(end, start, *rules)
    return sum(1 for i in range(1, (end - start).days + 1) if worked(start + dt.timedelta(days=i), *rules))


def reference_add(start: dt.date, n: int, *rules: Any) -> dt.date:
    """The n-th working day after start (before it when negative), one day at a time."""
    day, step = start, dt.timedelta(days=1 if n >= 0 else -1)
    if n == 0:
        while not worked(day, *rules):
            day += step
        return day
    for _ in range(abs(n)):
        day += step
        while not worked(day, *rules):
            day += step
    return day


# --- the pure calendar -------------------------------------------------------------------


def test_weekday_codes_read_and_write_both_ways():
    assert parse_weekend("sat,sun") == SAT_SUN
    assert parse_weekend(["SUN", " fri "]) == frozenset({4, 6})
    assert parse_weekend("") == frozenset()
    assert format_weekend({6, 5}) == "sat,sun"
    with pytest.raises(CalendarError, match="unknown day of the week 'sunday'"):
        parse_weekend("sunday")


def test_golden_week_is_skipped_and_make_up_days_are_worked():
    cal = china_2026()
    assert not cal.is_working_day(D(2026, 10, 5))  # a Monday inside the holiday
    assert cal.is_working_day(D(2026, 9, 20))  # a Sunday worked
    assert cal.is_working_day(D(2026, 10, 10))  # a Saturday worked
    assert not cal.is_working_day(D(2026, 10, 11))  # an ordinary Sunday
    # Wednesday 30 September + 1 working day: the whole holiday is skipped.
    assert cal.add_working_days(D(2026, 9, 30), 1) == D(2026, 10, 8)
    assert cal.add_working_days(D(2026, 9, 30), 3) == D(2026, 10, 10)  # Thu, Fri, the make-up Saturday
    assert cal.add_working_days(D(2026, 9, 30), 4) == D(2026, 10, 12)
    # Friday 18 September + 1: Saturday is off, the make-up Sunday is worked.
    assert cal.add_working_days(D(2026, 9, 18), 1) == D(2026, 9, 20)
    assert cal.working_days_between(D(2026, 9, 18), D(2026, 9, 21)) == 2
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 10, 8)) == 1


def test_a_holiday_on_a_wednesday_is_not_worked():
    cal = china_2026()
    assert not cal.is_working_day(ANNIVERSARY)
    assert cal.add_working_days(D(2026, 6, 16), 1) == D(2026, 6, 18)
    assert cal.working_days_between(D(2026, 6, 15), D(2026, 6, 19)) == 3  # Tue, Thu, Fri


def test_zero_days_is_the_start_if_worked_else_the_next_working_day():
    cal = china_2026()
    assert cal.add_working_days(D(2026, 9, 30), 0) == D(2026, 9, 30)
    assert cal.add_working_days(D(2026, 10, 3), 0) == D(2026, 10, 8)
    assert cal.add_working_days(D(2026, 9, 20), 0) == D(2026, 9, 20)  # the make-up Sunday
    assert cal.add_working_days(D(2026, 9, 19), 0) == D(2026, 9, 20)
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 9, 30)) == 0


def test_negative_days_count_backwards_and_between_is_antisymmetric():
    cal = china_2026()
    assert cal.add_working_days(D(2026, 10, 8), -1) == D(2026, 9, 30)
    assert cal.add_working_days(D(2026, 9, 21), -1) == D(2026, 9, 20)
    assert cal.add_working_days(D(2026, 10, 12), -1) == D(2026, 10, 10)
    assert cal.add_working_days(D(2026, 10, 12), -3) == D(2026, 10, 8)
    assert cal.working_days_between(D(2026, 10, 8), D(2026, 9, 30)) == -1
    assert cal.working_days_between(D(2026, 10, 12), D(2026, 9, 18)) == -cal.working_days_between(
        D(2026, 9, 18), D(2026, 10, 12)
    )


def test_long_spans_match_a_day_by_day_count():
    cal = china_2026()
    rules = (SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY}, MAKE_UP)
    # 2026 has 261 weekdays; 6 holidays fall on one (5 in Golden Week, the anniversary) and
    # the two make-up days fall on weekend days.
    assert WorkingCalendar(SAT_SUN).working_days_between(D(2025, 12, 31), D(2026, 12, 31)) == 261
    assert cal.working_days_between(D(2025, 12, 31), D(2026, 12, 31)) == 261 - 6 + 2
    assert cal.working_days_between(D(2020, 3, 4), D(2031, 7, 9)) == reference_between(
        D(2020, 3, 4), D(2031, 7, 9), *rules
    )
    assert cal.add_working_days(D(2026, 1, 1), 3000) == reference_add(D(2026, 1, 1), 3000, *rules)
    assert cal.add_working_days(D(2026, 1, 1), -MAX_WORKING_DAYS) == reference_add(
        D(2026, 1, 1), -MAX_WORKING_DAYS, *rules
    )


def test_round_trip_over_many_start_days_and_counts():
    cal = china_2026()
    rules = (SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY}, MAKE_UP)
    starts = [D(2026, 5, 1) + dt.timedelta(days=i) for i in range(0, 200)]
    for start in starts:
        for n in (*range(1, 25), 60, 250, 1000):
            end = cal.add_working_days(start, n)
            assert cal.is_working_day(end) and end > start, (start, n)
            assert cal.working_days_between(start, end) == n, (start, n)
            if n <= 24:
                assert end == reference_add(start, n, *rules), (start, n)
            if cal.is_working_day(start):
                back = cal.add_working_days(start, -n)
                assert cal.working_days_between(back, start) == n, (start, -n)
    rng = random.Random(4)
    for _ in range(300):
        a = D(2026, 1, 1) + dt.timedelta(days=rng.randrange(-400, 800))
        b = a + dt.timedelta(days=rng.randrange(-500, 500))
        assert cal.working_days_between(a, b) == reference_between(a, b, *rules), (a, b)


def test_a_custom_weekend_of_sunday_only():
    cal = WorkingCalendar(frozenset({6}), {D(2026, 10, 1)}, set())
    assert cal.add_working_days(D(2026, 9, 18), 1) == D(2026, 9, 19)  # Saturday is worked
    assert cal.add_working_days(D(2026, 9, 19), 1) == D(2026, 9, 21)
    assert cal.working_days_between(D(2026, 9, 13), D(2026, 9, 20)) == 6
    assert cal.add_working_days(D(2026, 9, 30), 1) == D(2026, 10, 2)


def test_absurd_counts_and_weeks_without_a_working_day_are_refused():
    cal = china_2026()
    with pytest.raises(CalendarError, match=f"at most {MAX_WORKING_DAYS}"):
        cal.add_working_days(D(2026, 1, 1), MAX_WORKING_DAYS + 1)
    with pytest.raises(CalendarError, match=f"at most {MAX_WORKING_DAYS}"):
        cal.add_working_days(D(2026, 1, 1), -(10**9))
    with pytest.raises(CalendarError, match="no working day"):
        WorkingCalendar(frozenset(range(7)), set(), {D(2026, 1, 1)})
    with pytest.raises(CalendarError, match="both a holiday and a make-up"):
        WorkingCalendar(SAT_SUN, {D(2026, 1, 1)}, {D(2026, 1, 1)})
    with pytest.raises(CalendarError, match="leaves the calendar"):
        WorkingCalendar(SAT_SUN).add_working_days(D(9999, 12, 30), 5)


def test_a_calendar_loaded_for_a_range_refuses_to_answer_outside_it():
    cal = WorkingCalendar(SAT_SUN, set(), set(), known=(D(2026, 10, 1), D(2026, 10, 31)))
    assert cal.add_working_days(D(2026, 10, 1), 5) == D(2026, 10, 8)
    with pytest.raises(OutsideKnownRange):
        cal.add_working_days(D(2026, 10, 1), 30)
    with pytest.raises(OutsideKnownRange):
        cal.working_days_between(D(2026, 10, 1), D(2026, 11, 2))


# --- from the database -------------------------------------------------------------------


@pytest.fixture
def company(session: Session) -> Company:
    """The installation's company with the 2026 calendar stored."""
    company = session.scalars(select(Company)).one()
    rows = [CalendarDay(company_id=company.id, day=d, kind="holiday", name="国庆节") for d in GOLDEN_WEEK]
    rows += [CalendarDay(company_id=company.id, day=d, kind="workday", name="国庆节调休上班") for d in MAKE_UP]
    rows.append(CalendarDay(company_id=company.id, day=ANNIVERSARY, kind="holiday", name="公司周年庆"))
    session.add_all(rows)
    session.commit()
    return company


def test_the_session_functions_read_the_companys_calendar(session: Session, company: Company):
    assert add_working_days(session, D(2026, 9, 30), 1) == D(2026, 10, 8)
    assert add_working_days(session, D(2026, 9, 18), 1, company_id=company.id) == D(2026, 9, 20)
    assert add_working_days(session, D(2026, 10, 8), -1) == D(2026, 9, 30)
    assert add_working_days(session, D(2026, 10, 3), 0) == D(2026, 10, 8)
    assert working_days_between(session, D(2026, 9, 30), D(2026, 10, 8)) == 1
    assert working_days_between(session, D(2026, 10, 8), D(2026, 9, 30)) == -1
    assert is_working_day(session, D(2026, 10, 10)) and not is_working_day(session, ANNIVERSARY)
    cal = working_calendar(session, start=D(2026, 10, 1), end=D(2026, 10, 3))
    assert cal.holidays == {D(2026, 10, 1), D(2026, 10, 2), D(2026, 10, 3)}


def test_the_session_functions_agree_with_the_pure_calendar_over_many_days(session: Session, company: Company):
    cal = china_2026()
    for i in range(0, 160, 3):
        start = D(2026, 8, 1) + dt.timedelta(days=i)
        for n in (-7, -1, 0, 1, 2, 5, 9, 40):
            result = add_working_days(session, start, n)
            assert result == cal.add_working_days(start, n), (start, n)
            if n >= 1:
                assert working_days_between(session, start, result) == n


def test_the_weekend_comes_from_the_company_record(session: Session, company: Company):
    assert add_working_days(session, D(2026, 9, 25), 1) == D(2026, 9, 28)  # Friday → Monday
    company.weekend_days = "sun"
    session.commit()
    assert add_working_days(session, D(2026, 9, 25), 1) == D(2026, 9, 26)  # Saturday is worked now
    company.weekend_days = "mon,tue,wed,thu,fri,sat,sun"
    session.commit()
    with pytest.raises(CalendarError, match="no working day"):
        add_working_days(session, D(2026, 9, 25), 1)


def test_long_holidays_widen_the_window_read_until_the_count_fits(session: Session, company: Company):
    # A 400-day shutdown: the first window read (about five weeks) holds no working day.
    shutdown = {D(2027, 1, 1) + dt.timedelta(days=i) for i in range(400)}
    session.add_all(CalendarDay(company_id=company.id, day=d, kind="holiday", name="停工") for d in shutdown)
    session.commit()
    rules = (SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY} | shutdown, MAKE_UP)
    assert add_working_days(session, D(2026, 12, 30), 5) == reference_add(D(2026, 12, 30), 5, *rules)
    assert add_working_days(session, D(2028, 2, 10), -3) == reference_add(D(2028, 2, 10), -3, *rules)
    assert working_days_between(session, D(2026, 12, 1), D(2028, 3, 1)) == reference_between(
        D(2026, 12, 1), D(2028, 3, 1), *rules
    )


def test_only_the_calendar_days_of_the_range_counted_are_read(session: Session, company: Company):
    # Ten years of calendar days elsewhere must not be read to count a few days in October.
    far = [D(2030, 1, 1) + dt.timedelta(days=i) for i in range(0, 3650, 2)]
    session.add_all(CalendarDay(company_id=company.id, day=d, kind="holiday", name="x") for d in far)
    session.commit()
    bounds: list[dt.date] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM calendar_day" in statement:
            values = parameters.values() if isinstance(parameters, dict) else parameters  # (PostgreSQL: named)
            bounds.extend(
                dt.date.fromisoformat(p) for p in values if isinstance(p, str) and len(p) == 10 and p[4] == "-"
            )
            bounds.extend(p for p in values if type(p) is dt.date)  # (PostgreSQL: dates as they are)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert add_working_days(session, D(2026, 9, 30), 5) == D(2026, 10, 13)
        assert working_days_between(session, D(2026, 9, 1), D(2026, 10, 31)) == 22 - 1 + 1 + 22 - 5 + 1
        assert is_working_day(session, D(2026, 10, 10))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert bounds, "no calendar query was seen"
    assert min(bounds) >= D(2026, 9, 1) and max(bounds) <= D(2026, 12, 31), (min(bounds), max(bounds))
    loaded = working_calendar(session, start=D(2026, 9, 1), end=D(2026, 10, 31))
    assert len(loaded.holidays) + len(loaded.workdays) == 9


def test_absurd_input_is_refused_before_any_counting(session: Session, company: Company):
    with pytest.raises(CalendarError, match="at most 3650"):
        add_working_days(session, D(2026, 1, 1), 100_000)
    with pytest.raises(CalendarError, match="no company 999"):
        add_working_days(session, D(2026, 1, 1), 1, company_id=999)


def test_a_range_read_serves_the_counts_inside_it_until_a_day_changes(session: Session, company: Company):
    """Counting several due dates from one day reads the calendar once per transaction; a
    holiday added meanwhile, even unflushed, counts at once."""
    rules = (SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY}, MAKE_UP)
    extra = D(2026, 9, 22)
    after = (SAT_SUN, GOLDEN_WEEK | {ANNIVERSARY, extra}, MAKE_UP)
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM calendar_day" in statement:
            reads.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        for start, n in ((D(2026, 9, 21), 10), (D(2026, 9, 21), 2), (D(2026, 9, 22), 5)):
            assert add_working_days(session, start, n) == reference_add(start, n, *rules)
        assert working_days_between(session, D(2026, 9, 21), D(2026, 9, 30)) == reference_between(
            D(2026, 9, 21), D(2026, 9, 30), *rules
        )
        assert len(reads) == 1, "the first range covers the others"
        session.add(CalendarDay(company_id=company.id, day=extra, kind="holiday", name="停工"))
        for start, n in ((D(2026, 9, 21), 10), (D(2026, 9, 21), 2)):
            assert add_working_days(session, start, n) == reference_add(start, n, *after)
        assert reference_add(D(2026, 9, 21), 2, *after) != reference_add(D(2026, 9, 21), 2, *rules)
        assert len(reads) == 2
    finally:
        event.remove(engine, "before_cursor_execute", count)
    session.rollback()
    assert add_working_days(session, D(2026, 9, 21), 2) == reference_add(D(2026, 9, 21), 2, *rules)

"""When a job runs next: intervals, daily and weekly times on the company's clock (Asia/Shanghai
by default, UTC+8), across midnight, week ends and the UTC date line."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core.clock import COMPANY_TIMEZONE
from core.contrib import Job
from core.jobs.schedule import ScheduleError, effective_schedule, next_run, parse_schedule, validate_schedule
from core.models import JobState

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.skipif(
    COMPANY_TIMEZONE.key != "Asia/Shanghai", reason="these expectations are written for the default company zone"
)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def test_every_adds_seconds_and_answers_in_utc():
    after = local(2026, 11, 22, 23, 59, 30)
    result = next_run("every:45", after)
    assert result == utc(2026, 11, 22, 16, 0, 15)
    assert result.tzinfo is UTC


def test_daily_later_today_in_company_time():
    # 08:00 UTC is 16:00 in Chongqing: "daily:18:00" is two hours later, the same day.
    assert next_run("daily:18:00", utc(2026, 11, 22, 8, 0)) == utc(2026, 11, 22, 10, 0)


def test_daily_already_past_today_runs_tomorrow_across_midnight():
    # 23:30 company time on the 22nd: "daily:09:00" is 09:00 on the 23rd = 01:00 UTC on the 23rd.
    assert next_run("daily:09:00", local(2026, 11, 22, 23, 30)) == utc(2026, 11, 23, 1, 0)


def test_daily_uses_the_company_date_not_the_utc_date():
    # 20:00 UTC on the 22nd is already 04:00 on the 23rd in Chongqing; "daily:06:00" is
    # two hours later (22:00 UTC on the 22nd), not a UTC-day later.
    assert next_run("daily:06:00", utc(2026, 11, 22, 20, 0)) == utc(2026, 11, 22, 22, 0)
    # And "daily:01:00" is past for the company's day 23rd: the 24th at 01:00 local.
    assert next_run("daily:01:00", utc(2026, 11, 22, 20, 0)) == utc(2026, 11, 23, 17, 0)


def test_exactly_on_time_means_the_next_occurrence():
    at = local(2026, 11, 22, 9, 0)
    assert next_run("daily:09:00", at) == local(2026, 11, 23, 9, 0)
    assert next_run("weekly:sun:09:00", at) == local(2026, 11, 29, 9, 0)  # 2026-11-22 is a Sunday


def test_weekly_finds_the_day_across_the_week_end():
    friday_evening = local(2026, 11, 27, 20, 0)
    assert friday_evening.weekday() == 4
    assert next_run("weekly:mon:08:30", friday_evening) == local(2026, 11, 30, 8, 30)
    assert next_run("weekly:sat:07:00", friday_evening) == local(2026, 11, 28, 7, 0)
    assert next_run("weekly:fri:21:00", friday_evening) == local(2026, 11, 27, 21, 0)
    assert next_run("weekly:fri:19:00", friday_evening) == local(2026, 12, 4, 19, 0)


def test_weekly_monday_morning_is_sunday_in_utc():
    # Monday 07:00 in Chongqing is Sunday 23:00 UTC: the weekday is the company's.
    result = next_run("weekly:mon:07:00", utc(2026, 11, 25, 0, 0))
    assert result == utc(2026, 11, 29, 23, 0)
    assert result.astimezone(SHANGHAI).weekday() == 0


def test_weekly_across_the_year_end():
    assert next_run("weekly:fri:09:00", local(2026, 12, 31, 10, 0)) == local(2027, 1, 1, 9, 0)


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="aware"):
        next_run("daily:09:00", dt.datetime(2026, 11, 22, 9, 0))


@pytest.mark.parametrize(
    "text", ["", "hourly", "every:0", "every:-5", "daily:24:00", "daily:9:00", "weekly:monday:09:00", "weekly:09:00"]
)
def test_a_malformed_schedule_is_refused_with_the_forms_named(text):
    with pytest.raises(ScheduleError, match=r"is not every:<seconds>, daily:HH:MM or weekly:<mon..sun>:HH:MM"):
        validate_schedule(text)


def test_a_schedule_is_trimmed_and_lower_cased():
    assert validate_schedule("  Weekly:MON:08:00 ") == "weekly:mon:08:00"
    assert parse_schedule("weekly:wed:18:05").weekday == 2
    assert parse_schedule("every:300").seconds == 300


def test_the_administrators_schedule_overrides_the_registered_one():
    job = Job("x.job", "daily:09:00", lambda session, now: None)
    assert effective_schedule(job, None) == "daily:09:00"
    assert effective_schedule(job, JobState(name="x.job", schedule="")) == "daily:09:00"
    assert effective_schedule(job, JobState(name="x.job", schedule="every:60")) == "every:60"

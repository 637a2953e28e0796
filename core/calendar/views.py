"""The "Working calendar" screen (``/admin/calendar``): a year at a glance, its holidays and
make-up working days, adding a day or a range, importing a CSV, and a working-day calculator.

Thin views over :mod:`core.calendar.days` (changes) and :mod:`core.calendar` (counting);
every route needs ``calendar.manage``.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField

from core.calendar import MAX_WORKING_DAYS, CalendarError, WorkingCalendar, add_working_days, working_calendar
from core.calendar import working_days_between as count_between
from core.calendar.days import CSV_TEMPLATE, Problem, add_days, delete_day, import_days, list_days, parse_date
from core.clock import company_now
from core.labels import N_
from core.models import CalendarDay
from core.services import ServiceError
from core.views.common import abort_for, current_actor, permission_required, screen_blueprint, select_choices
from core.web import db

bp = screen_blueprint("calendar", __name__, url_prefix="/admin/calendar")

#: What each kind of calendar day is called on screens.
KIND_LABELS = {"holiday": N_("Holiday"), "workday": N_("Make-up working day")}
#: The years the screen shows.
YEARS = (1900, 2999)


def problem_text(problem: Problem) -> str:
    """A service's :class:`Problem` in the user's language, with its line number if any."""
    values = {k: _(KIND_LABELS[v]) if k == "kind" and v in KIND_LABELS else v for k, v in problem.values.items()}
    text = _(problem.template, **values) if values else _(problem.template)
    return _("Line %(line)s: %(problem)s", line=problem.line, problem=text) if problem.line is not None else text


def problem_messages(exc: ServiceError) -> list[str]:
    """Every problem of a refusal, worded for the user (the English message if it has none)."""
    problems = getattr(exc, "problems", None)
    return [problem_text(p) for p in problems] if problems else [exc.message]


class AddDaysForm(FlaskForm):
    """One day, or a range of days, to mark as holiday or make-up working day."""

    first_day = DateField(_l("From"), render_kw={"required": True})
    last_day = DateField(_l("To (optional)"))
    kind = SelectField(_l("Kind"), choices=[], validate_choice=False)
    name = StringField(_l("Name"), render_kw={"maxlength": 100, "placeholder": "国庆节"})


@dataclass
class MonthView:
    """One month of the year view: its weeks of days and how many of them are worked."""

    first: dt.date
    weeks: list[list[tuple[dt.date, str] | None]]
    working_days: int


def day_class(cal: WorkingCalendar, day: dt.date) -> str:
    """How the year view marks ``day``: ``holiday``, ``workday`` (make-up), ``weekend`` or ``work``."""
    if day in cal.holidays:
        return "holiday"
    if day in cal.workdays:
        return "workday"
    return "work" if cal.is_working_day(day) else "weekend"


def year_view(year: int) -> list[MonthView]:
    """The twelve months of ``year`` with every day marked, from one query for the year."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    cal = working_calendar(db(), start=first, end=last)
    months = []
    weeks_of = stdlib_calendar.Calendar(firstweekday=0)
    for month in range(1, 13):
        weeks = [
            [(d, day_class(cal, d)) if d.month == month else None for d in week]
            for week in weeks_of.monthdatescalendar(year, month)
        ]
        start = dt.date(year, month, 1)
        end = dt.date(year, month, stdlib_calendar.monthrange(year, month)[1])
        months.append(MonthView(start, weeks, cal.working_days_between(start - dt.timedelta(days=1), end)))
    return months


#: A whole number as the query string may give it: ASCII digits only, an optional minus, short.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,6}")


def whole_number(raw: str) -> int | None:
    """``raw`` as an int if it is a plain whole number of at most six digits; None otherwise.

    ``str.isdigit`` is not enough: it accepts "²" and other digits ``int`` refuses.
    """
    text = raw.strip()
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def _year() -> int:
    year = whole_number(request.args.get("year", ""))
    if year is None:
        year = company_now().year
    return min(max(year, YEARS[0]), YEARS[1])


def _calculator() -> dict[str, Any]:
    """The calculator's inputs and answers (from the query string), with any error per question."""
    args = request.args
    result: dict[str, Any] = {
        "start": args.get("calc_start", ""),
        "days": args.get("calc_days", ""),
        "end": args.get("calc_end", ""),
    }
    start = parse_date(result["start"]) if result["start"] else None
    if result["start"] and start is None:
        result["error"] = _("“%(date)s” is not a date like 2026-10-01.", date=result["start"])
        return result
    if start is None:
        return result
    try:
        if result["days"]:
            days = whole_number(result["days"])
            if days is None or abs(days) > MAX_WORKING_DAYS:
                result["error"] = _(
                    "Give a whole number of working days from -%(max)s to %(max)s.", max=MAX_WORKING_DAYS
                )
                return result
            result["added"] = add_working_days(db(), start, days)
        if result["end"]:
            end = parse_date(result["end"])
            if end is None:
                result["error"] = _("“%(date)s” is not a date like 2026-10-01.", date=result["end"])
                return result
            result["between"] = count_between(db(), start, end)
    except CalendarError as exc:
        result["error"] = _("The calendar cannot count this: %(reason)s", reason=str(exc))
    return result


def _render(
    form: AddDaysForm | None = None,
    add_errors: list[str] | None = None,
    import_errors: list[str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    year = _year()
    form = form or AddDaysForm(formdata=None)
    form.kind.choices = select_choices((k, _(label)) for k, label in KIND_LABELS.items())
    days = list_days(db(), dt.date(year, 1, 1), dt.date(year, 12, 31))
    months = year_view(year)
    return (
        render_template(
            "calendar/index.html",
            year=year,
            months=months,
            days=days,
            names={d.day: d.name for d in days},
            working_days=sum(m.working_days for m in months),
            form=form,
            add_errors=add_errors or [],
            import_errors=import_errors or [],
            calc=_calculator(),
            kind_labels=KIND_LABELS,
            weekday_names=[format_date(dt.date(2024, 1, i), "EEE") for i in range(1, 8)],
            format_date=format_date,
        ),
        status,
    )


@bp.get("")
@permission_required("calendar.manage")
def calendar_page() -> tuple[str, int]:
    """The year view, the year's holidays and make-up days, and the forms to change them."""
    return _render()


@bp.post("/days")
@permission_required("calendar.manage")
def add_calendar_days() -> Any:
    """Mark one day, or every day of a range, as holiday or make-up working day."""
    session = db()
    form = AddDaysForm()
    if not form.first_day.data:
        form.first_day.errors = [_("Give the first day (or the only one).")]
        return _render(form, status=422)
    if (form.last_day.raw_data or [""])[0].strip() and form.last_day.data is None:
        form.last_day.errors = [_("Not a valid date.")]
        return _render(form, status=422)
    try:
        added = add_days(
            session,
            current_actor(),
            form.first_day.data,
            form.last_day.data,
            form.kind.data or "",
            form.name.data or "",
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        return _render(form, add_errors=problem_messages(exc), status=exc.status)
    if added:
        flash(_("%(count)s days were added to the calendar.", count=len(added)), "success")
    else:
        flash(_("Those days were already in the calendar; nothing changed."), "info")
    return redirect(url_for(".calendar_page", year=form.first_day.data.year))


@bp.post("/days/<int:day_id>/delete")
@permission_required("calendar.manage")
def delete_calendar_day(day_id: int) -> Response:
    """Delete a holiday or make-up working day (the screen asks for confirmation first)."""
    session = db()
    try:
        row: CalendarDay = delete_day(session, current_actor(), day_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        raise NotFound() from exc
    flash(_("%(day)s was removed from the calendar.", day=row.day.isoformat()), "success")
    return redirect(url_for(".calendar_page", year=row.day.year))


@bp.post("/import")
@permission_required("calendar.manage")
def import_calendar() -> Any:
    """Import a CSV of days (``date,kind,name``): all of them, or none with every problem listed."""
    session = db()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render(import_errors=[_("Choose a CSV file to import.")], status=422)
    try:
        result = import_days(session, current_actor(), upload.read())
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        return _render(import_errors=problem_messages(exc), status=exc.status)
    flash(
        _(
            "Imported %(added)s days; %(unchanged)s were already in the calendar.",
            added=len(result.added),
            unchanged=result.unchanged,
        ),
        "success",
    )
    year = min(d.day for d in result.added).year if result.added else _year()
    return redirect(url_for(".calendar_page", year=year))


@bp.get("/template.csv")
@permission_required("calendar.manage")
def csv_template() -> Response:
    """An example file to fill in: the header and a few days of China's National Day holiday."""
    return Response(
        "\ufeff" + CSV_TEMPLATE,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=calendar-template.csv"},
    )

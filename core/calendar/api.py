"""API: the working calendar — its holidays and make-up working days, and counting working days.

Reading the calendar and counting need a staff login (portal users get 403); adding and
deleting days needs ``calendar.manage``. Thin endpoints over :mod:`core.calendar.days`
and :mod:`core.calendar`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.calendar import MAX_WORKING_DAYS, CalendarError, add_working_days, working_days_between
from core.calendar.days import MAX_NAME, MAX_RANGE_DAYS, add_days, delete_day, list_days, require_manager
from core.clock import company_now
from core.models import CALENDAR_DAY_KINDS, CalendarDay, User
from core.schemas import Text
from core.services import ServiceError
from core.web import db

blp = Blueprint(
    "api_calendar",
    __name__,
    url_prefix="/api/v1/calendar",
    description="The working calendar (工作日历): holidays, make-up working days (调休), working-day arithmetic.",
)
blp.before_request(require_api_user)

#: The longest range one listing may cover (ten years).
MAX_LIST_DAYS = 3660


def staff_user() -> User:
    """The calling user if staff; portal users (a customer's accounts) are refused with 403."""
    user = api_user()
    if user.customer_id is not None:
        raise ServiceError("forbidden", "the working calendar is for staff", status=403)
    return user


class CalendarDaySchema(Schema):
    """A holiday or a make-up working day."""

    id = fields.Integer(required=True, dump_only=True)
    day = fields.Date(required=True, metadata={"example": "2026-10-01"})
    kind = fields.String(required=True, metadata={"description": "holiday or workday (a make-up working day)."})
    name = fields.String(required=True, metadata={"example": "国庆节"})


class CalendarDayListSchema(Schema):
    """Calendar days by date."""

    items = fields.List(fields.Nested(CalendarDaySchema), required=True)


class DayRangeQuerySchema(Schema):
    """The range of days to list; the current year when left out."""

    from_ = fields.Date(data_key="from", metadata={"description": "First day (default: 1 January this year)."})
    to = fields.Date(metadata={"description": "Last day (default: 31 December of the first day's year)."})

    @validates_schema
    def _in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            raise ValidationError("Must not be before from.", "to")
        if start and end and (end - start).days >= MAX_LIST_DAYS:
            raise ValidationError(f"List at most {MAX_LIST_DAYS} days at once.", "to")


class CalendarDaysInSchema(Schema):
    """One day (``day``) or a range (``from`` and ``to``, inclusive) to mark as ``kind``."""

    day = fields.Date(metadata={"description": "The day; or give from and to."})
    from_ = fields.Date(data_key="from", metadata={"description": "First day of a range."})
    to = fields.Date(metadata={"description": f"Last day of a range (at most {MAX_RANGE_DAYS} days)."})
    kind = fields.String(required=True, validate=validate.OneOf(CALENDAR_DAY_KINDS))
    name = Text(load_default="", validate=validate.Length(max=MAX_NAME))

    @validates_schema(skip_on_field_errors=False)
    def _one_day_or_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "day" in data and ("from_" in data or "to" in data):
            raise ValidationError("Give either day, or from and to.", "day")
        if "day" not in data and "from_" not in data:
            raise ValidationError("Give day, or from and to.", "day")


class AddWorkingDaysQuerySchema(Schema):
    """A start day and a number of working days."""

    start = fields.Date(required=True, metadata={"example": "2026-09-30"})
    days = fields.Integer(
        required=True,
        strict=False,
        validate=validate.Range(min=-MAX_WORKING_DAYS, max=MAX_WORKING_DAYS),
        metadata={"description": "Working days to add (negative: count back; 0: start, or the next working day)."},
    )


class AddedWorkingDaysSchema(Schema):
    """The working day ``days`` working days after ``start``."""

    start = fields.Date(required=True)
    days = fields.Integer(required=True)
    result = fields.Date(required=True, metadata={"example": "2026-10-09"})


class BetweenQuerySchema(Schema):
    """Two days."""

    start = fields.Date(required=True, metadata={"example": "2026-09-30"})
    end = fields.Date(required=True, metadata={"example": "2026-10-09"})


class WorkingDaysBetweenSchema(Schema):
    """The number of working days d with start < d ≤ end (negative when end is before start)."""

    start = fields.Date(required=True)
    end = fields.Date(required=True)
    working_days = fields.Integer(required=True)


def _calendar_error(exc: CalendarError, field: str) -> ServiceError:
    return ServiceError("invalid", str(exc), {field: [str(exc)]})


@blp.route("/days")
class CalendarDays(MethodView):
    """The calendar's holidays and make-up working days."""

    @blp.arguments(DayRangeQuerySchema, location="query", unknown="raise")
    @blp.response(200, CalendarDayListSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List holidays and make-up working days from `from` to `to` (default: this year)."""
        staff_user()
        start = args.get("from_") or dt.date(company_now().year, 1, 1)
        end = args.get("to") or dt.date(start.year, 12, 31)
        if end < start:
            raise ServiceError("invalid", "to is before from", {"to": ["Must not be before from."]})
        return {"items": list_days(db(), start, end)}

    @blp.doc(
        requestBody=json_body(
            CalendarDaysInSchema,
            example={"from": "2026-10-01", "to": "2026-10-08", "kind": "holiday", "name": "国庆节"},
        )
    )
    @blp.response(201, CalendarDayListSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[dict[str, Any], int]:
        """Mark a day or a range of days as holiday or make-up working day (needs `calendar.manage`).

        Days already marked the same way are left as they are; a day marked otherwise
        refuses the whole request (409) and nothing is added. Answers the days added.
        """
        user = require_manager(api_user())
        try:
            data = CalendarDaysInSchema().load(read_json())
        except ValidationError as exc:
            raise ServiceError("invalid", "the calendar days are not valid", exc.messages) from None
        start = data.get("day") or data["from_"]
        end = data.get("day") or data.get("to") or start
        added = add_days(db(), user, start, end, data["kind"], data["name"])
        commit()
        return {"items": added}, 201


@blp.route("/days/<int:day_id>")
class CalendarDayItem(MethodView):
    """One calendar day."""

    @blp.response(200, CalendarDaySchema)
    @errors(blp, 401, 403, 404)
    def delete(self, day_id: int) -> dict[str, Any]:
        """Delete a holiday or make-up working day (needs `calendar.manage`); answers what was deleted."""
        row: CalendarDay = delete_day(db(), api_user(), day_id)
        deleted = {"id": row.id, "day": row.day, "kind": row.kind, "name": row.name}
        commit()
        return deleted


@blp.route("/add-working-days")
@blp.arguments(AddWorkingDaysQuerySchema, location="query", unknown="raise")
@blp.response(200, AddedWorkingDaysSchema)
@errors(blp, 401, 403, 422)
def get_add_working_days(args: dict[str, Any]) -> dict[str, Any]:
    """The `days`-th working day after `start` (start not counted; before it when negative)."""
    staff_user()
    try:
        result = add_working_days(db(), args["start"], args["days"])
    except CalendarError as exc:
        raise _calendar_error(exc, "days") from None
    return {"start": args["start"], "days": args["days"], "result": result}


@blp.route("/working-days-between")
@blp.arguments(BetweenQuerySchema, location="query", unknown="raise")
@blp.response(200, WorkingDaysBetweenSchema)
@errors(blp, 401, 403, 422)
def get_working_days_between(args: dict[str, Any]) -> dict[str, Any]:
    """The number of working days d with `start` < d ≤ `end` (negative when `end` is before `start`)."""
    staff_user()
    try:
        count = working_days_between(db(), args["start"], args["end"])
    except CalendarError as exc:
        raise _calendar_error(exc, "end") from None
    return {"start": args["start"], "end": args["end"], "working_days": count}

"""The Jobs screen (``/admin/jobs``): every scheduled job, its runs, and what an admin may do.

The list shows each registered job with its plugin, schedule, next run, the worker
holding its lease while it runs, and how its last run ended. A job's page shows its
run history (failed runs stand out, with their tracebacks) and the forms to run it
now, switch it off or on, and change its schedule. Thin views over
:mod:`core.jobs.manage`; all of it needs ``jobs.manage``.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.clock import TIMEZONE_NAME
from core.jobs.manage import MANAGE, JobRow, job_row, job_rows, request_run, runs_query, update_job
from core.jobs.schedule import SCHEDULE_FORMS, WEEKDAYS, ScheduleError, parse_schedule
from core.models import JobRun
from core.services import ServiceError
from core.views.common import current_actor, paginate, permission_required, query_args, safe_target, screen_blueprint
from core.views.labels import N_, translate
from core.web import db, ordo

bp = screen_blueprint("jobs", __name__, url_prefix="/admin/jobs")

#: How a run ended, as people read it; and its badge colour.
OUTCOME_LABELS = {"running": _l("Running"), "succeeded": _l("Succeeded"), "failed": _l("Failed")}
OUTCOME_COLOURS = {"running": "info", "succeeded": "success", "failed": "danger"}
#: "weekly on <day> at <time>", one phrase per day (languages word them differently).
WEEKLY_PHRASES = dict(
    zip(
        WEEKDAYS,
        (
            N_("weekly on Monday at %(time)s"),
            N_("weekly on Tuesday at %(time)s"),
            N_("weekly on Wednesday at %(time)s"),
            N_("weekly on Thursday at %(time)s"),
            N_("weekly on Friday at %(time)s"),
            N_("weekly on Saturday at %(time)s"),
            N_("weekly on Sunday at %(time)s"),
        ),
        strict=True,
    )
)


def schedule_text(schedule: str) -> str:
    """A schedule in words, in the user's language: "every 5 minutes", "daily at 09:00"."""
    try:
        parsed = parse_schedule(schedule)
    except ScheduleError:
        return schedule
    if parsed.kind == "every":
        seconds = parsed.seconds
        if seconds % 86400 == 0:
            days = seconds // 86400
            return _("every day") if days == 1 else _("every %(num)s days", num=days)
        if seconds % 3600 == 0:
            hours = seconds // 3600
            return _("every hour") if hours == 1 else _("every %(num)s hours", num=hours)
        if seconds % 60 == 0:
            minutes = seconds // 60
            return _("every minute") if minutes == 1 else _("every %(num)s minutes", num=minutes)
        return _("every %(num)s seconds", num=seconds)
    time = parsed.at.strftime("%H:%M")
    if parsed.kind == "daily":
        return _("daily at %(time)s", time=time)
    return _(WEEKLY_PHRASES[WEEKDAYS[parsed.weekday]], time=time)


def _helpers() -> dict[str, object]:
    return {
        "schedule_text": schedule_text,
        "outcome_labels": OUTCOME_LABELS,
        "outcome_colours": OUTCOME_COLOURS,
        "timezone_name": TIMEZONE_NAME,
        "schedule_forms": SCHEDULE_FORMS,
    }


def _row(name: str) -> JobRow:
    try:
        return job_row(db(), ordo().registry, name)
    except ServiceError as exc:
        raise NotFound() from exc


def _back(name: str) -> str:
    return safe_target(request.form.get("next"), url_for(".job_detail", name=name))


@bp.get("")
@permission_required(MANAGE)
def list_jobs() -> str:
    """Every registered job: label, plugin, schedule, on/off, next run, lease holder, last outcome."""
    return render_template("jobs/list.html", rows=job_rows(db(), ordo().registry), **_helpers())


def _detail(name: str, schedule_value: str | None = None, schedule_errors: list[str] | None = None) -> str:
    row = _row(name)
    filters = query_args("outcome")
    if filters.get("outcome") not in OUTCOME_LABELS:
        filters.pop("outcome", None)
    page = paginate(
        db(),
        runs_query(name, filters.get("outcome")),
        sortable={"started": JobRun.id},
        default_sort="-started",
        endpoint="jobs.job_detail",
        args={"name": name, **filters},
    )
    return render_template(
        "jobs/detail.html",
        row=row,
        title=translate(row.job.label or row.job.name),
        page=page,
        outcome=filters.get("outcome", ""),
        schedule_value=row.state.schedule if schedule_value is None else schedule_value,
        schedule_errors=schedule_errors or [],
        **_helpers(),
    )


@bp.get("/<name>")
@permission_required(MANAGE)
def job_detail(name: str) -> str:
    """One job: its facts, the forms to run, switch and reschedule it, and its run history."""
    return _detail(name)


@bp.post("/<name>/run")
@permission_required(MANAGE)
def run_now(name: str) -> Response:
    """Make the job due now; the next worker pass runs it (under its lease)."""
    session = db()
    try:
        request_run(session, ordo().registry, current_actor(), name)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        if exc.status == 404:
            raise NotFound() from exc
        flash(_("Job %(name)s is switched off; switch it on before running it.", name=name), "danger")
    else:
        flash(_("Job %(name)s will run at the next worker pass.", name=name), "success")
    return redirect(_back(name))


@bp.post("/<name>/enabled")
@permission_required(MANAGE)
def set_enabled(name: str) -> Response:
    """Switch the job on (``enabled=1``) or off (``enabled=0``)."""
    value = request.form.get("enabled", "")
    if value not in ("0", "1"):
        flash(_("Nothing was changed: say whether to switch the job on or off."), "danger")
        return redirect(_back(name))
    session = db()
    try:
        update_job(session, ordo().registry, current_actor(), name, {"enabled": value == "1"})
        session.commit()
    except ServiceError as exc:
        session.rollback()
        raise NotFound() from exc
    if value == "1":
        flash(_("Job %(name)s is switched on.", name=name), "success")
    else:
        flash(_("Job %(name)s is switched off; it runs no more until switched on.", name=name), "success")
    return redirect(_back(name))


@bp.post("/<name>/schedule")
@permission_required(MANAGE)
def change_schedule(name: str) -> Response | tuple[str, int]:
    """Give the job a new schedule; empty goes back to the one its plugin registered."""
    _row(name)
    value = request.form.get("schedule", "")
    session = db()
    try:
        update_job(session, ordo().registry, current_actor(), name, {"schedule": value})
        session.commit()
    except ServiceError as exc:
        session.rollback()
        if exc.status == 404:
            raise NotFound() from exc
        message = _(
            "“%(schedule)s” is not a schedule. Use %(forms)s (company time), e.g. daily:09:00.",
            schedule=value,
            forms=SCHEDULE_FORMS,
        )
        return _detail(name, schedule_value=value, schedule_errors=[message]), 422
    row = _row(name)
    flash(_("Job %(name)s now runs %(schedule)s.", name=name, schedule=schedule_text(row.schedule)), "success")
    return redirect(url_for(".job_detail", name=name))

"""API: scheduled jobs (定时任务) — list them, read a job's runs, run one now, change one.

Everything needs ``jobs.manage``. "Run now" makes the job due; the next worker pass
runs it under its lease (the API never runs a job in the web process). Thin endpoints
over :mod:`core.jobs.manage`.
"""

from __future__ import annotations

import re
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.jobs.manage import JobRow, job_row, job_rows, request_run, require_manager, runs_query, update_job
from core.models import JobRun
from core.models.jobs import JOB_OUTCOMES
from core.schemas import MAX_ID
from core.services import ServiceError
from core.services.paging import decode_cursor, encode_cursor
from core.web import db, ordo

blp = Blueprint(
    "api_jobs",
    __name__,
    url_prefix="/api/v1/jobs",
    description="Scheduled jobs (定时任务): schedule, state, lease, run history; run now, reschedule, switch off.",
)
blp.before_request(require_api_user)

RUN_CURSOR = "r"


class JobRunSchema(Schema):
    """One run of a job: when, where, how it ended, and the traceback if it failed."""

    id = fields.Integer(required=True)
    job = fields.String(required=True)
    worker = fields.String(required=True, metadata={"description": "The worker that ran it (<host>:<pid>)."})
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)
    outcome = fields.String(required=True, metadata={"description": "running, succeeded or failed."})
    error = fields.String(required=True, metadata={"description": "The full traceback of a failed run ('' otherwise)."})


class JobOutSchema(Schema):
    """A registered job with its schedule, state and last run."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    plugin = fields.String(required=True)
    schedule = fields.String(required=True, metadata={"description": "The schedule it runs on."})
    registered_schedule = fields.String(required=True, metadata={"description": "The schedule its plugin declares."})
    enabled = fields.Boolean(required=True)
    next_run_at = fields.DateTime(allow_none=True, required=True)
    running = fields.Boolean(required=True, metadata={"description": "Whether a worker holds its lease now."})
    lease_owner = fields.String(required=True, metadata={"description": "The worker running it ('' when none)."})
    lease_until = fields.DateTime(allow_none=True, required=True)
    timeout = fields.Integer(required=True, metadata={"description": "Seconds a run's lease lasts."})
    last_run = fields.Nested(JobRunSchema, allow_none=True, required=True)


class JobListSchema(Schema):
    """Every registered job, by name."""

    items = fields.List(fields.Nested(JobOutSchema), required=True)


class JobChangeSchema(Schema):
    """What may change: the schedule ('' or null: back to the registered one) and on/off."""

    schedule = fields.String(
        allow_none=True,
        metadata={"description": "every:<seconds>, daily:HH:MM or weekly:<mon..sun>:HH:MM (company time)."},
    )
    enabled = fields.Boolean()


class RunQuerySchema(PageQuerySchema):
    """Paging of a job's runs, optionally only those with one outcome."""

    outcome = fields.String(
        validate=validate.OneOf(JOB_OUTCOMES), metadata={"description": "running, succeeded or failed."}
    )


class RunPageSchema(Schema):
    """One page of runs, newest first, and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(JobRunSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


def run_out(run: JobRun) -> dict[str, Any]:
    """A run in the API's shape."""
    return {
        "id": run.id,
        "job": run.job,
        "worker": run.worker,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "error": run.error,
    }


def job_out(row: JobRow) -> dict[str, Any]:
    """A job row in the API's shape."""
    running = row.running()
    return {
        "name": row.job.name,
        "label": row.job.label or row.job.name,
        "plugin": row.job.plugin,
        "schedule": row.schedule,
        "registered_schedule": row.job.schedule,
        "enabled": row.state.enabled,
        "next_run_at": row.state.next_run_at,
        "running": running,
        "lease_owner": row.state.lease_owner if running else "",
        "lease_until": row.state.lease_until if running else None,
        "timeout": row.job.timeout,
        "last_run": run_out(row.last_run) if row.last_run else None,
    }


def _manager() -> None:
    require_manager(api_user())


@blp.route("")
@blp.response(200, JobListSchema)
@errors(blp, 401, 403)
def list_jobs() -> dict[str, Any]:
    """List every registered job with its schedule, state, lease and last run."""
    _manager()
    return {"items": [job_out(row) for row in job_rows(db(), ordo().registry)]}


@blp.route("/<name>")
class JobItem(MethodView):
    """One job."""

    @blp.response(200, JobOutSchema)
    @errors(blp, 401, 403, 404)
    def get(self, name: str) -> dict[str, Any]:
        """Read a job."""
        _manager()
        return job_out(job_row(db(), ordo().registry, name))

    @blp.doc(requestBody=json_body(JobChangeSchema, example={"schedule": "daily:08:30", "enabled": True}))
    @blp.response(200, JobOutSchema)
    @errors(blp, 400, 401, 403, 404, 415, 422)
    def patch(self, name: str) -> dict[str, Any]:
        """Change a job's schedule (empty or null: the registered one) and/or switch it on or off; audited."""
        user = api_user()
        require_manager(user)
        update_job(db(), ordo().registry, user, name, read_json())
        commit()
        return job_out(job_row(db(), ordo().registry, name))


@blp.route("/<name>/run", methods=["POST"])
@blp.response(202, JobOutSchema)
@errors(blp, 401, 403, 404, 409)
def run_job_now(name: str) -> dict[str, Any]:
    """Make the job due now: the next worker pass runs it (202: accepted, not yet run). 409 if it is switched off."""
    user = api_user()
    require_manager(user)
    request_run(db(), ordo().registry, user, name)
    commit()
    return job_out(job_row(db(), ordo().registry, name))


def _cursor_id(cursor: str) -> int:
    """The run id a cursor points after; 422 for anything but 1 to 18 ASCII digits.

    ``str.isdigit`` accepts "²" and other Unicode digits ``int`` refuses, and 19 digits
    can overflow the database's 64-bit integer: both would answer 500.
    """
    value = decode_cursor(RUN_CURSOR, cursor)
    if not re.fullmatch(r"[0-9]{1,18}", value):
        raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
    return int(value)


@blp.route("/<name>/runs")
@blp.arguments(RunQuerySchema, location="query", unknown="raise")
@blp.response(200, RunPageSchema)
@errors(blp, 401, 403, 404, 422)
def list_runs(args: dict[str, Any], name: str) -> dict[str, Any]:
    """A job's runs, newest first (failed ones carry their traceback), paged by cursor."""
    _manager()
    job_row(db(), ordo().registry, name)  # 404 for an unknown job
    limit = args["limit"]
    stmt = runs_query(name, args.get("outcome")).limit(limit + 1)
    if args.get("cursor") and (after := _cursor_id(args["cursor"])) <= MAX_ID:  # (every id is below a larger one)
        stmt = stmt.where(JobRun.id < after)
    rows = list(db().scalars(stmt))
    next_cursor = encode_cursor(RUN_CURSOR, rows[limit - 1].id) if len(rows) > limit else None
    return {"items": [run_out(run) for run in rows[:limit]], "next_cursor": next_cursor}

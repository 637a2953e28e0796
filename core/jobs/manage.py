"""What an administrator does with jobs: see them, run one now, switch one off, reschedule.

The Jobs screen and ``/api/v1/jobs`` are thin layers over these functions. They never
run a job themselves: "run now" makes the job due, and the next worker pass (under the
lease) runs it. Every change is audited; bad input is refused before anything changes.
Like every service, nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.contrib import Job
from core.db import utcnow
from core.jobs.runner import ensure_states, last_runs, new_state
from core.jobs.schedule import SCHEDULE_FORMS, ScheduleError, effective_schedule, next_run, validate_schedule
from core.models import JobRun, JobState, User
from core.services import Conflict, NotFound, ServiceError, audit

if TYPE_CHECKING:
    from core.plugins import Registry

#: The permission every job screen and endpoint needs.
MANAGE = "jobs.manage"


@dataclass
class JobRow:
    """A registered job as screens and the API show it: declaration, state and last run."""

    job: Job
    state: JobState
    last_run: JobRun | None

    @property
    def schedule(self) -> str:
        """The schedule it runs on (the override, else the registered one)."""
        return effective_schedule(self.job, self.state)

    @property
    def overridden(self) -> bool:
        """Whether an administrator replaced the registered schedule."""
        return bool(self.state.schedule)

    def running(self, now: dt.datetime | None = None) -> bool:
        """Whether a worker holds the job's lease now."""
        until = self.state.lease_until
        return bool(self.state.lease_owner) and until is not None and until > (now or utcnow())


def require_manager(actor: User) -> None:
    """Refuse (403) an actor without ``jobs.manage``."""
    if not actor.can(MANAGE):
        raise ServiceError("forbidden", "managing jobs needs the permission jobs.manage", status=403)


def get_job(registry: Registry, name: str) -> Job:
    """The registered job ``name``; 404 when no enabled plugin registers it."""
    job = registry.jobs.get(name)
    if job is None:
        raise NotFound("job", name)
    return job


def _state(session: Session, registry: Registry, name: str) -> JobState:
    state = session.get(JobState, name)
    if state is None:
        ensure_states(session, registry)
        state = session.get(JobState, name)
    assert state is not None
    return state


def job_rows(session: Session, registry: Registry) -> list[JobRow]:
    """Every registered job with its state and last run, by name.

    Only reads: a job no worker has seen yet shows the state it will get (not stored).
    """
    names = sorted(registry.jobs)
    states = {s.name: s for s in session.scalars(select(JobState).where(JobState.name.in_(names)))}
    runs = last_runs(session, names)
    now = utcnow()
    return [JobRow(registry.jobs[n], states.get(n) or new_state(registry.jobs[n], now), runs.get(n)) for n in names]


def job_row(session: Session, registry: Registry, name: str) -> JobRow:
    """One registered job's row (only reads); 404 for an unknown job."""
    job = get_job(registry, name)
    state = session.get(JobState, name) or new_state(job, utcnow())
    return JobRow(job, state, last_runs(session, [name]).get(name))


def runs_query(name: str, outcome: str | None = None) -> Select[tuple[JobRun]]:
    """A job's runs, newest first, optionally only those with ``outcome``."""
    stmt = select(JobRun).where(JobRun.job == name)
    if outcome:
        stmt = stmt.where(JobRun.outcome == outcome)
    return stmt.order_by(JobRun.id.desc())


def request_run(
    session: Session, registry: Registry, actor: User | None, name: str, now: dt.datetime | None = None
) -> JobState:
    """Make job ``name`` due now; the next worker pass runs it. Refused (409) while it is disabled."""
    get_job(registry, name)
    state = _state(session, registry, name)
    if not state.enabled:
        raise Conflict("job_disabled", f"job {name} is disabled; enable it before running it")
    state.next_run_at = now or utcnow()
    audit.record(session, actor, "job", None, "run_now", {"job": name})
    return state


def _checked_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked field by field; every problem reported at once, nothing applied."""
    problems: dict[str, list[str]] = {}
    unknown = sorted(set(data) - {"schedule", "enabled"})
    for key in unknown:
        problems[key] = ["Unknown field."]
    changes: dict[str, Any] = {}
    if "schedule" in data:
        schedule = data["schedule"]
        if schedule is None or (isinstance(schedule, str) and not schedule.strip()):
            changes["schedule"] = ""
        elif not isinstance(schedule, str):
            problems["schedule"] = [f"Give a schedule as text: {SCHEDULE_FORMS}."]
        else:
            try:
                changes["schedule"] = validate_schedule(schedule)
            except ScheduleError:
                problems["schedule"] = [f"Not a schedule: use {SCHEDULE_FORMS} (company time)."]
    if "enabled" in data:
        if isinstance(data["enabled"], bool):
            changes["enabled"] = data["enabled"]
        else:
            problems["enabled"] = ["Not a valid boolean."]
    if problems:
        raise ServiceError("invalid", "the job change is not valid: " + ", ".join(sorted(problems)), problems)
    return changes


def update_job(
    session: Session,
    registry: Registry,
    actor: User | None,
    name: str,
    data: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> JobState:
    """Change a job's ``schedule`` (empty resets to the registered one) and/or ``enabled``.

    A new schedule, or switching a job back on, sets its next run by the schedule from
    now (switching on does not mean "run the missed runs"). Audited with old and new values.
    """
    job = get_job(registry, name)
    changes = _checked_changes(data)
    state = _state(session, registry, name)
    moment = now or utcnow()
    recorded: dict[str, list[Any]] = {}
    override = "" if changes.get("schedule") == job.schedule else changes.get("schedule")
    if "schedule" in changes and override != state.schedule:
        old = effective_schedule(job, state)
        state.schedule = override or ""
        recorded["schedule"] = [old, effective_schedule(job, state)]
        state.next_run_at = next_run(effective_schedule(job, state), moment)
    if "enabled" in changes and changes["enabled"] != state.enabled:
        recorded["enabled"] = [state.enabled, changes["enabled"]]
        state.enabled = changes["enabled"]
        if state.enabled:
            state.next_run_at = next_run(effective_schedule(job, state), moment)
    if recorded:
        audit.record(session, actor, "job", None, "change", {"job": name, **recorded})
    return state

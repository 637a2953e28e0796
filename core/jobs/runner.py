"""Running scheduled jobs: claim with a database lease, run in one transaction, record the run.

How a run goes, and why:

1. **Claim** (one short transaction). One conditional ``UPDATE job_state`` — due,
   enabled, and no live lease — sets ``lease_owner``/``lease_until``; only the worker
   whose UPDATE changed a row goes on. It also records a :class:`JobRun` (``running``)
   and points ``last_run_id`` at it. Any run of that job still marked ``running`` belongs
   to a worker that died (its lease expired) and is marked failed here. On SQLite the
   write lock (``BEGIN IMMEDIATE``) serialises claims; on PostgreSQL the UPDATE is atomic
   and a second claimer re-checks the row after the first commits.
2. **Run** (one transaction). ``job.function(session, now)``, then — in the same
   transaction — the run is marked succeeded, the next run time set and the lease
   released, guarded by ``last_run_id`` still being this run (a fencing token: a run
   that outlived its lease and was taken over commits nothing). The job's effects and
   "done" commit together: a crash leaves nothing half done, and once the lease
   expires the next pass runs the job again.
3. **Failure** (another transaction). If the function raises, its transaction is rolled
   back; the run is recorded failed with the full traceback, the lease released, and
   the job is due again after a short backoff (a minute, doubling while it keeps
   failing, never later than its next regular time), so a broken job neither stops
   the others nor spins.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.contrib import Job
from core.db import utcnow
from core.jobs.schedule import effective_schedule, next_run
from core.models import JobRun, JobState

if TYPE_CHECKING:
    from core.plugins import Registry

log = logging.getLogger("ordo.jobs")

#: The first retry of a failed job waits this long; each further failure doubles it ...
RETRY_DELAY = dt.timedelta(seconds=60)
#: ... up to this (and never past the job's next regular run).
MAX_RETRY_DELAY = dt.timedelta(hours=1)
#: Columns ``worker`` and ``lease_owner`` hold this many characters.
WORKER_NAME_LENGTH = 64

#: Recorded on a run whose worker died (or lost its lease) before finishing it.
WORKER_STOPPED = "worker stopped: the run did not finish before its lease expired (process killed or too slow)"


class JobError(Exception):
    """A job operation that cannot be done (an unknown job name)."""


class LeaseLost(Exception):
    """This run outlived its lease and another worker took the job over; its work is rolled back."""


def _clock(now: dt.datetime | None) -> Callable[[], dt.datetime]:
    """A fixed clock when ``now`` is given (tests, one pass), else the real one."""
    if now is None:
        return utcnow
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    fixed = now.astimezone(dt.UTC)
    return lambda: fixed


def ensure_states(session: Session, registry: Registry, now: dt.datetime | None = None) -> list[str]:
    """Create the missing :class:`JobState` rows of registered jobs; returns the names added.

    A new ``every:N`` job is due at once; a daily or weekly one at its next occurrence.
    The caller commits (two workers adding the same row at once: the loser's commit
    fails with an integrity error and the row is there anyway — see :func:`prepare`).
    """
    moment = now or utcnow()
    known = set(session.scalars(select(JobState.name)))
    added = []
    for name, job in sorted(registry.jobs.items()):
        if name not in known:
            session.add(new_state(job, moment))
            added.append(name)
    session.flush()
    return added


def new_state(job: Job, now: dt.datetime) -> JobState:
    """The state of a job seen for the first time: an ``every:N`` job is due at once, a daily
    or weekly one at its next occurrence."""
    due = now if job.schedule.startswith("every:") else next_run(job.schedule, now)
    return JobState(name=job.name, schedule="", enabled=True, next_run_at=due, lease_owner="", lease_until=None)


def prepare(sessions: sessionmaker[Session], registry: Registry, now: dt.datetime | None = None) -> None:
    """Make sure every registered job has its state row (committed; safe with racing workers)."""
    for attempt in (1, 2):
        try:
            with sessions() as session, session.begin():
                ensure_states(session, registry, now)
            return
        except IntegrityError:
            if attempt == 2:
                raise  # pragma: no cover - a second clash means something else is wrong


def due_jobs(session: Session, registry: Registry, now: dt.datetime) -> list[str]:
    """Names of registered, enabled jobs due at ``now`` whose lease is free, soonest first."""
    names = session.scalars(
        select(JobState.name)
        .where(
            JobState.enabled.is_(True),
            JobState.next_run_at <= now,
            or_(JobState.lease_until.is_(None), JobState.lease_until < now),
        )
        .order_by(JobState.next_run_at, JobState.name)
    )
    return [name for name in names if name in registry.jobs]


def recover(sessions: sessionmaker[Session], *, now: dt.datetime | None = None) -> list[JobRun]:
    """Close the runs of workers that died: lease expired while the run was still ``running``.

    Each such run is marked failed ("worker stopped") and the lease released; the job's
    next run time is left as it was, so a job that was due runs again on this pass.
    A worker claiming a job does the same for that job; this catches jobs nobody claims
    now (disabled since, or no longer registered).
    """
    moment = _clock(now)()
    closed: list[JobRun] = []
    with sessions() as session, session.begin():
        expired = list(
            session.scalars(select(JobState).where(JobState.lease_until.is_not(None), JobState.lease_until < moment))
        )
        for state in expired:
            released = session.execute(
                update(JobState)
                .where(JobState.name == state.name, JobState.lease_until < moment)
                .values(lease_owner="", lease_until=None)
                .execution_options(synchronize_session=False)
            )
            if released.rowcount == 1:  # type: ignore[attr-defined]
                closed += _close_stopped_runs(session, state.name, moment)
    return closed


def _close_stopped_runs(session: Session, name: str, moment: dt.datetime) -> list[JobRun]:
    runs = list(session.scalars(select(JobRun).where(JobRun.job == name, JobRun.outcome == "running")))
    for run in runs:
        run.outcome = "failed"
        run.finished_at = moment
        run.error = WORKER_STOPPED
        log.warning("job %s: run %s of worker %s never finished; marked failed", name, run.id, run.worker)
    session.flush()
    for run in runs:
        session.expunge(run)
    return runs


def claim(
    sessions: sessionmaker[Session], job: Job, *, worker: str, now: dt.datetime, force: bool = False
) -> JobRun | None:
    """Take ``job``'s lease and record a running :class:`JobRun`, or None if another worker has it.

    One conditional UPDATE decides: the job must be due and enabled (unless ``force``)
    and its lease free or expired. Committed before the job runs, so other workers see
    the lease at once.
    """
    worker = worker[:WORKER_NAME_LENGTH]
    with sessions() as session, session.begin():
        conditions = [JobState.name == job.name, or_(JobState.lease_until.is_(None), JobState.lease_until < now)]
        if not force:
            conditions += [JobState.enabled.is_(True), JobState.next_run_at <= now]
        taken = session.execute(
            update(JobState)
            .where(*conditions)
            .values(lease_owner=worker, lease_until=now + dt.timedelta(seconds=job.timeout))
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        _close_stopped_runs(session, job.name, now)
        run = JobRun(job=job.name, worker=worker, started_at=now, outcome="running", error="")
        session.add(run)
        session.flush()
        session.execute(
            update(JobState)
            .where(JobState.name == job.name)
            .values(last_run_id=run.id)
            .execution_options(synchronize_session=False)
        )
        session.expunge(run)  # keeps its loaded state whatever the factory's expire_on_commit
    return run


def _release(session: Session, job: Job, run: JobRun, next_at: dt.datetime) -> bool:
    """Release the lease and set the next run time, if this run still holds the lease."""
    released = session.execute(
        update(JobState)
        .where(JobState.name == job.name, JobState.last_run_id == run.id, JobState.lease_owner == run.worker)
        .values(lease_owner="", lease_until=None, next_run_at=next_at)
        .execution_options(synchronize_session=False)
    )
    return released.rowcount == 1  # type: ignore[attr-defined]


def _regular_next(session: Session, job: Job, started: dt.datetime) -> dt.datetime:
    """The next run after a run that started at ``started``.

    A next run time later than the start was set while the job ran (an administrator's
    "run now" or new schedule) or before a forced run: it is kept. Otherwise the
    schedule decides.
    """
    state = session.get(JobState, job.name, populate_existing=True)
    if state is not None and state.next_run_at is not None and state.next_run_at > started:
        return state.next_run_at
    return next_run(effective_schedule(job, state), started)


def _retry_at(session: Session, job: Job, run: JobRun, failed_at: dt.datetime) -> dt.datetime:
    """When a failed job is due again: a backoff doubling with each failure in a row."""
    recent = session.scalars(
        select(JobRun.outcome).where(JobRun.job == job.name, JobRun.id != run.id).order_by(JobRun.id.desc()).limit(6)
    )
    streak = 0
    for outcome in recent:
        if outcome != "failed":
            break
        streak += 1
    delay = min(RETRY_DELAY * (2**streak), MAX_RETRY_DELAY)
    state = session.get(JobState, job.name, populate_existing=True)
    regular = next_run(effective_schedule(job, state), run.started_at)
    return min(failed_at + delay, max(regular, failed_at + RETRY_DELAY))


def execute(sessions: sessionmaker[Session], job: Job, run: JobRun, *, clock: Callable[[], dt.datetime]) -> JobRun:
    """Run a claimed job: its work and its "succeeded" commit together, or it is recorded failed.

    Never raises for the job's own errors: they are caught, logged and stored on the run.
    """
    started = run.started_at
    try:
        with sessions() as session, session.begin():
            job.function(session, started)
            if not _release(session, job, run, _regular_next(session, job, started)):
                raise LeaseLost(
                    f"job {job.name}: the run took longer than its lease ({job.timeout} s) and another worker "
                    "took the job over; this run's work was rolled back"
                )
            done = session.get(JobRun, run.id, populate_existing=True)
            assert done is not None
            done.outcome = "succeeded"
            done.finished_at = clock()
            done.error = ""
            session.flush()
            session.expunge(done)
        log.info("job %s: run %s succeeded", job.name, run.id)
        return done
    except Exception as exc:
        error = traceback.format_exc()
        log.error("job %s: run %s failed: %s", job.name, run.id, exc)
        return _record_failure(sessions, job, run, error, clock=clock, took_over=isinstance(exc, LeaseLost))


def _record_failure(
    sessions: sessionmaker[Session],
    job: Job,
    run: JobRun,
    error: str,
    *,
    clock: Callable[[], dt.datetime],
    took_over: bool,
) -> JobRun:
    with sessions() as session, session.begin():
        failed_at = clock()
        if not took_over:
            _release(session, job, run, _retry_at(session, job, run, failed_at))
        failed = session.get(JobRun, run.id, populate_existing=True)
        assert failed is not None
        failed.outcome = "failed"
        failed.finished_at = failed_at
        failed.error = error
        session.flush()
        session.expunge(failed)
    return failed


def run_job(
    sessions: sessionmaker[Session],
    registry: Registry,
    name: str,
    *,
    worker: str,
    now: dt.datetime | None = None,
    force: bool = False,
) -> JobRun | None:
    """Run job ``name`` if it is due (or at once with ``force``), under its lease.

    Returns the finished run, or None when the job is not due, disabled (without
    ``force``) or running on another worker. Raises :class:`JobError` for a job no
    enabled plugin registers.
    """
    job = registry.jobs.get(name)
    if job is None:
        raise JobError(f"no job {name!r} is registered (is its plugin enabled?)")
    clock = _clock(now)
    prepare(sessions, registry, clock())
    run = claim(sessions, job, worker=worker, now=clock(), force=force)
    if run is None:
        return None
    return execute(sessions, job, run, clock=clock)


def run_due(
    sessions: sessionmaker[Session], registry: Registry, *, worker: str, now: dt.datetime | None = None
) -> list[JobRun]:
    """One pass: run every due job once, in turn; returns the runs (succeeded or failed).

    A job that raises is recorded and the pass goes on; a job another worker claimed
    first is skipped. ``now`` fixes the clock (tests); by default each claim reads the time.
    """
    clock = _clock(now)
    prepare(sessions, registry, clock())
    with sessions() as session, session.begin():
        names = due_jobs(session, registry, clock())
    runs = []
    for name in names:
        job = registry.jobs[name]
        try:
            run = claim(sessions, job, worker=worker, now=clock())
            if run is not None:
                runs.append(execute(sessions, job, run, clock=clock))
        except Exception:
            # The database refused the claim or the record of the run (locked, gone away):
            # the lease expires and a later pass runs the job; the other jobs go on now.
            log.exception("job %s: could not be claimed or its run recorded", name)
    return runs


def last_runs(session: Session, names: list[str]) -> dict[str, JobRun]:
    """The latest run of each named job, by name (one query)."""
    states = session.scalars(select(JobState).where(JobState.name.in_(names), JobState.last_run_id.is_not(None)))
    ids = {state.last_run_id: state.name for state in states}
    runs = session.scalars(select(JobRun).where(JobRun.id.in_(list(ids))))
    return {run.job: run for run in runs}

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

   While the job runs its lease is kept alive, so a run longer than ``timeout`` is not
   taken over by another worker (which would mark it failed and start the job twice):

   - On **PostgreSQL** (any backend but SQLite) a :class:`Heartbeat` thread renews it
     every ``timeout / 3`` in a short transaction of its own, with a conditional UPDATE
     (``lease_owner`` and ``last_run_id`` still this run's). Only a worker that stopped
     renewing (died, hung, lost the database) loses its lease.
   - On **SQLite** the run's transaction takes the write lock (``BEGIN IMMEDIATE``) as
     it starts and holds it to the end. Every claim and :func:`recover` is a writing
     transaction too, so another worker waits for the lock and only looks at the lease
     once the run has committed (and released it) or rolled back: the lease cannot be
     taken mid-run, whatever its length. A heartbeat from a second connection could
     not write either (it would wait on the same lock), so there is none.

   :func:`checkpoint` lets a long job commit its work in batches: it renews the lease
   in the job's own transaction, commits, and goes on in a new one.
3. **Failure** (another transaction). If the function raises, its transaction is rolled
   back; the run is recorded failed with the full traceback, the lease released, and
   the job is due again after a short backoff (a minute, doubling while it keeps
   failing, never later than its next regular time), so a broken job neither stops
   the others nor spins.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

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

#: A running job's lease is renewed after this fraction of its timeout.
HEARTBEAT_FRACTION = 1 / 3
#: How long stopping a heartbeat waits for a renewal under way.
HEARTBEAT_JOIN_SECONDS = 30.0
#: On SQLite a checkpoint pauses this long after committing, so writers waiting on the
#: busy timeout (SQLite polls at most every 100 ms) get the write lock before the job
#: takes it again.
CHECKPOINT_PAUSE_SECONDS = 0.15
#: ``session.info`` key of the lease a job's session runs under (see :func:`checkpoint`).
LEASE_INFO_KEY = "ordo_job_lease"

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
    the lease at once. On PostgreSQL the job's row is first locked ``FOR UPDATE SKIP
    LOCKED``: a row another worker is claiming, renewing or releasing right now is
    skipped at once instead of waited for (its lease is live anyway).
    """
    worker = worker[:WORKER_NAME_LENGTH]
    with sessions() as session, session.begin():
        conditions = [JobState.name == job.name, or_(JobState.lease_until.is_(None), JobState.lease_until < now)]
        if not force:
            conditions += [JobState.enabled.is_(True), JobState.next_run_at <= now]
        free = session.scalar(select(JobState.name).where(*conditions).with_for_update(skip_locked=True))
        if free is None:
            return None
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


def _extend(session: Session, job: Job, run: JobRun, now: dt.datetime) -> bool:
    """Move the lease's end to ``now + timeout``, if this run still holds the lease."""
    extended = session.execute(
        update(JobState)
        .where(JobState.name == job.name, JobState.last_run_id == run.id, JobState.lease_owner == run.worker)
        .values(lease_until=now + dt.timedelta(seconds=job.timeout))
        .execution_options(synchronize_session=False)
    )
    return extended.rowcount == 1  # type: ignore[attr-defined]


def renew_lease(sessions: sessionmaker[Session], job: Job, run: JobRun, *, now: dt.datetime) -> bool:
    """Extend ``run``'s lease to ``now + timeout`` in a short transaction of its own.

    False (and nothing changed) when the run no longer holds the lease: it was released,
    or it expired and another worker took the job over.
    """
    with sessions() as session, session.begin():
        return _extend(session, job, run, now)


class Heartbeat:
    """Keeps a running job's lease alive from a thread: :func:`renew_lease` every ``interval``
    seconds (default: a third of the job's timeout) until stopped.

    A renewal that fails (database unreachable) is logged and tried again at the next
    beat; once the run turns out to have lost its lease (``lost``), the heartbeat ends:
    the run itself finds out when it tries to record its success. Use it as a context
    manager around the job's transaction, and leave it only after that transaction has
    ended (a renewal may wait for the transaction's lock on the job's row).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job: Job,
        run: JobRun,
        *,
        clock: Callable[[], dt.datetime],
        interval: float | None = None,
    ):
        self.sessions = sessions
        self.job = job
        self.run = run
        self.clock = clock
        self.interval = job.timeout * HEARTBEAT_FRACTION if interval is None else interval
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"ordo lease {job.name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """End the heartbeat and wait for a renewal under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(HEARTBEAT_JOIN_SECONDS)
            if self._thread.is_alive():  # pragma: no cover - a renewal hung on the database
                log.warning("job %s: the lease heartbeat of run %s did not stop", self.job.name, self.run.id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                held = renew_lease(self.sessions, self.job, self.run, now=self.clock())
            except Exception:
                log.warning("job %s: could not renew the lease of run %s", self.job.name, self.run.id, exc_info=True)
                continue
            if not held:
                if not self._stop.is_set():
                    self.lost = True
                    log.warning("job %s: run %s lost its lease to another worker", self.job.name, self.run.id)
                return
            self.renewals += 1


def _heartbeat(
    sessions: sessionmaker[Session], job: Job, run: JobRun, clock: Callable[[], dt.datetime]
) -> contextlib.AbstractContextManager[Any]:
    """A :class:`Heartbeat` for the run, except on SQLite (see the module's docstring)."""
    if _backend(sessions) == "sqlite" or job.timeout <= 0:
        return contextlib.nullcontext()
    return Heartbeat(sessions, job, run, clock=clock)


def _backend(sessions: sessionmaker[Session]) -> str:
    bind = sessions.kw.get("bind")
    return str(getattr(getattr(bind, "dialect", None), "name", ""))


@dataclass(frozen=True)
class _Lease:
    """What :func:`checkpoint` needs to know about the run a job's session belongs to."""

    job: Job
    run: JobRun
    clock: Callable[[], dt.datetime]


def checkpoint(session: Session) -> None:
    """Commit a running job's work so far and go on in a new transaction (for long jobs).

    In the job's session: renews the run's lease (:class:`LeaseLost` if another worker
    took the job over: this batch is rolled back, the run recorded failed), commits, and
    begins the next transaction at once. On SQLite it pauses
    :data:`CHECKPOINT_PAUSE_SECONDS` between the two, so that writers waiting for the
    database get their turn. Work committed at a checkpoint stays even if the run later
    fails or its worker dies, and the job runs again: only checkpoint work a second run
    recognises as done (marked, or keyed by a ``dedupe_key``).

    Outside a run (a test calling the job's function in its own transaction) it only
    flushes: the caller's transaction decides.
    """
    lease = session.info.get(LEASE_INFO_KEY)
    if not isinstance(lease, _Lease):
        session.flush()
        return
    _renewed_or_lost(session, lease, "at a checkpoint")
    session.commit()
    if session.get_bind().dialect.name == "sqlite":
        time.sleep(CHECKPOINT_PAUSE_SECONDS)
    session.connection()  # the next batch begins now (on SQLite: holds the write lock again)


@contextlib.contextmanager
def reading(session: Session) -> Iterator[Session]:
    """Read for long without keeping writers waiting: a read-only session beside a job's own.

    For jobs that compute much and write little (rollups, statistics). In a running job
    it commits the work so far like :func:`checkpoint` (renewing the lease) and yields a
    read-only session on the same database: on SQLite it never takes the write lock
    (WAL lets it read while others write), so the job does not hold writers up while it
    reads. When the block ends the job's own transaction begins again and the lease is
    renewed (:class:`LeaseLost` if another worker took the job over meanwhile). Keep one
    block shorter than the job's ``timeout``.

    Outside a run (a test calling the job's function in its own transaction) it yields
    ``session`` itself, so the reads see the caller's uncommitted rows.
    """
    lease = session.info.get(LEASE_INFO_KEY)
    if not isinstance(lease, _Lease):
        yield session
        return
    _renewed_or_lost(session, lease, "before it began reading")
    session.commit()
    info = {key: value for key, value in session.info.items() if key != LEASE_INFO_KEY}
    engine = session.get_bind().engine
    with Session(bind=engine.execution_options(ordo_read_only=True), info=info) as reader:
        yield reader
    session.connection()
    _renewed_or_lost(session, lease, "while it was reading")


def _renewed_or_lost(session: Session, lease: _Lease, when: str) -> None:
    if not _extend(session, lease.job, lease.run, lease.clock()):
        raise LeaseLost(
            f"job {lease.job.name}: another worker took the job over {when} (its lease had expired); "
            "the work since the last checkpoint was rolled back"
        )


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
        # The heartbeat ends only after the job's transaction has ended (``with`` order).
        with _heartbeat(sessions, job, run, clock), sessions() as session:
            session.info[LEASE_INFO_KEY] = _Lease(job, run, clock)
            session.connection()  # begin now: on SQLite the write lock is held from the start
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
            session.commit()  # an exception before this: closing the session rolls back
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

"""Running scheduled jobs on a real SQLite database: due jobs run once and are rescheduled, a
failing job is recorded with its traceback and retried without stopping the others, a
worker killed mid-run leaves nothing half done, two workers at once run a job once, and a
run longer than its ``timeout`` keeps its lease: on PostgreSQL the runner renews it from a
heartbeat thread; on SQLite the run's transaction holds the write lock from its first
moment, so no other worker can look at the lease before the run has released it. Long jobs
may commit in batches with :func:`core.jobs.checkpoint`.

The PostgreSQL tests run when ``ORDO_TEST_POSTGRES_URL`` (else the suite's ``ORDO_DATABASE_URL``)
names a scratch database (they drop and recreate a schema ``ordo_jobs_<xdist worker>`` in it), e.g.
``postgresql+psycopg://ordo@/ordo_jobs?host=/tmp/pg``.

The jobs come from a plugin made up in memory (:func:`core.contract.fake_plugin`); each
writes an audit entry in its transaction, so counting entries counts the work done.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core import testing
from core.contract import fake_plugin
from core.contrib import Job
from core.db import Base, make_engine, make_session_factory, utcnow
from core.installation import bump_generation
from core.jobs import checkpoint, reading
from core.jobs.runner import (
    RETRY_DELAY,
    WORKER_STOPPED,
    Heartbeat,
    JobError,
    claim,
    ensure_states,
    execute,
    recover,
    renew_lease,
    run_due,
    run_job,
)
from core.jobs.worker import Worker, default_worker_name
from core.models import AuditLog, JobRun, JobState
from core.plugins import Registry, discover
from core.services import audit

pytestmark = pytest.mark.req("CORE-7")

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Chongqing
MARK = "jobtest"
#: Workers racing for one job.
WORKERS = 4
POSTGRES_URL = os.environ.get("ORDO_TEST_POSTGRES_URL", "") or (testing.SERVER_URL or "")


def work(session: Session, now: dt.datetime) -> None:
    """The job's effect: one audit entry, written in the job's transaction."""
    audit.record(session, None, MARK, None, "ran", {"at": now})


def registry_of(*jobs: Job) -> Registry:
    """A registry with a made-up plugin ``jobtest`` declaring ``jobs``."""
    plugin = fake_plugin(MARK, ordo_register_jobs=lambda: list(jobs))
    return Registry([MARK], {**discover(), MARK: plugin})


@pytest.fixture
def database(ordo_templates: Any, tmp_path: Path) -> Path:
    """A migrated SQLite database file of its own."""
    path = tmp_path / "ordo.sqlite3"
    shutil.copy(ordo_templates.get(()), path)
    return path


def sessions_for(path: Path, registry: Registry) -> sessionmaker[Session]:
    """Ordo sessions on ``path`` carrying ``registry`` (a new engine: one per process)."""
    return make_session_factory(make_engine(f"sqlite:///{path}"), registry=registry)


def effects(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK)) or 0


def runs_of(sessions: sessionmaker[Session], name: str) -> list[JobRun]:
    with sessions() as session:
        return list(session.scalars(select(JobRun).where(JobRun.job == name).order_by(JobRun.id)))


def state_of(sessions: sessionmaker[Session], name: str) -> JobState:
    with sessions() as session:
        state = session.get(JobState, name)
        assert state is not None
        return state


def mine(runs: list[JobRun]) -> list[JobRun]:
    """The runs of this test's jobs (core's own jobs may be due as well)."""
    return [run for run in runs if run.job.startswith(MARK + ".")]


# --- due, not due, rescheduled -------------------------------------------------------------


def test_a_due_job_runs_once_and_is_rescheduled(database):
    registry = registry_of(Job("jobtest.append", "every:300", work))
    sessions = sessions_for(database, registry)

    runs = mine(run_due(sessions, registry, worker="w1", now=T0))
    assert [(r.job, r.outcome, r.worker) for r in runs] == [("jobtest.append", "succeeded", "w1")]
    assert runs[0].started_at == T0 and runs[0].finished_at == T0 and runs[0].error == ""
    assert effects(sessions) == 1
    state = state_of(sessions, "jobtest.append")
    assert state.next_run_at == T0 + dt.timedelta(seconds=300)
    assert state.lease_owner == "" and state.lease_until is None and state.last_run_id == runs[0].id

    # Not due again until its interval has passed.
    assert mine(run_due(sessions, registry, worker="w1", now=T0 + dt.timedelta(seconds=299))) == []
    assert effects(sessions) == 1
    again = mine(run_due(sessions, registry, worker="w2", now=T0 + dt.timedelta(seconds=300)))
    assert [r.outcome for r in again] == ["succeeded"]
    assert effects(sessions) == 2
    assert len(runs_of(sessions, "jobtest.append")) == 2


def test_a_daily_job_waits_for_its_time_in_company_time(database):
    registry = registry_of(Job("jobtest.report", "daily:09:30", work))
    sessions = sessions_for(database, registry)

    # 09:00 in Chongqing: not yet. A new daily job starts at its next occurrence, not at once.
    assert mine(run_due(sessions, registry, worker="w", now=T0)) == []
    assert state_of(sessions, "jobtest.report").next_run_at == T0 + dt.timedelta(minutes=30)
    assert effects(sessions) == 0
    ran = mine(run_due(sessions, registry, worker="w", now=T0 + dt.timedelta(minutes=30)))
    assert [r.outcome for r in ran] == ["succeeded"]
    # Next: tomorrow at 09:30 company time.
    assert state_of(sessions, "jobtest.report").next_run_at == T0 + dt.timedelta(days=1, minutes=30)


def test_a_disabled_job_does_not_run(database):
    registry = registry_of(Job("jobtest.append", "every:60", work))
    sessions = sessions_for(database, registry)
    with sessions() as session, session.begin():
        ensure_states(session, registry, T0)
        state = session.get(JobState, "jobtest.append")
        assert state is not None
        state.enabled = False
    assert mine(run_due(sessions, registry, worker="w", now=T0 + dt.timedelta(hours=1))) == []
    assert effects(sessions) == 0


# --- failures ---------------------------------------------------------------------------


def test_a_raising_job_is_recorded_with_its_traceback_and_the_next_job_still_runs(database):
    broken = {"yes": True}

    def flaky(session: Session, now: dt.datetime) -> None:
        work(session, now)  # written, then rolled back with the failure
        if broken["yes"]:
            raise ValueError("the warehouse feed is down")

    registry = registry_of(Job("jobtest.a_flaky", "every:600", flaky), Job("jobtest.b_append", "every:600", work))
    sessions = sessions_for(database, registry)

    runs = mine(run_due(sessions, registry, worker="w", now=T0))
    assert [(r.job, r.outcome) for r in runs] == [("jobtest.a_flaky", "failed"), ("jobtest.b_append", "succeeded")]
    failed = runs[0]
    assert failed.error.startswith("Traceback (most recent call last):")
    assert 'in flaky\n    raise ValueError("the warehouse feed is down")' in failed.error
    assert failed.error.rstrip().endswith("ValueError: the warehouse feed is down")
    assert failed.finished_at == T0
    assert effects(sessions) == 1, "the failed job's own write was rolled back; the other job's stays"
    state = state_of(sessions, "jobtest.a_flaky")
    assert state.lease_owner == "" and state.lease_until is None
    assert state.next_run_at == T0 + RETRY_DELAY, "retried after a short backoff, not at once and not in 10 minutes"
    assert runs_of(sessions, "jobtest.a_flaky")[0].error == failed.error

    # Within the backoff nothing runs; after it the job is tried again, and fails again:
    # the wait doubles.
    assert mine(run_due(sessions, registry, worker="w", now=T0 + dt.timedelta(seconds=30))) == []
    second = T0 + RETRY_DELAY
    assert [r.outcome for r in mine(run_due(sessions, registry, worker="w", now=second))] == ["failed"]
    assert state_of(sessions, "jobtest.a_flaky").next_run_at == second + 2 * RETRY_DELAY

    # Repaired: the next try succeeds and the job is back on its schedule.
    broken["yes"] = False
    third = second + 2 * RETRY_DELAY
    assert [r.outcome for r in mine(run_due(sessions, registry, worker="w", now=third))] == ["succeeded"]
    assert state_of(sessions, "jobtest.a_flaky").next_run_at == third + dt.timedelta(seconds=600)
    assert [r.outcome for r in runs_of(sessions, "jobtest.a_flaky")] == ["failed", "failed", "succeeded"]
    assert effects(sessions) == 2


def test_a_failing_job_is_never_retried_later_than_its_next_regular_run(database):
    def boom(session: Session, now: dt.datetime) -> None:
        raise RuntimeError("boom")

    registry = registry_of(Job("jobtest.fast", "every:20", boom))
    sessions = sessions_for(database, registry)
    run_due(sessions, registry, worker="w", now=T0)
    # At most once a minute even though the job's interval is 20 s.
    assert state_of(sessions, "jobtest.fast").next_run_at == T0 + RETRY_DELAY


# --- a worker that dies mid-run ---------------------------------------------------------------


def test_a_run_left_by_a_dead_worker_is_retried_after_the_lease_expires(database):
    job = Job("jobtest.append", "every:300", work, timeout=120)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    with sessions() as session, session.begin():
        ensure_states(session, registry, T0)
    dead = claim(sessions, job, worker="dead:1", now=T0)  # claimed, then the worker vanished
    assert dead is not None and dead.outcome == "running"

    # The lease holds: nobody else runs it meanwhile.
    assert mine(run_due(sessions, registry, worker="w2", now=T0 + dt.timedelta(seconds=119))) == []
    assert state_of(sessions, "jobtest.append").lease_owner == "dead:1"

    later = T0 + dt.timedelta(seconds=121)
    runs = mine(run_due(sessions, registry, worker="w2", now=later))
    assert [(r.outcome, r.worker) for r in runs] == [("succeeded", "w2")]
    history = runs_of(sessions, "jobtest.append")
    assert [(r.id, r.outcome, r.error) for r in history] == [
        (dead.id, "failed", WORKER_STOPPED),
        (runs[0].id, "succeeded", ""),
    ]
    assert effects(sessions) == 1


def test_a_run_that_outlived_its_lease_commits_nothing(database):
    job = Job("jobtest.append", "every:300", work, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    with sessions() as session, session.begin():
        ensure_states(session, registry, T0)
    slow = claim(sessions, job, worker="slow", now=T0)
    taken_over = claim(sessions, job, worker="fast", now=T0 + dt.timedelta(seconds=61))
    assert slow is not None and taken_over is not None

    # The slow worker finally finishes: its work is rolled back, the lease stays with "fast".
    late = execute(sessions, job, slow, clock=lambda: T0 + dt.timedelta(seconds=90))
    assert late.outcome == "failed" and "took longer than its lease (60 s)" in late.error
    assert effects(sessions) == 0
    assert state_of(sessions, "jobtest.append").lease_owner == "fast"

    done = execute(sessions, job, taken_over, clock=lambda: T0 + dt.timedelta(seconds=95))
    assert done.outcome == "succeeded"
    assert effects(sessions) == 1
    assert state_of(sessions, "jobtest.append").lease_owner == ""


def test_recover_closes_runs_of_dead_workers_even_for_a_disabled_job(database):
    job = Job("jobtest.append", "every:300", work, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    with sessions() as session, session.begin():
        ensure_states(session, registry, T0)
    dead = claim(sessions, job, worker="dead", now=T0)
    assert dead is not None
    with sessions() as session, session.begin():
        state = session.get(JobState, job.name)
        assert state is not None
        state.enabled = False
    assert recover(sessions, now=T0 + dt.timedelta(seconds=30)) == []
    closed = recover(sessions, now=T0 + dt.timedelta(seconds=61))
    assert [(r.id, r.outcome, r.error) for r in closed] == [(dead.id, "failed", WORKER_STOPPED)]
    assert state_of(sessions, job.name).lease_until is None


def _doomed_worker(path: Path, registry: Registry) -> None:
    run_due(sessions_for(path, registry), registry, worker="doomed")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_worker_killed_inside_the_job_leaves_nothing_half_done(database, tmp_path):
    inside = tmp_path / "inside"
    hang = tmp_path / "hang"
    hang.touch()

    def stuck(session: Session, now: dt.datetime) -> None:
        work(session, now)
        session.flush()  # the row is written in the open transaction ...
        if hang.exists():
            inside.touch()
            time.sleep(60)  # ... and the process is killed here

    job = Job("jobtest.append", "every:300", stuck, timeout=30)
    registry = registry_of(job)
    process = multiprocessing.get_context("fork").Process(target=_doomed_worker, args=(database, registry))
    process.start()
    try:
        deadline = time.monotonic() + 20
        while not inside.exists():
            assert time.monotonic() < deadline, "the worker never reached the job"
            assert process.is_alive(), "the worker ended before reaching the job"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        process.join(10)
    assert process.exitcode == -signal.SIGKILL
    hang.unlink()

    sessions = sessions_for(database, registry)
    assert effects(sessions) == 0, "the killed run's write was never committed"
    [left] = runs_of(sessions, job.name)
    assert (left.outcome, left.worker) == ("running", "doomed")

    # The next pass after the lease expired runs it again, once.
    runs = mine(run_due(sessions, registry, worker="survivor", now=utcnow() + dt.timedelta(seconds=31)))
    assert [r.outcome for r in runs] == ["succeeded"]
    assert effects(sessions) == 1
    assert [(r.outcome, r.error) for r in runs_of(sessions, job.name)] == [
        ("failed", WORKER_STOPPED),
        ("succeeded", ""),
    ]


# --- two workers at once -----------------------------------------------------------------------


def _racing_worker(path: Path, registry: Registry, barrier: Any, name: str, entry: str) -> None:
    sessions = sessions_for(path, registry)
    with sessions() as session:
        session.execute(select(1))  # connect before the start signal
    barrier.wait(10)
    if entry == "run_due":
        run_due(sessions, registry, worker=name)
    else:
        run_job(sessions, registry, "jobtest.append", worker=name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("entry", ["run_due", "run_job"])
@pytest.mark.parametrize("attempt", range(3))
def test_several_workers_started_at_once_run_a_due_job_once(database, entry, attempt):
    def slow_work(session: Session, now: dt.datetime) -> None:
        work(session, now)
        time.sleep(0.1)  # widen the window in which the other workers look

    job = Job("jobtest.append", "every:3600", slow_work)
    registry = registry_of(job)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(WORKERS)
    workers = [
        context.Process(target=_racing_worker, args=(database, registry, barrier, f"racer-{n}", entry))
        for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [p.exitcode for p in workers] == [0] * WORKERS

    sessions = sessions_for(database, registry)
    assert effects(sessions) == 1
    runs = runs_of(sessions, job.name)
    assert [r.outcome for r in runs] == ["succeeded"]
    assert runs[0].worker.startswith("racer-")


# --- running one job by name --------------------------------------------------------------------


def test_run_job_by_name_forces_a_run_but_keeps_the_schedule(database):
    registry = registry_of(Job("jobtest.report", "daily:09:30", work))
    sessions = sessions_for(database, registry)
    with pytest.raises(JobError, match=r"^no job 'jobtest.nope' is registered \(is its plugin enabled\?\)$"):
        run_job(sessions, registry, "jobtest.nope", worker="cli")
    assert run_job(sessions, registry, "jobtest.report", worker="cli", now=T0) is None  # not due yet
    run = run_job(sessions, registry, "jobtest.report", worker="cli", now=T0, force=True)
    assert run is not None and run.outcome == "succeeded"
    assert effects(sessions) == 1
    # The regular 09:30 run still happens.
    assert state_of(sessions, "jobtest.report").next_run_at == T0 + dt.timedelta(minutes=30)


def test_run_job_is_refused_while_another_worker_holds_the_lease(database):
    job = Job("jobtest.append", "every:300", work)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    with sessions() as session, session.begin():
        ensure_states(session, registry, T0)
    assert claim(sessions, job, worker="busy", now=T0) is not None
    assert run_job(sessions, registry, job.name, worker="cli", now=T0 + dt.timedelta(seconds=5), force=True) is None
    assert effects(sessions) == 0


# --- the worker ----------------------------------------------------------------------------------


def test_worker_name_is_host_and_pid():
    assert default_worker_name().endswith(f":{os.getpid()}")


def test_a_pass_survives_a_broken_stage_and_reports_it(database):
    registry = registry_of(Job("jobtest.append", "every:300", work))
    sessions = sessions_for(database, registry)
    worker = Worker(sessions, registry, name="w", deliver=False)

    def broken_due(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    import core.jobs.worker as worker_module

    original: Callable[..., Any] = worker_module.run_due
    worker_module.run_due = broken_due  # type: ignore[assignment]
    try:
        report = worker.run_pass(now=T0)
    finally:
        worker_module.run_due = original  # type: ignore[assignment]
    assert report.errors == ["running due jobs: RuntimeError: database went away"]
    report = worker.run_pass(now=T0)
    assert report.errors == [] and [r.outcome for r in mine(report.runs)] == ["succeeded"]


def test_run_forever_stops_on_sigterm_after_the_pass(database):
    registry = registry_of(Job("jobtest.append", "every:1", work))
    sessions = sessions_for(database, registry)
    worker = Worker(sessions, registry, name="w", poll=0.05, deliver=False)
    passes: list[int] = []

    original = worker.run_pass

    def pass_then_signal(now: dt.datetime | None = None) -> Any:
        report = original(now)
        passes.append(len(report.runs))
        if len(passes) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled by the worker: stop after this pass
        return report

    worker.run_pass = pass_then_signal  # type: ignore[method-assign]
    before = signal.getsignal(signal.SIGTERM)
    worker.run_forever(max_passes=50)
    assert len(passes) == 2 and worker.stopping
    assert signal.getsignal(signal.SIGTERM) == before, "the previous handler is restored"


def test_the_worker_picks_up_plugins_enabled_meanwhile(database):
    core_only = Registry([])
    with_job = registry_of(Job("jobtest.append", "every:300", work))
    sessions = sessions_for(database, core_only)
    reloads: list[Registry] = []

    def reload() -> tuple[sessionmaker[Session], Registry]:
        reloads.append(with_job)
        return sessions_for(database, with_job), with_job

    worker = Worker(sessions, core_only, name="w", poll=0.01, deliver=False, reload=reload)
    worker.run_forever(max_passes=1)
    assert reloads == [] and "jobtest.append" not in worker.registry.jobs

    with sessions() as session, session.begin():
        bump_generation(session)  # what `ordo plugins enable` does
    worker.run_forever(max_passes=2)
    assert reloads == [with_job] and worker.registry is with_job
    assert effects(worker.sessions) == 1


# --- a run longer than its timeout keeps its lease ---------------------------------------------


def claimed(sessions: sessionmaker[Session], registry: Registry, job: Job, worker: str, now: dt.datetime) -> JobRun:
    with sessions() as session, session.begin():
        ensure_states(session, registry, now)
    run = claim(sessions, job, worker=worker, now=now)
    assert run is not None
    return run


# --- the lease's rules (the same SQL on every backend) -----------------------------------------


def test_a_renewed_lease_is_neither_recovered_nor_taken_over(database):
    job = Job("jobtest.append", "every:300", work, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    run = claimed(sessions, registry, job, "long", T0)

    assert renew_lease(sessions, job, run, now=T0 + dt.timedelta(seconds=50))
    assert state_of(sessions, job.name).lease_until == T0 + dt.timedelta(seconds=110)

    # Past the first lease, within the renewed one: recover() keeps it, no one claims it.
    later = T0 + dt.timedelta(seconds=61)
    assert recover(sessions, now=later) == []
    assert claim(sessions, job, worker="other", now=later) is None
    assert mine(run_due(sessions, registry, worker="other", now=later)) == []
    assert run_job(sessions, registry, job.name, worker="other", now=later, force=True) is None
    assert state_of(sessions, job.name).lease_owner == "long"

    done = execute(sessions, job, run, clock=lambda: T0 + dt.timedelta(seconds=100))
    assert done.outcome == "succeeded" and effects(sessions) == 1
    assert [r.outcome for r in runs_of(sessions, job.name)] == ["succeeded"]

    # Once released, the lease cannot be renewed.
    assert not renew_lease(sessions, job, run, now=T0 + dt.timedelta(seconds=101))
    assert state_of(sessions, job.name).lease_until is None


def test_a_lease_taken_over_is_not_renewed_by_the_late_run(database):
    job = Job("jobtest.append", "every:300", work, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    slow = claimed(sessions, registry, job, "slow", T0)
    fast = claim(sessions, job, worker="fast", now=T0 + dt.timedelta(seconds=61))
    assert fast is not None

    assert not renew_lease(sessions, job, slow, now=T0 + dt.timedelta(seconds=70))
    state = state_of(sessions, job.name)
    assert (state.lease_owner, state.lease_until, state.last_run_id) == (
        "fast",
        T0 + dt.timedelta(seconds=121),
        fast.id,
    )


def test_the_heartbeat_renews_until_stopped_and_gives_up_once_the_lease_is_lost(database):
    job = Job("jobtest.append", "every:300", work, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    run = claimed(sessions, registry, job, "w", T0)
    ticks = iter(T0 + dt.timedelta(seconds=n) for n in range(1, 10_000))

    with Heartbeat(sessions, job, run, clock=lambda: next(ticks), interval=0.01) as beat:
        deadline = time.monotonic() + 10
        while beat.renewals < 3:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.01)
    stopped_at = state_of(sessions, job.name).lease_until
    assert stopped_at is not None and stopped_at > T0 + dt.timedelta(seconds=60) and not beat.lost
    time.sleep(0.05)
    assert state_of(sessions, job.name).lease_until == stopped_at, "no renewal after stop()"

    # Another worker takes the job over (the lease had expired meanwhile): the heartbeat notices and stops.
    taken = claim(sessions, job, worker="other", now=stopped_at + dt.timedelta(seconds=1))
    assert taken is not None
    with Heartbeat(sessions, job, run, clock=lambda: next(ticks), interval=0.01) as beat:
        deadline = time.monotonic() + 10
        while not beat.lost:
            assert time.monotonic() < deadline, "the heartbeat did not notice the lost lease"
            time.sleep(0.01)
    assert state_of(sessions, job.name).lease_owner == "other"


# --- SQLite: the run's write lock keeps other workers off ------------------------------------------


def _race(
    sessions: sessionmaker[Session],
    other: sessionmaker[Session],
    registry: Registry,
    job: Job,
    inside: threading.Event,
    seconds: float,
) -> tuple[list[JobRun], list[Any]]:
    """Run ``job`` on worker "long" while worker "other" passes every 0.2 s for ``seconds``."""
    ran: list[JobRun] = []
    long = threading.Thread(target=lambda: ran.extend(run_due(sessions, registry, worker="long")))
    long.start()
    assert inside.wait(10), "the job never started"
    passes = []
    worker = Worker(other, registry, name="other", deliver=False)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        passes.append(worker.run_pass())
        time.sleep(0.2)
    long.join(30)
    passes.append(worker.run_pass())
    return ran, passes


def test_on_sqlite_a_run_longer_than_its_timeout_is_not_taken_over(database):
    inside = threading.Event()

    def long_job(session: Session, now: dt.datetime) -> None:
        inside.set()
        time.sleep(2.5)  # longer than the lease, before touching the database
        work(session, now)

    job = Job("jobtest.long", "every:3600", long_job, timeout=1)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    ran, passes = _race(sessions, sessions_for(database, registry), registry, job, inside, 2.0)

    assert [r.outcome for r in mine(ran)] == ["succeeded"]
    assert all(mine(p.runs) == [] and p.recovered == [] for p in passes), [p.errors for p in passes]
    assert [r.outcome for r in runs_of(sessions, job.name)] == ["succeeded"]
    assert effects(sessions) == 1


def test_checkpoint_commits_the_batch_renews_the_lease_and_lets_waiting_writers_in(database):
    registry_holder: list[Registry] = []
    seen: dict[str, Any] = {}
    writer_waiting = threading.Event()

    def other_writer() -> None:
        with sessions_for(database, registry_holder[0])() as session, session.begin():
            writer_waiting.set()  # (set before BEGIN IMMEDIATE waits for the job's lock)
            audit.record(session, None, "writer", None, "wrote", {})

    writer = threading.Thread(target=other_writer)

    def batches(session: Session, now: dt.datetime) -> None:
        work(session, now)
        session.flush()
        writer.start()
        assert writer_waiting.wait(10)
        time.sleep(0.6)  # the writer is waiting on the busy timeout
        checkpoint(session)
        # The first batch is committed, and the writer got its turn during the checkpoint.
        with make_session_factory(make_engine(f"sqlite:///{database}"), read_only=True)() as look:
            seen["committed"] = look.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK))
        seen["writer"] = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == "writer"))
        seen["lease_until"] = session.scalar(select(JobState.lease_until).where(JobState.name == "jobtest.batches"))
        work(session, now)
        raise RuntimeError("the second batch fails")

    job = Job("jobtest.batches", "every:3600", batches, timeout=60)
    registry = registry_of(job)
    registry_holder.append(registry)
    sessions = sessions_for(database, registry)
    ticks = iter([T0 + dt.timedelta(seconds=40), T0 + dt.timedelta(seconds=50)])  # checkpoint, failure
    run = claimed(sessions, registry, job, "w", T0)
    failed = execute(sessions, job, run, clock=lambda: next(ticks))
    writer.join(30)

    assert seen == {"committed": 1, "writer": 1, "lease_until": T0 + dt.timedelta(seconds=100)}
    assert failed.outcome == "failed" and "the second batch fails" in failed.error
    assert effects(sessions) == 1, "the checkpointed batch stays; the failed one is rolled back"
    state = state_of(sessions, job.name)
    assert state.lease_owner == "" and state.lease_until is None


def test_checkpoint_refuses_to_commit_once_the_lease_is_lost(database):
    job_holder: list[Job] = []

    def batches(session: Session, now: dt.datetime) -> None:
        work(session, now)
        # Meanwhile (lease expired) another worker took the job over.
        session.execute(text("UPDATE job_state SET lease_owner = 'other', last_run_id = NULL"))
        checkpoint(session)

    job = Job("jobtest.batches", "every:3600", batches, timeout=60)
    job_holder.append(job)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    run = claimed(sessions, registry, job, "w", T0)
    failed = execute(sessions, job, run, clock=lambda: T0)
    assert failed.outcome == "failed" and "LeaseLost" in failed.error
    assert effects(sessions) == 0


def test_checkpoint_outside_a_run_only_flushes(database):
    registry = registry_of()
    sessions = sessions_for(database, registry)
    with sessions() as session:
        with session.begin():
            work(session, T0)
            checkpoint(session)
            assert session.in_transaction()
        with session.begin():
            work(session, T0)
            checkpoint(session)
            session.rollback()
    assert effects(sessions) == 1


def test_reading_commits_the_work_so_far_and_reads_while_others_write(database):
    seen: dict[str, Any] = {}

    def computing(session: Session, now: dt.datetime) -> None:
        work(session, now)
        with reading(session) as reader:
            assert reader is not session
            seen["read"] = reader.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK))
            # Another writer gets the write lock at once while the job reads (it would
            # wait for the busy timeout and fail if the job still held it).
            with sessions() as other, other.begin():
                audit.record(other, None, "writer", None, "wrote", {})
        seen["lease_until"] = session.scalar(select(JobState.lease_until).where(JobState.name == job.name))
        work(session, now)

    job = Job("jobtest.computing", "every:3600", computing, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    ticks = iter([T0 + dt.timedelta(seconds=10), T0 + dt.timedelta(seconds=20), T0 + dt.timedelta(seconds=30)])
    run = claimed(sessions, registry, job, "w", T0)
    done = execute(sessions, job, run, clock=lambda: next(ticks))

    assert done.outcome == "succeeded", done.error
    assert seen == {"read": 1, "lease_until": T0 + dt.timedelta(seconds=80)}
    assert effects(sessions) == 2
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == "writer")) == 1


def test_reading_refuses_to_go_on_once_the_lease_is_lost(database):
    def computing(session: Session, now: dt.datetime) -> None:
        with reading(session), sessions() as other, other.begin():  # meanwhile another worker took the job over
            other.execute(text("UPDATE job_state SET lease_owner = 'other', last_run_id = NULL"))
        work(session, now)

    job = Job("jobtest.computing", "every:3600", computing, timeout=60)
    registry = registry_of(job)
    sessions = sessions_for(database, registry)
    run = claimed(sessions, registry, job, "w", T0)
    failed = execute(sessions, job, run, clock=lambda: T0)
    assert failed.outcome == "failed" and "LeaseLost" in failed.error and "while it was reading" in failed.error
    assert effects(sessions) == 0


def test_reading_outside_a_run_reads_in_the_callers_transaction(database):
    sessions = sessions_for(database, registry_of())
    with sessions() as session, session.begin():
        work(session, T0)
        with reading(session) as reader:
            assert reader is session
            assert reader.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK)) == 1
        session.rollback()
    assert effects(sessions) == 0


# --- PostgreSQL: the heartbeat keeps the lease ------------------------------------------------------


@pytest.fixture
def postgres() -> Iterator[Callable[[Registry], sessionmaker[Session]]]:
    """Session factories (each on an engine of its own) on a fresh schema of the scratch database."""
    if not POSTGRES_URL:
        pytest.skip("set ORDO_TEST_POSTGRES_URL to a scratch PostgreSQL database")
    schema = f"ordo_jobs_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # one per xdist worker
    options = {"connect_args": {"options": f"-csearch_path={schema}"}}
    engine = make_engine(POSTGRES_URL, **options)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    Base.metadata.create_all(engine)
    engines = [engine]

    def factory(registry: Registry) -> sessionmaker[Session]:
        engines.append(make_engine(POSTGRES_URL, **options))
        return make_session_factory(engines[-1], registry=registry)

    yield factory
    for made in engines:
        made.dispose()


def test_on_postgresql_a_run_longer_than_its_timeout_keeps_its_lease(postgres):
    inside = threading.Event()

    def long_job(session: Session, now: dt.datetime) -> None:
        work(session, now)
        session.flush()
        inside.set()
        time.sleep(3)  # three times its lease

    job = Job("jobtest.long", "every:3600", long_job, timeout=1)
    registry = registry_of(job)
    sessions = postgres(registry)
    ran, passes = _race(sessions, postgres(registry), registry, job, inside, 3.0)

    assert [r.outcome for r in mine(ran)] == ["succeeded"]
    assert all(mine(p.runs) == [] and p.recovered == [] for p in passes), [p.errors for p in passes]
    assert [p.errors for p in passes if p.errors] == []
    assert [r.outcome for r in runs_of(sessions, job.name)] == ["succeeded"]
    assert effects(sessions) == 1
    state = state_of(sessions, job.name)
    assert state.lease_owner == "" and state.next_run_at is not None and state.next_run_at > utcnow()


def test_on_postgresql_a_dead_workers_lease_still_expires(postgres):
    job = Job("jobtest.append", "every:300", work, timeout=1)
    registry = registry_of(job)
    sessions = postgres(registry)
    dead = claimed(sessions, registry, job, "dead", utcnow())
    time.sleep(1.2)  # nobody renews it
    runs = mine(run_due(sessions, registry, worker="w2"))
    assert [r.outcome for r in runs] == ["succeeded"]
    assert [(r.id, r.outcome) for r in runs_of(sessions, job.name)] == [(dead.id, "failed"), (runs[0].id, "succeeded")]


def test_on_postgresql_checkpoint_commits_batches(postgres):
    seen: dict[str, int] = {}
    holder: list[sessionmaker[Session]] = []

    def batches(session: Session, now: dt.datetime) -> None:
        for _ in range(3):
            work(session, now)
            checkpoint(session)
            with holder[0]() as look:
                seen[str(len(seen))] = effects_in(look)

    job = Job("jobtest.batches", "every:3600", batches, timeout=60)
    registry = registry_of(job)
    sessions = postgres(registry)
    holder.append(sessions)
    run = run_job(sessions, registry, job.name, worker="w", force=True)
    assert run is not None and run.outcome == "succeeded"
    assert seen == {"0": 1, "1": 2, "2": 3}


def effects_in(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK)) or 0

"""The worker on the command line: ``ordo jobs list|run-due|run`` and ``ordo worker``.

In-process runs (click's CliRunner with ``--instance``) see a made-up plugin declaring
two jobs (one works, one raises); a real ``ordo worker`` process shows that SIGTERM
stops it cleanly after its pass.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import core.plugins
from core.cli import cli
from core.contract import fake_plugin
from core.contrib import Job
from core.db import make_engine
from core.installation import enable
from core.models import AuditLog, JobRun, JobState
from core.services import audit

pytestmark = pytest.mark.req("CORE-7")

MARK = "jobtest"


def work(session: Session, now: dt.datetime) -> None:
    audit.record(session, None, MARK, None, "ran", {"at": now})


def broken(session: Session, now: dt.datetime) -> None:
    raise ValueError("the price feed is down")


JOBS = [
    Job("jobtest.append", "every:3600", work, label="Append a row"),
    Job("jobtest.broken", "every:3600", broken),
]


class Ordo:
    """``ordo --instance <tmp> …`` in-process; returns (exit code, stdout, stderr)."""

    def __init__(self, instance: Path):
        self.instance = instance
        self.runner = CliRunner()

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = self.runner.invoke(cli, ["--instance", str(self.instance), *args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    def engine(self) -> Any:
        return make_engine(f"sqlite:///{self.instance / 'ordo.sqlite3'}")


@pytest.fixture
def ordo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ordo:
    """An initialised instance with the made-up ``jobtest`` plugin installed and enabled."""
    installed = {**core.plugins.discover(), MARK: fake_plugin(MARK, ordo_register_jobs=lambda: list(JOBS))}
    monkeypatch.setattr(core.plugins, "discover", lambda: installed)
    run = Ordo(tmp_path / "instance")
    code, out, err = run("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    assert code == 0, out + err
    enable(run.engine(), [MARK], installed=installed)
    return run


def effects(ordo: Ordo) -> int:
    with Session(ordo.engine()) as session:
        return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity == MARK)) or 0


def runs(ordo: Ordo, name: str) -> list[JobRun]:
    with Session(ordo.engine()) as session:
        return list(session.scalars(select(JobRun).where(JobRun.job == name).order_by(JobRun.id)))


def test_jobs_list_shows_every_registered_job(ordo):
    code, out, _err = ordo("jobs", "list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert {"jobtest.append", "jobtest.broken", "core.customer_digest"} <= set(lines)
    assert "every:3600" in lines["jobtest.append"] and " on " in lines["jobtest.append"]
    assert "last never run" in lines["jobtest.append"]
    assert "weekly:mon:09:00" in lines["core.customer_digest"]


def test_run_due_runs_due_jobs_prints_failures_and_still_exits_zero(ordo):
    code, out, err = ordo("jobs", "run-due")
    assert code == 0, out + err
    assert "jobtest.append: succeeded in" in out
    assert "jobtest.broken: FAILED (run " in out and "ValueError: the price feed is down" in out
    assert "Traceback (most recent call last):" in err, "the full traceback goes to stderr"
    assert "Deliveries: 0 sent, 0 retried, 0 failed, 0 uncertain" in out
    assert effects(ordo) == 1
    assert [r.outcome for r in runs(ordo, "jobtest.broken")] == ["failed"]
    assert "Traceback" in runs(ordo, "jobtest.broken")[0].error

    # A second pass at once: nothing is due (the failing job waits for its backoff).
    code, out, _err = ordo("jobs", "run-due")
    assert code == 0 and "No job was due." in out
    assert effects(ordo) == 1

    code, out, _err = ordo("jobs", "list")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "last succeeded" in lines["jobtest.append"]
    assert "last failed" in lines["jobtest.broken"]


def test_jobs_run_runs_one_job_now_under_its_lease(ordo):
    ordo("jobs", "run-due")
    assert effects(ordo) == 1
    code, out, _err = ordo("jobs", "run", "jobtest.append", "--worker-name", "ops-laptop")
    assert code == 0, out
    assert "jobtest.append: succeeded" in out
    assert effects(ordo) == 2
    assert runs(ordo, "jobtest.append")[-1].worker == "ops-laptop"

    code, out, err = ordo("jobs", "run", "jobtest.broken")
    assert code == 1 and "FAILED" in out and "ValueError: the price feed is down" in err

    code, out, err = ordo("jobs", "run", "jobtest.nope")
    assert code != 0
    assert "no job 'jobtest.nope' is registered" in err and "jobtest.append" in err

    # Refused while another worker holds the lease.
    with Session(ordo.engine()) as session, session.begin():
        state = session.get(JobState, "jobtest.append")
        assert state is not None
        state.lease_owner = "elsewhere:1"
        state.lease_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    code, out, err = ordo("jobs", "run", "jobtest.append")
    assert code != 0 and "is running on another worker" in err
    assert effects(ordo) == 2


def test_worker_once_runs_one_pass_under_its_name(ordo):
    code, out, err = ordo("worker", "--once", "--name", "cron-1")
    assert code == 0, out + err
    assert "jobtest.append: succeeded" in out and "Deliveries:" in out
    assert runs(ordo, "jobtest.append")[0].worker == "cron-1"


def test_run_due_fails_when_the_pass_cannot_run(tmp_path):
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path / "empty"), "jobs", "run-due"])
    assert result.exit_code != 0
    assert "the database is not initialised" in result.stderr


def test_the_worker_process_stops_cleanly_on_sigterm(tmp_path):
    instance = tmp_path / "instance"
    env = {**os.environ, "ORDO_INSTANCE": str(instance)}
    subprocess.run(
        [sys.executable, "-m", "core.cli", "init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass"],
        env=env,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--poll", "0.2", "--name", "bg-worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = make_engine(f"sqlite:///{instance / 'ordo.sqlite3'}")
    try:
        deadline = time.monotonic() + 30
        while True:  # the first pass creates the state of core's jobs
            with Session(engine) as session:
                if session.get(JobState, "core.customer_digest") is not None:
                    break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the worker never made a pass"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "Worker bg-worker polling every 0.2 s" in output
    assert "SIGTERM received; stopping after this pass" in output
    assert "worker bg-worker stopped after" in output

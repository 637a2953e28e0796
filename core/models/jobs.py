"""Scheduled jobs' state (next run, the lease that keeps other workers off) and runs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow

#: How a run ended.
JOB_OUTCOMES = ("running", "succeeded", "failed")


class JobState(Base):
    """One registered job's schedule override, next due time and lease.

    A worker takes the lease with one conditional UPDATE (due, and no live lease), so
    of several workers on several machines exactly one runs the job.
    """

    __tablename__ = "job_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: An administrator's schedule replacing the registered one ('' keeps it).
    schedule: Mapped[str] = mapped_column(String(40), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    next_run_at: Mapped[dt.datetime | None]
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[dt.datetime | None]
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("job_run.id", use_alter=True))


class JobRun(Base):
    """One run of a job: when it started and ended, how, and the traceback if it failed."""

    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100), index=True)
    worker: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str] = mapped_column(Text, default="")

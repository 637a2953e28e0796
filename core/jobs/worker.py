"""The worker: a loop that runs due jobs and delivers queued notifications.

``ordo worker`` runs :meth:`Worker.run_forever`; ``ordo jobs run-due`` (for cron) and
``ordo worker --once`` run one :meth:`Worker.run_pass`. Any number of workers on any
number of machines may share one database: jobs are claimed with a lease in the
database (:mod:`core.jobs.runner`) and deliveries likewise (:mod:`core.notify.delivery`).
While a job runs its lease is kept alive (on PostgreSQL by a heartbeat thread the runner
starts for the run; on SQLite by the run's write lock), so a run longer than its
``timeout`` is not taken over by another worker.

A pass never dies of one failure: each stage (recovering dead workers' runs, running
due jobs, delivering) is guarded and its error logged and reported. SIGTERM or SIGINT
ends the loop after the pass under way (a second one interrupts it). When plugins are
enabled or disabled the database's registry generation moves, and the worker rebuilds
its plugin set before its next pass, as the web servers do (:mod:`core.wsgi`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.installation import registry_generation
from core.jobs.runner import WORKER_NAME_LENGTH, recover, run_due
from core.models import JobRun

if TYPE_CHECKING:
    from core.plugins import Registry

log = logging.getLogger("ordo.worker")

#: Rebuilds the worker's sessions and registry after plugins changed.
Reloader = Callable[[], tuple[sessionmaker[Session], "Registry"]]


def default_worker_name() -> str:
    """``<hostname>:<pid>``: tells workers apart on screens and in leases."""
    return f"{socket.gethostname()}:{os.getpid()}"[:WORKER_NAME_LENGTH]


@dataclass
class PassReport:
    """What one pass did: job runs, runs of dead workers closed, deliveries, and errors.

    ``delivery`` is the :class:`core.notify.delivery.DeliveryReport` of the pass (None if
    delivery did not run). ``errors`` holds the stages that could not run at all; a job
    that failed is a run with outcome ``failed``, not an error of the pass.
    """

    runs: list[JobRun] = field(default_factory=list)
    recovered: list[JobRun] = field(default_factory=list)
    delivery: Any = None
    errors: list[str] = field(default_factory=list)

    @property
    def failed_runs(self) -> list[JobRun]:
        """The runs of this pass whose job raised."""
        return [run for run in self.runs if run.outcome == "failed"]


class Worker:
    """Runs passes over one database: recover, run due jobs, deliver notifications.

    ``sessions`` must be Ordo sessions (carrying the registry and instance: see
    ``Context.ordo_sessions`` in :mod:`core.cli`). ``reload``, when given, returns fresh
    sessions and registry; it is called when the registry generation changes.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: Registry,
        *,
        name: str | None = None,
        poll: float = 5.0,
        reload: Reloader | None = None,
        deliver: bool = True,
    ):
        if poll <= 0:
            raise ValueError("poll must be a positive number of seconds")
        self.sessions = sessions
        self.registry = registry
        self.name = (name or default_worker_name())[:WORKER_NAME_LENGTH]
        self.poll = poll
        self.reload = reload
        self.deliver = deliver
        self.passes = 0
        self._stop = threading.Event()
        self._generation = self._read_generation() if reload else None

    # --- one pass -------------------------------------------------------------------

    def run_pass(self, now: dt.datetime | None = None) -> PassReport:
        """Recover dead workers' runs, run every due job once, then deliver due notifications."""
        report = PassReport()
        try:
            report.recovered = recover(self.sessions, now=now)
        except Exception as exc:
            self._failed(report, "recovering stopped runs", exc)
        try:
            report.runs = run_due(self.sessions, self.registry, worker=self.name, now=now)
        except Exception as exc:
            self._failed(report, "running due jobs", exc)
        if self.deliver:
            try:
                from core.notify.delivery import deliver_due

                report.delivery = deliver_due(self.sessions, self.registry, worker=self.name, now=now)
            except Exception as exc:
                self._failed(report, "delivering notifications", exc)
        self.passes += 1
        return report

    @staticmethod
    def _failed(report: PassReport, stage: str, exc: Exception) -> None:
        log.exception("worker pass: %s failed", stage)
        report.errors.append(f"{stage}: {type(exc).__name__}: {exc}")

    # --- the loop -------------------------------------------------------------------

    def run_forever(self, *, max_passes: int | None = None) -> None:
        """Pass after pass, ``poll`` seconds apart, until :meth:`stop`, SIGTERM or SIGINT.

        The signal ends the loop after the current pass; a second one interrupts the
        pass (the job's transaction rolls back; its lease expires and another pass runs
        it again). ``max_passes`` bounds the loop (tests).
        """
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for wanted in (signal.SIGTERM, signal.SIGINT):
                previous[wanted] = signal.signal(wanted, self._on_signal)
        log.info("worker %s started (poll %.1f s)", self.name, self.poll)
        try:
            while not self._stop.is_set():
                self._reload_if_changed()
                try:
                    self.run_pass()
                except Exception:  # pragma: no cover - run_pass guards its stages itself
                    log.exception("worker pass failed")
                if max_passes is not None and self.passes >= max_passes:
                    break
                self._stop.wait(self.poll)
        finally:
            for restored, handler in previous.items():
                signal.signal(restored, handler)
            log.info("worker %s stopped after %d pass(es)", self.name, self.passes)

    def stop(self) -> None:
        """Ask the loop to end after the pass under way."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether the loop was asked to end."""
        return self._stop.is_set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # the second signal: stop now
        log.info("worker %s: %s received; stopping after this pass", self.name, signal.Signals(signum).name)
        self._stop.set()

    # --- plugins changed ----------------------------------------------------------------

    def _read_generation(self) -> int | None:
        bind = self.sessions.kw.get("bind")
        if not isinstance(bind, Engine):
            return None
        # A deferred (read-only) transaction: the check never waits for a writer.
        with Session(bind.execution_options(ordo_read_only=True)) as session:
            if not inspect(session.connection()).has_table("registry_signal"):
                return 0
            return registry_generation(session)

    def _reload_if_changed(self) -> None:
        """Rebuild sessions and registry when plugins were enabled or disabled meanwhile."""
        if self.reload is None:
            return
        try:
            generation = self._read_generation()
            if generation == self._generation:
                return
            self.sessions, self.registry = self.reload()
            self._generation = generation
            log.info(
                "worker %s: plugins changed; now running %s", self.name, ", ".join(self.registry.enabled) or "core"
            )
        except Exception:
            log.exception("worker %s: could not reload the plugins; keeping the current set", self.name)

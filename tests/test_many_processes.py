"""Two servers and two workers on one database: every order processed once, every job run once.

This is the deployment of ``docs/deploy.md`` in miniature: two ``ordo serve --production``
processes (gunicorn, two workers each) and two ``ordo worker`` processes share one
database — PostgreSQL when the suite runs on it, else one SQLite file — and one
instance folder (the shared configuration). Clients drive orders through both servers at
once; a real SMTP server on loopback receives what the workers deliver. Afterwards:

- every order exists once, with a gap-free number, and went through each step once;
- every job that was due ran exactly once, never on two workers at the same time;
- every queued e-mail arrived exactly once.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from process_helpers import free_port, installation, post_json, start_ordo, wait_until_serving
from sqlalchemy import func, select, update

from core.db import utcnow
from core.jobs.runner import ensure_states
from core.models import JobRun, JobState, Order, OrderTransition, OutboxMessage
from core.testing import order_payload

ORDERS = 40
CLIENTS = 6


def _all_jobs_due(session: Any, state: Any) -> None:
    """Every job due now, so the two workers compete for each of them."""
    ensure_states(session, state.registry)
    session.execute(update(JobState).values(next_run_at=utcnow() - dt.timedelta(seconds=1)))


@pytest.fixture
def shared(ordo_templates: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """One database with every plugin and master data, its instance folder, a token and an SMTP server."""
    with installation(ordo_templates, tmp_path / "instance", _all_jobs_due) as made:
        yield made


def start(args: list[str], shared: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """Start ``ordo ARGS`` on the shared instance and database, its output to ``log``."""
    return start_ordo(args, shared["folder"], shared["url"], log)


def call(port: int, token: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON to the server on ``port``; (status, JSON answer)."""
    return post_json(port, token, path, body)


def place(port: int, token: str, number: int) -> int:
    """Create and submit one order through the server on ``port``; returns its id."""
    status, order = call(port, token, "/api/v1/orders", order_payload(reference=f"PO-MANY-{number:03d}"))
    assert status == 201, order
    status, answer = call(port, token, f"/api/v1/orders/{order['id']}/actions/submit", {"version": order["version"]})
    assert status == 200, answer
    return int(order["id"])


def test_two_servers_and_two_workers_process_every_order_and_job_once(shared: dict[str, Any], tmp_path: Path):
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"server{i}.log" for i in (1, 2)] + [tmp_path / f"worker{i}.log" for i in (1, 2)]
    servers = [
        start(["serve", "--production", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)], shared, log)
        for port, log in zip(ports, logs[:2], strict=True)
    ]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for port, proc, log in zip(ports, servers, logs[:2], strict=True):
            wait_until_serving(port, proc, log)
        workers = [
            start(["worker", "--poll", "0.3", "--name", f"worker-{i}"], shared, log)
            for i, log in zip((1, 2), logs[2:], strict=True)
        ]
        with ThreadPoolExecutor(CLIENTS) as pool:
            ids = list(pool.map(lambda n: place(ports[n % 2], shared["token"], n), range(ORDERS)))
        state = shared["state"]
        deadline = time.monotonic() + 120
        while True:  # until every job ran and the outbox is empty
            with state.read_sessions() as s:
                pending = s.scalar(select(func.count()).where(OutboxMessage.status.in_(("queued", "sending"))))
                never_ran = s.scalar(select(func.count()).where(JobState.last_run_id.is_(None)))
                running = s.scalar(select(func.count()).where(JobRun.outcome == "running"))
            if not pending and not never_ran and not running:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"not done: {pending} queued, {never_ran} jobs never ran, {running} running")
            time.sleep(0.5)
    finally:
        for proc in [*workers, *servers]:
            proc.terminate()
        for proc in [*workers, *servers]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    outputs = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)

    with state.read_sessions() as s:
        orders = list(s.scalars(select(Order).where(Order.id.in_(ids))))
        assert len(orders) == ORDERS == len(set(ids))
        serials = sorted(int(order.number.rsplit("-", 1)[1]) for order in orders)
        assert serials == list(range(serials[0], serials[0] + ORDERS)), "numbers are gap-free and unique"
        transitions = Counter(
            (order_id, to_step)
            for order_id, to_step in s.execute(
                select(OrderTransition.order_id, OrderTransition.to_step).where(OrderTransition.order_id.in_(ids))
            )
        )
        assert max(transitions.values()) == 1, "no order went through a step twice"
        paths = {frozenset(step for (oid, step) in transitions if oid == order_id) for order_id in ids}
        assert len(paths) == 1, f"every order took the same steps: {paths}"

        runs = list(s.scalars(select(JobRun).order_by(JobRun.job, JobRun.started_at)))
        per_job = Counter(run.job for run in runs)
        assert set(per_job) == set(state.registry.jobs), "every due job ran"
        assert max(per_job.values()) == 1, f"a job ran twice: {per_job.most_common(3)}\n{outputs}"
        failed = [(run.job, run.error.strip().splitlines()[-1:]) for run in runs if run.outcome != "succeeded"]
        assert not failed, failed
        assert {run.worker for run in runs} <= {"worker-1", "worker-2"}

        sent = list(s.scalars(select(OutboxMessage.message_id).where(OutboxMessage.channel == "email")))
    received = shared["sink"].ids
    assert sent, "the orders and jobs should have queued e-mail, or this test proves nothing"
    assert len(received) == len(set(received)), "no e-mail arrived twice"
    assert Counter(received) == Counter(sent), "every e-mail arrived, once"

"""Bounded retries of transactions that lost a race (``core.concurrency``, ``core.app.OrdoFlask``).

The database's own answer to a lost race is injected at the driver: SQLite's "database
is locked" or PostgreSQL's serialization failure (SQLSTATE 40001), raised by the DBAPI
cursor exactly where a real one would be. The request (or in-process work) must run
again, write everything once and send nothing twice; a race lost every time answers a
clean 503; any other database error and any work that reached outside the database are
not run again. On PostgreSQL a real deadlock between two transactions is resolved too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg.errors
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.concurrency import MAX_ATTEMPTS, is_retryable, mark_external_effect, retrying
from core.models import AuditLog, Customer, OrderLine, OrderTransition, OutboxMessage
from core.models import Order as OrderModel
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, ApiCaller, csrf_token, login, order_payload, token_for
from core.web import OrdoState, db

ALL_PLUGINS = ("intake", "review", "logistics", "billing", "kpi")


@pytest.fixture
def ordo_plugins() -> tuple[str, ...]:
    """Every plugin: submitting runs the pre-check and queues notifications."""
    return ALL_PLUGINS


@pytest.fixture
def api(client: FlaskClient, session: Session, admin: Any, seed: Any) -> ApiCaller:
    """The administrator calling the API."""
    return ApiCaller(client, token_for(session, admin))


def lost_race(engine: Engine) -> BaseException:
    """The error the engine's driver raises when a transaction lost a race."""
    if engine.dialect.name == "postgresql":
        return psycopg.errors.SerializationFailure("could not serialize access due to concurrent update")
    return sqlite3.OperationalError("database is locked")


class Injector:
    """Raises the driver's lost-race error on chosen statements; counts statements and failures."""

    def __init__(self, engine: Engine, error: BaseException | None = None):
        self.engine = engine
        self.error = error or lost_race(engine)
        self.fail_on: Callable[[str, int], bool] = lambda _statement, _insert: False
        self.inserts = 0
        self.failures = 0

    def reset(self) -> None:
        """Start counting again (per attempt counts are taken by the callers)."""
        self.inserts = 0
        self.failures = 0

    def _check(self, statement: str) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            self.inserts += 1
            number = self.inserts
        else:
            number = 0
        if self.fail_on(statement, number):
            self.failures += 1
            raise self.error

    def execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        """``do_execute`` listener: fail here if chosen, else let the driver run it."""
        self._check(statement)

    def executemany(self, cursor: Any, statement: str, parameters: Any, context: Any) -> None:
        """``do_executemany`` listener."""
        self._check(statement)


@contextmanager
def injector(engine: Engine, error: BaseException | None = None) -> Iterator[Injector]:
    """An :class:`Injector` listening on ``engine`` for the duration."""
    found = Injector(engine, error)
    event.listen(engine, "do_execute", found.execute)
    event.listen(engine, "do_executemany", found.executemany)
    try:
        yield found
    finally:
        event.remove(engine, "do_execute", found.execute)
        event.remove(engine, "do_executemany", found.executemany)


def rows_of(state: OrdoState, order_id: int) -> dict[str, int]:
    """What one order wrote: lines, transitions, audit entries and queued messages about it."""
    with state.read_sessions() as s:
        return {
            "orders": s.scalar(select(func.count()).select_from(OrderModel).where(OrderModel.id == order_id)) or 0,
            "lines": s.scalar(select(func.count()).where(OrderLine.order_id == order_id)) or 0,
            "transitions": s.scalar(select(func.count()).where(OrderTransition.order_id == order_id)) or 0,
            "audit": s.scalar(select(func.count()).where(AuditLog.order_id == order_id)) or 0,
            "outbox": s.scalar(select(func.count()).where(OutboxMessage.order_id == order_id)) or 0,
        }


def create_and_submit(api: ApiCaller, reference: str) -> int:
    """Create an order through the API and submit it; returns its id."""
    created = api.post("/api/v1/orders", json=order_payload(reference=reference))
    assert created.status_code == 201, created.get_json()
    order = created.get_json()
    submitted = api.post(f"/api/v1/orders/{order['id']}/actions/submit", json={"version": order["version"]})
    assert submitted.status_code == 200, submitted.get_json()
    return int(order["id"])


def test_a_request_that_lost_its_race_runs_again_and_writes_everything_once(api: ApiCaller, state: OrdoState):
    control_id = create_and_submit(api, "PO-CONTROL")
    control = rows_of(state, control_id)
    assert control["outbox"] > 0, "submitting should queue a notification, or this test proves nothing"

    with injector(state.engine) as injected:
        created = api.post("/api/v1/orders", json=order_payload(reference="PO-RACE"))
        assert created.status_code == 201
        order = created.get_json()
        # The submit's last INSERT fails on its first attempt, after everything else was written.
        injected.reset()
        api.post(f"/api/v1/orders/{order['id']}/actions/submit", json={"version": order["version"]})
        inserts_per_attempt = injected.inserts
        injected.reset()
        last_insert_once = {"done": False}

        def fail_last_insert_once(_statement: str, number: int) -> bool:
            if number == inserts_per_attempt and not last_insert_once["done"]:
                last_insert_once["done"] = True
                return True
            return False

        injected.fail_on = fail_last_insert_once
        again = api.post("/api/v1/orders", json=order_payload(reference="PO-RACE-2"))
        assert again.status_code == 201
        raced = again.get_json()
        injected.reset()
        last_insert_once["done"] = False
        submitted = api.post(f"/api/v1/orders/{raced['id']}/actions/submit", json={"version": raced["version"]})
        assert injected.failures == 1
        assert injected.inserts > inserts_per_attempt, "the request ran a second time"
    assert submitted.status_code == 200, submitted.get_json()
    assert rows_of(state, raced["id"]) == control


def test_creating_an_order_twice_over_a_lost_race_makes_one_order(api: ApiCaller, state: OrdoState):
    with state.read_sessions() as s:
        before = s.scalar(select(func.count()).select_from(OrderModel))
    with injector(state.engine) as injected:
        # Fail the order's first line on the first attempt: the order row was written already.
        injected.fail_on = lambda statement, _n: "order_line" in statement and injected.failures == 0
        created = api.post("/api/v1/orders", json=order_payload(reference="PO-ONCE"))
    assert created.status_code == 201, created.get_json()
    assert injected.failures == 1
    with state.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(OrderModel)) == before + 1
        assert s.scalar(select(func.count()).where(OrderModel.reference == "PO-ONCE")) == 1
    assert rows_of(state, created.get_json()["id"])["lines"] == 2


def test_a_race_lost_every_time_answers_503_and_saves_nothing(api: ApiCaller, state: OrdoState):
    with state.read_sessions() as s:
        before = s.scalar(select(func.count()).select_from(OrderModel))
    with injector(state.engine) as injected:
        injected.fail_on = lambda statement, _n: "INSERT INTO" in statement.upper() and "ORDER" in statement.upper()
        refused = api.post("/api/v1/orders", json=order_payload(reference="PO-BUSY"))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["error"]["code"] == "busy"
    assert injected.failures == MAX_ATTEMPTS
    with state.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(OrderModel)) == before


def test_a_screen_whose_race_is_lost_every_time_shows_the_busy_page(
    client: FlaskClient, state: OrdoState, session: Session, seed: Any
):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    customer = session.scalar(select(Customer).where(Customer.code == "C001"))
    assert customer is not None
    page = f"/customers/{customer.id}"
    token = csrf_token(client, page)
    with injector(state.engine) as injected:
        injected.fail_on = lambda statement, _n: statement.lstrip().upper().startswith("UPDATE CUSTOMER")
        answer = client.post(
            f"{page}/active", data={"csrf_token": token, "active": "0"}, headers={"Referer": f"http://localhost{page}"}
        )
    assert injected.failures == MAX_ATTEMPTS, answer.get_data(as_text=True)[:500]
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "busy" in answer.get_data(as_text=True).lower() or "繁忙" in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(Customer, customer.id).active  # type: ignore[union-attr]


def test_other_database_errors_are_not_run_again(api: ApiCaller, state: OrdoState):
    error = (
        psycopg.errors.DiskFull("could not extend file")
        if state.engine.dialect.name == "postgresql"
        else sqlite3.OperationalError("disk I/O error")
    )
    with injector(state.engine, error) as injected:
        injected.fail_on = lambda statement, _n: "order_line" in statement
        with pytest.raises(OperationalError):
            api.post("/api/v1/orders", json=order_payload(reference="PO-DISK"))
    assert injected.failures == 1


def test_work_that_reached_outside_the_database_is_not_run_again(make_app: Callable[..., Flask], session: Session):
    app = make_app(())
    calls = {"count": 0}

    @app.get("/test-external-effect")
    def _external() -> str:
        calls["count"] += 1
        session_ = db()
        mark_external_effect(session_)  # e.g. a carrier was booked over the network
        session_.execute(text("SELECT 1"))
        session_.commit()
        return "done"

    engine = app.extensions["ordo"].engine
    with injector(engine) as injected:
        injected.fail_on = lambda statement, _n: statement.strip() == "SELECT 1"
        answer = app.test_client().get("/test-external-effect")
    assert answer.status_code == 503
    assert calls["count"] == 1
    assert injected.failures == 1


def test_retrying_runs_in_process_work_again_in_a_fresh_transaction(state: OrdoState, seed: Any):
    attempts: list[int] = []

    def rename(session: Session) -> str:
        attempts.append(1)
        customer = session.scalar(select(Customer).where(Customer.code == "C002"))
        assert customer is not None
        customer.name = customer.name + "（改）"
        session.flush()
        return customer.name

    with injector(state.engine) as injected:
        injected.fail_on = lambda statement, _n: (
            statement.lstrip().upper().startswith("UPDATE CUSTOMER") and injected.failures == 0
        )
        name = retrying(state.sessions, rename)
    assert len(attempts) == 2 and injected.failures == 1
    assert name.count("（改）") == 1
    with state.read_sessions() as s:
        assert s.scalar(select(Customer.name).where(Customer.code == "C002")) == name


def test_retrying_gives_up_after_the_bounded_number_of_attempts(state: OrdoState, seed: Any):
    def touch(session: Session) -> None:
        session.execute(update(Customer).where(Customer.code == "C002").values(name="永不"))

    with injector(state.engine) as injected:
        injected.fail_on = lambda statement, _n: statement.lstrip().upper().startswith("UPDATE CUSTOMER")
        with pytest.raises(OperationalError) as raised:
            retrying(state.sessions, touch)
    assert is_retryable(raised.value)
    assert injected.failures == MAX_ATTEMPTS
    with state.read_sessions() as s:
        assert s.scalar(select(Customer.name).where(Customer.code == "C002")) != "永不"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.UniqueViolation("duplicate key"), False),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), False),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("no such table: x"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_which_errors_mean_a_lost_race(error: BaseException, retryable: bool):
    assert is_retryable(OperationalError("stmt", {}, error)) is retryable  # type: ignore[arg-type]
    assert is_retryable(error) is retryable


def test_a_real_deadlock_on_postgresql_is_resolved_by_running_one_side_again(state: OrdoState, seed: Any):
    if state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with its write lock: two transactions cannot deadlock")
    with state.read_sessions() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id)))[:2]
    both_locked_first = threading.Barrier(2, timeout=10)
    tries = {"a": 0, "b": 0}

    def crossing(name: str, first: int, second: int) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            tries[name] += 1
            session.execute(update(Customer).where(Customer.id == first).values(name=Customer.name + name))
            if tries[name] == 1:
                both_locked_first.wait()  # each holds one row and now wants the other's
            session.execute(update(Customer).where(Customer.id == second).values(name=Customer.name + name))

        return work

    errors: list[BaseException] = []

    def run(name: str, first: int, second: int) -> None:
        try:
            retrying(state.sessions, crossing(name, first, second))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("a", ids[0], ids[1])),
        threading.Thread(target=run, args=("b", ids[1], ids[0])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(tries.values()) == [1, 2], tries  # the deadlock's victim ran again, once
    with state.read_sessions() as s:
        names = list(s.scalars(select(Customer.name).where(Customer.id.in_(ids))))
    assert all(name.count("b") == 1 for name in names) and all(name.count("a") == 1 for name in names)

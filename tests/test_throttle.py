"""Login throttling (CORE-3): repeated failures lock an account and a client address for a
growing delay, even against the right password; a success resets the account's count.

Real time, no clock mocking: the app is built with a short window and delay (config keys
``LOGIN_THROTTLE_*``), so a lock lasts about a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, LoginAttempt
from core.testing import PASSWORD, csrf_token, make_user

pytestmark = pytest.mark.req("CORE-3")

FAST = {
    "LOGIN_THROTTLE_FAILURES": 3,
    "LOGIN_THROTTLE_ADDRESS_FAILURES": 5,
    "LOGIN_THROTTLE_WINDOW": 60,
    "LOGIN_THROTTLE_DELAY": 1,
    "LOGIN_THROTTLE_MAX_DELAY": 4,
}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose locks last a second (doubling to at most four)."""
    return make_app((), **FAST)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client reading English pages."""
    client = app.test_client()
    client.get("/lang/en")
    return client


def attempt(client: FlaskClient, email: str, password: str, address: str = "10.0.0.1") -> Any:
    """Post the login form from ``address``."""
    client.environ_base["REMOTE_ADDR"] = address  # later requests come from there too
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def fresh(session: Session) -> Session:
    session.rollback()
    return session


def test_failures_lock_the_account_even_for_the_right_password_then_it_opens_again(client, session):
    make_user(session, "li@example.com", ["sales"])
    for _ in range(2):
        assert "Wrong e-mail or password." in attempt(client, "li@example.com", "wrong-1").get_data(as_text=True)
    third = attempt(client, "li@example.com", "wrong-1")
    assert third.status_code == 429 and "Too many failed logins" in third.get_data(as_text=True)
    refused = attempt(client, "li@example.com", PASSWORD)
    assert refused.status_code == 429, "the right password must not get through a lock"
    assert 1 <= int(refused.headers["Retry-After"]) <= 4
    assert "try again (after" in refused.get_data(as_text=True)
    with client.session_transaction() as cookie:
        assert "_user_id" not in cookie
    rows = fresh(session).scalars(select(LoginAttempt).where(LoginAttempt.email == "li@example.com")).all()
    assert [r.succeeded for r in rows] == [False, False, False, False]
    assert {r.client_address for r in rows} == {"10.0.0.1"}
    actions = session.scalars(select(AuditLog.action).where(AuditLog.action.like("login%"))).all()
    assert actions.count("login_failed") == 3 and "login_locked" in actions
    locked = session.scalars(select(AuditLog).where(AuditLog.action == "login_locked")).first()
    assert locked is not None and locked.changes["by"] == "account" and locked.changes["email"] == "li@example.com"
    # The refused attempt counted too, so the lock grew: wait it out (at most 4 s).
    time.sleep(int(refused.headers["Retry-After"]) * 2 + 0.2)
    ok = attempt(client, "li@example.com", PASSWORD)
    assert ok.status_code == 302, ok.get_data(as_text=True)
    with client.session_transaction() as cookie:
        assert cookie.get("_user_id")


def test_the_delay_doubles_with_each_further_failure_up_to_the_cap(client, session):
    make_user(session, "wang@example.com", ["sales"])
    waits = []
    for _ in range(3):
        attempt(client, "wang@example.com", "wrong-1")
    waits.append(int(attempt(client, "wang@example.com", "wrong-1").headers["Retry-After"]))  # 4th: refused
    waits.append(int(attempt(client, "wang@example.com", "wrong-1").headers["Retry-After"]))  # 5th
    waits.append(int(attempt(client, "wang@example.com", "wrong-1").headers["Retry-After"]))  # 6th: capped
    assert waits == [2, 4, 4]


def test_a_success_resets_the_accounts_count(client, session):
    make_user(session, "zhao@example.com", ["sales"])
    for _ in range(2):
        attempt(client, "zhao@example.com", "wrong-1")
    assert attempt(client, "zhao@example.com", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    for _ in range(2):
        response = attempt(client, "zhao@example.com", "wrong-1")
        assert response.status_code == 200, "two failures after a success must not lock"


def test_unknown_emails_get_the_same_answer_and_are_throttled_alike(client, session):
    make_user(session, "known@example.com", ["sales"])
    known = attempt(client, "known@example.com", "wrong-1", address="10.0.0.2")
    unknown = attempt(client, "nobody@example.com", "wrong-1", address="10.0.0.3")
    assert known.status_code == unknown.status_code == 200
    assert "Wrong e-mail or password." in known.get_data(as_text=True)
    assert "Wrong e-mail or password." in unknown.get_data(as_text=True)
    for _ in range(2):
        last = attempt(client, "nobody@example.com", "wrong-1", address="10.0.0.3")
    assert last.status_code == 429, "an unknown e-mail locks like a known one, so a lock reveals nothing"


def test_an_unknown_email_costs_a_password_check_too(client, session):
    """The dummy argon2 hash makes a refusal take as long whether or not the account exists."""
    make_user(session, "timing@example.com", ["sales"])

    def elapsed(email: str, address: str) -> float:
        start = time.perf_counter()
        attempt(client, email, "wrong-1", address=address)
        return time.perf_counter() - start

    attempt(client, "warmup@example.com", "wrong-1", address="10.9.0.1")  # the dummy hash is made once
    known = min(elapsed("timing@example.com", "10.9.0.2") for _ in range(2))
    unknown = min(elapsed(f"ghost{n}@example.com", "10.9.0.3") for n in range(2))
    assert unknown > known * 0.5, (known, unknown)


def test_failures_from_one_address_lock_it_for_every_account(client, session):
    for n in range(5):
        attempt(client, f"guess{n}@example.com", "wrong-1", address="10.0.0.9")
    make_user(session, "victim@example.com", ["sales"])
    from_there = attempt(client, "victim@example.com", PASSWORD, address="10.0.0.9")
    assert from_there.status_code == 429
    fresh(session)
    locked = session.scalars(select(AuditLog).where(AuditLog.action == "login_locked")).all()
    assert any(entry.changes["by"] == "address" for entry in locked)
    # Another address is not affected.
    assert attempt(client, "victim@example.com", PASSWORD, address="10.0.0.10").status_code == 302

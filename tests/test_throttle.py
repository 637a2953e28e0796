"""Login throttling (CORE-3): repeated failures lock an account and a client address for a
growing delay, even against the right password; a success resets the account's count.

No sleeping: the app reads the time from a fake clock (``CLOCK``, :func:`core.clock.app_now`)
that the tests move on, and is built with a short window and delay (config keys
``LOGIN_THROTTLE_*``), so a lock lasts about a second of the fake clock's time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, LoginAttempt
from core.testing import PASSWORD, FakeClock, csrf_token, make_user

pytestmark = pytest.mark.req("CORE-3")

FAST = {
    "LOGIN_THROTTLE_FAILURES": 3,
    "LOGIN_THROTTLE_ADDRESS_FAILURES": 5,
    "LOGIN_THROTTLE_WINDOW": 60,
    "LOGIN_THROTTLE_DELAY": 1,
    "LOGIN_THROTTLE_MAX_DELAY": 4,
}


@pytest.fixture
def clock() -> FakeClock:
    """The apps' clock, moved on by the tests."""
    return FakeClock()


@pytest.fixture
def app(make_app: Callable[..., Flask], clock: FakeClock) -> Flask:
    """An app whose locks last a second (doubling to at most four), on the fake clock."""
    return make_app((), CLOCK=clock, **FAST)


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


def test_failures_lock_the_account_even_for_the_right_password_then_it_opens_again(client, session, clock):
    make_user(session, "li@example.com", ["sales"])
    for _ in range(2):
        assert "Wrong e-mail or password." in attempt(client, "li@example.com", "wrong-1").get_data(as_text=True)
    third = attempt(client, "li@example.com", "wrong-1")
    assert third.status_code == 429 and "Too many failed logins" in third.get_data(as_text=True)
    refused = attempt(client, "li@example.com", PASSWORD)
    assert refused.status_code == 429, "the right password must not get through a lock"
    assert refused.headers["Retry-After"] == "2"
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
    # The refused attempt counted too, so the lock grew to 2 s: still locked a moment before.
    clock.advance(1.9)
    assert attempt(client, "li@example.com", PASSWORD).status_code == 429
    clock.advance(4.1)  # that refusal made it 4 s after it
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


# --- the table does not grow without bound; old attempts go; the delay reaches the cap ---


def attempts_from(app: Flask, address: str) -> int:
    """How many attempts ``app``'s database keeps for ``address``."""
    with app.extensions["ordo"].read_sessions() as db:
        return len(db.scalars(select(LoginAttempt.id).where(LoginAttempt.client_address == address)).all())


def test_attempts_refused_while_the_address_is_locked_add_no_rows(make_app: Callable[..., Flask], clock):
    app = make_app((), CLOCK=clock, **(FAST | {"LOGIN_THROTTLE_FAILURES": 100, "LOGIN_THROTTLE_ADDRESS_FAILURES": 2}))
    client = app.test_client()
    with app.extensions["ordo"].sessions() as db:
        make_user(db, "target@example.com", ["sales"])
    attempt(client, "a@example.com", "wrong-1", address="10.7.0.1")
    assert attempt(client, "b@example.com", "wrong-1", address="10.7.0.1").status_code == 429
    assert attempts_from(app, "10.7.0.1") == 2
    for n in range(8):
        assert attempt(client, f"c{n}@example.com", "wrong-1", address="10.7.0.1").status_code == 429
    assert attempt(client, "target@example.com", PASSWORD, address="10.7.0.1").status_code == 429
    assert attempts_from(app, "10.7.0.1") == 2, "a locked address hammering away must add no rows"


def test_attempts_refused_for_a_locked_account_still_count_from_an_open_address(app, client, session):
    """The account's lock keeps growing while guessing goes on from addresses not locked."""
    make_user(session, "sun@example.com", ["sales"])
    for n in range(3):
        attempt(client, "sun@example.com", "wrong-1", address=f"10.8.0.{n}")
    refused = attempt(client, "sun@example.com", "wrong-1", address="10.8.0.9")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 2
    assert attempts_from(app, "10.8.0.9") == 1


def test_old_attempts_are_deleted_on_any_attempt_whoever_makes_it(make_app: Callable[..., Flask], clock):
    tiny = {"LOGIN_THROTTLE_RETENTION": 1, "LOGIN_THROTTLE_WINDOW": 0.5, "LOGIN_THROTTLE_MAX_DELAY": 1}
    app = make_app((), CLOCK=clock, **(FAST | tiny))
    client = app.test_client()
    attempt(client, "old@example.com", "wrong-1", address="10.6.0.1")
    attempt(client, "old2@example.com", "wrong-1", address="10.6.0.2")
    assert attempts_from(app, "10.6.0.1") == 1
    clock.advance(1.2)
    attempt(client, "young@example.com", "wrong-1", address="10.6.0.3")  # neither the e-mail nor the address
    attempt(client, "young2@example.com", "wrong-1", address="10.6.0.4")
    assert attempts_from(app, "10.6.0.1") == attempts_from(app, "10.6.0.2") == 0
    assert attempts_from(app, "10.6.0.3") == attempts_from(app, "10.6.0.4") == 1, "recent ones stay"


def test_prune_deletes_only_what_is_older_than_the_retention(session):
    from core.db import utcnow
    from core.security.throttle import ThrottleSettings, prune

    settings = ThrottleSettings(retention=3600, window=60, max_delay=60)
    now = utcnow()
    ages = [7200, 5000, 3601, 3500, 10, 0]
    session.add_all(
        LoginAttempt(at=now - dt.timedelta(seconds=age), email=f"p{age}@example.com", client_address="10.5.0.1")
        for age in ages
    )
    session.flush()
    assert prune(session, settings, now=now) == 3
    kept = session.scalars(select(LoginAttempt.email).where(LoginAttempt.client_address == "10.5.0.1")).all()
    assert sorted(kept) == ["p0@example.com", "p10@example.com", "p3500@example.com"]
    assert prune(session, settings, now=now) == 0
    session.rollback()


def test_the_delay_reaches_the_cap_even_when_each_lock_outlasts_the_window(make_app: Callable[..., Flask], clock):
    """A patient guesser who waits out every lock: the delay still doubles to the cap and stays
    there (before, the failures fell out of the window and the count started afresh)."""
    slow = {"LOGIN_THROTTLE_FAILURES": 2, "LOGIN_THROTTLE_WINDOW": 0.5, "LOGIN_THROTTLE_MAX_DELAY": 2}
    app = make_app((), CLOCK=clock, **(FAST | {"LOGIN_THROTTLE_ADDRESS_FAILURES": 100} | slow))
    client = app.test_client()
    client.get("/lang/en")
    with app.extensions["ordo"].sessions() as db:
        make_user(db, "patient@example.com", ["sales"])
    assert attempt(client, "patient@example.com", "wrong-1").status_code == 200
    clock.advance(0.1)
    second = attempt(client, "patient@example.com", "wrong-1")
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    clock.advance(1.05)  # the lock has just ended: more than the window after the last failure
    third = attempt(client, "patient@example.com", "wrong-1")
    assert third.status_code == 429, "a failure right after a lock continues the run"
    assert third.headers["Retry-After"] == "2"
    clock.advance(2.05)
    fourth = attempt(client, "patient@example.com", "wrong-1")
    assert fourth.status_code == 429 and fourth.headers["Retry-After"] == "2", "capped, and it stays"


def test_with_the_default_settings_a_patient_guesser_reaches_the_hour_and_stays_there(session):
    """The lock computed at each moment (``now`` given, no clock mocked) for failures made
    each as soon as the previous lock ended: 30 s doubling to one hour, then one hour each."""
    from core.db import utcnow
    from core.security.throttle import ThrottleSettings, lockout

    settings = ThrottleSettings()
    email, address = "patient@example.com", "10.4.0.1"
    at = utcnow() - dt.timedelta(days=3)
    delays = []
    for n in range(40):
        assert lockout(session, email, address, settings, now=at) is None, n
        session.add(LoginAttempt(at=at, email=email, client_address=address, succeeded=False))
        session.flush()
        lock = lockout(session, email, address, settings, now=at)
        if lock is None:
            at += dt.timedelta(seconds=1)  # the first four: a second apart
            continue
        delays.append((lock.until - at).total_seconds())
        at = lock.until + dt.timedelta(milliseconds=1)
    assert delays[:9] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert set(delays[7:]) == {3600}, "the hour holds however long guessing goes on (older rows left out too)"
    # A quiet window after the lock ends starts afresh.
    at += dt.timedelta(seconds=settings.window + 1)
    session.add(LoginAttempt(at=at, email=email, client_address=address, succeeded=False))
    session.flush()
    assert lockout(session, email, address, settings, now=at) is None
    session.rollback()


# --- passwords too long to be worth hashing --------------------------------------------


def test_the_password_policy_refuses_more_than_1024_characters():
    from core.security.passwords import MAX_LENGTH, PasswordPolicyError, check_policy, hash_password

    assert MAX_LENGTH == 1024
    check_policy("a1" * 512)  # exactly 1024: accepted
    for too_long in ("a1" * 512 + "x", "a1" * 50_000):
        with pytest.raises(PasswordPolicyError, match="at most 1024"):
            check_policy(too_long)
        with pytest.raises(PasswordPolicyError):
            hash_password(too_long)


def test_a_huge_password_at_login_is_refused_without_hashing_it(client, session):
    from core.security.passwords import hash_password, verify_password

    stored = hash_password("a1" * 512)
    assert verify_password(stored, "a1" * 512)
    assert not verify_password(stored, "a1" * 512 + "x")
    make_user(session, "huge@example.com", ["sales"])
    response = attempt(client, "huge@example.com", "a1" * 50_000)
    assert response.status_code == 200 and "Wrong e-mail or password." in response.get_data(as_text=True)

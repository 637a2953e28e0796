"""Login sessions end for real: a session cookie is signed but kept by nobody on the server,
so logging out (and password resets and deactivation, through
:func:`core.security.sessions.end_sessions`) raises the user's session epoch and every
cookie issued before stops working — on every device, a replayed copy included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.security.sessions import end_sessions, parse_session_id
from core.testing import PASSWORD, FakeClock, csrf_token, login, make_user

EMAIL = "chen@example.com"


def logged_in_cookie(client: FlaskClient) -> str:
    """The value of ``client``'s session cookie (after logging in)."""
    cookie = client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def replay(app_client: FlaskClient, value: str) -> FlaskClient:
    """A fresh client of the same app carrying a copy of a session cookie."""
    other = app_client.application.test_client()
    other.set_cookie("session", value)
    return other


def can_see_orders(client: FlaskClient) -> bool:
    """Whether ``client`` is let into a screen that needs a login (not sent to log in)."""
    response = client.get("/orders")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and "/login" in response.headers["Location"], response.status_code
    return False


def logout(client: FlaskClient) -> None:
    """Log ``client`` out through the screen's form (with its CSRF token)."""
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/orders")})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def user(session: Session) -> User:
    """A sales user who logs in with :data:`PASSWORD`."""
    return make_user(session, EMAIL, ["sales"])


def test_a_cookie_saved_before_logout_no_longer_works_after_it(client: FlaskClient, user: User):
    login(client, EMAIL, PASSWORD)
    saved = logged_in_cookie(client)
    copy = replay(client, saved)
    assert can_see_orders(copy), "a copy of the cookie works while the session lasts"
    logout(client)
    assert not can_see_orders(client)
    assert not can_see_orders(replay(client, saved)), "the cookie from before logout must be dead"
    assert not can_see_orders(copy)
    # The browser's own jar too: put the old cookie back into it.
    client.set_cookie("session", saved)
    assert not can_see_orders(client)


def test_logging_out_on_one_device_ends_the_session_on_every_device(client: FlaskClient, user: User):
    phone = client.application.test_client()
    login(client, EMAIL, PASSWORD)
    login(phone, EMAIL, PASSWORD)
    assert can_see_orders(client) and can_see_orders(phone)
    logout(client)
    assert not can_see_orders(phone)


def test_a_new_login_after_logout_gets_a_working_session(client: FlaskClient, user: User):
    login(client, EMAIL, PASSWORD)
    old = logged_in_cookie(client)
    logout(client)
    login(client, EMAIL, PASSWORD)
    assert can_see_orders(client)
    assert can_see_orders(replay(client, logged_in_cookie(client)))
    assert not can_see_orders(replay(client, old))


def test_logging_in_starts_a_fresh_session_keeping_only_the_language(client: FlaskClient, user: User):
    client.get("/lang/en")
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
        before["_fresh"] = False
    login(client, EMAIL, PASSWORD)
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after["lang"] == "en"
        assert after["_user_id"] == f"{user.id}:0"
        assert after["_fresh"] is True


def test_end_sessions_ends_them_for_password_resets_and_deactivation(client: FlaskClient, session: Session, user: User):
    """What the access service calls when a password is reset or a user deactivated."""
    login(client, EMAIL, PASSWORD)
    saved = logged_in_cookie(client)
    end_sessions(session, user)
    session.commit()
    assert user.session_epoch == 1
    assert not can_see_orders(client)
    assert not can_see_orders(replay(client, saved))
    login(client, EMAIL, PASSWORD)
    assert can_see_orders(client)


def test_end_sessions_counts_each_call(session: Session, user: User):
    end_sessions(session, user)
    end_sessions(session, user)
    session.commit()
    session.expire_all()
    assert session.scalar(select(User.session_epoch).where(User.id == user.id)) == 2
    assert user.get_id() == f"{user.id}:2"


@pytest.mark.parametrize(
    "user_id",
    ["{id}", "{id}:", ":0", "{id}:1", "{id}:-0", "{id}:0:0", "x:0", "{id}:x", "{id}:٠", "99999999999999999999:0", ""],
)
def test_a_malformed_or_stale_session_id_logs_nobody_in(client: FlaskClient, user: User, user_id: str):
    login(client, EMAIL, PASSWORD)  # a real session (its protection checks pass), then its id altered
    with client.session_transaction() as cookie:
        cookie["_user_id"] = user_id.format(id=user.id)
    assert not can_see_orders(client)


def test_a_well_formed_current_session_id_is_accepted(client: FlaskClient, user: User):
    """The counterpart of the test above: the same cookie with the current epoch works."""
    login(client, EMAIL, PASSWORD)
    with client.session_transaction() as cookie:
        assert cookie["_user_id"] == f"{user.id}:0"
    assert can_see_orders(client)


def test_parse_session_id():
    assert parse_session_id("12:3") == (12, 3)
    assert parse_session_id("12") is None
    assert parse_session_id("12:3:4") is None
    assert parse_session_id("１２:3") is None
    assert parse_session_id(f"{2**63}:0") is None
    assert parse_session_id("0:0") is None


@pytest.mark.req("CORE-4")
@pytest.mark.parametrize("how", ["reset_password", "deactivate"])
def test_an_administrators_reset_or_deactivation_logs_the_user_out(
    client: FlaskClient, session: Session, user: User, admin: User, how: str
):
    from core.services.access import reset_password, set_user_active

    login(client, EMAIL, PASSWORD)
    assert can_see_orders(client)
    session.rollback()  # a fresh transaction: the login wrote since this session last read
    if how == "reset_password":
        reset_password(session, admin, user, {"password": "brand-new-pass-2"})
    else:
        set_user_active(session, admin, user, False)
    session.commit()
    assert not can_see_orders(client)


# --- idle and absolute timeouts (a fake clock, no waiting) -------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """The clock of :func:`timed_app`, moved on by the tests."""
    return FakeClock()


@pytest.fixture
def timed_client(make_app: Callable[..., Flask], clock: FakeClock) -> FlaskClient:
    """A client of an app on the fake clock, with the default timeouts, and a sales user."""
    app = make_app((), CLOCK=clock)
    with app.extensions["ordo"].sessions() as db:
        make_user(db, EMAIL, ["sales"])
    client = app.test_client()
    client.get("/lang/en")
    return client


def sent_to_login(response: Any, back: str | None = "/orders") -> bool:
    """Whether ``response`` sends the browser to log in (coming back to ``back``)."""
    if response.status_code != 302:
        return False
    location = urlsplit(response.headers["Location"])
    return location.path == "/login" and (back is None or parse_qs(location.query).get("next") == [back])


@pytest.mark.req("CORE-3")
def test_a_session_idle_for_30_minutes_is_logged_out_with_a_message(timed_client: FlaskClient, clock: FakeClock):
    login(timed_client, EMAIL, PASSWORD)
    saved = logged_in_cookie(timed_client)
    for _ in range(3):  # in use: each request keeps it alive, beyond 30 minutes in all
        clock.advance(minutes=29)
        assert can_see_orders(timed_client)
    clock.advance(minutes=30, seconds=31)
    expired = timed_client.get("/orders")
    assert sent_to_login(expired), expired.headers.get("Location")
    page = timed_client.get(expired.headers["Location"]).get_data(as_text=True)
    assert "Your session has expired; please log in again." in page
    assert not can_see_orders(timed_client), "logged out, not just sent away once"
    assert not can_see_orders(replay(timed_client, saved)), "the signed times travel with a copied cookie"
    login(timed_client, EMAIL, PASSWORD)
    assert can_see_orders(timed_client)


@pytest.mark.req("CORE-3")
def test_a_session_ends_12_hours_after_login_however_busy(timed_client: FlaskClient, clock: FakeClock):
    login(timed_client, EMAIL, PASSWORD)
    for _ in range(35):  # a request every 20 minutes for 11 h 40 min
        clock.advance(minutes=20)
        assert can_see_orders(timed_client)
    clock.advance(minutes=20, seconds=1)
    assert sent_to_login(timed_client.get("/orders"))


@pytest.mark.req("CORE-3")
def test_a_form_posted_into_an_expired_session_saves_nothing(timed_client: FlaskClient, clock: FakeClock):
    login(timed_client, EMAIL, PASSWORD)
    token = csrf_token(timed_client, "/orders")
    clock.advance(hours=1)
    response = timed_client.post("/logout", data={"csrf_token": token})
    assert sent_to_login(response, back=None) and "next=" not in response.headers["Location"]


@pytest.mark.req("CORE-3")
def test_the_api_answers_401_to_an_expired_cookie_session(timed_client: FlaskClient, clock: FakeClock):
    login(timed_client, EMAIL, PASSWORD)
    assert timed_client.get("/api/v1/orders").status_code == 200
    clock.advance(minutes=31)
    response = timed_client.get("/api/v1/orders")
    assert response.status_code == 401 and response.is_json


def test_the_timeouts_are_settable_and_checked(make_app: Callable[..., Flask], clock: FakeClock):
    app = make_app((), CLOCK=clock, SESSION_IDLE_MINUTES=5, SESSION_ABSOLUTE_HOURS=1)
    with app.extensions["ordo"].sessions() as db:
        make_user(db, EMAIL, ["sales"])
    client = app.test_client()
    login(client, EMAIL, PASSWORD)
    clock.advance(minutes=4)
    assert can_see_orders(client)
    clock.advance(minutes=5, seconds=31)
    assert not can_see_orders(client)
    with pytest.raises(ValueError, match="SESSION_IDLE_MINUTES"):
        make_app((), SESSION_IDLE_MINUTES=0)
    with pytest.raises(ValueError, match="SESSION_ABSOLUTE_HOURS"):
        make_app((), SESSION_ABSOLUTE_HOURS=-1)


def test_a_session_without_its_times_is_not_accepted(client: FlaskClient, user: User):
    login(client, EMAIL, PASSWORD)
    with client.session_transaction() as cookie:
        del cookie["_login_at"]
    assert not can_see_orders(client)


def test_the_expiry_message_is_in_chinese_for_a_chinese_screen(timed_client: FlaskClient, clock: FakeClock):
    login(timed_client, EMAIL, PASSWORD)
    timed_client.get("/lang/zh_CN")
    clock.advance(hours=1)
    page = timed_client.get("/orders", follow_redirects=True).get_data(as_text=True)
    assert "会话已过期，请重新登录。" in page


@pytest.mark.req("CORE-3")
def test_the_session_cookie_changes_at_login_and_the_one_from_before_logs_nobody_in(client: FlaskClient, user: User):
    client.get("/lang/en")
    before = logged_in_cookie(client)
    login(client, EMAIL, PASSWORD)
    after = logged_in_cookie(client)
    assert after != before
    assert can_see_orders(client) and not can_see_orders(replay(client, before))

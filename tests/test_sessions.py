"""Login sessions end for real: a session cookie is signed but kept by nobody on the server,
so logging out (and password resets and deactivation, through
:func:`core.security.sessions.end_sessions`) raises the user's session epoch and every
cookie issued before stops working — on every device, a replayed copy included.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.security.sessions import end_sessions, parse_session_id
from core.testing import PASSWORD, csrf_token, login, make_user

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

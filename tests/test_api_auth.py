"""API authentication: bearer tokens (missing, wrong, malformed, expired, revoked) and login sessions.

Every refusal is a JSON 401 in the error envelope, never a redirect to the login
screen, and a refused write leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint as FlaskBlueprint
from flask import Flask
from flask.testing import FlaskClient
from flask_login import login_required
from flask_smorest import Blueprint
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from core.models import ApiToken, Order, User
from core.security.tokens import create_token
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_token, login, order_payload, token_for
from core.web import OrdoState


def orders_in(state: OrdoState) -> int:
    """How many orders the database holds (read on a connection of its own)."""
    with state.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Order)) or 0


def assert_401(response: TestResponse) -> dict[str, Any]:
    """Assert a JSON 401 in the envelope with a bearer challenge; return the error."""
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error = response.get_json()["error"]
    assert error["code"] == "unauthorized"
    assert list(error["details"]) == ["Authorization"]
    return error


ENDPOINTS = [
    ("GET", "/api/v1/orders"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders/1"),
    ("PATCH", "/api/v1/orders/1"),
    ("GET", "/api/v1/orders/1/actions"),
    ("POST", "/api/v1/orders/1/actions/submit"),
    ("GET", "/api/v1/orders/1/history"),
    ("GET", "/api/v1/customers"),
    ("POST", "/api/v1/customers"),
    ("GET", "/api/v1/customers/1"),
    ("PATCH", "/api/v1/customers/1"),
    ("POST", "/api/v1/customers/1/deactivate"),
    ("POST", "/api/v1/customers/1/reactivate"),
    ("GET", "/api/v1/products"),
    ("POST", "/api/v1/products"),
    ("GET", "/api/v1/products/1"),
    ("PATCH", "/api/v1/products/1"),
    ("POST", "/api/v1/products/1/deactivate"),
    ("POST", "/api/v1/products/1/reactivate"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_credentials(client: FlaskClient, seed, method: str, path: str):
    # Writes without a bearer token meet the CSRF check first; still 401, not 400.
    error = assert_401(client.open(path, method=method, json={}))
    assert error["message"] == "a valid bearer token (or login session) is required"


@pytest.mark.req("CORE-4")
@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer ordo_not-a-real-token", id="wrong-token"),
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Token abc", id="other-scheme"),
        pytest.param("Basic YWRtaW5AZXhhbXBsZS5jb206YWRtaW4tcGFzcy0x", id="basic"),
    ],
)
def test_bad_credentials_are_refused_and_write_nothing(client: FlaskClient, seed, state: OrdoState, header: str):
    assert_401(client.get("/api/v1/orders", headers={"Authorization": header}))
    assert_401(client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": header}))
    assert orders_in(state) == 0


def test_a_revoked_token_is_refused(client: FlaskClient, session, admin, seed, state: OrdoState):
    token = token_for(session, admin)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/orders", headers=headers).status_code == 200
    session.execute(update(ApiToken).values(revoked_at=dt.datetime.now(dt.UTC)))
    session.commit()
    assert_401(client.get("/api/v1/orders", headers=headers))
    assert_401(client.post("/api/v1/orders", json=order_payload(), headers=headers))
    assert orders_in(state) == 0


def test_an_expired_token_is_refused(client: FlaskClient, session, admin, seed, state: OrdoState):
    expired = create_token(session, admin, name="old", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    current = create_token(session, admin, name="new", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    session.commit()
    assert_401(client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": f"Bearer {expired}"}))
    assert orders_in(state) == 0
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {current}"}).status_code == 200


def test_a_deactivated_users_token_is_refused(client: FlaskClient, session, admin, seed):
    token = token_for(session, admin)
    session.execute(update(User).where(User.email == ADMIN_EMAIL).values(active=False))
    session.commit()
    assert_401(client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}))


def test_a_login_session_works_and_its_writes_need_the_csrf_token(client: FlaskClient, seed, state: OrdoState):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert client.get("/api/v1/orders").status_code == 200

    without = client.post("/api/v1/orders", json=order_payload())
    assert without.status_code == 400
    assert without.get_json()["error"]["code"] == "csrf_failed"
    assert list(without.get_json()["error"]["details"]) == ["X-CSRFToken"]
    assert orders_in(state) == 0

    token = csrf_token(client, "/login")
    with_token = client.post("/api/v1/orders", json=order_payload(), headers={"X-CSRFToken": token})
    assert with_token.status_code == 201
    assert orders_in(state) == 1


def test_a_bad_token_is_not_rescued_by_a_login_session(client: FlaskClient, seed):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert_401(client.get("/api/v1/orders", headers={"Authorization": "Bearer ordo_wrong"}))


def test_login_required_answers_json_on_api_paths_and_redirects_on_screens(make_app: Callable[..., Flask]):
    app = make_app()
    api_probe = Blueprint("api_probe", __name__, url_prefix="/api/v1/probe")
    screen_probe = FlaskBlueprint("screen_probe", __name__, url_prefix="/probe")

    @api_probe.route("")
    @login_required
    def api_view() -> str:
        return "secret"

    @screen_probe.route("")
    @login_required
    def screen_view() -> str:
        return "secret"

    app.extensions["ordo_api"].register_blueprint(api_probe)
    app.register_blueprint(screen_probe)
    client = app.test_client()

    assert_401(client.get("/api/v1/probe"))
    screen = client.get("/probe")
    assert screen.status_code == 302
    assert "/login" in screen.headers["Location"]


def test_unknown_api_paths_and_methods_answer_in_the_envelope(client: FlaskClient, session, admin):
    headers = {"Authorization": f"Bearer {token_for(session, admin)}"}
    missing = client.get("/api/v1/nowhere", headers=headers)
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "not_found")
    wrong = client.delete("/api/v1/orders", headers=headers)
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(client: FlaskClient, session, admin, seed, scheme: str):
    token = token_for(session, admin)
    response = client.get("/api/v1/orders", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200, response.get_json()
    # A write with the token needs no CSRF token whatever the scheme's case.
    created = client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": f"{scheme} {token}"})
    assert created.status_code == 201, created.get_json()


def test_a_write_with_both_a_login_cookie_and_a_token_does_not_wait_on_itself(client, session, admin, seed):
    """The token's use is recorded before the request's own write session takes the lock."""
    token = token_for(session, admin)
    session.execute(update(ApiToken).values(last_used_at=None))
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)

    response = client.post("/api/v1/orders", json=order_payload(), headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 201, response.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(ApiToken.last_used_at)) is not None

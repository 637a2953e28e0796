"""The users, roles, permissions and tokens API: every operation, every refusal, tokens' life (CORE-3, CORE-4)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from core.models import ApiToken, AuditLog, Role, RolePermission, User
from core.models.user import user_role
from core.security.passwords import verify_password
from core.testing import ADMIN_EMAIL, ApiCaller, make_order, make_user, token_for
from core.web import OrdoState

Caller = ApiCaller


def counts(state: OrdoState) -> dict[str, int]:
    """Rows of every access-control table and the audit log."""
    with state.engine.connect() as conn:
        tables = [User.__table__, Role.__table__, RolePermission.__table__, ApiToken.__table__, user_role]
        result = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in tables}
        result["audit_log"] = conn.scalar(select(func.count()).select_from(AuditLog))
        return result


def error(response: TestResponse, status: int) -> dict[str, Any]:
    """The error body of a response answered with ``status``."""
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def no_secrets(body: Any) -> None:
    """No password, password hash or token hash anywhere in an answer."""
    flat = str(body)
    assert "password" not in flat and "$argon2" not in flat and "token_hash" not in flat


@pytest.fixture
def api(client: FlaskClient, session, admin, seed) -> Caller:
    """The administrator calling the API."""
    return Caller(client, token_for(session, admin))


def caller(client: FlaskClient, session, email: str, roles: list[str], **kwargs: Any) -> Caller:
    return Caller(client, token_for(session, make_user(session, email, roles, **kwargs)))


NEW_USER = {
    "email": "liu@example.com",
    "name": "刘洋",
    "language": "en",
    "branch": "CD",
    "department": "sales",
    "roles": ["sales"],
    "password": "liu-pass-1",
}


# --- users ---------------------------------------------------------------------------------


@pytest.mark.req("CORE-3")
def test_users_are_created_read_changed_and_listed(api, session, seed):
    response = api.post("/api/v1/users", json=NEW_USER)
    assert response.status_code == 201
    body = response.get_json()
    no_secrets(body)
    assert {k: body[k] for k in ("email", "name", "branch", "department", "customer", "roles", "active")} == {
        "email": "liu@example.com",
        "name": "刘洋",
        "branch": "CD",
        "department": "sales",
        "customer": None,
        "roles": ["sales"],
        "active": True,
    }
    assert response.headers["Location"].endswith(f"/api/v1/users/{body['id']}")
    assert api.get(f"/api/v1/users/{body['id']}").get_json() == body
    changed = api.patch(f"/api/v1/users/{body['id']}", json={"roles": ["sales", "order_clerk"], "branch": None})
    assert changed.status_code == 200
    assert changed.get_json()["roles"] == ["order_clerk", "sales"] and changed.get_json()["branch"] is None
    listing = api.get("/api/v1/users?role=order_clerk").get_json()
    assert [u["email"] for u in listing["items"]] == ["liu@example.com"]
    assert [u["email"] for u in api.get("/api/v1/users?q=liu").get_json()["items"]] == ["liu@example.com"]
    assert api.get("/api/v1/users?branch=CD").get_json()["items"] == []
    page = api.get("/api/v1/users?limit=1").get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    no_secrets(api.get("/api/v1/users").get_json())
    session.commit()
    entries = session.scalars(
        select(AuditLog.action).where(AuditLog.entity == "user", AuditLog.entity_id == body["id"])
    ).all()
    assert entries == ["create", "update"]


@pytest.mark.req("CORE-3")
def test_a_user_is_deactivated_reactivated_and_given_a_new_password(api, client, session, seed):
    user = make_user(session, "zhou@example.com", ["sales"])
    zhou = Caller(client, token_for(session, user))
    assert zhou.get(f"/api/v1/users/{user.id}").status_code == 200
    assert api.post(f"/api/v1/users/{user.id}/deactivate").get_json()["active"] is False
    assert error(zhou.get(f"/api/v1/users/{user.id}"), 401)["code"] == "unauthorized"
    assert api.post(f"/api/v1/users/{user.id}/reactivate").get_json()["active"] is True
    assert zhou.get(f"/api/v1/users/{user.id}").status_code == 200
    response = api.post(f"/api/v1/users/{user.id}/password", json={"password": "zhou-new-9"})
    assert response.status_code == 200
    no_secrets(response.get_json())
    session.commit()
    stored = session.scalars(select(User).where(User.id == user.id).execution_options(populate_existing=True)).one()
    assert verify_password(stored.password_hash, "zhou-new-9")


@pytest.mark.req("CORE-3")
@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW_USER, "roles": ["nobody"]}, "roles", "Unknown role(s) 'nobody'"),
        ({**NEW_USER, "email": ADMIN_EMAIL}, "email", "A user with e-mail admin@example.com exists already."),
        ({**NEW_USER, "password": "no-digits-here"}, "password", "A password needs at least one letter and one digit."),
        ({**NEW_USER, "password": "Password1"}, "password", "This password is one of the most common passwords"),
        ({**NEW_USER, "roles": ["customer"]}, "customer", "A portal user"),
        ({**NEW_USER, "password_hash": "x"}, "password_hash", "Unknown field."),
    ],
)
def test_bad_user_input_answers_422_and_changes_nothing(api, state, body, field, message):
    before = counts(state)
    details = error(api.post("/api/v1/users", json=body), 422)["details"]
    assert details[field][0].startswith(message), details
    assert counts(state) == before


@pytest.mark.req("CORE-3")
def test_the_last_administrator_cannot_be_deactivated_or_lose_the_admin_role(api, admin, state):
    before = counts(state)
    body = error(api.post(f"/api/v1/users/{admin.id}/deactivate"), 409)
    assert body["code"] == "last_administrator" and "last active administrator" in body["message"]
    body = error(api.patch(f"/api/v1/users/{admin.id}", json={"roles": ["sales"]}), 409)
    assert body["code"] == "last_administrator"
    assert counts(state) == before


@pytest.mark.req("CORE-3")
def test_a_user_changes_their_own_name_but_not_their_roles(client, session, seed, state):
    user = make_user(session, "clerk@example.com", ["order_clerk"])
    clerk = Caller(client, token_for(session, user))
    before = counts(state)
    body = error(clerk.patch(f"/api/v1/users/{user.id}", json={"roles": ["admin"]}), 403)
    assert body["message"] == "you cannot change your own roles without the permission 'users.manage'"
    assert counts(state) == before
    response = clerk.patch(f"/api/v1/users/{user.id}", json={"name": "Zhou Clerk"})
    assert response.status_code == 200 and response.get_json()["name"] == "Zhou Clerk"


@pytest.mark.req("CORE-3")
def test_a_non_administrator_gets_403_on_the_admin_api(client, session, seed, admin):
    sales = caller(client, session, "sales@example.com", ["sales"])
    for method, path in [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", f"/api/v1/users/{admin.id}"),
        ("PATCH", f"/api/v1/users/{admin.id}"),
        ("POST", f"/api/v1/users/{admin.id}/deactivate"),
        ("POST", f"/api/v1/users/{admin.id}/password"),
        ("GET", "/api/v1/roles"),
        ("POST", "/api/v1/roles"),
        ("GET", "/api/v1/roles/1"),
        ("PATCH", "/api/v1/roles/1"),
        ("DELETE", "/api/v1/roles/1"),
        ("GET", "/api/v1/permissions"),
        ("GET", "/api/v1/tokens?all=true"),
    ]:
        body = {"name": "x", "password": "x-pass-123"} if method in ("POST", "PATCH") else None
        assert sales.call(method, path, json=body).status_code == 403, (method, path)
    assert client.get("/api/v1/users").status_code == 401


# --- roles and permissions ----------------------------------------------------------------------


@pytest.mark.req("CORE-4")
def test_roles_are_created_read_changed_and_deleted(api, session, state):
    body = {"code": "cd_lead", "name": "CD lead", "data_scope": "branch", "permissions": ["orders.read"]}
    response = api.post("/api/v1/roles", json=body)
    assert response.status_code == 201
    role = response.get_json()
    assert {k: role[k] for k in ("code", "data_scope", "permissions", "builtin", "users")} == {
        "code": "cd_lead",
        "data_scope": "branch",
        "permissions": ["orders.read"],
        "builtin": False,
        "users": 0,
    }
    assert api.get(f"/api/v1/roles/{role['id']}").get_json() == role
    changed = api.patch(f"/api/v1/roles/{role['id']}", json={"permissions": ["orders.read", "orders.create"]})
    assert changed.get_json()["permissions"] == ["orders.create", "orders.read"]
    assert "cd_lead" in {r["code"] for r in api.get("/api/v1/roles").get_json()["items"]}
    assert api.delete(f"/api/v1/roles/{role['id']}").status_code == 200
    assert api.get(f"/api/v1/roles/{role['id']}").status_code == 404
    session.commit()
    actions = session.scalars(select(AuditLog.action).where(AuditLog.entity == "role")).all()
    assert actions == ["create", "update", "delete"]


@pytest.mark.req("CORE-4")
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"permissions": ["orders.teleport"]}, "permissions", "Unknown permission 'orders.teleport'."),
        (
            {"permissions": ["inspection.report.create"]},
            "permissions",
            "Permission 'inspection.report.create' belongs to plugin 'inspection', which is not enabled.",
        ),
        ({"data_scope": "galaxy"}, "data_scope", "Unknown data scope 'galaxy'"),
        ({"code": "admin"}, "code", "Role code 'admin' is taken."),
    ],
)
def test_bad_role_input_answers_422_and_changes_nothing(api, state, change, field, message):
    before = counts(state)
    body = {"code": "new_role", "name": "New", "data_scope": "own", "permissions": [], **change}
    details = error(api.post("/api/v1/roles", json=body), 422)["details"]
    assert details[field][0].startswith(message), details
    role_id = api.get("/api/v1/roles").get_json()["items"][0]["id"]
    if field != "code":
        assert error(api.patch(f"/api/v1/roles/{role_id}", json=change), 422)["details"][field][0].startswith(message)
    assert counts(state) == before


@pytest.mark.req("CORE-4")
def test_builtin_and_held_roles_are_not_deleted(api, session, state):
    sales_id = session.scalar(select(Role.id).where(Role.code == "sales"))
    session.rollback()
    before = counts(state)
    assert error(api.delete(f"/api/v1/roles/{sales_id}"), 409)["code"] == "builtin_role"
    role = api.post("/api/v1/roles", json={"code": "held", "name": "Held"}).get_json()
    make_user(session, "h@example.com", ["held"])
    assert error(api.delete(f"/api/v1/roles/{role['id']}"), 409)["code"] == "role_in_use"
    assert api.get(f"/api/v1/roles/{role['id']}").get_json()["users"] == 1
    after = counts(state)
    assert after["role"] == before["role"] + 1 and after["user"] == before["user"] + 1


@pytest.mark.req("CORE-4")
def test_the_permissions_registry_is_grouped_by_plugin(make_app, session):
    app = make_app(["inspection"])
    state = app.extensions["ordo"]
    with state.sessions() as s:
        admin = s.scalar(select(User).where(User.email == ADMIN_EMAIL))
        assert admin is not None
        token = token_for(s, admin)
    groups = Caller(app.test_client(), token).get("/api/v1/permissions").get_json()["groups"]
    assert [g["plugin"] for g in groups] == ["core", "inspection"]
    inspection = {p["code"]: p for p in groups[1]["permissions"]}
    assert inspection["inspection.report.read"]["label"] == "See inspection reports"
    assert {"orders.read", "users.manage"} <= {p["code"] for p in groups[0]["permissions"]}


@pytest.mark.req("CORE-4")
def test_a_role_edit_takes_effect_on_the_next_api_request(api, client, session, seed, admin):
    make_order(session, admin)
    role = api.post(
        "/api/v1/roles", json={"code": "r", "name": "R", "data_scope": "all", "permissions": ["orders.read"]}
    )
    reader = caller(client, session, "reader@example.com", ["r"])
    assert len(reader.get("/api/v1/orders").get_json()["items"]) == 1
    api.patch(f"/api/v1/roles/{role.get_json()['id']}", json={"data_scope": "own"})
    assert reader.get("/api/v1/orders").get_json()["items"] == []
    api.patch(f"/api/v1/roles/{role.get_json()['id']}", json={"permissions": []})
    assert error(reader.get("/api/v1/orders"), 403)["code"] == "forbidden"


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.req("CORE-3")
def test_a_token_is_shown_once_stored_hashed_and_records_its_last_use(client, session, seed, state):
    clerk = caller(client, session, "clerk@example.com", ["order_clerk"])
    response = clerk.post("/api/v1/tokens", json={"name": "ERP", "expires_days": 7})
    assert response.status_code == 201
    created = response.get_json()
    token = created["token"]
    assert created["state"] == "active" and created["last_used_at"] is None and created["expires_at"]
    assert "token_hash" not in created
    with state.engine.connect() as conn:
        stored = conn.scalar(select(ApiToken.token_hash).where(ApiToken.id == created["id"]))
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    listing = clerk.get("/api/v1/tokens").get_json()["items"]
    assert token not in str(listing) and "token_hash" not in str(listing)
    assert {t["name"] for t in listing} == {"ERP", "test"}
    fresh = Caller(client, token)
    assert fresh.get("/api/v1/tokens").status_code == 200
    used = next(t for t in fresh.get("/api/v1/tokens").get_json()["items"] if t["id"] == created["id"])
    assert used["last_used_at"] is not None


@pytest.mark.req("CORE-3")
def test_revoked_and_expired_tokens_answer_401(client, session, seed, state):
    clerk = caller(client, session, "clerk@example.com", ["order_clerk"])
    first = clerk.post("/api/v1/tokens", json={"name": "one"}).get_json()
    second = clerk.post("/api/v1/tokens", json={"name": "two"}).get_json()
    revoked = clerk.delete(f"/api/v1/tokens/{first['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert error(Caller(client, first["token"]).get("/api/v1/tokens"), 401)["code"] == "unauthorized"
    with state.engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        conn.execute(update(ApiToken).where(ApiToken.id == second["id"]).values(expires_at=past))
    assert error(Caller(client, second["token"]).get("/api/v1/tokens"), 401)["code"] == "unauthorized"
    states = {t["name"]: t["state"] for t in clerk.get("/api/v1/tokens").get_json()["items"]}
    assert states == {"one": "revoked", "two": "expired", "test": "active"}


@pytest.mark.req("CORE-3")
def test_only_the_owner_or_an_administrator_revokes_a_token(api, client, session, seed):
    clerk = caller(client, session, "clerk@example.com", ["order_clerk"])
    sales = caller(client, session, "sales@example.com", ["sales"])
    token = clerk.post("/api/v1/tokens", json={"name": "mine"}).get_json()
    assert error(sales.delete(f"/api/v1/tokens/{token['id']}"), 404)["code"] == "not_found"
    assert Caller(client, token["token"]).get("/api/v1/tokens").status_code == 200
    everyone = api.get("/api/v1/tokens?all=true").get_json()["items"]
    assert {"clerk@example.com", "sales@example.com"} <= {t["user_email"] for t in everyone}
    assert api.delete(f"/api/v1/tokens/{token['id']}").get_json()["state"] == "revoked"
    assert Caller(client, token["token"]).get("/api/v1/tokens").status_code == 401


@pytest.mark.req("CORE-3")
def test_a_token_expiring_in_the_past_is_refused(api, state):
    before = counts(state)
    details = error(api.post("/api/v1/tokens", json={"expires_at": "2001-01-01T00:00:00Z"}), 422)["details"]
    assert details == {"expires_at": ["The expiry must lie in the future."]}
    assert "expires_days" in error(api.post("/api/v1/tokens", json={"expires_days": 99999}), 422)["details"]
    assert counts(state) == before

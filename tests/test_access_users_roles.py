"""Users, roles and API tokens through the services and the admin screens (CORE-3, CORE-4, CORE-6).

Every refusal says why and leaves every table as it was; every change is in the audit
trail with its before and after; role edits reach their holders on the next request.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import ApiToken, AuditLog, Role, RolePermission, User
from core.models.user import user_role
from core.security.passwords import verify_password
from core.services import ServiceError
from core.services.access import (
    create_api_token,
    create_role,
    create_user,
    delete_role,
    get_api_token,
    permission_groups,
    reset_password,
    revoke_api_token,
    set_user_active,
    tokens_query,
    update_role,
    update_user,
)
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, csrf_token, login, make_user
from core.web import OrdoState

NEW_USER = {
    "email": "Liu@Example.com",
    "name": "刘洋",
    "language": "en",
    "branch": "CD",
    "department": "sales",
    "roles": ["sales"],
    "password": "liu-pass-1",
}


def counts(state: OrdoState) -> dict[str, int]:
    """Rows of every access-control table and the audit log, read on a connection of its own."""
    with state.engine.connect() as conn:
        tables = [User.__table__, Role.__table__, RolePermission.__table__, ApiToken.__table__, user_role]
        result = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in tables}
        result["audit_log"] = conn.scalar(select(func.count()).select_from(AuditLog))
        return result


def refused(call: Any, *args: Any) -> ServiceError:
    """The ServiceError ``call(*args)`` raises."""
    with pytest.raises(ServiceError) as info:
        call(*args)
    return info.value


def audit_rows(session: Session, entity: str, action: str) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.entity == entity, AuditLog.action == action)))


def text(response: Any) -> str:
    """The page's HTML with entities decoded."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any], follow: bool = True) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(
        path, data={**data, "csrf_token": csrf_token(client, "/account/tokens")}, follow_redirects=follow
    )


def fresh(session: Session, model: Any, **where: Any) -> Any:
    """One stored row as it is now."""
    session.commit()
    row = session.scalars(select(model).filter_by(**where).execution_options(populate_existing=True)).one_or_none()
    session.commit()
    return row


# --- services: users ---------------------------------------------------------------------


@pytest.mark.req("CORE-3")
def test_creating_a_user_stores_a_slow_hash_the_roles_and_an_audit_entry(session, admin, seed):
    user = create_user(session, admin, NEW_USER)
    session.commit()
    assert user.email == "liu@example.com"
    assert (user.name, user.language, user.branch_id, user.department_id) == (
        "刘洋",
        "en",
        seed["cd"].id,
        seed["sales_dept"].id,
    )
    assert [r.code for r in user.roles] == ["sales"]
    assert user.password_hash.startswith("$argon2id$") and verify_password(user.password_hash, "liu-pass-1")
    (entry,) = audit_rows(session, "user", "create")
    assert entry.actor_id == admin.id and entry.entity_id == user.id
    assert entry.changes["roles"] == ["sales"] and entry.changes["branch_id"] == seed["cd"].id
    assert "liu-pass-1" not in str(entry.changes) and user.password_hash not in str(entry.changes)


@pytest.mark.req("CORE-3")
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"roles": ["sales", "wizard"]}, "roles", "Unknown role(s) 'wizard'; known roles: admin, auditor"),
        ({"email": "ADMIN@example.com"}, "email", "A user with e-mail admin@example.com exists already."),
        ({"password": "short1"}, "password", "A password needs at least 8 characters."),
        ({"password": "lettersonly"}, "password", "A password needs at least one letter and one digit."),
        ({"branch": "XX"}, "branch", "Unknown branch 'XX'."),
        ({"department": "nope"}, "department", "Unknown department 'nope'."),
        ({"roles": ["customer"]}, "customer", "A portal user (a role with the customer scope) needs a customer."),
        ({"customer": "C001"}, "customer", "Only portal users (a role with the customer scope) are linked"),
        ({"language": "fr"}, "language", "Must be one of"),
    ],
)
def test_bad_user_input_is_refused_beside_its_field_and_nothing_is_stored(
    session, admin, seed, state, change, field, message
):
    before = counts(state)
    error = refused(create_user, session, admin, {**NEW_USER, **change})
    assert error.status == 422
    assert any(m.startswith(message) for m in error.details[field]), error.details
    assert not session.new
    session.rollback()
    assert counts(state) == before


@pytest.mark.req("CORE-3")
def test_a_portal_user_is_linked_to_its_customer(session, admin, seed):
    user = create_user(session, admin, {**NEW_USER, "roles": ["customer"], "customer": "C002", "branch": None})
    assert user.customer_id == seed["remote"].id


@pytest.mark.req("CORE-3")
def test_changing_a_user_records_before_and_after(session, admin, seed):
    user = make_user(session, "wang@example.com", ["sales"], branch=seed["hq"])
    update_user(session, admin, user, {"roles": ["sales_manager", "sales"], "branch": "CD", "language": "zh_CN"})
    session.commit()
    assert sorted(r.code for r in user.roles) == ["sales", "sales_manager"] and user.branch_id == seed["cd"].id
    (entry,) = audit_rows(session, "user", "update")
    assert entry.changes["roles"] == [["sales"], ["sales", "sales_manager"]]
    assert entry.changes["branch_id"] == [seed["hq"].id, seed["cd"].id]
    assert entry.changes["language"] == ["en", "zh_CN"]


@pytest.mark.req("CORE-3")
def test_without_users_manage_only_ones_own_name_and_language_change(session, admin, seed, state):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    other = make_user(session, "other@example.com", ["sales"])
    before = counts(state)
    error = refused(update_user, session, clerk, clerk, {"roles": ["order_clerk", "admin"]})
    assert error.status == 403
    assert error.message == "you cannot change your own roles without the permission 'users.manage'"
    error = refused(update_user, session, clerk, clerk, {"branch": "CD"})
    assert error.status == 403 and "branch" in error.message
    assert refused(update_user, session, clerk, other, {"name": "X"}).status == 403
    session.rollback()
    assert counts(state) == before
    assert sorted(r.code for r in fresh(session, User, email="clerk@example.com").roles) == ["order_clerk"]
    clerk = fresh(session, User, email="clerk@example.com")
    update_user(session, clerk, clerk, {"name": "Clerk Zhou", "language": "zh_CN"})
    session.commit()
    assert (clerk.name, clerk.language) == ("Clerk Zhou", "zh_CN")


@pytest.mark.req("CORE-3")
def test_the_last_active_administrator_is_neither_deactivated_nor_stripped(session, admin, seed, state):
    before = counts(state)
    error = refused(set_user_active, session, admin, admin, False)
    assert error.status == 409 and error.code == "last_administrator"
    assert error.message.startswith("admin@example.com is the last active administrator")
    error = refused(update_user, session, admin, admin, {"roles": ["sales"]})
    assert error.status == 409 and "last active administrator" in error.message
    session.rollback()
    assert counts(state) == before
    assert fresh(session, User, email=ADMIN_EMAIL).active
    # With a second administrator, the first may go.
    second = make_user(session, "boss2@example.com", ["admin"])
    set_user_active(session, second, fresh(session, User, email=ADMIN_EMAIL), False)
    session.commit()
    assert not fresh(session, User, email=ADMIN_EMAIL).active
    assert [e.changes for e in audit_rows(session, "user", "deactivate")] == [{"active": [True, False]}]


@pytest.mark.req("CORE-3")
def test_a_deactivated_user_is_reactivated(session, admin):
    user = make_user(session, "x@example.com", ["sales"])
    set_user_active(session, admin, user, False)
    set_user_active(session, admin, user, True)
    session.commit()
    assert user.active
    assert len(audit_rows(session, "user", "activate")) == 1


@pytest.mark.req("CORE-3")
def test_an_administrator_resets_a_password_and_the_policy_applies(session, admin, state):
    user = make_user(session, "x@example.com", ["sales"])
    before = counts(state)
    error = refused(reset_password, session, admin, user, {"password": "abc"})
    assert error.details == {"password": ["A password needs at least 8 characters."]}
    session.rollback()
    assert counts(state) == before
    reset_password(session, admin, user, {"password": "new-pass-22"})
    session.commit()
    assert verify_password(user.password_hash, "new-pass-22") and not verify_password(user.password_hash, PASSWORD)
    (entry,) = audit_rows(session, "user", "reset_password")
    assert "new-pass-22" not in str(entry.changes)
    assert refused(reset_password, session, user, admin, {"password": "x-pass-123"}).status == 403


# --- services: roles -----------------------------------------------------------------------


@pytest.mark.req("CORE-4")
def test_a_role_is_created_with_permissions_and_a_scope(session, admin, state):
    role = create_role(
        session,
        admin,
        state.registry,
        {"code": "cd_reader", "name": "CD reader", "data_scope": "branch", "permissions": ["orders.read"]},
    )
    session.commit()
    assert (role.data_scope, role.builtin, role.permission_codes) == ("branch", False, {"orders.read"})
    (entry,) = audit_rows(session, "role", "create")
    assert entry.changes == {
        "code": "cd_reader",
        "name": "CD reader",
        "data_scope": "branch",
        "permissions": ["orders.read"],
    }


@pytest.mark.req("CORE-4")
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"permissions": ["orders.read", "orders.fly"]}, "permissions", "Unknown permission 'orders.fly'."),
        (
            {"permissions": ["inspection.report.read"]},
            "permissions",
            "Permission 'inspection.report.read' belongs to plugin 'inspection', which is not enabled.",
        ),
        ({"data_scope": "planet"}, "data_scope", "Unknown data scope 'planet'; choose one of own, department"),
        ({"code": "sales"}, "code", "Role code 'sales' is taken."),
        ({"code": "Bad Code"}, "code", "Use 1–64 lower-case letters"),
    ],
)
def test_bad_role_input_is_refused_and_nothing_is_stored(session, admin, state, change, field, message):
    before = counts(state)
    data = {"code": "new_role", "name": "New", "data_scope": "own", "permissions": ["orders.read"], **change}
    error = refused(create_role, session, admin, state.registry, data)
    assert error.status == 422
    assert any(m.startswith(message) for m in error.details[field]), error.details
    session.rollback()
    assert counts(state) == before


@pytest.mark.req("CORE-4")
def test_changing_a_role_replaces_its_permissions_and_records_both_sets(session, admin, state):
    role = session.scalar(select(Role).where(Role.code == "warehouse"))
    assert role is not None
    before = sorted(role.permission_codes)
    update_role(session, admin, state.registry, role, {"data_scope": "all", "permissions": ["orders.read"]})
    session.commit()
    assert fresh(session, Role, code="warehouse").permission_codes == {"orders.read"}
    (entry,) = audit_rows(session, "role", "update")
    assert entry.changes == {"data_scope": ["branch", "all"], "permissions": [before, ["orders.read"]]}
    error = refused(update_role, session, admin, state.registry, role, {"permissions": ["nope.nope"]})
    assert error.details == {"permissions": ["Unknown permission 'nope.nope'."]}


@pytest.mark.req("CORE-4")
def test_a_disabled_plugins_permission_stays_on_its_role_but_is_not_granted_anew(session, admin, state):
    role = session.scalar(select(Role).where(Role.code == "warehouse"))
    assert role is not None
    role.permissions.append(RolePermission(code="inspection.report.read"))
    session.commit()
    update_role(session, admin, state.registry, role, {"permissions": ["orders.read", "inspection.report.read"]})
    update_role(session, admin, state.registry, role, {"permissions": ["orders.read"]})
    session.commit()
    assert fresh(session, Role, code="warehouse").permission_codes == {"orders.read", "inspection.report.read"}
    sales = fresh(session, Role, code="sales")
    error = refused(update_role, session, admin, state.registry, sales, {"permissions": ["inspection.report.read"]})
    assert "which is not enabled" in error.details["permissions"][0]


@pytest.mark.req("CORE-4")
def test_nobody_loses_the_last_way_to_manage_users(session, admin, state):
    role = fresh(session, Role, code="admin")
    before = counts(state)
    codes = sorted(role.permission_codes - {"users.manage"})
    error = refused(update_role, session, admin, state.registry, role, {"permissions": codes})
    assert error.status == 409 and "users.manage" in error.message
    session.rollback()
    assert counts(state) == before


@pytest.mark.req("CORE-4")
def test_only_unheld_roles_that_ordo_did_not_ship_are_deleted(session, admin, state):
    builtin = fresh(session, Role, code="finance")
    error = refused(delete_role, session, admin, builtin)
    assert (error.status, error.message) == (409, "role 'finance' ships with Ordo and cannot be deleted")
    role = create_role(session, admin, state.registry, {"code": "temp", "name": "Temp", "permissions": []})
    session.commit()
    holder = make_user(session, "h@example.com", ["temp"])
    before = counts(state)
    error = refused(delete_role, session, admin, role)
    assert error.message == "role 'temp' is held by 1 user(s); take it from them first"
    session.rollback()
    assert counts(state) == before
    update_user(session, admin, holder, {"roles": []})
    delete_role(session, admin, fresh(session, Role, code="temp"))
    session.commit()
    assert fresh(session, Role, code="temp") is None
    assert audit_rows(session, "role", "delete")[0].changes["code"] == "temp"


@pytest.mark.req("CORE-4")
def test_the_registry_is_grouped_by_plugin(make_app):
    app = make_app(["inspection"])
    groups = permission_groups(app.extensions["ordo"].registry)
    assert [g.plugin for g in groups] == ["core", "inspection"]
    assert all(p.plugin == g.plugin for g in groups for p in g.permissions)
    assert "inspection.report.read" in {p.code for p in groups[1].permissions}
    assert "orders.read" in {p.code for p in groups[0].permissions}


# --- services: tokens ------------------------------------------------------------------------


@pytest.mark.req("CORE-3")
def test_a_token_is_returned_once_and_stored_only_as_its_hash(session, admin, state):
    row, token = create_api_token(session, admin, {"name": "ERP", "expires_days": 30})
    session.commit()
    assert token.startswith("ordo_") and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with state.engine.connect() as conn:
        stored = [str(v) for v in conn.execute(select(ApiToken.__table__)).one()]
    assert token not in stored
    assert row.expires_at is not None and 29 <= (row.expires_at - row.created_at).days <= 30
    (entry,) = audit_rows(session, "api_token", "create")
    assert token not in str(entry.changes) and entry.changes["name"] == "ERP"


@pytest.mark.req("CORE-3")
def test_tokens_are_listed_and_revoked_by_their_owner_or_an_administrator(session, admin, state):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    other = make_user(session, "other@example.com", ["sales"])
    mine, _ = create_api_token(session, clerk, {"name": "mine"})
    theirs, _ = create_api_token(session, other, {"name": "theirs"})
    session.commit()
    assert [t.name for t in session.scalars(tokens_query(clerk))] == ["mine"]
    assert {t.name for t in session.scalars(tokens_query(admin, everyone=True))} >= {"mine", "theirs"}
    assert refused(tokens_query, clerk, True).status == 403
    assert refused(get_api_token, session, clerk, theirs.id).status == 404
    revoke_api_token(session, clerk, get_api_token(session, clerk, mine.id))
    revoke_api_token(session, admin, get_api_token(session, admin, theirs.id))
    session.commit()
    assert mine.revoked_at is not None and theirs.revoked_at is not None
    assert len(audit_rows(session, "api_token", "revoke")) == 2


@pytest.mark.req("CORE-3")
def test_a_token_cannot_expire_in_the_past(session, admin, state):
    before = counts(state)
    error = refused(create_api_token, session, admin, {"expires_at": "2020-01-01T00:00:00+00:00"})
    assert error.details == {"expires_at": ["The expiry must lie in the future."]}
    error = refused(create_api_token, session, admin, {"expires_days": 0})
    assert "expires_days" in error.details
    session.rollback()
    assert counts(state) == before


# --- screens -------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin, seed, session):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


@pytest.mark.req("CORE-3")
def test_a_non_administrator_gets_403_on_the_admin_screens_and_no_menu_entries(client, session, seed):
    make_user(session, "sales@example.com", ["sales"])
    login(client, "sales@example.com", PASSWORD)
    for path in ("/admin/users", "/admin/users/new", "/admin/users/1/edit", "/admin/roles", "/admin/roles/1/edit"):
        assert client.get(path).status_code == 403, path
    assert post(client, "/admin/users/1/active", {"active": "0"}, follow=False).status_code == 403
    assert post(client, "/admin/roles/new", {"code": "x", "name": "x"}, follow=False).status_code == 403
    page = text(client.get("/account/tokens"))
    assert ">API tokens</a>" in page and ">Users</a>" not in page and ">Roles</a>" not in page


@pytest.mark.req("CORE-3")
def test_an_administrator_creates_a_user_on_the_screen(as_admin, session, seed):
    page = text(as_admin.get("/admin/users/new"))
    assert 'name="roles" value="sales_manager"' in page and ">Own branch</span>" in page
    form = {**NEW_USER, "roles": ["sales", "order_clerk"]}
    page = text(post(as_admin, "/admin/users/new", form))
    assert "User liu@example.com was created." in page
    user = fresh(session, User, email="liu@example.com")
    assert sorted(r.code for r in user.roles) == ["order_clerk", "sales"] and user.branch_id == seed["cd"].id
    listing = text(as_admin.get("/admin/users?branch=CD"))
    assert 'data-user="liu@example.com"' in listing and 'data-user="admin@example.com"' not in listing
    assert 'data-user="liu@example.com"' not in text(as_admin.get("/admin/users?role=admin"))


@pytest.mark.req("CORE-3")
def test_the_user_form_shows_refusals_and_saves_nothing(as_admin, session, state):
    before = counts(state)
    response = post(as_admin, "/admin/users/new", {**NEW_USER, "password": "weak"})
    assert response.status_code == 422
    page = text(response)
    assert "Nothing was saved" in page and "A password needs at least 8 characters." in page
    response = post(as_admin, "/admin/users/new", {**NEW_USER, "roles": ["sales", "ghost"]})
    assert response.status_code == 422 and "Unknown role(s) 'ghost'" in text(response)
    response = post(as_admin, "/admin/users/new", {**NEW_USER, "email": ADMIN_EMAIL})
    assert "A user with e-mail admin@example.com exists already." in text(response)
    assert counts(state) == before


@pytest.mark.req("CORE-3")
def test_an_administrator_edits_deactivates_and_resets_a_password_on_the_screen(as_admin, session, seed):
    user = make_user(session, "zhou@example.com", ["sales"])
    page = text(as_admin.get(f"/admin/users/{user.id}/edit"))
    assert 'data-confirm="Deactivate user zhou@example.com?' in page
    form = {"name": "Zhou", "language": "en", "branch": "CD", "department": "", "customer": "", "active": "y"}
    page = text(post(as_admin, f"/admin/users/{user.id}/edit", {**form, "roles": ["warehouse"]}))
    assert "User zhou@example.com was saved." in page
    stored = fresh(session, User, email="zhou@example.com")
    assert [r.code for r in stored.roles] == ["warehouse"] and stored.branch_id == seed["cd"].id
    page = text(post(as_admin, f"/admin/users/{user.id}/password", {"password": "zhou-new-1", "confirm": "zhou-new-2"}))
    assert "The two passwords differ." in page
    page = text(post(as_admin, f"/admin/users/{user.id}/password", {"password": "zhou-new-1", "confirm": "zhou-new-1"}))
    assert "The password of zhou@example.com was changed." in page
    assert verify_password(fresh(session, User, email="zhou@example.com").password_hash, "zhou-new-1")
    page = text(post(as_admin, f"/admin/users/{user.id}/active", {"active": "0"}))
    assert "was deactivated" in page and not fresh(session, User, email="zhou@example.com").active


@pytest.mark.req("CORE-3")
def test_the_screen_refuses_to_deactivate_the_last_administrator(as_admin, session, admin, state):
    before = counts(state)
    page = text(post(as_admin, f"/admin/users/{admin.id}/active", {"active": "0"}))
    assert "admin@example.com is the last active administrator" in page
    form = {"name": "Admin", "language": "en", "branch": "", "department": "", "customer": "", "active": "y"}
    response = post(as_admin, f"/admin/users/{admin.id}/edit", {**form, "roles": ["sales"]})
    assert response.status_code == 422 and "give the admin role to another active user first" in text(response)
    assert counts(state) == before


@pytest.mark.req("CORE-4")
def test_the_role_screen_groups_permissions_by_plugin_with_their_labels(make_app, session):
    app = make_app(["inspection"])
    client = app.test_client()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = text(client.get("/admin/roles/new"))
    core = page.index('data-plugin="core"')
    inspection = page.index('data-plugin="inspection"')
    assert core < page.index('value="orders.read"') < inspection < page.index('value="inspection.report.read"')
    assert "Read orders" in page and "See inspection reports" in page
    assert 'type="radio" name="data_scope" value="branch"' in page and "Orders of the user's branch." in page


@pytest.mark.req("CORE-4")
def test_an_administrator_creates_changes_and_deletes_a_role_on_the_screen(as_admin, session, state):
    form = {"code": "viewer", "name": "Viewer", "data_scope": "all", "permissions": ["orders.read", "customers.read"]}
    page = text(post(as_admin, "/admin/roles/new", form))
    assert "Role viewer was created." in page and 'data-role="viewer"' in page
    role = fresh(session, Role, code="viewer")
    assert role.permission_codes == {"orders.read", "customers.read"} and role.data_scope == "all"
    page = text(
        post(
            as_admin,
            f"/admin/roles/{role.id}/edit",
            {"name": "Viewer", "data_scope": "own", "permissions": ["orders.read"]},
        )
    )
    assert "Role viewer was saved." in page
    assert fresh(session, Role, code="viewer").permission_codes == {"orders.read"}
    edit = text(as_admin.get(f"/admin/roles/{role.id}/edit"))
    assert 'data-confirm="Delete role viewer? This cannot be undone."' in edit
    page = text(post(as_admin, f"/admin/roles/{role.id}/delete", {}))
    assert "Role viewer was deleted." in page and fresh(session, Role, code="viewer") is None
    builtin = fresh(session, Role, code="sales")
    assert "Delete role" not in text(as_admin.get(f"/admin/roles/{builtin.id}/edit"))
    assert "ships with Ordo" in text(post(as_admin, f"/admin/roles/{builtin.id}/delete", {}))


@pytest.mark.req("CORE-4")
def test_the_role_screen_refuses_bad_input_and_saves_nothing(as_admin, session, state):
    before = counts(state)
    form = {"code": "x1", "name": "X", "data_scope": "all", "permissions": ["orders.read", "inspection.report.read"]}
    response = post(as_admin, "/admin/roles/new", form)
    assert response.status_code == 422
    assert "Permission inspection.report.read belongs to plugin inspection, which is not enabled." in text(response)
    response = post(as_admin, "/admin/roles/new", {**form, "permissions": ["orders.read"], "data_scope": "moon"})
    assert response.status_code == 422 and "Unknown data scope moon; choose one of" in text(response)
    assert counts(state) == before


@pytest.mark.req("CORE-4")
def test_a_role_edit_takes_effect_on_the_holders_next_request(app, as_admin, session, seed):
    form = {"code": "reader", "name": "Reader", "data_scope": "all", "permissions": ["orders.read"]}
    post(as_admin, "/admin/roles/new", form)
    make_user(session, "reader@example.com", ["reader"])
    reader = app.test_client()
    login(reader, "reader@example.com", PASSWORD)
    assert reader.get("/orders").status_code == 200
    assert ">Orders</a>" in text(reader.get("/account/tokens"))
    role = fresh(session, Role, code="reader")
    post(as_admin, f"/admin/roles/{role.id}/edit", {**form, "permissions": ["customers.read"]})
    assert reader.get("/orders").status_code == 403
    page = text(reader.get("/account/tokens"))
    assert ">Orders</a>" not in page and ">Customers</a>" in page


@pytest.mark.req("CORE-3")
def test_the_token_screen_shows_a_new_token_once_and_revokes_it(client, session, seed):
    make_user(session, "clerk@example.com", ["order_clerk"])
    login(client, "clerk@example.com", PASSWORD)
    page = text(post(client, "/account/tokens", {"name": "ERP sync", "expires": "30"}))
    stored = fresh(session, ApiToken, name="ERP sync")
    token = next(w for w in page.split('"') if w.startswith("ordo_") and len(w) > 30)
    assert hashlib.sha256(token.encode()).hexdigest() == stored.token_hash
    assert "data-copy-target" in page and "it is not shown again" in page
    listing = text(client.get("/account/tokens"))
    assert token not in listing and f"{stored.prefix}…" in listing and 'id="other-tokens"' not in listing
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert f'data-confirm="Revoke token {stored.prefix}…?' in listing
    page = text(post(client, f"/account/tokens/{stored.id}/revoke", {}))
    assert "was revoked" in page and f'data-token="{stored.id}" data-state="revoked"' in page
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.req("CORE-3")
def test_administrators_see_and_revoke_everyones_tokens_others_get_404(app, as_admin, session, seed):
    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    row, _ = create_api_token(session, clerk, {"name": "clerk-token"})
    session.commit()
    page = text(as_admin.get("/account/tokens"))
    assert 'id="other-tokens"' in page and "clerk@example.com" in page
    sales = app.test_client()
    make_user(session, "sales@example.com", ["sales"])
    login(sales, "sales@example.com", PASSWORD)
    assert "clerk-token" not in text(sales.get("/account/tokens"))
    assert post(sales, f"/account/tokens/{row.id}/revoke", {}, follow=False).status_code == 404
    assert fresh(session, ApiToken, name="clerk-token").revoked_at is None
    post(as_admin, f"/account/tokens/{row.id}/revoke", {})
    assert fresh(session, ApiToken, name="clerk-token").revoked_at is not None


@pytest.mark.req("CORE-6")
def test_a_chinese_administrator_reads_the_screens_and_refusals_in_chinese(client, session, seed):
    make_user(session, "li@example.com", ["admin"], language="zh_CN")
    login(client, "li@example.com", PASSWORD)
    page = text(client.get("/admin/roles/new"))
    assert "新建角色" in page and "本分公司" in page and "查看订单" in page and "Read orders" not in page
    response = post(client, "/admin/users/new", {**NEW_USER, "password": "short1"})
    assert "密码至少需要 8 个字符。" in text(response)
    response = post(
        client, "/admin/roles/new", {"code": "x", "name": "X", "data_scope": "all", "permissions": ["nope.x"]}
    )
    assert "未知权限 nope.x。" in text(response)
    assert ">用户</a>" in text(client.get("/account/tokens")) and "API 令牌" in text(client.get("/account/tokens"))

"""Looking after accounts is not a way up: a ``users.manage`` holder outside the admin
role cannot make anyone (themselves included) mightier than they are, nor touch an
administrator's account; the admin role always keeps ``users.manage``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.models import AuditLog, Role, RolePermission, User
from core.services import ServiceError
from core.services.access import create_role, create_user, reset_password, set_user_active, update_role, update_user
from core.testing import make_user

pytestmark = pytest.mark.req("CORE-3")


@pytest.fixture
def hr(session, seed):
    """A personnel officer: may manage users and read orders of their branch, nothing else."""
    role = Role(code="hr", name="HR", data_scope="branch")
    role.permissions = [RolePermission(code="users.manage"), RolePermission(code="orders.read")]
    session.add(role)
    session.commit()
    return make_user(session, "hr@example.com", ["hr"], branch=seed["hq"])


def _admin_role(session) -> Role:
    return session.scalars(select(Role).where(Role.code == "admin")).one()


def _audit_count(session) -> int:
    return session.scalar(select(func.count()).select_from(AuditLog))


def test_a_manager_cannot_make_themselves_administrator(session, state, hr):
    before = _audit_count(session)
    with pytest.raises(ServiceError) as refused:
        update_user(session, hr, hr, {"roles": ["hr", "admin"]})
    assert refused.value.status == 403
    session.rollback()
    assert [r.code for r in session.get(User, hr.id).roles] == ["hr"]
    assert _audit_count(session) == before


def test_a_manager_grants_only_what_they_hold(session, state, hr, seed):
    with pytest.raises(ServiceError, match=r"settings\.manage"):
        create_role(session, hr, state.registry, {"code": "x", "name": "X", "permissions": ["settings.manage"]})
    with pytest.raises(ServiceError, match="wider than yours"):
        create_role(session, hr, state.registry, {"code": "y", "name": "Y", "data_scope": "all"})
    with pytest.raises(ServiceError, match="finance"):
        create_user(session, hr, {"email": "f@example.com", "password": "pass-word-1", "roles": ["finance"]})
    narrow = create_role(session, hr, state.registry, {"code": "reader", "name": "R", "permissions": ["orders.read"]})
    assert narrow.permission_codes == {"orders.read"}


def test_a_manager_cannot_widen_a_role_they_hold(session, state, hr):
    hr_role = session.scalars(select(Role).where(Role.code == "hr")).one()
    with pytest.raises(ServiceError, match="hold yourself"):
        update_role(
            session, hr, state.registry, hr_role, {"permissions": ["users.manage", "orders.read", "audit.read"]}
        )


def test_only_administrators_touch_an_administrators_account(session, state, hr, admin):
    for attempt in (
        lambda: reset_password(session, hr, admin, {"password": "taken-over-1"}),
        lambda: set_user_active(session, hr, admin, False),
        lambda: update_user(session, hr, admin, {"branch": "CD"}),
    ):
        with pytest.raises(ServiceError) as refused:
            attempt()
        assert refused.value.status == 403
    session.rollback()
    assert session.get(User, admin.id).active


def test_the_admin_role_keeps_users_manage(session, state, admin):
    codes = sorted(_admin_role(session).permission_codes - {"users.manage"})
    with pytest.raises(ServiceError, match="always keeps"):
        update_role(session, admin, state.registry, _admin_role(session), {"permissions": codes})


def test_a_role_held_by_portal_users_cannot_become_a_staff_scope(session, state, admin, seed):
    make_user(session, "p@example.com", ["customer"], customer=seed["local"])
    portal = session.scalars(select(Role).where(Role.code == "customer")).one()
    with pytest.raises(ServiceError, match="customer scope"):
        update_role(session, admin, state.registry, portal, {"data_scope": "all"})

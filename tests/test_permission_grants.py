"""Permissions that arrive with new code reach their default roles on ``ordo db upgrade``;
ones an administrator took away stay away (CORE-3)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from core import installation
from core.models import KnownPermission, Role, RolePermission

pytestmark = pytest.mark.req("CORE-3")


def _codes(session, role_code: str) -> set[str]:
    role = session.scalar(select(Role).where(Role.code == role_code))
    session.refresh(role)
    return role.permission_codes


def test_upgrade_grants_a_permission_new_to_this_database(state, session):
    # As if the database predates the outbox: neither granted nor known.
    session.execute(delete(RolePermission).where(RolePermission.code == "outbox.manage"))
    session.execute(delete(KnownPermission).where(KnownPermission.code == "outbox.manage"))
    session.commit()
    assert "outbox.manage" not in _codes(session, "admin")

    granted = installation.upgrade(state.engine)

    session.rollback()
    assert granted == ["outbox.manage"]
    assert "outbox.manage" in _codes(session, "admin")
    assert installation.upgrade(state.engine) == []  # known now: nothing more to grant


def test_upgrade_does_not_hand_back_a_permission_the_administrator_removed(state, session):
    session.execute(delete(RolePermission).where(RolePermission.code == "orders.confirm"))
    session.commit()

    assert installation.upgrade(state.engine) == []

    session.rollback()
    assert "orders.confirm" not in _codes(session, "sales_manager")
    assert "orders.confirm" not in _codes(session, "admin")

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


def test_upgrading_an_installation_from_before_known_permissions_keeps_removals(tmp_path):
    """c0005 remembers every permission an existing installation had, even one an
    administrator took away from every role, so the first upgrade does not hand it back."""
    from alembic import command
    from sqlalchemy.orm import Session as OrmSession

    from core import migrate
    from core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    installation.initialise(engine, "boss@example.com", "a-long-pass-1")
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "c0004")
        # As the database was: no outbox yet; the administrator took confirming away.
        conn.execute(delete(RolePermission).where(RolePermission.code.in_(["orders.confirm", "outbox.manage"])))

    granted = installation.upgrade(engine)

    assert "outbox.manage" in granted and "orders.confirm" not in granted

    with OrmSession(engine) as s:
        assert "orders.confirm" not in set(s.scalars(select(RolePermission.code)))
        assert "outbox.manage" in set(s.scalars(select(RolePermission.code)))  # new since c0004
    engine.dispose()

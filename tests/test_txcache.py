"""Values read once per transaction (core.txcache) are never stale for the session that reads them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text, update

from core.installation import set_step_enabled
from core.models import Company, StepSetting
from core.txcache import remembered
from core.workflow import Workflow


@contextmanager
def statements(session, table: str) -> Iterator[list[str]]:
    """The SELECTs reading ``table`` while the block runs."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_value_is_read_once_per_transaction_and_forgotten_at_its_end(session):
    calls: list[int] = []

    def load() -> int:
        calls.append(session.scalar(text("SELECT 1")))
        return len(calls)

    session.commit()
    assert [remembered(session, "k", load, watch=(StepSetting,)) for _ in range(3)] == [1, 1, 1]
    session.commit()
    assert remembered(session, "k", load, watch=(StepSetting,)) == 2  # a new transaction reads anew
    session.rollback()
    assert remembered(session, "k", load, watch=(StepSetting,)) == 3
    assert remembered(session, "k", load, watch=(StepSetting,)) == 3
    session.execute(text("DELETE FROM step_setting WHERE key = 'none'"))  # a statement that may write anything
    assert remembered(session, "k", load, watch=(StepSetting,)) == 4


def test_switched_off_steps_are_read_once_and_a_change_in_the_transaction_is_seen(session, state, admin):
    registry = state.registry
    session.commit()
    with statements(session, "step_setting") as reads:
        for _ in range(3):
            assert "submitted" not in Workflow(registry, session).disabled
        assert len(reads) == 1, "read once for the whole transaction"

        set_step_enabled(session, registry, "submitted", False, admin)
        assert "submitted" in Workflow(registry, session).disabled
        row = session.get(StepSetting, "submitted")
        row.enabled = True  # a change not flushed yet is seen too
        assert "submitted" not in Workflow(registry, session).disabled
        row.enabled = False
        assert "submitted" in Workflow(registry, session).disabled

        savepoint = session.begin_nested()
        set_step_enabled(session, registry, "submitted", True, admin)
        assert "submitted" not in Workflow(registry, session).disabled
        savepoint.rollback()
        assert "submitted" in Workflow(registry, session).disabled  # the savepoint's change is undone

        # Statements that write the table, bypassing the objects, are seen too.
        session.execute(update(StepSetting).where(StepSetting.key == "submitted").values(enabled=True))
        assert "submitted" not in Workflow(registry, session).disabled
        session.execute(text("UPDATE step_setting SET enabled = :off WHERE key = 'submitted'"), {"off": False})
        assert "submitted" in Workflow(registry, session).disabled
    session.rollback()
    assert "submitted" not in Workflow(registry, session).disabled


def test_the_company_is_read_once_per_transaction_and_a_change_in_it_is_seen(session, state):
    from core.calendar import company_week
    from core.company.service import first_company
    from core.services.orders import default_company
    from plugins.intake.pricing import company_currency

    session.commit()
    with statements(session, "company") as reads:
        company = default_company(session)
        assert first_company(session) is company
        assert company_week(session) == (company.id, frozenset({5, 6}))
        assert company_week(session, company.id) == (company.id, frozenset({5, 6}))
        assert company_currency(session) == company.currency == "CNY"
        assert len(reads) == 1, "read once for the whole transaction"

        company.weekend_days = "sun"  # not flushed yet
        company.currency = "USD"
        assert company_week(session) == (company.id, frozenset({6}))
        assert company_currency(session) == "USD"
        session.flush()
        savepoint = session.begin_nested()
        company.weekend_days = "fri,sat,sun"
        session.flush()
        assert company_week(session) == (company.id, frozenset({4, 5, 6}))
        savepoint.rollback()
        assert company_week(session) == (company.id, frozenset({6}))
        session.execute(update(Company).where(Company.id == company.id).values(order_prefix="XY"))
        assert default_company(session).order_prefix == "XY"
    session.rollback()


def test_a_long_lived_session_sees_the_company_another_session_changed(session, state):
    """Sessions keep their objects' attributes across commits; the first read in a transaction refreshes them."""
    from core.calendar import company_week
    from core.services.orders import default_company
    from plugins.intake.pricing import company_currency

    company = default_company(session)
    assert company_week(session)[1] == frozenset({5, 6})
    session.commit()
    with state.sessions() as other, other.begin():
        other.execute(update(Company).where(Company.id == company.id).values(weekend_days="sun", order_prefix="NEW"))
    assert company_week(session)[1] == frozenset({6})
    assert default_company(session) is company and company.order_prefix == "NEW"
    session.commit()
    company.currency = "EUR"  # a change not flushed, read where nothing flushes first
    with session.no_autoflush:
        assert company_currency(session) == "EUR"
    session.rollback()


def test_what_a_user_may_do_is_gathered_once_per_transaction_and_a_change_in_it_is_seen(session, seed):
    from sqlalchemy import delete, select

    from core.models import Role, RolePermission
    from core.testing import make_user

    clerk = make_user(session, "clerk@example.com", ["order_clerk"])
    session.commit()
    with statements(session, "role_permission") as reads:
        assert clerk.can("orders.create") and not clerk.can("settings.manage")
        assert clerk.can("orders.create") and not clerk.can("settings.manage")
        assert len(reads) == 1, "gathered once for the whole transaction"

        role = session.scalars(select(Role).where(Role.code == "order_clerk")).one()
        role.permissions.append(RolePermission(code="settings.manage"))  # not flushed yet
        assert clerk.can("settings.manage")
        session.flush()
        assert clerk.can("settings.manage")
        session.execute(
            delete(RolePermission).where(RolePermission.role_id == role.id, RolePermission.code == "settings.manage")
        )
        session.expire(role, ["permissions"])
        assert not clerk.can("settings.manage")

        admin_role = session.scalars(select(Role).where(Role.code == "admin")).one()
        clerk.roles.append(admin_role)  # a role granted in the transaction
        assert clerk.can("settings.manage")
        assert "settings.manage" in clerk.permission_codes
    session.rollback()
    assert not clerk.can("settings.manage")

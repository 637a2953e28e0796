"""Settings fall back to their registered default and refuse values of the wrong type."""

import pytest

from core.contrib import Setting
from core.plugins import Registry
from core.services import ServiceError
from core.settings import get_setting, set_setting


@pytest.fixture
def registry() -> Registry:
    """A registry carrying one registered setting besides core's contributions."""
    registry = Registry([], installed={})
    registry.settings = {"core.review_days": Setting("core.review_days", int, 3, "Days to review")}
    return registry


def test_default_then_stored_value(session, admin, registry):
    assert get_setting(session, "core.review_days", registry) == 3
    set_setting(session, "core.review_days", 5, admin, registry)
    session.commit()
    assert get_setting(session, "core.review_days", registry) == 5
    with pytest.raises(ServiceError):
        set_setting(session, "core.review_days", "five", admin, registry)
    with pytest.raises(ServiceError):
        set_setting(session, "core.review_days", True, admin, registry)
    with pytest.raises(KeyError):
        get_setting(session, "nope", registry)


def test_sessions_opened_by_the_app_carry_their_registry(session, state):
    assert session.info["ordo_registry"] is state.registry


def test_number_settings_keep_within_their_bounds(session, admin, registry):
    from core.settings import parse_text

    bounded = Setting("core.port", int, 25, "Port", minimum=1, maximum=65535)
    registry.settings = {"core.port": bounded}
    for wrong in (0, -1, 65536, 10**30):
        with pytest.raises(ServiceError):
            set_setting(session, "core.port", wrong, admin, registry)
    set_setting(session, "core.port", 587, admin, registry)
    session.commit()
    assert get_setting(session, "core.port", registry) == 587
    text = Setting("core.terms", str, "1.\n2.", "Terms", multiline=True)
    assert parse_text(text, "a\r\nb\rc ") == "a\nb\nc"  # a text area's CR LF stored as LF


def test_a_whole_float_reads_back_as_a_float(session, admin, registry):
    """SQLite's JSON column gives 2.0 back as 2; a float setting is a float all the same."""
    registry.settings = {"core.tolerance": Setting("core.tolerance", float, 0.5, "Tolerance")}
    set_setting(session, "core.tolerance", 2.0, admin, registry)
    session.commit()
    session.expire_all()
    value = get_setting(session, "core.tolerance", registry)
    assert value == 2.0 and isinstance(value, float)


def test_stored_values_are_read_once_per_transaction_and_never_stale(session, admin, registry, state):
    """One query per transaction for every setting read in it; a change through this session,
    a rolled-back savepoint or another session's commit is seen where it should be."""
    from sqlalchemy import event

    registry.settings = {
        "core.review_days": Setting("core.review_days", int, 3, "Days to review"),
        "core.port": Setting("core.port", int, 25, "Port"),
    }
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM setting_value" in statement:
            reads.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        session.commit()
        for _ in range(3):
            assert get_setting(session, "core.review_days", registry) == 3
            assert get_setting(session, "core.port", registry) == 25
        assert len(reads) == 1, "read once for the whole transaction"

        set_setting(session, "core.review_days", 5, admin, registry)  # this session's change: seen at once
        assert get_setting(session, "core.review_days", registry) == 5
        savepoint = session.begin_nested()
        set_setting(session, "core.port", 587, admin, registry)
        assert get_setting(session, "core.port", registry) == 587
        savepoint.rollback()
        assert get_setting(session, "core.port", registry) == 25
        assert get_setting(session, "core.review_days", registry) == 5
        session.commit()

        with state.sessions() as other, other.begin():  # another session commits a change
            other.info["ordo_registry"] = registry
            set_setting(other, "core.port", 2525, admin, registry)
        assert get_setting(session, "core.port", registry) == 2525  # a new transaction reads anew
    finally:
        event.remove(engine, "before_cursor_execute", count)

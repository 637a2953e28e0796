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

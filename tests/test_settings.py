"""Settings fall back to their registered default and refuse values of the wrong type."""

import pytest

from core.contrib import Setting
from core.plugins import Registry
from core.services import ServiceError
from core.settings import get_setting, set_setting


def _registry_with(setting: Setting) -> Registry:
    registry = Registry([], installed={})
    registry.settings = {setting.key: setting}
    return registry


def test_default_then_stored_value(session, admin):
    registry = _registry_with(Setting("core.review_days", int, 3, "Days to review"))
    assert get_setting(session, registry, "core.review_days") == 3
    set_setting(session, registry, "core.review_days", 5, admin)
    session.commit()
    assert get_setting(session, registry, "core.review_days") == 5
    with pytest.raises(ServiceError):
        set_setting(session, registry, "core.review_days", "five", admin)
    with pytest.raises(ServiceError):
        set_setting(session, registry, "core.review_days", True, admin)
    with pytest.raises(KeyError):
        get_setting(session, registry, "nope")

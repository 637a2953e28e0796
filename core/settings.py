"""Registered settings: read with a default, change with a type check and an audit entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.models import SettingValue, User
from core.plugins import Registry
from core.services import ServiceError, audit


def get_setting(session: Session, registry: Registry, key: str) -> Any:
    """The value of setting ``key``: the stored one, else its registered default."""
    setting = registry.settings.get(key)
    if setting is None:
        raise KeyError(f"no setting {key!r} is registered (is its plugin enabled?)")
    stored = session.get(SettingValue, key)
    return setting.default if stored is None else stored.value


def set_setting(session: Session, registry: Registry, key: str, value: Any, actor: User | None = None) -> None:
    """Store a new value for ``key`` after checking it has the registered type."""
    setting = registry.settings.get(key)
    if setting is None:
        raise ServiceError("invalid", f"no setting {key!r}", {"key": ["Unknown setting."]}, status=422)
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, setting.type) or (setting.type is int and isinstance(value, bool)):
        raise ServiceError(
            "invalid",
            f"setting {key!r} takes a {setting.type.__name__}",
            {"value": [f"Expected {setting.type.__name__}."]},
        )
    stored = session.get(SettingValue, key)
    old = setting.default if stored is None else stored.value
    if stored is None:
        session.add(SettingValue(key=key, value=value))
    else:
        stored.value = value
    audit.record(session, actor, "setting", None, "change", {"key": key, "value": [old, value]})

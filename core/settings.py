"""Registered settings: read with a default, change with a type check and an audit entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.models import SettingValue, User
from core.plugins import Registry
from core.services import ServiceError, audit


def session_registry(session: Session) -> Registry:
    """The registry of the app or command that opened ``session``."""
    registry = session.info.get("ordo_registry")
    if not isinstance(registry, Registry):
        raise RuntimeError("this session was not opened by an Ordo app or command; pass the registry")
    return registry


def get_setting(session: Session, key: str, registry: Registry | None = None) -> Any:
    """The value of setting ``key``: the stored one, else its registered default.

    Hooks call ``get_setting(session, "plugin.key")``: sessions opened by Ordo carry
    their registry, so no registry needs passing around.
    """
    setting = (registry or session_registry(session)).settings.get(key)
    if setting is None:
        raise KeyError(f"no setting {key!r} is registered (is its plugin enabled?)")
    stored = session.get(SettingValue, key)
    return setting.default if stored is None else stored.value


def set_setting(
    session: Session, key: str, value: Any, actor: User | None = None, registry: Registry | None = None
) -> None:
    """Store a new value for ``key`` after checking it has the registered type."""
    setting = (registry or session_registry(session)).settings.get(key)
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

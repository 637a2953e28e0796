"""Registered settings: read with a default, change with a check and an audit entry.

Plugins declare settings through ``ordo_register_settings`` (:class:`core.contrib.Setting`);
administrators change them on the settings screen or through ``/api/v1/settings``. Every
value is checked against its setting's type and choices before anything is stored, a
batch of changes is stored all together or not at all, and a secret (an SMTP password)
is never handed back: screens and the API see :data:`SECRET_MASK` when it is set.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.contrib import Setting
from core.labels import N_
from core.models import SettingValue, User
from core.plugins import Registry
from core.services import ServiceError, audit

#: What screens and the API show instead of a secret that is set.
SECRET_MASK = "********"
#: A whole number as typed on a form: digits with an optional sign, nothing else.
WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]{1,18}$")
#: The longest text a ``str`` setting takes.
MAX_TEXT = 2000

# Messages for people, in English (the API's language); screens translate them.
NOT_BOOL = N_("Expected true or false.")
NOT_INT = N_("Enter a whole number.")
NOT_NUMBER = N_("Enter a number.")
NOT_TEXT = N_("Expected text.")
NOT_A_CHOICE = N_("Choose one of the offered values.")
CONTROL_CHARACTERS = N_("Remove control characters (invisible codes) from this text.")
UNKNOWN_SETTING = N_("Unknown setting.")


class InvalidValue(ValueError):
    """A value a setting does not take; the message says why, for people."""


def session_registry(session: Session) -> Registry:
    """The registry of the app or command that opened ``session``."""
    registry = session.info.get("ordo_registry")
    if not isinstance(registry, Registry):
        raise RuntimeError("this session was not opened by an Ordo app or command; pass the registry")
    return registry


def _setting(session: Session, key: str, registry: Registry | None) -> Setting:
    setting = (registry or session_registry(session)).settings.get(key)
    if setting is None:
        raise ServiceError("invalid", f"no setting {key!r}", {key: [UNKNOWN_SETTING]}, status=422)
    return setting


#: ``session.info`` key of the stored values read in the session's current transaction.
_STORED = "ordo_settings_stored"


def _stored_values(session: Session) -> dict[str, Any]:
    """Every stored setting value, read once per transaction (one query instead of one per call).

    A request reads a dozen settings or more (an order's submission about twenty); the
    values cannot change under a transaction's feet except through this session, so they
    are kept until the transaction ends or the session flushes a changed setting.
    """
    stored = session.info.get(_STORED)
    if stored is None:
        stored = dict(session.execute(select(SettingValue.key, SettingValue.value)).tuples().all())
        session.info[_STORED] = stored
    return stored


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction; a savepoint's end changes nothing
        session.info.pop(_STORED, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_at_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_STORED, None)  # a setting changed in a rolled-back savepoint is gone


@event.listens_for(Session, "after_flush")
def _forget_changed_settings(session: Session, _context: Any) -> None:
    if _STORED in session.info and any(
        isinstance(instance, SettingValue) for instance in (*session.new, *session.dirty, *session.deleted)
    ):
        session.info.pop(_STORED, None)


def get_setting(session: Session, key: str, registry: Registry | None = None) -> Any:
    """The value of setting ``key``: the stored one, else its registered default.

    Hooks call ``get_setting(session, "plugin.key")``: sessions opened by Ordo carry
    their registry, so no registry needs passing around. Secrets are returned in clear
    here (the SMTP sender needs the password); only screens and the API mask them.
    Stored values are read once per transaction (:func:`_stored_values`).
    """
    setting = (registry or session_registry(session)).settings.get(key)
    if setting is None:
        raise KeyError(f"no setting {key!r} is registered (is its plugin enabled?)")
    stored = _stored_values(session)
    value = stored.get(key, setting.default)
    if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
        # SQLite's JSON column has numeric affinity: a stored 2.0 reads back as 2.
        value = float(value)
    return value


def check_value(setting: Setting, value: Any) -> Any:
    """``value`` as ``setting`` stores it, or :class:`InvalidValue` saying why not.

    Types are strict (``"5"`` is no int, ``1`` is no bool); a float setting takes any
    finite number (JSON numbers arrive as ``Decimal``); a ``str`` with ``choices``
    takes only those; text has no control characters besides line breaks and tabs.
    """
    kind = setting.type
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidValue(NOT_BOOL)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(NOT_INT)
        return _within_bounds(setting, value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise InvalidValue(NOT_NUMBER)
        number = float(value)
        if not math.isfinite(number):
            raise InvalidValue(NOT_NUMBER)
        return _within_bounds(setting, number)
    if kind is str:
        if not isinstance(value, str):
            raise InvalidValue(NOT_TEXT)
        if setting.choices and value not in setting.choices:
            raise InvalidValue(NOT_A_CHOICE)
        if len(value) > MAX_TEXT:
            raise InvalidValue(f"Longer than maximum length {MAX_TEXT}.")
        if any((ord(c) < 32 or 0x7F <= ord(c) < 0xA0) and c not in "\n\r\t" for c in value):
            raise InvalidValue(CONTROL_CHARACTERS)
        return value
    if not isinstance(value, kind):
        raise InvalidValue(f"Expected {kind.__name__}.")
    return value


def _within_bounds(setting: Setting, number: Any) -> Any:
    """``number`` if it lies within the setting's ``minimum`` and ``maximum``."""
    if setting.minimum is not None and number < setting.minimum:
        raise InvalidValue(f"At least {_plain(setting.minimum)}.")
    if setting.maximum is not None and number > setting.maximum:
        raise InvalidValue(f"At most {_plain(setting.maximum)}.")
    return number


def _plain(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def parse_text(setting: Setting, raw: str | None) -> Any:
    """A setting's value from a form field's text (``None``: an unticked checkbox).

    For screens: numbers are read from their text, a checkbox is true when ticked; the
    result still goes through :func:`check_value`.
    """
    kind = setting.type
    if kind is bool:
        return raw is not None and raw.strip().lower() in ("1", "on", "true", "yes", "y")
    text = (raw or "").strip()
    if kind is int:
        if not WHOLE_NUMBER.match(text):
            raise InvalidValue(NOT_INT)
        return int(text)
    if kind is float:
        try:
            return check_value(setting, Decimal(text))
        except InvalidOperation:
            raise InvalidValue(NOT_NUMBER) from None
    # Secrets keep every character as typed (a password may start with a space).
    if setting.secret:
        return raw or ""
    # Browsers send a text area's line breaks as CR LF; the stored text uses LF.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def public_value(setting: Setting, value: Any) -> Any:
    """``value`` as screens and the API may show it: a set secret becomes :data:`SECRET_MASK`."""
    if setting.secret:
        return SECRET_MASK if value not in (None, "") else ""
    return value


@dataclass(frozen=True)
class SettingState:
    """A registered setting as the settings screen and API show it (secrets masked)."""

    setting: Setting
    #: The current value, :data:`SECRET_MASK` for a secret that is set.
    value: Any
    #: Whether an administrator stored a value (False: the default applies).
    stored: bool

    @property
    def default(self) -> Any:
        """The registered default (masked too, for a secret)."""
        return public_value(self.setting, self.setting.default)


def setting_states(session: Session, registry: Registry | None = None) -> list[SettingState]:
    """Every registered setting with its current value (masked when secret), grouped by plugin.

    One query for all stored values, however many settings there are.
    """
    settings = (registry or session_registry(session)).settings
    rows = session.scalars(select(SettingValue).where(SettingValue.key.in_(list(settings))))
    stored = {row.key: row.value for row in rows}
    states = [
        SettingState(
            setting,
            public_value(setting, stored.get(key, setting.default)),
            key in stored,
        )
        for key, setting in settings.items()
    ]
    # Core's first, then by plugin; within one, in the order the plugin registered them.
    return sorted(states, key=lambda s: (s.setting.plugin != "core", s.setting.plugin))


def _audit_value(setting: Setting, value: Any) -> Any:
    return public_value(setting, value) if setting.secret else value


def _store(session: Session, setting: Setting, value: Any, actor: User | None) -> bool:
    """Store an already checked ``value``; False (and no audit entry) when nothing changes."""
    session.info.pop(_STORED, None)
    stored = session.get(SettingValue, setting.key)
    old = setting.default if stored is None else stored.value
    if stored is not None and stored.value == value and type(stored.value) is type(value):
        return False
    if stored is None:
        session.add(SettingValue(key=setting.key, value=value))
    else:
        stored.value = value
    audit.record(
        session,
        actor,
        "setting",
        None,
        "change",
        {"key": setting.key, "value": [_audit_value(setting, old), _audit_value(setting, value)]},
    )
    return True


def set_setting(
    session: Session, key: str, value: Any, actor: User | None = None, registry: Registry | None = None
) -> None:
    """Store a new value for ``key`` after checking its type and choices (422 if wrong)."""
    setting = _setting(session, key, registry)
    try:
        checked = check_value(setting, value)
    except InvalidValue as exc:
        raise ServiceError("invalid", f"setting {key!r}: {exc}", {key: [str(exc)]}, status=422) from None
    _store(session, setting, checked, actor)


def reset_setting(session: Session, key: str, actor: User | None = None, registry: Registry | None = None) -> bool:
    """Forget the stored value of ``key`` so its default applies again; False if none was stored."""
    setting = _setting(session, key, registry)
    session.info.pop(_STORED, None)
    stored = session.get(SettingValue, key)
    if stored is None:
        return False
    old = stored.value
    session.delete(stored)
    audit.record(
        session,
        actor,
        "setting",
        None,
        "reset",
        {"key": key, "value": [_audit_value(setting, old), _audit_value(setting, setting.default)]},
    )
    return True


def set_settings(
    session: Session, values: Mapping[str, Any], actor: User | None = None, registry: Registry | None = None
) -> list[str]:
    """Change several settings at once, all or nothing; returns the keys that changed.

    Every value is checked first; if any is bad (or a key is unknown) a
    :class:`ServiceError` lists each bad key with its reason and nothing is stored.
    ``None`` resets a setting to its default. For a secret, :data:`SECRET_MASK` means
    "keep the stored one", so a client may send back what it read.
    """
    registry = registry or session_registry(session)
    checked: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    for key, value in values.items():
        setting = registry.settings.get(key)
        if setting is None:
            problems[key] = [UNKNOWN_SETTING]
            continue
        if value is None or (setting.secret and value == SECRET_MASK):
            checked[key] = value
            continue
        try:
            checked[key] = check_value(setting, value)
        except InvalidValue as exc:
            problems[key] = [str(exc)]
    if problems:
        raise ServiceError(
            "invalid", "some settings are not valid: " + ", ".join(sorted(problems)), problems, status=422
        )
    changed = []
    for key, value in checked.items():
        if value is None:
            done = reset_setting(session, key, actor, registry)
        elif value == SECRET_MASK and registry.settings[key].secret:
            done = False
        else:
            done = _store(session, registry.settings[key], value, actor)
        if done:
            changed.append(key)
    return changed

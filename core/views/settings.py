"""The settings screen: every registered setting, grouped by plugin, changed without code.

Thin over :mod:`core.settings`. Each setting gets the input its type calls for (a
checkbox, a number, a select of its choices, a password field for a secret), shows its
default and can be reset to it. Saving checks every field first and stores nothing if
any is wrong, with the reason beside the field. A secret is never put back into the
page: its field stays empty, and leaving it empty keeps the stored value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.settings import (
    InvalidValue,
    SettingState,
    check_value,
    parse_text,
    reset_setting,
    set_settings,
    setting_states,
)
from core.views.common import current_actor, permission_required, screen_blueprint
from core.views.labels import translate
from core.views.messages import localize
from core.web import db, ordo

bp = screen_blueprint("settings", __name__, url_prefix="/admin/settings")

#: The hidden field listing the settings a submitted form showed (an unticked
#: checkbox sends nothing, so the list tells "off" from "not on the form").
SHOWN_FIELD = "_shown"


@dataclass
class SettingGroup:
    """The settings of one plugin (or core), as one panel of the screen."""

    plugin: str
    title: str
    rows: list[SettingState]


def _groups(states: Iterable[SettingState]) -> list[SettingGroup]:
    installed = ordo().registry.installed
    groups: dict[str, SettingGroup] = {}
    for state in states:
        plugin = state.setting.plugin
        if plugin not in groups:
            title = _("Core") if plugin == "core" else (installed[plugin].title if plugin in installed else plugin)
            groups[plugin] = SettingGroup(plugin, title, [])
        groups[plugin].rows.append(state)
    return list(groups.values())


def _render(entered: dict[str, Any], errors: dict[str, list[str]], status: int = 200) -> tuple[str, int]:
    states = setting_states(db())
    return (
        render_template(
            "settings/edit.html",
            groups=_groups(states),
            entered=entered,
            errors=errors,
            shown_field=SHOWN_FIELD,
        ),
        status,
    )


def read_form(states: Iterable[SettingState]) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The changes a submitted settings form asks for, what was typed, and errors per key.

    Only settings the form showed count; a secret left empty keeps its value; a value
    equal to the current one is no change.
    """
    shown = set(request.form.getlist(SHOWN_FIELD))
    changes: dict[str, Any] = {}
    entered: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for state in states:
        setting = state.setting
        if setting.key not in shown:
            continue
        raw = request.form.get(setting.key)
        if setting.secret and not raw:
            continue
        if not setting.secret:
            entered[setting.key] = raw if setting.type is not bool else raw is not None
        try:
            value = check_value(setting, parse_text(setting, raw))
        except InvalidValue as exc:
            errors[setting.key] = [localize(str(exc))]
            continue
        if setting.secret or value != state.value or type(value) is not type(state.value):
            changes[setting.key] = value
    return changes, entered, errors


@bp.route("", methods=["GET", "POST"])
@permission_required("settings.manage")
def edit_settings() -> Any:
    """Show every setting; on POST check them all and store the changed ones, or none."""
    if request.method == "GET":
        return _render({}, {})
    session = db()
    changes, entered, errors = read_form(setting_states(session))
    if errors:
        return _render(entered, errors, 422)
    changed = set_settings(session, changes, current_actor())
    session.commit()
    if changed:
        flash(_("Settings saved: %(count)s changed.", count=len(changed)), "success")
    else:
        flash(_("Nothing changed."), "info")
    return redirect(url_for(".edit_settings"))


@bp.post("/<key>/reset")
@permission_required("settings.manage")
def reset(key: str) -> Response:
    """Forget the stored value of one setting so its default applies again."""
    session = db()
    setting = ordo().registry.settings.get(key)
    if setting is None:
        raise NotFound()
    if reset_setting(session, key, current_actor()):
        session.commit()
        flash(_("“%(label)s” is back to its default.", label=translate(setting.label)), "success")
    else:
        flash(_("“%(label)s” already has its default value.", label=translate(setting.label)), "info")
    return redirect(url_for(".edit_settings") + f"#setting-{key.replace('.', '-')}")

"""API: settings (设置) — read every registered setting, change several at once, all or nothing.

For holders of ``settings.manage``. Thin over :mod:`core.settings`: values are checked
against each setting's type and choices; one bad value refuses the whole change with
each bad key named. Secrets are never answered: a set secret reads ``"********"``.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from core.api.auth import api_user
from core.api.common import commit, errors, json_body, read_json
from core.services import ServiceError
from core.settings import SECRET_MASK, SettingState, set_settings, setting_states
from core.web import db

blp = Blueprint(
    "api_settings",
    __name__,
    url_prefix="/api/v1/settings",
    description="Settings (设置) of core and the enabled plugins: thresholds, schedules, connections.",
)


def _require_settings_manager() -> None:
    if not api_user().can("settings.manage"):
        raise ServiceError("forbidden", "you lack the permission 'settings.manage'", status=403)


blp.before_request(_require_settings_manager)


#: What a setting's value may be in JSON (its type says which); `anyOf`, since an integer is also a number.
VALUE_TYPES = [{"type": "boolean"}, {"type": "integer"}, {"type": "number"}, {"type": "string"}]


class SettingOutSchema(Schema):
    """A registered setting and its current value."""

    key = fields.String(required=True, metadata={"description": "`<plugin>.<name>`."})
    plugin = fields.String(required=True)
    type = fields.String(required=True, metadata={"description": "bool, int, float or str."})
    value = fields.Raw(
        allow_none=True,
        required=True,
        metadata={"anyOf": VALUE_TYPES, "description": f'The current value; a set secret reads "{SECRET_MASK}".'},
    )
    default = fields.Raw(allow_none=True, required=True, metadata={"anyOf": VALUE_TYPES})
    is_default = fields.Boolean(required=True, metadata={"description": "No value stored: the default applies."})
    label = fields.String(required=True)
    help = fields.String(required=True)
    choices = fields.List(fields.String(), required=True, metadata={"description": "The values a str setting takes."})
    secret = fields.Boolean(required=True)


class SettingListSchema(Schema):
    """Every registered setting: core's first, then each plugin's, in the order they were registered."""

    items = fields.List(fields.Nested(SettingOutSchema), required=True)


def setting_out(state: SettingState) -> dict[str, Any]:
    """A setting's state in the API's shape."""
    setting = state.setting
    return {
        "key": setting.key,
        "plugin": setting.plugin,
        "type": setting.type.__name__,
        "value": state.value,
        "default": state.default,
        "is_default": not state.stored,
        "label": setting.label,
        "help": setting.help,
        "choices": list(setting.choices),
        "secret": setting.secret,
    }


CHANGE_BODY = {
    "type": "object",
    "additionalProperties": True,
    "description": 'Setting keys and their new values; null resets to the default; "********" keeps a secret.',
}


@blp.route("")
class Settings(MethodView):
    """The settings."""

    @blp.response(200, SettingListSchema)
    @errors(blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """List every setting with its value, default and type; secrets masked."""
        return {"items": [setting_out(s) for s in setting_states(db())]}

    @blp.doc(
        requestBody=json_body(
            CHANGE_BODY,
            example={"core.notify.digest_weekday": "mon", "core.smtp.port": 465, "core.smtp.password": "s3cret"},
        )
    )
    @blp.response(200, SettingListSchema)
    @errors(blp, 400, 401, 403, 415, 422)
    def patch(self) -> dict[str, Any]:
        """Change settings: `{"key": value, …}`; all are checked first and none is stored if one is bad."""
        session = db()
        set_settings(session, read_json(), api_user())
        commit()
        return {"items": [setting_out(s) for s in setting_states(session)]}

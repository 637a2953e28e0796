"""API: roles and the permissions registry.

Roles are named sets of permission codes plus a data scope; ``/api/v1/permissions``
lists every permission core and the enabled plugins register, grouped by plugin. All of
it needs ``users.manage`` (thin endpoints over :mod:`core.services.access`).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.models import Role
from core.services.access import (
    RoleChangeSchema,
    RoleInSchema,
    create_role,
    delete_role,
    get_role,
    permission_groups,
    require_manager,
    role_holders,
    roles_query,
    update_role,
)
from core.web import db, ordo

blp = Blueprint(
    "api_roles",
    __name__,
    url_prefix="/api/v1",
    description="Roles (角色): permission sets with a data scope; the permissions registry, grouped by plugin.",
)
blp.before_request(require_api_user)

EXAMPLE = {
    "code": "cd_sales_lead",
    "name": "Chengdu sales lead",
    "data_scope": "branch",
    "permissions": ["orders.read", "orders.create", "orders.edit", "orders.submit"],
}


class RoleOutSchema(Schema):
    """A role with its permissions, data scope and how many users hold it."""

    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    data_scope = fields.String(required=True, metadata={"description": "own, department, branch, all or customer."})
    builtin = fields.Boolean(required=True, metadata={"description": "Shipped with Ordo (cannot be deleted)."})
    permissions = fields.List(fields.String(), required=True, metadata={"description": "Permission codes granted."})
    inactive_permissions = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Granted codes no enabled plugin registers now (they return with the plugin)."},
    )
    users = fields.Integer(required=True, metadata={"description": "How many users hold the role."})


class RoleListSchema(Schema):
    """Every role, by code."""

    items = fields.List(fields.Nested(RoleOutSchema), required=True)


class PermissionOutSchema(Schema):
    """One registered permission."""

    code = fields.String(required=True)
    label = fields.String(required=True)
    default_roles = fields.List(fields.String(), required=True)


class PermissionGroupSchema(Schema):
    """The permissions one plugin (or core) registers."""

    plugin = fields.String(required=True)
    permissions = fields.List(fields.Nested(PermissionOutSchema), required=True)


class PermissionRegistrySchema(Schema):
    """Every permission of core and the enabled plugins, grouped by plugin."""

    groups = fields.List(fields.Nested(PermissionGroupSchema), required=True)


def role_out(role: Role, holders: dict[int, int]) -> dict[str, Any]:
    """``role`` in the API's shape."""
    registered = ordo().registry.permissions
    codes = sorted(role.permission_codes)
    return {
        "id": role.id,
        "code": role.code,
        "name": role.name,
        "data_scope": role.data_scope,
        "builtin": role.builtin,
        "permissions": codes,
        "inactive_permissions": [c for c in codes if c not in registered],
        "users": holders.get(role.id, 0),
    }


def _one(role: Role) -> dict[str, Any]:
    return role_out(role, role_holders(db()))


@blp.route("/roles")
class Roles(MethodView):
    """The role list and role creation."""

    @blp.response(200, RoleListSchema)
    @errors(blp, 401, 403)
    def get(self) -> dict[str, Any]:
        """List every role with its permissions and data scope."""
        session = db()
        roles = list(session.scalars(roles_query(api_user())))
        holders = role_holders(session)
        return {"items": [role_out(r, holders) for r in roles]}

    @blp.doc(requestBody=json_body(RoleInSchema, example=EXAMPLE))
    @blp.response(201, RoleOutSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a role; unknown permission codes, those of disabled plugins and unknown scopes are refused."""
        role = create_role(db(), api_user(), ordo().registry, read_json())
        commit()
        return _one(role), 201, {"Location": url_for(".RoleItem", role_id=role.id)}


@blp.route("/roles/<int:role_id>")
class RoleItem(MethodView):
    """One role."""

    @blp.response(200, RoleOutSchema)
    @errors(blp, 401, 403, 404)
    def get(self, role_id: int) -> dict[str, Any]:
        """Read a role."""
        return _one(get_role(db(), api_user(), role_id))

    @blp.doc(requestBody=json_body(RoleChangeSchema, example={"data_scope": "branch", "permissions": ["orders.read"]}))
    @blp.response(200, RoleOutSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, role_id: int) -> dict[str, Any]:
        """Change a role's name, data scope or permissions (given permissions replace the set); its holders
        see the change on their next request."""
        user = api_user()
        role = update_role(db(), user, ordo().registry, get_role(db(), user, role_id), read_json())
        commit()
        return _one(role)

    @blp.response(200, RoleOutSchema)
    @errors(blp, 401, 403, 404, 409)
    def delete(self, role_id: int) -> dict[str, Any]:
        """Delete a role that Ordo did not ship and no user holds; answers the deleted role."""
        user = api_user()
        session = db()
        role = get_role(session, user, role_id)
        gone = role_out(role, role_holders(session))
        delete_role(session, user, role)
        commit()
        return gone


@blp.route("/permissions")
@blp.response(200, PermissionRegistrySchema)
@errors(blp, 401, 403)
def list_permissions() -> dict[str, Any]:
    """Every permission core and the enabled plugins register, grouped by plugin (core first)."""
    require_manager(api_user())
    return {
        "groups": [
            {
                "plugin": group.plugin,
                "permissions": [
                    {"code": p.code, "label": p.label, "default_roles": list(p.default_roles)}
                    for p in group.permissions
                ],
            }
            for group in permission_groups(ordo().registry)
        ]
    }

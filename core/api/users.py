"""API: users — list, create, read, change, (de)activate and reset a password.

Thin endpoints over :mod:`core.services.access`: managing users needs ``users.manage``;
anyone may read their own account and change their own name and language. Password
hashes never leave the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, keyset_page, read_json
from core.models import Branch, Customer, Department, User
from core.services.access import (
    PasswordSchema,
    UserChangeSchema,
    UserInSchema,
    create_user,
    get_user,
    reset_password,
    set_user_active,
    update_user,
    users_query,
)
from core.web import db

blp = Blueprint(
    "api_users",
    __name__,
    url_prefix="/api/v1/users",
    description="Users (用户): staff of a branch and department or a customer's portal users, their roles.",
)
blp.before_request(require_api_user)

EXAMPLE = {
    "email": "liu@example.com",
    "name": "刘洋",
    "language": "zh_CN",
    "branch": "CD",
    "department": "sales",
    "roles": ["sales"],
    "password": "a-long-pass-1",
}


class UserOutSchema(Schema):
    """A user as the API shows it (never the password hash)."""

    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    language = fields.String(required=True)
    branch = fields.String(allow_none=True, required=True, metadata={"description": "Branch code."})
    department = fields.String(allow_none=True, required=True, metadata={"description": "Department code."})
    customer = fields.String(
        allow_none=True, required=True, metadata={"description": "Customer code of a portal user."}
    )
    roles = fields.List(fields.String(), required=True, metadata={"description": "Role codes."})
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class UserPageSchema(Schema):
    """One page of users and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(UserOutSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class UserQuerySchema(PageQuerySchema):
    """Search, filters and paging of the user list."""

    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Text to find in e-mail and name."})
    role = fields.String(validate=validate.Length(max=64), metadata={"description": "Only holders of this role."})
    branch = fields.String(validate=validate.Length(max=32), metadata={"description": "Only users of this branch."})
    active = fields.Boolean(metadata={"description": "Only active (true) or deactivated (false) users."})


def users_out(session: Session, users: Iterable[User]) -> list[dict[str, Any]]:
    """``users`` in the API's shape, with branch, department and customer as codes."""
    users = list(users)
    branches = dict(session.execute(select(Branch.id, Branch.code)).tuples().all())
    departments = dict(session.execute(select(Department.id, Department.code)).tuples().all())
    customer_ids = {u.customer_id for u in users if u.customer_id is not None}
    customers = (
        dict(session.execute(select(Customer.id, Customer.code).where(Customer.id.in_(customer_ids))).tuples().all())
        if customer_ids
        else {}
    )
    return [
        {
            "id": u.id,
            "email": u.email,
            "name": u.name,
            "language": u.language,
            "branch": branches.get(u.branch_id) if u.branch_id else None,
            "department": departments.get(u.department_id) if u.department_id else None,
            "customer": customers.get(u.customer_id) if u.customer_id else None,
            "roles": sorted(r.code for r in u.roles),
            "active": u.active,
            "created_at": u.created_at,
        }
        for u in users
    ]


def _one(user: User) -> dict[str, Any]:
    return users_out(db(), [user])[0]


@blp.route("")
class Users(MethodView):
    """The user list and user creation."""

    @blp.arguments(UserQuerySchema, location="query", unknown="raise")
    @blp.response(200, UserPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users by e-mail; `q` searches e-mail and name, `role`, `branch` and `active` filter."""
        session = db()
        branch_id = None
        if args.get("branch"):
            branch_id = session.scalar(select(Branch.id).where(Branch.code == args["branch"])) or -1
        stmt = users_query(api_user(), args.get("q"), args.get("role"), branch_id, active=args.get("active"))
        items, next_cursor = keyset_page(session, stmt, User.email, "u", args["limit"], args.get("cursor"))
        return {"items": users_out(session, items), "next_cursor": next_cursor}

    @blp.doc(requestBody=json_body(UserInSchema, example=EXAMPLE))
    @blp.response(201, UserOutSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a user; `email` (unique) and `password` (at least 8 characters, a letter and a digit) are
        required; a portal user (customer-scope role) names its `customer`."""
        user = create_user(db(), api_user(), read_json())
        commit()
        return _one(user), 201, {"Location": url_for(".UserItem", user_id=user.id)}


@blp.route("/<int:user_id>")
class UserItem(MethodView):
    """One user."""

    @blp.response(200, UserOutSchema)
    @errors(blp, 401, 403, 404)
    def get(self, user_id: int) -> dict[str, Any]:
        """Read a user (your own account, or anyone's with `users.manage`)."""
        return _one(get_user(db(), api_user(), user_id))

    @blp.doc(requestBody=json_body(UserChangeSchema, example={"roles": ["sales", "order_clerk"], "branch": "CD"}))
    @blp.response(200, UserOutSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, user_id: int) -> dict[str, Any]:
        """Change a user; fields left out stay. Without `users.manage` only your own `name` and `language`."""
        user = api_user()
        changed = update_user(db(), user, get_user(db(), user, user_id), read_json())
        commit()
        return _one(changed)


def _set_active(user_id: int, active: bool) -> dict[str, Any]:
    actor = api_user()
    user = set_user_active(db(), actor, get_user(db(), actor, user_id), active)
    commit()
    return _one(user)


@blp.route("/<int:user_id>/deactivate", methods=["POST"])
@blp.response(200, UserOutSchema)
@errors(blp, 401, 403, 404, 409)
def deactivate_user(user_id: int) -> dict[str, Any]:
    """Deactivate a user: no more logins, their API tokens stop working; refused for the last administrator."""
    return _set_active(user_id, False)


@blp.route("/<int:user_id>/reactivate", methods=["POST"])
@blp.response(200, UserOutSchema)
@errors(blp, 401, 403, 404)
def reactivate_user(user_id: int) -> dict[str, Any]:
    """Reactivate a deactivated user."""
    return _set_active(user_id, True)


@blp.route("/<int:user_id>/password", methods=["POST"])
@blp.doc(requestBody=json_body(PasswordSchema, example={"password": "a-new-pass-2"}))
@blp.response(200, UserOutSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def set_password(user_id: int) -> dict[str, Any]:
    """Set a new password for a user (an administrator's reset); the password policy applies."""
    actor = api_user()
    user = reset_password(db(), actor, get_user(db(), actor, user_id), read_json())
    commit()
    return _one(user)

"""Access control: users, roles with their permissions and data scope, and API tokens.

One function per operation, each taking a session and the acting user; nothing commits.
Every change is written to the audit trail with what it changed. Refusals raise
:class:`~core.services.ServiceError` before anything is touched, so a refused call leaves
the database as it was.

Who may do what: ``users.manage`` covers users and roles. Anyone may change their own
name and language, and manage their own API tokens; holders of ``users.manage`` see and
revoke everyone's tokens. At least one active user always keeps the ``admin`` role, and
some active user always keeps ``users.manage``, so nobody locks the company out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.contrib import Permission
from core.db import utcnow
from core.i18n import LANGUAGES
from core.models import ApiToken, Branch, Customer, Department, Role, RolePermission, User
from core.models.user import DATA_SCOPES, user_role
from core.plugins import Registry
from core.schemas import MAX_ID, Text
from core.security.passwords import PasswordPolicyError, check_policy, hash_password
from core.security.sessions import end_sessions
from core.security.tokens import create_token
from core.services import Conflict, NotFound, ServiceError, audit

#: The permission that covers users and roles.
MANAGE = "users.manage"
#: The role whose last active holder cannot be deactivated or lose it.
ADMIN_ROLE = "admin"
#: The longest a token may live, in days (ten years).
MAX_TOKEN_DAYS = 3650


# --- input ---------------------------------------------------------------------------


class UserInSchema(Schema):
    """A new user: e-mail and password required; portal users name their customer."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = Text(load_default=None, allow_none=True, validate=validate.Length(max=200))
    language = Text(load_default="zh_CN", validate=validate.OneOf(LANGUAGES))
    branch = Text(load_default=None, allow_none=True, metadata={"description": "Branch code."})
    department = Text(load_default=None, allow_none=True, metadata={"description": "Department code."})
    customer = Text(
        load_default=None,
        allow_none=True,
        metadata={"description": "Customer code: required for (and only for) a portal user."},
    )
    roles = fields.List(Text(), load_default=list, metadata={"description": "Role codes."})
    password = fields.String(required=True, load_only=True)


class UserChangeSchema(Schema):
    """A change to a user; fields left out stay as they are."""

    name = Text(validate=validate.Length(min=1, max=200))
    language = Text(validate=validate.OneOf(LANGUAGES))
    branch = Text(allow_none=True, metadata={"description": "Branch code, or null."})
    department = Text(allow_none=True, metadata={"description": "Department code, or null."})
    customer = Text(allow_none=True, metadata={"description": "Customer code (portal users), or null."})
    roles = fields.List(Text(), metadata={"description": "Role codes; replace the user's roles."})


class PasswordSchema(Schema):
    """A new password set by an administrator."""

    password = fields.String(required=True, load_only=True)


class RoleInSchema(Schema):
    """A new role: code, name, data scope and permission codes."""

    code = Text(
        required=True,
        validate=validate.Regexp(
            r"^[a-z][a-z0-9_.-]{0,63}$", error="Use 1–64 lower-case letters, digits, '.', '_' or '-'."
        ),
    )
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    data_scope = Text(load_default="own", metadata={"description": "own, department, branch, all or customer."})
    permissions = fields.List(Text(), load_default=list, metadata={"description": "Permission codes."})


class RoleChangeSchema(Schema):
    """A change to a role; ``permissions`` given replace the role's permissions."""

    name = Text(validate=validate.Length(min=1, max=200))
    data_scope = Text(metadata={"description": "own, department, branch, all or customer."})
    permissions = fields.List(Text(), metadata={"description": "Permission codes."})


class TokenInSchema(Schema):
    """A new API token: what it is for and, optionally, when it expires."""

    name = Text(load_default="", validate=validate.Length(max=100))
    expires_at = fields.AwareDateTime(
        load_default=None, allow_none=True, metadata={"description": "When the token stops working (ISO 8601)."}
    )
    expires_days = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_TOKEN_DAYS),
        metadata={"description": f"Expire after this many days (1–{MAX_TOKEN_DAYS}), instead of `expires_at`."},
    )


def _invalid(field: str, message: str, status: int = 422) -> ServiceError:
    return ServiceError("invalid", message, {field: [message]}, status=status)


def _load(schema: Schema, data: Any, partial: bool = False) -> dict[str, Any]:
    try:
        return dict(schema.load(data, partial=partial))
    except ValidationError as exc:
        raise ServiceError("invalid", "the input is not valid", exc.messages, status=422) from None


def _require(actor: User, code: str = MANAGE) -> None:
    if not actor.can(code):
        raise ServiceError("forbidden", f"you lack the permission {code!r}", status=403)


def require_manager(actor: User) -> None:
    """Refuse (403) an actor who lacks ``users.manage``."""
    _require(actor)


def _strong(password: str) -> str:
    """The argon2 hash of ``password``; a weak one is refused beside the field."""
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        raise _invalid("password", f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
    return hash_password(password)


def _ref(session: Session, model: Any, field: str, code: str | None, what: str) -> int | None:
    if code is None or not code.strip():
        return None
    found = session.scalar(select(model.id).where(model.code == code.strip()))
    if found is None:
        raise _invalid(field, f"Unknown {what} {code.strip()!r}.")
    return int(found)


def _roles(session: Session, codes: Iterable[str]) -> list[Role]:
    """The roles named by ``codes``, in the order given; unknown codes are refused together."""
    wanted = list(dict.fromkeys(c.strip() for c in codes))
    found = {r.code: r for r in session.scalars(select(Role).where(Role.code.in_(wanted)))}
    missing = [c for c in wanted if c not in found]
    if missing:
        known = ", ".join(session.scalars(select(Role.code).order_by(Role.code)))
        message = f"Unknown role(s) {', '.join(repr(m) for m in missing)}; known roles: {known}."
        raise _invalid("roles", message)
    return [found[c] for c in wanted]


# --- users ---------------------------------------------------------------------------


def _check_portal(roles: Iterable[Role], customer_id: int | None) -> None:
    portal = any(r.data_scope == "customer" for r in roles)
    if portal and customer_id is None:
        raise _invalid("customer", "A portal user (a role with the customer scope) needs a customer.")
    if customer_id is not None and not portal:
        raise _invalid("customer", "Only portal users (a role with the customer scope) are linked to a customer.")


# --- who may hand out what -------------------------------------------------------------

#: How far each data scope reaches, to refuse handing out a wider one than one's own.
#: A portal user's customer scope reaches least.
_SCOPE_REACH = {"customer": 0, "own": 0, "department": 1, "branch": 2, "all": 3}


def _is_admin(user: User) -> bool:
    return any(r.code == ADMIN_ROLE for r in user.roles)


def _reach(user: User) -> int:
    return max((_SCOPE_REACH.get(r.data_scope, 0) for r in user.roles), default=-1)


def _refuse_escalation(actor: User, permissions: Iterable[str], scope: str | None, what: str) -> None:
    """Refuse ``what`` when it would hand out more than ``actor`` holds.

    ``users.manage`` lets a person look after accounts, not make themselves or others
    mightier than they are: outside the ``admin`` role, one grants only permissions one
    holds and data scopes no wider than one's own.
    """
    if _is_admin(actor):
        return
    beyond = sorted(set(permissions) - actor.permission_codes)
    if beyond:
        raise ServiceError(
            "forbidden", f"you cannot {what}: it grants {', '.join(beyond)}, which you do not hold", status=403
        )
    if scope is not None and _SCOPE_REACH.get(scope, 0) > _reach(actor):
        raise ServiceError("forbidden", f"you cannot {what}: its data scope {scope!r} is wider than yours", status=403)


def _refuse_role_changes(actor: User, added: Iterable[Role], removed: Iterable[Role]) -> None:
    """Only administrators hand out or take away the ``admin`` role; others only roles
    within their own permissions and scope (see :func:`_refuse_escalation`)."""
    for role in [*added, *removed]:
        if role.code == ADMIN_ROLE and not _is_admin(actor):
            raise ServiceError("forbidden", "only administrators grant or withdraw the admin role", status=403)
        _refuse_escalation(actor, role.permission_codes, role.data_scope, f"grant or withdraw role {role.code!r}")


def _refuse_acting_on_admin(actor: User, user: User, what: str) -> None:
    """Only administrators change an administrator's password, state, roles or place."""
    if _is_admin(user) and not _is_admin(actor) and user.id != actor.id:
        raise ServiceError("forbidden", f"only administrators {what} of an administrator", status=403)


def _lock_admins(session: Session) -> None:
    # Two administrators demoting each other at the same moment must not both succeed:
    # lock the admin role's row first (PostgreSQL; SQLite writers are serialised anyway).
    session.execute(select(Role.id).where(Role.code == ADMIN_ROLE).with_for_update())


def _active_admin_ids(session: Session) -> set[int]:
    _lock_admins(session)
    stmt = (
        select(User.id)
        .join(user_role, user_role.c.user_id == User.id)
        .join(Role, Role.id == user_role.c.role_id)
        .where(Role.code == ADMIN_ROLE, User.active.is_(True))
    )
    return set(session.scalars(stmt))


def _refuse_last_admin(session: Session, user: User, what: str) -> None:
    """Refuse ``what`` when ``user`` is the only active administrator left."""
    if _active_admin_ids(session) == {user.id}:
        raise Conflict("last_administrator", f"{user.email} is the last active administrator; {what}")


def create_user(session: Session, actor: User, data: Any) -> User:
    """Create a user with roles, branch, department and a password meeting the policy.

    A portal user (holding a customer-scope role) must name its customer; nobody else may.
    """
    _require(actor)
    values = _load(UserInSchema(), data)
    email = values["email"].strip().lower()
    if session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        raise _invalid("email", f"A user with e-mail {email} exists already.")
    roles = _roles(session, values["roles"])
    _refuse_role_changes(actor, roles, [])
    branch_id = _ref(session, Branch, "branch", values["branch"], "branch")
    department_id = _ref(session, Department, "department", values["department"], "department")
    customer_id = _ref(session, Customer, "customer", values["customer"], "customer")
    _check_portal(roles, customer_id)
    password_hash = _strong(values["password"])
    user = User(
        email=email,
        name=(values["name"] or "").strip() or email.split("@")[0],
        language=values["language"],
        branch_id=branch_id,
        department_id=department_id,
        customer_id=customer_id,
        password_hash=password_hash,
        roles=roles,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user",
        user.id,
        "create",
        {
            "email": email,
            "name": user.name,
            "language": user.language,
            "branch_id": branch_id,
            "department_id": department_id,
            "customer_id": customer_id,
            "roles": sorted(r.code for r in roles),
        },
    )
    return user


def update_user(session: Session, actor: User, user: User, data: Any) -> User:
    """Change a user's name, language, branch, department, roles or customer.

    Anyone may change their own name and language; everything else needs ``users.manage``
    (in particular nobody without it changes their own roles). The last active
    administrator keeps the ``admin`` role.
    """
    values = _load(UserChangeSchema(), data, partial=True)
    if not actor.can(MANAGE):
        if user.id != actor.id:
            _require(actor)
        if "roles" in values:
            raise ServiceError(
                "forbidden", f"you cannot change your own roles without the permission {MANAGE!r}", status=403
            )
        others = sorted(set(values) - {"name", "language"})
        if others:
            raise ServiceError(
                "forbidden",
                f"you cannot change your own {', '.join(others)} without the permission {MANAGE!r}",
                status=403,
            )
    if set(values) - {"name", "language"}:
        _refuse_acting_on_admin(actor, user, "change the roles, branch, department or customer")
    scalar: dict[str, Any] = {}
    if "name" in values:
        scalar["name"] = values["name"].strip()
        if not scalar["name"]:
            raise _invalid("name", "A name is required.")
    if "language" in values:
        scalar["language"] = values["language"]
    if "branch" in values:
        scalar["branch_id"] = _ref(session, Branch, "branch", values["branch"], "branch")
    if "department" in values:
        scalar["department_id"] = _ref(session, Department, "department", values["department"], "department")
    if "customer" in values:
        scalar["customer_id"] = _ref(session, Customer, "customer", values["customer"], "customer")
    roles = _roles(session, values["roles"]) if "roles" in values else list(user.roles)
    _check_portal(roles, scalar.get("customer_id", user.customer_id))
    before_roles = sorted(r.code for r in user.roles)
    after_roles = sorted(r.code for r in roles)
    _refuse_role_changes(actor, [r for r in roles if r not in user.roles], [r for r in user.roles if r not in roles])
    if ADMIN_ROLE in before_roles and ADMIN_ROLE not in after_roles and user.active:
        _refuse_last_admin(session, user, "give the admin role to another active user first")
    changes = audit.diff(user, scalar)
    for key, value in scalar.items():
        setattr(user, key, value)
    if before_roles != after_roles:
        user.roles = roles
        changes["roles"] = [before_roles, after_roles]
    session.flush()
    if changes:
        audit.record(session, actor, "user", user.id, "update", changes)
    return user


def set_user_active(session: Session, actor: User, user: User, active: bool) -> User:
    """Deactivate (or reactivate) a user; a deactivated user cannot log in and its tokens stop working.

    The last active administrator cannot be deactivated.
    """
    _require(actor)
    _refuse_acting_on_admin(actor, user, "deactivate or reactivate the account")
    if user.active == active:
        return user
    if not active and any(r.code == ADMIN_ROLE for r in user.roles):
        _refuse_last_admin(session, user, "make another user an administrator before deactivating this one")
    user.active = active
    if not active:
        end_sessions(session, user)
    session.flush()
    audit.record(
        session, actor, "user", user.id, "activate" if active else "deactivate", {"active": [not active, active]}
    )
    return user


def reset_password(session: Session, actor: User, user: User, data: Any) -> User:
    """Set a new password for ``user`` (an administrator's reset); the policy applies."""
    _require(actor)
    _refuse_acting_on_admin(actor, user, "reset the password")
    values = _load(PasswordSchema(), data)
    user.password_hash = _strong(values["password"])
    end_sessions(session, user)  # whoever was logged in with the old password is out
    session.flush()
    audit.record(session, actor, "user", user.id, "reset_password", {"password": ["(hidden)", "(changed)"]})
    return user


def get_user(session: Session, actor: User, user_id: int) -> User:
    """A user by id: one's own account, or anyone's for ``users.manage``; 404 if unknown."""
    if user_id != actor.id:
        _require(actor)
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound("user", user_id)
    return user


def users_query(
    actor: User,
    text: str | None = None,
    role: str | None = None,
    branch_id: int | None = None,
    department_id: int | None = None,
    active: bool | None = None,
) -> Select[tuple[User]]:
    """Users by e-mail, optionally matching ``text`` in e-mail or name and filtered."""
    _require(actor)
    stmt = select(User).options(selectinload(User.roles)).order_by(User.email)
    if text and text.strip():
        like = f"%{text.strip()}%"
        stmt = stmt.where(or_(User.email.ilike(like), User.name.ilike(like)))
    if role:
        stmt = stmt.where(User.roles.any(Role.code == role))
    if branch_id is not None:
        stmt = stmt.where(User.branch_id == branch_id)
    if department_id is not None:
        stmt = stmt.where(User.department_id == department_id)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return stmt


# --- roles and the permission registry ----------------------------------------------


@dataclass(frozen=True)
class PermissionGroup:
    """The permissions one plugin (or core) registers, as screens and the API group them."""

    plugin: str
    permissions: tuple[Permission, ...]


def permission_groups(registry: Registry) -> list[PermissionGroup]:
    """The registry's permissions grouped by plugin: core first, then plugins as enabled."""
    order = ["core", *registry.enabled]
    grouped: dict[str, list[Permission]] = {}
    for permission in registry.permissions.values():
        grouped.setdefault(permission.plugin, []).append(permission)
    ranked = sorted(grouped, key=lambda p: (order.index(p) if p in order else len(order), p))
    return [PermissionGroup(p, tuple(sorted(grouped[p], key=lambda x: x.code))) for p in ranked]


def _dormant_owner(registry: Registry, code: str) -> str | None:
    """The installed but not enabled plugin that registers ``code``, if any."""
    for name, info in registry.installed.items():
        if name in registry.enabled:
            continue
        hook = getattr(info.module, "ordo_register_permissions", None)
        try:
            codes = {p.code for p in (hook() or ())} if callable(hook) else set()
        except Exception:  # a plugin that cannot answer while disabled is judged by its name
            codes = set()
        if code in codes or code.split(".", 1)[0] == name:
            return name
    return None


def _check_scope(scope: str) -> str:
    if scope not in DATA_SCOPES:
        raise _invalid("data_scope", f"Unknown data scope {scope!r}; choose one of {', '.join(DATA_SCOPES)}.")
    return scope


def _check_permissions(registry: Registry, codes: Iterable[str], held: Iterable[str] = ()) -> set[str]:
    """``codes`` checked against the registry: unknown codes and those of disabled plugins are refused.

    Codes in ``held`` (a role already has them, e.g. from a plugin since disabled) pass, so
    a role read and written back unchanged is accepted.
    """
    wanted = {c.strip() for c in codes}
    held = set(held)
    problems: list[str] = []
    for code in sorted(wanted):
        if code in registry.permissions or code in held:
            continue
        owner = _dormant_owner(registry, code)
        if owner is not None:
            problems.append(f"Permission {code!r} belongs to plugin {owner!r}, which is not enabled.")
        else:
            problems.append(f"Unknown permission {code!r}.")
    if problems:
        raise ServiceError("invalid", " ".join(problems), {"permissions": problems}, status=422)
    return wanted


def _managers_left(session: Session, role: Role) -> bool:
    """Whether some active user holds ``users.manage`` through a role other than ``role``."""
    _lock_admins(session)
    holders = (
        select(User.id)
        .join(user_role, user_role.c.user_id == User.id)
        .join(Role, Role.id == user_role.c.role_id)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .where(User.active.is_(True), RolePermission.code == MANAGE, Role.id != role.id)
        .limit(1)
    )
    return session.scalar(holders) is not None


def create_role(session: Session, actor: User, registry: Registry, data: Any) -> Role:
    """Create a role: a unique code, a name, a data scope and permissions of the registry."""
    _require(actor)
    values = _load(RoleInSchema(), data)
    if session.scalar(select(Role.id).where(Role.code == values["code"])) is not None:
        raise _invalid("code", f"Role code {values['code']!r} is taken.")
    scope = _check_scope(values["data_scope"])
    codes = _check_permissions(registry, values["permissions"])
    _refuse_escalation(actor, codes, scope, f"create role {values['code']!r}")
    role = Role(
        code=values["code"],
        name=values["name"].strip(),
        data_scope=scope,
        builtin=False,
        permissions=[RolePermission(code=c) for c in sorted(codes)],
    )
    session.add(role)
    session.flush()
    audit.record(
        session,
        actor,
        "role",
        role.id,
        "create",
        {"code": role.code, "name": role.name, "data_scope": scope, "permissions": sorted(codes)},
    )
    return role


def update_role(session: Session, actor: User, registry: Registry, role: Role, data: Any) -> Role:
    """Change a role's name, data scope or permissions; holders feel it on their next request.

    Permissions a role holds from a plugin since disabled are kept (they return with the
    plugin); they cannot be granted anew while it is disabled.
    """
    _require(actor)
    if role.code == ADMIN_ROLE and not _is_admin(actor):
        raise ServiceError("forbidden", "only administrators change the admin role", status=403)
    if role in actor.roles and not _is_admin(actor):
        raise ServiceError("forbidden", f"you cannot change role {role.code!r}, which you hold yourself", status=403)
    values = _load(RoleChangeSchema(), data, partial=True)
    scalar: dict[str, Any] = {}
    if "name" in values:
        scalar["name"] = values["name"].strip()
        if not scalar["name"]:
            raise _invalid("name", "A name is required.")
    if "data_scope" in values:
        scalar["data_scope"] = _check_scope(values["data_scope"])
        portal_before, portal_after = role.data_scope == "customer", scalar["data_scope"] == "customer"
        if portal_before != portal_after and _holders(session, role):
            raise Conflict(
                "role_in_use",
                f"role {role.code!r} is held by {'portal' if portal_before else 'staff'} users; a role cannot "
                "switch between the customer scope and a staff scope while anyone holds it",
            )
    before = role.permission_codes
    after = before
    if "permissions" in values:
        after = _check_permissions(registry, values["permissions"], held=before)
        dormant = {c for c in before if c not in registry.permissions}
        after |= dormant
        if role.code == ADMIN_ROLE and MANAGE not in after:
            raise Conflict("last_administrator", f"the admin role always keeps the permission {MANAGE!r}")
        if MANAGE in before and MANAGE not in after and not _managers_left(session, role):
            raise Conflict(
                "last_administrator",
                f"no active user would keep the permission {MANAGE!r}; grant it through another role first",
            )
    _refuse_escalation(actor, after - before, scalar.get("data_scope"), f"change role {role.code!r}")
    changes = audit.diff(role, scalar)
    for key, value in scalar.items():
        setattr(role, key, value)
    if after != before:
        role.permissions = [p for p in role.permissions if p.code in after] + [
            RolePermission(code=c) for c in sorted(after - before)
        ]
        changes["permissions"] = [sorted(before), sorted(after)]
    session.flush()
    if changes:
        audit.record(session, actor, "role", role.id, "update", changes)
    return role


def _holders(session: Session, role: Role) -> int:
    return session.scalar(select(func.count()).select_from(user_role).where(user_role.c.role_id == role.id)) or 0


def delete_role(session: Session, actor: User, role: Role) -> None:
    """Delete a role Ordo did not ship and that no user holds."""
    _require(actor)
    if role.builtin:
        raise Conflict("builtin_role", f"role {role.code!r} ships with Ordo and cannot be deleted")
    holders = _holders(session, role)
    if holders:
        raise Conflict("role_in_use", f"role {role.code!r} is held by {holders} user(s); take it from them first")
    audit.record(
        session,
        actor,
        "role",
        role.id,
        "delete",
        {
            "code": role.code,
            "name": role.name,
            "data_scope": role.data_scope,
            "permissions": sorted(role.permission_codes),
        },
    )
    session.delete(role)
    session.flush()


def get_role(session: Session, actor: User, ident: int | str) -> Role:
    """A role by id or code; 404 if unknown."""
    _require(actor)
    if isinstance(ident, int) and not 0 < ident <= MAX_ID:
        raise NotFound("role", ident)
    column = Role.id if isinstance(ident, int) else Role.code
    role = session.scalar(select(Role).where(column == ident).options(selectinload(Role.permissions)))
    if role is None:
        raise NotFound("role", ident)
    return role


def roles_query(actor: User) -> Select[tuple[Role]]:
    """Every role, by code."""
    _require(actor)
    return select(Role).options(selectinload(Role.permissions)).order_by(Role.code)


def role_holders(session: Session) -> dict[int, int]:
    """How many users hold each role, by role id."""
    stmt = select(user_role.c.role_id, func.count()).group_by(user_role.c.role_id)
    return {int(role_id): int(n) for role_id, n in session.execute(stmt).tuples()}


# --- API tokens ------------------------------------------------------------------------


def create_api_token(session: Session, actor: User, data: Any) -> tuple[ApiToken, str]:
    """Create an API token for ``actor``; returns the stored row and the token, shown only now.

    Only the token's SHA-256 is stored. The expiry, when given, must lie in the future.
    """
    values = _load(TokenInSchema(), data)
    expires_at: dt.datetime | None = values["expires_at"]
    if values["expires_days"] is not None:
        if expires_at is not None:
            raise _invalid("expires_days", "Give either expires_at or expires_days, not both.")
        expires_at = utcnow() + dt.timedelta(days=values["expires_days"])
    if expires_at is not None:
        expires_at = expires_at.astimezone(dt.UTC)
        if expires_at <= utcnow():
            raise _invalid("expires_at", "The expiry must lie in the future.")
        if expires_at > utcnow() + dt.timedelta(days=MAX_TOKEN_DAYS):
            raise _invalid("expires_at", f"A token lives at most {MAX_TOKEN_DAYS} days.")
    name = values["name"].strip()
    plaintext = create_token(session, actor, name=name, expires_at=expires_at)
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).one()
    audit.record(
        session,
        actor,
        "api_token",
        row.id,
        "create",
        {"user_id": actor.id, "name": name, "prefix": row.prefix, "expires_at": expires_at},
    )
    return row, plaintext


def tokens_query(actor: User, everyone: bool = False, include_revoked: bool = True) -> Select[tuple[ApiToken]]:
    """``actor``'s own tokens, newest first; everyone's when asked by a holder of ``users.manage``."""
    stmt = select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.id.desc())
    if everyone:
        _require(actor)
    else:
        stmt = stmt.where(ApiToken.user_id == actor.id)
    if not include_revoked:
        stmt = stmt.where(ApiToken.revoked_at.is_(None))
    return stmt


def get_api_token(session: Session, actor: User, token_id: int) -> ApiToken:
    """A token by id: one's own, or anyone's for ``users.manage``; others' answer 404."""
    row = session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if row is None or (row.user_id != actor.id and not actor.can(MANAGE)):
        raise NotFound("API token", token_id)
    return row


def revoke_api_token(session: Session, actor: User, token: ApiToken) -> ApiToken:
    """Revoke a token (one's own, or any for ``users.manage``); it answers 401 from now on.

    Revoking a revoked token changes nothing.
    """
    if token.user_id != actor.id:
        _require(actor)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit.record(
            session, actor, "api_token", token.id, "revoke", {"user_id": token.user_id, "prefix": token.prefix}
        )
    return token


def token_state(token: ApiToken, now: dt.datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"

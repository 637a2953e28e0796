"""The default roles Ordo ships, and granting registered permissions to them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contrib import Permission, RoleDefinition
from core.models import KnownPermission, Role, RolePermission

#: code → (name, data scope). Plugins may add roles of their own (review adds one
#: reviewer role per department) through their permissions' ``default_roles``.
DEFAULT_ROLES: dict[str, tuple[str, str]] = {
    "admin": ("Administrator", "all"),
    "general_manager": ("General manager", "all"),
    "sales_manager": ("Sales manager", "branch"),
    "sales": ("Salesperson", "own"),
    "order_clerk": ("Order clerk", "branch"),
    "warehouse": ("Warehouse", "branch"),
    "finance": ("Finance", "all"),
    "auditor": ("Auditor (read-only)", "all"),
    "customer": ("Customer (portal)", "customer"),
}


def ensure_role(session: Session, code: str, name: str | None = None, scope: str = "own") -> Role:
    """The role ``code``, created (as a built-in role) if it does not exist."""
    role = session.scalar(select(Role).where(Role.code == code))
    if role is None:
        default_name, default_scope = DEFAULT_ROLES.get(code, (name or code, scope))
        role = Role(code=code, name=name or default_name, data_scope=default_scope, builtin=True)
        session.add(role)
        session.flush()
    return role


def ensure_plugin_roles(session: Session, roles: Iterable[RoleDefinition]) -> list[str]:
    """Create each plugin role that does not exist yet, with its name, scope and grants.

    An existing role (created before, or by an administrator with the same code) is left
    as it is, so later edits are never undone. Returns the codes created.
    """
    created = []
    for definition in roles:
        if session.scalar(select(Role.id).where(Role.code == definition.code)) is not None:
            continue
        role = Role(code=definition.code, name=definition.name, data_scope=definition.scope, builtin=True)
        role.permissions = [RolePermission(code=code) for code in dict.fromkeys(definition.grants)]
        session.add(role)
        created.append(definition.code)
    session.flush()
    return created


def grant_defaults(session: Session, permissions: Iterable[Permission]) -> None:
    """Give each permission to the default roles it names, and every one to ``admin``.

    Run when Ordo is initialised and when a plugin is enabled; it only adds, so an
    administrator's later removals in other plugins are not undone.
    """
    for role_code in DEFAULT_ROLES:
        ensure_role(session, role_code)
    for permission in permissions:
        for role_code in {"admin", *permission.default_roles}:
            role = ensure_role(session, role_code)
            if permission.code not in role.permission_codes:
                role.permissions.append(RolePermission(code=permission.code))
    session.flush()


def grant_new_permissions(
    session: Session, permissions: Iterable[Permission], roles: Iterable[RoleDefinition] = ()
) -> list[str]:
    """Grant the defaults of every permission not granted before; returns their codes.

    Plugin ``roles`` are created first (:func:`ensure_plugin_roles`), so permissions
    naming them land on a role with its proper name and scope.
    Run by ``ordo init``, when plugins are enabled and by ``ordo db upgrade``, so a
    permission that arrives with a new version (of core or a plugin) reaches its roles,
    while one an administrator took away from a role is not handed back.
    """
    ensure_plugin_roles(session, roles)
    known = set(session.scalars(select(KnownPermission.code)))
    new = [p for p in permissions if p.code not in known]
    grant_defaults(session, new)
    session.add_all(KnownPermission(code=p.code) for p in new)
    session.flush()
    return [p.code for p in new]

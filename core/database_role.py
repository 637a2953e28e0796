"""The PostgreSQL role Ordo's servers and workers connect as: every right the work needs,
none to rewrite history.

The audit log's triggers refuse UPDATE, DELETE and TRUNCATE, but the owner of a table may
lift its triggers. So on PostgreSQL the application should not connect as the owner: the
owner runs ``ordo init``, ``ordo db upgrade`` and ``ordo plugins enable`` (they change
tables), and ``ordo db grant-app-role ROLE`` gives a separate login role exactly what the
running application needs:

- read and write every table, and use every id sequence;
- on the audit tables (:data:`APPEND_ONLY`) only SELECT and INSERT: the database itself
  refuses that role an UPDATE, DELETE or TRUNCATE, and, not being the owner, it can
  neither disable nor drop the triggers;
- on Alembic's revision table only SELECT: the schema's version is the owner's business;
- tables the owner creates later (a plugin enabled, a new release) get the same grants
  through PostgreSQL's default privileges, so an upgrade needs no second grant.

SQLite has no roles; there the triggers are the guard.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: Tables whose rows, once written, are never changed or removed — not even by the
#: application's own role.
APPEND_ONLY: tuple[str, ...] = ("audit_log", "audit_seal")
#: Tables the application reads but never writes.
READ_ONLY: tuple[str, ...] = ("alembic_version",)

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class DatabaseRoleError(ValueError):
    """A role that cannot be made the application's role; the message says why."""


def check_role_name(role: str) -> str:
    """``role`` if it is a plain lower-case PostgreSQL identifier, else a clear error.

    Quoting would allow any name, but a plain one is what administrators type in URLs and
    ``psql``, and refusing the rest keeps the grant statements free of surprises.
    """
    if not _ROLE_NAME.fullmatch(role):
        raise DatabaseRoleError(
            f"{role!r} is not a plain role name: use lower-case letters, digits and _, at most 63 characters"
        )
    return role


def grant_application_role(connection: Connection, role: str) -> None:
    """Give ``role`` the application's rights on this database (in the caller's transaction).

    Run it connected as the owner of Ordo's tables (the user ``ordo init`` ran as).
    Refuses a role that does not exist, a superuser (it bypasses every right) and the
    connecting user itself (the owner can lift the audit triggers). Running it again is
    harmless.
    """
    if connection.dialect.name != "postgresql":
        raise DatabaseRoleError("only PostgreSQL has roles; on SQLite the audit log's triggers are the guard")
    check_role_name(role)
    found = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}).first()
    if found is None:
        raise DatabaseRoleError(
            f"role {role} does not exist; create it first, e.g. CREATE ROLE {role} LOGIN PASSWORD '…'"
        )
    if found.rolsuper:
        raise DatabaseRoleError(f"role {role} is a superuser, which no right can restrain; use a plain login role")
    if connection.execute(text("SELECT current_user")).scalar_one() == role:
        raise DatabaseRoleError(f"role {role} is the one running this command; the owner cannot be the app's role")
    for statement in _grants(role):
        connection.exec_driver_sql(statement)


def _grants(role: str) -> list[str]:
    """The statements, in order: grant everything, then take back what history needs."""
    tables = "SELECT, INSERT, UPDATE, DELETE"
    sequences = "USAGE, SELECT, UPDATE"
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT {tables} ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {tables} ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {sequences} ON SEQUENCES TO {role}",
    ]
    rewrite = "UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    statements += [f"REVOKE {rewrite} ON {table} FROM {role}" for table in APPEND_ONLY]
    statements += [f"REVOKE INSERT, {rewrite} ON {table} FROM {role}" for table in READ_ONLY]
    return statements


def lacks_privilege(error: BaseException) -> bool:
    """Whether a database error is PostgreSQL's "permission denied" (SQLSTATE 42501)."""
    original = getattr(error, "orig", None)
    return getattr(original, "sqlstate", None) == "42501"

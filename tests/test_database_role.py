"""The application's own PostgreSQL role (CORE-6): it does the day's work, but the database
itself refuses it any change to the audit log — not only through the triggers, which a
table's owner could lift, but by rights: no UPDATE, DELETE or TRUNCATE, and, not being the
owner, no way to disable or drop the triggers.

Each test makes a real login role on the suite's PostgreSQL server, grants it through
``ordo db grant-app-role`` and connects as it. The refusals of the command itself (a role
that does not exist, a superuser, SQLite) run on both kinds of database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core import installation
from core.cli import cli
from core.database_role import APPEND_ONLY, READ_ONLY, DatabaseRoleError, check_role_name
from core.db import make_engine
from core.migrate import SchemaPrivilegeError
from core.models import AuditLog, Order, PluginState, User
from core.services.audit_seal import seal, verify
from core.testing import ADMIN_EMAIL, SERVER_URL, make_order, seed_master_data

pytestmark = pytest.mark.req("CORE-6")

needs_postgresql = pytest.mark.skipif(SERVER_URL is None, reason="roles exist only on PostgreSQL")


def ordo(folder: Path, url: str, *args: str) -> tuple[int, str]:
    """Run ``ordo --instance FOLDER …`` in-process against ``url``; (exit code, output)."""
    result = CliRunner().invoke(cli, ["--instance", str(folder), *args], env={"ORDO_DATABASE_URL": url})
    return result.exit_code, result.output


class Installation:
    """One database, its owner's URL, and a fresh login role granted as the application's."""

    def __init__(self, folder: Path, owner_url: str, role: str):
        self.folder = folder
        self.owner_url = owner_url
        self.role = role
        self.app_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
        self.engines: list[Engine] = []

    def engine(self, url: str) -> Engine:
        engine = make_engine(url, poolclass=NullPool)
        self.engines.append(engine)
        return engine

    def grant(self) -> None:
        code, output = ordo(self.folder, self.owner_url, "db", "grant-app-role", self.role)
        assert code == 0, output
        assert f"Granted to {self.role}" in output


@pytest.fixture
def server() -> Iterator[Engine]:
    """A superuser connection to the suite's PostgreSQL server, for making and dropping roles."""
    assert SERVER_URL is not None
    engine = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


def installation_with(ordo_templates: Any, tmp_path: Path, server: Engine, plugins: tuple[str, ...]) -> Any:
    folder = tmp_path / "instance"
    folder.mkdir()
    url = ordo_templates.new_database(plugins, folder)
    role = f"ordo_app_{uuid.uuid4().hex[:10]}"
    with server.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    made = Installation(folder, url, role)
    try:
        yield made
    finally:
        for engine in made.engines:
            engine.dispose()
        ordo_templates.drop(url)  # with the database go the role's rights in it
        with server.connect() as connection:
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture
def granted(ordo_templates: Any, tmp_path: Path, server: Engine) -> Iterator[Installation]:
    """A core-only database whose application role has been granted."""
    for made in installation_with(ordo_templates, tmp_path, server, ()):
        made.grant()
        yield made


@pytest.fixture
def full(ordo_templates: Any, tmp_path: Path, server: Engine) -> Iterator[Installation]:
    """A database with every built-in plugin whose application role has been granted."""
    plugins = ("billing", "intake", "kpi", "logistics", "review")
    for made in installation_with(ordo_templates, tmp_path, server, plugins):
        made.grant()
        yield made


@needs_postgresql
def test_the_application_role_does_the_days_work_and_seals_the_log(full: Installation):
    engine = full.engine(full.app_url)
    with Session(engine) as session:
        assert session.scalar(select(func.current_user())) == full.role
        seed = seed_master_data(session)
        session.commit()
        admin = session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
        order = make_order(session, admin)
        assert order.id is not None and seed
        assert session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.order_id == order.id))
        assert seal(session) > 0
        session.commit()
        assert verify(session).intact


@needs_postgresql
@pytest.mark.parametrize(
    "statement, refusal",
    [
        ("UPDATE audit_log SET reason = 'x'", "permission denied"),
        ("DELETE FROM audit_log", "permission denied"),
        ("TRUNCATE audit_log", "permission denied"),
        ("UPDATE audit_seal SET hash = 'x'", "permission denied"),
        ("DELETE FROM audit_seal", "permission denied"),
        ("TRUNCATE audit_seal", "permission denied"),
        ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner"),
        ("DROP TRIGGER audit_log_no_truncate ON audit_log", "must be owner"),
        ("DROP TABLE audit_log", "must be owner"),
        ("UPDATE alembic_version SET version_num = 'x'", "permission denied"),
        ("DELETE FROM alembic_version", "permission denied"),
        ("CREATE TABLE shadow_log (id integer)", "permission denied"),
    ],
)
def test_the_database_refuses_the_application_role_any_rewrite_of_history(
    granted: Installation, statement: str, refusal: str
):
    owner = granted.engine(granted.owner_url)
    with Session(owner) as session:
        seed_master_data(session)
        session.commit()
        admin = session.scalars(select(User).where(User.email == ADMIN_EMAIL)).one()
        make_order(session, admin)
        seal(session)
        session.commit()
    snapshot = text("SELECT id, reason, CAST(changes AS TEXT) FROM audit_log ORDER BY id")
    with owner.connect() as connection:
        before = connection.execute(snapshot).all()
    assert before

    with granted.engine(granted.app_url).connect() as connection:
        with pytest.raises(DatabaseError, match=refusal):
            connection.exec_driver_sql(statement)
        connection.rollback()
    with owner.connect() as connection:
        assert connection.execute(snapshot).all() == before
        assert connection.execute(text("SELECT count(*) FROM audit_seal")).scalar_one() > 0


@needs_postgresql
def test_every_table_is_writable_but_history_only_grows_even_for_tables_made_later(granted: Installation):
    owner = granted.engine(granted.owner_url)
    installation.enable(owner, ["intake", "review"])  # the owner migrates after the grant

    def rights(table: str) -> set[str]:
        with owner.connect() as connection:
            return {
                right
                for right in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                if connection.execute(
                    text("SELECT has_table_privilege(:role, :table, :right)"),
                    {"role": granted.role, "table": f"public.{table}", "right": right},
                ).scalar_one()
            }

    with owner.connect() as connection:
        tables = sorted(
            connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
        )
    assert {"audit_log", "audit_seal", "alembic_version", "review_department"} <= set(tables)  # review's: made later
    for table in tables:
        if table in APPEND_ONLY:
            assert rights(table) == {"SELECT", "INSERT"}, table
        elif table in READ_ONLY:
            assert rights(table) == {"SELECT"}, table
        else:
            assert rights(table) == {"SELECT", "INSERT", "UPDATE", "DELETE"}, table


@needs_postgresql
def test_the_application_role_cannot_migrate_and_says_who_can(granted: Installation):
    owner = granted.engine(granted.owner_url)
    with owner.connect() as connection:
        revisions = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())

    with pytest.raises(SchemaPrivilegeError, match="owner of the database"):
        installation.enable(granted.engine(granted.app_url), ["intake"])
    code, output = ordo(granted.folder, granted.app_url, "plugins", "enable", "intake")
    assert code == 1
    assert "Run `ordo db upgrade` or `ordo plugins enable` connected as the owner" in output

    with Session(owner) as session:
        assert session.scalar(select(func.count()).select_from(PluginState).where(PluginState.enabled)) == 0
        assert set(session.scalars(text("SELECT version_num FROM alembic_version"))) == revisions
        assert session.scalar(select(func.count()).select_from(Order)) == 0


@needs_postgresql
def test_a_missing_role_a_superuser_and_the_owner_itself_are_refused(granted: Installation):
    for role, said in [
        ("nobody_here", "does not exist; create it first"),
        ("postgres", "is a superuser"),
    ]:
        code, output = ordo(granted.folder, granted.owner_url, "db", "grant-app-role", role)
        assert code == 1 and said in output, output
    with granted.engine(granted.app_url).begin() as connection:
        from core.database_role import grant_application_role

        with pytest.raises(DatabaseRoleError, match="owner cannot be the app's role"):
            grant_application_role(connection, granted.role)


@pytest.mark.parametrize("name", ["", "Ordo", "app; DROP TABLE audit_log", "x" * 64, "ordo-app", "1app"])
def test_a_role_name_that_is_not_a_plain_identifier_is_refused(name: str):
    with pytest.raises(DatabaseRoleError, match="not a plain role name"):
        check_role_name(name)


def test_on_sqlite_the_command_explains_that_the_triggers_are_the_guard(ordo_templates: Any, tmp_path: Path):
    folder = tmp_path / "instance"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ordo.sqlite3'}"
    code, output = ordo(folder, url, "init", "--admin-email", "a@example.com", "--admin-password", "Secret123x")
    assert code == 0, output
    code, output = ordo(folder, url, "db", "grant-app-role", "ordo_app")
    assert code == 1
    assert "only PostgreSQL has roles" in output

"""Alembic, driven from code: core's versions plus one branch per plugin.

Core's revisions carry the branch label ``core``; each plugin's branch is labelled
with the plugin's name and its first revision depends on a core revision. Every
installed plugin's versions folder is on the path (so a disabled plugin's applied
revisions stay known), but only core and the *enabled* plugins are upgraded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from core.database_role import lacks_privilege
from core.labels import N_
from core.plugins import PluginError, PluginInfo, discover

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

#: Said when the database refuses a migration for want of rights: the servers connect as the
#: application's role (:mod:`core.database_role`), which may not change tables.
NOT_THE_OWNER = N_(
    "The database role Ordo connects as may not change tables. "
    "Run `ordo db upgrade` or `ordo plugins enable` connected as the owner of the database."
)


class SchemaPrivilegeError(PluginError):
    """A migration the connected role has no right to run; nothing was changed."""


def plugin_versions(installed: Iterable[PluginInfo]) -> dict[str, Path]:
    """Each installed plugin's versions folder, from its ``ordo_register_migrations``."""
    folders: dict[str, Path] = {}
    for info in installed:
        hook = getattr(info.module, "ordo_register_migrations", None)
        for branch in (hook() if hook else None) or ():
            folders[info.name] = Path(branch.versions)
    return folders


def alembic_config(connection: Connection | None = None, installed: dict[str, PluginInfo] | None = None) -> Config:
    """An Alembic config for this checkout and every installed plugin."""
    installed = installed if installed is not None else discover()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = [str(MIGRATIONS / "versions"), *(str(p) for p in plugin_versions(installed.values()).values())]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    cfg.attributes["installed"] = installed
    return cfg


def upgrade(engine: Engine, plugins: Iterable[str], installed: dict[str, PluginInfo] | None = None) -> None:
    """Bring core and each named plugin's branch to head, in one transaction per branch.

    Raises :class:`SchemaPrivilegeError` when the connected role may not change tables (the
    application's role, :mod:`core.database_role`); that branch's transaction is rolled back.
    """
    installed = installed if installed is not None else discover()
    folders = plugin_versions(installed.values())
    targets = ["core@head", *(f"{name}@head" for name in plugins if name in folders)]
    for target in targets:
        try:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection, installed), target)
        except DBAPIError as exc:
            if lacks_privilege(exc):
                raise SchemaPrivilegeError(NOT_THE_OWNER) from None
            raise


def analyze_indexes(connection: Connection, names: Iterable[str]) -> None:
    """Give SQLite's planner statistics for new indexes, if the database has any.

    For migrations adding indexes: once a database was analysed (``sqlite_stat1``), an
    index without figures may lose to an older one that has them. A database never
    analysed is left so (SQLite then assumes an index is selective). Other databases
    keep their statistics themselves.
    """
    if connection.dialect.name != "sqlite":
        return
    if connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is None:
        return
    for name in names:
        connection.exec_driver_sql(f'ANALYZE "{name}"')


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions(plugins: Iterable[str], installed: dict[str, PluginInfo] | None = None) -> set[str]:
    """The head revisions of core and the named plugins' branches."""
    installed = installed if installed is not None else discover()
    script = ScriptDirectory.from_config(alembic_config(None, installed))
    heads = set(script.get_revisions("core@head"))
    folders = plugin_versions(installed.values())
    for name in plugins:
        if name in folders:
            heads |= set(script.get_revisions(f"{name}@head"))
    # A head of core that a plugin revision builds on is not itself a head any more.
    return {rev.revision for rev in heads if rev is not None and not _superseded(script, rev.revision, heads)}


def _superseded(script: ScriptDirectory, revision: str, heads: set[Any]) -> bool:
    for other in heads:
        if other is None or other.revision == revision:
            continue
        if revision in {r.revision for r in script.iterate_revisions(other.revision, "base")}:
            return True
    return False


def drift(engine: Engine, owns: Any) -> list[Any]:
    """Differences between the models and the database for the tables ``owns(name)`` accepts."""
    from core.db import Base

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name != "alembic_version" and bool(owns(name))
        table = getattr(obj, "table", None)
        return table is None or bool(owns(table.name))

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include, "compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, Base.metadata))

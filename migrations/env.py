"""Alembic environment: runs core's and the plugins' revisions on the given connection.

Ordo drives Alembic from code (:mod:`core.migrate`), which passes the connection in
``config.attributes``. The metadata holds every installed plugin's models, so
autogenerate sees them all.
"""

from __future__ import annotations

import importlib

from alembic import context

from core.db import Base, make_engine
from core.models import *  # noqa: F403  (registers core tables)

config = context.config
for info in (config.attributes.get("installed") or {}).values():
    hook = getattr(info.module, "ordo_register_models", None)
    for module_name in (hook() if hook else None) or ():
        importlib.import_module(module_name)

target_metadata = Base.metadata


def run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:  # plain `alembic` command line with -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url") or "sqlite:///instance/ordo.sqlite3"
    with make_engine(url).begin() as conn:
        run(conn)

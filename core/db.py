"""Database plumbing: the declarative base, engines and sessions.

One ``Base`` with a naming convention keeps constraint names stable for Alembic.
SQLite (the embedded default) gets WAL, foreign keys and a busy timeout on every
connection; any other SQLAlchemy URL (PostgreSQL) is used as given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Numeric, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Money columns: amounts are kept to the cent, unit prices to four places.
Money = Numeric(16, 2, asdecimal=True)
UnitPrice = Numeric(16, 4, asdecimal=True)
Quantity = Numeric(16, 3, asdecimal=True)
Percent = Numeric(7, 4, asdecimal=True)

BUSY_TIMEOUT_MS = 15_000


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Ordo stores aware UTC datetimes")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of every core and plugin model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        Decimal: Money,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime (the only kind Ordo stores)."""
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A writing transaction takes the write lock when it starts, so two writers queue
    # on the busy timeout instead of failing later when a read lock cannot be upgraded.
    # Read-only work (engine option ``ordo_read_only``) begins deferred and never
    # waits for writers (WAL).
    if conn.get_execution_options().get("ordo_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``, configured for Ordo's needs on that backend."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)
        # The driver's own transaction handling is replaced by ours (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        event.listen(engine, "connect", _disable_pysqlite_autobegin)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _disable_pysqlite_autobegin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def make_session_factory(
    engine: Engine, read_only: bool = False, registry: Any = None, instance: Any = None
) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; objects stay usable after commit.

    ``read_only`` sessions are for work that only reads (page views, reports): on
    SQLite they never wait for the write lock. ``registry`` and ``instance`` are kept in
    ``session.info`` so services and hooks reach the enabled plugins' settings and the
    instance's file store without passing them around.
    """
    bind = engine.execution_options(ordo_read_only=True) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False, info={"ordo_registry": registry, "ordo_instance": instance})


def sync_id_sequences(bind: Any, *tables: str) -> None:
    """After rows were inserted with explicit ids, move each table's ``id`` sequence past them.

    ``bind`` is a connection or session. Only PostgreSQL needs it (SQLite's INTEGER PRIMARY
    KEY takes the largest id plus one anyway); elsewhere it does nothing.
    """
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    if dialect.name != "postgresql":
        return
    for table in tables:
        quoted = dialect.identifier_preparer.quote(table)  # ("order" is a reserved word)
        bind.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{quoted}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {quoted}), 0) + 1, false)"
            )
        )


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session

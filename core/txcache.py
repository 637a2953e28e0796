"""Values read once per transaction: kept in ``session.info`` until they may have changed.

An order's submission asks the same questions many times — which steps are switched
off, which company it belongs to, what the user may do, whether audit follows the
order — each answer one query that gives the same rows every time within the
transaction. :func:`remembered` keeps such an answer for the rest of the transaction,
with the model classes it was read from (``watch``). It is forgotten

* when the outermost transaction ends (commit or rollback): the next one reads anew,
  so another session's committed change is seen from the next transaction on;
* when a savepoint rolls back (whatever was read inside it may be undone);
* when the session flushes a new, changed or deleted object of a watched class;
* when the session executes an INSERT, UPDATE or DELETE statement on a watched
  class's table (any textual statement counts as one, on every table);
* and it is not used while such an object has changes not flushed yet: the answer is
  then read again, and the query's autoflush writes the change first.

So a change made through the session is seen at once, exactly as without the cache.
A change made by another connection in the middle of the transaction is not (SQLite
gives a transaction a fixed view anyway); :mod:`core.settings` keeps stored setting
values the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.elements import TextClause

T = TypeVar("T")

#: ``session.info`` key of the remembered values: ``{key: (value, watched classes)}``.
_REMEMBERED = "ordo_txcache"


def pending_changes(session: Session, watch: tuple[type, ...]) -> bool:
    """Whether an object of a class in ``watch`` is added, changed or deleted but not flushed."""
    return any(
        isinstance(instance, watch) for group in (session.new, session.dirty, session.deleted) for instance in group
    )


def remembered(session: Session, key: Hashable, load: Callable[[], T], watch: tuple[type, ...]) -> T:
    """``load()``, read once per transaction of ``session`` and kept under ``key``.

    ``watch`` names the mapped classes the answer is read from: a change to one of them
    through the session makes the next call read it again (see the module's doc).
    ``load`` must give the same answer whenever it is called within the transaction
    while nothing in ``watch`` changes.
    """
    entries: dict[Hashable, tuple[Any, tuple[type, ...]]] = session.info.setdefault(_REMEMBERED, {})
    if key in entries and not pending_changes(session, watch):
        return entries[key][0]
    entries.pop(key, None)
    value = load()
    if session.in_transaction():  # kept only within a transaction, whose end forgets it
        session.info.setdefault(_REMEMBERED, {})[key] = (value, watch)
    return value


def forget(session: Session, watched: type | None = None) -> None:
    """Forget what ``session`` remembered from ``watched`` (every value when ``None``)."""
    entries = session.info.get(_REMEMBERED)
    if not entries:
        return
    if watched is None:
        entries.clear()
        return
    for key in [k for k, (_, watch) in entries.items() if any(issubclass(watched, w) for w in watch)]:
        del entries[key]


def _forget_tables(session: Session, tables: set[str] | None) -> None:
    """Forget the values read from a class mapped to one of ``tables`` (all of them for ``None``)."""
    entries = session.info.get(_REMEMBERED)
    if not entries:
        return
    if tables is None:
        entries.clear()
        return
    for key in [k for k, (_, watch) in entries.items() if any(_table_of(w) in tables for w in watch)]:
        del entries[key]


def _table_of(cls: type) -> str | None:
    table = getattr(inspect(cls, raiseerr=False), "local_table", None)
    return getattr(table, "name", None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction
        session.info.pop(_REMEMBERED, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_at_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_REMEMBERED, None)


@event.listens_for(Session, "after_flush")
def _forget_flushed(session: Session, _context: Any) -> None:
    if not session.info.get(_REMEMBERED):
        return
    for kind in {type(instance) for group in (session.new, session.dirty, session.deleted) for instance in group}:
        forget(session, kind)


@event.listens_for(Session, "do_orm_execute")
def _forget_written(state: ORMExecuteState) -> None:
    if state.is_select or not state.session.info.get(_REMEMBERED):
        return
    statement = state.statement
    if isinstance(statement, TextClause) and statement.text.lstrip()[:6].upper() == "SELECT":
        return
    name = getattr(getattr(statement, "table", None), "name", None)
    # An INSERT, UPDATE or DELETE names its table; any other text may write anywhere.
    _forget_tables(state.session, {name} if name else None)

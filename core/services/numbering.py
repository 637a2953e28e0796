"""Gap-free document numbers per company, code and year (e.g. ``SO2026-000123``).

The counter row is incremented with a single ``UPDATE … RETURNING`` inside the
caller's transaction: PostgreSQL locks the row and SQLite holds the write lock, so
two concurrent orders never get the same number, and a rolled-back order gives its
number back.
"""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.models import NumberSequence


def next_serial(session: Session, company_id: int, code: str, year: int) -> int:
    """Take the next serial number of ``code`` for ``company_id`` in ``year``."""
    where = (NumberSequence.company_id == company_id) & (NumberSequence.code == code) & (NumberSequence.year == year)
    for _ in range(2):
        taken = session.execute(
            update(NumberSequence)
            .where(where)
            .values(next_value=NumberSequence.next_value + 1)
            .returning(NumberSequence.next_value)
        ).scalar_one_or_none()
        if taken is not None:
            return taken - 1
        try:
            with session.begin_nested():
                session.execute(
                    insert(NumberSequence).values(company_id=company_id, code=code, year=year, next_value=1)
                )
        except IntegrityError:
            pass  # another transaction created it first; take from it
    raise RuntimeError("could not allocate a number")  # pragma: no cover - unreachable

"""A hash chain over the audit log, and the check that the log is complete and unaltered.

The log is append-only (the ORM refuses changes; database triggers refuse UPDATE and
DELETE). Someone with the database owner's rights can still lift the triggers, so each
entry is also **sealed**: ``seal = SHA-256(previous seal + the entry's canonical content)``,
in entry order, kept in ``audit_seal`` (append-only too). :func:`verify` recomputes the
chain and names every entry that was changed, removed or slipped in afterwards.

A forger who rewrites an entry *and* every seal after it leaves a consistent chain; the
answer is an anchor kept elsewhere: :func:`verify` reports the head (last entry and its
seal) — write it down, send it off the machine — and a later check given that anchor
(``ordo audit verify --expect ID:HASH``) fails if any entry up to it was rewritten.

Sealing runs in the ``core.audit_seal`` job (every five minutes) rather than with each
write, so no transaction waits for the chain's last link; entries not yet sealed are
reported as such. The chain starts at :data:`GENESIS`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import AuditLog, AuditSeal

#: The "previous seal" of the first entry.
GENESIS = "0" * 64
#: Entries read and sealed per batch.
BATCH = 2000

_TABLE = AuditLog.__table__


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return value


def canonical(row: Row[Any]) -> bytes:
    """An entry's content as bytes that are the same on every database and every read."""
    content = {column.name: _plain(getattr(row, column.name)) for column in _TABLE.columns}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def link(previous: str, row: Row[Any]) -> str:
    """The seal of entry ``row`` after the seal ``previous``."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical(row)).hexdigest()


def _entries(session: Session, after: int, until: int | None = None) -> Iterator[Row[Any]]:
    """The entries with ids above ``after`` (up to ``until``), in id order, in batches."""
    while True:
        stmt = select(*_TABLE.columns).where(_TABLE.c.id > after).order_by(_TABLE.c.id).limit(BATCH)
        if until is not None:
            stmt = stmt.where(_TABLE.c.id <= until)
        rows = list(session.execute(stmt))
        yield from rows
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def seal(session: Session, now: dt.datetime | None = None) -> int:
    """Seal every entry not sealed yet, in id order, in the caller's transaction; returns how many."""
    last = session.execute(select(AuditSeal.audit_id, AuditSeal.hash).order_by(AuditSeal.audit_id.desc()).limit(1))
    head = last.first()
    previous, after = (head.hash, head.audit_id) if head else (GENESIS, 0)
    at = now or utcnow()
    count, batch = 0, []
    for row in _entries(session, after):
        previous = link(previous, row)
        batch.append({"audit_id": row.id, "hash": previous, "sealed_at": at})
        if len(batch) >= BATCH:
            session.execute(insert(AuditSeal), batch)
            count, batch = count + len(batch), []
    if batch:
        session.execute(insert(AuditSeal), batch)
        count += len(batch)
    return count


@dataclass
class Verdict:
    """What :func:`verify` found."""

    checked: int = 0
    unsealed: int = 0
    head_id: int | None = None
    head_hash: str | None = None
    #: Entries whose content no longer matches their seal (changed, or removed and replaced).
    altered: list[int] = field(default_factory=list)
    #: Sealed entries that are gone.
    removed: list[int] = field(default_factory=list)
    #: Entries without a seal among sealed ones: written in behind the chain.
    inserted: list[int] = field(default_factory=list)
    #: The anchor given did not match the chain.
    anchor_mismatch: str | None = None

    @property
    def intact(self) -> bool:
        """Whether the log is complete and unaltered as far as it is sealed (and matches the anchor)."""
        return not (self.altered or self.removed or self.inserted or self.anchor_mismatch)


def verify(session: Session, expect: tuple[int, str] | None = None) -> Verdict:
    """Recompute the chain over the whole log; ``expect`` = an anchor ``(entry id, seal)`` noted earlier."""
    verdict = Verdict()
    seals = {audit_id: digest for audit_id, digest in session.execute(select(AuditSeal.audit_id, AuditSeal.hash))}
    sealed_ids = sorted(seals)
    last_sealed = sealed_ids[-1] if sealed_ids else 0
    previous = GENESIS
    present: set[int] = set()
    for row in _entries(session, 0):
        present.add(row.id)
        stored = seals.get(row.id)
        if stored is None:
            if row.id < last_sealed:
                verdict.inserted.append(row.id)
            else:
                verdict.unsealed += 1
            continue
        verdict.checked += 1
        if link(previous, row) != stored:
            verdict.altered.append(row.id)
        previous = stored  # each link is checked on its own, so one change is named alone
    verdict.removed = [audit_id for audit_id in sealed_ids if audit_id not in present]
    if sealed_ids:
        verdict.head_id, verdict.head_hash = last_sealed, seals[last_sealed]
    if expect is not None:
        anchor_id, anchor_hash = expect
        if seals.get(anchor_id) != anchor_hash:
            verdict.anchor_mismatch = (
                f"entry #{anchor_id}'s seal is {seals.get(anchor_id) or 'missing'}, not {anchor_hash}"
            )
    return verdict

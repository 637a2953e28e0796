"""The audit log's hash chain: sealing, verifying, and catching deliberate tampering (CORE-6).

The tampering is done the way an attacker with the database owner's rights would: the
append-only triggers are lifted (SQLite: dropped; PostgreSQL: disabled) and rows are
rewritten with raw SQL. ``ordo audit verify`` must name what was done and exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.cli import cli
from core.jobs.runner import run_due
from core.models import AuditLog, AuditSeal
from core.services.audit_seal import GENESIS, seal, verify
from core.testing import make_order
from core.web import OrdoState

pytestmark = pytest.mark.req("CORE-6")

GUARDED = ("audit_log", "audit_seal")
#: Every entry with its typed columns, as the seal reads them.
ENTRIES = select(*AuditLog.__table__.columns).order_by(AuditLog.id)


@pytest.fixture
def trail(session: Session, admin: Any, seed: Any) -> None:
    """A few orders' worth of audit entries."""
    for n in range(3):
        make_order(session, admin, reference=f"PO-SEAL-{n}")


def ordo(state: OrdoState, tmp_path: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``ordo …`` on the test's database; (exit code, output)."""
    monkeypatch.setenv("ORDO_DATABASE_URL", state.engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path / "inst"), *args])
    return result.exit_code, result.output


def seal_now(state: OrdoState) -> int:
    """Seal everything now, as the job does."""
    with state.sessions() as s, s.begin():
        return seal(s)


def check(state: OrdoState, expect: tuple[int, str] | None = None) -> Any:
    """The verdict over the database as it is now."""
    with state.read_sessions() as s:
        return verify(s, expect)


@pytest.fixture
def unguarded(state: OrdoState) -> Iterator[Any]:
    """A connection with the append-only guards lifted (as the attacker would), put back afterwards."""
    sqlite = state.engine.dialect.name == "sqlite"
    with state.engine.connect() as conn:
        if sqlite:
            saved = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_log', 'audit_seal')")
            ).scalars()
            saved = list(saved)
            for name in conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_log', 'audit_seal')"
                )
            ).scalars():
                conn.execute(text(f"DROP TRIGGER {name}"))
            conn.execute(text("PRAGMA foreign_keys = OFF"))
        else:
            for table in GUARDED:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        conn.commit()
        yield conn
        if sqlite:
            for sql in saved:
                conn.execute(text(sql))
            conn.execute(text("PRAGMA foreign_keys = ON"))
        else:
            for table in GUARDED:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))
        conn.commit()


def test_an_untouched_log_verifies_and_new_entries_wait_for_the_next_sealing(state: OrdoState, trail, session, admin):
    sealed = seal_now(state)
    assert sealed > 0
    assert seal_now(state) == 0  # nothing new
    verdict = check(state)
    assert verdict.intact and verdict.checked == sealed and verdict.unsealed == 0
    make_order(session, admin, reference="PO-LATER")
    verdict = check(state)
    assert verdict.intact and verdict.unsealed > 0
    assert seal_now(state) == verdict.unsealed
    assert check(state).intact


def test_the_chain_starts_at_genesis_and_each_seal_depends_on_the_previous(state: OrdoState, trail):
    from core.services.audit_seal import link

    seal_now(state)
    with state.read_sessions() as s:
        seals = list(s.query(AuditSeal).order_by(AuditSeal.audit_id))
        rows = list(s.execute(ENTRIES))
    assert len(seals) == len(rows)
    previous = GENESIS
    for entry, row in zip(seals, rows, strict=True):
        assert entry.hash == link(previous, row) and len(entry.hash) == 64
        previous = entry.hash


def test_the_sealing_job_runs_in_the_worker(state: OrdoState, trail):
    runs = run_due(state.sessions, state.registry, worker="test")
    assert "core.audit_seal" in [run.job for run in runs]
    assert check(state).checked > 0


def tamper(unguarded: Any, *statements: str) -> int:
    """Run ``statements`` (``:id`` = the second entry) on the unguarded connection; returns that id."""
    target = unguarded.execute(text("SELECT min(id) + 1 FROM audit_log")).scalar()
    for statement in statements:
        unguarded.execute(text(statement), {"id": target})
    unguarded.commit()
    return int(target)


def test_a_changed_entry_is_named(state: OrdoState, trail, unguarded):
    seal_now(state)
    target = tamper(unguarded, "UPDATE audit_log SET reason = 'nothing happened' WHERE id = :id")
    verdict = check(state)
    assert not verdict.intact and verdict.altered == [target]


def test_a_removed_entry_breaks_the_chain_after_it(state: OrdoState, trail, unguarded):
    seal_now(state)
    target = tamper(unguarded, "DELETE FROM audit_seal WHERE audit_id = :id", "DELETE FROM audit_log WHERE id = :id")
    verdict = check(state)
    assert not verdict.intact and verdict.altered == [target + 1]


def test_an_entry_whose_seal_was_removed_too_is_named_as_slipped_in(state: OrdoState, trail, unguarded):
    seal_now(state)
    target = tamper(unguarded, "DELETE FROM audit_seal WHERE audit_id = :id")
    verdict = check(state)
    assert not verdict.intact and verdict.inserted == [target]


def test_a_rewritten_chain_is_caught_by_the_anchor_kept_elsewhere(state: OrdoState, trail, unguarded):
    from core.services.audit_seal import link

    seal_now(state)
    anchor = (check(state).head_id, check(state).head_hash)
    # The forger changes an entry and recomputes every seal from there on.
    first = unguarded.execute(text("SELECT min(id) FROM audit_log")).scalar()
    unguarded.execute(text("UPDATE audit_log SET reason = 'forged' WHERE id = :id"), {"id": first})
    unguarded.execute(text("DELETE FROM audit_seal"))
    unguarded.commit()
    with state.sessions() as s, s.begin():
        previous = GENESIS
        for row in list(s.execute(ENTRIES)):
            previous = link(previous, row)
            s.execute(text("INSERT INTO audit_seal (audit_id, hash, sealed_at) VALUES (:a, :h, :t)"),
                      {"a": row.id, "h": previous, "t": row.at})  # fmt: skip
    assert check(state).intact  # consistent in itself ...
    verdict = check(state, anchor)  # ... but not with what was noted before
    assert not verdict.intact and verdict.anchor_mismatch


def test_the_command_reports_tampering_and_exits_1(
    state: OrdoState, trail, unguarded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    code, out = ordo(state, tmp_path, "audit", "seal", monkeypatch=monkeypatch)
    assert code == 0 and "Sealed" in out, out
    code, out = ordo(state, tmp_path, "audit", "verify", monkeypatch=monkeypatch)
    assert code == 0 and "complete and unaltered" in out, out
    head = out.split("Head: ", 1)[1].split()[0]
    code, out = ordo(state, tmp_path, "audit", "verify", "--expect", head, monkeypatch=monkeypatch)
    assert code == 0, out
    target = unguarded.execute(text("SELECT max(id) FROM audit_log")).scalar()
    unguarded.execute(text("UPDATE audit_log SET action = 'nothing' WHERE id = :id"), {"id": target})
    unguarded.commit()
    code, out = ordo(state, tmp_path, "audit", "verify", monkeypatch=monkeypatch)
    assert code == 1 and f"BROKEN at entry #{target}" in out, out
    code, out = ordo(state, tmp_path, "audit", "verify", "--expect", "12:abc", monkeypatch=monkeypatch)
    assert code == 2 and "ENTRY:SEAL" in out


def test_seals_are_append_only_too(state: OrdoState, trail):
    from sqlalchemy.exc import DatabaseError

    seal_now(state)
    with state.engine.connect() as conn:
        for statement in ("UPDATE audit_seal SET hash = 'x'", "DELETE FROM audit_seal"):
            with pytest.raises(DatabaseError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()

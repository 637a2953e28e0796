"""``ordo db backup`` / ``ordo db restore`` on the suite's database: SQLite, and PostgreSQL when configured.

The round trip goes through the real command line and the real tools (SQLite's backup
API; ``pg_dump``, ``pg_restore`` and ``psql``): what was written after the backup is gone
after the restore, and a file that is not an Ordo backup, or a damaged one, is refused
with the database left as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from core.cli import cli
from core.db import make_engine
from core.models import User


@pytest.fixture
def database(ordo_templates: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, initialised database of the suite's kind; ``ordo`` commands use it."""
    folder = tmp_path / "instance"
    folder.mkdir()
    url = ordo_templates.new_database((), folder)
    monkeypatch.setenv("ORDO_DATABASE_URL", url)
    yield url
    make_engine(url).dispose()
    ordo_templates.drop(url)


def ordo(tmp_path: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    """Run ``ordo --instance <tmp>/instance …`` in-process; (exit code, output)."""
    result = CliRunner().invoke(cli, ["--instance", str(tmp_path / "instance"), *args], input=input)
    return result.exit_code, result.output


def users(url: str) -> set[str]:
    """The e-mails of the database's users."""
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            return set(s.scalars(select(User.email)))
    finally:
        engine.dispose()


@pytest.mark.req("CORE-4")
def test_a_backup_restores_what_was_there_and_drops_what_came_later(database: str, tmp_path: Path):
    before = users(database)
    dump = tmp_path / "ordo.backup"
    code, out = ordo(tmp_path, "db", "backup", str(dump))
    assert code == 0, out
    assert dump.stat().st_size > 0 and not dump.with_name(dump.name + ".partial").exists()
    assert ordo(tmp_path, "db", "backup", str(dump))[0] != 0  # never overwrites a backup

    code, out = ordo(tmp_path, "users", "create", "late@example.com", "--password", "pass-word-1", "--role", "sales")
    assert code == 0, out
    engine = make_engine(database)
    with engine.begin() as conn:  # a table made after the backup, as enabling a plugin would
        conn.execute(text("CREATE TABLE made_later (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert "late@example.com" in users(database)

    code, out = ordo(tmp_path, "db", "restore", str(dump), input="n\n")
    assert code != 0 and "late@example.com" in users(database)  # declined: nothing changed
    code, out = ordo(tmp_path, "db", "restore", str(dump), input="y\n")
    assert code == 0, out
    assert users(database) == before
    engine = make_engine(database)
    try:
        assert "made_later" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) >= 1
        with Session(engine) as s:  # ids go on after the restored rows (PostgreSQL's sequences came back too)
            assert s.scalar(select(func.count()).select_from(User)) == len(before)
    finally:
        engine.dispose()
    code, out = ordo(tmp_path, "users", "create", "after@example.com", "--password", "pass-word-1", "--role", "sales")
    assert code == 0, out


def test_a_file_that_is_not_a_backup_is_refused_and_changes_nothing(database: str, tmp_path: Path):
    before = users(database)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"junk" * 100)
    code, out = ordo(tmp_path, "db", "restore", "--yes", str(junk))
    assert code != 0
    assert "not an Ordo database backup" in out or "not a PostgreSQL dump" in out
    assert users(database) == before


def test_a_damaged_backup_fails_to_restore_and_leaves_the_database_as_it_was(database: str, tmp_path: Path):
    if not database.startswith("postgresql"):
        pytest.skip("SQLite's integrity check refuses a damaged file (the junk-file test above)")
    dump = tmp_path / "ordo.backup"
    assert ordo(tmp_path, "db", "backup", str(dump))[0] == 0
    # A dump whose table of contents is whole but whose data is cut off.
    data = dump.read_bytes()
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(data[: int(len(data) * 0.6)])
    code, out = ordo(tmp_path, "users", "create", "kept@example.com", "--password", "pass-word-1", "--role", "sales")
    assert code == 0, out
    code, out = ordo(tmp_path, "db", "restore", "--yes", str(damaged))
    assert code != 0, out
    assert "kept@example.com" in users(database)


def test_a_backup_taken_while_orders_are_written_restores_to_a_consistent_database(database: str, tmp_path: Path):
    """The backup drill: orders keep arriving while ``ordo db backup`` runs; the restored
    database holds only whole orders, and the number counter agrees with them."""
    import threading

    from core.models import NumberSequence, Order, OrderLine
    from core.services.orders import create_order, load_order_input
    from core.testing import ADMIN_EMAIL, order_payload, seed_master_data

    engine = make_engine(database)
    with Session(engine, expire_on_commit=False) as s:
        seed_master_data(s)
        admin = s.scalar(select(User).where(User.email == ADMIN_EMAIL))
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def write_orders() -> None:
        try:
            while not stop.is_set() or len(written) < 20:
                with Session(engine) as s, s.begin():
                    actor = s.get(User, admin.id)  # type: ignore[union-attr]
                    order = create_order(s, actor, load_order_input(order_payload(reference=f"PO-{len(written)}")))
                    order_id = order.id
                written.append(order_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=write_orders)
    writer.start()
    try:
        while len(written) < 5 and not errors:
            threading.Event().wait(0.05)
        dump = tmp_path / "during.backup"
        code, out = ordo(tmp_path, "db", "backup", str(dump))
        assert code == 0, out
    finally:
        stop.set()
        writer.join(60)
    assert errors == []
    assert len(written) >= 20

    code, out = ordo(tmp_path, "db", "restore", "--yes", str(dump))
    assert code == 0, out
    with Session(engine) as s:
        orders = list(s.scalars(select(Order)))
        assert 5 <= len(orders) < len(written) + 1
        for order in orders:  # no half-written order: its lines and amounts are all there
            lines = list(s.scalars(select(OrderLine).where(OrderLine.order_id == order.id)))
            assert len(lines) == 2
            assert order.untaxed_amount == sum((line.amount for line in lines), 0)
        serials = sorted(int(order.number.rsplit("-", 1)[1]) for order in orders)
        assert serials == list(range(1, len(orders) + 1))  # gap-free up to the snapshot
        counter = s.scalar(select(NumberSequence.next_value).where(NumberSequence.code == "order"))
        assert counter == len(orders) + 1  # the counter was backed up in the same snapshot
    engine.dispose()

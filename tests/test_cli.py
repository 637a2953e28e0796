"""The scriptable ``ordo`` command line: init, users, tokens, plugins, steps, db, demo, serve."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli import cli
from core.db import make_engine
from core.models import Order, OrderTransition, User
from core.security.tokens import user_for_token


@pytest.fixture
def ordo(tmp_path):
    """Run ``ordo --instance <tmp> …`` in-process; returns (exit code, output)."""
    runner = CliRunner()
    instance = tmp_path / "instance"

    def run(*args: str, input: str | None = None):
        result = runner.invoke(cli, ["--instance", str(instance), *args], input=input, catch_exceptions=False)
        return result.exit_code, result.output

    run.instance = instance  # type: ignore[attr-defined]
    return run


def _engine(ordo):
    return make_engine(f"sqlite:///{ordo.instance / 'ordo.sqlite3'}")


def test_init_without_prompts_creates_the_administrator(ordo):
    code, out = ordo("init", "--admin-email", "Boss@Example.com", "--admin-password", "s3cret-pass")
    assert code == 0, out
    with Session(_engine(ordo)) as s:
        admin = s.scalar(select(User).where(User.email == "boss@example.com"))
        assert admin is not None
        assert [r.code for r in admin.roles] == ["admin"]
        assert admin.password_hash.startswith("$argon2id$")


def test_init_refuses_a_weak_password(ordo):
    code, out = ordo("init", "--admin-email", "a@example.com", "--admin-password", "short")
    assert code != 0
    assert "at least 8 characters" in out


@pytest.mark.req("CORE-3")
def test_users_create_and_token(ordo):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    code, out = ordo(
        "users", "create", "s@example.com", "--password", "pass-word-1", "--role", "sales", "--role", "nope"
    )
    assert code != 0
    assert "unknown role(s) nope" in out and "sales_manager" in out
    code, out = ordo(
        "users", "create", "s@example.com", "--password", "pass-word-1", "--role", "sales", "--branch", "HQ"
    )
    assert code == 0, out
    code, token = ordo("users", "token", "s@example.com")
    assert code == 0
    token = token.strip()
    assert "\n" not in token and token.startswith("ordo_")
    with Session(_engine(ordo)) as s:
        user = user_for_token(s, token)
        assert user is not None and user.email == "s@example.com"
        assert user_for_token(s, token + "x") is None
    code, out = ordo("users", "token", "nobody@example.com")
    assert code != 0 and "no user" in out


def test_plugins_enable_disable_and_missing_requirement(ordo):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    code, out = ordo("plugins", "enable", "review", "kpi")
    assert code == 0 and "review" in out and "kpi" in out
    code, out = ordo("plugins", "list")
    assert "review       enabled" in out and "billing      disabled" in out
    code, out = ordo("plugins", "enable", "no-such-plugin")
    assert code != 0 and "'no-such-plugin' is not installed" in out
    code, out = ordo("plugins", "disable", "kpi")
    assert code == 0
    code, out = ordo("plugins", "list")
    assert "kpi          disabled" in out


@pytest.mark.req("CORE-2")
def test_steps_can_be_switched_off_but_not_the_milestones(ordo):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    code, out = ordo("steps", "disable", "submitted")
    assert code == 0
    code, out = ordo("steps", "list")
    assert any(line.split()[1:3] == ["off", "submitted"] for line in out.splitlines())
    code, out = ordo("steps", "disable", "draft")
    assert code != 0 and "cannot be switched off" in out


@pytest.mark.req("CORE-4")
def test_backup_and_restore_round_trip(ordo, tmp_path):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    backup = tmp_path / "backup.sqlite3"
    assert ordo("db", "backup", str(backup))[0] == 0
    assert ordo("db", "backup", str(backup))[0] != 0  # never overwrites
    ordo("users", "create", "late@example.com", "--password", "pass-word-1", "--role", "sales")
    code, out = ordo("db", "restore", str(backup), input="y\n")
    assert code == 0, out
    with Session(_engine(ordo)) as s:
        assert s.scalar(select(User.id).where(User.email == "late@example.com")) is None
        assert s.scalar(select(User.id).where(User.email == "a@example.com")) is not None
    not_a_db = tmp_path / "junk.sqlite3"
    not_a_db.write_bytes(b"junk" * 100)
    code, out = ordo("db", "restore", "--yes", str(not_a_db))
    assert code != 0 and "not an Ordo database backup" in out


def test_db_upgrade_reports_heads(ordo):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    from core.migrate import head_revisions

    code, out = ordo("db", "upgrade")
    assert code == 0
    assert all(head in out for head in head_revisions([]))


@pytest.mark.req("CORE-8")
def test_demo_has_orders_in_every_state_and_is_idempotent(ordo):
    code, out = ordo("demo")
    assert code == 0 and "admin@demo.ordo" in out and "customer@demo.ordo" in out
    code, out = ordo("demo")
    assert "already present" in out
    with Session(_engine(ordo)) as s:
        statuses = set(s.scalars(select(Order.status)))
        assert statuses == {"draft", "submitted", "confirmed", "completed", "cancelled", "rejected"}
        cancelled = s.scalar(select(Order).where(Order.status == "cancelled"))
        reasons = s.scalars(select(OrderTransition.reason).where(OrderTransition.order_id == cancelled.id)).all()
        assert any(reasons)
        remote = s.scalars(select(Order.ship_to_province)).all()
        assert "重庆市" in remote and any(p != "重庆市" for p in remote)


@pytest.mark.req("CORE-7")
def test_demo_shows_customer_status_mails_in_the_outbox_and_a_chinese_order_confirmation(ordo):
    import io

    from pypdf import PdfReader

    from core.files import FileStore
    from core.models import Customer, IssuedDocument, OutboxMessage

    ordo("demo")
    with Session(_engine(ordo)) as s:
        status_mails = s.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_status_changed")).all()
        assert status_mails and all(m.status == "queued" and m.channel == "email" for m in status_mails)
        assert any("订单" in m.subject for m in status_mails)
        issued = s.scalars(select(IssuedDocument).where(IssuedDocument.document == "order_confirmation")).one()
        order = s.get(Order, issued.order_id)
        customer = s.get(Customer, order.customer_id)
        sent = s.scalars(select(OutboxMessage).where(OutboxMessage.document_id == issued.id)).one()
        assert sent.template == "document_issued" and sent.address == customer.contacts[0].email
        pdf = FileStore(ordo.instance / "files").get(issued.sha256)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "订单确认书" in text and order.number in text and customer.name.split()[0] in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_loopback(ordo):
    ordo("demo")
    port = _free_port()
    env = {**os.environ, "ORDO_INSTANCE": str(ordo.instance)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert 'name="csrf_token"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_running_app_picks_up_a_newly_enabled_plugin(ordo):
    from core.app import create_app
    from core.installation import enable
    from core.wsgi import ReloadingApp

    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    served = ReloadingApp(lambda: create_app({"INSTANCE": ordo.instance}), interval=0)
    assert served.current().extensions["ordo"].registry.enabled == []
    enable(_engine(ordo), ["kpi"])
    assert served.current().extensions["ordo"].registry.enabled == ["kpi"]


def test_sqlite_database_runs_in_wal_mode_with_foreign_keys(ordo):
    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    with _engine(ordo).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    raw = sqlite3.connect(Path(ordo.instance) / "ordo.sqlite3")
    assert raw.execute("SELECT count(*) FROM alembic_version").fetchone()[0] >= 1


def test_the_reload_check_never_waits_for_a_writer(ordo):
    from core.app import create_app
    from core.wsgi import ReloadingApp

    ordo("init", "--admin-email", "a@example.com", "--admin-password", "s3cret-pass")
    served = ReloadingApp(lambda: create_app({"INSTANCE": ordo.instance}), interval=0)
    writer = sqlite3.connect(Path(ordo.instance) / "ordo.sqlite3", timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # somebody holds the write lock (a long migration, a restore…)
    try:
        started = time.monotonic()
        assert served.current() is served.app
        assert time.monotonic() - started < 2
    finally:
        writer.rollback()
        writer.close()


def test_demo_refuses_a_database_that_holds_a_real_company(ordo):
    ordo("init", "--admin-email", "boss@real.example", "--admin-password", "s3cret-pass")
    code, out = ordo("demo")
    assert code != 0 and "already holds a company" in out
    with Session(_engine(ordo)) as s:
        assert s.scalar(select(User.id).where(User.email == "admin@demo.ordo")) is None
        assert s.scalar(select(Order.id)) is None


@pytest.mark.req("CORE-3")
def test_portal_users_need_their_customer_and_staff_may_not_have_one(ordo):
    ordo("demo")
    code, out = ordo("users", "create", "p@example.com", "--password", "pass-word-1", "--role", "customer")
    assert code != 0 and "needs --customer" in out
    code, out = ordo(
        "users", "create", "s@example.com", "--password", "pass-word-1", "--role", "sales", "--customer", "CQ001"
    )
    assert code != 0 and "only for portal users" in out
    code, out = ordo(
        "users", "create", "p@example.com", "--password", "pass-word-1", "--role", "customer", "--customer", "CQ001"
    )
    assert code == 0, out
    code, out = ordo(
        "users",
        "create",
        "q@example.com",
        "--password",
        "pass-word-1",
        "--role",
        "sales",
        "--department",
        "finance",
        "--branch",
        "CD",
    )
    assert code == 0, out
    code, out = ordo(
        "users", "create", "r@example.com", "--password", "pass-word-1", "--role", "sales", "--department", "nope"
    )
    assert code != 0 and "unknown department" in out

"""Backing up and restoring an Ordo database: SQLite's online backup, PostgreSQL's dump tools.

Both kinds of backup are consistent while Ordo keeps running: SQLite's backup API copies
one snapshot page by page, and ``pg_dump`` reads everything in one repeatable-read
snapshot. A restore first checks that the file is an Ordo backup of the right kind, then
replaces the whole database atomically — a restore that fails leaves the database as it
was — so servers and workers should be stopped for it (PostgreSQL waits for their
connections' locks otherwise).

PostgreSQL's client programs (``pg_dump``, ``pg_restore``, ``psql``; Debian package
``postgresql-client``) must be installed; the newest on the machine is used.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class BackupError(Exception):
    """The backup or restore could not be done; the message says why. Nothing was changed."""


def backup(database_url: str, path: Path) -> None:
    """Write a consistent copy of the database at ``database_url`` to the new file ``path``."""
    if path.exists():
        raise BackupError(f"{path} exists; choose a new file")
    url = make_url(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        source = _sqlite_file(url)
        if not source.exists():
            raise BackupError(f"no database at {source}")
        with sqlite3.connect(source) as live, sqlite3.connect(path) as copy:
            live.backup(copy)
        return
    _require_postgresql(url)
    partial = path.with_name(path.name + ".partial")
    _run(url, "pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", _conninfo(url))
    partial.replace(path)  # a dump that failed half-way never looks like a backup


def check(database_url: str, path: Path) -> None:
    """Refuse ``path`` unless it is an Ordo backup that can be restored into ``database_url``'s kind."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as copy:
                if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError(f"{path} fails SQLite's integrity check")
                copy.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not an Ordo database backup: {exc}") from None
        return
    _require_postgresql(url)
    listing = _run(url, "pg_restore", "--list", str(path), check_message=f"{path} is not a PostgreSQL dump")
    if "TABLE public alembic_version" not in listing:
        raise BackupError(f"{path} is a PostgreSQL dump, but not of an Ordo database (no alembic_version)")


def restore(database_url: str, path: Path) -> None:
    """Replace the database at ``database_url`` with the backup ``path``, all or nothing."""
    check(database_url, path)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as copy, sqlite3.connect(_sqlite_file(url)) as live:
            copy.backup(live)
        return
    # The dump as SQL, run by psql in one transaction after emptying the schema: tables
    # made since the backup (a plugin enabled later) go too, and any error rolls it all back.
    script = _run(url, "pg_restore", "--no-owner", "--no-privileges", "--file=-", str(path))
    empty = "DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"
    _run(
        url,
        "psql",
        "--no-psqlrc",
        "--quiet",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={_conninfo(url)}",
        stdin=empty + script,
        check_message="the restore failed and was rolled back; the database is unchanged",
    )


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _require_postgresql(url: URL) -> None:
    if url.get_backend_name() != "postgresql":
        raise BackupError(f"backup and restore handle SQLite and PostgreSQL, not {url.get_backend_name()}")


def _conninfo(url: URL) -> str:
    """A libpq connection URI for ``url`` without its password (that goes in ``PGPASSWORD``)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def client_program(name: str) -> str:
    """The path of PostgreSQL client program ``name``: the newest installed version's."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: [int(part) for part in p.parts[-3].split(".") if part.isdigit()],
    )
    found = str(versions[-1]) if versions else shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)")
    return found


def _run(url: URL, program: str, *args: str, stdin: str | None = None, check_message: str | None = None) -> str:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(
        [client_program(program), *args], input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise BackupError(f"{check_message or program + ' failed'}: {detail[0]}")
    return done.stdout

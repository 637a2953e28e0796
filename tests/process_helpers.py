"""Helpers for tests that run Ordo as real processes: servers, workers, an SMTP sink, HTTP calls."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """An aiosmtpd handler that keeps every message's Message-ID (use with ``aiosmtpd.controller.Controller``)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        """Keep the message's id."""
        for line in envelope.content.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("message-id:"):
                with self.lock:
                    self.ids.append(line.split(":", 1)[1].strip())
                break
        return "250 Message accepted"


def start_ordo(args: list[str], instance: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``ordo ARGS`` on ``instance`` and ``database_url`` in its own process group, output to ``log``.

    Its own group, so :func:`kill_group` can SIGKILL a gunicorn master with its workers.
    """
    env = {**os.environ, "ORDO_INSTANCE": str(instance), "ORDO_DATABASE_URL": database_url}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "core.cli", *args], env=env, stdout=out, stderr=out, start_new_session=True
        )


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the process group of ``proc`` (it and every child), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until the server on ``port`` answers (or fail with its log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"server on {port} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)


def post_json(
    port: int, token: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON with a bearer token to the server on ``port``; (status, JSON answer).

    An answer cut off part-way (the server was killed while sending it) raises
    ``ConnectionError`` like one never begun: either way the client has no answer.
    """
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
    except http.client.HTTPException as exc:  # IncompleteRead, a status line cut short, …
        raise ConnectionError(f"the answer to POST {path} was cut off") from exc


ALL_PLUGINS = ("intake", "review", "logistics", "billing", "kpi")


@contextlib.contextmanager
def installation(
    ordo_templates: Any, folder: Path, prepare: Callable[[Session, Any], None] | None = None
) -> Iterator[dict[str, Any]]:
    """A database with every plugin and master data in instance ``folder``, an admin token, an SMTP sink.

    Yields ``folder``, ``url``, ``token``, ``sink`` (its Message-IDs) and ``state`` (the
    app's Ordo state, to read the database). ``prepare(session, state)`` runs before the commit.
    """
    from aiosmtpd.controller import Controller
    from sqlalchemy import select

    from core.app import create_app
    from core.models import User
    from core.settings import set_setting
    from core.testing import ADMIN_EMAIL, seed_master_data, token_for

    folder.mkdir()
    url = ordo_templates.new_database(ALL_PLUGINS, folder)
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    state = create_app({"INSTANCE": folder, "DATABASE_URL": url}).extensions["ordo"]
    try:
        with state.sessions() as session:
            seed_master_data(session)
            admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
            assert admin is not None
            token = token_for(session, admin)
            for key, value in (
                ("core.smtp.host", "127.0.0.1"),
                ("core.smtp.port", smtp.port),
                ("core.smtp.timeout", 10),
            ):
                set_setting(session, key, value, registry=state.registry)
            if prepare is not None:
                prepare(session, state)
            session.commit()
        yield {"folder": folder, "url": url, "token": token, "sink": sink, "state": state}
    finally:
        smtp.stop()
        state.engine.dispose()
        ordo_templates.drop(url)

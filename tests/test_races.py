"""Races through the API, many clients released at once (SQLite, and PostgreSQL when configured).

- The same ``Idempotency-Key`` sent 50 times at once to a real server makes one order; every
  answer names it; the key belongs to its caller, so another caller's identical key makes
  that caller's own order.
- Two editors holding the same version, released together: exactly one wins, the other
  gets a clean 409 ``stale_version``, and the order carries the winner's change.

Each client sends one request at a time on a connection of its own, as separate browsers
or integrations would; the database settles who is first.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from process_helpers import free_port, kill_group, post_json, start_ordo, wait_until_serving
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.app import create_app
from core.models import IdempotencyKey, Order, User
from core.testing import ADMIN_EMAIL, make_user, order_payload, seed_master_data, token_for
from core.web import OrdoState

CLIENTS = 50


def released_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same moment; their results (or errors)."""
    barrier = threading.Barrier(count, timeout=60)
    results: list[Any] = [None] * count

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported by the caller's assertions
            results[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    return results


def post(app: Flask, token: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """One request from a fresh client; (status, JSON with the answer's headers under ``_headers``)."""
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    answer = app.test_client().open(path, headers=headers, **kwargs)
    return answer.status_code, {**(answer.get_json() or {}), "_headers": dict(answer.headers)}


def test_one_idempotency_key_sent_at_once_by_many_clients_makes_one_order(
    ordo_templates: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """50 clients at once against a real server (gunicorn, 2 processes × 4 threads), as traffic arrives."""
    folder = tmp_path / "instance"
    folder.mkdir()
    url = ordo_templates.new_database((), folder)
    app = create_app({"INSTANCE": folder, "DATABASE_URL": url})
    state = app.extensions["ordo"]
    with state.sessions() as session:
        seed_master_data(session)
        admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
        token = token_for(session, admin)  # type: ignore[arg-type]
        other = token_for(session, make_user(session, "other-clerk@example.com", ["order_clerk"]))
    port, log = free_port(), tmp_path / "server.log"
    server = start_ordo(
        ["serve", "--production", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)], folder, url, log
    )
    body = order_payload(reference="PO-ONE-KEY")
    key = {"Idempotency-Key": "same-key-from-a-flaky-network"}
    try:
        wait_until_serving(port, server, log)
        answers = released_together(CLIENTS, lambda _i: post_json(port, token, "/api/v1/orders", body, key))
        status, theirs = post_json(port, other, "/api/v1/orders", body, key)
    finally:
        kill_group(server, signal.SIGTERM)
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    assert Counter(status for status, _ in answers) == {201: CLIENTS}, answers
    assert len({answer["id"] for _, answer in answers}) == 1
    with state.read_sessions() as s:
        assert (
            s.scalar(select(func.count()).where(Order.reference == "PO-ONE-KEY", Order.created_by_id == admin.id)) == 1
        )
        assert s.scalar(select(func.count()).where(IdempotencyKey.user_id == admin.id)) == 1
    # The same key from another caller is that caller's own order.
    assert status == 201 and theirs["id"] != answers[0][1]["id"]
    state.engine.dispose()
    ordo_templates.drop(url)


def test_two_editors_with_the_same_version_one_wins_the_other_gets_409(
    app: Flask, state: OrdoState, session: Session, admin: Any, seed: Any
):
    token = token_for(session, admin)
    status, draft = post(app, token, "/api/v1/orders", method="POST", json=order_payload(reference="PO-EDIT"))
    assert status == 201
    url = f"/api/v1/orders/{draft['id']}"

    answers = released_together(
        2,
        lambda i: post(app, token, url, method="PATCH", json={"version": draft["version"], "reference": f"editor-{i}"}),
    )
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 409], answers
    loser = next(answer for status, answer in answers if status == 409)
    assert loser["error"]["code"] == "stale_version"
    winner = next(answer for status, answer in answers if status == 200)
    with state.read_sessions() as s:
        order = s.get(Order, draft["id"])
        assert order is not None
        assert order.reference == winner["reference"] and order.version == draft["version"] + 1

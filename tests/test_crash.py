"""Crashes: a real server killed with SIGKILL at random moments under load, many times over.

Each cycle starts ``ordo serve --production`` (gunicorn) on the suite's database, lets
four clients create and submit orders through the API, and kills the server's whole
process group with SIGKILL after a random moment — mid-request, mid-transaction, mid-commit.
After the last cycle:

- every order a client saw acknowledged (201) is there, whole, and every submit that
  answered 200 is recorded;
- no half-written order exists at all (acknowledged or not): its lines and amounts are
  complete, its step matches its history, numbers are gap-free and the counter agrees;
- an ``Idempotency-Key`` retried after a crash never made a second order;
- the notifications queued before the crashes are delivered once each by a worker started
  afterwards (a real SMTP server on loopback counts them).

``ORDO_CRASH_CYCLES`` sets the number of cycles (default 6 in CI; the full drill:
``ORDO_CRASH_CYCLES=100 .venv/bin/python -m pytest tests/test_crash.py``).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from process_helpers import free_port, kill_group, post_json, start_ordo, wait_until_serving
from process_helpers import installation as make_installation
from sqlalchemy import func, select

from core.models import NumberSequence, Order, OrderLine, OrderTransition, OutboxMessage
from core.testing import order_payload

CYCLES = int(os.environ.get("ORDO_CRASH_CYCLES", "6"))
CLIENTS = 4


@pytest.fixture
def installation(ordo_templates: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A database with every plugin and master data, an admin token and an SMTP server."""
    with make_installation(ordo_templates, tmp_path / "instance") as made:
        yield made


class Clients:
    """Clients creating and submitting orders until told to stop; they remember what was acknowledged."""

    def __init__(self, port: int, token: str, cycle: int, retry_keys: list[tuple[str, dict[str, Any]]]):
        self.port, self.token, self.cycle = port, token, cycle
        self.stop = threading.Event()
        self.created: dict[str, int] = {}  # reference -> order id, for every 201
        self.submitted: set[int] = set()  # ids whose submit answered 200
        self.unanswered = retry_keys  # (key, body) of creations cut off by a crash
        self.cut = 0  # requests the crash cut off (no answer)
        self.lock = threading.Lock()

    def run(self, client: int) -> None:
        """One client's loop: create (with an Idempotency-Key), then submit."""
        number = 0
        while not self.stop.is_set():
            number += 1
            body = order_payload(reference=f"PO-C{self.cycle}-{client}-{number}")
            key = uuid.uuid4().hex
            try:
                status, order = post_json(self.port, self.token, "/api/v1/orders", body, {"Idempotency-Key": key})
            except OSError:
                with self.lock:
                    self.unanswered.append((key, body))
                    self.cut += 1
                continue
            if status != 201:
                continue
            with self.lock:
                self.created[body["reference"]] = int(order["id"])
            try:
                path = f"/api/v1/orders/{order['id']}/actions/submit"
                status, _ = post_json(self.port, self.token, path, {"version": order["version"]})
            except OSError:
                with self.lock:
                    self.cut += 1
                continue
            if status == 200:
                with self.lock:
                    self.submitted.add(int(order["id"]))


def serve(installation: dict[str, Any], log: Path) -> tuple[Any, int]:
    """Start a server; (process, port) once it answers."""
    port = free_port()
    args = ["serve", "--production", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)]
    proc = start_ordo(args, installation["folder"], installation["url"], log)
    wait_until_serving(port, proc, log)
    return proc, port


# A client thread that dies (an exception its loop did not expect) would quietly stop loading
# the server for the cycles left: fail instead.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_acknowledged_orders_survive_sigkill_and_notices_go_out_once(installation: dict[str, Any], tmp_path: Path):
    rng = random.Random(20261123)
    token = installation["token"]
    created: dict[str, int] = {}
    submitted: set[int] = set()
    unanswered: list[tuple[str, dict[str, Any]]] = []
    cut = 0
    log = tmp_path / "server.log"
    for cycle in range(CYCLES):
        proc, port = serve(installation, log)
        # First, creations a crash cut off are sent again with the same key: never a second order.
        for key, body in list(unanswered):
            status, order = post_json(port, token, "/api/v1/orders", body, {"Idempotency-Key": key})
            if status in (200, 201):
                created[body["reference"]] = int(order["id"])
                unanswered.remove((key, body))
        clients = Clients(port, token, cycle, unanswered)
        threads = [threading.Thread(target=clients.run, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        kill_group(proc, signal.SIGKILL)  # the server and its worker, whatever they were doing
        clients.stop.set()
        for thread in threads:
            thread.join(60)
        created.update(clients.created)
        submitted |= clients.submitted
        cut += clients.cut
    assert cut, "no request was cut off by a crash: the kills proved nothing"

    state = installation["state"]
    with state.read_sessions() as s:
        orders = {order.id: order for order in s.scalars(select(Order))}
        assert created, "no order was acknowledged: the cycles were too short to prove anything"
        missing = set(created.values()) - set(orders)
        assert not missing, f"acknowledged orders lost: {sorted(missing)}"
        for reference, order_id in created.items():
            assert orders[order_id].reference == reference
        lines: Counter[int] = Counter()
        amounts: dict[int, Decimal] = {}
        for order_id, amount in s.execute(select(OrderLine.order_id, OrderLine.amount)):
            lines[order_id] += 1
            amounts[order_id] = amounts.get(order_id, Decimal(0)) + amount
        for order in orders.values():  # whole, acknowledged or not
            assert lines[order.id] == 2, f"order {order.number} has {lines[order.id]} lines"
            assert amounts[order.id] == order.untaxed_amount
        last_step = {}
        for order_id, to_step in s.execute(
            select(OrderTransition.order_id, OrderTransition.to_step).order_by(OrderTransition.id)
        ):
            last_step[order_id] = to_step
        for order in orders.values():  # the history is complete: it ends where the order is
            assert last_step.get(order.id, "draft") == order.step, order.number
        for order_id in submitted:
            assert orders[order_id].step != "draft"
        references = Counter(order.reference for order in orders.values())
        assert max(references.values()) == 1, "an idempotent retry made a second order"
        serials = sorted(int(order.number.rsplit("-", 1)[1]) for order in orders.values())
        assert serials == list(range(1, len(serials) + 1)), "numbers are gap-free"
        counter = s.scalar(select(NumberSequence.next_value).where(NumberSequence.code == "order"))
        assert counter == len(serials) + 1
        queued = s.scalar(select(func.count()).where(OutboxMessage.channel == "email"))
    assert queued, "submitting should have queued e-mail, or the delivery check proves nothing"

    worker = start_ordo(
        ["worker", "--poll", "0.3", "--name", "after-crash"], installation["folder"], installation["url"], log
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with state.read_sessions() as s:
                pending = s.scalar(
                    select(func.count()).where(
                        OutboxMessage.channel == "email", OutboxMessage.status.in_(("queued", "sending"))
                    )
                )
            if not pending:
                break
            assert time.monotonic() < deadline, f"{pending} messages still queued"
            time.sleep(0.3)
    finally:
        kill_group(worker, signal.SIGTERM)
    with state.read_sessions() as s:
        sent = list(s.scalars(select(OutboxMessage.message_id).where(OutboxMessage.channel == "email")))
    received = installation["sink"].ids
    assert len(received) == len(set(received)), "no e-mail arrived twice"
    assert Counter(received) == Counter(sent), "every queued e-mail arrived, once"

"""(a) Order intake through the HTTP API, one server process; (f) that process's peak memory.

A fresh SQLite database with all five plugins (intake's pre-check rules on, as
installed) and the benchmark company; an API token for the administrator; then the real
server — ``ordo serve --production --workers 1`` (gunicorn, one worker process with
four threads, as ``core/gunicorn.py`` configures it) on a free loopback port, in a
subprocess. A client with ``connections`` keep-alive connections (threads, stdlib
``http.client``) sends, for every order, ``POST /api/v1/orders`` (5 lines) and
``POST /api/v1/orders/{id}/actions/submit`` (which runs the pre-check). The figure is
orders (create + submit) per second of wall time after a short warm-up.

(f): the worker's ``VmHWM`` (peak resident set, from ``/proc``) after the run.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from suite import ROOT, Context, Row, fresh_bench_database, log, order_body, skipped

MEASURE = "a. intake via HTTP API"
MEMORY = "f. server memory"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_token(db: Path | str, email: str) -> str:
    """A new API token for ``email`` (committed); ``db`` is a SQLite file or any database URL."""
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from core.db import make_engine
    from core.models import User
    from core.security.tokens import create_token

    engine = make_engine(db if isinstance(db, str) else f"sqlite:///{db}")
    try:
        with sessionmaker(engine)() as session, session.begin():
            user = session.scalars(select(User).where(User.email == email)).one()
            return create_token(session, user, name="bench")
    finally:
        engine.dispose()


def cpu_seconds(pid: int | None) -> float | None:
    """The CPU time (user + system) process ``pid`` has used so far, from ``/proc``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int) -> float | None:
    """The peak resident set (``VmHWM``) of process ``pid`` in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """``ordo serve --production --workers N`` in a subprocess, on a SQLite file or any database URL."""

    def __init__(self, db: Path | str, instance: Path, log_file: Path, workers: int = 1):
        self.port = free_port()
        url = db if isinstance(db, str) else f"sqlite:///{db}"
        env = {**os.environ, "ORDO_DATABASE_URL": url, "ORDO_INSTANCE": str(instance)}
        ordo = Path(sys.executable).parent / "ordo"
        command = [str(ordo)] if ordo.exists() else [sys.executable, "-c", "from core.cli import main; main()"]
        self.log = log_file.open("w")
        self.process = subprocess.Popen(
            [
                *command,
                "serve",
                "--production",
                "--workers",
                str(workers),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/login")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not answer within a minute")

    def worker_pid(self) -> int | None:
        workers = children(self.process.pid)
        return workers[0] if workers else None

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes."""
        return children(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def post_orders(port: int, token: str, bodies: list[dict[str, Any]], connections: int) -> tuple[float, dict[str, int]]:
    """Create and submit every body over ``connections`` keep-alive connections; (seconds, answers by status)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    answers: dict[str, int] = {}
    errors: list[str] = []

    def count(key: str) -> None:
        with lock:
            answers[key] = answers.get(key, 0) + 1

    def work() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            try:
                connection.request("POST", "/api/v1/orders", body=json.dumps(body), headers=headers)
                answer = connection.getresponse()
                created = json.loads(answer.read() or b"{}")
                count(f"create {answer.status}")
                if answer.status != 201:
                    if len(errors) < 3:
                        errors.append(json.dumps(created)[:300])
                    continue
                connection.request("POST", f"/api/v1/orders/{created['id']}/actions/submit", body="{}", headers=headers)
                answer = connection.getresponse()
                submitted = json.loads(answer.read() or b"{}")
                count(f"submit {answer.status}")
                count(f"step {submitted.get('step')}")
            except (OSError, http.client.HTTPException) as exc:
                count("connection error")
                if len(errors) < 3:
                    errors.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        log(f"{MEASURE}: first errors: {errors}")
    return seconds, answers


def measure(ctx: Context) -> list[Row]:
    """Orders/s through the API and the worker's peak memory."""
    from kpi_dashboard import ADMIN_EMAIL

    count, connections = ctx.sizes["api_orders"], ctx.sizes["api_connections"]
    db, instance = fresh_bench_database(ctx, "intake-api")
    token = make_token(db, ADMIN_EMAIL)
    server = Server(db, instance, ctx.work / "intake-api-server.log")
    try:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            return [
                skipped(MEASURE, "create + submit, 5 lines", "orders/s", "≥ 400", str(exc)),
                skipped(MEMORY, "peak RSS of the server process", "MiB", "≤ 200", str(exc)),
            ]
        rng = random.Random(11)
        post_orders(server.port, token, [order_body(rng, 10_000_000 + n) for n in range(20)], connections)  # warm-up
        bodies = [order_body(rng, n) for n in range(count)]
        log(f"{MEASURE}: {count} orders over {connections} connections to port {server.port}")
        worker = server.worker_pid()
        cpu_before = cpu_seconds(worker)
        seconds, answers = post_orders(server.port, token, bodies, connections)
        cpu_after = cpu_seconds(worker)
        time.sleep(0.5)
        peak = peak_rss_mb(worker) if worker else None
        master = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    ok = answers.get("submit 200", 0)
    rate = ok / seconds
    # The worker's CPU per order: what the server spends, whatever else shares the machine.
    cpu_ms = 1000 * (cpu_after - cpu_before) / ok if cpu_before is not None and cpu_after is not None and ok else None
    cpu_note = f", worker {cpu_ms:.1f} ms CPU per order" if cpu_ms is not None else ""
    log(f"{MEASURE}: {rate:,.1f} orders/s{cpu_note}; answers {answers}; worker peak {peak} MiB")
    rows = [
        Row(MEASURE, "create + submit, 5 lines", round(rate, 1), "orders/s", "≥ 400", rate >= 400,
            f"{ok}/{count} submitted in {seconds:.1f} s{cpu_note}, {connections} connections, gunicorn 1 worker × "
            f"4 threads; answers {answers}", {"worker_cpu_ms_per_order": round(cpu_ms, 2) if cpu_ms else None}),
    ]  # fmt: skip
    if peak is None:
        rows.append(skipped(MEMORY, "peak RSS of the server process", "MiB", "≤ 200", "no worker process found"))
    else:
        rows.append(
            Row(MEMORY, "peak RSS of the server process (during a)", round(peak), "MiB", "≤ 200", peak <= 200,
                f"gunicorn worker VmHWM; the master process peaked at {master:.0f} MiB" if master else "")
        )  # fmt: skip
    return rows

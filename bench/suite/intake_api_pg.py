"""(a, PostgreSQL) Order intake through the HTTP API on PostgreSQL, with 1 and 2 gunicorn workers.

The same client and orders as ``intake_api`` (create + submit, 5 lines, 4 keep-alive
connections), against ``ordo serve --production --workers N`` on a PostgreSQL database
made for each run (all plugins, the benchmark company). The server is the one named by
``ORDO_BENCH_POSTGRES_URL`` or ``ORDO_DATABASE_URL`` (a ``postgresql…`` URL whose
database may be created and dropped), else a throwaway cluster started with
``scripts/postgres`` for the measurement (it installs PostgreSQL from Debian if needed).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from suite import ROOT, Context, Row, log, order_body, skipped
from suite.intake_api import Server, make_token, peak_rss_mb, post_orders

MEASURE = "a. intake via HTTP API (PostgreSQL)"
WORKER_COUNTS = (1, 2)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server to create databases on (a throwaway one if none is named)."""
    named = os.environ.get("ORDO_BENCH_POSTGRES_URL") or os.environ.get("ORDO_DATABASE_URL") or ""
    if named.startswith("postgresql"):
        yield named
        return
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "postgres")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 600  # the first run may install PostgreSQL
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            if line.startswith("ORDO_DATABASE_URL="):
                url = line.strip().split("=", 1)[1]
                break
        if not url:
            raise RuntimeError("scripts/postgres did not start a cluster")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def fresh_database(server_url: str, name: str) -> str:
    """Create the empty database ``name`` on the server (dropping an old one); its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def build(ctx: Context, url: str, name: str) -> None:
    """The benchmark company with all plugins in the database at ``url``."""
    from generate import _engine_for
    from kpi_dashboard import create_database

    with _engine_for(url):
        engine = create_database(ctx.work / f"{name}.unused", ctx.work / f"{name}-instance")
    engine.dispose()


def measure(ctx: Context) -> list[Row]:
    """Orders/s through the API on PostgreSQL, per worker count, and the workers' peak memory."""
    from kpi_dashboard import ADMIN_EMAIL

    count, connections = ctx.sizes["api_orders"], ctx.sizes["api_connections"]
    rows: list[Row] = []
    try:
        with postgres_server() as server_url:
            for workers in WORKER_COUNTS:
                name = f"ordo_bench_intake_{workers}"
                url = fresh_database(server_url, name)
                build(ctx, url, name)
                token = make_token(url, ADMIN_EMAIL)
                server = Server(url, ctx.work / f"{name}-instance", ctx.work / f"{name}-server.log", workers=workers)
                try:
                    server.wait_ready()
                    rng = random.Random(11)
                    warm = [order_body(rng, 10_000_000 + n) for n in range(20 * workers)]
                    post_orders(server.port, token, warm, connections)
                    bodies = [order_body(rng, n) for n in range(count)]
                    log(f"{MEASURE}: {count} orders, {workers} worker(s), {connections} connections")
                    seconds, answers = post_orders(server.port, token, bodies, connections)
                    peaks = [peak_rss_mb(pid) or 0.0 for pid in server.worker_pids()]
                finally:
                    server.stop()
                ok = answers.get("submit 200", 0)
                rate = ok / seconds
                log(f"{MEASURE}: {workers} worker(s): {rate:,.1f} orders/s; answers {answers}")
                rows.append(
                    Row(MEASURE, f"create + submit, 5 lines, {workers} worker(s)", round(rate, 1), "orders/s", "—",
                        None, f"{ok}/{count} submitted in {seconds:.1f} s, {connections} connections, gunicorn "
                        f"{workers} × 4 threads; worker peak RSS {', '.join(f'{p:.0f}' for p in peaks)} MiB; "
                        f"answers {answers}")
                )  # fmt: skip
    except (RuntimeError, OSError) as exc:
        return [skipped(MEASURE, "create + submit, 5 lines", "orders/s", "—", str(exc))]
    return rows

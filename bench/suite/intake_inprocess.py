"""(b) Order intake in-process, through the service layer, against the plain-SQL floor.

Ordo: a fresh SQLite database with all five plugins (bench/kpi_dashboard.py's company);
for each order, in its own session transaction as a request would have it:
``load_order_input`` → ``create_order`` (5 lines) → ``take_action(…, "submit")`` (which
runs intake's pre-check and every plugin's after-transition work) → commit. One thread,
sessions as the app builds them (registry and instance in ``session.info``).

Floor: the same rows — one ``order``, five ``order_line`` and one ``order_transition`` —
written with the stdlib ``sqlite3`` and plain ``INSERT``s, one transaction per order,
into a copy of the same schema (same indexes) with the pragmas Ordo uses (WAL,
``synchronous=NORMAL``, foreign keys). What no application can beat on this machine.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
import time
from decimal import Decimal
from typing import Any

from suite import Context, Row, fresh_bench_database, log, order_body, profiled

MEASURE = "b. intake in-process"


def ordo_sessions(db: Any, instance: Any) -> tuple[Any, Any, Any]:
    """An engine, a session factory like the app's, and the registry, for database ``db``."""
    from core.config import load_instance
    from core.db import make_engine, make_session_factory
    from core.installation import enabled_plugins
    from core.plugins import Registry

    engine = make_engine(f"sqlite:///{db}")
    registry = Registry(enabled_plugins(engine))
    factory = make_session_factory(engine, registry=registry, instance=load_instance(instance, f"sqlite:///{db}"))
    return engine, factory, registry


def intake(factory: Any, registry: Any, email: str, count: int, seed: int = 7) -> tuple[float, dict[str, int]]:
    """Create and submit ``count`` orders of 5 lines as ``email``; (seconds, orders by step)."""
    from sqlalchemy import select

    from core.models import User
    from core.services.orders import create_order, load_order_input, take_action

    rng = random.Random(seed)
    bodies = [order_body(rng, n) for n in range(count)]
    steps: dict[str, int] = {}
    with factory() as session:
        actor_id = session.scalars(select(User.id).where(User.email == email)).one()
    started = time.perf_counter()
    for body in bodies:
        with factory() as session, session.begin():
            actor = session.get(User, actor_id)
            order = create_order(session, actor, load_order_input(body))
            take_action(session, registry, actor, order, "submit")
            steps[order.step] = steps.get(order.step, 0) + 1
    return time.perf_counter() - started, steps


def floor(db: Any, count: int, seed: int = 7) -> float:
    """Write ``count`` orders (1 order, 5 lines, 1 transition each) with plain SQL, a transaction each."""
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    rng = random.Random(seed)
    company_id, user_id = connection.execute(
        "SELECT (SELECT min(id) FROM company), (SELECT min(id) FROM user)"
    ).fetchone()
    customers = connection.execute("SELECT id, branch_id, owner_id FROM customer ORDER BY id").fetchall()
    products = connection.execute("SELECT id, name, unit, list_price, tax_rate FROM product ORDER BY id").fetchall()
    order_id = (connection.execute('SELECT max(id) FROM "order"').fetchone()[0] or 0) + 1
    columns = (
        "id, company_id, number, customer_id, channel, reference, reason, payment_method, currency, urgency, "
        "owner_id, branch_id, contact_name, contact_phone, ship_to_contact, ship_to_phone, ship_to_province, "
        "ship_to_city, ship_to_address, note, step, status, untaxed_amount, tax_amount, total, version, "
        "created_by_id, created_at, updated_at"
    )
    values = (
        "?, ?, ?, ?, 'api', ?, '', 'monthly_settlement', 'CNY', 'normal', ?, ?, ?, ?, ?, ?, '重庆市', '重庆市', ?, '', "
        "'submitted', 'submitted', ?, ?, ?, 2, ?, ?, ?"
    )
    order_sql = f'INSERT INTO "order" ({columns}) VALUES ({values})'
    line_sql = (
        "INSERT INTO order_line (order_id, position, product_id, description, quantity, unit, unit_price, discount, "
        "tax_rate, amount) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
    )
    transition_sql = (
        "INSERT INTO order_transition (order_id, action, from_step, to_step, from_status, to_status, actor_id, "
        "reason, at) VALUES (?, 'submit', 'draft', 'submitted', 'draft', 'submitted', ?, '', ?)"
    )
    # The rows are made first: the floor times the database's work, not the arithmetic.
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    prepared = []
    for n in range(count):
        customer_id, branch_id, owner_id = customers[rng.randrange(len(customers))]
        lines = []
        untaxed = tax = Decimal(0)
        for position, (product_id, name, unit, price, rate) in enumerate(rng.sample(products, 5), start=1):
            quantity = rng.randint(1, 20)
            amount = (Decimal(str(price)) * quantity).quantize(Decimal("0.01"))
            untaxed += amount
            tax += (amount * Decimal(str(rate)) / 100).quantize(Decimal("0.01"))
            lines.append((order_id, position, product_id, name, quantity, unit, str(price), str(rate), str(amount)))
        header = (
            order_id, company_id, f"FL-{order_id:08d}", customer_id, f"PO-FLOOR-{n}", owner_id, branch_id,
            "联系人", "023-6000-0000", "联系人", "023-6000-0000", "工业园 1 号",
            str(untaxed), str(tax), str(untaxed + tax), user_id, now, now,
        )  # fmt: skip
        prepared.append((header, lines, (order_id, user_id, now)))
        order_id += 1
    started = time.perf_counter()
    for header, lines, transition in prepared:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(order_sql, header)
        connection.executemany(line_sql, lines)
        connection.execute(transition_sql, transition)
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def measure(ctx: Context) -> list[Row]:
    """Ordo's in-process intake rate, the floor's, and their ratio."""
    from kpi_dashboard import ADMIN_EMAIL

    count = ctx.sizes["inprocess_orders"]
    db, instance = fresh_bench_database(ctx, "intake-inprocess")
    floor_db = ctx.work / "intake-floor.db"
    shutil.copy(db, floor_db)  # the same empty schema and master data, before any order
    engine, factory, registry = ordo_sessions(db, instance)
    intake(factory, registry, ADMIN_EMAIL, min(20, count), seed=99)  # warm-up: imports, caches, templates
    log(f"{MEASURE}: {count} orders through create_order + submit")
    cpu = time.process_time()
    seconds, steps = profiled(ctx, "intake_inprocess", lambda: intake(factory, registry, ADMIN_EMAIL, count))
    cpu_ms = 1000 * (time.process_time() - cpu) / count
    engine.dispose()
    rate = count / seconds
    log(f"{MEASURE}: {rate:,.0f} orders/s; {cpu_ms:.1f} ms CPU per order; steps after submit {steps}")
    floor_count = max(count * 4, 2000)
    floor_seconds = floor(floor_db, floor_count)
    floor_rate = floor_count / floor_seconds
    log(f"{MEASURE}: floor {floor_rate:,.0f} orders/s")
    ratio = floor_rate / rate
    return [
        Row(MEASURE, "Ordo create + submit (5 lines, pre-check)", round(rate), "orders/s", "≥ 1,500", rate >= 1500,
            f"{count} orders, 1 thread, {cpu_ms:.1f} ms CPU per order (≈ {1000 / cpu_ms:,.0f} orders per CPU "
            f"second); steps after submit: {steps}", {"cpu_ms_per_order": round(cpu_ms, 2)}),
        Row(MEASURE, "floor: plain SQL, 1 tx/order (WAL)", round(floor_rate), "orders/s", "≈ 11,000", None,
            f"{floor_count} orders: 1 order + 5 lines + 1 transition each"),
        Row(MEASURE, "floor / Ordo in-process", round(ratio, 1), "×", "≤ 5", ratio <= 5),
    ]  # fmt: skip

"""(c) Full order lifecycle in-process, every plugin's step passed through its services.

A fresh database with the demo company (``core.demo.load_demo``: all five plugins,
their people, warehouse, stock, carriers, billing accounts). Each order is then taken,
in its own transaction, from entry to completion the way the demo takes its orders:

create (``create_order``) → submit (intake's pre-check) → intake's manual check
(``accept``) → review's department reviews (each department's verdict,
``plugins.review.sheets.record_verdict``), credit check and final approval → billing's
finance check (``approve_terms``) → confirm → logistics: release (reserving stock,
receiving what is short), plan, pick, pack and ship with the suggested carrier, the
customer's receipt → billing: invoice (``invoices.create_invoice`` / ``issue_invoice``),
payment (``payments.record_payment`` / ``allocate_payment``) → completed.

The steps between core's actions are passed by :func:`core.demo.pass_plugin_steps`,
which asks each plugin's ``ordo_demo_pass_step`` (the plugins' demo modules, which
call the plugins' services) and otherwise takes the step's forward action. That the
demo's helpers are used means a little of their own bookkeeping is timed too (looking
up the demo's people, topping up stock when short).
"""

from __future__ import annotations

import random
import time
from typing import Any

from suite import Context, Row, log, profiled

MEASURE = "c. lifecycle in-process"
#: Demo customers whose credit lets orders through without an exception, and products.
CUSTOMERS = ("CQ001", "SC001")
#: (sku, lowest, highest quantity): within intake's demo quantity rules (BRG-6205 from 10;
#: GM-2200 is left out: SC001 may buy only ten a month).
PRODUCTS = (("GM-750", 1, 3), ("VFD-4K", 1, 3), ("CBL-4x2.5", 50, 200), ("BRG-6205", 10, 30))


def demo_database(ctx: Context, name: str = "lifecycle") -> tuple[Any, Any, Any]:
    """A fresh demo database; (engine, session factory, registry)."""
    from core.config import load_instance
    from core.db import make_engine, make_session_factory
    from core.demo import load_demo
    from core.installation import enabled_plugins
    from core.plugins import Registry

    db = ctx.work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        (ctx.work / f"{name}.db{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    instance = load_instance(ctx.work / f"{name}-instance", url)
    engine = make_engine(url)
    load_demo(engine, instance)
    registry = Registry(enabled_plugins(engine))
    ctx.shared["lifecycle_db"] = db
    ctx.shared["lifecycle_instance"] = instance.path
    return engine, make_session_factory(engine, registry=registry, instance=instance), registry


def one_order(session: Any, registry: Any, users: dict[str, Any], rng: random.Random, n: int) -> Any:
    """Enter one order and take it through every step to completion; returns it."""
    import datetime as dt

    from core.demo import pass_plugin_steps
    from core.services.orders import create_order, load_order_input, take_action

    seller, manager = users["sales@demo.ordo"], users["sales.manager@demo.ordo"]
    code = CUSTOMERS[n % len(CUSTOMERS)]
    customer = next(c for c in _customers(session) if c.code == code)
    address, contact = customer.addresses[0], customer.contacts[0]
    body = {
        "customer": code,
        "channel": "phone",
        "reference": f"PO-LIFE-{n}",
        "requested_date": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "payment_method": "monthly_settlement",
        "contact_name": contact.name,
        "contact_phone": contact.phone,
        "ship_to": {
            "contact": contact.name,
            "phone": contact.phone,
            "province": address.province,
            "city": address.city,
            "address": f"{address.district or ''}{address.address}",
        },
        "lines": [
            {"product": sku, "quantity": str(rng.randint(low, high))} for sku, low, high in rng.sample(PRODUCTS, 3)
        ],
    }
    order = create_order(session, seller, load_order_input(body))
    take_action(session, registry, seller, order, "submit")
    pass_plugin_steps(session, registry, manager, order, "confirm", users)
    take_action(session, registry, manager, order, "confirm")
    pass_plugin_steps(session, registry, manager, order, "complete", users)
    if order.step != "completed":
        take_action(session, registry, manager, order, "complete")
    return order


def _customers(session: Any) -> list[Any]:
    from sqlalchemy import select

    from core.models import Customer

    return list(session.scalars(select(Customer)))


def users_of(session: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from core.models import User

    return {user.email: user for user in session.scalars(select(User))}


def run(factory: Any, registry: Any, count: int, seed: int) -> tuple[float, dict[str, int], dict[str, int]]:
    """Take ``count`` orders through their lifecycle, a transaction each; (seconds, final steps, errors)."""
    rng = random.Random(seed)
    steps: dict[str, int] = {}
    errors: dict[str, int] = {}
    started = time.perf_counter()
    for n in range(count):
        try:
            with factory() as session, session.begin():
                order = one_order(session, registry, users_of(session), rng, seed * 100_000 + n)
                steps[order.step] = steps.get(order.step, 0) + 1
        except Exception as exc:  # a refused step: counted, the order rolled back
            key = f"{type(exc).__name__}: {str(exc)[:120]}"
            errors[key] = errors.get(key, 0) + 1
    return time.perf_counter() - started, steps, errors


def transitions_per_order(factory: Any) -> float:
    from sqlalchemy import func, select

    from core.models import Order, OrderTransition

    with factory() as session:
        orders = session.scalar(select(func.count()).select_from(Order).where(Order.reference.like("PO-LIFE-%")))
        moves = session.scalar(
            select(func.count())
            .select_from(OrderTransition)
            .join(Order, Order.id == OrderTransition.order_id)
            .where(Order.reference.like("PO-LIFE-%"))
        )
    return (moves or 0) / max(orders or 0, 1)


def measure(ctx: Context) -> list[Row]:
    """Completed orders per second, entry to payment."""
    count = ctx.sizes["lifecycle_orders"]
    log(f"{MEASURE}: loading the demo company")
    engine, factory, registry = demo_database(ctx)
    run(factory, registry, 3, seed=1)  # warm-up
    log(f"{MEASURE}: {count} orders from entry to payment")
    cpu = time.process_time()
    seconds, steps, errors = profiled(ctx, "lifecycle", lambda: run(factory, registry, count, seed=2))
    cpu_ms = 1000 * (time.process_time() - cpu) / max(count, 1)
    moves = transitions_per_order(factory)
    engine.dispose()
    done = steps.get("completed", 0)
    rate = done / seconds
    log(f"{MEASURE}: {rate:.1f} orders/s; final steps {steps}; errors {errors}")
    note = (
        f"{done}/{count} completed in {seconds:.1f} s, {cpu_ms:.0f} ms CPU per order, {moves:.1f} transitions per "
        f"order; final steps {steps}"
    )
    if errors:
        note += f"; errors {errors}"
    return [
        Row(MEASURE, "entry → pre-check → reviews → confirm → ship → receipt → invoice → pay", round(rate, 1),
            "orders/s", "—", None, note,
            {"ms_per_order": round(1000 * seconds / max(done, 1)), "cpu_ms_per_order": round(cpu_ms)}),
    ]  # fmt: skip

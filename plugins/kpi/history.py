"""Generated order history: a realistic year of orders for the demo and the benchmark.

The dashboard only means something over months of orders, and the performance promise
("a month over one million orders in under a second") can only be checked over a million
of them. :func:`generate` writes such a history straight into core's tables, in bulk
(``session.execute(insert(Order), rows)`` — executemany, no ORM objects), using the
company's existing customers, products, branches and users:

- orders are spread over the last ``months`` whole months up to yesterday, with weekday
  seasonality (few orders at weekends), a dip around the Spring Festival (February) and
  growth of about 40 % over the window; 1–5 lines each, amounts consistent with core's
  rule (line amount = quantity × unit price less discount, tax per line to the cent,
  total = untaxed + tax);
- each order has its owner (the customer's salesperson, else a salesperson of the
  customer's branch), branch and department, a channel, a payment method and the
  customer's ship-to address;
- the workflow log (``order_transition``) follows core's milestones: ``submit`` on
  creation, ``confirm`` within hours to a few working days, ``complete`` 3–20 days after
  confirmation; orders whose completion would lie in the future are still *confirmed*
  (the last weeks), about 2 % are rejected after submission and about 2 % cancelled
  (no completion then). Steps and statuses are core's (``submitted``, ``confirmed``,
  ``completed``, ``rejected``, ``cancelled``), whatever plugin steps are enabled: the
  history is what happened, not a path to replay;
- numbers read ``H<yyyymm>-<id>`` (``H202611-0001234``): unique (the id is), and never
  like core's ``<prefix><year>-<serial>``, so real orders keep their numbering.

After each batch of ``batch`` orders the enabled plugins add their own records through
the hook ``ordo_kpi_history`` (:class:`plugins.kpi.hookspecs.HistoryBatch`): review
sheets, shipments, invoices and payments… Only the orders that were **confirmed**
(status confirmed or completed) are handed to the plugins — a :class:`HistoryOrder`
always has a confirmation; the rejected, cancelled and never-confirmed orders exist in
core's tables only (they count in ``orders.count``).

:func:`generate` commits nothing: the caller's transaction holds it all. For big runs
pass ``on_batch`` (called after each batch with the number of orders written so far) to
commit as you go, as the benchmark (``bench/kpi_dashboard.py``) does. The same ``seed``
gives the same history on the same master data.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Date, func, insert, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from core.clock import company_now, day_start
from core.db import UTCDateTime, sync_id_sequences
from core.models import Branch, Company, Customer, Order, OrderLine, OrderTransition, Product, Role, User
from core.models.user import user_role
from core.settings import session_registry
from plugins.kpi.hookspecs import HistoryBatch, HistoryOrder

CENT = Decimal("0.01")
#: Orders arriving by each channel, in proportion.
CHANNEL_WEIGHTS = {"phone": 30, "email": 25, "portal": 15, "api": 8, "fax": 4, "offline": 18}
#: Payment methods, in proportion.
PAYMENT_WEIGHTS = {"monthly_settlement": 55, "prepayment": 25, "cash_on_delivery": 15, "instalments": 5}
#: Orders per weekday (Monday first), relative.
WEEKDAY_WEIGHTS = (1.15, 1.1, 1.05, 1.05, 1.0, 0.25, 0.1)
#: Orders per month of the year, relative (the Spring Festival empties February).
MONTH_WEIGHTS = (0.85, 0.6, 1.05, 1.0, 1.0, 1.05, 0.95, 0.95, 1.05, 1.0, 1.1, 1.2)
#: How many lines an order has (1…5), relative.
LINE_COUNT_WEIGHTS = (35, 30, 18, 10, 7)
#: Shares of rejected and cancelled orders.
REJECTED_SHARE = 0.02
CANCELLED_SHARE = 0.02
REJECT_REASONS = ("交期无法满足 The requested date cannot be met", "价格未达成一致 No agreement on price")
CANCEL_REASONS = ("客户取消采购计划 Customer dropped the purchase plan", "客户重复下单 Duplicate order")


@dataclass(frozen=True)
class _Customer:
    id: int
    branch_id: int | None
    owner_id: int | None
    contact: str
    phone: str
    province: str
    city: str
    address: str


@dataclass(frozen=True)
class _Product:
    id: int
    name: str
    unit: str
    price: Decimal
    tax_rate: Decimal


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _first_of_month_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def daily_counts(orders: int, start: dt.date, end: dt.date) -> list[tuple[dt.date, int]]:
    """How many of ``orders`` are created on each day ``start`` … ``end`` (seasonality and growth).

    The counts add up to ``orders`` exactly (the running total is rounded); the weight of a day is
    its weekday's × its month's × a linear growth from 0.8 to 1.2 over the window.
    """
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    if not days or orders <= 0:
        return []
    span = max(len(days) - 1, 1)
    weights = [
        WEEKDAY_WEIGHTS[day.weekday()] * MONTH_WEIGHTS[day.month - 1] * (0.8 + 0.4 * n / span)
        for n, day in enumerate(days)
    ]
    total = sum(weights)
    # Rounding the running total spreads the orders evenly, even a few over many days.
    counts, running, given = [], 0.0, 0
    for weight in weights:
        running += orders * weight / total
        upto = min(orders, int(running + 0.5))
        counts.append(upto - given)
        given = upto
    counts[-1] += orders - given
    return list(zip(days, counts, strict=True))


def role_users(session: Session) -> dict[str, list[int]]:
    """Active staff users by role code (``{"sales": [3, 7], …}``), as handed to the plugins."""
    rows = session.execute(
        select(Role.code, User.id)
        .join(user_role, user_role.c.role_id == Role.id)
        .join(User, User.id == user_role.c.user_id)
        .where(User.active.is_(True), User.customer_id.is_(None))
        .order_by(Role.code, User.id)
    )
    found: dict[str, list[int]] = defaultdict(list)
    for code, user_id in rows:
        found[code].append(user_id)
    return dict(found)


def _master_data(session: Session) -> tuple[int, list[_Customer], list[_Product], dict[int, int | None]]:
    company_id = session.scalar(select(Company.id).order_by(Company.id))
    if company_id is None:
        raise ValueError("no company: initialise the database first")
    customers = []
    for customer in session.scalars(select(Customer).where(Customer.active.is_(True)).order_by(Customer.id)):
        address = customer.addresses[0] if customer.addresses else None
        contact = customer.contacts[0] if customer.contacts else None
        customers.append(
            _Customer(
                customer.id,
                customer.branch_id,
                customer.owner_id,
                contact.name if contact else "",
                contact.phone if contact else "",
                address.province if address else "",
                address.city if address else "",
                f"{address.district}{address.address}" if address else "",
            )
        )
    products = [
        _Product(p.id, p.name, p.unit, p.list_price, p.tax_rate)
        for p in session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.id))
    ]
    if not customers or not products:
        raise ValueError("history needs active customers and products")
    departments = dict(session.execute(select(User.id, User.department_id)).tuples().all())
    return company_id, customers, products, departments


def _next_id(session: Session, column: Any) -> int:
    return int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1


#: DBAPI placeholders by paramstyle (the ones :func:`insert_rows` writes itself).
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def insert_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by ``model``'s attribute names, all with the same keys) in bulk.

    The fast path of the history: one ``executemany`` of a plain ``INSERT`` with the
    DBAPI's own placeholders, each column's values converted once by the dialect's bind
    processor (what SQLAlchemy would store), no RETURNING, no ORM bulk machinery and no
    per-row statement parameters — at a million orders those cost more than the database.
    Columns left out get their Python-side default (a callable one, e.g. ``utcnow``, is
    called once for the whole call). Falls back to ``session.execute(insert(model), rows)``
    for a SQL-expression default or an unknown paramstyle.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = sa_inspect(model).columns
    keys = list(rows[0])
    given = {columns[key].key for key in keys}
    defaults: list[tuple[Any, Any]] = []
    fallback = dialect.paramstyle not in _PLACEHOLDERS
    for column in columns:
        default = column.default
        if column.key in given or default is None:
            continue
        if default.is_scalar:
            defaults.append((column, default.arg))
        elif default.is_callable:
            defaults.append((column, default.arg(None)))
        else:
            fallback = True
    if fallback:
        session.execute(insert(model), list(rows))
        return
    names = [columns[key].name for key in keys] + [column.name for column, _value in defaults]
    converters = [_converter(columns[key], dialect) for key in keys]
    pick = itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
    params: list[tuple[Any, ...]] = list(map(pick, rows))
    if any(converters):
        by_column: list[Sequence[Any]] = list(zip(*params, strict=True))
        for index, convert in enumerate(converters):
            if convert is not None:
                by_column[index] = convert(by_column[index])
        params = list(zip(*by_column, strict=True))
    if defaults:
        extra = tuple(_convert_one(column, dialect, value) for column, value in defaults)
        params = [row + extra for row in params]
    table = dialect.identifier_preparer.format_table(model.__table__)
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    if dialect.driver == "psycopg":
        # PostgreSQL through psycopg 3: COPY, many times faster than a row-by-row executemany.
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        return
    placeholders = ", ".join([_PLACEHOLDERS[dialect.paramstyle]] * len(names))
    connection.exec_driver_sql(f"INSERT INTO {table} ({quoted}) VALUES ({placeholders})", params)


def _sqlite_utc(values: Sequence[Any]) -> list[Any]:
    """UTC datetimes as SQLAlchemy's SQLite ``DATETIME`` stores them (``2026-11-20 07:05:00.000000``)."""
    return [None if value is None else value.astimezone(dt.UTC).isoformat(" ", "microseconds")[:26] for value in values]


def _sqlite_date(values: Sequence[Any]) -> list[Any]:
    """Dates as SQLAlchemy's SQLite ``DATE`` stores them (``2026-11-20``)."""
    return [None if value is None else value.isoformat() for value in values]


#: Faster equivalents of SQLAlchemy's bind processors, by dialect and column type: they
#: convert a whole column at once (a million orders have tens of millions of datetimes).
_FAST_CONVERTERS: dict[tuple[str, type], Callable[[Sequence[Any]], list[Any]]] = {
    ("sqlite", UTCDateTime): _sqlite_utc,
    ("sqlite", Date): _sqlite_date,
}


def _converter(column: Any, dialect: Any) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
    """What turns a column of ``column``'s values into what the dialect's bind processor makes
    of them; None when there is no processor (the values go to the driver as they are).

    A column holding one value throughout (``status="closed"``, ``figures={}``) is converted
    once. A faster converter from :data:`_FAST_CONVERTERS` is used only when it gives the same
    as the processor for the first value present (else the processor is used throughout).
    """
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return None
    fast = _FAST_CONVERTERS.get((dialect.name, type(column.type)))

    def convert(values: Sequence[Any]) -> Sequence[Any]:
        if values.count(values[0]) == len(values) and len(set(map(type, values))) == 1:  # (True == 1)
            return [processor(values[0])] * len(values)
        if fast is not None:
            sample = next((value for value in values if value is not None), None)
            if fast([sample]) == [processor(sample)]:
                return fast(values)
        return [processor(value) for value in values]

    return convert


def _convert_one(column: Any, dialect: Any, value: Any) -> Any:
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if processor is None else processor(value)


def insert_numbered(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Give ``rows`` the ids after the largest in ``model``'s table, insert them (:func:`insert_rows`)
    and return the ids in the rows' order.

    For a history whose child rows need their parent's id: numbering up front spares a
    ``RETURNING`` (which SQLite runs one row at a time). Only for a database nobody else
    writes to meanwhile (the demo's, the benchmark's); on PostgreSQL the table's id
    sequence is moved past the new ids (:func:`core.db.sync_id_sequences`).
    """
    if not rows:
        return []
    first = _next_id(session, model.id)
    ids = list(range(first, first + len(rows)))
    for row_id, row in zip(ids, rows, strict=True):
        row["id"] = row_id
    insert_rows(session, model, rows)
    sync_id_sequences(session, model.__tablename__)
    return ids


def generate(
    session: Session,
    *,
    orders: int,
    today: dt.date,
    months: int = 12,
    seed: int = 1,
    batch: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write ``orders`` generated orders over the ``months`` whole months before ``today`` (and
    this month up to yesterday); return how many were written.

    Writes orders, lines and transitions in bulk with explicit ids (after the largest
    ones present), then calls ``ordo_kpi_history`` with each batch's confirmed orders.
    Commits nothing; ``on_batch(written_so_far)`` runs after each batch (commit there
    for big runs). Raises ``ValueError`` without a company, customers or products.

    Python's cyclic garbage collector is paused meanwhile: the rows are millions of
    short-lived dicts and tuples with no cycles, which it would otherwise scan again and
    again (about a sixth of the time of a big run).
    """
    if orders <= 0:
        return 0
    if months < 1:
        raise ValueError("months must be at least 1")
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _generate(session, orders, today, months, seed, batch, on_batch)
    finally:
        if collecting:
            gc.enable()


def _generate(
    session: Session,
    orders: int,
    today: dt.date,
    months: int,
    seed: int,
    batch: int,
    on_batch: Callable[[int], None] | None,
) -> int:
    company_id, customers, products, departments = _master_data(session)
    registry = session_registry(session)
    users = role_users(session)
    rng = random.Random(seed)
    start = _first_of_month_back(today, months)
    end = max(today - dt.timedelta(days=1), start)
    cutoff = min(company_now(), day_start(today + dt.timedelta(days=1))).astimezone(dt.UTC)

    branches = list(session.scalars(select(Branch.id).order_by(Branch.id)))
    sellers_by_branch: dict[int | None, list[int | None]] = defaultdict(list)
    user_branch = dict(session.execute(select(User.id, User.branch_id)).tuples().all())
    for user_id in users.get("sales", []) + users.get("sales_manager", []):
        sellers_by_branch[user_branch.get(user_id)].append(user_id)

    def pick(*roles: str, fallback: list[int | None]) -> list[int | None]:
        for role in roles:
            if users.get(role):
                return [*users[role]]
        return fallback

    all_sellers = pick("sales", "sales_manager", "admin", fallback=[None])
    managers = pick("sales_manager", "general_manager", "admin", fallback=all_sellers)
    closers = pick("warehouse", "order_clerk", fallback=managers)
    # Some customers order far more than others (a few big accounts).
    customer_weights = [1.0 / (1 + (n % 10)) ** 0.8 for n in range(len(customers))]
    rng.shuffle(customer_weights)
    customer_cum = _cumulative(customer_weights)
    channels, channel_cum = list(CHANNEL_WEIGHTS), _cumulative(list(CHANNEL_WEIGHTS.values()))
    payments, payment_cum = list(PAYMENT_WEIGHTS), _cumulative(list(PAYMENT_WEIGHTS.values()))
    line_cum = _cumulative(list(LINE_COUNT_WEIGHTS))

    order_id = _next_id(session, Order.id)
    line_id = _next_id(session, OrderLine.id)
    transition_id = _next_id(session, OrderTransition.id)
    written = 0
    order_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    transition_rows: list[dict[str, Any]] = []
    confirmed: list[HistoryOrder] = []

    def flush() -> None:
        nonlocal order_rows, line_rows, transition_rows, confirmed
        if not order_rows:
            return
        insert_rows(session, Order, order_rows)
        insert_rows(session, OrderLine, line_rows)
        insert_rows(session, OrderTransition, transition_rows)
        if confirmed:
            registry.hook.ordo_kpi_history(session=session, batch=HistoryBatch(confirmed, users, today))
        order_rows, line_rows, transition_rows, confirmed = [], [], [], []
        if on_batch is not None:
            on_batch(written)

    for day, count in daily_counts(orders, start, end):
        opening = day_start(day).astimezone(dt.UTC)
        yyyymm = f"{day.year}{day.month:02d}"
        weekend = day.weekday() >= 5
        for _ in range(count):
            customer = customers[bisect.bisect(customer_cum, rng.random() * customer_cum[-1])]
            branch_id = customer.branch_id if customer.branch_id is not None else (branches[0] if branches else None)
            pool = sellers_by_branch.get(branch_id) or all_sellers
            owner_id = customer.owner_id if customer.owner_id is not None else pool[rng.randrange(len(pool))]
            # Office hours 08:00–18:00 company time (a few in the evening).
            minutes = rng.randrange(480, 1080) if rng.random() < 0.93 else rng.randrange(1080, 1380)
            created = opening + dt.timedelta(minutes=minutes, seconds=rng.randrange(60))
            n_lines = bisect.bisect(line_cum, rng.random() * line_cum[-1]) + 1
            untaxed = tax = Decimal(0)
            lines: list[tuple[int, int, Decimal, Decimal]] = []
            for position, product in enumerate(rng.sample(products, min(n_lines, len(products))), start=1):
                most = max(1, int(6000 / max(float(product.price), 1)))
                quantity = Decimal(rng.randint(1, most))
                discount = Decimal(5) if rng.random() < 0.15 else Decimal(0)
                amount = _cents(quantity * product.price * (100 - discount) / 100)
                untaxed += amount
                tax += _cents(amount * product.tax_rate / 100)
                line_rows.append(
                    {
                        "id": line_id,
                        "order_id": order_id,
                        "position": position,
                        "product_id": product.id,
                        "description": product.name,
                        "quantity": quantity,
                        "unit": product.unit,
                        "unit_price": product.price,
                        "discount": discount,
                        "tax_rate": product.tax_rate,
                        "amount": amount,
                    }
                )
                lines.append((line_id, product.id, quantity, amount))
                line_id += 1
            untaxed, tax = _cents(untaxed), _cents(tax)

            # The order's path through core's milestones.
            submitted = created + dt.timedelta(minutes=rng.randrange(1, 45))
            hours = rng.choice((2, 4, 6, 20, 26, 30, 50, 74)) + rng.random() * 3
            confirmed_at: dt.datetime | None = submitted + dt.timedelta(hours=hours * (2 if weekend else 1))
            completed_at: dt.datetime | None = None
            draw = rng.random()
            events = [("submit", "draft", "submitted", submitted, owner_id, "")]
            manager = managers[rng.randrange(len(managers))]
            if draw < REJECTED_SHARE:
                confirmed_at = None
                rejected = submitted + dt.timedelta(hours=rng.randrange(2, 72))
                events.append(("reject", "submitted", "rejected", rejected, manager, rng.choice(REJECT_REASONS)))
            elif draw < REJECTED_SHARE + CANCELLED_SHARE:
                cancelled = submitted + dt.timedelta(hours=rng.randrange(2, 240))
                if confirmed_at is not None and confirmed_at < cancelled:
                    events.append(("confirm", "submitted", "confirmed", confirmed_at, manager, ""))
                    cancel_from = "confirmed"
                else:
                    cancel_from = "submitted"
                confirmed_at = None
                events.append(("cancel", cancel_from, "cancelled", cancelled, owner_id, rng.choice(CANCEL_REASONS)))
            else:
                assert confirmed_at is not None
                events.append(("confirm", "submitted", "confirmed", confirmed_at, manager, ""))
                completed_at = confirmed_at + dt.timedelta(days=rng.uniform(3, 20))
                events.append(
                    ("complete", "confirmed", "completed", completed_at, closers[rng.randrange(len(closers))], "")
                )
            events = [event for event in events if event[3] <= cutoff]
            status = events[-1][2]
            if status != "completed":
                completed_at = None
            if status not in ("confirmed", "completed"):
                confirmed_at = None
            for action, from_status, to_status, at, actor_id, reason in events:
                transition_rows.append(
                    {
                        "id": transition_id,
                        "order_id": order_id,
                        "action": action,
                        "from_step": from_status,
                        "to_step": to_status,
                        "from_status": from_status,
                        "to_status": to_status,
                        "actor_id": actor_id,
                        "reason": reason,
                        "at": at,
                    }
                )
                transition_id += 1
            number = f"H{yyyymm}-{order_id:07d}"
            order_rows.append(
                {
                    "id": order_id,
                    "company_id": company_id,
                    "number": number,
                    "customer_id": customer.id,
                    "channel": channels[bisect.bisect(channel_cum, rng.random() * channel_cum[-1])],
                    "reference": f"PO-{yyyymm}-{order_id}",
                    "external_reference": None,
                    "reason": events[-1][5],
                    "requested_date": day + dt.timedelta(days=rng.randrange(7, 31)),
                    "payment_method": payments[bisect.bisect(payment_cum, rng.random() * payment_cum[-1])],
                    "currency": "CNY",
                    "urgency": "urgent" if rng.random() < 0.08 else "normal",
                    "owner_id": owner_id,
                    "branch_id": branch_id,
                    "department_id": departments.get(owner_id) if owner_id is not None else None,
                    "contact_name": customer.contact,
                    "contact_phone": customer.phone,
                    "ship_to_contact": customer.contact,
                    "ship_to_phone": customer.phone,
                    "ship_to_province": customer.province,
                    "ship_to_city": customer.city,
                    "ship_to_address": customer.address,
                    "note": "",
                    "step": status,
                    "status": status,
                    "untaxed_amount": untaxed,
                    "tax_amount": tax,
                    "total": untaxed + tax,
                    "version": 1,
                    "created_by_id": owner_id,
                    "created_at": created,
                    "updated_at": events[-1][3],
                }
            )
            if confirmed_at is not None:
                confirmed.append(
                    HistoryOrder(
                        id=order_id,
                        number=number,
                        customer_id=customer.id,
                        branch_id=branch_id,
                        owner_id=owner_id,
                        total=untaxed + tax,
                        received_at=created,
                        confirmed_at=confirmed_at,
                        completed_at=completed_at,
                        lines=tuple(lines),
                        seed=seed * 1_000_003 + order_id,
                    )
                )
            order_id += 1
            written += 1
            if len(order_rows) >= batch:
                flush()
    flush()
    sync_id_sequences(session, Order.__tablename__, OrderLine.__tablename__, OrderTransition.__tablename__)
    return written


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


__all__ = ["daily_counts", "generate", "insert_numbered", "insert_rows", "role_users"]

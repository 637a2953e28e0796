"""The weekly progress report (进度周报) to customers with open orders (CORE-7).

Run by the job ``core.customer_digest`` (weekly on Monday 09:00 by default; an
administrator may change the schedule on the Jobs screen). Each customer with orders
still submitted or confirmed gets one ``customer_progress_digest`` notice listing
them. The notice is keyed by customer and ISO week in the company's time zone, so a
second run in the same week (a retry after a crash, a manual run) queues nothing new.
Deactivated customers receive no report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.models import Customer, Order
from core.notify import ToCustomer, notify

#: The statuses of an order still in progress.
OPEN_STATUSES = ("submitted", "confirmed")
#: Customers handled per query, so memory stays flat however many customers there are.
BATCH = 200
TEMPLATE = "customer_progress_digest"


def week_label(now: dt.datetime) -> str:
    """The ISO week of ``now`` in the company's time zone, e.g. ``2026-W48``."""
    year, week, _ = now.astimezone(COMPANY_TIMEZONE).isocalendar()
    return f"{year}-W{week:02d}"


def _customer_batches(session: Session) -> Iterator[list[int]]:
    """Ids of active customers with open orders, ascending, ``BATCH`` at a time (keyset paging)."""
    after = 0
    while True:
        ids = list(
            session.scalars(
                select(Order.customer_id)
                .join(Customer, Customer.id == Order.customer_id)
                .where(Order.status.in_(OPEN_STATUSES), Order.customer_id > after, Customer.active.is_(True))
                .group_by(Order.customer_id)
                .order_by(Order.customer_id)
                .limit(BATCH)
            )
        )
        if not ids:
            return
        yield ids
        after = ids[-1]


def _open_orders(session: Session, customer_ids: list[int]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(customer id, its open orders as plain rows)`` for one batch of customers."""
    rows = session.execute(
        select(
            Order.customer_id,
            Order.number,
            Order.reference,
            Order.status,
            Order.requested_date,
            Order.total,
            Order.currency,
        )
        .where(Order.status.in_(OPEN_STATUSES), Order.customer_id.in_(customer_ids))
        .order_by(Order.customer_id, Order.requested_date, Order.number)
    ).mappings()
    for customer_id, group in groupby(rows, key=lambda row: row["customer_id"]):
        yield customer_id, [dict(row) for row in group]


def run(session: Session, now: dt.datetime) -> int:
    """Queue this week's progress report for every customer with open orders; return their number.

    Customers already sent this week's report are skipped by the notice's dedupe key,
    so running twice in one week changes nothing — which also lets each batch of
    customers be committed on its own (a checkpoint), so a long run does not hold the
    database's write lock throughout.
    """
    from core.jobs import checkpoint

    week = week_label(now)
    today = now.astimezone(COMPANY_TIMEZONE).date()
    reported = 0
    for batch in _customer_batches(session):
        for customer_id, orders in _open_orders(session, batch):
            notify(
                session,
                TEMPLATE,
                to=ToCustomer(customer_id),
                context={"orders": orders, "week": week, "today": today},
                dedupe_key=f"digest:{customer_id}:{week}",
            )
            reported += 1
        checkpoint(session)
    return reported

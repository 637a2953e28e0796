"""Gapless invoice numbers under concurrent issuing (BL-3): many threads, separate sessions, file SQLite.

However the issues interleave, the numbers are 1..N without gap or duplicate; an issue
that fails after taking its number rolls back and gives the number back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from billing_helpers import confirm
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.testing import make_order, make_user
from plugins.billing import invoices
from plugins.billing.models import BillingInvoice


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


def _run(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(i)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool), "a thread hung"
    return errors


def _drafts(session: Session, state: Any, admin: User, finance: User, count: int) -> list[int]:
    ids = []
    for _ in range(count):
        order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "1"}])
        confirm(session, state.registry, admin, order)
        ids.append(invoices.create_invoice(session, finance, order).id)
        session.commit()
    return ids


@pytest.mark.req("BL-3")
def test_twenty_concurrent_issues_get_numbers_one_to_twenty_without_gap_or_duplicate(
    app: Flask, session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    finance = make_user(session, "fin@example.com", ["finance"], branch=seed["hq"])
    drafts = _drafts(session, state, admin, finance, 20)

    def issue(i: int) -> None:
        with app.app_context(), state.sessions() as own:
            actor = own.get(User, finance.id)
            invoices.issue_invoice(own, actor, drafts[i])
            own.commit()

    assert _run(20, issue) == []
    session.rollback()
    session.expire_all()
    rows = list(session.scalars(select(BillingInvoice).where(BillingInvoice.id.in_(drafts))))
    year = rows[0].year
    assert all(r.status == "issued" for r in rows)
    assert sorted(r.number for r in rows) == [f"INV{year}-{n:06d}" for n in range(1, 21)]


@pytest.mark.req("BL-3")
def test_a_failed_issue_gives_its_number_back(session: Session, state: Any, admin: User, seed: dict[str, Any]) -> None:
    finance = make_user(session, "fin@example.com", ["finance"], branch=seed["hq"])
    first, second = _drafts(session, state, admin, finance, 2)
    issued = invoices.issue_invoice(session, finance, first)
    taken = issued.number
    session.rollback()  # the issue failed after taking its number (e.g. a later step raised)
    assert session.get(BillingInvoice, first).number is None  # type: ignore[union-attr]
    again = invoices.issue_invoice(session, finance, second)
    session.commit()
    assert again.number == taken
    later = invoices.issue_invoice(session, finance, first)
    session.commit()
    assert later.number is not None and later.number.endswith("000002")

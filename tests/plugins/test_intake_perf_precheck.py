"""Intake's pre-check reads its master data once per run (issue 10): product rules, the
customer's profile and price lists are not read per line and rule, findings are written in
one statement, and the results are those of the line-by-line reads."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.models import User
from core.plugins import Registry
from core.testing import make_order
from plugins.intake import flow, precheck, pricing
from plugins.intake.models import IntakeFinding, IntakeProductRule

pytestmark = pytest.mark.req("IN-3")

DAY = dt.date(2027, 3, 15)
LINES = [
    {"product": "P-100", "quantity": "2", "unit_price": "1150.00"},
    {"product": "P-200", "quantity": "3"},
    {"product": "P-300", "quantity": "100"},
]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@contextmanager
def statements(session: Session) -> Iterator[Counter[tuple[str, str]]]:
    """Count the SQL statements run on ``session``'s engine, by verb and table."""
    counter: Counter[tuple[str, str]] = Counter()
    engine = session.get_bind()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        table = re.search(r"(FROM|INTO|UPDATE)\s+\"?(\w+)", statement)
        counter[(statement.split()[0], table.group(2) if table else "?")] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_price_book_prices_like_applicable_price(session: Session, admin: User, seed: dict[str, Any]):
    local, products = seed["local"], seed["products"]
    group = pricing.save_customer_group(session, admin, {"code": "KA", "name": "Key accounts"})
    pricing.set_customer_group(session, admin, local.id, group.id)
    pricing.create_price_list(
        session,
        admin,
        {
            "code": "KA-2027",
            "name": "Key accounts 2027",
            "customer_group_id": group.id,
            "valid_from": "2027-01-01",
            "items": [
                {"product": "P-100", "unit_price": "1100"},
                {"product": "P-100", "min_quantity": "10", "unit_price": "1050"},
                {"product": "P-300", "unit_price": "11.80"},
            ],
        },
    )
    pricing.create_price_list(
        session,
        admin,
        {
            "code": "C001-HT",
            "name": "Contract",
            "customer_id": local.id,
            "valid_from": "2027-02-01",
            "items": [{"product": "P-100", "min_quantity": "5", "unit_price": "990"}],
        },
    )
    session.commit()
    ids = [product.id for product in products]
    book = pricing.price_book(session, local.id, DAY, "CNY", ids)
    for product_id in ids:
        for quantity in ("1", "5", "10", "50"):
            expected = pricing.applicable_price(session, local.id, product_id, Decimal(quantity), DAY, "CNY")
            assert book.price(product_id, Decimal(quantity)) == expected
    assert book.price(ids[0], Decimal("5")).kind == "contract"  # type: ignore[union-attr]
    assert book.price(ids[0], Decimal("10")).unit_price == Decimal("990")  # type: ignore[union-attr]
    assert book.price(ids[2], Decimal("1")).kind == "group"  # type: ignore[union-attr]
    assert book.price(ids[1], Decimal("1")).kind == "list"  # type: ignore[union-attr]


def test_the_rules_read_product_rules_profile_and_price_lists_once(
    session: Session, admin: User, seed: dict[str, Any], registry: Registry
):
    for product in seed["products"]:
        session.add(IntakeProductRule(product_id=product.id, min_quantity=Decimal("1"), lead_time_days=2))
    session.commit()
    order = make_order(session, admin, lines=LINES)
    with statements(session) as counted:
        findings = precheck.run_precheck(session, order, registry, today=dt.date(2026, 12, 1))
    assert findings
    assert counted[("SELECT", "intake_product_rule")] == 1
    assert counted[("SELECT", "intake_customer_profile")] <= 1
    assert counted[("SELECT", "intake_price_list")] <= 1
    assert counted[("SELECT", "company")] <= 2  # the list prices' currency; the calendar's week


def test_findings_are_written_in_one_statement_in_the_rules_order(
    session: Session, admin: User, seed: dict[str, Any], registry: Registry
):
    order = make_order(session, admin, lines=LINES)
    with statements(session) as counted:
        findings = flow.keep_findings(session, order, registry)
    session.commit()
    assert counted[("INSERT", "intake_finding")] == 1
    rows = session.scalars(select(IntakeFinding).where(IntakeFinding.order_id == order.id).order_by(IntakeFinding.id))
    kept = [(row.level, row.message, row.field, row.msgid, row.params) for row in rows]
    assert kept == [(f.level, f.message, f.field, f.msgid, dict(f.params)) for f in findings]  # type: ignore[attr-defined]


def test_keeping_findings_twice_in_one_transaction_keeps_one_set(
    session: Session, admin: User, seed: dict[str, Any], registry: Registry
):
    order = make_order(session, admin, lines=LINES)
    first = flow.keep_findings(session, order, registry)
    second = flow.keep_findings(session, order, registry)
    session.commit()
    rows = session.scalars(select(IntakeFinding.rule).where(IntakeFinding.order_id == order.id)).all()
    assert len(first) == len(second) == len(rows)

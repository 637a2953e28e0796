"""``ordo demo`` with billing: customers in every credit state, an overdue customer in the dunning
ladder with its letter, and an order closed by payment (issue 8's "done when"; BL-1 … BL-7, RV-7).

The demo is loaded once, through the command line, into a fresh instance; each test reads one
state back from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

import core.demo
from core.cli import cli
from core.clock import company_now
from core.config import load_instance
from core.db import make_engine, make_session_factory
from core.installation import enabled_plugins
from core.models import Customer, Order
from core.plugins import Registry
from plugins.billing import credit, ledger
from plugins.billing.models import (
    BillingAccount,
    BillingAllocation,
    BillingCreditException,
    BillingDunningEvent,
    BillingDunningLevel,
    BillingInvoice,
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh instance with the demo loaded (billing among the demo's plugins)."""
    folder = tmp_path_factory.mktemp("demo") / "instance"
    result = CliRunner().invoke(cli, ["--instance", str(folder), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def engine(loaded: Path) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{loaded / 'ordo.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def s(engine: Any, loaded: Path) -> Iterator[Session]:
    registry = Registry(enabled_plugins(engine))
    factory = make_session_factory(engine, registry=registry, instance=load_instance(loaded))
    with factory() as session:
        yield session


def customer(s: Session, code: str) -> Customer:
    return s.scalars(select(Customer).where(Customer.code == code)).one()


def account(s: Session, code: str) -> BillingAccount:
    return s.scalars(select(BillingAccount).where(BillingAccount.customer_id == customer(s, code).id)).one()


def test_billing_is_among_the_demo_plugins(engine: Any) -> None:
    assert "billing" in core.demo.DEMO_PLUGINS and "billing" in enabled_plugins(engine)


@pytest.mark.req("BL-5")
def test_the_customers_are_in_every_credit_state(s: Session) -> None:
    assert credit.hold_reasons(s, customer(s, "CQ001").id) == []
    assert account(s, "CQ001").rating == "A"
    assert any("block" in r.lower() for r in credit.hold_reasons(s, customer(s, "CQ003").id))
    poor = account(s, "GZ001")
    assert (poor.rating, poor.prepayment_ratio) == ("D", 100)
    watched = account(s, "SC001")
    assert watched.rating == "C" and watched.prepayment_ratio >= 30 and watched.guarantee_on_file
    assert credit.hold_reasons(s, customer(s, "GD001").id), "GD001 is overdue"
    held = s.scalars(
        select(BillingCreditException).where(BillingCreditException.customer_id == customer(s, "SH001").id)
    )
    assert held.first() is not None, "SH001 has a credit exception"


@pytest.mark.req("BL-4")
def test_an_overdue_customer_went_through_the_dunning_ladder_with_its_letter(s: Session) -> None:
    gd = customer(s, "GD001")
    assert ledger.overdue_amount(s, gd.id, company_now().date()) > 0
    events = list(s.scalars(select(BillingDunningEvent).where(BillingDunningEvent.customer_id == gd.id)))
    kinds = {s.get(BillingDunningLevel, e.level_id).kind for e in events}  # type: ignore[union-attr]
    assert {"reminder", "friendly", "letter"} <= kinds
    assert any(e.letter_attachment_id is not None for e in events)


@pytest.mark.req("BL-6")
def test_an_order_was_closed_by_payment(s: Session) -> None:
    closed = [
        order
        for order in s.scalars(select(Order).where(Order.status == "completed"))
        if any(t.action == "settled" for t in order.transitions)
    ]
    assert closed, "an order completed by its settlement"
    invoice = s.scalars(select(BillingInvoice).where(BillingInvoice.order_id == closed[0].id)).first()
    assert invoice is not None and invoice.number and invoice.open_amount == 0
    assert s.scalars(select(BillingAllocation).where(BillingAllocation.invoice_id == invoice.id)).first() is not None

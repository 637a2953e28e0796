"""``ordo demo`` enables intake and loads its data: prices, ordering rules and an order per channel,
each at the step a real one would be (IN-1, IN-3, IN-4, IN-5, IN-7, IN-8, IN-9, CORE-9)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cli import cli
from core.clock import company_now
from core.db import make_engine
from core.files import FileStore
from core.installation import enabled_plugins
from core.models import Customer, Order, OrderTransition, OutboxMessage, Product, User
from core.models.files import OrderAttachment
from plugins.intake.models import (
    IntakeCorrection,
    IntakeCustomerGroup,
    IntakeCustomerProfile,
    IntakeFinding,
    IntakeOrder,
    IntakePriceList,
    IntakeProductRule,
    IntakePurchaseLimit,
)
from plugins.review.flow import STEPS as REVIEW_STEPS

#: Every step a demo order may rest in once the demo is loaded.
RESTING_STEPS = {
    "draft",
    "intake.manual_check",
    "logistics.outbound_check",
    "logistics.shipping",
    "logistics.receipt",
    "billing.finance_check",
    "billing.settlement",
    "submitted",
    "confirmed",
    "completed",
    "cancelled",
    "rejected",
} | {step.key for step in REVIEW_STEPS}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh instance with the demo loaded through the command line, once for the module."""
    folder = tmp_path_factory.mktemp("demo") / "instance"
    result = CliRunner().invoke(cli, ["--instance", str(folder), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def engine(instance: Path) -> Iterator[object]:
    engine = make_engine(f"sqlite:///{instance / 'ordo.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def s(engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def today() -> dt.date:
    return company_now().date()


def customer_id(s: Session, code: str) -> int:
    return s.scalars(select(Customer.id).where(Customer.code == code)).one()


def product_id(s: Session, sku: str) -> int:
    return s.scalars(select(Product.id).where(Product.sku == sku)).one()


#: kpi's demo adds a year of generated history (numbers "H<yyyymm>-…"); these tests look at the rest.
LIVE = Order.number.not_like("H%")


def by_channel(s: Session, channel: str, **where: object) -> Order:
    """The demo's intake order of ``channel`` (entered by intake's demo: the newest of the channel)."""
    stmt = select(Order).where(Order.channel == channel, LIVE).filter_by(**where).order_by(Order.id.desc())
    return s.scalars(stmt).first()  # type: ignore[return-value]


def record(s: Session, order: Order) -> IntakeOrder:
    found = s.get(IntakeOrder, order.id)
    assert found is not None, order.number
    return found


def test_the_demo_enables_intake_review_logistics_and_billing(engine):
    assert enabled_plugins(engine) == ["billing", "intake", "kpi", "logistics", "review"]


def test_every_demo_order_rests_in_a_real_step(s):
    """Core's demo orders went through intake's checks too: none is stuck in the automatic pre-check."""
    steps = set(s.scalars(select(Order.step).where(LIVE)))
    assert steps <= RESTING_STEPS and "intake.manual_check" in steps
    assert set(s.scalars(select(Order.status).where(LIVE))) == {
        "draft",
        "submitted",
        "confirmed",
        "completed",
        "cancelled",
        "rejected",
    }
    submitted = s.scalars(
        select(OrderTransition.order_id).join(Order).where(OrderTransition.action == "submit", LIVE)
    ).all()
    assert len(submitted) >= 10 and all(s.get(IntakeOrder, order_id).prechecked_at for order_id in submitted)
    accepted = s.scalars(select(OrderTransition.order_id).where(OrderTransition.action == "accept")).all()
    confirmed = s.scalars(select(Order.id).where(Order.status.in_(("confirmed", "completed")), LIVE)).all()
    assert set(confirmed) <= set(accepted)


@pytest.mark.req("IN-3")
def test_customer_group_price_lists_and_a_contract(s):
    group = s.scalars(select(IntakeCustomerGroup).where(IntakeCustomerGroup.code == "DIST")).one()
    members = s.scalars(select(IntakeCustomerProfile.customer_id).where(IntakeCustomerProfile.group_id == group.id))
    assert set(members) == {customer_id(s, "SC001"), customer_id(s, "GZ001")}
    group_list = s.scalars(select(IntakePriceList).where(IntakePriceList.customer_group_id == group.id)).one()
    assert len(group_list.items) >= 5 and group_list.valid_from <= today()
    contract = s.scalars(select(IntakePriceList).where(IntakePriceList.customer_id == customer_id(s, "CQ001"))).one()
    assert contract.contract_number == f"HT-{today().year}-0318"
    assert contract.valid_from <= today() <= contract.valid_to
    prices = {item.product_id: item.unit_price for item in contract.items}
    assert prices[product_id(s, "GM-750")] == Decimal("1150.00")


@pytest.mark.req("IN-3")
def test_ordering_rules_limits_and_a_blocked_customer(s):
    cabinet = s.get(IntakeProductRule, product_id(s, "CAB-PLC"))
    assert cabinet is not None and cabinet.lead_time_days == 15 and not cabinet.regular
    bearing = s.get(IntakeProductRule, product_id(s, "BRG-6205"))
    assert bearing is not None and bearing.regular and bearing.min_quantity == 10
    limit = s.scalars(select(IntakePurchaseLimit)).one()
    assert (limit.customer_id, limit.product_id, limit.period, limit.max_quantity) == (
        customer_id(s, "SC001"),
        product_id(s, "GM-2200"),
        "month",
        Decimal("10"),
    )
    blocked = s.get(IntakeCustomerProfile, customer_id(s, "GZ001"))
    assert blocked is not None and blocked.blocked and "overdue" in blocked.blocked_reason
    assert s.scalar(select(User.id).join(User.roles).where(User.email == "clerk@demo.ordo")) is not None


@pytest.mark.req("IN-8")
def test_a_portal_order_waits_in_the_manual_check(s):
    portal_user = s.scalars(select(User).where(User.email == "customer@demo.ordo")).one()
    order = by_channel(s, "portal", created_by_id=portal_user.id)
    assert (order.status, order.step, order.customer_id) == (
        "submitted",
        "intake.manual_check",
        portal_user.customer_id,
    )
    intake = record(s, order)
    assert intake.precheck_level == "pass" and intake.check_due is not None and intake.check_due >= today()
    assert intake.checked_at is None


@pytest.mark.req("IN-5")
def test_an_api_order_with_an_external_reference_is_flagged_for_its_contract_price(s):
    order = by_channel(s, "api")
    assert order.external_reference == f"SC-EDI-{today():%Y%m%d}-0001"
    assert order.step == "intake.manual_check" and record(s, order).precheck_level == "warn"
    findings = s.scalars(select(IntakeFinding).where(IntakeFinding.order_id == order.id, IntakeFinding.level == "warn"))
    assert [f.rule for f in findings] == ["price"]


@pytest.mark.req("IN-5")
def test_a_fax_order_carries_its_original_fax(s, instance):
    order = by_channel(s, "fax")
    assert order.step == "intake.manual_check"
    attachment = s.scalars(select(OrderAttachment).where(OrderAttachment.order_id == order.id)).one()
    assert attachment.kind == "customer_order" and attachment.content_type == "application/pdf"
    data = FileStore(instance / "files").get(attachment.sha256)
    assert data.startswith(b"%PDF")
    from io import BytesIO

    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)
    assert "采购订单" in text and order.reference in text


@pytest.mark.req("CORE-9")
def test_an_urgent_phone_order_waits_and_the_teams_are_told(s):
    order = by_channel(s, "phone", urgency="urgent")
    assert order.step == "intake.manual_check" and order.reason
    notices = s.scalars(select(OutboxMessage).where(OutboxMessage.template == "intake.urgent_order")).all()
    assert any(order.number in m.subject for m in notices)


@pytest.mark.req("IN-4")
def test_an_order_of_the_blocked_customer_is_rejected_by_the_precheck(s):
    order = by_channel(s, "email", customer_id=customer_id(s, "GZ001"), status="rejected")
    assert order is not None and record(s, order).precheck_level == "reject"
    actions = s.scalars(select(OrderTransition.action).where(OrderTransition.order_id == order.id)).all()
    assert "precheck_reject" in actions
    rules = s.scalars(
        select(IntakeFinding.rule).where(IntakeFinding.order_id == order.id, IntakeFinding.level == "reject")
    )
    assert list(rules) == ["customer"]
    notices = s.scalars(select(OutboxMessage).where(OutboxMessage.template == "intake.precheck_rejected")).all()
    assert any(order.number in m.subject for m in notices)


@pytest.mark.req("IN-9")
def test_an_order_accepted_after_correcting_an_entry_error_is_confirmed(s):
    order = by_channel(s, "offline", customer_id=customer_id(s, "SH001"), status="confirmed")
    assert order is not None and order.status == "confirmed"  # waiting in a logistics step or at confirmed
    intake = record(s, order)
    assert intake.check_outcome == "accepted" and intake.checked_at is not None
    clerk = s.scalars(select(User).where(User.email == "clerk@demo.ordo")).one()
    assert intake.checked_by_id == clerk.id
    correction = s.scalars(select(IntakeCorrection).where(IntakeCorrection.order_id == order.id)).one()
    assert correction.entry_error and correction.field == "ship_to_phone"
    assert correction.after == order.ship_to_phone != correction.before

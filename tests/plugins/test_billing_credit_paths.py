"""The one credit gate on every path that commits the company further (RV-7, BL-5).

Confirmation, re-opening, copying (service and API), release to shipping and each partial
shipment (with logistics), finance's check, review's credit question and intake's
pre-check: a customer on credit hold is refused on each, an exception granted by the
named roles lets the order pass, an expired exception refuses again, and copies never
inherit an exception.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Customer, Order, StepSetting, User
from core.services import ServiceError
from core.services.orders import copy_order, take_action
from core.testing import make_order, make_user, token_for
from core.workflow import Workflow
from plugins.billing import credit, flow
from plugins.billing.models import BillingAccount, BillingCreditException, BillingExceptionUse


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["billing"]


def account(session: Session, code: str = "C001", **values: Any) -> BillingAccount:
    """Give customer ``code`` a billing account with ``values`` (created directly) and commit."""
    customer = session.scalars(select(Customer).where(Customer.code == code)).one()
    row = session.scalar(select(BillingAccount).where(BillingAccount.customer_id == customer.id))
    if row is None:
        row = BillingAccount(customer_id=customer.id)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.commit()
    return row


def without_finance_check(session: Session) -> None:
    """Switch the finance check off (any step may be): submit lands at *submitted*."""
    session.merge(StepSetting(key=flow.FINANCE_CHECK, enabled=False))
    session.commit()


@pytest.fixture
def gm(session: Session, seed: dict[str, Any]) -> User:
    """The general manager, the role named by default to grant exceptions."""
    return make_user(session, "gm@example.com", ["general_manager"], branch=seed["hq"])


def expire(session: Session, order: Order) -> None:
    """Move time past every grant of ``order``."""
    for grant in session.scalars(select(BillingCreditException).where(BillingCreditException.order_id == order.id)):
        grant.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    session.commit()


def refused(exc: pytest.ExceptionInfo[ServiceError]) -> list[str]:
    assert exc.value.status == 409, exc.value.message
    return list((exc.value.details or {}).get("reasons", []))


def uses(session: Session, order: Order) -> list[tuple[str, str]]:
    rows = session.scalars(
        select(BillingExceptionUse).where(BillingExceptionUse.order_id == order.id).order_by(BillingExceptionUse.id)
    )
    return [(u.path, u.reference) for u in rows]


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
def test_confirm_is_refused_on_hold_passes_under_exception_and_refuses_again_when_it_expired(
    session: Session, state: Any, admin: User, gm: User
) -> None:
    without_finance_check(session)
    first = make_order(session, admin)
    second = make_order(session, admin)
    for order in (first, second):
        take_action(session, state.registry, admin, order, "submit")
    session.commit()
    account(session, credit_limit=Decimal("100"))

    with pytest.raises(ServiceError) as exc:
        take_action(session, state.registry, admin, first, "confirm")
    (reason,) = refused(exc)
    assert "over the credit limit" in reason and "100.00" in reason
    session.rollback()
    assert first.status == "submitted"

    credit.grant_exception(session, gm, first.id, "Key account, payment promised by Friday")
    session.commit()
    take_action(session, state.registry, admin, first, "confirm")
    session.commit()
    assert first.status == "confirmed"
    assert uses(session, first) == [("confirm", "")]

    # The second order's exception expires before it is used: refused again.
    credit.grant_exception(session, gm, second.id, "One week")
    session.commit()
    expire(session, second)
    with pytest.raises(ServiceError) as exc:
        take_action(session, state.registry, admin, second, "confirm")
    assert refused(exc)
    session.rollback()
    assert second.status == "submitted"


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
def test_reopening_a_completed_order_asks_the_gate(session: Session, state: Any, admin: User, gm: User) -> None:
    without_finance_check(session)
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    Workflow(state.registry, session).apply(order, "complete", "completed", admin, "")  # settled elsewhere
    session.commit()
    assert order.status == "completed"
    account(session, credit_limit=Decimal("0"))

    with pytest.raises(ServiceError) as exc:
        take_action(session, state.registry, admin, order, "reopen", reason="spare parts")
    assert any("over the credit limit" in r for r in refused(exc))
    session.rollback()
    assert order.status == "completed"
    # An exception lets the re-opening pass (it is recorded as used on the path "reopen").
    credit.grant_exception(session, gm, order.id, "Spare parts for a key account")
    session.commit()
    take_action(session, state.registry, admin, order, "reopen", reason="spare parts")
    session.commit()
    assert order.status == "confirmed"
    assert uses(session, order) == [("reopen", "")]
    assert order.status == "confirmed"


@pytest.mark.req("RV-7")
def test_reopening_passes_under_a_valid_exception_and_is_recorded(
    session: Session, state: Any, admin: User, gm: User
) -> None:
    without_finance_check(session)
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    account(session, blocked=True, block_reason="Disputed delivery")
    credit.grant_exception(session, gm, order.id, "Confirm anyway")
    take_action(session, state.registry, admin, order, "confirm")
    Workflow(state.registry, session).apply(order, "complete", "completed", admin, "")
    session.commit()
    take_action(session, state.registry, admin, order, "reopen", reason="one more")
    session.commit()
    assert order.status == "confirmed"
    assert uses(session, order) == [("confirm", ""), ("reopen", "")]


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
def test_copying_is_refused_on_hold_and_a_copy_never_inherits_the_exception(
    session: Session, state: Any, client: Any, admin: User, gm: User
) -> None:
    source = make_order(session, admin)
    account(session, blocked=True)
    with pytest.raises(ServiceError) as exc:
        copy_order(session, state.registry, admin, source)
    (reason,) = refused(exc)
    assert reason == f"Customer {source.customer.name} is blocked by finance."
    session.rollback()

    credit.grant_exception(session, gm, source.id, "Source may go on")
    session.commit()
    assert credit.gate_reasons(session, source, "confirm") == []
    with pytest.raises(ServiceError) as exc:
        copy_order(session, state.registry, admin, source)  # the exception is the source's, not the copy's
    assert refused(exc)
    session.rollback()

    token = token_for(session, admin)
    before = session.scalar(select(Order.id).order_by(Order.id.desc()))
    answer = client.post(f"/api/v1/orders/{source.id}/copy", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 409
    assert reason in answer.get_json()["error"]["details"]["reasons"]
    assert session.scalar(select(Order.id).order_by(Order.id.desc())) == before
    session.rollback()  # end the read snapshot before writing (SQLite cannot upgrade a stale one)

    account(session, blocked=False)
    copy = copy_order(session, state.registry, admin, source)
    session.commit()
    account(session, blocked=True)
    assert credit.gate_reasons(session, source, "confirm") == []
    assert credit.gate_reasons(session, copy, "confirm") == [reason]


@pytest.mark.req("BL-5")
def test_approving_terms_at_the_finance_check_asks_the_gate(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    order = make_order(session, admin)
    account(session, blocked=True)
    transition = Workflow(state.registry, session).apply(order, "submit", flow.FINANCE_CHECK, admin, "")
    session.commit()
    assert transition.to_step == flow.FINANCE_CHECK
    assert flow.guard(session, order, flow.APPROVE_TERMS, transition, admin) == [
        f"Customer {order.customer.name} is blocked by finance."
    ]


# --------------------------------------------------------------------------- review and intake


@pytest.mark.req("RV-7")
@pytest.mark.parametrize("ordo_plugins", [["billing", "review"]])
def test_review_asks_the_same_gate_and_its_exception_is_adopted(
    session: Session, state: Any, admin: User, gm: User, ordo_plugins: Sequence[str]
) -> None:
    from core.settings import set_setting
    from plugins.review import credit as review_credit
    from plugins.review.flow import CREDIT_CHECK, EXCEPTION_ROLES

    set_setting(session, EXCEPTION_ROLES, "general_manager")
    session.commit()
    account(session, credit_limit=Decimal("10"))
    order = make_order(session, admin)
    take_action(session, state.registry, admin, order, "submit")
    session.commit()
    assert order.step == CREDIT_CHECK
    hold = review_credit.open_hold(session, order.id)
    assert hold is not None and any("over the credit limit" in r for r in hold.reasons)

    review_credit.grant_exception(session, state.registry, gm, order, "Strategic customer")
    session.commit()
    assert order.step != CREDIT_CHECK
    assert credit.valid_exception(session, order.id)
    (grant,) = session.scalars(select(BillingCreditException).where(BillingCreditException.order_id == order.id))
    assert grant.role_code == "general_manager" and grant.reason.startswith("Review credit exception: ")
    assert credit.gate_reasons(session, order, "confirm") == []


@pytest.mark.req("RV-7")
@pytest.mark.parametrize("ordo_plugins", [["billing", "intake"]])
def test_intakes_precheck_warns_with_the_gates_reasons(
    session: Session, state: Any, admin: User, seed: dict[str, Any], ordo_plugins: Sequence[str]
) -> None:
    from plugins.intake import precheck

    order = make_order(session, admin)
    assert not [f for f in precheck.run_precheck(session, order, state.registry) if f.plugin == "billing"]
    account(session, blocked=True, block_reason="Cheque bounced")
    findings = [f for f in precheck.run_precheck(session, order, state.registry) if f.plugin == "billing"]
    assert [(f.level, f.field, f.message) for f in findings] == [
        ("warn", "customer", f"Customer {order.customer.name} is blocked by finance: Cheque bounced")
    ]


# --------------------------------------------------------------------------- with logistics


@pytest.fixture
def clerk(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "wh@example.com", ["warehouse"], branch=seed["hq"])


def _hq_order(session: Session, seed: dict[str, Any], **payload: Any) -> Order:
    sales = make_user(session, "sales-hq@example.com", ["sales"], branch=seed["hq"])
    return make_order(session, sales, **payload)


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
@pytest.mark.parametrize("ordo_plugins", [["billing", "logistics"]])
def test_release_to_shipping_is_refused_on_hold_and_passes_under_exception(
    session: Session, state: Any, admin: User, gm: User, clerk: User, seed: dict[str, Any], ordo_plugins: Any
) -> None:
    from logistics_helpers import location, make_warehouse, receive

    from plugins.logistics import flow as lflow

    without_finance_check(session)
    warehouse = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = _hq_order(session, seed, lines=[{"product": "P-100", "quantity": "2"}])
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    session.commit()
    assert order.step == lflow.OUTBOUND_CHECK
    account(session, blocked=True)

    with pytest.raises(ServiceError) as exc:
        take_action(session, state.registry, clerk, order, "release")
    assert refused(exc) == [f"Customer {order.customer.name} is blocked by finance."]
    session.rollback()
    assert order.step == lflow.OUTBOUND_CHECK

    credit.grant_exception(session, gm, order.id, "Goods are urgent for the customer's line")
    take_action(session, state.registry, clerk, order, "release")
    session.commit()
    assert order.step == lflow.SHIPPING
    assert uses(session, order) == [("release", "")]


@pytest.mark.req("RV-7")
@pytest.mark.req("BL-5")
@pytest.mark.parametrize("ordo_plugins", [["billing", "logistics"]])
def test_each_partial_shipment_passes_the_gate(
    session: Session, state: Any, admin: User, gm: User, clerk: User, seed: dict[str, Any], ordo_plugins: Any
) -> None:
    from logistics_helpers import location, make_warehouse, receive

    from plugins.logistics import shipping
    from plugins.logistics.errors import LogisticsError

    without_finance_check(session)
    p100 = seed["products"][0]
    warehouse = make_warehouse(session, seed["hq"].company_id)
    receive(session, admin, p100, location(warehouse, "A-01"), "1")
    order = _hq_order(session, seed, lines=[{"product": "P-100", "quantity": "3"}])
    take_action(session, state.registry, admin, order, "submit")
    take_action(session, state.registry, admin, order, "confirm")
    take_action(session, state.registry, clerk, order, "release")
    session.commit()

    first = shipping.plan_shipment(session, clerk, order)
    shipping.ship(session, clerk, first.id)
    session.commit()
    assert first.status == "shipped" and uses(session, order) == []

    account(session, blocked=True)  # the customer goes on hold between two partial shipments
    receive(session, admin, p100, location(warehouse, "A-01"), "1", backorders=True)
    second = shipping.plan_shipment(session, clerk, order)
    session.commit()
    with pytest.raises(LogisticsError) as exc:
        shipping.ship(session, clerk, second.id)
    assert exc.value.status == 409 and exc.value.details == {
        "reasons": [f"Customer {order.customer.name} is blocked by finance."]
    }
    session.rollback()
    assert second.status != "shipped"

    credit.grant_exception(session, gm, order.id, "Ship the second part")
    session.commit()
    shipping.ship(session, clerk, second.id)
    session.commit()
    assert second.status == "shipped"
    assert uses(session, order) == [("shipment", second.number)]

    expire(session, order)
    receive(session, admin, p100, location(warehouse, "A-01"), "1", backorders=True)
    third = shipping.plan_shipment(session, clerk, order)
    session.commit()
    with pytest.raises(LogisticsError) as exc:
        shipping.ship(session, clerk, third.id)
    assert exc.value.code == "shipment_refused"
    session.rollback()
    assert uses(session, order) == [("shipment", second.number)]

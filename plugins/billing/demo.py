"""Billing's part of the demo company: customers in every credit state, invoices, payments, dunning.

- :func:`pass_step` (hook ``ordo_demo_pass_step``): core's demo orders pass billing's
  steps like real ones — finance approves special terms at the finance check; at the
  settlement step the delivered goods are invoiced, the customer pays by bank transfer,
  the payment is allocated and the order completes by itself ("an order closed by
  payment").
- :func:`populate` (hook ``ordo_demo_data``, run after the other plugins' so their orders
  are through before credit gets tight): customer accounts in every credit state —
  重庆山城机电 (CQ001) rated A in good standing; 重庆两江精密 (CQ002) over its limit;
  重庆江津农机 (CQ003) blocked; 成都蓉锦 (SC001) rated C with a 30 % prepayment and a
  guarantee on file; 贵阳黔通 (GZ001) rated D paying everything in advance; 深圳明珠
  (GD001) with a prepayment invoice long overdue, taken through the dunning ladder up to the formal
  dunning letter (催款函); 上海浦江 (SH001) over its limit with a credit exception granted
  by the general manager. An overpayment leaves a balance, and an online-payment provider
  exists for the webhook.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE, company_now
from core.models import Customer, Order, User
from core.services.orders import take_action
from core.settings import session_registry
from plugins.billing import flow

FINANCE_EMAIL = "finance@demo.ordo"
GM_EMAIL = "gm@demo.ordo"
#: The demo provider's secret is published with the demo (like its passwords).
DEMO_PROVIDER_SECRET = "ordo-demo-webhook-secret"


def _user(users: dict[str, User], email: str) -> User:
    return users[email]


def pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Move ``order`` on from the billing step it waits at, as the demo's finance would."""
    registry = session_registry(session)
    finance = _user(users, FINANCE_EMAIL)
    if order.step == flow.FINANCE_CHECK:
        take_action(session, registry, finance, order, flow.APPROVE_TERMS)
        return True
    if order.step == flow.SETTLEMENT:
        settle_by_payment(session, finance, order)
        return True
    return False


def settle_by_payment(session: Session, finance: User, order: Order) -> None:
    """Invoice what was delivered, record the customer's bank transfer, allocate it: the order completes."""
    from plugins.billing import invoices, payments

    invoice = invoices.create_invoice(session, finance, order, basis="delivered")
    invoices.issue_invoice(session, finance, invoice.id)
    session.refresh(invoice)
    if invoice.open_amount > 0:
        customer = session.get(Customer, order.customer_id)
        assert customer is not None
        payment = payments.record_payment(
            session,
            finance,
            customer_id=order.customer_id,
            method="bank_transfer",
            amount=invoice.open_amount,
            received_on=company_now().date(),
            payer_name=customer.name,
            reference=f"{invoice.number}",
        )
        payments.allocate_payment(session, finance, payment.id, [(invoice.id, invoice.open_amount)])


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add billing's part of the demo company (see the module docstring); never commits."""
    from plugins.billing import accounts
    from plugins.billing.models import BillingPaymentProvider, BillingPaymentTerm

    finance, gm = _user(users, FINANCE_EMAIL), _user(users, GM_EMAIL)
    terms = {t.code: t for t in session.scalars(select(BillingPaymentTerm))}
    session.add(BillingPaymentProvider(code="demo-pay", name="演示支付 Demo pay", secret=DEMO_PROVIDER_SECRET))
    for code, values in (
        ("CQ001", {"credit_limit": Decimal("500000"), "term": terms["MONTHLY30"].id}),
        ("CQ002", {"credit_limit": Decimal("3000"), "term": terms["MONTHLY30"].id}),
        (
            "CQ003",
            {"credit_limit": Decimal("100000"), "blocked": True, "block_reason": "质量纠纷未了结 Quality dispute open"},
        ),
        (
            "SC001",
            {
                "credit_limit": Decimal("200000"),
                "guarantee_on_file": True,
                "guarantee_note": "银行保函 Bank guarantee 2027",
            },
        ),
        ("GZ001", {"credit_limit": Decimal("0"), "term": terms["PREPAY"].id}),
        ("GD001", {"credit_limit": Decimal("300000"), "term": terms["MONTHLY30"].id}),
    ):
        accounts.update_account(session, finance, customers[code].id, values)
    accounts.set_rating(session, finance, customers["CQ001"].id, "A", "十年合作，回款及时 Ten years, pays on time")
    accounts.set_rating(session, finance, customers["SC001"].id, "C", "两次逾期 Paid late twice")
    accounts.set_rating(session, finance, customers["GZ001"].id, "D", "新客户无信用记录 New, no history")
    _overdue_and_dunned(session, finance, customers["GD001"])
    _exception_granted(session, finance, gm, users, customers["SH001"], terms["MONTHLY30"].id)
    session.flush()


def _overdue_and_dunned(session: Session, finance: User, customer: Customer) -> None:
    """GD001: its confirmed order invoiced 75 days ago and unpaid; the dunning ladder has run."""
    from plugins.billing import dunning, invoices

    order = session.scalars(
        select(Order).where(Order.customer_id == customer.id, Order.status == "confirmed").order_by(Order.id)
    ).first()
    if order is None:
        return
    today = company_now().date()
    # Nothing has shipped yet (deliveries are tracked), so the overdue bill is the prepayment invoice.
    invoice = invoices.create_prepayment_invoice(session, finance, order, percent=Decimal("30"))
    invoices.issue_invoice(session, finance, invoice.id, invoice_date=today - dt.timedelta(days=130))
    due = invoice.dues[0].due_date
    # The daily job ran on each step's day: reminder before due, friendly reminder, 催款函.
    for day in (due - dt.timedelta(days=3), due + dt.timedelta(days=7), due + dt.timedelta(days=30)):
        if day <= today:
            dunning.run_dunning(session, dt.datetime.combine(day, dt.time(9, 0), tzinfo=COMPANY_TIMEZONE))


def _exception_granted(
    session: Session, finance: User, gm: User, users: dict[str, User], customer: Customer, term_id: int
) -> None:
    """SH001: a new order over its limit, let through by the general manager's credit exception."""
    from plugins.billing import credit

    order = session.scalars(
        select(Order).where(Order.customer_id == customer.id, Order.status == "completed").order_by(Order.id)
    ).first()
    if order is None:
        return
    from core.services.orders import copy_order

    # Copying is itself a path of the gate: copy while the customer is still in good standing;
    # the copy is over the limit, so the general manager grants an exception before it goes on.
    registry = session_registry(session)
    seller, manager = _user(users, "sales@demo.ordo"), _user(users, "sales.manager@demo.ordo")
    copy = copy_order(session, registry, seller, order)
    copy.requested_date = company_now().date() + dt.timedelta(days=21)  # a copy asks for its own date
    copy.channel = "phone"  # the salesperson took the repeat order on the phone
    from plugins.billing import accounts

    accounts.update_account(session, finance, customer.id, {"credit_limit": Decimal("10000"), "term": term_id})
    if credit.gate_reasons(session, copy, "confirm"):
        credit.grant_exception(session, gm, copy.id, "战略客户，总经理特批 Key account, approved by the GM")
    take_action(session, registry, seller, copy, "submit")
    from core.demo import pass_plugin_steps

    pass_plugin_steps(session, registry, manager, copy, "confirm", users)
    take_action(session, registry, manager, copy, "confirm")

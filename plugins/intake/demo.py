"""Intake's part of the demo company (``ordo demo``): prices, ordering rules and one order per channel.

Called through the hook ``ordo_demo_data`` at the end of core's demo population, in its
transaction. It adds:

- a customer group of distributors (SC001, GZ001) with its price list (a tier for
  bearings), and a contract price list (合同价, with its contract number) for CQ001;
- ordering rules: lead times (the PLC cabinet is made to order), regular products,
  minimum and maximum quantities, a monthly purchase limit for SC001, GZ001 blocked for
  overdue payments and SC001's payment methods;
- one order per channel, each where a real one would be: a portal order from the
  portal user (customer@demo.ordo) and an API order with an external reference
  (priced off the contract, so the pre-check flags it) waiting in the manual check; a
  fax order with the customer's original fax attached (a PDF) waiting there too; an
  urgent phone order; an e-mail order of the blocked customer rejected by the
  pre-check; an offline order whose mistyped phone number the clerk corrected (an
  entry error, IN-9) before accepting it, then confirmed by the sales manager.

Every date is counted from today, so the demo works whatever day it is loaded.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import company_now
from core.config import Instance
from core.demo import pass_plugin_steps
from core.models import Customer, Order, Product, Role, User
from core.services import audit
from core.services.orders import create_order, load_order_input, take_action
from core.settings import session_registry
from plugins.intake.models import IntakeCorrection, IntakeCustomerProfile, IntakeProductRule, IntakePurchaseLimit
from plugins.intake.pricing import applicable_price, create_price_list, save_customer_group, set_customer_group

ADMIN_EMAIL = "admin@demo.ordo"
PORTAL_EMAIL = "customer@demo.ordo"
CLERK_EMAIL = "clerk@demo.ordo"
MANAGER_EMAIL = "sales.manager@demo.ordo"

#: (code, name, customer codes) of the demo's customer group.
GROUP = ("DIST", "经销商 Distributors", ("SC001", "GZ001"))
#: (sku, min quantity, unit price) on the distributors' price list.
GROUP_PRICES = (
    ("GM-750", "0", "1180.00"),
    ("GM-2200", "0", "2450.00"),
    ("VFD-4K", "0", "1850.00"),
    ("CBL-4x2.5", "0", "8.90"),
    ("BRG-6205", "0", "16.80"),
    ("BRG-6205", "500", "15.50"),
)
#: The customer with a contract and its prices.
CONTRACT_CUSTOMER = "CQ001"
CONTRACT_PRICES = (("GM-750", "0", "1150.00"), ("BRG-6205", "0", "16.00"), ("CBL-4x2.5", "0", "8.60"))
#: sku → (min quantity, max quantity, lead time in working days, regular).
PRODUCT_RULES: dict[str, tuple[str | None, str | None, int, bool]] = {
    "GM-750": ("1", "200", 3, True),
    "GM-2200": ("1", "100", 5, True),
    "VFD-4K": ("1", "50", 5, False),
    "CAB-PLC": ("1", "5", 15, False),
    "BRG-6205": ("10", None, 0, True),
}
#: (customer, sku, period, max quantity): SC001 may buy at most 10 gear motors 2.2 kW a month.
PURCHASE_LIMITS = (("SC001", "GM-2200", "month", "10"),)
BLOCKED = ("GZ001", "货款逾期 90 天 Payment 90 days overdue")
PAYMENT_METHODS = ("SC001", "prepayment,monthly_settlement")


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add intake's demo data and orders (see the module's docstring); never commits."""
    today = company_now().date()
    admin = users[ADMIN_EMAIL]
    clerk = order_clerk(session, users)
    add_pricing(session, admin, customers, today)
    add_rules(session, customers)
    add_orders(session, users, clerk, customers, today)


def order_clerk(session: Session, users: dict[str, User]) -> User:
    """The demo's order clerk: the user with role ``order_clerk``, created if the demo has none."""
    for user in users.values():
        if any(role.code == "order_clerk" for role in user.roles):
            return user
    admin = users[ADMIN_EMAIL]
    role = session.scalars(select(Role).where(Role.code == "order_clerk")).one()
    clerk = User(
        email=CLERK_EMAIL,
        name="周敏 Zhou (order clerk)",
        password_hash=admin.password_hash,
        language="zh_CN",
        branch_id=admin.branch_id,
        roles=[role],
    )
    session.add(clerk)
    session.flush()
    users[CLERK_EMAIL] = clerk
    return clerk


def _items(rows: tuple[tuple[str, str, str], ...]) -> list[dict[str, str]]:
    return [{"product": sku, "min_quantity": minimum, "unit_price": price} for sku, minimum, price in rows]


def add_pricing(session: Session, admin: User, customers: dict[str, Customer], today: dt.date) -> None:
    """The distributors' group and price list, and CQ001's contract price list, through intake's services."""
    code, name, members = GROUP
    group = save_customer_group(session, admin, {"code": code, "name": name})
    for member in members:
        set_customer_group(session, admin, customers[member].id, group.id)
    create_price_list(
        session,
        admin,
        {
            "code": "PL-DIST",
            "name": "经销商价格表 Distributor prices",
            "customer_group_id": group.id,
            "valid_from": today - dt.timedelta(days=90),
            "items": _items(GROUP_PRICES),
        },
    )
    create_price_list(
        session,
        admin,
        {
            "code": f"HT-{CONTRACT_CUSTOMER}",
            "name": "山城机电年度合同价 Shancheng annual contract",
            "customer_id": customers[CONTRACT_CUSTOMER].id,
            "contract_number": f"HT-{today.year}-0318",
            "valid_from": today - dt.timedelta(days=60),
            "valid_to": today + dt.timedelta(days=305),
            "items": _items(CONTRACT_PRICES),
        },
    )


def _product(session: Session, sku: str) -> Product:
    return session.scalars(select(Product).where(Product.sku == sku)).one()


def add_rules(session: Session, customers: dict[str, Customer]) -> None:
    """Product ordering rules, a purchase limit, a blocked customer and allowed payment methods."""
    for sku, (minimum, maximum, lead_time, regular) in PRODUCT_RULES.items():
        session.add(
            IntakeProductRule(
                product_id=_product(session, sku).id,
                min_quantity=Decimal(minimum) if minimum else None,
                max_quantity=Decimal(maximum) if maximum else None,
                lead_time_days=lead_time,
                regular=regular,
            )
        )
    for code, sku, period, maximum in PURCHASE_LIMITS:
        session.add(
            IntakePurchaseLimit(
                customer_id=customers[code].id,
                product_id=_product(session, sku).id,
                period=period,
                max_quantity=Decimal(maximum),
            )
        )
    blocked = session.get(IntakeCustomerProfile, customers[BLOCKED[0]].id)
    assert blocked is not None  # made by add_pricing (a distributor)
    blocked.blocked, blocked.blocked_reason = True, BLOCKED[1]
    paying = session.get(IntakeCustomerProfile, customers[PAYMENT_METHODS[0]].id)
    assert paying is not None
    paying.payment_methods = PAYMENT_METHODS[1]
    session.flush()


def _payload(
    session: Session, customer: Customer, today: dt.date, lines: list[tuple[str, str, str | None]], **header: Any
) -> dict[str, Any]:
    """An order body for ``customer``: its contact and first address; each line (sku, quantity,
    unit price or None for the applicable price)."""
    contact, address = customer.contacts[0], customer.addresses[0]
    body_lines = []
    for sku, quantity, price in lines:
        if price is None:
            applied = applicable_price(session, customer.id, _product(session, sku).id, quantity, today, "CNY")
            assert applied is not None
            price = f"{applied.unit_price:f}"
        body_lines.append({"product": sku, "quantity": quantity, "unit_price": price})
    body: dict[str, Any] = {
        "customer": customer.code,
        "requested_date": (today + dt.timedelta(days=30)).isoformat(),
        "payment_method": "monthly_settlement",
        "contact_name": contact.name,
        "contact_phone": contact.phone,
        "ship_to": {
            "contact": contact.name,
            "phone": contact.phone,
            "province": address.province,
            "city": address.city,
            "address": f"{address.district}{address.address}",
        },
        "lines": body_lines,
    }
    body.update(header)
    return body


def _enter(session: Session, actor: User, body: dict[str, Any]) -> Order:
    return create_order(session, actor, load_order_input(body))


def add_orders(
    session: Session, users: dict[str, User], clerk: User, customers: dict[str, Customer], today: dt.date
) -> dict[str, Order]:
    """One order per channel, each taken through the flow to where the module docstring says; by channel."""
    registry = session_registry(session)
    year = today.year
    orders: dict[str, Order] = {}

    portal_user = users[PORTAL_EMAIL]
    orders["portal"] = _enter(
        session,
        portal_user,
        _payload(
            session,
            customers[CONTRACT_CUSTOMER],
            today,
            [("GM-750", "6", None), ("BRG-6205", "100", None)],
            channel="portal",
            reference=f"CG-{year}-0457",
            payment_method="monthly_settlement",
            note="请按合同价结算。Please invoice at the contract prices.",
        ),
    )
    take_action(session, registry, portal_user, orders["portal"], "submit")

    orders["api"] = _enter(
        session,
        users[ADMIN_EMAIL],
        _payload(
            session,
            customers[CONTRACT_CUSTOMER],
            today,
            [("GM-750", "10", "1280.00"), ("CBL-4x2.5", "500", None)],
            channel="api",
            reference=f"EDI-{year}-88213",
            external_reference=f"SC-EDI-{today:%Y%m%d}-0001",
            payment_method="monthly_settlement",
        ),
    )
    take_action(session, registry, users[ADMIN_EMAIL], orders["api"], "submit")

    orders["fax"] = _enter(
        session,
        clerk,
        _payload(
            session,
            customers["CQ002"],
            today,
            [("VFD-4K", "4", None), ("GM-2200", "4", None)],
            channel="fax",
            reference=f"LJ-PO-{year}-0932",
            payment_method="prepayment",
        ),
    )
    attach_fax(session, clerk, orders["fax"], customers["CQ002"], today)
    take_action(session, registry, clerk, orders["fax"], "submit")

    orders["phone"] = _enter(
        session,
        clerk,
        _payload(
            session,
            customers["CQ003"],
            today,
            [("GM-750", "2", None)],
            channel="phone",
            urgency="urgent",
            requested_date=(today + dt.timedelta(days=2)).isoformat(),
            payment_method="cash_on_delivery",
            reason="生产线减速电机烧毁，停机待修 A line is down: its gear motor burnt out",
            note="电话下单，何军，急件 Phone order from He Jun, urgent",
        ),
    )
    take_action(session, registry, clerk, orders["phone"], "submit")

    seller_cd = users.get("sales.cd@demo.ordo", users[ADMIN_EMAIL])
    orders["email"] = _enter(
        session,
        seller_cd,
        _payload(
            session,
            customers[BLOCKED[0]],
            today,
            [("CBL-4x2.5", "800", None)],
            channel="email",
            reference=f"QT-{year}-116",
            payment_method="monthly_settlement",
        ),
    )
    take_action(session, registry, seller_cd, orders["email"], "submit")  # the pre-check rejects it

    seller = users.get("sales@demo.ordo", users[ADMIN_EMAIL])
    customer = customers["SH001"]
    right_phone = customer.contacts[0].phone
    body = _payload(
        session,
        customer,
        today,
        [("BRG-6205", "600", None), ("CBL-4x2.5", "1000", None)],
        channel="offline",
        reference=f"PJ-HT-{year}-027",
        payment_method="prepayment",
    )
    body["ship_to"]["phone"] = right_phone[:-2] + right_phone[-1] + right_phone[-2]  # two digits swapped
    orders["offline"] = _enter(session, seller, body)
    take_action(session, registry, seller, orders["offline"], "submit")
    correct_entry_error(session, clerk, orders["offline"], "ship_to_phone", right_phone)
    take_action(session, registry, clerk, orders["offline"], "accept")
    manager = users.get(MANAGER_EMAIL, users[ADMIN_EMAIL])
    pass_plugin_steps(session, registry, manager, orders["offline"], "confirm", users)
    take_action(session, registry, manager, orders["offline"], "confirm")
    session.flush()
    return orders


def correct_entry_error(session: Session, clerk: User, order: Order, field: str, value: str) -> IntakeCorrection:
    """Correct a mistyped header field in the manual check, recorded as an entry error (IN-9) and audited."""
    before = str(getattr(order, field))
    setattr(order, field, value)
    correction = IntakeCorrection(
        order_id=order.id,
        field=field,
        before=before,
        after=value,
        entry_error=True,
        note="对照客户原始订单更正：电话号码录入错误 Corrected against the customer's original order",
        user_id=clerk.id,
    )
    session.add(correction)
    session.flush()
    audit.record(session, clerk, "order", order.id, "intake_correction", {field: [before, value], "entry_error": True})
    return correction


def attach_fax(session: Session, clerk: User, order: Order, customer: Customer, today: dt.date) -> None:
    """Attach the customer's original fax (a PDF drawn here) to ``order`` as its original document (IN-5).

    Skipped when the demo is loaded without an instance folder (no file store).
    """
    if not isinstance(session.info.get("ordo_instance"), Instance):
        return
    from core.attachments.service import add_attachment

    add_attachment(
        session,
        clerk,
        order.id,
        filename=f"传真订单-{customer.code}-{order.reference}.pdf",
        data=fax_pdf(order, customer, today),
        kind="customer_order",
        note="客户传真原件，录入后请逐项核对 The customer's faxed original; check the entry against it",
    )


def fax_pdf(order: Order, customer: Customer, today: dt.date) -> bytes:
    """A one-page faxed purchase order (采购订单) as the customer sent it, rendered with WeasyPrint."""
    from markupsafe import escape
    from weasyprint import HTML

    from core.documents import data_only_fetcher

    rows = "".join(
        f"<tr><td>{n}</td><td>{escape(line.product.sku)}</td><td>{escape(line.product.name)}</td>"
        f"<td>{line.quantity:f} {escape(line.unit)}</td><td>{line.unit_price:.2f}</td></tr>"
        for n, line in enumerate(order.lines, start=1)
    )
    html = f"""<html><head><style>
      @page {{ size: A4; margin: 18mm; }}
      body {{ font-family: "Noto Sans CJK SC", "Noto Sans SC", sans-serif; font-size: 10pt; color: #333; }}
      h1 {{ text-align: center; font-size: 16pt; }}
      table {{ width: 100%; border-collapse: collapse; margin: 6mm 0; }}
      td, th {{ border: 1px solid #555; padding: 2mm; }}
      .fax {{ font-size: 8pt; color: #777; border-bottom: 1px dashed #999; }}
      .stamp {{ float: right; border: 2px solid #b22; color: #b22; border-radius: 50%;
                width: 32mm; height: 32mm; text-align: center; line-height: 32mm; }}
    </style></head><body>
      <p class="fax">FAX {escape(customer.contacts[0].phone)} → 023-6700-0000 · {today.isoformat()}
        · 第 1 页 共 1 页</p>
      <h1>采购订单</h1>
      <p>订单号 PO No.: {escape(order.reference)}<br>
         供方：重庆渝信贸易有限公司<br>
         需方：{escape(customer.name)}<br>
         联系人：{escape(order.contact_name)} {escape(order.contact_phone)}<br>
         交货日期：{order.requested_date.isoformat() if order.requested_date else ""}　付款方式：预付款</p>
      <table><tr><th>序号</th><th>型号</th><th>品名</th><th>数量</th><th>单价（元）</th></tr>{rows}</table>
      <p>送货地址：{escape(order.ship_to_province)}{escape(order.ship_to_address)}</p>
      <div class="stamp">{escape(customer.name[:6])}</div>
      <p>需方确认（签字盖章）：{escape(order.contact_name)}</p>
    </body></html>"""
    return bytes(HTML(string=html, url_fetcher=data_only_fetcher()).write_pdf())  # fetches nothing

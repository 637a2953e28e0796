"""Logistics' part of the demo company (``ordo demo``): warehouse, stock, carriers, and orders
at every logistics state — including a remote Chengdu order received with its documents.

Why: whoever opens the demo should find each thing logistics does already happening —
stock to look at, carriers with rates, a queue at the outbound check, an order being
picked, one shipping with a backorder, a remote order in transit with an open exception,
a remote order the customer confirmed in the portal (with a printable waybill and
delivery note, the issue's "done when"), a return waiting for review, and goods
ageing unshipped (LG-1 … LG-11).

Everything goes through logistics' services, as users would, inside the demo's
transaction, never committing. Two entry points:

- :func:`pass_step` (hook ``ordo_demo_pass_step``): core's demo orders whose paths go
  past confirmation pass logistics' steps like real ones — the warehouse releases the
  order (receiving what is short first), plans, picks, packs and ships it with the
  suggested carrier, and records the customer's receipt.
- :func:`populate` (hook ``ordo_demo_data``): the warehouse 重庆总仓 with its locations,
  the products' weights and volumes, stock, two carriers (顺丰速运 with express and
  standard service, 德邦物流 by volume), transit times from 重庆市 and rates; the demo's
  logistics people; then the orders of :data:`STAGES`.

The setup (:func:`ensure_setup`) runs once, from whichever entry point comes first: core
creates its orders (and asks :func:`pass_step`) before any plugin's ``populate``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE, company_now
from core.db import utcnow
from core.models import Branch, Customer, Order, Product, Role, User
from core.security.passwords import hash_password
from core.services.orders import create_order, load_order_input, may_see_order, take_action
from core.settings import get_setting, session_registry
from plugins.logistics import flow, stock
from plugins.logistics.models import (
    LogisticsCarrier,
    LogisticsLocation,
    LogisticsOrder,
    LogisticsShipment,
    LogisticsWarehouse,
)

ADMIN_EMAIL = "admin@demo.ordo"
MANAGER_EMAIL = "sales.manager@demo.ordo"
#: The warehouse code of the demo's one warehouse.
WAREHOUSE_CODE = "CQ-01"
WAREHOUSE = {
    "code": WAREHOUSE_CODE,
    "name": "重庆总仓 Chongqing central warehouse",
    "province": "重庆市",
    "city": "重庆市",
    "address": "渝北区空港工业园双凤路 18 号",
    "contact": "孙强",
    "phone": "023-6700-0018",
    "is_default": True,
}
#: (code, name) in the pickers' walking order.
LOCATIONS = (
    ("A-01", "A 区 1 号货架 Rack A1"),
    ("A-02", "A 区 2 号货架 Rack A2"),
    ("B-01", "B 区 1 号货架 Rack B1"),
    ("B-02", "B 区 2 号货架 Rack B2"),
    ("C-01", "C 区 重货区 Heavy goods"),
)
#: SKU → (unit weight kg, unit volume m³, reorder level, location, stock received).
PRODUCT_FACTS: dict[str, tuple[str, str, str, str, str]] = {
    "GM-750": ("18.5", "0.028", "10", "A-01", "80"),
    "GM-2200": ("36", "0.055", "6", "A-02", "40"),
    "VFD-4K": ("6.2", "0.018", "5", "B-01", "30"),
    "CAB-PLC": ("135", "0.96", "0", "C-01", "4"),
    "CBL-4x2.5": ("0.21", "0.0004", "500", "B-02", "3000"),
    "BRG-6205": ("0.13", "0.00012", "200", "B-02", "2000"),
}
#: The demo's logistics people: (email, name, role, branch code, language, customer code).
PEOPLE = (
    ("warehouse.cd@demo.ordo", "钱进 Qian (warehouse, Chengdu orders)", "warehouse", "CD", "zh_CN", None),
    ("regional.manager@demo.ordo", "冯区经理 Feng (regional manager)", "regional_manager", "HQ", "zh_CN", None),
    ("marketing@demo.ordo", "韩总监 Han (marketing director)", "marketing_director", "HQ", "zh_CN", None),
    ("qc@demo.ordo", "曹检 Cao (quality inspector)", "quality_inspector", "HQ", "zh_CN", None),
    ("customer.cd@demo.ordo", "李娜 (蓉锦贸易 portal)", "customer", None, "zh_CN", "SC001"),
)
#: The carriers: code, name, liability, insurance rate %, minimum premium, services.
CARRIERS: tuple[dict[str, Any], ...] = (
    {
        "code": "SF",
        "name": "顺丰速运 SF Express",
        "liability": "按保价金额赔偿；未保价按运费 7 倍以内赔偿 Insured value; uninsured up to 7× freight",
        "insurance_rate": "0.5",
        "insurance_minimum": "2",
        "services": (
            {
                "code": "EXP",
                "name": "顺丰特快 Express",
                "divisor": 6000,
                "transit": (("重庆市", "四川省", 1), ("重庆市", "贵州省", 1), ("重庆市", "*", 2), ("*", "*", 3)),
                "rates": (
                    ("四川省", "1", "18", "1", "6"),
                    ("贵州省", "1", "18", "1", "6"),
                    ("*", "1", "23", "1", "12"),
                ),
            },
            {
                "code": "STD",
                "name": "顺丰标快 Standard",
                "divisor": 8000,
                "transit": (("重庆市", "四川省", 2), ("重庆市", "贵州省", 2), ("重庆市", "*", 3), ("*", "*", 4)),
                "rates": (
                    ("四川省", "1", "12", "1", "3"),
                    ("贵州省", "1", "12", "1", "3.5"),
                    ("*", "1", "16", "1", "7"),
                ),
            },
        ),
    },
    {
        "code": "DB",
        "name": "德邦物流 Deppon Logistics",
        "liability": "按合同约定，最高赔偿货值的 30% Per contract: up to 30% of the goods' value",
        "insurance_rate": "0.3",
        "insurance_minimum": "5",
        "services": (
            {
                "code": "LTL",
                "name": "精准卡航 Less-than-truckload",
                "divisor": 6000,
                "transit": (("重庆市", "四川省", 3), ("重庆市", "贵州省", 3), ("重庆市", "*", 5), ("*", "*", 6)),
                "rates": (("四川省", "0.1", "60", "0.1", "18", "volume"), ("*", "0.1", "80", "0.1", "26", "volume")),
            },
        ),
    },
)


# --- people and lookups ------------------------------------------------------------------------


def _user(users: dict[str, User], email: str) -> User:
    return users.get(email) or users[ADMIN_EMAIL]


def ensure_people(session: Session, users: dict[str, User], customers: dict[str, Customer] | None = None) -> None:
    """Add the demo's logistics people (:data:`PEOPLE`) to ``users``, once."""
    roles = {r.code: r for r in session.scalars(select(Role))}
    branches = {b.code: b for b in session.scalars(select(Branch))}
    known = {u.email: u for u in session.scalars(select(User).where(User.email.in_([p[0] for p in PEOPLE])))}
    password_hash = None
    for email, name, role, branch, language, customer_code in PEOPLE:
        if email in known:
            users.setdefault(email, known[email])
            continue
        if role not in roles:
            continue
        customer_id = None
        if customer_code is not None:
            customer = (customers or {}).get(customer_code) or session.scalar(
                select(Customer).where(Customer.code == customer_code)
            )
            if customer is None:
                continue
            customer_id = customer.id
        if password_hash is None:
            from core.demo import DEMO_PASSWORD

            password_hash = hash_password(DEMO_PASSWORD)
        person = User(
            email=email,
            name=name,
            password_hash=password_hash,
            language=language,
            branch_id=branches[branch].id if branch in branches else None,
            customer_id=customer_id,
            roles=[roles[role]],
        )
        session.add(person)
        users[email] = person
    session.flush()


def _worker(session: Session, users: dict[str, User], order: Order) -> User:
    """The warehouse clerk whose data scope holds ``order`` (the administrator otherwise)."""
    for email in ("warehouse@demo.ordo", "warehouse.cd@demo.ordo"):
        user = users.get(email)
        if user is not None and may_see_order(session, user, order):
            return user
    return users[ADMIN_EMAIL]


def _portal_user(session: Session, users: dict[str, User], order: Order) -> User | None:
    """The customer's own portal user (who confirms receipt in the portal), if the demo has one."""
    for user in users.values():
        if user.customer_id == order.customer_id and user.can(flow.RECEIPT_CONFIRM):
            return user
    return None


# --- the setup -----------------------------------------------------------------------------------


def _warehouse(session: Session) -> LogisticsWarehouse | None:
    return session.scalar(select(LogisticsWarehouse).where(LogisticsWarehouse.code == WAREHOUSE_CODE))


def ensure_setup(session: Session, users: dict[str, User]) -> LogisticsWarehouse:
    """The demo's warehouse, locations, product facts, stock and carriers, created once."""
    from plugins.logistics import carriers, warehouses

    found = _warehouse(session)
    if found is not None:
        return found
    admin = users[ADMIN_EMAIL]
    keeper = _user(users, "warehouse@demo.ordo")
    warehouse = warehouses.create_warehouse(session, admin, WAREHOUSE)
    locations = {}
    for sequence, (code, name) in enumerate(LOCATIONS, start=1):
        location = warehouses.create_location(
            session, admin, warehouse.id, {"code": code, "name": name, "sequence": sequence * 10}
        )
        locations[code] = location
    products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(list(PRODUCT_FACTS))))}
    for sku, (weight, volume, reorder, location_code, quantity) in PRODUCT_FACTS.items():
        product = products.get(sku)
        if product is None:
            continue
        warehouses.set_product_facts(session, admin, product.id, weight, volume, reorder)
        stock.post_move(
            session,
            keeper,
            kind="receipt",
            product_id=product.id,
            location_id=locations[location_code].id,
            quantity=Decimal(quantity),
            reference="PO-2026-INIT 期初入库",
            note="期初库存 Opening stock",
        )
    manager = _user(users, "gm@demo.ordo")
    for spec in CARRIERS:
        carrier = carriers.create_carrier(
            session,
            manager,
            code=spec["code"],
            name=spec["name"],
            liability=spec["liability"],
            insurance_rate=spec["insurance_rate"],
            insurance_minimum=spec["insurance_minimum"],
        )
        for service_spec in spec["services"]:
            service = carriers.create_service(
                session,
                manager,
                carrier.id,
                code=service_spec["code"],
                name=service_spec["name"],
                volumetric_divisor=service_spec["divisor"],
            )
            for origin, destination, days in service_spec["transit"]:
                carriers.add_transit(
                    session, manager, service.id, from_province=origin, to_province=destination, days=days
                )
            for rate in service_spec["rates"]:
                to_province, first_unit, first_price, additional_unit, additional_price = rate[:5]
                carriers.add_rate(
                    session,
                    manager,
                    service.id,
                    to_province=to_province,
                    basis=rate[5] if len(rate) > 5 else "weight",
                    first_unit=first_unit,
                    first_price=first_price,
                    additional_unit=additional_unit,
                    additional_price=additional_price,
                    minimum_charge="30" if len(rate) > 5 else "0",
                )
    session.flush()
    # Core's orders were confirmed before the warehouse existed: they ship from it now.
    for facts in session.scalars(select(LogisticsOrder).where(LogisticsOrder.warehouse_id.is_(None))):
        facts.warehouse_id = warehouse.id
    session.flush()
    stock.reserve_backorders(session, None, keeper)
    return warehouse


# --- taking an order along -----------------------------------------------------------------------


def top_up(session: Session, users: dict[str, User], order: Order) -> None:
    """Receive what the order is short of (补货), then reserve it for the order."""
    warehouse = ensure_setup(session, users)
    keeper = _worker(session, users, order)
    short = stock.backorder_quantities(session, order)
    lines = {line.id: line for line in order.lines}
    first = session.scalars(
        select(LogisticsLocation)
        .where(LogisticsLocation.warehouse_id == warehouse.id, LogisticsLocation.blocked.is_(False))
        .order_by(LogisticsLocation.sequence)
    ).first()
    assert first is not None
    for line_id, quantity in short.items():
        stock.post_move(
            session,
            _user(users, "warehouse@demo.ordo"),
            kind="receipt",
            product_id=lines[line_id].product_id,
            location_id=first.id,
            quantity=quantity,
            reference=f"补货 {order.number}",
            note="补货入库 Replenishment",
        )
    if short:
        stock.reserve_order(session, order, keeper)


def release(session: Session, users: dict[str, User], order: Order, *, top: bool = True) -> None:
    """The warehouse releases the order to shipping (出库审核), receiving what is short first."""
    from plugins.logistics import outbound

    if top:
        top_up(session, users, order)
    else:
        ensure_setup(session, users)
        stock.reserve_order(session, order, _worker(session, users, order))
    if outbound.release_blockers(session, order):
        top_up(session, users, order)
    take_action(session, session_registry(session), _worker(session, users, order), order, "release")


def _tracking_number(shipment: LogisticsShipment, carrier: LogisticsCarrier | None) -> str:
    prefix = carrier.code if carrier is not None else "TN"
    return f"{prefix}{7_100_000_000 + shipment.id * 7919}"


def ship_reserved(
    session: Session,
    users: dict[str, User],
    order: Order,
    *,
    until: str = "shipped",
    pick_list: bool = True,
) -> LogisticsShipment | None:
    """Plan a shipment of everything reserved and take it to ``until`` (picking, picked, packed, shipped).

    Picks by a picking list (拣货单), packs one package per 30 kg, takes the suggested
    carrier (or the first candidate, with a reason, when none meets the date) and ships
    with the carrier's tracking number. None when nothing is reserved.
    """
    from plugins.logistics import carriers, shipping

    keeper = _worker(session, users, order)
    if not any(q > 0 for q in stock.reserved_quantities(session, order.id).values()):
        return None
    shipment = shipping.plan_shipment(session, keeper, order)
    if pick_list:
        picks = shipping.create_pick_list(session, keeper, [shipment.id])
        if until == "picking":
            return shipment
        shipping.confirm_pick(session, keeper, picks.id, {})
    if until == "picked":
        return shipment
    parcel = carriers.parcel_of_lines(session, [(line.product_id, line.quantity) for line in shipment.lines])
    weight = max(parcel.weight, Decimal("0.5"))
    count = max(1, int((weight / Decimal(30)).to_integral_value(rounding=ROUND_CEILING)))
    each = (weight / count).quantize(Decimal("0.001"))
    for _ in range(count):
        shipping.add_package(session, keeper, shipment.id, each, "60", "40", "40", "纸箱 carton")
    shipping.mark_packed(session, keeper, shipment.id)
    if until == "packed":
        return shipment
    suggestion = shipping.suggestion_for(session, shipment)
    chosen = suggestion.best or next(iter(suggestion.candidates), None)
    if chosen is not None:
        reason = "" if suggestion.best is not None else "演示：无承运商满足交期，选最快的 Demo: none meets the date"
        shipping.choose_carrier(session, keeper, shipment.id, chosen.service.id, override_reason=reason)
    carrier = session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None
    shipping.ship(session, keeper, shipment.id, tracking_number=_tracking_number(shipment, carrier))
    return shipment


def track(
    session: Session, users: dict[str, User], shipment: LogisticsShipment, codes: tuple[str, ...], order: Order
) -> None:
    """Record the carrier's tracking events ``codes`` on ``shipment`` (hours apart, ending now)."""
    from plugins.logistics import tracking

    keeper = _worker(session, users, order)
    now = company_now()
    places = {
        "picked_up": "重庆渝北营业部 Chongqing Yubei",
        "in_transit": "成渝转运中心 Chengdu–Chongqing hub",
        "out_for_delivery": "派送中 Out for delivery",
        "delivered": "客户签收 Signed by the customer",
    }
    for n, code in enumerate(codes):
        at = now - dt.timedelta(hours=2 * (len(codes) - n))
        tracking.add_event(session, keeper, shipment.id, code, at, places.get(code, ""), "")


def receive(session: Session, users: dict[str, User], order: Order, *, portal: bool = True) -> None:
    """Deliver the order's shipped shipments (proof of delivery) and have the customer confirm receipt."""
    from plugins.logistics import delivery

    keeper = _worker(session, users, order)
    customer_user = _portal_user(session, users, order) if portal else None
    shipments = session.scalars(
        select(LogisticsShipment).where(
            LogisticsShipment.order_id == order.id,
            LogisticsShipment.status.in_(("shipped", "delivered")),
            LogisticsShipment.receipt_status == "pending",
        )
    )
    for shipment in list(shipments):
        if shipment.pod_signed_at is None:
            contact = order.ship_to_contact or order.contact_name or "收货人"
            delivery.record_proof_of_delivery(session, keeper, shipment.id, contact, utcnow(), None)
        delivery.confirm_receipt(session, customer_user or keeper, shipment.id)
    if order.step == flow.RECEIPT and get_setting(session, flow.ACCEPTANCE_REQUIRED):
        delivery.record_acceptance(session, keeper, order.id, "accepted", "演示：验收合格 Demo: accepted")


def pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Move ``order`` on from the logistics step it waits at, as the demo's warehouse and customer would."""
    if order.step in (flow.OUTBOUND_CHECK, flow.SHIPPING, flow.RECEIPT):
        ensure_people(session, users)
    if order.step == flow.OUTBOUND_CHECK:
        release(session, users, order)
        return True
    if order.step == flow.SHIPPING:
        ensure_setup(session, users)
        top_up(session, users, order)
        return ship_reserved(session, users, order) is not None
    if order.step == flow.RECEIPT:
        before = order.step
        receive(session, users, order)
        return order.step != before
    return False


# --- the demo orders -----------------------------------------------------------------------------


def _enter(
    session: Session,
    users: dict[str, User],
    customers: dict[str, Customer],
    code: str,
    seller: str,
    lines: list[tuple[str, str]],
    key: str,
    days: int,
) -> Order:
    customer = customers[code]
    contact, address = customer.contacts[0], customer.addresses[0]
    today = company_now().date()
    data = load_order_input(
        {
            "customer": code,
            "channel": "phone",
            "reference": reference(key, today.year),
            "requested_date": add_working_days(session, today, days).isoformat(),
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
            "lines": [{"product": sku, "quantity": quantity} for sku, quantity in lines],
        }
    )
    return create_order(session, _user(users, seller), data)


def reference(key: str, year: int) -> str:
    """The customer's purchase-order number of the logistics demo order ``key`` (tests find orders by it)."""
    return f"PO-LG-{year}-{key.upper()}"


def _confirmed(
    session: Session,
    users: dict[str, User],
    customers: dict[str, Customer],
    code: str,
    seller: str,
    lines: list[tuple[str, str]],
    key: str,
    days: int = 8,
) -> Order:
    """A new order taken through submission and the enabled plugins' steps to confirmation."""
    from core.demo import pass_plugin_steps

    registry = session_registry(session)
    order = _enter(session, users, customers, code, seller, lines, key, days)
    manager = _user(users, MANAGER_EMAIL)
    take_action(session, registry, _user(users, seller), order, "submit")
    pass_plugin_steps(session, registry, manager, order, "confirm", users)
    take_action(session, registry, manager, order, "confirm")
    return order


def _received_remote(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Chengdu (remote): released, picked, packed, shipped with the suggested carrier, delivered, received."""
    order = _confirmed(
        session, users, customers, "SC001", "sales.cd@demo.ordo", [("GM-2200", "2"), ("BRG-6205", "100")], "received"
    )
    release(session, users, order)
    shipment = ship_reserved(session, users, order)
    if shipment is not None:
        track(session, users, shipment, ("picked_up", "in_transit", "out_for_delivery", "delivered"), order)
    receive(session, users, order)
    return order


def _in_transit_exception(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Guiyang (remote): shipped, in transit, a delay reported and open."""
    from plugins.logistics import exceptions

    order = _confirmed(
        session, users, customers, "GZ001", "sales.cd@demo.ordo", [("VFD-4K", "2"), ("CBL-4x2.5", "300")], "exception"
    )
    release(session, users, order)
    shipment = ship_reserved(session, users, order)
    if shipment is not None:
        track(session, users, shipment, ("picked_up", "in_transit"), order)
        exceptions.report_exception(
            session,
            _worker(session, users, order),
            shipment.id,
            "delay",
            "贵州境内道路塌方，预计延误 2 天 Road closed by a landslide in Guizhou; about 2 days late",
        )
    return order


def _shipping_backorder(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Chongqing (local): more inverters than in stock; what was there shipped, the rest on backorder."""
    product = session.scalar(select(Product).where(Product.sku == "VFD-4K"))
    short = (stock.free_quantity(session, product.id) + 8) if product is not None else Decimal("8")
    order = _confirmed(
        session,
        users,
        customers,
        "CQ002",
        "sales@demo.ordo",
        [("VFD-4K", format(short.normalize(), "f")), ("GM-750", "2")],
        "backorder",
    )
    release(session, users, order, top=False)
    ship_reserved(session, users, order)
    return order


def _picking(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Chongqing (local): released, on a picking list being picked."""
    order = _confirmed(
        session, users, customers, "CQ003", "sales@demo.ordo", [("GM-750", "3"), ("BRG-6205", "40")], "picking"
    )
    release(session, users, order)
    ship_reserved(session, users, order, until="picking")
    return order


def _return_in_review(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Chongqing (local): received in the portal; one motor came back noisy — a return waits for review."""
    from plugins.logistics import returns

    order = _confirmed(
        session, users, customers, "CQ001", "sales@demo.ordo", [("GM-750", "4"), ("CBL-4x2.5", "100")], "return"
    )
    release(session, users, order)
    ship_reserved(session, users, order)
    receive(session, users, order)
    motor = next(line for line in order.lines if line.product.sku == "GM-750")
    returns.request_return(
        session,
        _user(users, "sales@demo.ordo"),
        order.id,
        [returns.ReturnLineInput(motor.id, Decimal("1"), "quality", "电机运行异响 The motor runs noisily")],
        note="客户已盖章确认 Stamped by the customer",
    )
    return order


def _ageing(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> Order:
    """Chongqing (local): released twelve working days ago, never shipped: abnormal stock, manager told."""
    from plugins.logistics import ageing

    order = _confirmed(session, users, customers, "CQ002", "sales@demo.ordo", [("GM-2200", "1")], "ageing")
    release(session, users, order)
    facts = session.get(LogisticsOrder, order.id)
    if facts is not None and facts.ready_at is not None:
        today = company_now().date()
        ready_day = add_working_days(session, today, -12)
        facts.ready_at = dt.datetime.combine(ready_day, dt.time(10, 0), COMPANY_TIMEZONE)
        session.flush()
        ageing.escalate(session, company_now())
    return order


#: How each logistics demo order is made (key → builder), in this order.
STAGES: dict[str, Callable[[Session, dict[str, User], dict[str, Customer]], Order]] = {
    "received": _received_remote,
    "exception": _in_transit_exception,
    "backorder": _shipping_backorder,
    "picking": _picking,
    "return": _return_in_review,
    "ageing": _ageing,
}


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add logistics' part of the demo company (see the module docstring); never commits."""
    ensure_people(session, users, customers)
    ensure_setup(session, users)
    for build in STAGES.values():
        build(session, users, customers)
    session.flush()

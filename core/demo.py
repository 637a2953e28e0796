"""The demo company: a Chongqing trading firm with branches, customers near and far,
products, one user per default role, and orders in every state.

Everything is created through the same services users go through, so the demo's
orders have real numbers, history and audit entries. The plugins of
:data:`DEMO_PLUGINS` are enabled first; each enabled plugin adds its own part of the
demo through the hook ``ordo_demo_data`` at the end, in the same transaction. An order
taken along its path passes the enabled plugins' steps on the way
(:func:`pass_plugin_steps`): by each step's forward action, or by the plugin itself
through the hook ``ordo_demo_pass_step`` (review's departments give their verdicts).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import company_now
from core.config import Instance
from core.contrib import NEXT
from core.db import make_session_factory
from core.installation import enable, enabled_plugins, initialise
from core.models import Branch, CalendarDay, Company, Customer, Department, Order, Role, User
from core.plugins import Registry, discover
from core.security.passwords import hash_password
from core.services.orders import create_order, load_order_input, take_action
from core.services.parties import create_customer, create_product
from core.workflow import Workflow

DEMO_PASSWORD = "ordo-demo-1"
ADMIN_EMAIL = "admin@demo.ordo"
PORTAL_EMAIL = "customer@demo.ordo"
#: The plugins the demo company works with (when installed); the others stay off.
DEMO_PLUGINS = ("intake", "review", "logistics", "billing", "kpi")

BRANCHES = (("HQ", "重庆总部 Chongqing head office", True), ("CD", "成都分公司 Chengdu branch", False))
DEPARTMENTS = (
    ("sales", "销售部 Sales"),
    ("technical", "技术部 Engineering"),
    ("production", "生产部 Production"),
    ("quality", "质量部 Quality"),
    ("purchasing", "采购部 Purchasing"),
    ("finance", "财务部 Finance"),
    ("warehouse", "仓储物流部 Warehouse & logistics"),
)
#: (email, name, role, branch, department, language)
USERS = (
    ("gm@demo.ordo", "王总 Wang (GM)", "general_manager", "HQ", None, "zh_CN"),
    ("sales.manager@demo.ordo", "刘经理 Liu (sales manager)", "sales_manager", "HQ", "sales", "zh_CN"),
    ("sales@demo.ordo", "陈小明 Chen (sales)", "sales", "HQ", "sales", "zh_CN"),
    ("sales.cd@demo.ordo", "赵丽 Zhao (Chengdu sales)", "sales", "CD", "sales", "zh_CN"),
    ("clerk@demo.ordo", "周敏 Zhou (order clerk)", "order_clerk", "HQ", "sales", "zh_CN"),
    ("warehouse@demo.ordo", "孙强 Sun (warehouse)", "warehouse", "HQ", "warehouse", "zh_CN"),
    ("finance@demo.ordo", "吴芳 Wu (finance)", "finance", "HQ", "finance", "zh_CN"),
    ("auditor@demo.ordo", "郑审计 Zheng (auditor)", "auditor", "HQ", None, "en"),
)
CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "code": "CQ001",
        "name": "重庆山城机电有限公司",
        "branch": "HQ",
        "contacts": [{"name": "张伟", "phone": "023-6788-1001", "email": "zhangwei@shancheng.example"}],
        "addresses": [
            {
                "label": "工厂",
                "province": "重庆市",
                "city": "重庆市",
                "district": "渝北区",
                "region": "西南",
                "address": "金开大道 88 号",
            }
        ],
    },
    {
        "code": "CQ002",
        "name": "重庆两江精密制造有限公司",
        "branch": "HQ",
        "contacts": [{"name": "黄静", "phone": "023-6311-2002", "email": "huang@liangjiang.example"}],
        "addresses": [
            {
                "province": "重庆市",
                "city": "重庆市",
                "district": "两江新区",
                "region": "西南",
                "address": "星光大道 6 号",
            }
        ],
    },
    {
        "code": "CQ003",
        "name": "重庆江津农机合作社",
        "branch": "HQ",
        "contacts": [{"name": "何军", "phone": "023-4752-3003"}],
        "addresses": [
            {
                "province": "重庆市",
                "city": "重庆市",
                "district": "江津区",
                "region": "西南",
                "address": "几江街道 12 号",
            }
        ],
    },
    {
        "code": "SC001",
        "name": "成都蓉锦贸易有限公司",
        "branch": "CD",
        "contacts": [{"name": "李娜", "phone": "028-8555-4004", "email": "lina@rongjin.example"}],
        "addresses": [
            {
                "province": "四川省",
                "city": "成都市",
                "district": "高新区",
                "region": "西南",
                "address": "天府大道 100 号",
            }
        ],
    },
    {
        "code": "GZ001",
        "name": "贵阳黔通设备有限公司",
        "branch": "CD",
        "contacts": [{"name": "杨帆", "phone": "0851-8666-5005", "email": "yangfan@qiantong.example"}],
        "addresses": [{"province": "贵州省", "city": "贵阳市", "region": "西南", "address": "观山湖区林城路 9 号"}],
    },
    {
        "code": "GD001",
        "name": "Shenzhen Pearl Automation Ltd. 深圳明珠自动化",
        "branch": "HQ",
        "contacts": [{"name": "Mary Lin", "phone": "0755-2666-6006", "email": "mary@pearl.example"}],
        "addresses": [{"province": "广东省", "city": "深圳市", "region": "华南", "address": "南山区科技园 3 栋"}],
    },
    {
        "code": "SH001",
        "name": "上海浦江工业品有限公司",
        "branch": "HQ",
        "contacts": [{"name": "徐磊", "phone": "021-5888-7007"}],
        "addresses": [{"province": "上海市", "city": "上海市", "region": "华东", "address": "浦东新区张江路 500 号"}],
    },
)
PRODUCTS: tuple[dict[str, Any], ...] = (
    {
        "sku": "GM-750",
        "name": "减速电机 Gear motor 0.75 kW",
        "spec": "0.75kW 1:20 B5",
        "unit": "台",
        "category": "motors",
        "list_price": "1280.00",
    },
    {
        "sku": "GM-2200",
        "name": "减速电机 Gear motor 2.2 kW",
        "spec": "2.2kW 1:30 B3",
        "unit": "台",
        "category": "motors",
        "list_price": "2650.00",
    },
    {
        "sku": "VFD-4K",
        "name": "变频器 Frequency inverter 4 kW",
        "spec": "380V 4kW",
        "unit": "台",
        "category": "drives",
        "list_price": "1980.00",
    },
    {
        "sku": "CAB-PLC",
        "name": "PLC 控制柜 PLC control cabinet",
        "spec": "定制 made to order",
        "unit": "套",
        "category": "cabinets",
        "list_price": "18800.00",
        "regular": False,
    },
    {
        "sku": "CBL-4x2.5",
        "name": "电力电缆 Power cable 4×2.5",
        "spec": "YJV 4×2.5mm²",
        "unit": "米",
        "category": "cables",
        "list_price": "9.60",
    },
    {
        "sku": "BRG-6205",
        "name": "深沟球轴承 Ball bearing 6205",
        "spec": "6205-2RS",
        "unit": "个",
        "category": "parts",
        "list_price": "18.50",
    },
    {
        "sku": "SVC-INST",
        "name": "安装调试服务 Installation & commissioning",
        "spec": "per day 按天",
        "unit": "天",
        "category": "services",
        "list_price": "1500.00",
        "tax_rate": "6",
    },
)
#: (customer, salesperson email, lines, final action path, reason)
ORDERS: tuple[tuple[str, str, list[tuple[str, str]], tuple[str, ...], str], ...] = (
    ("CQ001", "sales@demo.ordo", [("GM-750", "4"), ("CBL-4x2.5", "200")], (), ""),
    ("CQ002", "sales@demo.ordo", [("VFD-4K", "2")], ("submit",), ""),
    ("SC001", "sales.cd@demo.ordo", [("GM-2200", "3"), ("BRG-6205", "50")], ("submit",), ""),
    ("GD001", "sales@demo.ordo", [("CAB-PLC", "1"), ("SVC-INST", "3")], ("submit", "confirm"), ""),
    ("CQ003", "sales@demo.ordo", [("GM-750", "2")], ("submit", "confirm"), ""),
    ("SH001", "sales@demo.ordo", [("GM-2200", "6"), ("VFD-4K", "6")], ("submit", "confirm", "complete"), ""),
    ("CQ001", "sales@demo.ordo", [("BRG-6205", "400")], ("submit", "confirm", "complete"), ""),
    (
        "GZ001",
        "sales.cd@demo.ordo",
        [("CBL-4x2.5", "1500")],
        ("cancel",),
        "客户取消采购计划 Customer dropped the purchase plan",
    ),
    (
        "GD001",
        "sales@demo.ordo",
        [("GM-750", "30")],
        ("submit", "reject"),
        "交期无法满足 The requested date cannot be met",
    ),
    ("CQ002", "clerk@demo.ordo", [("SVC-INST", "2")], (), ""),
)


#: The letterhead printed on the demo's documents.
LETTERHEAD = {
    "address": "重庆市渝北区金开大道 99 号 (No. 99 Jinkai Avenue, Yubei, Chongqing)",
    "phone": "023-6700-0000",
    "email": "orders@yuxin.example",
    "tax_id": "91500112MA5UDEMO01",
}
#: Days off besides weekends (the real calendar is the administrator's: Working calendar).
HOLIDAYS = (
    *((dt.date(2026, 10, day), "国庆节 National Day") for day in range(1, 8)),
    (dt.date(2027, 1, 1), "元旦 New Year's Day"),
)


class DemoRefused(Exception):
    """The database already holds a real company; the demo loads only into a new one."""


def load_demo(engine: Engine, instance: Instance | None = None) -> bool:
    """Create the demo company in a new database; returns False if it is there already.

    Refuses a database that holds another company: the demo's administrator has a
    published password and its orders would take real order numbers.
    """
    factory = sessionmaker(engine.execution_options(ordo_read_only=True), expire_on_commit=False)
    if inspect(engine).has_table("company"):
        with factory() as session:
            if session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is not None:
                return False
            if session.scalar(select(Company.id)) is not None:
                raise DemoRefused(
                    "this database already holds a company; load the demo into a new instance "
                    "(ordo --instance DIR demo)"
                )
    initialise(engine, ADMIN_EMAIL, DEMO_PASSWORD, company_name="重庆渝信贸易有限公司 Chongqing Yuxin Trading Co.")
    installed = discover()
    # Before populating, so the plugins' tables exist and their steps take the orders.
    enable(engine, [name for name in DEMO_PLUGINS if name in installed], installed=installed)
    registry = Registry(enabled_plugins(engine), installed)
    # Sessions like the app's: notices, documents and the logo need the registry and files.
    factory = make_session_factory(engine, registry=registry, instance=instance)
    with factory() as session, session.begin():
        _populate(session, registry)
        if instance is not None:
            _paperwork(session, registry)
    return True


def _populate(session: Session, registry: Registry) -> None:
    company = session.scalar(select(Company).order_by(Company.id))
    assert company is not None
    company.home_province = "重庆市"
    for key, value in LETTERHEAD.items():
        setattr(company, key, value)
    session.add_all(CalendarDay(company_id=company.id, day=day, kind="holiday", name=name) for day, name in HOLIDAYS)
    hq = session.scalar(select(Branch).where(Branch.code == "HQ"))
    assert hq is not None
    hq.name = BRANCHES[0][1]
    session.add(Branch(company_id=company.id, code="CD", name=BRANCHES[1][1]))
    session.add_all(Department(company_id=company.id, code=code, name=name) for code, name in DEPARTMENTS)
    session.flush()
    branches = {b.code: b for b in session.scalars(select(Branch))}
    departments = {d.code: d for d in session.scalars(select(Department))}
    roles = {r.code: r for r in session.scalars(select(Role))}
    admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    assert admin is not None
    admin.branch_id = hq.id
    users = {ADMIN_EMAIL: admin}
    password_hash = hash_password(DEMO_PASSWORD)
    for email, name, role, branch, department, language in USERS:
        users[email] = User(
            email=email,
            name=name,
            password_hash=password_hash,
            language=language,
            branch_id=branches[branch].id,
            department_id=departments[department].id if department else None,
            roles=[roles[role]],
        )
        session.add(users[email])
    session.flush()
    customers: dict[str, Customer] = {}
    for data in CUSTOMERS:
        customer = create_customer(session, admin, data)
        customer.owner_id = users["sales.cd@demo.ordo" if data["branch"] == "CD" else "sales@demo.ordo"].id
        customers[customer.code] = customer
    for data in PRODUCTS:
        create_product(session, admin, data)
    portal = User(
        email=PORTAL_EMAIL,
        name="张伟 (山城机电 portal)",
        password_hash=password_hash,
        customer_id=customers["CQ001"].id,
        roles=[roles["customer"]],
    )
    session.add(portal)
    users[PORTAL_EMAIL] = portal
    session.flush()
    manager = users["sales.manager@demo.ordo"]
    today = company_now().date()
    for n, (code, seller, lines, path, reason) in enumerate(ORDERS):
        customer = customers[code]
        address = customer.addresses[0]
        contact = customer.contacts[0]
        data = load_order_input(
            {
                "customer": code,
                "channel": ("phone", "email", "offline", "fax", "portal", "api")[n % 6],
                "reference": f"PO-{today.year}-{1001 + n}",
                "requested_date": (today + dt.timedelta(days=14 + 3 * n)).isoformat(),
                "payment_method": ("monthly_settlement", "prepayment", "cash_on_delivery")[n % 3],
                "urgency": "urgent" if n in (3, 6) else "normal",
                "contact_name": contact.name,
                "contact_phone": contact.phone,
                "ship_to": {
                    "contact": contact.name,
                    "phone": contact.phone,
                    "province": address.province,
                    "city": address.city,
                    "address": f"{address.district}{address.address}",
                },
                "lines": [{"product": sku, "quantity": qty} for sku, qty in lines],
            }
        )
        order = create_order(session, users[seller], data)
        for action in path:
            actor = users[seller] if action == "submit" else manager
            pass_plugin_steps(session, registry, manager, order, action, users)
            if action == "complete" and order.step == "completed":
                continue  # a plugin's step completed it (billing: settled by payment)
            take_action(session, registry, actor, order, action, reason if action in ("cancel", "reject") else "")
    session.flush()
    registry.hook.ordo_demo_data(session=session, users=users, customers=customers)
    session.flush()
    _LOGINS[:] = [(user.email, ", ".join(r.code for r in user.roles)) for user in users.values()]


def pass_plugin_steps(
    session: Session, registry: Registry, actor: User, order: Order, action: str, users: dict[str, User]
) -> None:
    """Move ``order`` on through enabled plugins' steps until ``action`` is available.

    The demo's paths name core's actions (``confirm``…). At a plugin's step in between,
    the plugin is asked first (hook ``ordo_demo_pass_step`` with the demo's ``users``:
    review's departments give their verdicts, the approver its approval); if no plugin
    moves it, the step's forward action is taken as ``actor`` (the intake manual check's
    ``accept``), as a clerk would, so the orders end where the paths say. A plugin's
    demo (``ordo_demo_data``) uses it the same way before taking core's actions.
    """
    workflow = Workflow(registry, session)
    # Each step may be passed more than once (a two-tier review asks twice).
    for _ in range(3 * len(registry.steps)):
        if registry.steps[order.step].owner == "core":
            return
        actions = workflow.actions_of(order, actor)
        if any(a.name == action for a in actions):
            return
        if any(registry.hook.ordo_demo_pass_step(session=session, order=order, users=users)):
            continue
        forward = next((a for a in actions if a.target == NEXT), None)
        if forward is None:
            return
        take_action(session, registry, actor, order, forward.name)


def _paperwork(session: Session, registry: Registry) -> None:
    """The logo, and an order confirmation (订单确认书) issued and e-mailed to its customer."""
    from core.company.service import set_logo
    from core.documents.mail import send_document

    admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    assert admin is not None
    set_logo(session, admin, demo_logo())
    confirmed = session.scalars(select(Order).where(Order.status == "confirmed").order_by(Order.id)).first()
    if confirmed is not None:
        send_document(session, registry, "order_confirmation", confirmed.id, admin, version=confirmed.version)


def demo_logo() -> bytes:
    """A small PNG logo for the demo company, drawn here (no image file in the source)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (240, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 110, 110), fill=(178, 34, 34))
    draw.ellipse((35, 35, 85, 85), fill="white")
    draw.rectangle((125, 40, 230, 52), fill=(178, 34, 34))
    draw.rectangle((125, 68, 200, 80), fill=(90, 90, 90))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


#: (e-mail, roles) of every user of the demo loaded last in this process, plugins' included.
_LOGINS: list[tuple[str, str]] = []


def demo_logins() -> list[tuple[str, str]]:
    """(e-mail, role) of every demo login; all share :data:`DEMO_PASSWORD`.

    Core's own logins, then those the enabled plugins added (their reviewers…) when the
    demo was loaded by this process.
    """
    logins = [(ADMIN_EMAIL, "admin")] + [(u[0], u[2]) for u in USERS] + [(PORTAL_EMAIL, "customer")]
    known = {email for email, _ in logins}
    return logins + [(email, roles) for email, roles in _LOGINS if email not in known]

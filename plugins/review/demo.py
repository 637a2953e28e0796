"""Review's part of the demo company (``ordo demo``): reviewers, and orders at every review state.

Why: whoever opens the demo should find each thing review does already happening — a
department's queue with work in it, a two-tier sheet, the president's and the chairman's
decisions, a negotiation, approvals above the sales manager's limit, an audited large
order, and a confirmed order changed only through an approved change request (RV-1 …
RV-9, CORE-5).

Two entry points, both inside the demo's transaction and never committing:

- :func:`pass_step` (hook ``ordo_demo_pass_step``): core's demo orders whose paths name
  ``confirm`` pass review's steps like real ones — every department's demo reviewer gives
  an approving verdict with its figures, credit exceptions are granted by the named
  roles, and the final approval is given by a user whose limit covers the order (the
  sales manager, or the general manager above the manager's limit).
- :func:`populate` (hook ``ordo_demo_data``): the demo reviewers (:data:`REVIEWERS`), then
  the orders of :data:`ORDERS`, each taken through review's services to its state:

  ``credit_hold``        held at the credit check; the vice-president granted an
                         exception, the general manager has not yet (RV-7). The demo gives
                         the answer billing's gate would (:class:`DemoStanding`), for this
                         order only — also when billing is enabled, whose demo accounts are
                         set up after the other plugins' demo orders.
  ``department_review``  departments answering: some verdicts given, some tasks open (RV-1).
  ``tier_two``           a large order (two-tier template): the branch's initial review
                         done, the head-office committee reviewing (RV-2).
  ``president``          finance rejected a thin margin (quotation flagged): not
                         acceptable, waiting for the president (RV-3).
  ``appeal``             purchasing rejected; sales appealed to the chairman (RV-3).
  ``abandoned``          quality rejected; the president abandoned it, reason kept (RV-3, RV-9).
  ``consolidation``      reviewed, then a price and date negotiated with the customer:
                         the affected departments re-reviewed; sales consolidates (RV-4).
  ``final_approval``     above the sales manager's limit: waits for the general manager (RV-6).
  ``supervised``         above 1,000,000: flagged for audit supervision, through both tiers,
                         waiting for the general manager; the auditor followed each step (RV-6).
  ``revised``            confirmed (revision 1); a price change refused, a quantity and date
                         change approved (revision 2), re-reviewed and confirmed again (RV-8, CORE-5).
  ``cancellation``       confirmed, with a cancellation request waiting (RV-8, RV-9).

Every date counts from today, so the demo works whatever day it is loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import hookimpl
from core.clock import company_now
from core.contrib import NEXT
from core.models import Customer, Department, Order, Role, User
from core.plugins import Registry
from core.services.orders import create_order, load_order_input, take_action
from core.settings import session_registry
from core.workflow import Workflow
from plugins.review import flow
from plugins.review.models import ReviewChangeRequest, ReviewDepartment, ReviewTask

ADMIN_EMAIL = "admin@demo.ordo"
SALES_EMAIL = "sales@demo.ordo"
SALES_CD_EMAIL = "sales.cd@demo.ordo"
MANAGER_EMAIL = "sales.manager@demo.ordo"
GM_EMAIL = "gm@demo.ordo"

#: (e-mail, name, role, core department code) of the demo's reviewers and leaders; finance
#: reviews with core's finance user (finance@demo.ordo). Passwords are the demo's.
REVIEWERS = (
    ("technical@demo.ordo", "李工 Li (technical reviewer)", "review_technical", "technical"),
    ("production@demo.ordo", "马厂长 Ma (production reviewer)", "review_production", "production"),
    ("quality@demo.ordo", "钱工 Qian (quality reviewer)", "review_quality", "quality"),
    ("purchasing@demo.ordo", "冯经理 Feng (purchasing reviewer)", "review_purchasing", "purchasing"),
    ("vp@demo.ordo", "许副总 Xu (vice-president)", "vice_president", None),
    ("president@demo.ordo", "唐总裁 Tang (president)", "president", None),
    ("chairman@demo.ordo", "罗董事长 Luo (chairman)", "chairman", None),
)


@dataclass(frozen=True)
class DemoOrder:
    """One demo order: who, what, and the customer's purchase-order number prefix."""

    customer: str
    seller: str
    channel: str
    payment_method: str
    lines: tuple[tuple[str, str], ...]
    #: Calendar days from today to the requested delivery date.
    days: int
    prefix: str
    note: str = ""


#: The demo's review orders by the state they are left in (see the module docstring).
ORDERS: dict[str, DemoOrder] = {
    "credit_hold": DemoOrder(
        "CQ003",
        SALES_EMAIL,
        "phone",
        "cash_on_delivery",
        (("GM-750", "20"),),
        40,
        "JJ-NJ",
        "春耕前备货 Stock before spring",
    ),
    "department_review": DemoOrder(
        "CQ002", SALES_EMAIL, "email", "prepayment", (("VFD-4K", "20"), ("GM-2200", "10")), 45, "LJ-PO"
    ),
    "tier_two": DemoOrder(
        "GD001",
        SALES_EMAIL,
        "email",
        "monthly_settlement",
        (("CAB-PLC", "5"), ("GM-2200", "100"), ("GM-750", "150")),
        60,
        "PA-PO",
        "新产线项目 New production line project",
    ),
    "president": DemoOrder(
        "SH001", SALES_EMAIL, "offline", "prepayment", (("GM-2200", "40"), ("VFD-4K", "20")), 50, "PJ-HT"
    ),
    "appeal": DemoOrder(
        "CQ001",
        SALES_EMAIL,
        "offline",
        "monthly_settlement",
        (("GM-750", "120"), ("BRG-6205", "2000")),
        45,
        "SC-CG",
        "年度框架协议首批 First call-off of the annual framework agreement",
    ),
    "abandoned": DemoOrder("SH001", SALES_EMAIL, "email", "prepayment", (("VFD-4K", "30"),), 35, "PJ-XJ"),
    "consolidation": DemoOrder(
        "SC001", SALES_CD_EMAIL, "email", "prepayment", (("GM-750", "40"), ("BRG-6205", "500")), 40, "RJ-PO"
    ),
    "final_approval": DemoOrder(
        "CQ002", SALES_EMAIL, "offline", "monthly_settlement", (("GM-2200", "80"), ("VFD-4K", "20")), 50, "LJ-HT"
    ),
    "supervised": DemoOrder(
        "GD001",
        SALES_EMAIL,
        "offline",
        "monthly_settlement",
        (
            ("CAB-PLC", "5"),
            ("GM-2200", "100"),
            ("GM-750", "200"),
            ("VFD-4K", "50"),
            ("BRG-6205", "20000"),
            ("CBL-4x2.5", "5000"),
        ),
        75,
        "PA-HT",
        "整厂自动化改造 Whole-plant automation retrofit",
    ),
    "revised": DemoOrder(
        "CQ001", SALES_EMAIL, "phone", "monthly_settlement", (("GM-750", "20"), ("BRG-6205", "200")), 30, "SC-PO"
    ),
    "cancellation": DemoOrder("SC001", SALES_CD_EMAIL, "email", "prepayment", (("BRG-6205", "300"),), 30, "RJ-BJ"),
}

#: Why the credit gate holds the ``credit_hold`` order (what billing would answer).
CREDIT_REASONS = (
    "逾期货款 38,600.00 元已超过 60 天 Overdue receivables of 38,600.00 for more than 60 days",
    "本单将使应收余额超出信用额度 50,000.00 元 This order takes the balance beyond the credit limit of 50,000.00",
)


#: What the finance reviewer and the quotation write as payment terms.
PAYMENT_TERMS = {
    "prepayment": "预付 30%，发货前付清 30% in advance, the rest before shipping",
    "cash_on_delivery": "货到付款 Cash on delivery",
    "monthly_settlement": "月结 60 天 Monthly settlement, 60 days",
    "instalments": "分期付款 Instalments",
}


def reference(key: str, year: int) -> str:
    """The customer's purchase-order number of demo order ``key`` in ``year``."""
    return f"{ORDERS[key].prefix}-{year}-{list(ORDERS).index(key) + 101}"


# --- users -----------------------------------------------------------------------


def _with_role(users: dict[str, User], role: str) -> User | None:
    return next((u for u in users.values() if any(r.code == role for r in u.roles)), None)


def ensure_reviewers(session: Session, users: dict[str, User]) -> dict[str, User]:
    """Add the demo's reviewers and leaders (:data:`REVIEWERS`) to ``users``, once.

    They share the demo's password (the other demo users' hash), work at the head
    office and belong to core's department of the same code when there is one. A role
    that does not exist (review's roles not registered) is skipped.
    """
    admin = users[ADMIN_EMAIL]
    roles = {r.code: r for r in session.scalars(select(Role))}
    departments = {d.code: d for d in session.scalars(select(Department))}
    for email, name, role, department in REVIEWERS:
        if email in users or role not in roles:
            continue
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            user = User(
                email=email,
                name=name,
                password_hash=admin.password_hash,
                language="zh_CN",
                branch_id=admin.branch_id,
                department_id=departments[department].id if department in departments else None,
                roles=[roles[role]],
            )
            session.add(user)
        users[email] = user
    session.flush()
    _name_department_heads(session, users)
    return users


def _name_department_heads(session: Session, users: dict[str, User]) -> None:
    """Each review department without a head gets its demo reviewer as head (SLA escalation)."""
    for department in session.scalars(select(ReviewDepartment).where(ReviewDepartment.head_user_id.is_(None))):
        head = _with_role(users, department.role_code)
        if head is not None:
            department.head_user_id = head.id


def _member(users: dict[str, User], department: ReviewDepartment) -> User | None:
    from plugins.review.sheets import is_member

    return next((u for u in users.values() if is_member(u, department)), None)


# --- verdicts ----------------------------------------------------------------------


def _money(amount: Decimal, share: str) -> str:
    return str((amount * Decimal(share)).quantize(Decimal("0.01")))


def figures_for(kind: str, order: Order, today: dt.date, **overrides: Any) -> dict[str, Any]:
    """A department's figures for an approving verdict on ``order`` (``overrides`` replace some)."""
    untaxed = order.untaxed_amount
    due = order.requested_date or today + dt.timedelta(days=30)
    ready = max(today + dt.timedelta(days=7), due - dt.timedelta(days=5))
    figures: dict[str, dict[str, Any]] = {
        "technical": {
            "feasible": True,
            "difficulties": "无 None",
            "solution": "按标准图纸与工艺 Standard drawings and process",
            "solution_date": (today + dt.timedelta(days=5)).isoformat(),
        },
        "production": {"capacity_ok": True, "materials_ok": True, "completion_date": ready.isoformat()},
        "purchasing": {
            "material_cost": _money(untaxed, "0.55"),
            "outsourcing_cost": _money(untaxed, "0.05"),
            "market_cost": _money(untaxed, "0.57"),
            "in_line_with_market": True,
        },
        "quality": {
            "achievable": True,
            "stated_completely": True,
            "notes": "按 GB/T 10069 出厂检验 Factory test to GB/T 10069",
        },
        "finance": {
            "cost": _money(untaxed, "0.72"),
            "taxes": str(order.tax_amount),
            "gross_margin": "28.00",
            "expense_ratio": "8.00",
            "profit_margin": "19.00",
            "payment_terms": PAYMENT_TERMS.get(order.payment_method, order.payment_method),
            "risk": "low",
        },
    }
    return {**figures.get(kind, {}), **overrides}


def _proposed(kind: str, figures: dict[str, Any]) -> dt.date | None:
    from plugins.review.figures import proposed_date

    return proposed_date(kind, figures)


def answer(
    session: Session,
    registry: Registry,
    users: dict[str, User],
    order: Order,
    *,
    only: tuple[str, ...] | None = None,
    verdicts: dict[str, tuple[str, str, dict[str, Any]]] | None = None,
    comment: str = "同意 Approved",
) -> int:
    """Give the verdicts of the open tasks of the order's current tier; how many were given.

    Each task is answered by its department's demo reviewer: an approving verdict with
    figures from :func:`figures_for`, unless ``verdicts`` names the department's code
    (verdict, comment, figure overrides). ``only``: answer just these departments.
    """
    from plugins.review.sheets import current_sheet, record_verdict

    sheet = current_sheet(session, order.id)
    if sheet is None or order.step != flow.DEPARTMENT_REVIEW:
        return 0
    today = company_now().date()
    given = 0
    tasks = [t for t in sheet.tasks if t.status == "open" and t.tier == sheet.tier]
    for task in tasks:
        department = task.department
        if (only is not None and department.code not in only) or order.step != flow.DEPARTMENT_REVIEW:
            continue
        reviewer = _member(users, department)
        if reviewer is None:
            continue
        verdict, text, overrides = (verdicts or {}).get(department.code, ("approve", comment, {}))
        figures = figures_for(department.kind, order, today, **overrides)
        record_verdict(
            session,
            registry,
            reviewer,
            task,
            verdict=verdict,
            comment=text,
            conditions="预付 30% 后排产 Production starts after a 30% prepayment"
            if verdict == "approve_with_conditions"
            else "",
            figures=figures,
            proposed_date=_proposed(department.kind, figures),
        )
        given += 1
    return given


# --- passing review's steps --------------------------------------------------------


def _approver(session: Session, users: dict[str, User], order: Order) -> User | None:
    from plugins.review.approval import may_approve

    candidates = [users.get(MANAGER_EMAIL), users.get(GM_EMAIL), *users.values()]
    return next(
        (u for u in candidates if u is not None and u.can(flow.APPROVE) and may_approve(session, u, order.total)),
        None,
    )


def _grant_exceptions(session: Session, registry: Registry, users: dict[str, User], order: Order, reason: str) -> int:
    """Every named role still to grant on the order's open hold grants, as its demo user."""
    from plugins.review.credit import grant_exception, open_hold, roles_still_to_grant

    granted = 0
    hold = open_hold(session, order.id)
    while hold is not None and order.step == flow.CREDIT_CHECK:
        grantor = next((g for g in (_with_role(users, r) for r in roles_still_to_grant(session, hold)) if g), None)
        if grantor is None:
            break
        grant_exception(session, registry, grantor, order, reason)
        granted += 1
        hold = open_hold(session, order.id)
    return granted


def pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Move ``order`` on from the review step it waits at, as the demo's people would.

    Department review: every open task of the current tier gets an approving verdict
    from its department's demo reviewer. Credit check: the named roles grant an
    exception. Final approval: a user whose limit covers the order approves. Other
    steps (not review's, or the president's and chairman's detours): False.
    """
    registry = session_registry(session)
    ensure_reviewers(session, users)
    if order.step == flow.DEPARTMENT_REVIEW:
        return answer(session, registry, users, order) > 0
    if order.step == flow.CREDIT_CHECK:
        reason = "演示：长期合作客户，已承诺付款 Demo: long-standing customer who promised to pay"
        return _grant_exceptions(session, registry, users, order, reason) > 0
    if order.step == flow.FINAL_APPROVAL:
        approver = _approver(session, users, order)
        if approver is None:
            return False
        take_action(session, registry, approver, order, "approve")
        return True
    return False


def advance(
    session: Session,
    registry: Registry,
    users: dict[str, User],
    order: Order,
    *,
    actor: User,
    stop_at: tuple[str, ...] = (),
    action: str | None = None,
) -> None:
    """Take ``order`` on until it reaches a step of ``stop_at`` or one offering ``action``.

    Review's steps are passed by :func:`pass_step`, other plugins' (intake's manual
    check) by their forward action taken by ``actor``; core's steps stop it.
    """
    workflow = Workflow(registry, session)
    for _ in range(3 * len(registry.steps)):
        if order.step in stop_at or registry.steps[order.step].owner == "core":
            return
        actions = workflow.actions_of(order, actor)
        if action is not None and any(a.name == action for a in actions):
            return
        if registry.steps[order.step].owner == "review" and pass_step(session, order, users):
            continue
        forward = next((a for a in actions if a.target == NEXT), None)
        if forward is None:
            return
        take_action(session, registry, actor, order, forward.name)


# --- the demo orders ---------------------------------------------------------------


class DemoStanding:
    """The answer billing's credit gate would give for one demo order.

    Registered with the plugin manager only while that order is submitted, as a tiny
    integrator plugin implementing review's hook ``ordo_review_credit_standing``.
    """

    def __init__(self, order_id: int, reasons: tuple[str, ...]):
        self.order_id = order_id
        self.reasons = reasons

    @hookimpl(optionalhook=True)
    def ordo_review_credit_standing(self, order: Order, session: Session) -> list[str]:
        """The demo's reasons for the one held order; no objection to any other."""
        return list(self.reasons) if order.id == self.order_id else []


def _enter(session: Session, users: dict[str, User], customers: dict[str, Customer], key: str, today: dt.date) -> Order:
    spec = ORDERS[key]
    customer = customers[spec.customer]
    contact, address = customer.contacts[0], customer.addresses[0]
    data = load_order_input(
        {
            "customer": customer.code,
            "channel": spec.channel,
            "reference": reference(key, today.year),
            "requested_date": (today + dt.timedelta(days=spec.days)).isoformat(),
            "payment_method": spec.payment_method,
            "contact_name": contact.name,
            "contact_phone": contact.phone,
            "ship_to": {
                "contact": contact.name,
                "phone": contact.phone,
                "province": address.province,
                "city": address.city,
                "address": f"{address.district}{address.address}",
            },
            "note": spec.note,
            "lines": [{"product": sku, "quantity": quantity} for sku, quantity in spec.lines],
        }
    )
    return create_order(session, users.get(spec.seller, users[ADMIN_EMAIL]), data)


def _seller(users: dict[str, User], key: str) -> User:
    return users.get(ORDERS[key].seller) or users[ADMIN_EMAIL]


def _manager(users: dict[str, User]) -> User:
    return users.get(MANAGER_EMAIL) or users[ADMIN_EMAIL]


def _submit(session: Session, registry: Registry, users: dict[str, User], order: Order, key: str) -> Order:
    """Submit ``order`` and take it through the checks before review (intake's manual check)."""
    take_action(session, registry, _seller(users, key), order, "submit")
    advance(session, registry, users, order, actor=_manager(users), stop_at=tuple(s.key for s in flow.STEPS))
    if registry.steps[order.step].owner != "review":
        raise RuntimeError(f"demo order {key} ({order.number}) did not reach review: {order.step} {order.reason}")
    return order


QUOTE_PROFILES = {
    #: gross margin 28 %, profit margin 19 %.
    "normal": (
        ("material", "0.55"),
        ("outsourcing", "0.05"),
        ("labour", "0.06"),
        ("overhead", "0.04"),
        ("freight", "0.02"),
        ("tax", "0.01"),
        ("expense", "0.08"),
    ),
    #: gross margin 9 %, profit margin -1 %: flagged below the minimum.
    "thin": (
        ("material", "0.74"),
        ("outsourcing", "0.06"),
        ("labour", "0.06"),
        ("overhead", "0.03"),
        ("freight", "0.02"),
        ("tax", "0.01"),
        ("expense", "0.09"),
    ),
}
QUOTE_TEXT = {
    "material": "原材料 Raw materials",
    "outsourcing": "外协加工 Outsourced machining",
    "labour": "人工 Labour",
    "overhead": "制造费用 Production overhead",
    "freight": "运费 Freight",
    "tax": "税金及附加 Taxes and surcharges",
    "expense": "销售费用 Selling expenses",
}


def _quote(session: Session, users: dict[str, User], order: Order, key: str, profile: str = "normal") -> None:
    """Save the order's quotation (报价单) with cost lines as shares of its untaxed amount."""
    from plugins.review.quotation import save

    lines = [
        {"kind": kind, "description": QUOTE_TEXT[kind], "amount": _money(order.untaxed_amount, share)}
        for kind, share in QUOTE_PROFILES[profile]
    ]
    terms = PAYMENT_TERMS.get(order.payment_method, order.payment_method)
    save(session, _seller(users, key), order, lines=lines, payment_terms=terms, note="")


def _to_review(
    session: Session,
    registry: Registry,
    users: dict[str, User],
    customers: dict[str, Customer],
    key: str,
    today: dt.date,
) -> Order:
    order = _submit(session, registry, users, _enter(session, users, customers, key, today), key)
    _quote(session, users, order, key, "thin" if key in ("president", "appeal") else "normal")
    return order


def _answer_all(session: Session, registry: Registry, users: dict[str, User], order: Order) -> None:
    """Answer (approve) every tier until the order leaves department review."""
    for _ in range(4):
        if not answer(session, registry, users, order):
            return


def _through_review(
    session: Session, registry: Registry, users: dict[str, User], order: Order, key: str, *, until: str
) -> None:
    """Departments approve; sales sends for approval; on to ``until`` (a step or action)."""
    _answer_all(session, registry, users, order)
    if order.step == flow.CONSOLIDATION and until != flow.CONSOLIDATION:
        take_action(session, registry, _seller(users, key), order, "send_for_approval")
    if until != flow.FINAL_APPROVAL:
        advance(session, registry, users, order, actor=_manager(users), action=until)


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add the demo reviewers and the orders of :data:`ORDERS` (see the module docstring)."""
    registry = session_registry(session)
    today = company_now().date()
    ensure_reviewers(session, users)
    for key in ORDERS:
        STAGES[key](session, registry, users, customers, today)
    session.flush()


def _credit_hold(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """The order held at the credit gate, the vice-president's exception granted (RV-7)."""
    order = _enter(session, users, customers, "credit_hold", today)
    standing = DemoStanding(order.id, CREDIT_REASONS)
    registry.pm.register(standing, name="review_demo_credit")
    try:
        _submit(session, registry, users, order, "credit_hold")
    finally:
        registry.pm.unregister(standing)
    vp = _with_role(users, "vice_president")
    if order.step == flow.CREDIT_CHECK and vp is not None:
        from plugins.review.credit import grant_exception

        grant_exception(
            session,
            registry,
            vp,
            order,
            "合作八年的农机合作社，春耕前必须供货；已承诺月底前结清 Eight-year customer who needs the motors "
            "before spring; promised to settle by month end",
        )
    return order


def _department_review(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Departments answering: about half have given their verdicts (RV-1)."""
    order = _to_review(session, registry, users, customers, "department_review", today)
    sheet_tasks = _open_tasks(session, order)
    answered = tuple(t.department.code for t in sheet_tasks[: max(1, len(sheet_tasks) // 2)])
    answer(
        session,
        registry,
        users,
        order,
        only=answered,
        verdicts={
            "production": (
                "approve_with_conditions",
                "产能可满足，变频器需外购 Capacity is there; the inverters are bought in",
                {},
            )
        },
    )
    return order


def _open_tasks(session: Session, order: Order) -> list[ReviewTask]:
    from plugins.review.sheets import current_sheet

    sheet = current_sheet(session, order.id)
    return [] if sheet is None else [t for t in sheet.tasks if t.status == "open" and t.tier == sheet.tier]


def _tier_two(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """A two-tier review at tier 2: the branch's initial review done, one committee verdict in (RV-2)."""
    order = _to_review(session, registry, users, customers, "tier_two", today)
    answer(session, registry, users, order, comment="分公司初审同意 Branch initial review: approved")
    committee = _open_tasks(session, order)
    if len(committee) > 1:
        answer(
            session,
            registry,
            users,
            order,
            only=(committee[0].department.code,),
            comment="总部评审委员会复审同意 Committee re-review: approved",
        )
    return order


def _president(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Finance rejects a thin margin: not acceptable, waiting for the president (RV-3)."""
    order = _to_review(session, registry, users, customers, "president", today)
    rejects = {
        "finance": (
            "reject",
            "毛利率 9% 低于 15% 的最低要求 Gross margin 9% is below the 15% minimum",
            {
                "gross_margin": "9.00",
                "profit_margin": "-1.00",
                "risk": "high",
                "cost": _money(order.untaxed_amount, "0.91"),
            },
        )
    }
    _answer_all_with(session, registry, users, order, rejects)
    return order


def _answer_all_with(
    session: Session,
    registry: Registry,
    users: dict[str, User],
    order: Order,
    verdicts: dict[str, tuple[str, str, dict[str, Any]]],
    comment: str = "同意 Approved",
) -> None:
    """Answer every tier (``verdicts`` for the departments it names) until the order moves on."""
    for _ in range(4):
        if not answer(session, registry, users, order, verdicts=verdicts, comment=comment):
            return


def _appeal(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Purchasing rejects; sales appeals the case to the chairman (RV-3)."""
    order = _to_review(session, registry, users, customers, "appeal", today)
    rejects = {
        "purchasing": (
            "reject",
            "铜材涨价，材料成本高于市场价 12% Copper went up: material cost is 12% above the market",
            {
                "material_cost": _money(order.untaxed_amount, "0.74"),
                "market_cost": _money(order.untaxed_amount, "0.66"),
                "in_line_with_market": False,
            },
        )
    }
    _answer_all_with(session, registry, users, order, rejects)
    if order.step == flow.PRESIDENT:
        take_action(
            session,
            registry,
            _seller(users, "appeal"),
            order,
            "appeal",
            "战略客户年度框架协议首单，后续批次价格已上调 The first call-off of a strategic customer's annual "
            "agreement; later call-offs are priced higher",
        )
    return order


def _abandoned(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Quality rejects; the president abandons the order, the reason kept (RV-3, RV-9)."""
    order = _to_review(session, registry, users, customers, "abandoned", today)
    rejects = {
        "quality": (
            "reject",
            "客户要求 IP67 防护等级，该变频器仅为 IP20 The customer needs IP67; this inverter is IP20",
            {"achievable": False},
        )
    }
    _answer_all_with(session, registry, users, order, rejects)
    president = _with_role(users, "president")
    if order.step == flow.PRESIDENT and president is not None:
        take_action(
            session,
            registry,
            president,
            order,
            "abandon",
            "质量要求无法满足，无利可图，放弃 The quality requirement cannot be met without a loss; abandoned",
        )
    return order


def _consolidation(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Reviewed, then a lower price and a later date negotiated; the affected departments agreed again (RV-4)."""
    from plugins.review.sheets import negotiate

    order = _to_review(session, registry, users, customers, "consolidation", today)
    _answer_all(session, registry, users, order)
    if order.step == flow.CONSOLIDATION:
        motor = order.lines[0]
        negotiate(
            session,
            registry,
            _seller(users, "consolidation"),
            order,
            unit_prices={motor.id: (motor.unit_price * Decimal("0.97")).quantize(Decimal("0.01"))},
            requested_date=(order.requested_date or today) + dt.timedelta(days=7),
            note="客户要求电机降价 3%，交期可推后一周 The customer asked 3% off the motors and accepts a week later",
        )
        _answer_all_with(
            session, registry, users, order, {}, "按新价格与交期复核，同意 Re-checked at the new price and date"
        )
    return order


def _final_approval(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Above the sales manager's limit: waits for the general manager's approval (RV-6)."""
    order = _to_review(session, registry, users, customers, "final_approval", today)
    _through_review(session, registry, users, order, "final_approval", until=flow.FINAL_APPROVAL)
    return order


def _supervised(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Above 1,000,000: audit supervises it through both tiers to the final approval (RV-6)."""
    order = _to_review(session, registry, users, customers, "supervised", today)
    _through_review(session, registry, users, order, "supervised", until=flow.FINAL_APPROVAL)
    return order


def _confirmed(session: Session, registry: Registry, users: dict[str, User], order: Order, key: str) -> None:
    _through_review(session, registry, users, order, key, until="confirm")
    take_action(session, registry, _manager(users), order, "confirm")


def _assess_all(
    session: Session, users: dict[str, User], request: ReviewChangeRequest, verdict: str, comment: str
) -> None:
    """Every affected department's demo reviewer assesses ``request``."""
    from plugins.review.changes import assess

    for assessment in list(request.assessments):
        if assessment.verdict:
            continue
        member = _member(users, assessment.department)
        if member is not None:
            assess(session, member, request, verdict=verdict, comment=comment)


def _revised(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Confirmed; a price cut refused; more motors and a later date approved: revision 2 (RV-8)."""
    from plugins.review.changes import decide, file_request

    order = _to_review(session, registry, users, customers, "revised", today)
    _confirmed(session, registry, users, order, "revised")
    seller, manager = _seller(users, "revised"), _manager(users)
    motor = order.lines[0]
    refused = file_request(
        session,
        registry,
        seller,
        order,
        {
            "kind": "change",
            "reason": "客户要求电机单价再降 5% The customer asks another 5% off the motors",
            "scope": "仅价格 Price only",
            "content": {
                "lines": [
                    {
                        "line_id": motor.id,
                        "unit_price": str((motor.unit_price * Decimal("0.95")).quantize(Decimal("0.01"))),
                    }
                ]
            },
            "impact": {flow.DEPARTMENT_REVIEW: "财务、采购重新评审 Finance and purchasing review again"},
            "expected_days": 2,
        },
    )
    _assess_all(session, users, refused, "reject", "低于合同价，不同意 Below the contract price")
    decide(
        session,
        registry,
        manager,
        refused,
        approve=False,
        reason="已是合同价，不再降价 Already at the contract price; no further discount",
    )
    new_date = (order.requested_date or today) + dt.timedelta(days=10)
    approved = file_request(
        session,
        registry,
        seller,
        order,
        {
            "kind": "change",
            "reason": "客户新增一条产线，电机追加 10 台 The customer adds a line: 10 more motors",
            "scope": "数量与交期 Quantity and delivery date",
            "content": {
                "lines": [{"line_id": motor.id, "quantity": str(motor.quantity + 10)}],
                "requested_date": new_date.isoformat(),
            },
            "impact": {
                flow.DEPARTMENT_REVIEW: "生产、采购复核产能与备料 Production and purchasing re-check capacity",
                "confirmed": "新交期通知客户 The customer is told the new date",
            },
            "expected_days": 3,
            "new_delivery_date": new_date.isoformat(),
            "rewind_to": flow.DEPARTMENT_REVIEW,
        },
    )
    _assess_all(session, users, approved, "approve", "可安排，交期顺延 10 天 Feasible with the date 10 days later")
    decide(session, registry, manager, approved, approve=True, reason="客户追加订货，同意 More business; approved")
    if order.status != "confirmed":
        _confirmed(session, registry, users, order, "revised")
    return order


def _cancellation(
    session: Session, registry: Registry, users: dict[str, User], customers: dict[str, Customer], today: dt.date
) -> Order:
    """Confirmed, with the customer's cancellation request waiting (RV-8, RV-9)."""
    from plugins.review.changes import file_request

    order = _to_review(session, registry, users, customers, "cancellation", today)
    _confirmed(session, registry, users, order, "cancellation")
    file_request(
        session,
        registry,
        _seller(users, "cancellation"),
        order,
        {
            "kind": "cancel",
            "reason": "客户项目暂停，申请取消订单 The customer's project is on hold; they ask to cancel",
            "scope": "整单取消 The whole order",
            "impact": {"confirmed": "未发货，无需退货 Nothing shipped; no return needed"},
            "expected_days": 2,
        },
    )
    return order


#: How each demo order of :data:`ORDERS` is taken to its state.
STAGES = {
    "credit_hold": _credit_hold,
    "department_review": _department_review,
    "tier_two": _tier_two,
    "president": _president,
    "appeal": _appeal,
    "abandoned": _abandoned,
    "consolidation": _consolidation,
    "final_approval": _final_approval,
    "supervised": _supervised,
    "revised": _revised,
    "cancellation": _cancellation,
}

"""kpi's part of the demo company: a year of order history and what people did with the figures.

Called through ``ordo_demo_data`` (kpi's implementation runs last), after core and the
other plugins loaded their demo orders. It adds:

- a year of generated history (:func:`plugins.kpi.history.generate`, about 60 orders a
  month) — every enabled plugin adds its records to it (shipments, invoices, review
  sheets…), so every metric on the dashboard has twelve months of values;
- the people of kpi's roles: a customer service agent (客服) and a process supervisor
  (稽核), listed with the demo logins (:data:`PEOPLE`, password ``ordo-demo-1``);
- answered satisfaction surveys for a share of the completed history orders, and one
  open survey for the portal customer's latest completed order (KP-2, KP-6);
- resolved complaints over the year, an open one and a resolved one of last month,
  and a planned follow-up visit (客户回访) (KP-6);
- a few branch targets, two reward/alert rules and their evaluation over the last
  three months (KP-2);
- last month's supervision sample with one finding (KP-5).

Each part that relies on a kpi module checks that the module provides its function
first, so the demo still loads while that module is being written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.clock import company_now, day_start
from core.db import sync_id_sequences
from core.models import Branch, Customer, Order, OrderTransition, Role, User
from core.security.passwords import hash_password
from core.settings import session_registry
from plugins.kpi import flow
from plugins.kpi.models import KpiComplaint, KpiSurvey, KpiSurveyAnswer

#: Orders of generated history per month of the demo year.
ORDERS_PER_MONTH = 60
#: Months of history.
MONTHS = 12
#: The demo's kpi people: (e-mail, name, role, branch code).
PEOPLE = (
    ("service@demo.ordo", "马丽 Ma (customer service)", flow.CUSTOMER_SERVICE, "HQ"),
    ("supervisor@demo.ordo", "高稽核 Gao (process supervisor)", flow.SUPERVISOR, "HQ"),
)
ADMIN_EMAIL = "admin@demo.ordo"
DEMO_PASSWORD = "ordo-demo-1"
#: Share of completed history orders whose survey was sent, and of those answered.
SURVEYED_SHARE = 0.35
ANSWERED_SHARE = 0.7
QUESTIONS = ("quality", "delivery", "service", "value")
COMPLAINT_CATEGORIES = ("quality", "delivery", "service", "billing")


def populate(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Add kpi's demo data (see the module docstring) to the demo company."""
    from plugins.kpi.history import generate

    today = company_now().date()
    add_people(session, users)
    admin = users.get(ADMIN_EMAIL) or session.scalars(select(User).order_by(User.id)).first()
    assert admin is not None
    generate(session, orders=ORDERS_PER_MONTH * MONTHS, today=today, months=MONTHS, seed=2026, batch=1000)
    session.flush()
    rng = random.Random(2026)
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    service = users.get(PEOPLE[0][0]) or admin
    supervisor = users.get(PEOPLE[1][0]) or admin
    history_surveys(session, rng, today)
    history_complaints(session, rng, service, today)
    _open_survey(session, customers)
    _feedback(session, service, customers, last_month, today)
    _targets(session, admin)
    _rules(session, admin, last_month)
    _supervision(session, supervisor, users, last_month)
    session.flush()


def add_people(session: Session, users: dict[str, User]) -> None:
    """Create the customer service agent and the supervisor (once) and list them in ``users``."""
    roles = {r.code: r for r in session.scalars(select(Role))}
    branches = {b.code: b for b in session.scalars(select(Branch))}
    password_hash = hash_password(DEMO_PASSWORD)
    for email, name, role, branch in PEOPLE:
        person = session.scalar(select(User).where(User.email == email))
        if person is None and role in roles:
            person = User(
                email=email,
                name=name,
                password_hash=password_hash,
                language="zh_CN",
                branch_id=branches[branch].id if branch in branches else None,
                roles=[roles[role]],
            )
            session.add(person)
        if person is not None:
            users[email] = person
    session.flush()


def history_surveys(session: Session, rng: random.Random, today: dt.date) -> int:
    """Surveys sent the day after completion for a share of completed history orders; most answered.

    Inserted in bulk (the history is not replayed through the survey service, which would
    notify the customers). Scores lean to 4–5 with some 3s and a few 2s. Returns how many.
    """
    now = company_now().astimezone(dt.UTC)
    completed = session.execute(
        select(Order.id, Order.customer_id, OrderTransition.at)
        .join(OrderTransition, OrderTransition.order_id == Order.id)
        .where(Order.number.like("H%"), Order.status == "completed", OrderTransition.to_status == "completed")
        .order_by(Order.id)
    ).all()
    taken = set(session.scalars(select(KpiSurvey.order_id).where(KpiSurvey.order_id.is_not(None))))
    surveys: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    next_id = (session.scalar(select(KpiSurvey.id).order_by(KpiSurvey.id.desc())) or 0) + 1
    for order_id, customer_id, completed_at in completed:
        if order_id in taken or rng.random() >= SURVEYED_SHARE:
            continue
        sent = completed_at + dt.timedelta(days=1, hours=rng.randrange(0, 6))
        if sent >= now:
            continue
        answered = sent + dt.timedelta(hours=rng.randrange(2, 96))
        is_answered = rng.random() < ANSWERED_SHARE and answered < now
        scores = [rng.choices((2, 3, 4, 5), weights=(4, 14, 42, 40))[0] for _ in QUESTIONS]
        surveys.append(
            {
                "id": next_id,
                "kind": "order",
                "key": f"order:{order_id}",
                "customer_id": customer_id,
                "order_id": order_id,
                "token_hash": hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                "sent_at": sent,
                "expires_at": sent + dt.timedelta(days=30),
                "answered_at": answered if is_answered else None,
                "answered_by_id": None,
                "score": (Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01")) if is_answered else None,
                "comment": "",
            }
        )
        if is_answered:
            answers.extend(
                {"survey_id": next_id, "question": q, "score": s} for q, s in zip(QUESTIONS, scores, strict=True)
            )
        next_id += 1
    if surveys:
        session.execute(insert(KpiSurvey), surveys)
        sync_id_sequences(session, KpiSurvey.__tablename__)
    if answers:
        session.execute(insert(KpiSurveyAnswer), answers)
    return len(surveys)


def history_complaints(session: Session, rng: random.Random, owner: User, today: dt.date) -> int:
    """Two or three complaints a month over the history orders, resolved in 1–6 days (bulk)."""
    rows = session.execute(
        select(Order.id, Order.customer_id, Order.created_at)
        .where(Order.number.like("H%"), Order.status == "completed")
        .order_by(Order.id)
    ).all()
    if not rows:
        return 0
    complaints = []
    now = company_now().astimezone(dt.UTC)
    for n, (order_id, customer_id, created) in enumerate(rng.sample(rows, min(len(rows), MONTHS * 3))):
        received = created + dt.timedelta(days=rng.randrange(5, 25), hours=rng.randrange(0, 8))
        if received >= now - dt.timedelta(days=7):
            continue
        resolved = received + dt.timedelta(days=rng.uniform(0.5, 6))
        due = (received + dt.timedelta(days=4)).date()
        category = rng.choice(COMPLAINT_CATEGORIES)
        complaints.append(
            {
                "number": f"KS-H{n + 1:05d}",
                "customer_id": customer_id,
                "order_id": order_id,
                "received_at": received,
                "category": category,
                "description": "客户反映问题 Customer reported a problem",
                "owner_id": owner.id,
                "due_date": due,
                "status": "resolved",
                "resolution": "已处理并回复客户 Handled and answered",
                "root_cause": "流程执行偏差 Process not followed",
                "resolved_at": resolved,
                "created_by_id": owner.id,
            }
        )
    if complaints:
        session.execute(insert(KpiComplaint), complaints)
    return len(complaints)


def _has(module: Any, *names: str) -> bool:
    """Whether ``module`` provides every function ``names`` (it may still be a stub)."""
    return all(callable(getattr(module, name, None)) for name in names)


def _open_survey(session: Session, customers: dict[str, Customer]) -> None:
    """The portal customer's latest completed (real) order gets an open survey to answer."""
    from plugins.kpi import surveys

    portal = customers.get("CQ001")
    if portal is None or not _has(surveys, "send_order_survey"):
        return
    order = session.scalars(
        select(Order)
        .where(Order.customer_id == portal.id, Order.status == "completed", Order.number.not_like("H%"))
        .order_by(Order.id.desc())
    ).first()
    if order is not None:
        surveys.send_order_survey(session, order)


def _feedback(
    session: Session, service: User, customers: dict[str, Customer], last_month: dt.date, today: dt.date
) -> None:
    """An open complaint, a resolved one of last month and a planned follow-up visit (KP-6)."""
    from plugins.kpi import feedback

    if not _has(feedback, "record_complaint", "resolve_complaint"):
        return
    late = customers.get("GD001") or next(iter(customers.values()))
    received = day_start(last_month + dt.timedelta(days=9)) + dt.timedelta(hours=10)
    resolved = feedback.record_complaint(
        session,
        service,
        late.id,
        "货物晚到三天，客户生产线停工半天 Goods arrived three days late; the line stood still for half a day",
        category="delivery",
        owner_id=service.id,
        received_at=received,
    )
    feedback.resolve_complaint(
        session,
        service,
        resolved.id,
        "补偿运费并调整承运商 Freight refunded, carrier changed",
        "承运商中转延误 Carrier delay at the hub",
        resolved_at=received + dt.timedelta(days=2),
    )
    shop = customers.get("CQ001") or late
    feedback.record_complaint(
        session,
        service,
        shop.id,
        "发票抬头有误 The invoice shows a wrong company name",
        category="billing",
        owner_id=service.id,
    )
    if _has(feedback, "plan_visit"):
        feedback.plan_visit(
            session,
            service,
            late.id,
            today + dt.timedelta(days=7),
            kind="phone",
            owner_id=service.id,
            purpose="回访投诉处理结果 Follow up the complaint's resolution",
        )


def _targets(session: Session, admin: User) -> None:
    """Branch targets: a faster cycle time at head office, on-time delivery in Chengdu."""
    from plugins.kpi import targets
    from plugins.kpi.engine import collect_metrics

    if not _has(targets, "set_target"):
        return
    metrics = collect_metrics(session_registry(session))
    branches = {b.code: b.id for b in session.scalars(select(Branch))}
    wanted = (
        ("orders.cycle_time", "HQ", "8"),
        ("orders.cycle_time", "CD", "12"),
        ("logistics.on_time_delivery", "CD", "95"),
        ("billing.collection_rate", None, "90"),
    )
    for key, branch, value in wanted:
        if key in metrics and (branch is None or branch in branches):
            targets.set_target(session, admin, key, value, branch_id=branches[branch] if branch else None)


def _rules(session: Session, admin: User, last_month: dt.date) -> None:
    """The two example rules of KP-2 (or order-metric ones without logistics/billing), evaluated."""
    from plugins.kpi import rules
    from plugins.kpi.engine import collect_metrics

    if not _has(rules, "create_rule", "evaluate_month"):
        return
    metrics = collect_metrics(session_registry(session))
    if "logistics.on_time_delivery" in metrics:
        reward = ("准时交货率连续三个月100% On-time delivery 100% three months running", "logistics.on_time_delivery")
        reward_rule = {"comparison": ">=", "threshold": "100", "months": 3, "subject": "branch"}
    else:
        reward = (
            "订单处理周期连续三个月不超过10天 Cycle time at most 10 days three months running",
            "orders.cycle_time",
        )
        reward_rule = {"comparison": "<=", "threshold": "10", "months": 3, "subject": "branch"}
    if "billing.collection_rate" in metrics:
        alert = ("回款率连续两个月低于80% Collection rate under 80% two months running", "billing.collection_rate")
        alert_rule = {"comparison": "<", "threshold": "80", "months": 2, "subject": "company"}
    else:
        alert = ("订单处理周期连续两个月超过15天 Cycle time above 15 days two months running", "orders.cycle_time")
        alert_rule = {"comparison": ">", "threshold": "15", "months": 2, "subject": "company"}
    for kind, (name, metric), rule in (("reward", reward, reward_rule), ("alert", alert, alert_rule)):
        rules.create_rule(session, admin, {"name": name, "kind": kind, "metric": metric, **rule})
    month = last_month
    for _ in range(3):
        rules.evaluate_month(session, month)
        month = (month - dt.timedelta(days=1)).replace(day=1)


def _supervision(session: Session, supervisor: User, users: dict[str, User], last_month: dt.date) -> None:
    """Last month's sample of five orders, one finding for the order clerk to correct (KP-5)."""
    from plugins.kpi import supervision

    if not _has(supervision, "draw_sample", "open_finding"):
        return
    sample = supervision.draw_sample(session, supervisor, last_month, size=5)
    if not sample.orders:
        return
    owner = users.get("clerk@demo.ordo") or users.get("sales@demo.ordo") or supervisor
    supervision.open_finding(
        session,
        supervisor,
        sample_order_id=sample.orders[0].id,
        order_id=sample.orders[0].order_id,
        item="documents",
        description="订单确认书未归档 The order confirmation was not filed",
        owner_id=owner.id,
    )


__all__ = ["PEOPLE", "add_people", "history_complaints", "history_surveys", "populate"]

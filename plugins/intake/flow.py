"""The intake steps: the automatic pre-check on submission, then the manual check (IN-4, IN-5).

``intake.precheck`` is automatic: when an order enters it, every pre-check rule runs,
the findings are kept as the order's reasons, the order is classified (regular or
not), and it moves on at once: any *reject* finding rejects the order (every reason in
the transition and a notice to the customer in the customer's language); otherwise it
goes to ``intake.manual_check`` (or whatever enabled step follows). There an order
clerk accepts or rejects it within ``intake.manual_check.days`` working days; the job
``intake.manual_check_reminders`` reminds clerks before the due day and escalates to
the sales manager when it is overdue. With ``intake.manual_check.four_eyes`` on, the
clerk who entered an order cannot be the one who accepts it.

Everything happens in the caller's transaction, like every workflow move.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, insert, inspect, select
from sqlalchemy.orm import Session

from core.calendar import add_working_days, working_days_between
from core.clock import COMPANY_TIMEZONE, company_now
from core.contrib import Action, Finding, NotificationTemplate, Setting, Step, Transition
from core.labels import N_
from core.models import Order, OrderLine, User
from core.notify import notify
from core.notify.recipients import ToCustomer, ToRole
from core.settings import get_setting, session_registry
from core.workflow import Workflow
from plugins.intake.models import IntakeFinding, IntakeOrder, IntakeProductRule
from plugins.intake.precheck import precheck_settings, run_rules, worst

if TYPE_CHECKING:
    from core.plugins import Registry

PRECHECK = "intake.precheck"
MANUAL_CHECK = "intake.manual_check"
CHECK_PERMISSION = "intake.orders.check"
CHECK_DAYS = "intake.manual_check.days"
REMIND_BEFORE = "intake.manual_check.remind_before_days"
FOUR_EYES = "intake.manual_check.four_eyes"
ESCALATE_TO = "intake.manual_check.escalate_to_role"
NOTIFY_URGENT = "intake.urgent.notify_roles"
#: Why four-eyes refuses an acceptance (screens translate it through the catalogue).
FOUR_EYES_REASON = N_("Four-eyes verification: another clerk must accept an order you entered.")

STEPS = (
    Step(
        PRECHECK,
        N_("Pre-check"),
        10,
        (Action("run_precheck", N_("Run the pre-check"), target=PRECHECK, permission=CHECK_PERMISSION),),
        automatic=(
            ("precheck_pass", N_("Passed the automatic check")),
            ("precheck_reject", N_("Rejected by the automatic check")),
        ),
        help=N_(
            "Automatic: the pre-check rules run on submission; an order with a rejecting finding is "
            "rejected, the others go on to the manual check."
        ),
    ),
    Step(
        MANUAL_CHECK,
        N_("Manual check"),
        20,
        (
            Action("accept", N_("Accept"), permission=CHECK_PERMISSION, style="success"),
            Action(
                "reject",
                N_("Reject"),
                target="rejected",
                permission=CHECK_PERMISSION,
                needs_reason=True,
                style="danger",
                confirm=N_("Reject this order? The customer is told the reason."),
            ),
        ),
        help=N_("An order clerk checks the order against its original document and accepts or rejects it."),
    ),
)

SETTINGS = (
    Setting(
        CHECK_DAYS,
        int,
        2,
        N_("Manual check: working days allowed"),
        N_("An order must be checked within this many working days of entering the manual check."),
        minimum=0,
        maximum=60,
    ),
    Setting(
        REMIND_BEFORE,
        int,
        1,
        N_("Manual check: remind this many working days before due"),
        N_("Order clerks are reminded once when the due day is this close (0: on the due day)."),
        minimum=0,
        maximum=30,
    ),
    Setting(
        FOUR_EYES,
        bool,
        False,
        N_("Manual check: four-eyes verification"),
        N_("An order entered by one clerk must be accepted by another."),
    ),
    Setting(
        ESCALATE_TO,
        str,
        "sales_manager",
        N_("Manual check: escalate overdue orders to role"),
        N_("Role code told when an order's manual check is overdue (the order's branch only)."),
    ),
    Setting(
        NOTIFY_URGENT,
        str,
        "order_clerk,sales_manager",
        N_("Urgent orders: roles to notify"),
        N_("Comma-separated role codes told when an urgent order is submitted."),
    ),
)

_REASONS = "{% for reason in reasons %}- {{ reason }}\n{% endfor %}"

PRECHECK_REJECTED = NotificationTemplate(
    "intake.precheck_rejected",
    label=N_("Order rejected by the pre-check (to the customer)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 未通过审核",
        "en": "Order {{ order.number }} could not be accepted",
    },
    body={
        "zh_CN": "尊敬的{{ recipient }}：\n\n您的订单 {{ order.number }}"
        "{% if order.reference %}（贵方单号：{{ order.reference }}）{% endif %}未通过自动预审，原因如下：\n\n"
        + _REASONS.replace("reasons", "reasons_zh")
        + "\n请修改后重新下单，或与我们联系。\n\n{{ company.name }}\n",
        "en": "Dear {{ recipient }},\n\nYour order {{ order.number }}"
        "{% if order.reference %} (your reference {{ order.reference }}){% endif %} failed our automatic check:\n\n"
        + _REASONS.replace("reasons", "reasons_en")
        + "\nPlease correct it and order again, or contact us.\n\n{{ company.name }}\n",
    },
)
CHECK_DUE_SOON = NotificationTemplate(
    "intake.check_due_soon",
    label=N_("Manual check due soon (to order clerks)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 待人工审核，{{ due }} 到期",
        "en": "Order {{ order.number }} awaits its manual check, due {{ due }}",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）须于 {{ due }} 前完成人工审核。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}) must be checked by {{ due }}.\n",
    },
)
CHECK_OVERDUE = NotificationTemplate(
    "intake.check_overdue",
    label=N_("Manual check overdue (escalation)"),
    subject={
        "zh_CN": "【超期】订单 {{ order.number }} 人工审核已超期",
        "en": "[Overdue] Order {{ order.number }}: manual check overdue",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的人工审核应于 {{ due }} 完成，"
        "至今未处理，请督办。\n",
        "en": "The manual check of order {{ order.number }} ({{ order.customer.name }}) was due {{ due }} "
        "and has not been done; please follow it up.\n",
    },
)
URGENT_ORDER = NotificationTemplate(
    "intake.urgent_order",
    label=N_("Urgent order submitted (to the teams)"),
    subject={
        "zh_CN": "【紧急】订单 {{ order.number }} 已提交",
        "en": "[Urgent] Order {{ order.number }} submitted",
    },
    body={
        "zh_CN": "紧急订单 {{ order.number }}（{{ order.customer.name }}）已提交，请优先处理。\n"
        "{% if order.requested_date %}要求交货日期：{{ order.requested_date }}\n{% endif %}",
        "en": "Urgent order {{ order.number }} ({{ order.customer.name }}) was submitted; please handle it first.\n"
        "{% if order.requested_date %}Requested date: {{ order.requested_date }}\n{% endif %}",
    },
)
NOTIFICATIONS = (PRECHECK_REJECTED, CHECK_DUE_SOON, CHECK_OVERDUE, URGENT_ORDER)


def intake_record(session: Session, order: Order) -> IntakeOrder:
    """Intake's record of ``order``, created on first use."""
    record = session.get(IntakeOrder, order.id)
    if record is None:
        record = IntakeOrder(order_id=order.id, transaction_type="domestic", precheck_level="", check_outcome="")
        session.add(record)
    return record


def classify_regular(
    session: Session, order: Order, rules: Mapping[int, IntakeProductRule | None] | None = None
) -> bool:
    """Regular (常规) when every product is marked regular and the customer had it delivered before.

    "Delivered before" means an earlier order of the customer with that product reached
    *completed* (004 第5条: shipped to these requirements, with complete technical documents).
    ``rules`` are the products' intake rules when the caller has read them already (the
    pre-check's, :meth:`~plugins.intake.precheck.PrecheckSettings.line_rules`); else they
    are read here. At most two queries, whatever the number of lines.
    """
    if not order.lines:
        return False
    product_ids = {line.product_id for line in order.lines}
    if rules is None:
        rules = {rule.product_id: rule for rule in session.scalars(_product_rules(product_ids))}
    for product_id in product_ids:
        rule = rules.get(product_id)
        if rule is None or not rule.regular:
            return False
    delivered = session.scalars(
        select(OrderLine.product_id)
        .join(Order, OrderLine.order_id == Order.id)
        .where(
            OrderLine.product_id.in_(product_ids),
            Order.customer_id == order.customer_id,
            Order.status == "completed",
            Order.id != order.id,
        )
        .distinct()
    )
    return product_ids <= set(delivered)


def _product_rules(product_ids: set[int]) -> Select[tuple[IntakeProductRule]]:
    return select(IntakeProductRule).where(IntakeProductRule.product_id.in_(product_ids))


def localized_reasons(registry: Registry, findings: list[Finding], language: str) -> list[str]:
    """The rejecting findings' messages in ``language`` (their msgid translated, else as written)."""
    from core.documents import translations_for

    translations = translations_for(registry, language)
    out = []
    for finding in findings:
        msgid = getattr(finding, "msgid", "")
        params: Mapping[str, Any] = getattr(finding, "params", {}) or {}
        out.append(translations.gettext(msgid) % dict(params) if msgid else finding.message)
    return out


def record_findings(session: Session, order: Order, pairs: list[tuple[str, Finding]], *, first: bool = False) -> None:
    """Replace the order's kept findings with those of this pre-check (rule code, finding).

    ``first`` says the order has none kept yet (its intake record is being created: findings
    are only kept with one), so there is nothing to delete. The rows are written with one
    bulk INSERT, in the rules' order (their ids keep it); no IntakeFinding objects are left
    in the session: readers query the table.
    """
    if not first:
        session.execute(delete(IntakeFinding).where(IntakeFinding.order_id == order.id))
    if not pairs:
        return
    rows = [
        {
            "order_id": order.id,
            "rule": rule,
            "plugin": finding.plugin,
            "level": finding.level,
            "message": finding.message[:1000],
            "msgid": getattr(finding, "msgid", "")[:500],
            "params": {k: str(v) for k, v in (getattr(finding, "params", {}) or {}).items()},
            "field": finding.field,
        }
        for rule, finding in pairs
    ]
    # render_nulls: rows without a field stay in the same batch (one statement for all).
    session.execute(insert(IntakeFinding).execution_options(render_nulls=True), rows)


def keep_findings(session: Session, order: Order, registry: Registry | None = None) -> list[Finding]:
    """Run the pre-check rules on ``order`` and keep what they found, without moving it.

    The findings replace the order's kept ones, the record notes the worst level and
    when, and the order is classified (regular or not). Used on submission, after a
    clerk's correction and when an order reaches the manual check without a pre-check.
    """
    return _keep_findings(session, order, registry)[1]


def _keep_findings(
    session: Session, order: Order, registry: Registry | None = None
) -> tuple[IntakeOrder, list[Finding]]:
    """:func:`keep_findings`, also giving intake's record of the order."""
    registry = registry or session_registry(session)
    settings = precheck_settings(session, registry)
    pairs = run_rules(session, order, settings=settings)
    findings = [f for _, f in pairs]
    # Classified before the record is touched, so a new record is inserted whole, not updated after.
    regular = classify_regular(session, order, settings.line_rules(order))
    record = intake_record(session, order)
    first = inspect(record).pending
    record.precheck_level = worst(findings)
    record.prechecked_at = dt.datetime.now(dt.UTC)
    record.regular = regular
    record_findings(session, order, pairs, first=first)
    return record, findings


def precheck_and_route(session: Session, order: Order, registry: Registry | None = None) -> Transition:
    """Pre-check ``order`` (waiting in ``intake.precheck``) and move it on: rejected, or the next step."""
    registry = registry or session_registry(session)
    # ``_record`` is held while the order moves: the session keeps objects only while they are
    # referenced, and opening the manual check (a hook of the move) would read it again.
    _record, findings = _keep_findings(session, order, registry)
    workflow = Workflow(registry, session)
    rejects = [f for f in findings if f.level == "reject"]
    if rejects:
        reason = ("Pre-check: " + " ".join(f.message for f in rejects))[:1000]
        transition = workflow.apply(
            order, "precheck_reject", "rejected", None, reason, extra={"customer_notice": PRECHECK_REJECTED.name}
        )
        notify(
            session,
            PRECHECK_REJECTED.name,
            to=ToCustomer(order.customer_id),
            order=order,
            context={
                "reasons_zh": localized_reasons(registry, rejects, "zh_CN"),
                "reasons_en": localized_reasons(registry, rejects, "en"),
            },
        )
        return transition
    target = workflow.next_step(workflow.step(PRECHECK)).key
    warnings = [f.message for f in findings if f.level == "warn"]
    reason = ("Pre-check warnings: " + " ".join(warnings))[:1000] if warnings else ""
    return workflow.apply(order, "precheck_pass", target, None, reason)


def company_today(now: dt.datetime | None = None) -> dt.date:
    """The company's date at ``now`` (default: now)."""
    return now.astimezone(COMPANY_TIMEZONE).date() if now is not None else company_now().date()


def open_manual_check(session: Session, order: Order, today: dt.date | None = None) -> IntakeOrder:
    """Start the manual check: due in ``intake.manual_check.days`` working days from today."""
    record = intake_record(session, order)
    days = int(get_setting(session, CHECK_DAYS))
    record.check_due = add_working_days(session, today or company_today(), days, order.company_id)
    record.checked_at = None
    record.checked_by_id = None
    record.check_outcome = ""
    record.reminded_at = None
    record.escalated_at = None
    return record


def close_manual_check(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Record who ended the manual check, when, and how (accepted, rejected, cancelled…)."""
    record = intake_record(session, order)
    record.checked_at = dt.datetime.now(dt.UTC)
    record.checked_by_id = user.id if user is not None else None
    record.check_outcome = {"accept": "accepted"}.get(transition.action, transition.to_status)


def _roles(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def notify_urgent(session: Session, order: Order) -> None:
    """Tell the roles in ``intake.urgent.notify_roles`` (the order's branch) that an urgent order came in."""
    roles = _roles(str(get_setting(session, NOTIFY_URGENT)))
    if roles:
        notify(
            session,
            URGENT_ORDER.name,
            to=[ToRole(code, order.branch_id) for code in roles],
            order=order,
            dedupe_key=f"intake.urgent:{order.id}",
        )


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """React to a move of ``order``: run the automatic pre-check, open or close the manual check."""
    if transition.from_status == "draft" and transition.to_status != "draft" and order.urgency == "urgent":
        notify_urgent(session, order)
    if transition.from_step == MANUAL_CHECK and transition.to_step != MANUAL_CHECK:
        close_manual_check(session, order, transition, user)
    if transition.to_step == MANUAL_CHECK:
        open_manual_check(session, order)
        if transition.from_step != PRECHECK:
            # The pre-check step is switched off: keep the findings for the clerk anyway.
            keep_findings(session, order)
    elif transition.to_step == PRECHECK:
        precheck_and_route(session, order)


def four_eyes_reasons(session: Session, order: Order, action: str, user: User | None) -> list[str]:
    """With four-eyes on, the clerk who entered the order may not accept it."""
    if order.step != MANUAL_CHECK or action != "accept" or user is None:
        return []
    if get_setting(session, FOUR_EYES) and order.created_by_id == user.id:
        return [FOUR_EYES_REASON]
    return []


def remind_and_escalate(session: Session, now: dt.datetime) -> tuple[int, int]:
    """The job: remind clerks of checks due soon, escalate overdue ones; (reminded, escalated).

    Counts in working days of the company calendar. Each order is reminded once and
    escalated once (the record keeps when), so a job run twice tells nobody twice.
    """
    today = company_today(now)
    before = int(get_setting(session, REMIND_BEFORE))
    escalate_to = _roles(str(get_setting(session, ESCALATE_TO)))
    rows = session.execute(
        select(Order, IntakeOrder)
        .join(IntakeOrder, IntakeOrder.order_id == Order.id)
        .where(Order.step == MANUAL_CHECK, IntakeOrder.check_due.is_not(None))
        .order_by(Order.id)
    ).all()
    reminded = escalated = 0
    for order, record in rows:
        assert record.check_due is not None
        due = record.check_due.isoformat()
        if today > record.check_due:
            if record.escalated_at is None and escalate_to:
                notify(
                    session,
                    CHECK_OVERDUE.name,
                    to=[ToRole(code, order.branch_id) for code in escalate_to],
                    order=order,
                    context={"due": due},
                )
                record.escalated_at = now
                escalated += 1
        elif record.reminded_at is None and working_days_between(session, today, record.check_due) <= before:
            notify(
                session,
                CHECK_DUE_SOON.name,
                to=ToRole("order_clerk", order.branch_id),
                order=order,
                context={"due": due},
            )
            record.reminded_at = now
            reminded += 1
    return reminded, escalated

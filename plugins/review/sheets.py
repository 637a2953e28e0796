"""The review sheet (订单评审表): opening it, departments' verdicts, tiers and negotiation.

Screens, the API and the other review modules call these functions; their signatures
are the contract between them.

- Entering ``review.department_review`` opens a sheet for a new round (the previous one,
  if any, is closed — ``requoted`` after a re-quote), using the matching template
  (``plugins.review.templates.match_template``): one task per tier-1 department, each
  due ``sla_days`` (department) or ``review.sla.days`` working days later; the
  departments' reviewers are notified (``review.task_assigned``). A renegotiation
  (action ``renegotiate`` from consolidation) keeps the sheet: only re-opened tasks wait.
- A verdict is recorded by a member of the task's department (a user holding its
  ``role_code`` and ``review.tasks.decide``) while the task is open and the order is in
  department review; the figures are checked against the department's kind
  (``plugins.review.figures``). When every task of the sheet's tier is answered: a
  reject from an escalating department → the order moves (``not_acceptable``) to
  ``review.president``; else a two-tier sheet at tier 1 opens tier 2's tasks; else the
  order moves on (``reviewed``, to the next step: consolidation).
- During consolidation sales records what was negotiated with the customer (RV-4):
  only the departments whose ``reopen_on`` names a changed kind (price, quantity, date)
  review again; the others' verdicts stand.

Everything happens in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, select

from core.calendar import add_working_days
from core.clock import COMPANY_TIMEZONE, company_now
from core.contrib import NotificationTemplate
from core.labels import N_
from core.models import Order
from core.notify import notify
from core.notify.recipients import ToRole, ToUser
from core.services import ServiceError, audit
from core.services.orders import may_see_order, revise_order, visible_orders
from core.settings import get_setting, session_registry
from core.workflow import Workflow
from plugins.review import figures as figure_rules
from plugins.review import templates
from plugins.review.errors import ReviewError
from plugins.review.flow import (
    APPEAL,
    CONSOLIDATE,
    CONSOLIDATION,
    DECIDE,
    DEPARTMENT_REVIEW,
    FINAL_APPROVAL,
    PRESIDENT,
    SLA_DAYS,
)
from plugins.review.models import (
    CHANGE_KINDS,
    VERDICTS,
    ReviewDepartment,
    ReviewNegotiation,
    ReviewSheet,
    ReviewTask,
    ReviewTemplate,
    ReviewVerdict,
)

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import User
    from core.plugins import Registry

#: The steps an order is "in review" at; leaving them for another step closes the sheet.
REVIEW_STEPS = (DEPARTMENT_REVIEW, PRESIDENT, APPEAL, CONSOLIDATION, FINAL_APPROVAL)
#: Why ``send_for_approval`` is refused while a department has not answered.
OPEN_TASKS_REASON = N_("Some departments have not answered yet: every review task must be answered first.")
#: Longest comment or conditions a verdict keeps (the column's size).
MAX_TEXT = 2000
# Per-field messages in a refusal's ``details`` (msgids: screens translate them).
MSG_UNKNOWN_VERDICT = N_("Choose approve, approve with conditions or reject.")
MSG_CONDITIONS = N_("State the conditions of the approval.")
MSG_REJECT_REASON = N_("Give the reason for the reject.")
MSG_TOO_LONG = N_("At most 2000 characters.")
MSG_UNKNOWN_LINE = N_("This is not a line of the order.")
MSG_POSITIVE = N_("Give a number greater than zero.")
MSG_NOT_NEGATIVE = N_("Give a number that is not negative.")
#: Unit prices and quantities a negotiation accepts stay below this (column sizes).
MAX_NUMBER = Decimal(10) ** 12
PRICE_PLACES = Decimal("0.0001")
QUANTITY_PLACES = Decimal("0.001")

TASK_ASSIGNED = NotificationTemplate(
    "review.task_assigned",
    label=N_("Review task assigned (to the department's reviewers)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 待{{ department_zh }}评审，{{ due }} 到期",
        "en": "Order {{ order.number }} awaits the {{ department_en }} review, due {{ due }}",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}，金额 {{ order.total }} {{ order.currency }}）"
        "{% if reopened %}经协商已变更，请{% else %}需要{% endif %}{{ department_zh }}"
        "{% if tier == 2 %}（总部评审委员会复审）{% endif %}评审，请于 {{ due }} 前在“我的评审任务”中提交评审意见。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}, {{ order.total }} {{ order.currency }})"
        "{% if reopened %} was changed in negotiation and needs{% else %} needs{% endif %} the {{ department_en }}"
        " review{% if tier == 2 %} (head-office committee re-review){% endif %}. Please give your verdict under"
        " “My review tasks” by {{ due }}.\n",
    },
)
READY_FOR_CONSOLIDATION = NotificationTemplate(
    "review.ready_for_consolidation",
    label=N_("Every department answered (to the salesperson)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 各部门评审已完成，请汇总",
        "en": "Order {{ order.number }}: every department has answered",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）的评审意见：\n"
        "{% for v in verdicts %}- {{ v.department_zh }}：{% if v.verdict == 'approve' %}同意"
        "{% elif v.verdict == 'approve_with_conditions' %}有条件同意{% else %}不同意{% endif %}"
        "{% if v.proposed_date %}（建议日期 {{ v.proposed_date }}）{% endif %}\n{% endfor %}"
        "\n请查看评审表，与客户协商后提交最终审批。\n",
        "en": "The verdicts on order {{ order.number }} ({{ order.customer.name }}):\n"
        "{% for v in verdicts %}- {{ v.department_en }}: {% if v.verdict == 'approve' %}approve"
        "{% elif v.verdict == 'approve_with_conditions' %}approve with conditions{% else %}reject{% endif %}"
        "{% if v.proposed_date %} (proposed date {{ v.proposed_date }}){% endif %}\n{% endfor %}"
        "\nPlease read the review sheet, negotiate with the customer and send the order for final approval.\n",
    },
)

#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (TASK_ASSIGNED, READY_FOR_CONSOLIDATION)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def company_today() -> dt.date:
    """The company's date now (the clock tests freeze through ``company_now``)."""
    return company_now().astimezone(COMPANY_TIMEZONE).date()


def due_date(session: Session, department: ReviewDepartment, order: Order, today: dt.date | None = None) -> dt.date:
    """When ``department`` must answer: its ``sla_days`` (else ``review.sla.days``) working days after today."""
    days = department.sla_days if department.sla_days is not None else int(get_setting(session, SLA_DAYS))
    return add_working_days(session, today or company_today(), days, order.company_id)


def _notify_assigned(session: Session, order: Order, task: ReviewTask, *, reopened: bool = False) -> None:
    department = task.department
    notify(
        session,
        TASK_ASSIGNED.name,
        to=ToRole(department.role_code),
        order=order,
        context={
            "department_en": department.name,
            "department_zh": department.name_zh or department.name,
            "due": task.due_date.isoformat(),
            "tier": task.tier,
            "reopened": reopened,
        },
        dedupe_key=f"review.task_assigned:{task.id}:{len(task.verdicts)}",
    )


def _open_tasks(
    session: Session, order: Order, sheet: ReviewSheet, departments: list[ReviewDepartment], tier: int
) -> list[ReviewTask]:
    today = company_today()
    # Due dates first: computing them reads settings, and a query must not flush half-built tasks.
    dues = {d.id: due_date(session, d, order, today) for d in departments}
    tasks = [ReviewTask(sheet=sheet, department=d, tier=tier, status="open", due_date=dues[d.id]) for d in departments]
    session.add_all(tasks)
    session.flush()
    for task in tasks:
        _notify_assigned(session, order, task)
    return tasks


def _close(sheet: ReviewSheet, outcome: str) -> None:
    for task in sheet.tasks:
        if task.status == "open":
            task.status = "withdrawn"
    sheet.status = "closed"
    sheet.outcome = outcome
    sheet.closed_at = _now()


def on_enter_review(session: Session, order: Order, transition: Transition, user: User | None) -> ReviewSheet | None:
    """Open the round's sheet (None when the move is a renegotiation that keeps the sheet)."""
    from plugins.review import approval

    previous = current_sheet(session, order.id)
    if transition.action == "renegotiate" and previous is not None and previous.status != "closed":
        return None
    if previous is not None and previous.status != "closed":
        _close(previous, "requoted" if transition.action == "requote" else "superseded")
    plan = templates.review_plan(session, order)
    sheet = ReviewSheet(
        order_id=order.id,
        round=(previous.round + 1) if previous is not None else 1,
        template_id=plan.template.id if plan.template is not None else None,
        two_tier=plan.two_tier,
        tier=1,
        status="open",
        outcome="",
        amount=order.total,
        opened_at=_now(),
    )
    session.add(sheet)
    session.flush()
    approval.flag_supervision(session, order)
    _open_tasks(session, order, sheet, plan.departments(1), 1)
    if not sheet.tasks:
        # No active department at all: nobody to wait for.
        _advance(session, session_registry(session), order, sheet)
    return sheet


def _verdict_lines(sheet: ReviewSheet) -> list[dict[str, Any]]:
    return [
        {
            "department_en": task.department.name,
            "department_zh": task.department.name_zh or task.department.name,
            "verdict": task.verdict,
            "proposed_date": (
                task.verdicts[-1].proposed_date.isoformat() if task.verdicts and task.verdicts[-1].proposed_date else ""
            ),
        }
        for task in sheet.tasks
        if task.status == "answered"
    ]


def on_enter_consolidation(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Mark the sheet reviewed (``complete``) and tell the order's salesperson."""
    sheet = current_sheet(session, order.id)
    if sheet is None or sheet.status in ("complete", "closed"):
        return
    sheet.status = "complete"
    sheet.completed_at = _now()
    recipient = ToUser(order.owner_id) if order.owner_id is not None else ToRole("sales", order.branch_id)
    notify(
        session,
        READY_FOR_CONSOLIDATION.name,
        to=recipient,
        order=order,
        context={"verdicts": _verdict_lines(sheet), "round": sheet.round},
    )


def on_leave(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Close the current sheet when the order leaves review for good.

    Outcomes: ``approved`` (final approval → on), ``abandoned`` (president), ``rejected``
    (consolidation/approval reject, cancel), ``superseded`` (back to draft); a re-quote
    is closed by :func:`on_enter_review` as ``requoted``. Open tasks are ``withdrawn``.
    """
    if transition.to_step in REVIEW_STEPS:
        return
    sheet = current_sheet(session, order.id)
    if sheet is None or sheet.status == "closed":
        return
    if transition.to_status in ("rejected", "cancelled"):
        outcome = "abandoned" if transition.action == "abandon" else "rejected"
    else:
        workflow = Workflow(session_registry(session), session)
        forward = workflow.step(transition.to_step).position > workflow.step(FINAL_APPROVAL).position
        outcome = "approved" if forward else "superseded"
    _close(sheet, outcome)


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse ``send_for_approval`` while a task is open (fixed, translatable sentences)."""
    if action != "send_for_approval" or order.step != CONSOLIDATION:
        return []
    sheet = current_sheet(session, order.id)
    if sheet is not None and any(task.status == "open" for task in sheet.tasks):
        return [OPEN_TASKS_REASON]
    return []


def current_sheet(session: Session, order_id: int) -> ReviewSheet | None:
    """The order's latest sheet (highest round), open or not."""
    return session.scalar(
        select(ReviewSheet).where(ReviewSheet.order_id == order_id).order_by(ReviewSheet.round.desc()).limit(1)
    )


def _role_codes(user: User) -> set[str]:
    return {role.code for role in user.roles}


def is_member(user: User, department: ReviewDepartment) -> bool:
    """Whether ``user`` gives ``department``'s verdicts (holds its role and ``review.tasks.decide``)."""
    return department.role_code in _role_codes(user) and user.can(DECIDE)


def member_departments(session: Session, user: User) -> list[ReviewDepartment]:
    """The active departments ``user`` is a member of."""
    if not user.can(DECIDE):
        return []
    codes = _role_codes(user)
    if not codes:
        return []
    return list(
        session.scalars(
            select(ReviewDepartment)
            .where(ReviewDepartment.active.is_(True), ReviewDepartment.role_code.in_(codes))
            .order_by(ReviewDepartment.position, ReviewDepartment.id)
        )
    )


def tasks_for(session: Session, user: User, *, status: str | None = "open") -> Select[Any]:
    """SELECT of the tasks of ``user``'s departments (``status`` None: all), most urgent first.

    Urgent orders first, then by due date. Only tasks of orders the user may see
    (``core.services.orders.visible_orders``).
    """
    department_ids = [d.id for d in member_departments(session, user)]
    visible = visible_orders(user).with_only_columns(Order.id)
    stmt = (
        select(ReviewTask)
        .join(ReviewSheet, ReviewSheet.id == ReviewTask.sheet_id)
        .join(Order, Order.id == ReviewSheet.order_id)
        .where(ReviewTask.department_id.in_(department_ids), Order.id.in_(visible))
    )
    if status is not None:
        stmt = stmt.where(ReviewTask.status == status)
    # Urgent orders first (CORE-9), then the earliest due date.
    return stmt.order_by(case((Order.urgency == "urgent", 0), else_=1), ReviewTask.due_date, ReviewTask.id)


def _check_verdict_input(
    task: ReviewTask, verdict: str, comment: str, conditions: str, figures: dict[str, Any] | None
) -> dict[str, Any]:
    """The clean figures, or a 422 ReviewError naming every bad field."""
    if verdict not in VERDICTS:
        raise ReviewError(
            "unknown_verdict",
            N_("Unknown verdict %(verdict)s: choose approve, approve with conditions or reject."),
            details={"verdict": [MSG_UNKNOWN_VERDICT]},
            verdict=repr(verdict),
        )
    clean, errors = figure_rules.clean_figures(task.department.kind, figures)
    details: dict[str, list[str]] = {name: [message] for name, message in errors.items()}
    if verdict == "approve_with_conditions" and not conditions:
        details["conditions"] = [MSG_CONDITIONS]
    if verdict == "reject" and not comment:
        details["comment"] = [MSG_REJECT_REASON]
    for name, text in (("comment", comment), ("conditions", conditions)):
        if len(text) > MAX_TEXT:
            details.setdefault(name, []).append(MSG_TOO_LONG)
    if details:
        raise ReviewError(
            "invalid_verdict",
            N_("The verdict is not complete: %(fields)s."),
            details=details,
            fields=", ".join(sorted(details)),
        )
    return clean


def record_verdict(
    session: Session,
    registry: Registry,
    actor: User,
    task: ReviewTask,
    *,
    verdict: str,
    comment: str = "",
    conditions: str = "",
    figures: dict[str, Any] | None = None,
    proposed_date: dt.date | None = None,
) -> ReviewVerdict:
    """Record ``actor``'s verdict on ``task`` and move the review on when it was the last.

    Refused (``plugins.review.errors.ReviewError``, nothing changed): not a member (403
    ``not_department_member``), task not open (409 ``task_closed``), order not in
    department review (409 ``not_in_review``), unknown verdict or bad figures (422,
    ``details`` per field), conditions missing for ``approve_with_conditions``, comment
    missing for ``reject``.
    """
    department = task.department
    if not is_member(actor, department):
        raise ReviewError(
            "not_department_member",
            N_("Only a reviewer of %(department)s may give its verdict."),
            status=403,
            department=department.name,
        )
    sheet = task.sheet
    order = session.get(Order, sheet.order_id)
    assert order is not None
    if not may_see_order(session, actor, order):
        raise ReviewError(
            "not_department_member",
            N_("Only a reviewer of %(department)s may give its verdict."),
            status=403,
            department=department.name,
        )
    if task.status != "open":
        raise ReviewError(
            "task_closed", N_("This review task is closed: its verdict was given or withdrawn."), status=409
        )
    if order.step != DEPARTMENT_REVIEW or sheet.status != "open":
        raise ReviewError(
            "not_in_review", N_("Order %(number)s is no longer in department review."), status=409, number=order.number
        )
    comment, conditions = (comment or "").strip(), (conditions or "").strip()
    clean = _check_verdict_input(task, verdict, comment, conditions, figures)
    now = _now()
    row = ReviewVerdict(
        task=task,
        verdict=verdict,
        comment=comment,
        conditions=conditions,
        figures=clean,
        proposed_date=proposed_date or figure_rules.proposed_date(department.kind, clean),
        decided_by_id=actor.id,
        decided_at=now,
    )
    session.add(row)
    task.verdict = verdict
    task.status = "answered"
    task.answered_at = now
    audit.record(
        session,
        actor,
        "review_task",
        task.id,
        "verdict",
        {"department": department.code, "tier": task.tier, "verdict": verdict, "figures": clean},
        reason=comment,
        order_id=order.id,
    )
    session.flush()
    _advance(session, registry, order, sheet)
    return row


def _advance(session: Session, registry: Registry, order: Order, sheet: ReviewSheet) -> None:
    """Move the review on once every task of the sheet's tier is answered."""
    tier_tasks = [t for t in sheet.tasks if t.tier == sheet.tier]
    if any(t.status == "open" for t in tier_tasks):
        return
    workflow = Workflow(registry, session)
    rejects = [t for t in tier_tasks if t.status == "answered" and t.verdict == "reject" and t.department.escalating]
    if rejects:
        sheet.status = "not_acceptable"
        names = ", ".join(t.department.name for t in rejects)
        workflow.apply(order, "not_acceptable", PRESIDENT, None, f"Not acceptable: rejected by {names}.")
        return
    if sheet.two_tier and sheet.tier == 1:
        template = session.get(ReviewTemplate, sheet.template_id) if sheet.template_id is not None else None
        second = templates.departments_for(template, 2) if template is not None else []
        sheet.tier = 2
        if _open_tasks(session, order, sheet, second, 2):
            return
    target = workflow.next_step(workflow.step(order.step)).key
    workflow.apply(order, "reviewed", target, None, "Every department answered.")


def _as_number(raw: Any, *, positive: bool) -> Decimal | None:
    """``raw`` as a number to the column's places (prices 4, quantities 3), or None if not acceptable."""
    if isinstance(raw, bool):
        return None
    try:
        number = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number >= MAX_NUMBER or number < 0:
        return None
    number = number.quantize(QUANTITY_PLACES if positive else PRICE_PLACES, rounding=ROUND_HALF_UP)
    if positive and number == 0:
        return None
    return number


def _plain(number: Decimal) -> str:
    """A number without trailing zeros, never in exponent form (``8800.0000`` → ``8800``)."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _line_changes(
    order: Order, values: dict[Any, Any], errors: dict[str, list[str]], *, positive: bool
) -> dict[int, Decimal]:
    """``values`` by line id as numbers; a bad id or number goes into ``errors`` (line id → msgids)."""
    lines = {line.id: line for line in order.lines}
    out: dict[int, Decimal] = {}
    for key, raw in values.items():
        try:
            line_id = int(key)
        except (TypeError, ValueError):
            line_id = -1
        if line_id not in lines:
            errors[str(key)] = [MSG_UNKNOWN_LINE]
            continue
        number = _as_number(raw, positive=positive)
        if number is None:
            errors[str(line_id)] = [MSG_POSITIVE if positive else MSG_NOT_NEGATIVE]
            continue
        out[line_id] = number
    return out


def negotiate(
    session: Session,
    registry: Registry,
    actor: User,
    order: Order,
    *,
    unit_prices: dict[int, Decimal] | None = None,
    quantities: dict[int, Decimal] | None = None,
    requested_date: dt.date | None = None,
    note: str = "",
) -> ReviewNegotiation:
    """Apply what sales agreed with the customer during consolidation (RV-4).

    Changes line prices/quantities (by line id) and the requested date in place
    (``core.services.orders.revise_order`` with ``action="negotiate"``), records a
    :class:`ReviewNegotiation`, re-opens the tasks (latest tier) of the departments
    whose ``reopen_on`` names a changed kind and moves the order back to department
    review (action ``renegotiate``). Nothing changed, or not at consolidation: refused.
    """
    from plugins.review import approval

    if not actor.can(CONSOLIDATE) or not may_see_order(session, actor, order):
        raise ReviewError("forbidden", N_("You may not negotiate this order."), status=403)
    sheet = current_sheet(session, order.id)
    if order.step != CONSOLIDATION or sheet is None or sheet.status == "closed":
        raise ReviewError(
            "not_in_consolidation",
            N_("Order %(number)s is not in consolidation: negotiate while sales consolidates the review."),
            status=409,
            number=order.number,
        )
    note = (note or "").strip()
    price_errors: dict[str, list[str]] = {}
    quantity_errors: dict[str, list[str]] = {}
    prices = _line_changes(order, dict(unit_prices or {}), price_errors, positive=False)
    amounts = _line_changes(order, dict(quantities or {}), quantity_errors, positive=True)
    details: dict[str, Any] = {}
    if price_errors:
        details["unit_prices"] = price_errors
    if quantity_errors:
        details["quantities"] = quantity_errors
    if len(note) > MAX_TEXT:
        details["note"] = [MSG_TOO_LONG]
    if details:
        if any(m == [MSG_UNKNOWN_LINE] for m in (*price_errors.values(), *quantity_errors.values())):
            raise ReviewError("unknown_line", N_("Unknown order line: give lines of this order."), details=details)
        raise ReviewError(
            "invalid",
            N_("Some negotiated values are not valid: %(fields)s."),
            details=details,
            fields=", ".join(sorted(details)),
        )
    kinds: set[str] = set()
    line_changes: dict[str, dict[str, list[str]]] = {}
    lines = {line.id: line for line in order.lines}
    for field, kind, values in (("unit_price", "price", prices), ("quantity", "quantity", amounts)):
        for line_id, value in values.items():
            before = getattr(lines[line_id], field)
            if Decimal(before) != value:
                kinds.add(kind)
                line_changes.setdefault(str(line_id), {})[field] = [_plain(Decimal(before)), _plain(value)]
    date_changed = requested_date is not None and requested_date != order.requested_date
    if date_changed:
        kinds.add("date")
    if not kinds:
        raise ReviewError("nothing_changed", N_("Nothing was changed: give a new price, quantity or date."))

    saved = {line.id: (line.unit_price, line.quantity) for line in order.lines}
    for line_id, value in prices.items():
        lines[line_id].unit_price = value
    for line_id, value in amounts.items():
        lines[line_id].quantity = value
    changes: dict[str, Any] = {}
    if line_changes:
        changes["lines"] = line_changes
    if date_changed:
        changes["requested_date"] = [
            order.requested_date.isoformat() if order.requested_date else None,
            requested_date.isoformat() if requested_date else None,
        ]
    try:
        revise_order(
            session,
            actor,
            order,
            {"requested_date": requested_date} if date_changed else {},
            action="negotiate",
            reason=note,
        )
    except ServiceError:
        for line_id, (price, quantity) in saved.items():
            lines[line_id].unit_price, lines[line_id].quantity = price, quantity
        order.recompute_totals()
        raise
    sheet.amount = order.total
    approval.flag_supervision(session, order)

    reopened: list[ReviewTask] = []
    today = company_today()
    for task in sheet.tasks:
        if task.tier != sheet.tier or task.status != "answered" or not task.department.active:
            continue
        wanted = {k.strip() for k in task.department.reopen_on.split(",") if k.strip() in CHANGE_KINDS}
        if wanted & kinds:
            task.status = "open"
            task.opened_at = _now()
            task.answered_at = None
            task.due_date = due_date(session, task.department, order, today)
            task.reminded_at = None
            task.escalated_at = None
            reopened.append(task)
    negotiation = ReviewNegotiation(
        sheet_id=sheet.id,
        changes={"kinds": sorted(kinds), "changes": changes},
        reopened=[t.department.code for t in reopened],
        note=note,
        by_id=actor.id,
        at=_now(),
    )
    session.add(negotiation)
    session.flush()
    if reopened:
        sheet.status = "open"
        sheet.completed_at = None
        for task in reopened:
            _notify_assigned(session, order, task, reopened=True)
        reason = note or f"Negotiated: {', '.join(sorted(kinds))} changed."
        Workflow(registry, session).apply(order, "renegotiate", DEPARTMENT_REVIEW, actor, reason)
    return negotiation

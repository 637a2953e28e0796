"""Final approval by limits, audit supervision, the president and the chairman (RV-3, RV-6).

Approval limits (``ReviewApprovalLimit``): a role may approve orders up to its
``max_amount`` (none: any amount). The approver the rules name is the role with the
smallest limit covering the order's total (sales manager, else general manager); a user
may approve or reject at ``review.final_approval`` only if one of their roles covers
it. An order whose total is above ``review.audit.threshold`` is flagged for audit
supervision (when it enters review, and again when it reaches final approval, e.g.
after a negotiated price): the auditor role is notified of each of its later moves.

A not-acceptable order (an escalating department rejected) waits for the president,
who is told which departments rejected and why; sales may appeal to the chairman, who
is told the appeal's reason. Guard reasons are fixed English sentences marked ``N_``:
screens translate them by looking them up in review's catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.contrib import NotificationTemplate
from core.labels import N_
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.settings import get_setting, session_registry
from core.txcache import remembered
from plugins.review.flow import APPEAL, AUDIT_THRESHOLD, FINAL_APPROVAL, PRESIDENT
from plugins.review.models import ReviewApprovalLimit, ReviewSupervision

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User
    from core.plugins import Registry

#: The role told of every move of a supervised order.
AUDITOR = "auditor"
#: Who approves when no limit covers an order (nobody may: they must raise a limit).
FALLBACK_APPROVER = "general_manager"
#: The actions at final approval the limits govern.
LIMITED_ACTIONS = ("approve", "reject")

BEYOND_LIMIT_GM = N_("This order's total is beyond your approval limit; it needs the general manager.")
BEYOND_LIMIT = N_("This order's total is beyond your approval limit; it needs a role with a higher limit.")
NO_LIMIT_COVERS = N_("No approval limit covers this order's total; the general manager must set one first.")
#: Every guard sentence of this module (screens look them up in the catalogue).
GUARD_REASONS = (BEYOND_LIMIT_GM, BEYOND_LIMIT, NO_LIMIT_COVERS)

#: The departments' rejects (who rejected, why) as the president and the chairman read them.
_REJECTS_ZH = "{% for r in rejects %}- {{ r.department_zh }}（{{ r.by }}）：{{ r.comment }}\n{% endfor %}"
_REJECTS_EN = "{% for r in rejects %}- {{ r.department_en }} ({{ r.by }}): {{ r.comment }}\n{% endfor %}"

APPROVAL_REQUESTED = NotificationTemplate(
    "review.approval_requested",
    label=N_("Order waits for final approval (to the approver role)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 待审批（{{ order.total|money(order.currency) }}）",
        "en": "Order {{ order.number }} awaits your approval ({{ order.total|money(order.currency) }})",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）已完成评审与汇总，"
        "金额 {{ order.total|money(order.currency) }}，按审批权限由{{ approver.zh_CN }}审批。\n"
        "{% if supervised %}该订单金额超过 {{ threshold|money(order.currency) }}，由内部审计全程监督。\n{% endif %}",
        "en": "Order {{ order.number }} ({{ order.customer.name }}) has been reviewed and consolidated; "
        "its total {{ order.total|money(order.currency) }} is for the {{ approver.en }} to approve "
        "under the approval limits.\n"
        "{% if supervised %}Its total is above {{ threshold|money(order.currency) }}: internal audit "
        "supervises it throughout.\n{% endif %}",
    },
)
SUPERVISION_FLAGGED = NotificationTemplate(
    "review.supervision_flagged",
    label=N_("Large order flagged for audit supervision (to the auditors)"),
    subject={
        "zh_CN": "【审计监督】订单 {{ order.number }} 金额 {{ order.total|money(order.currency) }}",
        "en": "[Audit supervision] Order {{ order.number }}: {{ order.total|money(order.currency) }}",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）金额 {{ order.total|money(order.currency) }}，"
        "超过审计监督金额 {{ threshold|money(order.currency) }}，已列入内部审计监督。"
        "此后该订单的每一步都会通知您。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}) totals {{ order.total|money(order.currency) }}, "
        "above the audit threshold {{ threshold|money(order.currency) }}: internal audit supervises it. "
        "You will be told of each of its later steps.\n",
    },
)
SUPERVISED_STEP = NotificationTemplate(
    "review.supervised_step",
    label=N_("A step of a supervised order (to the auditors)"),
    subject={
        "zh_CN": "【审计监督】订单 {{ order.number }}：{{ from_label.zh_CN }} → {{ to_label.zh_CN }}",
        "en": "[Audit supervision] Order {{ order.number }}: {{ from_label.en }} → {{ to_label.en }}",
    },
    body={
        "zh_CN": "受监督订单 {{ order.number }}（{{ order.customer.name }}）：\n"
        "环节：{{ from_label.zh_CN }} → {{ to_label.zh_CN }}\n操作：{{ action_label.zh_CN }}\n"
        "操作人：{{ actor or '系统自动' }}\n{% if reason %}原因：{{ reason }}\n{% endif %}",
        "en": "Supervised order {{ order.number }} ({{ order.customer.name }}):\n"
        "Step: {{ from_label.en }} → {{ to_label.en }}\nAction: {{ action_label.en }}\n"
        "By: {{ actor or 'automatic' }}\n{% if reason %}Reason: {{ reason }}\n{% endif %}",
    },
)
NOT_ACCEPTABLE = NotificationTemplate(
    "review.not_acceptable",
    label=N_("Not-acceptable order waits for the president (to the president and the salesperson)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 评审不通过，待总裁决定",
        "en": "Order {{ order.number }} is not acceptable and waits for the president",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}，{{ order.total|money(order.currency) }}）"
        "{% if dismissed %}向董事长的申诉已被驳回{% else %}评审不通过{% endif %}，待总裁决定放弃或重新报价。\n"
        "{% if rejects %}\n不同意的部门：\n" + _REJECTS_ZH + "{% endif %}"
        "{% if reason %}\n说明：{{ reason }}\n{% endif %}",
        "en": "Order {{ order.number }} ({{ order.customer.name }}, {{ order.total|money(order.currency) }}) "
        "{% if dismissed %}had its appeal to the chairman dismissed{% else %}is not acceptable{% endif %}; "
        "the president decides whether to abandon it or have it re-quoted.\n"
        "{% if rejects %}\nDepartments that rejected it:\n" + _REJECTS_EN + "{% endif %}"
        "{% if reason %}\nNote: {{ reason }}\n{% endif %}",
    },
)
APPEAL_FILED = NotificationTemplate(
    "review.appeal_filed",
    label=N_("Appeal to the chairman filed (to the chairman)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 向董事长申诉",
        "en": "Appeal to the chairman on order {{ order.number }}",
    },
    body={
        "zh_CN": "{{ filed_by }} 就订单 {{ order.number }}（{{ order.customer.name }}，"
        "{{ order.total|money(order.currency) }}）向董事长申诉，请裁决。\n申诉理由：{{ reason }}\n"
        "{% if rejects %}\n不同意的部门：\n" + _REJECTS_ZH + "{% endif %}",
        "en": "{{ filed_by }} appeals to the chairman on order {{ order.number }} ({{ order.customer.name }}, "
        "{{ order.total|money(order.currency) }}); please rule on it.\nReason: {{ reason }}\n"
        "{% if rejects %}\nDepartments that rejected it:\n" + _REJECTS_EN + "{% endif %}",
    },
)


# --- approval limits ---------------------------------------------------------------------


def _covering(session: Session, amount: Decimal) -> list[ReviewApprovalLimit]:
    """The limits covering ``amount``, smallest first (unlimited last)."""
    rows = session.scalars(select(ReviewApprovalLimit)).all()
    covering = [row for row in rows if row.max_amount is None or row.max_amount >= amount]
    return sorted(covering, key=lambda r: (r.max_amount is None, r.max_amount or Decimal(0), r.role_code))


def approver_role(session: Session, amount: Decimal) -> str | None:
    """The role with the smallest approval limit covering ``amount`` (None: nobody may)."""
    covering = _covering(session, amount)
    return covering[0].role_code if covering else None


def may_approve(session: Session, user: User, amount: Decimal) -> bool:
    """Whether one of ``user``'s roles has a limit covering ``amount``."""
    held = {role.code for role in user.roles}
    return any(row.role_code in held for row in _covering(session, amount))


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse ``approve``/``reject`` at final approval by a user whose limit is too low."""
    if order.step != FINAL_APPROVAL or action not in LIMITED_ACTIONS or user is None:
        return []
    amount = Decimal(order.total or 0)
    if may_approve(session, user, amount):
        return []
    needed = approver_role(session, amount)
    if needed is None:
        return [NO_LIMIT_COVERS]
    return [BEYOND_LIMIT_GM if needed == "general_manager" else BEYOND_LIMIT]


# --- audit supervision -------------------------------------------------------------------


def _threshold(session: Session) -> Decimal:
    return Decimal(str(get_setting(session, AUDIT_THRESHOLD)))


def flag_supervision(session: Session, order: Order) -> bool:
    """Flag ``order`` for audit supervision if its total is above the threshold (once).

    Returns whether the order is supervised after the call (flagged now or before). The
    auditors are told once, when it is flagged (``review.supervision_flagged``).
    """
    if is_supervised(session, order.id):
        return True
    threshold = _threshold(session)
    amount = Decimal(order.total or 0)
    if amount <= threshold:
        return False
    session.add(ReviewSupervision(order_id=order.id, amount=amount, threshold=threshold))
    session.flush()
    notify(
        session,
        SUPERVISION_FLAGGED.name,
        to=ToRole(AUDITOR),
        order=order,
        context={"threshold": threshold},
        dedupe_key=f"review.supervision_flagged:{order.id}",
    )
    return True


def is_supervised(session: Session, order_id: int) -> bool:
    """Whether internal audit follows ``order_id``, asked once per transaction.

    Every move of an order asks (:func:`follow_supervised`); most orders are not
    supervised, and a missing row is looked up anew by each ``session.get``, so the
    answer is kept for the transaction (:mod:`core.txcache`; flagging is seen at once).
    """
    return remembered(
        session,
        ("review.supervised", order_id),
        lambda: session.get(ReviewSupervision, order_id) is not None,
        watch=(ReviewSupervision,),
    )


def _bilingual(registry: Registry) -> Callable[[str], dict[str, str]]:
    """A function giving a msgid in Chinese and English, for templates rendered per recipient."""
    from core.documents import translations_for

    chinese = translations_for(registry, "zh_CN")
    return lambda msgid: {"zh_CN": chinese.gettext(msgid) if msgid else "", "en": msgid}


def _step_label(registry: Registry, key: str) -> str:
    step = registry.steps.get(key)
    return step.label if step is not None else key


def _action_label(registry: Registry, from_step: str, action: str) -> str:
    step = registry.steps.get(from_step)
    if step is not None:
        for candidate in step.actions:
            if candidate.name == action:
                return candidate.label
        for name, label in step.automatic:
            if name == action:
                return label
    return action


def _transition_id(session: Session, order: Order, transition: Transition) -> int | None:
    """The history row of ``transition`` (the latest one matching it)."""
    from core.models import OrderTransition

    query = (
        select(OrderTransition.id)
        .where(
            OrderTransition.order_id == order.id,
            OrderTransition.from_step == transition.from_step,
            OrderTransition.to_step == transition.to_step,
            OrderTransition.action == transition.action,
        )
        .order_by(OrderTransition.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def follow_supervised(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the auditors of every move of a supervised order (``review.supervised_step``).

    An order entering review (leaving draft) above the threshold is flagged here, so the
    auditors follow it from the start; the move that flags it is announced by the flag.
    """
    if not is_supervised(session, order.id):
        if transition.from_step == "draft" and transition.to_status == "submitted":
            flag_supervision(session, order)
        return
    registry = session_registry(session)
    both = _bilingual(registry)
    row = _transition_id(session, order, transition)
    notify(
        session,
        SUPERVISED_STEP.name,
        to=ToRole(AUDITOR),
        order=order,
        context={
            "from_step": transition.from_step,
            "to_step": transition.to_step,
            "action": transition.action,
            "from_label": both(_step_label(registry, transition.from_step)),
            "to_label": both(_step_label(registry, transition.to_step)),
            "action_label": both(_action_label(registry, transition.from_step, transition.action)),
            "actor": user.name if user is not None else "",
            "reason": transition.reason,
        },
        dedupe_key=f"review.supervised_step:{order.id}:{row}" if row is not None else None,
    )


# --- final approval, president, chairman -------------------------------------------------


def on_enter_final_approval(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Name the approver on the sheet, flag supervision, notify the approver role."""
    from core.models import Role
    from plugins.review.sheets import current_sheet

    registry = session_registry(session)
    amount = Decimal(order.total or 0)
    role = approver_role(session, amount)
    sheet = current_sheet(session, order.id)
    if sheet is not None:
        sheet.approver_role = role or ""
    supervised = flag_supervision(session, order)
    code = role or FALLBACK_APPROVER
    name = session.scalar(select(Role.name).where(Role.code == code)) or code
    notify(
        session,
        APPROVAL_REQUESTED.name,
        to=ToRole(code),
        order=order,
        context={"approver": _bilingual(registry)(name), "supervised": supervised, "threshold": _threshold(session)},
    )


def department_rejects(session: Session, order: Order) -> list[dict[str, Any]]:
    """The current sheet's rejecting verdicts: department (zh/en), who, why."""
    from core.models import User as UserModel
    from plugins.review.sheets import current_sheet

    sheet = current_sheet(session, order.id)
    if sheet is None:
        return []
    out: list[dict[str, Any]] = []
    for task in sheet.tasks:
        if task.verdict != "reject" or not task.verdicts:
            continue
        verdict = task.verdicts[-1]
        by = session.get(UserModel, verdict.decided_by_id)
        out.append(
            {
                "department": task.department.code,
                "department_en": task.department.name,
                "department_zh": task.department.name_zh or task.department.name,
                "by": by.name if by is not None else "",
                "comment": verdict.comment,
            }
        )
    return out


def _owner_recipients(order: Order) -> list[Recipient]:
    owner = order.owner_id or order.created_by_id
    return [ToUser(owner)] if owner is not None else []


def on_enter_president(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the president a not-acceptable order waits (and the salesperson why)."""
    notify(
        session,
        NOT_ACCEPTABLE.name,
        to=[ToRole("president"), *_owner_recipients(order)],
        order=order,
        context={
            "rejects": department_rejects(session, order),
            "dismissed": transition.from_step == APPEAL,
            "reason": transition.reason,
        },
    )


def on_appeal(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the chairman of the appeal, with its reason."""
    notify(
        session,
        APPEAL_FILED.name,
        to=ToRole("chairman"),
        order=order,
        context={
            "reason": transition.reason,
            "filed_by": user.name if user is not None else "",
            "from_president": transition.from_step == PRESIDENT,
            "rejects": department_rejects(session, order),
        },
    )


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (
    APPROVAL_REQUESTED,
    SUPERVISION_FLAGGED,
    SUPERVISED_STEP,
    NOT_ACCEPTABLE,
    APPEAL_FILED,
)

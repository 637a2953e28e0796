"""The credit gate before review (RV-7): ask, hold, grant exceptions, release.

Entering ``review.credit_check`` asks ``ordo_review_credit_standing`` (every answer's
reasons). None: the order moves on at once (``credit_ok``). Some: a
:class:`ReviewCreditHold` keeps the reasons (the order waits; the move ``credit_hold``
records them in the order's history; the salesperson and the exception roles are
notified, ``review.credit_hold``). Each role named in ``review.credit.exception_roles``
grants once, with a reason, by a user holding that role and ``review.credit.exception``
(one person grants for one role only); when all have granted, the order moves on
(``credit_exception``). ``recheck_credit`` asks again (a good answer clears the hold);
``return_to_sales`` sends it to draft (outcome ``returned``). Every grant is audited.

Why a hold row and not just the history: the reasons and the grants must stay readable
after the order moved on (CORE-6), and a re-check must keep the grants already given.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.contrib import NotificationTemplate
from core.labels import N_
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.services import audit
from core.settings import get_setting, session_registry
from core.workflow import Workflow
from plugins.review.errors import ReviewError
from plugins.review.flow import CREDIT_CHECK, CREDIT_EXCEPTION, EXCEPTION_ROLES
from plugins.review.models import ReviewCreditException, ReviewCreditHold

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User
    from core.plugins import Registry

#: The automatic move that records a hold in the order's history (a move onto the same step).
HOLD_ACTION = "credit_hold"
#: Longest transition reason the history keeps.
_REASON_LIMIT = 1000

NO_HOLD = N_("This order is not held at the credit check.")
REASON_REQUIRED = N_("Give the reason for the credit exception.")
NOT_ALLOWED = N_("You may not grant credit exceptions.")
NOT_A_NAMED_ROLE = N_("You hold none of the roles that still have to grant this exception: %(roles)s.")
ALREADY_GRANTED = N_("You have already granted an exception on this hold; another named role must grant the rest.")

CREDIT_HOLD = NotificationTemplate(
    "review.credit_hold",
    label=N_("Order held at the credit check (to the salesperson and the exception roles)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 因客户信用被暂停评审",
        "en": "Order {{ order.number }} is held at the credit check",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}，金额 {{ order.total|money(order.currency) }}）"
        "未通过信用检查，暂停进入评审，原因如下：\n\n"
        "{% for reason in reasons %}- {{ reason }}\n{% endfor %}\n"
        "销售可在客户信用恢复后重新检查，或退回销售；如需例外放行，须由以下角色分别批准：{{ roles }}。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}, {{ order.total|money(order.currency) }}) "
        "did not pass the credit check and waits before review:\n\n"
        "{% for reason in reasons %}- {{ reason }}\n{% endfor %}\n"
        "Sales may check again once the customer is in good standing, or take the order back; "
        "an exception needs the approval of each of these roles: {{ roles }}.\n",
    },
)


def standing_reasons(session: Session, registry: Registry, order: Order) -> list[str]:
    """Every reason a plugin gives why the customer is not in good standing."""
    reasons: list[str] = []
    for answer in registry.hook.ordo_review_credit_standing(order=order, session=session):
        for reason in answer or ():
            text = str(reason).strip()
            if text and text not in reasons:
                reasons.append(text)
    return reasons


def _next_step(workflow: Workflow) -> str:
    return workflow.next_step(workflow.step(CREDIT_CHECK)).key


def exception_roles(session: Session) -> list[str]:
    """The role codes ``review.credit.exception_roles`` names, in order, each once."""
    roles: list[str] = []
    for code in str(get_setting(session, EXCEPTION_ROLES)).split(","):
        if code.strip() and code.strip() not in roles:
            roles.append(code.strip())
    return roles


def _owner(order: Order) -> int | None:
    return order.owner_id or order.created_by_id


def on_enter_credit_check(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Ask the gate; move on, or hold the order with the reasons."""
    if transition.action == HOLD_ACTION:
        return  # our own record of a hold
    registry = session_registry(session)
    workflow = Workflow(registry, session)
    reasons = standing_reasons(session, registry, order)
    hold = open_hold(session, order.id)
    if not reasons:
        workflow.apply(order, "credit_ok", _next_step(workflow), user, "")
        return
    new = hold is None
    if hold is None:
        hold = ReviewCreditHold(order_id=order.id, reasons=reasons, outcome="")
        session.add(hold)
    else:
        hold.reasons = reasons
    session.flush()
    workflow.apply(order, HOLD_ACTION, CREDIT_CHECK, user, "; ".join(reasons)[:_REASON_LIMIT])
    if new:
        roles = exception_roles(session)
        to: list[Recipient] = [ToRole(code) for code in roles]
        owner = _owner(order)
        if owner is not None:
            to.append(ToUser(owner))
        notify(
            session,
            CREDIT_HOLD.name,
            to=to,
            order=order,
            context={"reasons": reasons, "roles": ", ".join(roles)},
            dedupe_key=f"review.credit_hold:{hold.id}",
        )


def on_leave(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Close the open hold with how it ended (exception, cleared, returned, cancelled)."""
    if transition.to_step == CREDIT_CHECK:
        return  # a re-check or the record of a hold: the order still waits here
    hold = open_hold(session, order.id)
    if hold is None:
        return
    if transition.action == "credit_exception":
        outcome = "exception"
    elif transition.to_step == "draft":
        outcome = "returned"
    elif transition.to_step in ("cancelled", "rejected"):
        outcome = transition.to_step
    else:
        outcome = "cleared"
    hold.outcome = outcome
    hold.released_at = dt.datetime.now(dt.UTC)


def open_hold(session: Session, order_id: int) -> ReviewCreditHold | None:
    """The order's hold that is still open."""
    query = (
        select(ReviewCreditHold)
        .where(ReviewCreditHold.order_id == order_id, ReviewCreditHold.outcome == "")
        .order_by(ReviewCreditHold.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def roles_still_to_grant(session: Session, hold: ReviewCreditHold) -> list[str]:
    """Role codes named by the setting that have not granted on ``hold`` yet."""
    granted = {grant.role_code for grant in hold.exceptions}
    return [code for code in exception_roles(session) if code not in granted]


def grant_exception(session: Session, registry: Registry, actor: User, order: Order, reason: str) -> ReviewCreditHold:
    """Record ``actor``'s grant for one of their named roles; move on when all have granted.

    Refused (ReviewError, nothing changed): no open hold (409), no reason (422), actor
    holds none of the roles still to grant or lacks the permission (403), actor already
    granted on this hold (409: each named role's grant comes from a different person).
    """
    hold = open_hold(session, order.id)
    if hold is None or order.step != CREDIT_CHECK:
        raise ReviewError("no_credit_hold", NO_HOLD, status=409)
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("reason_required", REASON_REQUIRED, status=422)
    if not actor.can(CREDIT_EXCEPTION):
        raise ReviewError("forbidden", NOT_ALLOWED, status=403)
    if any(grant.granted_by_id == actor.id for grant in hold.exceptions):
        raise ReviewError("already_granted", ALREADY_GRANTED, status=409)
    still = roles_still_to_grant(session, hold)
    held = {role.code for role in actor.roles}
    mine = [code for code in still if code in held]
    if not mine:
        raise ReviewError("not_a_named_role", NOT_A_NAMED_ROLE, status=403, roles=", ".join(still) or "-")
    role = mine[0]
    grant = ReviewCreditException(hold_id=hold.id, role_code=role, granted_by_id=actor.id, reason=reason[:1000])
    hold.exceptions.append(grant)
    session.flush()
    remaining = [code for code in still if code != role]
    audit.record(
        session,
        actor,
        "review_credit_hold",
        hold.id,
        "credit_exception_granted",
        {"role": role, "remaining": ", ".join(remaining)},
        reason=reason[:1000],
        order_id=order.id,
    )
    if not remaining:
        workflow = Workflow(registry, session)
        summary = "; ".join(f"{g.role_code}: {g.reason}" for g in hold.exceptions)
        workflow.apply(order, "credit_exception", _next_step(workflow), actor, summary[:_REASON_LIMIT])
    return hold


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = (CREDIT_HOLD,)

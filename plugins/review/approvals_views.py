"""The approvals inbox (``/review/approvals``): every decision waiting for the user (RV-3, RV-6, RV-7).

One list of what the user may act on now, within their data scope:

- orders at ``review.final_approval`` whose total the user's approval limit covers
  (:func:`plugins.review.approval.may_approve`, with ``review.approve``);
- not-acceptable orders at ``review.president`` (``review.president.decide``);
- appeals at ``review.appeal`` (``review.appeal.decide``);
- credit holds at ``review.credit_check`` where one of the user's roles still has to
  grant the exception (``review.credit.exception``), with a grant form asking for the
  reason → :func:`plugins.review.credit.grant_exception`.

Each row shows the order, customer, total, why it waits and the step's buttons (with a
reason where the action needs one). Needs ``review.tasks.read``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, User
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import current_actor, permission_required, screen_blueprint
from core.views.labels import step_label
from core.views.messages import localize
from core.web import db, ordo
from core.workflow import ActionOption, Workflow, WorkflowError
from plugins.review import approval, credit, flow, sheets
from plugins.review.actions import reason_from_form, take_posted_action
from plugins.review.errors import ReviewError
from plugins.review.models import ReviewCreditHold, ReviewSheet
from plugins.review.panel import role_label, view_helpers
from plugins.review.views import bp as screens

bp = screen_blueprint("review_approvals", __name__, url_prefix="/approvals", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        N_("Approvals inbox"),
        "review.review_approvals.inbox",
        flow.READ,
        order=37,
        icon="check2-square",
        plugin="review",
    )
]

#: The steps whose orders may wait in the inbox.
INBOX_STEPS = (flow.FINAL_APPROVAL, flow.PRESIDENT, flow.APPEAL, flow.CREDIT_CHECK)


@dataclass
class InboxRow:
    """An order waiting for the user: why, the sheet, the credit hold and the buttons."""

    order: Order
    why: str
    sheet: ReviewSheet | None = None
    hold: ReviewCreditHold | None = None
    roles_to_grant: list[str] = field(default_factory=list)
    options: list[ActionOption] = field(default_factory=list)


def _options(session: Session, order: Order, actor: User) -> list[ActionOption]:
    """The allowed actions of the order's step for ``actor`` (the inbox shows no blocked ones)."""
    try:
        options = Workflow(ordo().registry, session).options(order, actor)
    except WorkflowError:
        return []
    step = ordo().registry.steps.get(order.step)
    names = {a.name for a in step.actions} if step is not None else set()
    return [o for o in options if o.action.name in names and o.allowed]


def waiting_for(session: Session, actor: User) -> list[InboxRow]:
    """Every order of ``actor``'s scope that waits for a decision ``actor`` may take, oldest first."""
    orders = session.scalars(
        visible_orders(actor)
        .where(Order.step.in_(INBOX_STEPS))
        .options(selectinload(Order.customer))
        .order_by(Order.urgency != "urgent", Order.id)
    )
    roles = {r.code for r in actor.roles}
    rows: list[InboxRow] = []
    for order in orders:
        if order.step == flow.FINAL_APPROVAL:
            if not (actor.can(flow.APPROVE) and approval.may_approve(session, actor, order.total)):
                continue
            sheet = sheets.current_sheet(session, order.id)
            role = sheet.approver_role if sheet is not None and sheet.approver_role else ""
            why = _("Final approval by %(role)s", role=role_label(role)) if role else _("Final approval")
            rows.append(InboxRow(order, why, sheet, options=_options(session, order, actor)))
        elif order.step == flow.PRESIDENT:
            if actor.can(flow.PRESIDENT_DECIDE):
                rows.append(
                    InboxRow(
                        order,
                        _("Not acceptable: a department rejected it"),
                        sheets.current_sheet(session, order.id),
                        options=_options(session, order, actor),
                    )
                )
        elif order.step == flow.APPEAL:
            if actor.can(flow.APPEAL_DECIDE):
                rows.append(
                    InboxRow(
                        order,
                        _("Appeal to the chairman"),
                        sheets.current_sheet(session, order.id),
                        options=_options(session, order, actor),
                    )
                )
        elif actor.can(flow.CREDIT_EXCEPTION):
            hold = credit.open_hold(session, order.id)
            if hold is None:
                continue
            still = credit.roles_still_to_grant(session, hold)
            mine = [code for code in still if code in roles]
            if mine:
                rows.append(InboxRow(order, _("Credit hold: an exception is needed"), hold=hold, roles_to_grant=still))
    return rows


@bp.get("")
@permission_required(flow.READ)
def inbox() -> str:
    """The orders waiting for the user's decision, with the buttons to take it."""
    session, actor = db(), current_actor()
    return render_template("review/approvals/inbox.html", rows=waiting_for(session, actor), **view_helpers())


def _order(order_id: int, *, for_update: bool = False) -> Order:
    try:
        return get_order(db(), current_actor(), order_id, for_update=for_update)
    except ServiceError as exc:
        raise NotFound() from exc


@bp.post("/<int:order_id>/act")
@permission_required(flow.READ)
def act(order_id: int) -> Response:
    """Take an action of the order's step (approve, reject, abandon, re-quote …), back to the inbox."""
    order = _order(order_id, for_update=True)
    take_posted_action(order)
    return redirect(url_for(".inbox"))


@bp.post("/<int:order_id>/grant")
@permission_required(flow.CREDIT_EXCEPTION)
def grant(order_id: int) -> Response:
    """Grant the credit exception for one of the user's named roles, with the reason."""
    session, actor = db(), current_actor()
    order = _order(order_id, for_update=True)
    back = redirect(url_for(".inbox"))
    reason = reason_from_form()
    if reason is None:
        return back
    try:
        hold = credit.grant_exception(session, ordo().registry, actor, order, reason)
    except ReviewError as exc:
        session.rollback()
        flash(exc.localized(), "danger")
        return back
    except ServiceError as exc:
        session.rollback()
        flash(localize(exc.message), "danger")
        return back
    session.commit()
    if hold.outcome:
        flash(
            _(
                "Credit exception granted for order %(number)s; every named role has granted, "
                "so it is now at step “%(step)s”.",
                number=order.number,
                step=step_label(order.step),
            ),
            "success",
        )
    else:
        flash(
            _("Credit exception granted for order %(number)s; other roles still have to grant.", number=order.number),
            "success",
        )
    return back

"""Intake's manual-check screens (IN-4, IN-5, IN-9, CORE-9): the queue and the check screen.

* ``/intake/queue/`` lists the orders waiting in ``intake.manual_check`` (and any left in
  ``intake.precheck``) within the clerk's data scope: urgent first, then by due date,
  then by id, with the SLA, the pre-check's warnings and who entered each order.
* ``/intake/queue/<order_id>`` shows the order beside its original document: on the left
  a correction form (header and lines, an "entry error" tick per field, a note, the
  transaction type) and the pre-check's findings; on the right the order's attachments,
  the first PDF shown in a frame and images inline. Accept and Reject go through core's
  ``take_action`` with the order's version, then on to the next order in the queue.

Everything needs ``intake.orders.check`` (403 without it); an order outside the clerk's
scope answers 404. Thin views over :mod:`plugins.intake.corrections` and core's services.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.attachments import service as attachments
from core.calendar import working_days_between
from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, OrderAttachment, User
from core.schemas import ActionInSchema
from core.services import ServiceError
from core.services.orders import OrderFilters, filtered_orders, get_order, take_action
from core.views.common import (
    FieldErrors,
    Page,
    current_actor,
    field_errors,
    page_args,
    permission_required,
    query_args,
    screen_blueprint,
)
from core.views.labels import CHANNEL_LABELS, PAYMENT_METHOD_LABELS, URGENCY_LABELS, action_label, choices, step_label
from core.views.messages import localize
from core.views.orders import describe_refusal
from core.web import db, ordo
from core.workflow import ActionOption, Workflow, WorkflowError
from plugins.intake import corrections, flow
from plugins.intake.models import IntakeCorrection, IntakeFinding, IntakeOrder
from plugins.intake.panel import finding_rows
from plugins.intake.views import bp as screens

bp = screen_blueprint("intake_queue", __name__, url_prefix="/queue", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        N_("Manual check"), "intake.intake_queue.queue", flow.CHECK_PERMISSION, order=35, icon="inbox", plugin="intake"
    )
]

#: The steps whose orders wait in the queue.
QUEUE_STEPS = (flow.MANUAL_CHECK, flow.PRECHECK)
#: The actions the check screen offers (cancelling stays on the order page).
CHECK_ACTIONS = ("accept", "reject", "run_precheck")
#: Attachment types shown inside the check screen (PDF in a frame, images inline).
PREVIEWABLE = ("application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp")
_FILTERS = ("q", "channel", "urgent", "overdue")


# --- the queue ---------------------------------------------------------------------------


@dataclass
class QueueFilters:
    """What the queue is narrowed by: search text, channel, urgent only, overdue only."""

    text: str | None = None
    channel: str | None = None
    urgent_only: bool = False
    overdue_only: bool = False


def queue_query(actor: User, filters: QueueFilters, today: dt.date) -> Select[tuple[Order]]:
    """The orders waiting for the manual check that ``actor`` may see, narrowed by ``filters``.

    Orders without an intake record (left in the pre-check) are included; the statement
    is joined to :class:`IntakeOrder` so callers may order by the due date.
    """
    stmt = (
        filtered_orders(actor, OrderFilters(text=filters.text))
        .outerjoin(IntakeOrder, IntakeOrder.order_id == Order.id)
        .where(Order.step.in_(QUEUE_STEPS))
    )
    if filters.channel:
        stmt = stmt.where(Order.channel == filters.channel)
    if filters.urgent_only:
        stmt = stmt.where(Order.urgency == "urgent")
    if filters.overdue_only:
        stmt = stmt.where(IntakeOrder.check_due < today)
    return stmt


def queue_ordering() -> tuple[Any, ...]:
    """Urgent first, then the earliest due date (orders without one last), then the oldest."""
    return (
        case((Order.urgency == "urgent", 0), else_=1),
        IntakeOrder.check_due.is_(None),
        IntakeOrder.check_due,
        Order.id,
    )


def next_in_queue(session: Session, actor: User, after: int | None = None) -> Order | None:
    """The first order of the actor's queue (other than order ``after``), or None."""
    stmt = queue_query(actor, QueueFilters(), flow.company_today())
    if after is not None:
        stmt = stmt.where(Order.id != after)
    return session.scalar(stmt.order_by(*queue_ordering()).limit(1))


@dataclass
class Due:
    """An order's manual-check SLA as the queue shows it."""

    day: dt.date | None
    state: str  # overdue, today, open or none
    working_days_left: int = 0


def due_of(session: Session, record: IntakeOrder | None, today: dt.date, company_id: int | None) -> Due:
    """The SLA of an order with intake record ``record`` on ``today`` (working days, company calendar)."""
    if record is None or record.check_due is None:
        return Due(None, "none")
    left = working_days_between(session, today, record.check_due, company_id)
    if today > record.check_due:
        return Due(record.check_due, "overdue", left)
    if today == record.check_due:
        return Due(record.check_due, "today", 0)
    return Due(record.check_due, "open", left)


def _read_filters() -> QueueFilters:
    args = request.args
    channel = args.get("channel", "")
    return QueueFilters(
        text=(args.get("q") or "").strip() or None,
        channel=channel if channel in CHANNEL_LABELS else None,
        urgent_only=args.get("urgent") == "1",
        overdue_only=args.get("overdue") == "1",
    )


@bp.get("/")
@permission_required(flow.CHECK_PERMISSION)
def queue() -> str:
    """The manual-check queue: urgent first, then by due date; filtered and paged."""
    session, actor = db(), current_actor()
    filters = _read_filters()
    today = flow.company_today()
    stmt = queue_query(actor, filters, today)
    total = session.scalar(select(func.count()).select_from(stmt.with_only_columns(Order.id).subquery())) or 0
    number, size, sort = page_args("queue", {"queue": None})
    number = min(number, max(1, -(-total // size)))
    rows = list(
        session.scalars(
            stmt.options(selectinload(Order.customer))
            .order_by(*queue_ordering())
            .offset((number - 1) * size)
            .limit(size)
        )
    )
    page = Page(rows, total, number, size, sort, "intake.intake_queue.queue", query_args(*_FILTERS))
    ids = [o.id for o in rows]
    records = {r.order_id: r for r in session.scalars(select(IntakeOrder).where(IntakeOrder.order_id.in_(ids)))}
    counted = session.execute(
        select(IntakeFinding.order_id, func.count())
        .where(IntakeFinding.order_id.in_(ids), IntakeFinding.level == "warn")
        .group_by(IntakeFinding.order_id)
    )
    warnings: dict[int, int] = {order_id: count for order_id, count in counted}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_({o.created_by_id for o in rows})))}
    return render_template(
        "intake/queue.html",
        page=page,
        filters=filters,
        channels=choices(CHANNEL_LABELS),
        records=records,
        warnings=warnings,
        people=people,
        dues={o.id: due_of(session, records.get(o.id), today, o.company_id) for o in rows},
    )


# --- the check screen ----------------------------------------------------------------------


def _order(order_id: int, *, for_update: bool = False) -> Order:
    try:
        return get_order(db(), current_actor(), order_id, for_update=for_update)
    except ServiceError as exc:
        raise NotFound() from exc


def _options(session: Session, order: Order, actor: User) -> list[ActionOption]:
    try:
        options = Workflow(ordo().registry, session).options(order, actor)
    except WorkflowError:
        return []
    return [o for o in options if o.action.name in CHECK_ACTIONS]


def _form_values(order: Order) -> dict[str, str]:
    """The correction form's values for the order as it is stored."""
    values = {name: corrections.as_text(getattr(order, name)) for name in corrections.HEADER_FIELDS}
    for index, line in enumerate(order.lines):
        for name in corrections.LINE_FIELDS:
            values[f"lines-{index}-{name}"] = corrections.as_text(getattr(line, name))
    return values


def _posted(order: Order) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    """The posted correction: (changes for the service, the form's values, entry-error keys)."""
    form = request.form
    changes: dict[str, Any] = {}
    values: dict[str, str] = {}
    for name in corrections.HEADER_FIELDS:
        if name in form:
            changes[name] = values[name] = form[name].strip()
    lines: dict[int, dict[str, str]] = {}
    for index in range(len(order.lines)):
        for name in corrections.LINE_FIELDS:
            key = f"lines-{index}-{name}"
            if key in form:
                lines.setdefault(index, {})[name] = values[key] = form[key].strip()
    if lines:
        changes["lines"] = lines
    ticked = {key.removeprefix("error-") for key in form if key.startswith("error-")}
    return changes, values, ticked


def _attachments(session: Session, actor: User, order: Order) -> tuple[list[OrderAttachment], Any, list[Any]]:
    """The order's attachments, the first PDF to show in a frame, and the images to show."""
    found = attachments.list_attachments(session, actor, order.id)
    pdf = next((a for a in found if a.content_type == "application/pdf"), None)
    images = [a for a in found if a.content_type in PREVIEWABLE and a.content_type.startswith("image/")]
    return found, pdf, images


def _render_check(
    order: Order,
    values: dict[str, str] | None = None,
    ticked: set[str] | None = None,
    errors: FieldErrors | None = None,
    note: str = "",
    transaction_type: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    session, actor = db(), current_actor()
    record = session.get(IntakeOrder, order.id)
    found, pdf, images = _attachments(session, actor, order)
    history = list(
        session.scalars(
            select(IntakeCorrection).where(IntakeCorrection.order_id == order.id).order_by(IntakeCorrection.id)
        )
    )
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_({c.user_id for c in history})))}
    today = flow.company_today()
    return (
        render_template(
            "intake/check.html",
            order=order,
            record=record,
            due=due_of(session, record, today, order.company_id),
            findings=finding_rows(session, order),
            options=_options(session, order, actor),
            values=values if values is not None else _form_values(order),
            ticked=ticked or set(),
            errors=errors or FieldErrors(),
            note=note,
            transaction_type=transaction_type or (record.transaction_type if record else "domestic"),
            transaction_types=corrections.transaction_type_choices(),
            payment_methods=choices(PAYMENT_METHOD_LABELS),
            urgencies=choices(URGENCY_LABELS),
            attachments=found,
            pdf=pdf,
            images=images,
            history=history,
            people=people,
            can_correct=order.step == flow.MANUAL_CHECK,
            line_key=corrections.line_key,
            field_label=corrections.field_label,
        ),
        status,
    )


@bp.get("/<int:order_id>")
@permission_required(flow.CHECK_PERMISSION)
def check(order_id: int) -> Any:
    """The check screen: the order and its findings beside its original document."""
    order = _order(order_id)
    if order.step not in QUEUE_STEPS:
        flash(
            _("Order %(number)s is no longer waiting for the manual check.", number=order.number),
            "info",
        )
        return redirect(url_for("orders.view_order", order_id=order.id))
    return _render_check(order)


def _stale(order_id: int) -> tuple[str, int]:
    """The check screen again with the order as stored now, saying nothing was saved (409)."""
    flash(
        _("Someone changed this order meanwhile, so nothing was saved. Check the values shown and try again."),
        "danger",
    )
    return _render_check(_order(order_id), status=409)


@bp.post("/<int:order_id>")
@permission_required(flow.CHECK_PERMISSION)
def correct(order_id: int) -> Any:
    """Save the clerk's corrections: one record per changed field, audited, findings renewed."""
    session, actor = db(), current_actor()
    order = _order(order_id, for_update=True)
    changes, values, ticked = _posted(order)
    note = request.form.get("note", "")
    transaction_type = request.form.get("transaction_type") or None
    version = request.form.get("version", "")
    try:
        written = corrections.correct_order(
            session,
            actor,
            order,
            int(version) if version.isdigit() else None,
            changes,
            ticked,
            note,
            transaction_type,
        )
    except StaleDataError:
        session.rollback()
        return _stale(order_id)
    except ServiceError as exc:
        session.rollback()
        if exc.status in (403, 404):
            abort(exc.status)
        if exc.code == "stale_version":
            return _stale(order_id)
        if exc.status == 409:
            flash(localize(exc.message), "danger")
            return _render_check(_order(order_id), status=409)
        errors = field_errors(exc.details, groups=("lines",))
        return _render_check(_order(order_id), values, ticked, errors, note, transaction_type, status=exc.status)
    session.commit()
    if written.corrections:
        flash(
            _(
                "Order %(number)s: %(count)s corrections saved (%(errors)s entry errors); the pre-check ran again.",
                number=order.number,
                count=len(written.corrections),
                errors=written.entry_errors,
            ),
            "success",
        )
    elif written.transaction_type_changed:
        flash(_("Order %(number)s: the transaction type was changed.", number=order.number), "success")
    else:
        flash(_("Nothing was changed."), "info")
    return redirect(url_for(".check", order_id=order.id))


@bp.post("/<int:order_id>/act")
@permission_required(flow.CHECK_PERMISSION)
def act(order_id: int) -> Response:
    """Accept or reject the order (or run the pre-check again), then go on to the next order."""
    session, actor = db(), current_actor()
    order = _order(order_id, for_update=True)
    name = request.form.get("action", "")
    version = request.form.get("version", "")
    if name not in CHECK_ACTIONS:
        flash(_("There is no action “%(action)s”.", action=name), "danger")
        return redirect(url_for(".check", order_id=order.id))
    try:
        reason = ActionInSchema().load({"reason": request.form.get("reason", "")})["reason"]
    except ValidationError:
        flash(_("The reason is too long (at most 1000 characters)."), "danger")
        return redirect(url_for(".check", order_id=order.id))
    try:
        transition = take_action(
            session, ordo().registry, actor, order, name, reason, int(version) if version.isdigit() else None
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(" ".join(describe_refusal(exc, order, name)), "danger")
        return redirect(url_for(".check", order_id=order_id))
    except StaleDataError:
        session.rollback()
        flash(
            _("Someone changed this order meanwhile, so nothing was done. Check its current state and try again."),
            "danger",
        )
        return redirect(url_for(".check", order_id=order_id))
    flash(
        _(
            "Order %(number)s: “%(action)s” done; it is now at step “%(step)s”.",
            number=order.number,
            action=action_label(transition.action),
            step=step_label(transition.to_step),
        ),
        "success",
    )
    if order.step in QUEUE_STEPS:
        return redirect(url_for(".check", order_id=order.id))
    following = next_in_queue(session, actor, after=order.id)
    if following is None:
        flash(_("The queue is empty: every order has been checked."), "info")
        return redirect(url_for(".queue"))
    return redirect(url_for(".check", order_id=following.id))


@bp.get("/<int:order_id>/attachments/<int:attachment_id>/view")
@permission_required(flow.CHECK_PERMISSION)
def view_attachment(order_id: int, attachment_id: int) -> Response:
    """An attachment shown inside the check screen (PDFs and images only; others 404).

    Core's download always answers as a download with a sandboxing policy, which a
    browser will not show in a frame; this variant answers ``inline`` for the types
    above, may be framed by Ordo's own pages only and still runs no script.
    """
    session = db()
    try:
        attachment = attachments.get_attachment(session, current_actor(), order_id, attachment_id)
    except ServiceError as exc:
        raise NotFound() from exc
    if attachment.content_type not in PREVIEWABLE:
        abort(404)
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in attachment.filename)
    return Response(
        attachments.attachment_bytes(session, attachment),
        headers={
            "Content-Type": attachment.content_type,
            "Content-Disposition": f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.filename)}",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "SAMEORIGIN",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
            "frame-ancestors 'self'",
            "Cache-Control": "private, no-store",
        },
    )

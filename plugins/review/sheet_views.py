"""The review sheet page (``/review/orders/<order_id>``): verdicts, consolidation, negotiation.

One page per order (RV-1 … RV-4, RV-6, RV-7):

- the header: the current sheet's round, tier, status and outcome, the approver role,
  the audit-supervision badge and an open credit hold with its reasons and grants;
- every department's task with its verdict history (verdict, comment, conditions, the
  department's figures with their labels, proposed date, who and when);
- a verdict form for each open task of a department the user belongs to, its fields
  built from :data:`plugins.review.figures.FIGURES` → :func:`plugins.review.sheets.record_verdict`;
- at ``review.consolidation``: every verdict and proposed date side by side, the
  negotiation form (new unit price or quantity per line, new requested date, note) →
  :func:`plugins.review.sheets.negotiate` (``review.consolidate``), and the step's
  workflow buttons (send for final approval, reject) — as on every review step;
- links to the quotation page and to review's PDFs.

Needs ``review.tasks.read``; an order outside the user's scope answers 404. Refusals
are shown in the reader's language (:meth:`ReviewError.localized`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.documents import printable_documents
from core.models import Order, User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import FieldErrors, current_actor, field_errors, permission_required, screen_blueprint
from core.views.labels import step_label
from core.views.messages import localize
from core.web import db, ordo
from core.workflow import ActionOption, Workflow, WorkflowError
from plugins.review import approval, credit, flow, sheets
from plugins.review.actions import take_posted_action
from plugins.review.errors import ReviewError
from plugins.review.figures import FIGURES, RISK_LEVELS, Figure
from plugins.review.models import VERDICTS, ReviewDepartment, ReviewNegotiation, ReviewSheet, ReviewTask
from plugins.review.panel import department_name, view_helpers
from plugins.review.views import bp as screens

bp = screen_blueprint("review_sheet", __name__, url_prefix="/orders", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items): none, the
#: sheet page is reached from the task list, the approvals inbox and the order page.
MENU: list[MenuItem] = []

#: The endpoint of the quotation page; linked only when it exists.
QUOTATION_ENDPOINT = "review.review_quotation.quotation"


def _order(order_id: int, *, for_update: bool = False) -> Order:
    try:
        return get_order(db(), current_actor(), order_id, for_update=for_update)
    except ServiceError as exc:
        raise NotFound() from exc


def _options(session: Session, order: Order, actor: User) -> list[ActionOption]:
    """The workflow actions of the order's review step (none outside review's steps)."""
    if not order.step.startswith("review."):
        return []
    try:
        options = Workflow(ordo().registry, session).options(order, actor)
    except WorkflowError:
        return []
    step = ordo().registry.steps.get(order.step)
    names = {a.name for a in step.actions} if step is not None else set()
    return [o for o in options if o.action.name in names]


def _quotation_url(order: Order) -> str | None:
    try:
        return url_for(QUOTATION_ENDPOINT, order_id=order.id)
    except BuildError:
        return None


def figure_input(figure: Figure) -> str:
    """The kind of form input a figure gets: ``yesno``, ``date``, ``number``, ``select`` or ``text``."""
    return {"bool": "yesno", "date": "date", "money": "number", "percent": "number", "choice": "select"}.get(
        figure.type, "text"
    )


def figure_choices(figure: Figure) -> list[tuple[str, str]]:
    """The (value, msgid) options of a choice figure."""
    return list(figure.choices) or list(RISK_LEVELS.items())


def render_sheet(
    order: Order,
    *,
    verdict_values: dict[int, dict[str, str]] | None = None,
    verdict_errors: dict[int, FieldErrors] | None = None,
    negotiation_values: dict[str, str] | None = None,
    negotiation_errors: FieldErrors | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The sheet page of ``order``; a failed form comes back with its values and errors."""
    session, actor, registry = db(), current_actor(), ordo().registry
    sheet = sheets.current_sheet(session, order.id)
    tasks: list[ReviewTask] = list(sheet.tasks) if sheet is not None else []
    rounds = list(
        session.scalars(select(ReviewSheet).where(ReviewSheet.order_id == order.id).order_by(ReviewSheet.round))
    )
    hold = credit.open_hold(session, order.id)
    negotiations = (
        list(
            session.scalars(
                select(ReviewNegotiation).where(ReviewNegotiation.sheet_id == sheet.id).order_by(ReviewNegotiation.id)
            )
        )
        if sheet is not None
        else []
    )
    people_ids = {v.decided_by_id for t in tasks for v in t.verdicts} | {n.by_id for n in negotiations}
    if hold is not None:
        people_ids |= {e.granted_by_id for e in hold.exceptions}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    in_review = order.step == flow.DEPARTMENT_REVIEW
    may_decide = {t.id: in_review and t.status == "open" and sheets.is_member(actor, t.department) for t in tasks}
    consolidating = order.step == flow.CONSOLIDATION
    page = render_template(
        "review/sheet/sheet.html",
        order=order,
        sheet=sheet,
        rounds=rounds,
        tasks=tasks,
        hold=hold,
        still_to_grant=credit.roles_still_to_grant(session, hold) if hold is not None else [],
        supervised=approval.is_supervised(session, order.id),
        negotiations=negotiations,
        people=people,
        may_decide=may_decide,
        consolidating=consolidating,
        may_negotiate=consolidating and actor.can(flow.CONSOLIDATE),
        options=_options(session, order, actor),
        quotation_url=_quotation_url(order),
        documents=[d for d in printable_documents(registry, actor) if d.plugin == "review"],
        figures=FIGURES,
        figure_input=figure_input,
        figure_choices=figure_choices,
        verdicts=VERDICTS,
        verdict_values=verdict_values or {},
        verdict_errors=verdict_errors or {},
        negotiation_values=negotiation_values or _negotiation_defaults(order),
        negotiation_errors=negotiation_errors or FieldErrors(),
        **view_helpers(),
    )
    return page, status


@bp.get("/<int:order_id>")
@permission_required(flow.READ)
def sheet(order_id: int) -> tuple[str, int]:
    """The order's review sheet: tasks, verdicts, forms for the user's departments, consolidation."""
    return render_sheet(_order(order_id))


# --- verdicts ----------------------------------------------------------------------------


def _posted_verdict(task: ReviewTask) -> tuple[dict[str, str], dict[str, str]]:
    """The verdict form as posted: (the form's values, the figures given)."""
    form = request.form
    values = {key: form.get(key, "").strip() for key in ("verdict", "comment", "conditions")}
    given: dict[str, str] = {}
    for figure in FIGURES.get(task.department.kind, ()):
        raw = form.get(f"figure-{figure.name}", "").strip()
        values[f"figure-{figure.name}"] = raw
        if raw:
            given[figure.name] = raw
    return values, given


def _verdict_errors(exc: ReviewError, task: ReviewTask) -> FieldErrors:
    """The refusal's details as errors beside the verdict form's fields."""
    errors = field_errors(exc.details) if exc.details else FieldErrors()
    names = {f.name for f in FIGURES.get(task.department.kind, ())}
    shown = FieldErrors(general=list(errors.general))
    for key, messages in errors.fields.items():
        name = key.removeprefix("figures.")
        if name in names:
            shown.fields[f"figure-{name}"] = messages
        elif key in ("verdict", "comment", "conditions"):
            shown.fields[key] = messages
        else:
            shown.general.extend(messages)
    if not shown.general:
        shown.general.insert(0, exc.localized())
    return shown


@bp.post("/<int:order_id>/tasks/<int:task_id>/verdict")
@permission_required(flow.READ)
def verdict(order_id: int, task_id: int) -> Any:
    """Record the user's verdict on a task of the order (members of its department only)."""
    session, actor = db(), current_actor()
    order = _order(order_id, for_update=True)
    task = session.get(ReviewTask, task_id)
    if task is None or task.sheet.order_id != order.id:
        raise NotFound()
    values, given = _posted_verdict(task)
    try:
        sheets.record_verdict(
            session,
            ordo().registry,
            actor,
            task,
            verdict=values["verdict"],
            comment=values["comment"],
            conditions=values["conditions"],
            figures=given,
        )
    except ReviewError as exc:
        session.rollback()
        if exc.status == 403:
            raise Forbidden() from exc
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return redirect(url_for(".sheet", order_id=order_id))
        order = _order(order_id)
        return render_sheet(
            order,
            verdict_values={task_id: values},
            verdict_errors={task_id: _verdict_errors(exc, task)},
            status=exc.status,
        )
    except ServiceError as exc:
        session.rollback()
        flash(localize(exc.message), "danger")
        return redirect(url_for(".sheet", order_id=order_id))
    session.commit()
    flash(
        _(
            "Your verdict on order %(number)s is recorded; the order is at step “%(step)s”.",
            number=order.number,
            step=step_label(order.step),
        ),
        "success",
    )
    return redirect(url_for(".sheet", order_id=order.id))


# --- negotiation (consolidation) -------------------------------------------------------------


def _negotiation_defaults(order: Order) -> dict[str, str]:
    """The negotiation form's values for the order as it stands: its prices, quantities, date."""
    values = {"requested_date": order.requested_date.isoformat() if order.requested_date else "", "note": ""}
    for line in order.lines:
        values[f"price-{line.id}"] = _plain(line.unit_price)
        values[f"quantity-{line.id}"] = _plain(line.quantity)
    return values


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) < Decimal("1e12") else None


def read_negotiation(
    order: Order,
) -> tuple[dict[str, str], FieldErrors, dict[int, Decimal], dict[int, Decimal], dt.date | None, str]:
    """The posted negotiation: the form's values, errors, and only what differs from the order."""
    form = request.form
    values = {key: form.get(key, "").strip() for key in _negotiation_defaults(order)}
    errors = FieldErrors()
    prices: dict[int, Decimal] = {}
    quantities: dict[int, Decimal] = {}
    for line in order.lines:
        for kind, current, target in (("price", line.unit_price, prices), ("quantity", line.quantity, quantities)):
            key = f"{kind}-{line.id}"
            text = values.get(key, "")
            if not text:
                continue
            number = _decimal(text)
            if number is None or number < 0 or (kind == "quantity" and number == 0):
                errors.fields[key] = [
                    _("Give a unit price of zero or more.") if kind == "price" else _("Give a quantity above zero.")
                ]
            elif number != current:
                target[line.id] = number
    requested: dt.date | None = None
    if values["requested_date"]:
        try:
            requested = dt.date.fromisoformat(values["requested_date"])
        except ValueError:
            errors.fields["requested_date"] = [_("Give a date as YYYY-MM-DD.")]
        else:
            if requested == order.requested_date:
                requested = None
    if len(values["note"]) > 2000:
        errors.fields["note"] = [_("At most 2000 characters.")]
    return values, errors, prices, quantities, requested, values["note"]


@bp.post("/<int:order_id>/negotiate")
@permission_required(flow.CONSOLIDATE)
def negotiate(order_id: int) -> Any:
    """Apply what sales agreed with the customer; the affected departments review again."""
    session, actor = db(), current_actor()
    order = _order(order_id, for_update=True)
    values, errors, prices, quantities, requested, note = read_negotiation(order)
    if errors:
        return render_sheet(order, negotiation_values=values, negotiation_errors=errors, status=422)
    try:
        negotiation = sheets.negotiate(
            session,
            ordo().registry,
            actor,
            order,
            unit_prices=prices or None,
            quantities=quantities or None,
            requested_date=requested,
            note=note,
        )
    except ReviewError as exc:
        session.rollback()
        if exc.status == 403:
            raise Forbidden() from exc
        if exc.status == 409:
            flash(exc.localized(), "danger")
            return redirect(url_for(".sheet", order_id=order_id))
        shown = field_errors(exc.details) if exc.details else FieldErrors()
        shown.general.insert(0, exc.localized())
        return render_sheet(_order(order_id), negotiation_values=values, negotiation_errors=shown, status=exc.status)
    except ServiceError as exc:
        session.rollback()
        flash(localize(exc.message), "danger")
        return redirect(url_for(".sheet", order_id=order_id))
    session.commit()
    flash(
        _(
            "Negotiated changes saved; departments reviewing again: %(departments)s.",
            departments=", ".join(
                department_name(d)
                for d in session.scalars(
                    select(ReviewDepartment)
                    .where(ReviewDepartment.code.in_(negotiation.reopened))
                    .order_by(ReviewDepartment.position)
                )
            )
            or "—",
        ),
        "success",
    )
    return redirect(url_for(".sheet", order_id=order.id))


# --- workflow actions ---------------------------------------------------------------------


@bp.post("/<int:order_id>/act")
@permission_required(flow.READ)
def act(order_id: int) -> Response:
    """Take a workflow action of the order's review step (with its reason), back to the sheet."""
    order = _order(order_id, for_update=True)
    take_posted_action(order)
    return redirect(url_for(".sheet", order_id=order_id))

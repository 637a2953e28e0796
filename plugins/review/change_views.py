"""Change and cancellation request screens (订单变更申请表, RV-8, RV-9, CORE-5).

* ``/review/changes/`` lists the change requests of the orders the user may see, filtered
  by status, kind, text, or those waiting for the user's department.
* ``/review/orders/<id>/changes/new`` is the request form: kind, reason, scope, each
  line's new quantity, price and description (or its removal), new lines, the requested
  date, the ship-to address, the specification, the impact on each step, the expected
  handling time, the new delivery date and the step the order goes back to.
* ``/review/changes/<id>`` shows one request: what changes, the departments'
  assessments (with a form for members of a department still to assess), the decision
  form for approvers, withdrawing, and a link to the revisions it made.
* ``/review/orders/<id>/revisions`` lists an order's revisions with the differences
  between any two of them.

Thin views over :mod:`plugins.review.changes` and :mod:`plugins.review.revisions`:
a refusal is shown beside the fields (422) or as a message (409), nothing changed.
Imported for its side effect: nests its blueprint in :data:`plugins.review.views.bp`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Order, Product, User
from core.services import ServiceError
from core.services.orders import OrderFilters, filtered_orders, get_order
from core.views.common import (
    FieldErrors,
    abort_for,
    current_actor,
    field_errors,
    paginate,
    permission_required,
    plain_number,
    query_args,
    screen_blueprint,
)
from core.views.labels import status_label, step_label
from core.web import db, ordo
from core.workflow import Workflow
from plugins.review import changes, flow, revisions
from plugins.review.errors import ReviewError
from plugins.review.models import (
    CHANGE_REQUEST_KINDS,
    CHANGE_REQUEST_STATUSES,
    VERDICTS,
    ReviewChangeAssessment,
    ReviewChangeRequest,
    ReviewDepartment,
    ReviewOrderRevision,
)
from plugins.review.panel import department_name
from plugins.review.views import bp as screens

bp = screen_blueprint("review_changes", __name__, template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        N_("Change requests"),
        "review.review_changes.list_requests",
        flow.READ,
        order=39,
        icon="arrow-left-right",
        plugin="review",
    )
]

#: What the differences and the change list name, as people read it.
FIELD_LABELS = {
    "customer": N_("Customer"),
    "reference": N_("Customer reference"),
    "requested_date": N_("Requested date"),
    "payment_method": N_("Payment method"),
    "currency": N_("Currency"),
    "urgency": N_("Urgency"),
    "contact_name": N_("Contact"),
    "contact_phone": N_("Contact phone"),
    "ship_to_contact": N_("Ship-to contact"),
    "ship_to_phone": N_("Ship-to phone"),
    "ship_to_province": N_("Ship-to province"),
    "ship_to_city": N_("Ship-to city"),
    "ship_to_address": N_("Ship-to address"),
    "ship_to": N_("Ship-to address"),
    "note": N_("Note"),
    "untaxed_amount": N_("Untaxed amount"),
    "tax_amount": N_("Tax"),
    "total": N_("Total"),
    "position": N_("Position"),
    "product": N_("Product"),
    "product_name": N_("Product name"),
    "description": N_("Description"),
    "quantity": N_("Quantity"),
    "unit": N_("Unit"),
    "unit_price": N_("Unit price"),
    "discount": N_("Discount (%)"),
    "tax_rate": N_("Tax rate (%)"),
    "amount": N_("Amount"),
    "added": N_("Line added"),
    "removed": N_("Line removed"),
    "specification": N_("Specification"),
    "scope": N_("Scope"),
}
STATUS_COLOURS = {
    "assessing": "info",
    "pending_approval": "warning",
    "approved": "success",
    "rejected": "danger",
    "withdrawn": "secondary",
}
_FILTERS = ("q", "status", "kind", "mine")
#: Blank rows the form offers for new lines.
NEW_ROWS = 2
SHIP_TO_LABELS = {
    "contact": N_("Contact"),
    "phone": N_("Phone"),
    "province": N_("Province"),
    "city": N_("City"),
    "address": N_("Address"),
}


def change_status_colour(status: str) -> str:
    """The Bootstrap colour of a change request's status."""
    return STATUS_COLOURS.get(status, "light")


def field_label(what: str) -> str:
    """A difference's or change's field in the reader's language (``lines.<id>.<field>`` → the field)."""
    name = what.rsplit(".", 1)[-1] if what.startswith("lines.") and what.count(".") == 2 else what
    label = FIELD_LABELS.get(name)
    return _(label) if label else name


def _labels() -> dict[str, Any]:
    return {
        "kind_labels": {k: _(v) for k, v in CHANGE_REQUEST_KINDS.items()},
        "status_labels": {k: _(v) for k, v in CHANGE_REQUEST_STATUSES.items()},
        "verdict_labels": {k: _(v) for k, v in VERDICTS.items()},
        "field_label": field_label,
        "step_label": step_label,
        "status_colour_of": change_status_colour,
        "department_name": department_name,
        "plain": plain_number,
    }


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _request(request_id: int) -> tuple[ReviewChangeRequest, Order]:
    found = db().get(ReviewChangeRequest, request_id) if 0 < request_id < 2**31 else None
    if found is None:
        raise NotFound()
    return found, _order(found.order_id)


# --- the list ----------------------------------------------------------------------------------


def requests_query(actor: User, *, text: str | None, status: str | None, kind: str | None, mine: bool) -> Select[Any]:
    """The change requests of orders ``actor`` may see, narrowed by the filters.

    ``mine``: only those still waiting for an assessment from the actor's departments.
    """
    orders = filtered_orders(actor, OrderFilters(text=text)).with_only_columns(Order.id)
    stmt = select(ReviewChangeRequest).where(ReviewChangeRequest.order_id.in_(orders))
    if status:
        stmt = stmt.where(ReviewChangeRequest.status == status)
    if kind:
        stmt = stmt.where(ReviewChangeRequest.kind == kind)
    if mine:
        roles = [role.code for role in actor.roles] if actor.can(flow.DECIDE) else []
        waiting = (
            select(ReviewChangeAssessment.change_request_id)
            .join(ReviewDepartment, ReviewDepartment.id == ReviewChangeAssessment.department_id)
            .where(ReviewChangeAssessment.verdict == "", ReviewDepartment.role_code.in_(roles))
        )
        stmt = stmt.where(ReviewChangeRequest.status == "assessing", ReviewChangeRequest.id.in_(waiting))
    return stmt


@bp.get("/changes/")
@permission_required(flow.READ)
def list_requests() -> str:
    """Every change and cancellation request the user may see, newest first, filtered and paged."""
    session, actor = db(), current_actor()
    args = request.args
    status = args.get("status", "")
    kind = args.get("kind", "")
    mine = args.get("mine") == "1"
    stmt = requests_query(
        actor,
        text=(args.get("q") or "").strip() or None,
        status=status if status in CHANGE_REQUEST_STATUSES else None,
        kind=kind if kind in CHANGE_REQUEST_KINDS else None,
        mine=mine,
    )
    page = paginate(
        session,
        stmt,
        sortable={"requested_at": ReviewChangeRequest.requested_at, "status": ReviewChangeRequest.status},
        default_sort="-requested_at",
        endpoint="review.review_changes.list_requests",
        args=query_args(*_FILTERS),
        tie_breaker=ReviewChangeRequest.id,
    )
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({r.order_id for r in page.rows})))}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_({r.requested_by_id for r in page.rows})))}
    return render_template(
        "review/changes/list.html",
        page=page,
        orders=orders,
        people=people,
        filters={"q": args.get("q", ""), "status": status, "kind": kind, "mine": mine},
        statuses=[(k, _(v)) for k, v in CHANGE_REQUEST_STATUSES.items()],
        kinds=[(k, _(v)) for k, v in CHANGE_REQUEST_KINDS.items()],
        **_labels(),
    )


# --- the request form ----------------------------------------------------------------------------


def _form_values(order: Order) -> dict[str, str]:
    """The form's values for a new request on ``order``: the order as it stands."""
    registry, session = ordo().registry, db()
    values: dict[str, str] = {
        "kind": "change",
        "reason": "",
        "scope": "",
        "requested_date": order.requested_date.isoformat() if order.requested_date else "",
        "specification": "",
        "expected_days": "",
        "new_delivery_date": "",
        "rewind_to": changes.default_rewind(registry, session, order),
    }
    for key in SHIP_TO_LABELS:
        values[f"ship_to-{key}"] = getattr(order, f"ship_to_{key}")
    for index, line in enumerate(order.lines):
        values[f"lines-{index}-line_id"] = str(line.id)
        values[f"lines-{index}-quantity"] = plain_number(line.quantity)
        values[f"lines-{index}-unit_price"] = plain_number(line.unit_price)
        values[f"lines-{index}-description"] = line.description
    return values


def _posted(order: Order) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted form as the service takes it, and the values to show again."""
    form = request.form
    values = {key: value.strip() for key, value in form.items() if key != "csrf_token"}
    lines: list[dict[str, Any]] = []
    for index in range(len(order.lines) + NEW_ROWS):
        prefix = f"lines-{index}-"
        row: dict[str, Any] = {
            name: values.get(prefix + name, "") for name in ("line_id", "product", "quantity", "unit_price")
        }
        row["description"] = values.get(prefix + "description", "")
        if index < len(order.lines):
            row["line_id"] = str(order.lines[index].id)
            row["remove"] = f"{prefix}remove" in form
            if not row["description"]:
                row.pop("description")
            lines.append(row)
        elif any(row[k] for k in ("product", "quantity", "unit_price", "description")):
            row.pop("line_id")
            lines.append(row)
        else:
            lines.append({})  # keeps the row numbers of the errors in step with the form
    impact = {key.removeprefix("impact-"): value for key, value in values.items() if key.startswith("impact-")}
    data = {
        "kind": values.get("kind", "change"),
        "reason": values.get("reason", ""),
        "scope": values.get("scope", ""),
        "content": {
            "lines": lines,
            "requested_date": values.get("requested_date", ""),
            "ship_to": {key: values.get(f"ship_to-{key}", "") for key in SHIP_TO_LABELS},
            "specification": values.get("specification", ""),
        },
        "impact": impact,
        "expected_days": values.get("expected_days", ""),
        "new_delivery_date": values.get("new_delivery_date", ""),
        "rewind_to": values.get("rewind_to", ""),
    }
    return data, values


def _render_form(order: Order, values: dict[str, str], errors: FieldErrors, status: int = 200) -> tuple[str, int]:
    session, registry = db(), ordo().registry
    products = list(session.scalars(select(Product).where(Product.active.is_(True)).order_by(Product.sku)))
    pipeline = [s for s in Workflow(registry, session).pipeline() if s.position > 0]
    return (
        render_template(
            "review/changes/form.html",
            order=order,
            values=values,
            errors=errors,
            products=products,
            steps=pipeline,
            rewind_steps=changes.rewind_choices(registry, session, order),
            new_rows=range(len(order.lines), len(order.lines) + NEW_ROWS),
            ship_to_labels={k: _(v) for k, v in SHIP_TO_LABELS.items()},
            **_labels(),
        ),
        status,
    )


def _refusal(exc: ReviewError) -> FieldErrors:
    """A service refusal as the form shows it: beside the fields, or as a general message."""
    errors = field_errors(exc.details, groups=("lines",)) if exc.details else FieldErrors()
    if not exc.details or exc.code != "invalid":
        errors.general.append(exc.localized())
    return errors


@bp.route("/orders/<int:order_id>/changes/new", methods=["GET", "POST"])
@permission_required(flow.CHANGES_REQUEST)
def new_request(order_id: int) -> Any:
    """The change / cancellation request form (订单变更申请表) for one order."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    if order.status not in changes.REQUESTABLE:
        flash(
            _(
                "Order %(number)s is %(status)s: no change request can be filed.",
                number=order.number,
                status=status_label(order.status),
            ),
            "warning",
        )
        return redirect(url_for("orders.view_order", order_id=order.id))
    if request.method == "GET":
        values = _form_values(order)
        if request.args.get("kind") in CHANGE_REQUEST_KINDS:
            values["kind"] = request.args["kind"]
        return _render_form(order, values, FieldErrors())
    data, values = _posted(order)
    try:
        filed = changes.file_request(session, ordo().registry, actor, order, data)
    except ReviewError as exc:
        session.rollback()
        abort_for(exc)
        return _render_form(_order(order_id), values, _refusal(exc), status=exc.status)
    session.commit()
    flash(
        _("Change request %(number)s of order %(order)s was filed.", number=filed.number, order=order.number),
        "success",
    )
    return redirect(url_for(".view_request", request_id=filed.id))


# --- one request --------------------------------------------------------------------------------


def _revision_pair(session: Any, change: ReviewChangeRequest) -> tuple[int, int] | None:
    """The revision numbers before and after an approved change, for the diff link."""
    if change.revision_id is None:
        return None
    made = session.get(ReviewOrderRevision, change.revision_id)
    return (made.number - 1, made.number) if made is not None and made.number > 1 else None


@bp.get("/changes/<int:request_id>")
@permission_required(flow.READ)
def view_request(request_id: int) -> str:
    """One change request: content, impact, assessments, decision, and the forms the user may use."""
    session, actor = db(), current_actor()
    change, order = _request(request_id)
    people_ids = {change.requested_by_id, change.decided_by_id, *(a.assessed_by_id for a in change.assessments)}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids - {None})))}
    mine = [
        a
        for a in change.assessments
        if change.status == "assessing" and not a.verdict and changes.is_member(actor, a.department)
    ]
    ready = change.status == "pending_approval" or (
        change.status == "assessing" and all(a.verdict for a in change.assessments)
    )
    return render_template(
        "review/changes/view.html",
        change=change,
        order=order,
        people=people,
        items=changes.change_items(change),
        mine=mine,
        can_decide=ready and actor.can(flow.CHANGES_APPROVE),
        can_withdraw=change.status in changes.OPEN_STATUSES
        and (change.requested_by_id == actor.id or actor.can(flow.CHANGES_APPROVE)),
        revision_pair=_revision_pair(session, change),
        **_labels(),
    )


def _done(change: ReviewChangeRequest, message: str) -> Response:
    db().commit()
    flash(message, "success")
    return redirect(url_for(".view_request", request_id=change.id))


def _refused(change_id: int, exc: ReviewError) -> Response:
    db().rollback()
    abort_for(exc)
    messages = [exc.localized()]
    if exc.details:
        messages += [m for ms in field_errors(exc.details).fields.values() for m in ms]
    for message in messages:
        flash(message, "danger")
    return redirect(url_for(".view_request", request_id=change_id))


@bp.post("/changes/<int:request_id>/assess")
@permission_required(flow.DECIDE)
def assess(request_id: int) -> Response:
    """Record the user's department's assessment."""
    change = _request(request_id)[0]
    department = request.form.get("department_id", "")
    try:
        changes.assess(
            db(),
            current_actor(),
            change,
            verdict=request.form.get("verdict", ""),
            comment=request.form.get("comment", ""),
            department_id=int(department) if department.isdigit() else None,
        )
    except ReviewError as exc:
        return _refused(change.id, exc)
    return _done(change, _("Your assessment of change request %(number)s was recorded.", number=change.number))


@bp.post("/changes/<int:request_id>/decide")
@permission_required(flow.CHANGES_APPROVE)
def decide(request_id: int) -> Response:
    """Approve or reject the request (approval revises or cancels the order)."""
    change, order = _request(request_id)
    approve = request.form.get("decision") == "approve"
    try:
        changes.decide(
            db(), ordo().registry, current_actor(), change, approve=approve, reason=request.form.get("reason", "")
        )
    except ReviewError as exc:
        return _refused(change.id, exc)
    except ServiceError as exc:  # the revised order refused by core (e.g. amounts too large)
        db().rollback()
        abort_for(exc)
        flash(exc.message, "danger")
        return redirect(url_for(".view_request", request_id=change.id))
    if not approve:
        return _done(change, _("Change request %(number)s was rejected.", number=change.number))
    if change.kind == "cancel":
        return _done(change, _("Order %(order)s was cancelled as requested.", order=order.number))
    return _done(
        change,
        _(
            "Change request %(number)s was approved: order %(order)s was revised and is now at step “%(step)s”.",
            number=change.number,
            order=order.number,
            step=step_label(order.step),
        ),
    )


@bp.post("/changes/<int:request_id>/withdraw")
@permission_required(flow.READ)
def withdraw(request_id: int) -> Response:
    """Withdraw an open request (requester or approver), with a reason."""
    change = _request(request_id)[0]
    try:
        changes.withdraw(db(), current_actor(), change, reason=request.form.get("reason", ""))
    except ReviewError as exc:
        return _refused(change.id, exc)
    return _done(change, _("Change request %(number)s was withdrawn.", number=change.number))


# --- revisions ------------------------------------------------------------------------------------


def _line_labels(*snapshots: dict[str, Any]) -> dict[str, str]:
    """``lines.<id>`` → ``#position SKU`` over the given snapshots."""
    labels: dict[str, str] = {}
    for snap in snapshots:
        for line in snap.get("lines", []):
            labels[f"lines.{line['id']}"] = f"#{line.get('position', '')} {line.get('product', '')}"
    return labels


@bp.get("/orders/<int:order_id>/revisions")
@permission_required(flow.READ)
def order_revisions(order_id: int) -> str:
    """An order's revisions and the differences between two of them (default: the last two)."""
    session = db()
    order = _order(order_id)
    kept = revisions.revisions_of(session, order.id)
    numbers = [r.number for r in kept]
    by_number = {r.number: r for r in kept}

    def chosen(name: str, default: int | None) -> int | None:
        raw = request.args.get(name, "")
        return int(raw) if raw.isdigit() and int(raw) in by_number else default

    b = chosen("b", numbers[-1] if numbers else None)
    a = chosen("a", numbers[-2] if len(numbers) > 1 else None)
    differences: list[revisions.Difference] = []
    line_labels: dict[str, str] = {}
    if a is not None and b is not None:
        first, second = by_number[a].snapshot, by_number[b].snapshot
        differences = revisions.diff(first, second)
        line_labels = _line_labels(first, second)
    requests = list(
        session.scalars(
            select(ReviewChangeRequest)
            .where(ReviewChangeRequest.order_id == order.id)
            .options(selectinload(ReviewChangeRequest.assessments))
            .order_by(ReviewChangeRequest.number)
        )
    )
    made_by = {r.revision_id: r for r in requests if r.revision_id is not None}
    people_ids = {r.created_by_id for r in kept} | {r.requested_by_id for r in requests}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids - {None})))}
    count = session.scalar(
        select(func.count()).select_from(ReviewChangeRequest).where(ReviewChangeRequest.order_id == order.id)
    )
    return render_template(
        "review/changes/revisions.html",
        order=order,
        revisions=kept,
        a=a,
        b=b,
        differences=differences,
        line_labels=line_labels,
        requests=requests,
        made_by=made_by,
        people=people,
        request_count=count or 0,
        can_request=current_actor().can(flow.CHANGES_REQUEST) and order.status in changes.REQUESTABLE,
        **_labels(),
    )

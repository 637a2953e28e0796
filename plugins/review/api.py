"""API: review tasks and verdicts, sheets, quotations and change requests (``/api/v1/review``).

Other systems and scripts do here what the review screens do: a department reviewer
lists their tasks and gives verdicts (RV-1), sales reads the review sheet (订单评审表),
negotiates (RV-4) and keeps the quotation (报价单), the exception roles grant credit
exceptions (RV-7) and confirmed orders change through change requests (订单变更申请表,
RV-8). The endpoints are thin: the service modules (``sheets``, ``quotation``,
``changes``, ``credit``) check permissions, validate and move the order; here bodies
are read, the data scope applied and answers shaped. Errors answer like core's
(``core.api``): 404 for a record that does not exist *or* belongs to an order outside
the caller's data scope (CORE-4; checked first, so existence never leaks), then 403
without the permission, 409 for a state that forbids the change, 422 with per-field
``details``; a refused request changes nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.clock import company_now
from core.labels import N_
from core.models import Order, User
from core.security.fields import hides_person
from core.services import NotFound
from core.services.orders import get_order
from core.web import db, ordo
from plugins.review import changes, credit, quotation, sheets
from plugins.review.errors import ReviewError
from plugins.review.figures import FIGURES
from plugins.review.flow import (
    CHANGES_APPROVE,
    CHANGES_REQUEST,
    CONSOLIDATE,
    CREDIT_EXCEPTION,
    DECIDE,
    MARGINS_READ,
    QUOTATION_MANAGE,
    READ,
)
from plugins.review.models import (
    CHANGE_REQUEST_KINDS,
    TASK_STATUSES,
    VERDICTS,
    ReviewChangeRequest,
    ReviewCreditHold,
    ReviewDepartment,
    ReviewNegotiation,
    ReviewQuotation,
    ReviewSheet,
    ReviewTask,
)

blp = Blueprint(
    "review_api",
    __name__,
    url_prefix="/api/v1/review",
    description="Review (订单评审): department tasks and verdicts, review sheets, quotations, change requests.",
)
blp.before_request(require_api_user)

#: Figure types that are costs or margins: shown only with ``review.margins.read``
#: (and to the department that gave them).
MONEY_FIGURES = ("money", "percent")
#: ``status`` of the task list that lists every task.
ALL = "all"


# --------------------------------------------------------------------------- schemas


class ReviewPersonSchema(Schema):
    """Who did something (a portal user sees the supplier's staff as id null, "staff")."""

    id = fields.Integer(required=True, allow_none=True)
    name = fields.String(required=True)


class ReviewOrderRefSchema(Schema):
    """The order a record belongs to: where it stands now."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    step = fields.String(required=True)
    status = fields.String(required=True)
    total = fields.Decimal(as_string=True, required=True)
    currency = fields.String(required=True)
    customer_code = fields.String(required=True)
    customer_name = fields.String(required=True)


class ReviewDepartmentSchema(Schema):
    """A reviewing department (技术部, 生产部, 品质部, 采购部, 财务部 …)."""

    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    name_zh = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "Which figures its verdicts carry."})
    escalating = fields.Boolean(
        required=True, metadata={"description": "A reject sends the order to the president (RV-3)."}
    )


class ReviewVerdictSchema(Schema):
    """A verdict given on a task, with the department's figures (costs and margins need `review.margins.read`)."""

    id = fields.Integer(required=True)
    verdict = fields.String(required=True, metadata={"description": "approve, approve_with_conditions or reject."})
    comment = fields.String(required=True)
    conditions = fields.String(required=True)
    figures = fields.Dict(required=True, metadata={"description": "The department's figures, by name."})
    proposed_date = fields.Date(required=True, allow_none=True)
    decided_by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    decided_at = fields.DateTime(required=True)


class ReviewTaskSchema(Schema):
    """A department's task on a review sheet, with every verdict given on it (oldest first)."""

    id = fields.Integer(required=True)
    sheet_id = fields.Integer(required=True)
    round = fields.Integer(required=True)
    order = fields.Nested(ReviewOrderRefSchema, required=True)
    department = fields.Nested(ReviewDepartmentSchema, required=True)
    tier = fields.Integer(required=True, metadata={"description": "1: initial review; 2: committee re-review."})
    status = fields.String(required=True, metadata={"description": "open, answered or withdrawn."})
    verdict = fields.String(required=True, metadata={"description": "The latest verdict; empty while unanswered."})
    opened_at = fields.DateTime(required=True)
    answered_at = fields.DateTime(required=True, allow_none=True)
    due_date = fields.Date(required=True)
    overdue = fields.Boolean(required=True, metadata={"description": "Open after its due day."})
    verdicts = fields.List(fields.Nested(ReviewVerdictSchema), required=True)


class ReviewTaskListSchema(Schema):
    """Your departments' review tasks, most urgent first."""

    items = fields.List(fields.Nested(ReviewTaskSchema), required=True)


class ReviewTaskQuerySchema(Schema):
    """Which of your tasks to list."""

    status = fields.String(
        load_default="open",
        validate=validate.OneOf([*TASK_STATUSES, ALL]),
        metadata={"description": "open (default), answered, withdrawn or all."},
    )


class ReviewNegotiationSchema(Schema):
    """A change agreed with the customer during consolidation and the departments it re-opened."""

    id = fields.Integer(required=True)
    sheet_id = fields.Integer(required=True)
    changes = fields.Dict(required=True, metadata={"description": "`kinds` changed and each change, before/after."})
    reopened = fields.List(fields.String(), required=True, metadata={"description": "Department codes re-opened."})
    note = fields.String(required=True)
    by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    at = fields.DateTime(required=True)


class ReviewSheetSchema(Schema):
    """A review sheet (订单评审表): one review round of an order with its tasks and negotiations."""

    id = fields.Integer(required=True)
    order = fields.Nested(ReviewOrderRefSchema, required=True)
    round = fields.Integer(required=True)
    rounds = fields.List(fields.Integer(), required=True, metadata={"description": "Every round the order has."})
    template_id = fields.Integer(required=True, allow_none=True)
    two_tier = fields.Boolean(required=True)
    tier = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "open, complete, not_acceptable or closed."})
    outcome = fields.String(required=True, metadata={"description": "Once closed: approved, abandoned, requoted…"})
    amount = fields.Decimal(as_string=True, required=True)
    approver_role = fields.String(required=True)
    opened_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(required=True, allow_none=True)
    closed_at = fields.DateTime(required=True, allow_none=True)
    tasks = fields.List(fields.Nested(ReviewTaskSchema), required=True)
    negotiations = fields.List(fields.Nested(ReviewNegotiationSchema), required=True)


class ReviewSheetQuerySchema(Schema):
    """Which round's sheet to read."""

    round = fields.Integer(
        validate=validate.Range(min=1, max=10_000), metadata={"description": "The round (default: the latest)."}
    )


class ReviewVerdictInSchema(Schema):
    """Your department's verdict on a task; `figures` are your department kind's (see docs/review.md)."""

    verdict = fields.String(required=True, validate=validate.OneOf(list(VERDICTS)))
    comment = fields.String(load_default="", validate=validate.Length(max=2000))
    conditions = fields.String(load_default="", validate=validate.Length(max=2000))
    figures = fields.Dict(keys=fields.String(), load_default=dict)
    proposed_date = fields.Date(load_default=None, allow_none=True)


class ReviewNegotiationInSchema(Schema):
    """What sales agreed with the customer: new unit prices and quantities by line id, a new date."""

    unit_prices = fields.Dict(keys=fields.Integer(), values=fields.Decimal(), load_default=dict)
    quantities = fields.Dict(keys=fields.Integer(), values=fields.Decimal(), load_default=dict)
    requested_date = fields.Date(load_default=None, allow_none=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ReviewQuotationLineSchema(Schema):
    """A cost line: material, outsourcing, labour, overhead, freight, tax or expense."""

    kind = fields.String(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=200))
    amount = fields.Decimal(as_string=True, required=True)


class ReviewQuotationSchema(Schema):
    """A quotation (报价单); costs and margins are null without `review.margins.read`."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    sheet_id = fields.Integer(required=True, allow_none=True)
    number = fields.Integer(required=True)
    revenue = fields.Decimal(as_string=True, required=True)
    payment_terms = fields.String(required=True)
    note = fields.String(required=True)
    below_minimum = fields.Boolean(required=True, metadata={"description": "A margin is under its minimum."})
    margins_visible = fields.Boolean(required=True)
    cost = fields.Decimal(as_string=True, required=True, allow_none=True)
    taxes = fields.Decimal(as_string=True, required=True, allow_none=True)
    expenses = fields.Decimal(as_string=True, required=True, allow_none=True)
    gross_margin = fields.Decimal(as_string=True, required=True, allow_none=True)
    expense_ratio = fields.Decimal(as_string=True, required=True, allow_none=True)
    profit_margin = fields.Decimal(as_string=True, required=True, allow_none=True)
    lines = fields.List(
        fields.Nested(ReviewQuotationLineSchema),
        required=True,
        metadata={"description": "Empty for readers who neither prepare quotations nor read margins."},
    )
    created_at = fields.DateTime(required=True)


class ReviewQuotationInSchema(Schema):
    """The quotation's cost lines (they replace the present ones), payment terms and a note."""

    lines = fields.List(fields.Nested(ReviewQuotationLineSchema), required=True)
    payment_terms = fields.String(load_default="", validate=validate.Length(max=200))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ReviewAssessmentSchema(Schema):
    """An affected department's assessment of a change request ('' verdict: not yet)."""

    department = fields.Nested(ReviewDepartmentSchema, required=True)
    verdict = fields.String(required=True)
    comment = fields.String(required=True)
    assessed_by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    assessed_at = fields.DateTime(required=True, allow_none=True)


class ReviewChangeRequestSchema(Schema):
    """A change or cancellation request (订单变更申请表) and where it stands."""

    id = fields.Integer(required=True)
    order = fields.Nested(ReviewOrderRefSchema, required=True)
    number = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "change or cancel."})
    status = fields.String(
        required=True, metadata={"description": "assessing, pending_approval, approved, rejected or withdrawn."}
    )
    content = fields.Dict(required=True, metadata={"description": "The proposed values (lines, dates, address…)."})
    scope = fields.String(required=True)
    reason = fields.String(required=True)
    impact = fields.Dict(required=True, metadata={"description": "Step key → the expected impact on it."})
    expected_days = fields.Integer(required=True, allow_none=True)
    new_delivery_date = fields.Date(required=True, allow_none=True)
    rewind_to = fields.String(required=True)
    requested_by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    requested_at = fields.DateTime(required=True)
    decided_by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    decided_at = fields.DateTime(required=True, allow_none=True)
    decision_reason = fields.String(required=True)
    revision_id = fields.Integer(required=True, allow_none=True)
    assessments = fields.List(fields.Nested(ReviewAssessmentSchema), required=True)


class ReviewChangeRequestListSchema(Schema):
    """An order's change requests, oldest first."""

    items = fields.List(fields.Nested(ReviewChangeRequestSchema), required=True)


class ReviewChangeRequestInSchema(Schema):
    """A new change or cancellation request (validated by the service; see docs/review.md)."""

    kind = fields.String(load_default="change", validate=validate.OneOf(list(CHANGE_REQUEST_KINDS)))
    content = fields.Dict(
        metadata={"description": "What changes: `lines` [{id, quantity, unit_price}], `requested_date`, …"}
    )
    scope = fields.String()
    reason = fields.String(required=True)
    impact = fields.Dict(metadata={"description": "Step key → the expected impact on that step."})
    expected_days = fields.Integer(allow_none=True)
    new_delivery_date = fields.Date(allow_none=True)
    rewind_to = fields.String(metadata={"description": "The step the order goes back to on approval."})


class ReviewAssessmentInSchema(Schema):
    """Your department's assessment of a change request."""

    verdict = fields.String(required=True, validate=validate.OneOf(list(VERDICTS)))
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


class ReviewDecisionInSchema(Schema):
    """The approver's decision on a change request, with its reason."""

    approve = fields.Boolean(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


class ReviewCreditExceptionInSchema(Schema):
    """Why you grant the exception (kept on the credit hold)."""

    reason = fields.String(load_default="", validate=validate.Length(max=1000))


class ReviewCreditExceptionSchema(Schema):
    """One role's grant of a credit exception."""

    role_code = fields.String(required=True)
    granted_by = fields.Nested(ReviewPersonSchema, required=True, allow_none=True)
    reason = fields.String(required=True)
    granted_at = fields.DateTime(required=True)


class ReviewCreditHoldSchema(Schema):
    """A credit hold (RV-7): why the customer is not in good standing and the exceptions granted."""

    id = fields.Integer(required=True)
    order = fields.Nested(ReviewOrderRefSchema, required=True)
    reasons = fields.List(fields.String(), required=True)
    held_at = fields.DateTime(required=True)
    released_at = fields.DateTime(required=True, allow_none=True)
    outcome = fields.String(required=True, metadata={"description": "'' while held; cleared, exception, returned."})
    exceptions = fields.List(fields.Nested(ReviewCreditExceptionSchema), required=True)
    roles_still_to_grant = fields.List(fields.String(), required=True)


# --------------------------------------------------------------------------- helpers


def _load(schema: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` loaded by ``schema``; a 422 with per-field details when it does not fit."""
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as exc:
        raise ReviewError("invalid", N_("The request is not valid."), details=exc.messages) from None
    return loaded


def _plain(value: Any) -> Any:
    """``value`` with every JSON number (read as ``Decimal``) turned into its decimal string."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _require(user: User, permission: str) -> None:
    """Refuse (403) a user without ``permission``."""
    if not user.can(permission):
        raise ReviewError("forbidden", N_("You need the permission %(permission)s."), 403, permission=permission)


def _person(session: Session, viewer: User, user_id: int | None) -> dict[str, Any] | None:
    """``{id, name}`` of a user as ``viewer`` may see them."""
    person = session.get(User, user_id) if user_id is not None else None
    if person is None:
        return None
    if hides_person(viewer, person):
        return {"id": None, "name": "staff"}
    return {"id": person.id, "name": person.name}


def _order_ref(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "step": order.step,
        "status": order.status,
        "total": order.total,
        "currency": order.currency,
        "customer_code": order.customer.code,
        "customer_name": order.customer.name,
    }


def _department(department: ReviewDepartment) -> dict[str, Any]:
    return {
        "id": department.id,
        "code": department.code,
        "name": department.name,
        "name_zh": department.name_zh,
        "kind": department.kind,
        "escalating": department.escalating,
    }


def _is_member(user: User, department: ReviewDepartment) -> bool:
    """Whether ``user`` holds the department's reviewer role (gives its figures)."""
    return any(role.code == department.role_code for role in user.roles)


def _figures(viewer: User, department: ReviewDepartment, figures: dict[str, Any]) -> dict[str, Any]:
    """The figures ``viewer`` may read: costs and margins only with ``review.margins.read``
    or in the department that gave them."""
    if viewer.can(MARGINS_READ) or _is_member(viewer, department):
        return dict(figures)
    hidden = {f.name for f in FIGURES.get(department.kind, ()) if f.type in MONEY_FIGURES}
    return {name: value for name, value in figures.items() if name not in hidden}


def _task(session: Session, viewer: User, task: ReviewTask, order: Order) -> dict[str, Any]:
    today = company_now().date()
    return {
        "id": task.id,
        "sheet_id": task.sheet_id,
        "round": task.sheet.round,
        "order": _order_ref(order),
        "department": _department(task.department),
        "tier": task.tier,
        "status": task.status,
        "verdict": task.verdict,
        "opened_at": task.opened_at,
        "answered_at": task.answered_at,
        "due_date": task.due_date,
        "overdue": task.status == "open" and task.due_date < today,
        "verdicts": [
            {
                "id": verdict.id,
                "verdict": verdict.verdict,
                "comment": verdict.comment,
                "conditions": verdict.conditions,
                "figures": _figures(viewer, task.department, verdict.figures or {}),
                "proposed_date": verdict.proposed_date,
                "decided_by": _person(session, viewer, verdict.decided_by_id),
                "decided_at": verdict.decided_at,
            }
            for verdict in task.verdicts
        ],
    }


def _sheet(session: Session, viewer: User, sheet: ReviewSheet, order: Order) -> dict[str, Any]:
    negotiations = session.scalars(
        select(ReviewNegotiation).where(ReviewNegotiation.sheet_id == sheet.id).order_by(ReviewNegotiation.id)
    )
    rounds = session.scalars(
        select(ReviewSheet.round).where(ReviewSheet.order_id == order.id).order_by(ReviewSheet.round)
    )
    return {
        "id": sheet.id,
        "order": _order_ref(order),
        "round": sheet.round,
        "rounds": list(rounds),
        "template_id": sheet.template_id,
        "two_tier": sheet.two_tier,
        "tier": sheet.tier,
        "status": sheet.status,
        "outcome": sheet.outcome,
        "amount": sheet.amount,
        "approver_role": sheet.approver_role,
        "opened_at": sheet.opened_at,
        "completed_at": sheet.completed_at,
        "closed_at": sheet.closed_at,
        "tasks": [_task(session, viewer, task, order) for task in sheet.tasks],
        "negotiations": [_negotiation(session, viewer, n) for n in negotiations],
    }


def _negotiation(session: Session, viewer: User, negotiation: ReviewNegotiation) -> dict[str, Any]:
    return {
        "id": negotiation.id,
        "sheet_id": negotiation.sheet_id,
        "changes": negotiation.changes or {},
        "reopened": list(negotiation.reopened or []),
        "note": negotiation.note,
        "by": _person(session, viewer, negotiation.by_id),
        "at": negotiation.at,
    }


def _quotation(viewer: User, found: ReviewQuotation) -> dict[str, Any]:
    margins = viewer.can(MARGINS_READ)
    lines = margins or viewer.can(QUOTATION_MANAGE)
    return {
        "id": found.id,
        "order_id": found.order_id,
        "sheet_id": found.sheet_id,
        "number": found.number,
        "revenue": found.revenue,
        "payment_terms": found.payment_terms,
        "note": found.note,
        "below_minimum": found.below_minimum,
        "margins_visible": margins,
        "cost": found.cost if margins else None,
        "taxes": found.taxes if margins else None,
        "expenses": found.expenses if margins else None,
        "gross_margin": found.gross_margin if margins else None,
        "expense_ratio": found.expense_ratio if margins else None,
        "profit_margin": found.profit_margin if margins else None,
        "lines": (
            [{"kind": line.kind, "description": line.description, "amount": line.amount} for line in found.lines]
            if lines
            else []
        ),
        "created_at": found.created_at,
    }


def _change_request(session: Session, viewer: User, request: ReviewChangeRequest, order: Order) -> dict[str, Any]:
    return {
        "id": request.id,
        "order": _order_ref(order),
        "number": request.number,
        "kind": request.kind,
        "status": request.status,
        "content": request.content or {},
        "scope": request.scope,
        "reason": request.reason,
        "impact": request.impact or {},
        "expected_days": request.expected_days,
        "new_delivery_date": request.new_delivery_date,
        "rewind_to": request.rewind_to,
        "requested_by": _person(session, viewer, request.requested_by_id),
        "requested_at": request.requested_at,
        "decided_by": _person(session, viewer, request.decided_by_id),
        "decided_at": request.decided_at,
        "decision_reason": request.decision_reason,
        "revision_id": request.revision_id,
        "assessments": [
            {
                "department": _department(assessment.department),
                "verdict": assessment.verdict,
                "comment": assessment.comment,
                "assessed_by": _person(session, viewer, assessment.assessed_by_id),
                "assessed_at": assessment.assessed_at,
            }
            for assessment in request.assessments
        ],
    }


def _hold(session: Session, viewer: User, hold: ReviewCreditHold, order: Order) -> dict[str, Any]:
    return {
        "id": hold.id,
        "order": _order_ref(order),
        "reasons": list(hold.reasons or []),
        "held_at": hold.held_at,
        "released_at": hold.released_at,
        "outcome": hold.outcome,
        "exceptions": [
            {
                "role_code": grant.role_code,
                "granted_by": _person(session, viewer, grant.granted_by_id),
                "reason": grant.reason,
                "granted_at": grant.granted_at,
            }
            for grant in hold.exceptions
        ],
        "roles_still_to_grant": credit.roles_still_to_grant(session, hold) if not hold.outcome else [],
    }


def _visible_task(session: Session, user: User, task_id: int, *, for_update: bool = False) -> tuple[ReviewTask, Order]:
    """Task ``task_id`` and its order if ``user`` may see the order; 404 otherwise."""
    task = session.get(ReviewTask, task_id) if 0 < task_id < 2**63 else None
    if task is None:
        raise ReviewError("not_found", N_("Review task %(id)s was not found."), 404, id=task_id)
    try:
        order = get_order(session, user, task.sheet.order_id, for_update=for_update)
    except NotFound:
        raise ReviewError("not_found", N_("Review task %(id)s was not found."), 404, id=task_id) from None
    return task, order


def _visible_request(
    session: Session, user: User, request_id: int, *, for_update: bool = False
) -> tuple[ReviewChangeRequest, Order]:
    """Change request ``request_id`` and its order if ``user`` may see the order; 404 otherwise."""
    found = session.get(ReviewChangeRequest, request_id) if 0 < request_id < 2**63 else None
    if found is None:
        raise ReviewError("not_found", N_("Change request %(id)s was not found."), 404, id=request_id)
    try:
        order = get_order(session, user, found.order_id, for_update=for_update)
    except NotFound:
        raise ReviewError("not_found", N_("Change request %(id)s was not found."), 404, id=request_id) from None
    return found, order


# --------------------------------------------------------------------------- endpoints


@blp.route("/tasks", methods=["GET"])
@blp.arguments(ReviewTaskQuerySchema, location="query", unknown="raise")
@blp.response(200, ReviewTaskListSchema)
@errors(blp, 401, 403, 422)
def my_tasks(args: dict[str, Any]) -> dict[str, Any]:
    """List your departments' review tasks (`status`: open by default), most urgent first."""
    user, session = api_user(), db()
    _require(user, READ)
    status = None if args["status"] == ALL else args["status"]
    tasks = list(session.scalars(sheets.tasks_for(session, user, status=status)))
    order_ids = {task.sheet.order_id for task in tasks}
    orders = {order.id: order for order in session.scalars(select(Order).where(Order.id.in_(order_ids)))}
    return {"items": [_task(session, user, task, orders[task.sheet.order_id]) for task in tasks]}


@blp.route("/orders/<int:order_id>/sheet", methods=["GET"])
@blp.arguments(ReviewSheetQuerySchema, location="query", unknown="raise")
@blp.response(200, ReviewSheetSchema)
@errors(blp, 401, 403, 404, 422)
def order_sheet(args: dict[str, Any], order_id: int) -> dict[str, Any]:
    """Read the order's review sheet (the latest round, or `round`) with its tasks, verdicts and negotiations."""
    user, session = api_user(), db()
    order = get_order(session, user, order_id)
    _require(user, READ)
    stmt = select(ReviewSheet).where(ReviewSheet.order_id == order.id)
    if args.get("round") is not None:
        stmt = stmt.where(ReviewSheet.round == args["round"])
    sheet = session.scalar(stmt.order_by(ReviewSheet.round.desc()).limit(1))
    if sheet is None:
        raise ReviewError("not_found", N_("Order %(number)s has no such review sheet."), 404, number=order.number)
    return _sheet(session, user, sheet, order)


@blp.route("/tasks/<int:task_id>/verdict", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        ReviewVerdictInSchema,
        example={
            "verdict": "approve_with_conditions",
            "comment": "产能可满足",
            "conditions": "交期顺延一周",
            "figures": {"capacity_ok": True, "materials_ok": True, "completion_date": "2027-03-20"},
        },
    )
)
@blp.response(201, ReviewTaskSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def give_verdict(task_id: int) -> tuple[dict[str, Any], int]:
    """Give your department's verdict on a task; the last answer moves the order on (RV-1, RV-3)."""
    user, session = api_user(), db()
    values = _load(ReviewVerdictInSchema, read_json())
    task, order = _visible_task(session, user, task_id, for_update=True)
    _require(user, DECIDE)
    sheets.record_verdict(
        session,
        ordo().registry,
        user,
        task,
        verdict=values["verdict"],
        comment=values["comment"],
        conditions=values["conditions"],
        figures=_plain(values["figures"]),
        proposed_date=values["proposed_date"],
    )
    commit()
    task, order = _visible_task(session, user, task_id)
    return _task(session, user, task, order), 201


@blp.route("/orders/<int:order_id>/negotiation", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        ReviewNegotiationInSchema,
        example={"unit_prices": {"12": "1100.00"}, "requested_date": "2027-04-10", "note": "客户同意降价并延期"},
    )
)
@blp.response(201, ReviewNegotiationSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def negotiate(order_id: int) -> tuple[dict[str, Any], int]:
    """Record what sales agreed with the customer at consolidation; affected departments review again (RV-4)."""
    user, session = api_user(), db()
    values = _load(ReviewNegotiationInSchema, read_json())
    order = get_order(session, user, order_id, for_update=True)
    _require(user, CONSOLIDATE)
    negotiation = sheets.negotiate(
        session,
        ordo().registry,
        user,
        order,
        unit_prices=values["unit_prices"] or None,
        quantities=values["quantities"] or None,
        requested_date=values["requested_date"],
        note=values["note"],
    )
    negotiation_id = negotiation.id
    commit()
    found = session.get(ReviewNegotiation, negotiation_id)
    assert found is not None
    return _negotiation(session, user, found), 201


@blp.route("/orders/<int:order_id>/quotation")
class Quotation(MethodView):
    """The order's latest quotation (报价单)."""

    @blp.response(200, ReviewQuotationSchema)
    @errors(blp, 401, 403, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """Read the latest quotation; costs and margins only with `review.margins.read`."""
        user, session = api_user(), db()
        order = get_order(session, user, order_id)
        _require(user, READ)
        found = quotation.latest(session, order.id)
        if found is None:
            raise ReviewError("not_found", N_("Order %(number)s has no quotation yet."), 404, number=order.number)
        return _quotation(user, found)

    @blp.doc(
        requestBody=json_body(
            ReviewQuotationInSchema,
            example={
                "lines": [
                    {"kind": "material", "description": "钢材", "amount": "52000.00"},
                    {"kind": "labour", "description": "装配", "amount": "8000.00"},
                    {"kind": "tax", "description": "附加税", "amount": "1200.00"},
                ],
                "payment_terms": "30% 预付，发货后 60 天结清",
            },
        )
    )
    @blp.response(200, ReviewQuotationSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def put(self, order_id: int) -> dict[str, Any]:
        """Replace the latest quotation's cost lines; the margins are recomputed and flagged."""
        user, session = api_user(), db()
        values = _load(ReviewQuotationInSchema, read_json())
        order = get_order(session, user, order_id, for_update=True)
        _require(user, QUOTATION_MANAGE)
        found = quotation.save(
            session,
            user,
            order,
            lines=[dict(line) for line in values["lines"]],
            payment_terms=values["payment_terms"],
            note=values["note"],
        )
        quotation_id = found.id
        commit()
        saved = session.get(ReviewQuotation, quotation_id)
        assert saved is not None
        return _quotation(user, saved)


@blp.route("/orders/<int:order_id>/change-requests")
class OrderChangeRequests(MethodView):
    """An order's change and cancellation requests (订单变更申请表)."""

    @blp.response(200, ReviewChangeRequestListSchema)
    @errors(blp, 401, 403, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """List the order's change and cancellation requests, oldest first."""
        user, session = api_user(), db()
        order = get_order(session, user, order_id)
        _require(user, READ)
        found = session.scalars(
            select(ReviewChangeRequest)
            .where(ReviewChangeRequest.order_id == order.id)
            .order_by(ReviewChangeRequest.number)
        )
        return {"items": [_change_request(session, user, request, order) for request in found]}

    @blp.doc(
        requestBody=json_body(
            ReviewChangeRequestInSchema,
            example={
                "kind": "change",
                "content": {"lines": [{"id": 12, "quantity": "30"}], "requested_date": "2027-05-20"},
                "reason": "客户追加数量",
                "impact": {"review.department_review": "生产部重新评审产能"},
                "expected_days": 3,
                "new_delivery_date": "2027-05-20",
                "rewind_to": "review.department_review",
            },
        )
    )
    @blp.response(201, ReviewChangeRequestSchema, headers={"Location": {"schema": {"type": "string"}}})
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def post(self, order_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
        """File a change or cancellation request; the affected departments assess it (RV-8)."""
        user, session = api_user(), db()
        body = _plain(read_json())
        order = get_order(session, user, order_id, for_update=True)
        _require(user, CHANGES_REQUEST)
        filed = changes.file_request(session, ordo().registry, user, order, body)
        request_id = filed.id
        commit()
        found, order = _visible_request(session, user, request_id)
        location = url_for(".ChangeRequestItem", request_id=request_id)
        return _change_request(session, user, found, order), 201, {"Location": location}


@blp.route("/change-requests/<int:request_id>")
class ChangeRequestItem(MethodView):
    """One change request."""

    @blp.response(200, ReviewChangeRequestSchema)
    @errors(blp, 401, 403, 404)
    def get(self, request_id: int) -> dict[str, Any]:
        """Read a change request with its assessments and decision."""
        user, session = api_user(), db()
        found, order = _visible_request(session, user, request_id)
        _require(user, READ)
        return _change_request(session, user, found, order)


@blp.route("/change-requests/<int:request_id>/assessment", methods=["POST"])
@blp.doc(
    requestBody=json_body(ReviewAssessmentInSchema, example={"verdict": "approve", "comment": "可在 5 月 15 日前完成"})
)
@blp.response(200, ReviewChangeRequestSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def assess_change_request(request_id: int) -> dict[str, Any]:
    """Give your department's assessment of a change request."""
    user, session = api_user(), db()
    values = _load(ReviewAssessmentInSchema, read_json())
    found, order = _visible_request(session, user, request_id, for_update=True)
    _require(user, DECIDE)
    changes.assess(session, user, found, verdict=values["verdict"], comment=values["comment"])
    commit()
    found, order = _visible_request(session, user, request_id)
    return _change_request(session, user, found, order)


@blp.route("/change-requests/<int:request_id>/decision", methods=["POST"])
@blp.doc(requestBody=json_body(ReviewDecisionInSchema, example={"approve": True, "reason": "各部门评估可行"}))
@blp.response(200, ReviewChangeRequestSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def decide_change_request(request_id: int) -> dict[str, Any]:
    """Approve (the order is revised or cancelled, and rewound) or reject a change request."""
    user, session = api_user(), db()
    values = _load(ReviewDecisionInSchema, read_json())
    found, order = _visible_request(session, user, request_id, for_update=True)
    _require(user, CHANGES_APPROVE)
    changes.decide(session, ordo().registry, user, found, approve=values["approve"], reason=values["reason"])
    commit()
    found, order = _visible_request(session, user, request_id)
    return _change_request(session, user, found, order)


@blp.route("/orders/<int:order_id>/credit-exception", methods=["POST"])
@blp.doc(requestBody=json_body(ReviewCreditExceptionInSchema, example={"reason": "客户已承诺月底前结清欠款"}))
@blp.response(200, ReviewCreditHoldSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def grant_credit_exception(order_id: int) -> dict[str, Any]:
    """Grant a credit exception for one of your named roles; when all have granted the order goes on (RV-7)."""
    user, session = api_user(), db()
    values = _load(ReviewCreditExceptionInSchema, read_json())
    order = get_order(session, user, order_id, for_update=True)
    _require(user, CREDIT_EXCEPTION)
    hold = credit.grant_exception(session, ordo().registry, user, order, values["reason"])
    hold_id = hold.id
    commit()
    found = session.get(ReviewCreditHold, hold_id)
    assert found is not None
    return _hold(session, user, found, get_order(session, user, order_id))

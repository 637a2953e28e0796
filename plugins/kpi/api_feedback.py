"""API: satisfaction surveys, complaints (客诉) and follow-up visits (客户回访) — KP-2, KP-6.

``/api/v1/kpi``: list and record complaints, assign or reschedule them, resolve them
with resolution and root cause; list, plan and record visits; list surveys, send an
order's survey by hand, and — for the customer's portal user — answer a survey with the
token of its invitation. The services in :mod:`plugins.kpi.feedback` and
:mod:`plugins.kpi.surveys` check permissions, scope and input; here bodies are read and
answers shaped. 404 unknown or out of scope, 403 without the permission, 409 for a
state (resolved, answered), 410 for an expired survey, 422 with ``details`` for bad
input; a refusal changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.labels import N_
from core.models import Customer, Order, User
from core.schemas import MAX_ID
from core.security.scopes import order_scope
from core.web import db
from plugins.kpi import feedback, flow, surveys
from plugins.kpi.errors import KpiError
from plugins.kpi.models import (
    COMPLAINT_STATUSES,
    SURVEY_KINDS,
    VISIT_KINDS,
    VISIT_STATUSES,
    KpiComplaint,
    KpiSurvey,
    KpiVisit,
)

blp = Blueprint(
    "kpi_api_feedback", __name__, url_prefix="/api/v1/kpi", description="KPI: surveys, complaints and visits."
)
blp.before_request(require_api_user)

INVALID = N_("The request is not valid.")
MAX_LIMIT = 200


# --------------------------------------------------------------------------- schemas


class KpiComplaintSchema(Schema):
    """A customer complaint (客诉)."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    order_number = fields.String(allow_none=True, required=True)
    received_at = fields.DateTime(required=True)
    category = fields.String(required=True, metadata={"description": ", ".join(feedback.COMPLAINT_CATEGORIES)})
    description = fields.String(required=True)
    owner_id = fields.Integer(allow_none=True, required=True)
    due_date = fields.Date(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(COMPLAINT_STATUSES)})
    resolution = fields.String(required=True)
    root_cause = fields.String(required=True)
    resolved_at = fields.DateTime(allow_none=True, required=True)


class KpiComplaintListSchema(Schema):
    """A page of complaints, newest first."""

    items = fields.List(fields.Nested(KpiComplaintSchema), required=True)
    total = fields.Integer(required=True)


class KpiListQuerySchema(Schema):
    """Filters and paging of a feedback list."""

    status = fields.String()
    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    owner_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10**9))


class KpiComplaintInSchema(Schema):
    """A complaint to record."""

    customer_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    description = fields.String(required=True)
    order_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    category = fields.String(load_default="")
    owner_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    due_date = fields.Date(load_default=None, allow_none=True)
    received_at = fields.AwareDateTime(load_default=None, allow_none=True)


class KpiComplaintPatchSchema(Schema):
    """What to change on an open complaint (any of)."""

    owner_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    due_date = fields.Date()
    status = fields.String(validate=validate.OneOf(["open", "in_progress"]))
    category = fields.String()


class KpiResolveInSchema(Schema):
    """How the complaint was resolved and why it happened."""

    resolution = fields.String(required=True)
    root_cause = fields.String(required=True)


class KpiVisitSchema(Schema):
    """A follow-up visit (客户回访)."""

    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    kind = fields.String(required=True, metadata={"description": ", ".join(VISIT_KINDS)})
    owner_id = fields.Integer(allow_none=True, required=True)
    due_date = fields.Date(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(VISIT_STATUSES)})
    purpose = fields.String(required=True)
    outcome = fields.String(required=True)
    issue = fields.String(required=True)
    root_cause = fields.String(required=True)
    done_at = fields.DateTime(allow_none=True, required=True)


class KpiVisitListSchema(Schema):
    """A page of visits, latest date first."""

    items = fields.List(fields.Nested(KpiVisitSchema), required=True)
    total = fields.Integer(required=True)


class KpiVisitInSchema(Schema):
    """A visit to plan."""

    customer_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    due_date = fields.Date(required=True)
    kind = fields.String(load_default="phone")
    owner_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    order_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    purpose = fields.String(load_default="")


class KpiVisitDoneSchema(Schema):
    """The visit's outcome, and any issue it surfaced with its root cause."""

    outcome = fields.String(required=True)
    issue = fields.String(load_default="")
    root_cause = fields.String(load_default="")


class KpiSurveySchema(Schema):
    """A satisfaction survey sent (the token is never shown: only the customer's invitation has it)."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": ", ".join(SURVEY_KINDS)})
    customer_id = fields.Integer(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    sent_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True, required=True)
    answered_at = fields.DateTime(allow_none=True, required=True)
    score = fields.Decimal(as_string=True, allow_none=True, required=True, metadata={"description": "Mean, 1–5."})
    answers = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    comment = fields.String(required=True)


class KpiSurveyListSchema(Schema):
    """A page of surveys, newest first."""

    items = fields.List(fields.Nested(KpiSurveySchema), required=True)
    total = fields.Integer(required=True)


class KpiSurveyQuerySchema(KpiListQuerySchema):
    """Which surveys to list."""

    kind = fields.String(validate=validate.OneOf(list(SURVEY_KINDS)))
    answered = fields.Boolean()


class KpiSurveyInSchema(Schema):
    """The order whose survey to send."""

    order_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))


class KpiAnswerInSchema(Schema):
    """A customer's answers: the invitation's token, a 1–5 score per question, a comment."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=200))
    scores = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    comment = fields.String(load_default="")


# --------------------------------------------------------------------------- helpers


def _load(schema: type[Schema], body: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(body, partial=partial)
    except ValidationError as exc:
        raise KpiError("invalid", INVALID, 422, details=exc.messages) from None
    return loaded


def _require(user: User, permission: str) -> None:
    if not user.can(permission):
        raise KpiError("forbidden", feedback.FORBIDDEN, 403, permission=permission)


def _code(customer_id: int) -> str:
    customer = db().get(Customer, customer_id)
    return customer.code if customer is not None else ""


def complaint_dict(complaint: KpiComplaint) -> dict[str, Any]:
    """A complaint as the API shows it."""
    order = (
        db().scalar(select(Order).where(Order.id == complaint.order_id, order_scope(api_user())))
        if complaint.order_id
        else None
    )
    return {
        "id": complaint.id,
        "number": complaint.number,
        "customer_id": complaint.customer_id,
        "customer_code": _code(complaint.customer_id),
        "order_id": complaint.order_id,
        "order_number": order.number if order is not None else None,
        "received_at": complaint.received_at,
        "category": complaint.category,
        "description": complaint.description,
        "owner_id": complaint.owner_id,
        "due_date": complaint.due_date,
        "status": complaint.status,
        "resolution": complaint.resolution,
        "root_cause": complaint.root_cause,
        "resolved_at": complaint.resolved_at,
    }


def visit_dict(visit: KpiVisit) -> dict[str, Any]:
    """A visit as the API shows it."""
    return {
        "id": visit.id,
        "customer_id": visit.customer_id,
        "customer_code": _code(visit.customer_id),
        "order_id": visit.order_id,
        "kind": visit.kind,
        "owner_id": visit.owner_id,
        "due_date": visit.due_date,
        "status": visit.status,
        "purpose": visit.purpose,
        "outcome": visit.outcome,
        "issue": visit.issue,
        "root_cause": visit.root_cause,
        "done_at": visit.done_at,
    }


def survey_dict(survey: KpiSurvey) -> dict[str, Any]:
    """A survey as the API shows it (never its token)."""
    return {
        "id": survey.id,
        "kind": survey.kind,
        "customer_id": survey.customer_id,
        "order_id": survey.order_id,
        "sent_at": survey.sent_at,
        "expires_at": survey.expires_at,
        "answered_at": survey.answered_at,
        "score": survey.score,
        "answers": {answer.question: answer.score for answer in survey.answers},
        "comment": survey.comment,
    }


def _page(stmt: Any, order: Any, args: dict[str, Any]) -> tuple[list[Any], int]:
    from sqlalchemy import func

    session = db()
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(stmt.order_by(*order).offset(args["offset"]).limit(args["limit"])))
    return rows, total


# --------------------------------------------------------------------------- complaints


@blp.route("/complaints", methods=["GET"])
@blp.arguments(KpiListQuerySchema, location="query", unknown="raise")
@blp.response(200, KpiComplaintListSchema)
@errors(blp, 401, 403, 422)
def list_complaints(args: dict[str, Any]) -> dict[str, Any]:
    """Complaints in your data scope (through their order or customer), newest first; filter them."""
    user = api_user()
    _require(user, flow.FEEDBACK_READ)
    stmt = select(KpiComplaint).where(feedback.complaint_scope(user))
    if args.get("status"):
        stmt = stmt.where(KpiComplaint.status == args["status"])
    if args.get("customer_id"):
        stmt = stmt.where(KpiComplaint.customer_id == args["customer_id"])
    if args.get("owner_id"):
        stmt = stmt.where(KpiComplaint.owner_id == args["owner_id"])
    rows, total = _page(stmt, (KpiComplaint.received_at.desc(), KpiComplaint.id.desc()), args)
    return {"items": [complaint_dict(c) for c in rows], "total": total}


@blp.route("/complaints", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        KpiComplaintInSchema,
        example={
            "customer_id": 1,
            "order_id": 12,
            "category": "delivery",
            "description": "两台减速电机外包装破损",
            "owner_id": 5,
        },
    )
)
@blp.response(201, KpiComplaintSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def create_complaint() -> tuple[dict[str, Any], int]:
    """Record a complaint (``kpi.feedback.manage``); due date defaults to the setting's working days."""
    user, session = api_user(), db()
    values = _load(KpiComplaintInSchema, read_json())
    complaint = feedback.record_complaint(session, user, values.pop("customer_id"), values.pop("description"), **values)
    commit()
    return complaint_dict(session.get(KpiComplaint, complaint.id) or complaint), 201


@blp.route("/complaints/<int:complaint_id>", methods=["GET"])
@blp.response(200, KpiComplaintSchema)
@errors(blp, 401, 403, 404)
def get_complaint(complaint_id: int) -> dict[str, Any]:
    """One complaint."""
    return complaint_dict(feedback.get_complaint(db(), api_user(), complaint_id))


@blp.route("/complaints/<int:complaint_id>", methods=["PATCH"])
@blp.doc(requestBody=json_body(KpiComplaintPatchSchema, example={"owner_id": 5, "due_date": "2026-12-04"}))
@blp.response(200, KpiComplaintSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def patch_complaint(complaint_id: int) -> dict[str, Any]:
    """Assign an owner, move the due date, set in progress or recategorise an unresolved complaint."""
    user, session = api_user(), db()
    values = _load(KpiComplaintPatchSchema, read_json())
    complaint = feedback.update_complaint(session, user, complaint_id, **values)
    commit()
    return complaint_dict(session.get(KpiComplaint, complaint.id) or complaint)


@blp.route("/complaints/<int:complaint_id>/resolve", methods=["POST"])
@blp.doc(
    requestBody=json_body(KpiResolveInSchema, example={"resolution": "补发两台并致歉", "root_cause": "包装箱强度不足"})
)
@blp.response(200, KpiComplaintSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def resolve_complaint(complaint_id: int) -> dict[str, Any]:
    """Resolve a complaint with its resolution and root cause (both required)."""
    user, session = api_user(), db()
    values = _load(KpiResolveInSchema, read_json())
    complaint = feedback.resolve_complaint(session, user, complaint_id, values["resolution"], values["root_cause"])
    commit()
    return complaint_dict(session.get(KpiComplaint, complaint.id) or complaint)


# --------------------------------------------------------------------------- visits


@blp.route("/visits", methods=["GET"])
@blp.arguments(KpiListQuerySchema, location="query", unknown="raise")
@blp.response(200, KpiVisitListSchema)
@errors(blp, 401, 403, 422)
def list_visits(args: dict[str, Any]) -> dict[str, Any]:
    """Follow-up visits in your data scope, latest date first; filter by status, customer, owner."""
    user = api_user()
    _require(user, flow.FEEDBACK_READ)
    stmt = select(KpiVisit).where(feedback.visit_scope(user))
    if args.get("status"):
        stmt = stmt.where(KpiVisit.status == args["status"])
    if args.get("customer_id"):
        stmt = stmt.where(KpiVisit.customer_id == args["customer_id"])
    if args.get("owner_id"):
        stmt = stmt.where(KpiVisit.owner_id == args["owner_id"])
    rows, total = _page(stmt, (KpiVisit.due_date.desc(), KpiVisit.id.desc()), args)
    return {"items": [visit_dict(v) for v in rows], "total": total}


@blp.route("/visits", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        KpiVisitInSchema,
        example={"customer_id": 1, "due_date": "2026-12-10", "kind": "onsite", "purpose": "季度回访"},
    )
)
@blp.response(201, KpiVisitSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def create_visit() -> tuple[dict[str, Any], int]:
    """Plan a follow-up visit (``kpi.feedback.manage``); the owner defaults to you."""
    user, session = api_user(), db()
    values = _load(KpiVisitInSchema, read_json())
    visit = feedback.plan_visit(session, user, values.pop("customer_id"), values.pop("due_date"), **values)
    commit()
    return visit_dict(session.get(KpiVisit, visit.id) or visit), 201


@blp.route("/visits/<int:visit_id>/done", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        KpiVisitDoneSchema,
        example={"outcome": "客户对交期满意", "issue": "发票寄送慢", "root_cause": "快递月结流程"},
    )
)
@blp.response(200, KpiVisitSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def visit_done(visit_id: int) -> dict[str, Any]:
    """Record a planned visit as done with its outcome (required), issue and root cause."""
    user, session = api_user(), db()
    values = _load(KpiVisitDoneSchema, read_json())
    visit = feedback.record_visit(session, user, visit_id, values["outcome"], values["issue"], values["root_cause"])
    commit()
    return visit_dict(session.get(KpiVisit, visit.id) or visit)


# --------------------------------------------------------------------------- surveys


@blp.route("/surveys", methods=["GET"])
@blp.arguments(KpiSurveyQuerySchema, location="query", unknown="raise")
@blp.response(200, KpiSurveyListSchema)
@errors(blp, 401, 403, 422)
def list_surveys(args: dict[str, Any]) -> dict[str, Any]:
    """Surveys sent within your data scope, newest first; filter by kind, answered, customer."""
    user = api_user()
    _require(user, flow.FEEDBACK_READ)
    stmt = select(KpiSurvey).where(surveys.survey_scope(user))
    if args.get("kind"):
        stmt = stmt.where(KpiSurvey.kind == args["kind"])
    if "answered" in args:
        stmt = stmt.where(KpiSurvey.answered_at.is_not(None) if args["answered"] else KpiSurvey.answered_at.is_(None))
    if args.get("customer_id"):
        stmt = stmt.where(KpiSurvey.customer_id == args["customer_id"])
    rows, total = _page(stmt, (KpiSurvey.sent_at.desc(), KpiSurvey.id.desc()), args)
    return {"items": [survey_dict(s) for s in rows], "total": total}


@blp.route("/surveys", methods=["POST"])
@blp.doc(requestBody=json_body(KpiSurveyInSchema, example={"order_id": 12}))
@blp.response(201, KpiSurveySchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def send_survey() -> tuple[dict[str, Any], int]:
    """Send an order's survey by hand (delivered or completed orders, once per order)."""
    user, session = api_user(), db()
    values = _load(KpiSurveyInSchema, read_json())
    survey = surveys.send_survey_for(session, user, values["order_id"])
    commit()
    return survey_dict(session.get(KpiSurvey, survey.id) or survey), 201


@blp.route("/surveys/answers", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        KpiAnswerInSchema,
        example={
            "token": "<the token of the invitation link>",
            "scores": {"quality": 5, "delivery": 4, "service": 5, "value": 4},
            "comment": "交货及时",
        },
    )
)
@blp.response(200, KpiSurveySchema)
@errors(blp, 400, 401, 404, 409, 410, 415, 422)
def answer_survey() -> dict[str, Any]:
    """The customer's portal user answers a survey: 404 not theirs, 410 expired, 409 answered, 422 bad score."""
    user, session = api_user(), db()
    values = _load(KpiAnswerInSchema, read_json())
    survey = surveys.answer_survey(session, user, values["token"], values["scores"], values["comment"])
    commit()
    return survey_dict(session.get(KpiSurvey, survey.id) or survey)

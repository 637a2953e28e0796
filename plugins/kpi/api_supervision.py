"""API of supervision (KP-5): monthly samples, their checklists, findings to closure.

Endpoints under ``/api/v1/kpi``:

- ``GET /samples`` — samples, newest month first (keyset paging); ``POST /samples`` — draw
  a past month's sample now (``{"month": "2026-10", "size": 10}``);
- ``GET /samples/{id}`` — the sampled orders (in your scope) with their checklists;
- ``POST /checks/{id}`` — a verdict on one checklist point (``{"passed": false, "note": …}``);
- ``GET /findings`` (status, owner_id, overdue filters) and ``POST /findings``;
  ``GET /findings/{id}``; ``POST /findings/{id}/correct``, ``/close``, ``/reopen``.

The services check permission and scope: 404 unknown or out of scope, 403 without the
permission, 409 for a state that forbids the change, 422 for bad input (nothing changed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.schemas import MAX_ID
from core.services import ServiceError
from core.services.paging import decode_cursor, encode_cursor
from core.web import db
from plugins.kpi import supervision
from plugins.kpi.models import KpiCheck, KpiFinding, KpiSample

blp = Blueprint("kpi_api_supervision", __name__, url_prefix="/api/v1/kpi", description="KPI: supervision.")
blp.before_request(require_api_user)

SAMPLE_CURSOR = "kss"
FINDING_CURSOR = "kfi"


class CheckSchema(Schema):
    """One checklist point of a sampled order."""

    id = fields.Integer(required=True)
    item = fields.String(required=True, metadata={"description": "roles, sla, documents or data"})
    found = fields.List(fields.String(), required=True, metadata={"description": "What the system found (English)."})
    passed = fields.Boolean(allow_none=True, metadata={"description": "The verdict; null: not checked yet."})
    note = fields.String(required=True)


class SampleOrderSchema(Schema):
    """A sampled order and its checklist."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    order_number = fields.String(required=True)
    checked_at = fields.DateTime(allow_none=True)
    checks = fields.List(fields.Nested(CheckSchema), required=True)


class SampleSchema(Schema):
    """A month's sample."""

    id = fields.Integer(required=True)
    month = fields.String(required=True, metadata={"example": "2026-10"})
    size = fields.Integer(required=True)
    drawn_at = fields.DateTime(required=True)
    drawn_by_id = fields.Integer(allow_none=True, metadata={"description": "null: drawn by the monthly job."})
    checked = fields.Integer(required=True, metadata={"description": "Sampled orders fully checked."})
    failed = fields.Integer(required=True, metadata={"description": "Checklist points failed."})
    open_findings = fields.Integer(required=True)


class SampleDetailSchema(SampleSchema):
    """A sample with its orders (those in your data scope)."""

    orders = fields.List(fields.Nested(SampleOrderSchema), required=True)


class SamplePageSchema(Schema):
    """A page of samples."""

    items = fields.List(fields.Nested(SampleSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class SampleInputSchema(Schema):
    """The month to sample (past) and, optionally, how many orders."""

    month = fields.String(required=True, metadata={"example": "2026-10"})
    size = fields.Integer(metadata={"description": "1–500; default the setting kpi.supervision.sample_size."})


class CheckInputSchema(Schema):
    """A verdict; a failed point needs a note."""

    passed = fields.Boolean(required=True)
    note = fields.String()


class FindingSchema(Schema):
    """A supervision finding."""

    id = fields.Integer(required=True)
    sample_order_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    item = fields.String(required=True)
    description = fields.String(required=True)
    owner_id = fields.Integer(allow_none=True)
    due_date = fields.Date(required=True)
    status = fields.String(required=True, metadata={"description": "open, corrected or closed"})
    overdue = fields.Boolean(required=True)
    correction = fields.String(required=True)
    corrected_at = fields.DateTime(allow_none=True)
    closed_by_id = fields.Integer(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)


class FindingPageSchema(Schema):
    """A page of findings."""

    items = fields.List(fields.Nested(FindingSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class FindingQuerySchema(PageQuerySchema):
    """Which findings to list."""

    status = fields.String(validate=validate.OneOf(("open", "corrected", "closed")))
    owner_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    overdue = fields.Boolean(load_default=False, metadata={"description": "Only open findings past their deadline."})


class FindingInputSchema(Schema):
    """A finding to record."""

    sample_order_id = fields.Integer(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    item = fields.String(metadata={"description": "roles, sla, documents, data or empty"})
    description = fields.String(required=True)
    owner_id = fields.Integer(required=True)
    due_date = fields.Date(allow_none=True, metadata={"description": "Default: the correction days from today."})


class CorrectionInputSchema(Schema):
    """What was corrected."""

    correction = fields.String(required=True)


class CloseInputSchema(Schema):
    """An optional verification note."""

    note = fields.String()


class ReopenInputSchema(Schema):
    """Why the correction does not hold, and a new deadline."""

    reason = fields.String(required=True)
    due_date = fields.Date(allow_none=True)


# --- reading bodies ---------------------------------------------------------------------


def _invalid(field: str, why: str, message: str) -> ServiceError:
    return ServiceError("invalid", message, {field: [why]})


def _id(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    raw = body.get(name)
    if raw is None:
        if required:
            raise _invalid(name, "Required.", f"{name} is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ID:
        raise _invalid(name, "Give a positive whole number.", f"{name} is not an id")
    return raw


def _date(body: dict[str, Any], name: str) -> dt.date | None:
    raw = body.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise _invalid(name, "Give a date as YYYY-MM-DD.", f"{name} is not a date") from None


def _string(body: dict[str, Any], name: str) -> str:
    raw = body.get(name, "")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise _invalid(name, "Give text.", f"{name} is not text")
    return raw


def _month(body: dict[str, Any]) -> dt.date:
    raw = body.get("month")
    month = supervision.parse_month(raw) if isinstance(raw, str) else None
    if month is None:
        raise _invalid("month", "Give a month as YYYY-MM.", "month is not a month")
    return month


# --- answers ----------------------------------------------------------------------------


def _sample(sample: KpiSample, progress: supervision.SampleProgress) -> dict[str, Any]:
    return {
        "id": sample.id,
        "month": sample.month.strftime("%Y-%m"),
        "size": sample.size,
        "drawn_at": sample.drawn_at,
        "drawn_by_id": sample.drawn_by_id,
        "checked": progress.checked,
        "failed": progress.failed,
        "open_findings": progress.open_findings,
    }


def _check(check: KpiCheck) -> dict[str, Any]:
    return {
        "id": check.id,
        "item": check.item,
        "found": supervision.found_lines(check.found),
        "passed": check.passed,
        "note": check.note,
    }


def _finding(finding: KpiFinding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "sample_order_id": finding.sample_order_id,
        "order_id": finding.order_id,
        "item": finding.item,
        "description": finding.description,
        "owner_id": finding.owner_id,
        "due_date": finding.due_date,
        "status": finding.status,
        "overdue": supervision.is_overdue(finding),
        "correction": finding.correction,
        "corrected_at": finding.corrected_at,
        "closed_by_id": finding.closed_by_id,
        "closed_at": finding.closed_at,
        "created_by_id": finding.created_by_id,
        "created_at": finding.created_at,
    }


def _after(kind: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    after = decode_cursor(kind, cursor)
    if not after.isdigit():
        raise _invalid("cursor", "Use next_cursor as given.", "the cursor is not valid")
    return int(after)


# --- samples ----------------------------------------------------------------------------


@blp.route("/samples", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query", unknown="raise")
@blp.response(200, SamplePageSchema)
@errors(blp, 401, 403, 422)
def list_samples(args: dict[str, Any]) -> dict[str, Any]:
    """Monthly samples, newest first, each with its progress (``kpi.supervision.read``)."""
    user, session = api_user(), db()
    stmt = supervision.samples_query(user).order_by(None).order_by(KpiSample.id.desc())
    after = _after(SAMPLE_CURSOR, args.get("cursor"))
    if after is not None:
        stmt = stmt.where(KpiSample.id < after)
    limit = args["limit"]
    rows = list(session.scalars(stmt.limit(limit + 1)))
    progress = supervision.progress(session, [s.id for s in rows[:limit]])
    return {
        "items": [_sample(s, progress[s.id]) for s in rows[:limit]],
        "next_cursor": encode_cursor(SAMPLE_CURSOR, str(rows[limit - 1].id)) if len(rows) > limit else None,
    }


def _detail(sample_id: int) -> dict[str, Any]:
    user, session = api_user(), db()
    sample = supervision.get_sample(session, user, sample_id)
    progress = supervision.progress(session, [sample.id])[sample.id]
    return {
        **_sample(sample, progress),
        "orders": [
            {
                "id": so.id,
                "order_id": order.id,
                "order_number": order.number,
                "checked_at": so.checked_at,
                "checks": [_check(c) for c in so.checks],
            }
            for so, order in supervision.visible_sample_orders(session, user, sample)
        ],
    }


@blp.route("/samples", methods=["POST"])
@blp.doc(requestBody=json_body(SampleInputSchema, example={"month": "2026-10", "size": 10}))
@blp.response(201, SampleDetailSchema)
@errors(blp, 400, 401, 403, 409, 415, 422)
def draw_sample() -> dict[str, Any]:
    """Draw the random sample of a past month now (once per month; 409 when it exists)."""
    user, session = api_user(), db()
    body = read_json()
    size = body.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise _invalid("size", "1 to 500.", "size is not a whole number")
    sample = supervision.draw_sample(session, user, _month(body), size)
    commit()
    return _detail(sample.id)


@blp.route("/samples/<int:sample_id>", methods=["GET"])
@blp.response(200, SampleDetailSchema)
@errors(blp, 401, 403, 404)
def get_sample(sample_id: int) -> dict[str, Any]:
    """A sample with its orders in your scope and their checklists (what was found, verdicts)."""
    return _detail(sample_id)


@blp.route("/checks/<int:check_id>", methods=["POST"])
@blp.doc(requestBody=json_body(CheckInputSchema, example={"passed": False, "note": "Confirmed by a clerk"}))
@blp.response(200, CheckSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def record_check(check_id: int) -> dict[str, Any]:
    """Give a checklist point its verdict (``kpi.supervision.manage``); a failure needs a note."""
    user, session = api_user(), db()
    body = read_json()
    passed = body.get("passed")
    if not isinstance(passed, bool):
        raise _invalid("passed", "true or false.", "passed must be true or false")
    check = supervision.record_check(session, user, check_id, passed, _string(body, "note"))
    check_id = check.id
    commit()
    found = session.get(KpiCheck, check_id)
    assert found is not None
    return _check(found)


# --- findings ---------------------------------------------------------------------------


@blp.route("/findings", methods=["GET"])
@blp.arguments(FindingQuerySchema, location="query", unknown="raise")
@blp.response(200, FindingPageSchema)
@errors(blp, 401, 422)
def list_findings(args: dict[str, Any]) -> dict[str, Any]:
    """Findings, newest first: all in your scope with ``kpi.supervision.read``, else those you own."""
    user, session = api_user(), db()
    stmt = supervision.findings_query(
        user, status=args.get("status"), owner_id=args.get("owner_id"), overdue=args["overdue"]
    )
    after = _after(FINDING_CURSOR, args.get("cursor"))
    if after is not None:
        stmt = stmt.where(KpiFinding.id < after)
    limit = args["limit"]
    rows = list(session.scalars(stmt.limit(limit + 1)))
    return {
        "items": [_finding(f) for f in rows[:limit]],
        "next_cursor": encode_cursor(FINDING_CURSOR, str(rows[limit - 1].id)) if len(rows) > limit else None,
    }


def _answer(finding_id: int) -> dict[str, Any]:
    commit()
    return _finding(supervision.get_finding(db(), api_user(), finding_id))


@blp.route("/findings", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        FindingInputSchema,
        example={"sample_order_id": 3, "item": "roles", "description": "Confirmed by a clerk", "owner_id": 7},
    )
)
@blp.response(201, FindingSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def open_finding() -> dict[str, Any]:
    """Record a finding with its owner and deadline; the owner is told (``kpi.supervision.manage``)."""
    user, session = api_user(), db()
    body = read_json()
    finding = supervision.open_finding(
        session,
        user,
        sample_order_id=_id(body, "sample_order_id", required=False),
        order_id=_id(body, "order_id", required=False),
        item=_string(body, "item"),
        description=_string(body, "description"),
        owner_id=_id(body, "owner_id", required=True) or 0,
        due_date=_date(body, "due_date"),
    )
    return _answer(finding.id)


@blp.route("/findings/<int:finding_id>", methods=["GET"])
@blp.response(200, FindingSchema)
@errors(blp, 401, 404)
def get_finding(finding_id: int) -> dict[str, Any]:
    """A finding (404 when you may not see it)."""
    return _finding(supervision.get_finding(db(), api_user(), finding_id))


@blp.route("/findings/<int:finding_id>/correct", methods=["POST"])
@blp.doc(requestBody=json_body(CorrectionInputSchema, example={"correction": "Re-confirmed by sales manager"}))
@blp.response(200, FindingSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def correct_finding(finding_id: int) -> dict[str, Any]:
    """Record the correction of an open finding (its owner, or a supervisor)."""
    user, session = api_user(), db()
    body = read_json()
    supervision.correct_finding(session, user, finding_id, _string(body, "correction"))
    return _answer(finding_id)


@blp.route("/findings/<int:finding_id>/close", methods=["POST"])
@blp.doc(requestBody=json_body(CloseInputSchema, required=False, example={"note": "Verified on the order"}))
@blp.response(200, FindingSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def close_finding(finding_id: int) -> dict[str, Any]:
    """Close a corrected finding: a supervisor other than the owner and the corrector."""
    user, session = api_user(), db()
    body = read_json(required=False)
    supervision.close_finding(session, user, finding_id, _string(body, "note"))
    return _answer(finding_id)


@blp.route("/findings/<int:finding_id>/reopen", methods=["POST"])
@blp.doc(requestBody=json_body(ReopenInputSchema, example={"reason": "Still confirmed by a clerk"}))
@blp.response(200, FindingSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def reopen_finding(finding_id: int) -> dict[str, Any]:
    """Send a corrected or closed finding back to its owner with a reason (and a new deadline)."""
    user, session = api_user(), db()
    body = read_json()
    supervision.reopen_finding(session, user, finding_id, _string(body, "reason"), _date(body, "due_date"))
    return _answer(finding_id)

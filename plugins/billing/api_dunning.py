"""API of collection (BL-4, BL-7): the dunning board and log, pauses, the run, statements, late interest.

Endpoints under ``/api/v1/billing``:

- ``GET /dunning`` — the dunning board (customers with overdue dues, ladder positions, pauses);
- ``GET /dunning/events`` — the log of steps sent, newest first (keyset paging);
- ``POST /dunning/pauses`` and ``POST /dunning/pauses/{id}/end`` — pause and resume;
- ``POST /dunning/run`` — climb the ladder now;
- ``GET /customers/{id}/statement`` (JSON) and ``/customers/{id}/statement.pdf`` — 对账单;
- ``POST /invoices/{id}/interest`` — charge late interest up to a date.

The services check permission and scope: 404 out of scope, 403 without the permission,
409 for a state that forbids the change, 422 for bad input; nothing is changed then.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.clock import company_now
from core.schemas import MAX_ID
from core.services import ServiceError
from core.services.paging import decode_cursor, encode_cursor
from core.settings import session_registry
from core.web import db
from plugins.billing import dunning, dunning_documents, flow, interest
from plugins.billing.models import BillingDunningEvent, BillingDunningLevel, BillingDunningPause

blp = Blueprint("billing_dunning_api", __name__, url_prefix="/api/v1/billing", description="Billing: dunning.")
blp.before_request(require_api_user)

EVENT_CURSOR = "bde"


class DunningDueSchema(Schema):
    """One open due on the board."""

    invoice_id = fields.Integer(required=True)
    invoice_number = fields.String(required=True)
    order_id = fields.Integer(allow_none=True)
    sequence = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    balance = fields.Decimal(as_string=True, required=True)
    days_overdue = fields.Integer(required=True, metadata={"description": "Negative: days until due."})
    last_level = fields.String(allow_none=True)
    last_sent_at = fields.DateTime(allow_none=True)
    next_level = fields.String(allow_none=True)
    next_on = fields.Date(allow_none=True)
    paused_by = fields.Integer(allow_none=True, metadata={"description": "The pause in force, if any."})
    interest_charged = fields.Decimal(as_string=True, required=True)


class DunningPauseSchema(Schema):
    """A dispute or promise to pay pausing dunning."""

    id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    invoice_id = fields.Integer(allow_none=True)
    kind = fields.String(required=True)
    until = fields.Date(allow_none=True)
    note = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    ended_at = fields.DateTime(allow_none=True)


class DunningCustomerSchema(Schema):
    """A customer on the dunning board."""

    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    customer_name = fields.String(required=True)
    overdue = fields.Decimal(as_string=True, required=True)
    interest_charged = fields.Decimal(as_string=True, required=True)
    dues = fields.List(fields.Nested(DunningDueSchema), required=True)
    pauses = fields.List(fields.Nested(DunningPauseSchema), required=True)


class DunningBoardSchema(Schema):
    """The dunning board."""

    today = fields.Date(required=True)
    customers = fields.List(fields.Nested(DunningCustomerSchema), required=True)


class DunningEventSchema(Schema):
    """A dunning step sent."""

    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    due_id = fields.Integer(required=True)
    level = fields.String(required=True)
    kind = fields.String(required=True)
    open_amount = fields.Decimal(as_string=True, required=True)
    sent_at = fields.DateTime(required=True)
    letter_attachment_id = fields.Integer(allow_none=True)


class DunningEventPageSchema(Schema):
    """A page of the dunning log."""

    items = fields.List(fields.Nested(DunningEventSchema), required=True)
    next_cursor = fields.String(allow_none=True)


class DunningEventQuerySchema(PageQuerySchema):
    """Which events to list."""

    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    invoice_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))


class DunningPauseInputSchema(Schema):
    """A pause to create: a dispute, or a promise to pay until a date after today."""

    customer_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("dispute", "promise")))
    note = fields.String(required=True, metadata={"description": "Why; required."})
    invoice_id = fields.Integer(allow_none=True, metadata={"description": "One invoice only; omit for all."})
    until = fields.Date(allow_none=True, metadata={"description": "A promise's date (after today)."})


class DunningRunSchema(Schema):
    """What a run sent."""

    sent = fields.Integer(required=True, metadata={"description": "Notices (steps) sent."})


class StatementQuerySchema(Schema):
    """The statement's period (default: this month up to today)."""

    start = fields.Date()
    end = fields.Date()
    lang = fields.String(validate=validate.OneOf(("zh_CN", "en")))


class StatementEntrySchema(Schema):
    """A line of the statement."""

    date = fields.Date(required=True)
    kind = fields.String(required=True, metadata={"description": "invoice, credit_note, payment, write_off, interest"})
    reference = fields.String(required=True)
    description = fields.String(required=True)
    debit = fields.Decimal(as_string=True, required=True)
    credit = fields.Decimal(as_string=True, required=True)
    balance = fields.Decimal(as_string=True, required=True)


class StatementSchema(Schema):
    """A statement of account (对账单)."""

    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    customer_name = fields.String(required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    opening = fields.Decimal(as_string=True, required=True)
    entries = fields.List(fields.Nested(StatementEntrySchema), required=True)
    debits = fields.Decimal(as_string=True, required=True)
    credits = fields.Decimal(as_string=True, required=True)
    closing = fields.Decimal(as_string=True, required=True)
    open_receivables = fields.Decimal(as_string=True, required=True)
    unallocated = fields.Decimal(as_string=True, required=True)
    interest = fields.Decimal(as_string=True, required=True)
    ledger_closing = fields.Decimal(as_string=True, required=True)
    reconciles = fields.Boolean(required=True)
    current = fields.Boolean(required=True)


class InterestInputSchema(Schema):
    """Up to which day to charge (default today)."""

    until = fields.Date(allow_none=True)


class InterestChargeSchema(Schema):
    """A late interest charge."""

    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    customer_id = fields.Integer(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    daily_rate = fields.Decimal(as_string=True, required=True)
    amount = fields.Decimal(as_string=True, required=True)
    detail = fields.List(fields.Dict(), required=True)


def _pause(pause: BillingDunningPause) -> dict[str, Any]:
    return {
        "id": pause.id,
        "customer_id": pause.customer_id,
        "invoice_id": pause.invoice_id,
        "kind": pause.kind,
        "until": pause.until,
        "note": pause.note,
        "created_at": pause.created_at,
        "ended_at": pause.ended_at,
    }


def _date_field(body: dict[str, Any], name: str) -> dt.date | None:
    raw = body.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise ServiceError("invalid", f"{name} is not a date", {name: ["Give a date as YYYY-MM-DD."]}) from None


def _id_field(body: dict[str, Any], name: str, *, required: bool) -> int | None:
    raw = body.get(name)
    if raw is None:
        if required:
            raise ServiceError("invalid", f"{name} is required", {name: ["Required."]})
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ID:
        raise ServiceError("invalid", f"{name} is not an id", {name: ["Give a positive whole number."]})
    return raw


@blp.route("/dunning", methods=["GET"])
@blp.response(200, DunningBoardSchema)
@errors(blp, 401, 403)
def board() -> dict[str, Any]:
    """The dunning board: customers with overdue dues in your scope, each due's last and next step, pauses."""
    user, session = api_user(), db()
    today = company_now().date()
    rows = dunning.board(session, user, today)
    return {
        "today": today,
        "customers": [
            {
                "customer_id": row.customer.id,
                "customer_code": row.customer.code,
                "customer_name": row.customer.name,
                "overdue": row.overdue,
                "interest_charged": row.interest,
                "dues": [
                    {
                        "invoice_id": d.invoice.id,
                        "invoice_number": d.invoice.number,
                        "order_id": d.invoice.order_id,
                        "sequence": d.due.sequence,
                        "due_date": d.due.due_date,
                        "balance": d.balance,
                        "days_overdue": d.days_overdue,
                        "last_level": d.last.code if d.last else None,
                        "last_sent_at": d.last_at,
                        "next_level": d.next.code if d.next else None,
                        "next_on": d.next_on,
                        "paused_by": d.pause.id if d.pause else None,
                        "interest_charged": d.interest,
                    }
                    for d in row.dues
                ],
                "pauses": [_pause(p) for p in row.pauses],
            }
            for row in rows
        ],
    }


@blp.route("/dunning/events", methods=["GET"])
@blp.arguments(DunningEventQuerySchema, location="query", unknown="raise")
@blp.response(200, DunningEventPageSchema)
@errors(blp, 401, 403, 422)
def events(args: dict[str, Any]) -> dict[str, Any]:
    """The dunning log: steps sent, newest first, filtered by customer or invoice."""
    user, session = api_user(), db()
    if not (user.can(flow.INVOICES_READ) or user.can(flow.DUNNING_MANAGE)):
        raise ServiceError("forbidden", f"you lack the permission {flow.INVOICES_READ!r}", status=403)
    stmt = dunning.events_query(user, args.get("customer_id"), args.get("invoice_id")).order_by(None)
    stmt = stmt.order_by(BillingDunningEvent.id.desc())
    if args.get("cursor"):
        after = decode_cursor(EVENT_CURSOR, args["cursor"])
        if not after.isdigit():
            raise ServiceError("invalid", "the cursor is not valid", {"cursor": ["Use next_cursor as given."]})
        stmt = stmt.where(BillingDunningEvent.id < int(after))
    limit = args["limit"]
    rows = list(session.scalars(stmt.limit(limit + 1)))
    levels = {level.id: level for level in session.query(BillingDunningLevel)}
    next_cursor = encode_cursor(EVENT_CURSOR, str(rows[limit - 1].id)) if len(rows) > limit else None
    return {
        "items": [
            {
                "id": e.id,
                "invoice_id": e.invoice_id,
                "customer_id": e.customer_id,
                "due_id": e.due_id,
                "level": levels[e.level_id].code,
                "kind": levels[e.level_id].kind,
                "open_amount": e.open_amount,
                "sent_at": e.sent_at,
                "letter_attachment_id": e.letter_attachment_id,
            }
            for e in rows[:limit]
        ],
        "next_cursor": next_cursor,
    }


@blp.route("/dunning/pauses", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        DunningPauseInputSchema,
        example={"customer_id": 1, "kind": "promise", "until": "2026-12-20", "note": "Promised by phone"},
    )
)
@blp.response(201, DunningPauseSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def add_pause() -> dict[str, Any]:
    """Pause dunning of a customer (or one invoice): a dispute, or a promise to pay until a date."""
    user, session = api_user(), db()
    body = read_json()
    pause = dunning.pause_dunning(
        session,
        user,
        _id_field(body, "customer_id", required=True) or 0,
        str(body.get("kind") or ""),
        str(body.get("note") or ""),
        invoice_id=_id_field(body, "invoice_id", required=False),
        until=_date_field(body, "until"),
    )
    commit()
    return _pause(pause)


@blp.route("/dunning/pauses/<int:pause_id>/end", methods=["POST"])
@blp.response(200, DunningPauseSchema)
@errors(blp, 401, 403, 404, 409)
def end_pause(pause_id: int) -> dict[str, Any]:
    """End a pause now; dunning resumes at the next run. A JSON body with ``note`` is optional."""
    user, session = api_user(), db()
    body = read_json(required=False)
    pause = dunning.end_pause(session, user, pause_id, str(body.get("note") or ""))
    commit()
    return _pause(pause)


@blp.route("/dunning/run", methods=["POST"])
@blp.response(200, DunningRunSchema)
@errors(blp, 401, 403)
def run() -> dict[str, Any]:
    """Climb the dunning ladder now (as the daily job does); answers how many steps were sent."""
    user, session = api_user(), db()
    sent = dunning.run_now(session, user)
    commit()
    return {"sent": sent}


def _statement(customer_id: int, args: dict[str, Any]) -> dunning_documents.Statement:
    user, session = api_user(), db()
    today = company_now().date()
    end = args.get("end") or today
    start = args.get("start") or end.replace(day=1)
    return dunning_documents.statement(session, user, customer_id, start, end)


@blp.route("/customers/<int:customer_id>/statement", methods=["GET"])
@blp.arguments(StatementQuerySchema, location="query", unknown="raise")
@blp.response(200, StatementSchema)
@errors(blp, 401, 403, 404, 422)
def statement(args: dict[str, Any], customer_id: int) -> dict[str, Any]:
    """The statement of account (对账单) of a customer for a period, with the ledger check."""
    return dunning_documents.statement_data(_statement(customer_id, args))


@blp.route("/customers/<int:customer_id>/statement.pdf", methods=["GET"])
@blp.arguments(StatementQuerySchema, location="query", unknown="raise")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
@errors(blp, 401, 403, 404, 422)
def statement_pdf(args: dict[str, Any], customer_id: int) -> Response:
    """The statement of account as PDF, in the customer's language or ``lang``."""
    result = _statement(customer_id, args)
    session = db()
    pdf = dunning_documents.render_statement_pdf(session, session_registry(session), result, args.get("lang"))
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{dunning_documents.statement_filename(result)}"'},
    )


@blp.route("/invoices/<int:invoice_id>/interest", methods=["POST"])
@blp.doc(requestBody=json_body(InterestInputSchema, required=False, example={"until": "2026-11-30"}))
@blp.response(201, InterestChargeSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def charge_interest(invoice_id: int) -> dict[str, Any]:
    """Charge the late interest due on an invoice up to ``until`` (default today); never a day twice."""
    user, session = api_user(), db()
    body = read_json(required=False)
    charge = interest.charge_interest(session, user, invoice_id, _date_field(body, "until"))
    commit()
    assert charge is not None
    return {
        "id": charge.id,
        "invoice_id": charge.invoice_id,
        "customer_id": charge.customer_id,
        "period_start": charge.period_start,
        "period_end": charge.period_end,
        "daily_rate": charge.daily_rate,
        "amount": charge.amount,
        "detail": charge.detail,
    }

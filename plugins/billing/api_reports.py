"""API: receivables reports, the settlement check and write-offs (``/api/v1/billing``).

Other systems (a finance dashboard, an ERP) read here what the "Receivables" screens
show — ageing by customer, salesperson or branch, customer balances, collections per
period — in the caller's data scope, read an order's settlement check, and request and
decide write-offs. The services (:mod:`plugins.billing.reports`,
:mod:`plugins.billing.settlement`) check permissions and validate; errors answer like
core's: 404 for what does not exist or lies outside the caller's scope, 403 without the
permission, 409 for a state that forbids the change, 422 with details for bad input. Money
is given as strings with two decimals.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.clock import company_now
from core.labels import N_
from core.models import Order
from core.schemas import MAX_ID
from core.services.orders import get_order
from core.web import db
from plugins.billing import flow, reports, scope, settlement
from plugins.billing.errors import BillingError
from plugins.billing.models import WRITE_OFF_STATUSES, BillingInvoice, BillingWriteOff

blp = Blueprint(
    "billing_reports_api",
    __name__,
    url_prefix="/api/v1/billing",
    description="Billing: receivables ageing, customer balances, collections, the settlement check, write-offs.",
)
blp.before_request(require_api_user)

INVALID = N_("The request is not valid.")
NOT_ALLOWED = N_("You may not see invoices.")


def _money() -> fields.Decimal:
    return fields.Decimal(as_string=True, places=2, required=True)


class AgeingQuerySchema(Schema):
    """Which ageing to compute."""

    as_of = fields.Date(metadata={"description": "The day the dues are aged on (default: today)."})
    group_by = fields.String(
        load_default="customer",
        validate=validate.OneOf(list(reports.GROUPS)),
        metadata={"description": "customer, salesperson or branch."},
    )


class AgeingBucketsSchema(Schema):
    """Open amounts by days overdue."""

    not_due = _money()
    d0_30 = _money()
    d31_60 = _money()
    d61_90 = _money()
    over_90 = _money()


class AgeingRowSchema(Schema):
    """One customer's, salesperson's or branch's open receivables."""

    key = fields.String(required=True, metadata={"description": "The customer, user or branch id; '' for none."})
    code = fields.String(required=True)
    name = fields.String(required=True)
    buckets = fields.Nested(AgeingBucketsSchema, required=True)
    overdue = _money()
    total = _money()
    invoices = fields.Integer(required=True, metadata={"description": "Open invoices counted."})


class AgeingSchema(Schema):
    """The receivables ageing."""

    as_of = fields.Date(required=True)
    group_by = fields.String(required=True)
    rows = fields.List(fields.Nested(AgeingRowSchema), required=True)
    total = fields.Nested(AgeingRowSchema, required=True)


class BalanceRowSchema(Schema):
    """One customer's receivables and balance."""

    customer_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    open_receivables = _money()
    unallocated = _money()
    unused_credit = _money()
    balance = _money()
    net = _money()


class BalancesSchema(Schema):
    """Customer balances."""

    rows = fields.List(fields.Nested(BalanceRowSchema), required=True)


class CollectionsQuerySchema(Schema):
    """The period of the collections."""

    start = fields.Date(metadata={"description": "First day (default: the first of this month)."})
    end = fields.Date(metadata={"description": "Last day, inclusive (default: today)."})


class CollectionRowSchema(Schema):
    """Payments of one month and method."""

    month = fields.String(required=True, metadata={"description": "YYYY-MM"})
    method = fields.String(required=True)
    count = fields.Integer(required=True)
    received = _money()
    allocated = _money()
    unallocated = _money()


class CollectionSourcesSchema(Schema):
    """Allocated in the period by source."""

    payment = _money()
    credit_note = _money()
    write_off = _money()


class CollectionsSchema(Schema):
    """Collections of a period."""

    start = fields.Date(required=True)
    end = fields.Date(required=True)
    rows = fields.List(fields.Nested(CollectionRowSchema), required=True)
    count = fields.Integer(required=True)
    received = _money()
    allocated = _money()
    allocations = fields.Nested(CollectionSourcesSchema, required=True)


class SettlementSchema(Schema):
    """An order's settlement check."""

    order_id = fields.Integer(required=True)
    number = fields.String(required=True)
    step = fields.String(required=True)
    status = fields.String(required=True)
    delivered = _money()
    invoiced = _money()
    open_amount = _money()
    written_off = _money()
    settled = fields.Boolean(required=True, metadata={"description": "True when no problem is left."})
    problems = fields.List(fields.String(), required=True)


class WriteOffSchema(Schema):
    """A write-off."""

    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    invoice_number = fields.String(allow_none=True)
    order_id = fields.Integer(allow_none=True)
    amount = _money()
    reason = fields.String(required=True)
    status = fields.String(required=True)
    requested_by_id = fields.Integer(allow_none=True)
    requested_at = fields.DateTime(required=True)
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String(required=True)


class WriteOffListSchema(Schema):
    """Write-offs."""

    items = fields.List(fields.Nested(WriteOffSchema), required=True)


class WriteOffQuerySchema(Schema):
    """Which write-offs to list."""

    status = fields.String(validate=validate.OneOf(list(WRITE_OFF_STATUSES)))
    invoice_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class WriteOffInSchema(Schema):
    """A write-off request."""

    amount = fields.Decimal(required=True, metadata={"description": "Yuan, at most the open amount."})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class DecisionInSchema(Schema):
    """A decision on a write-off."""

    approve = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))


def _load(schema: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as exc:
        raise BillingError("invalid", INVALID, details=exc.messages) from None
    return loaded


def _ageing_row(row: reports.AgeingRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "code": row.code,
        "name": row.name,
        "buckets": dict(row.buckets),
        "overdue": row.overdue,
        "total": row.total,
        "invoices": len(row.invoices),
    }


def _write_off(session: Any, write_off: BillingWriteOff) -> dict[str, Any]:
    invoice = session.get(BillingInvoice, write_off.invoice_id)
    return {
        "id": write_off.id,
        "invoice_id": write_off.invoice_id,
        "invoice_number": invoice.number if invoice else None,
        "order_id": write_off.order_id,
        "amount": write_off.amount,
        "reason": write_off.reason,
        "status": write_off.status,
        "requested_by_id": write_off.requested_by_id,
        "requested_at": write_off.requested_at,
        "decided_by_id": write_off.decided_by_id,
        "decided_at": write_off.decided_at,
        "decision_note": write_off.decision_note,
    }


@blp.route("/reports/ageing", methods=["GET"])
@blp.arguments(AgeingQuerySchema, location="query", unknown="raise")
@blp.response(200, AgeingSchema)
@errors(blp, 401, 403, 422)
def ageing(args: dict[str, Any]) -> dict[str, Any]:
    """Receivables ageing (not yet due, 0–30, 31–60, 61–90, over 90 days overdue) by customer, salesperson or branch."""
    user, session = api_user(), db()
    as_of = args.get("as_of") or company_now().date()
    rows = reports.ageing(session, user, as_of, args["group_by"])
    return {
        "as_of": as_of,
        "group_by": args["group_by"],
        "rows": [_ageing_row(r) for r in rows],
        "total": _ageing_row(reports.ageing_total(rows)),
    }


@blp.route("/reports/balances", methods=["GET"])
@blp.response(200, BalancesSchema)
@errors(blp, 401, 403)
def balances() -> dict[str, Any]:
    """Customer balances: open receivables, unallocated payments, unused credit notes, balance and net."""
    user, session = api_user(), db()
    rows = reports.customer_balances(session, user)
    return {
        "rows": [
            {
                "customer_id": r.customer_id,
                "code": r.code,
                "name": r.name,
                "open_receivables": r.open_receivables,
                "unallocated": r.unallocated,
                "unused_credit": r.unused_credit,
                "balance": r.balance,
                "net": r.net,
            }
            for r in rows
        ]
    }


@blp.route("/reports/collections", methods=["GET"])
@blp.arguments(CollectionsQuerySchema, location="query", unknown="raise")
@blp.response(200, CollectionsSchema)
@errors(blp, 401, 403, 422)
def collections(args: dict[str, Any]) -> dict[str, Any]:
    """Payments received in a period by month and method; allocations made effective in it by source."""
    user, session = api_user(), db()
    today = company_now().date()
    start: dt.date = args.get("start") or today.replace(day=1)
    end: dt.date = args.get("end") or today
    found = reports.collections(session, user, start, end)
    return {
        "start": start,
        "end": end,
        "rows": [
            {
                "month": r.month,
                "method": r.method,
                "count": r.count,
                "received": r.received,
                "allocated": r.allocated,
                "unallocated": r.unallocated,
            }
            for r in found.rows
        ],
        "count": found.count,
        "received": found.received,
        "allocated": found.allocated,
        "allocations": dict(found.allocations),
    }


@blp.route("/orders/<int:order_id>/settlement", methods=["GET"])
@blp.response(200, SettlementSchema)
@errors(blp, 401, 403, 404)
def order_settlement(order_id: int) -> dict[str, Any]:
    """An order's settlement check: delivered and invoiced amounts, what is open, the problems (BL-2)."""
    user, session = api_user(), db()
    order: Order = get_order(session, user, order_id)
    if not user.can(flow.INVOICES_READ):
        raise BillingError("forbidden", NOT_ALLOWED, status=403)
    found = settlement.check(session, order)
    return {
        "order_id": order.id,
        "number": order.number,
        "step": order.step,
        "status": order.status,
        "delivered": found.delivered,
        "invoiced": found.invoiced,
        "open_amount": found.open_amount,
        "written_off": found.written_off,
        "settled": not found.problems,
        "problems": found.texts,
    }


@blp.route("/write-offs", methods=["GET"])
@blp.arguments(WriteOffQuerySchema, location="query", unknown="raise")
@blp.response(200, WriteOffListSchema)
@errors(blp, 401, 403, 422)
def list_write_offs(args: dict[str, Any]) -> dict[str, Any]:
    """Write-offs of invoices in the caller's scope, newest first (filter by status or invoice)."""
    user, session = api_user(), db()
    if not user.can(flow.INVOICES_READ):
        raise BillingError("forbidden", NOT_ALLOWED, status=403)
    stmt = (
        select(BillingWriteOff)
        .join(BillingInvoice, BillingInvoice.id == BillingWriteOff.invoice_id)
        .where(scope.invoice_scope(user))
        .order_by(BillingWriteOff.id.desc())
        .limit(args["limit"])
    )
    if args.get("status"):
        stmt = stmt.where(BillingWriteOff.status == args["status"])
    if args.get("invoice_id"):
        stmt = stmt.where(BillingWriteOff.invoice_id == args["invoice_id"])
    return {"items": [_write_off(session, w) for w in session.scalars(stmt)]}


@blp.route("/invoices/<int:invoice_id>/write-offs", methods=["POST"])
@blp.doc(requestBody=json_body(WriteOffInSchema, example={"amount": "120.00", "reason": "客户破产，余款无法收回"}))
@blp.response(201, WriteOffSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def request_write_off(invoice_id: int) -> tuple[dict[str, Any], int]:
    """Request a write-off of (part of) an issued invoice's open amount, with a reason."""
    user, session = api_user(), db()
    if not 0 < invoice_id <= MAX_ID:
        scope.get_invoice(session, user, 0)
    values = _load(WriteOffInSchema, read_json())
    write_off = settlement.request_write_off(session, user, invoice_id, values["amount"], values["reason"])
    write_off_id = write_off.id
    commit()
    return _write_off(session, settlement.get_write_off(session, user, write_off_id)), 201


@blp.route("/write-offs/<int:write_off_id>/decision", methods=["POST"])
@blp.doc(requestBody=json_body(DecisionInSchema, example={"approve": True, "note": "同意核销"}))
@blp.response(200, WriteOffSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def decide_write_off(write_off_id: int) -> dict[str, Any]:
    """Approve (the amount settles the invoice; the order may complete) or refuse a write-off; not its requester."""
    user, session = api_user(), db()
    if not 0 < write_off_id <= MAX_ID:
        settlement.get_write_off(session, user, 0)
    values = _load(DecisionInSchema, read_json())
    settlement.decide_write_off(session, user, write_off_id, values["approve"], values["note"])
    commit()
    return _write_off(session, settlement.get_write_off(session, user, write_off_id))

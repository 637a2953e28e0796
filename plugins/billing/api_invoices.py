"""API: invoices and credit notes, their PDF, and deliveries not invoiced in time (``/api/v1/billing``).

Other systems do here what the invoice screens do (BL-3): list and read invoices, create
a draft from an order's delivered or ordered quantities, change or delete a draft,
issue it (the gapless number is given then), credit an issued invoice, download the
PDF, list deliveries not invoiced within the late days and record why. Thin endpoints
over :mod:`plugins.billing.invoices`: 404 out of scope (checked first), 403 without the
permission, 409 for a state that forbids the change (an issued invoice is immutable),
422 with the reason for bad input; a refused request changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.clock import company_now
from core.labels import N_
from core.models import User
from core.schemas import MAX_ID
from core.services.orders import get_order
from core.services.paging import decode_cursor, encode_cursor
from core.web import db, ordo
from plugins.billing import flow, invoices
from plugins.billing.errors import BillingError
from plugins.billing.invoice_documents import pdf_filename, render_invoice_pdf
from plugins.billing.models import INVOICE_KINDS, INVOICE_STATUSES, INVOICE_TYPES, BillingInvoice

blp = Blueprint("billing_invoices_api", __name__, url_prefix="/api/v1/billing", description="Billing: invoices.")
blp.before_request(require_api_user)

CURSOR = "bi"


class InvoiceQuerySchema(PageQuerySchema):
    """Which invoices to list (newest first)."""

    status = fields.String(validate=validate.OneOf(list(INVOICE_STATUSES)))
    kind = fields.String(validate=validate.OneOf(list(INVOICE_KINDS)))
    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    order_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    overdue = fields.Boolean(metadata={"description": "Only issued invoices with an open amount past the due date."})


class InvoiceLineSchema(Schema):
    """One line: negative quantities and amounts on a credit note."""

    id = fields.Integer(required=True)
    position = fields.Integer(required=True)
    order_line_id = fields.Integer(allow_none=True, required=True)
    description = fields.String(required=True)
    quantity = fields.Decimal(as_string=True, required=True)
    unit = fields.String(required=True)
    unit_price = fields.Decimal(as_string=True, required=True)
    discount = fields.Decimal(as_string=True, required=True)
    tax_rate = fields.Decimal(as_string=True, required=True)
    amount = fields.Decimal(as_string=True, required=True)
    tax = fields.Decimal(as_string=True, required=True)


class InvoiceDueSchema(Schema):
    """An amount due on a date, with what is still open of it."""

    sequence = fields.Integer(required=True)
    due_date = fields.Date(required=True)
    amount = fields.Decimal(as_string=True, required=True)
    open = fields.Decimal(as_string=True, required=True)


class InvoiceSchema(Schema):
    """An invoice or credit note; ``number`` is null until issued."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    number = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    basis = fields.String(required=True)
    invoice_type = fields.String(required=True)
    customer_id = fields.Integer(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    credited_invoice_id = fields.Integer(allow_none=True, required=True)
    currency = fields.String(required=True)
    untaxed = fields.Decimal(as_string=True, required=True)
    tax = fields.Decimal(as_string=True, required=True)
    total = fields.Decimal(as_string=True, required=True)
    settled = fields.Decimal(as_string=True, required=True)
    open_amount = fields.Decimal(as_string=True, required=True)
    invoice_date = fields.Date(allow_none=True, required=True)
    due_date = fields.Date(allow_none=True, required=True)
    buyer_name = fields.String(required=True)
    buyer_tax_id = fields.String(required=True)
    note = fields.String(required=True)
    version = fields.Integer(required=True)
    lines = fields.List(fields.Nested(InvoiceLineSchema), required=True)
    dues = fields.List(fields.Nested(InvoiceDueSchema), required=True)


class InvoicePageSchema(Schema):
    """One page of invoices and the next page's cursor."""

    items = fields.List(fields.Nested(InvoiceSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class InvoiceInSchema(Schema):
    """A draft invoice of an order: all invoiceable quantities, or those given per order line id."""

    order_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    basis = fields.String(load_default="delivered", validate=validate.OneOf(["delivered", "ordered", "prepayment"]))
    quantities = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=None, allow_none=True)
    invoice_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(list(INVOICE_TYPES)))
    percent = fields.Raw(load_default=None, allow_none=True, metadata={"description": "Prepayment percentage."})


class InvoiceChangeSchema(Schema):
    """Changes to a draft (any of them); ``version`` guards against lost updates."""

    quantities = fields.Dict(keys=fields.String(), values=fields.Raw(), allow_none=True)
    invoice_type = fields.String(validate=validate.OneOf(list(INVOICE_TYPES)))
    note = fields.String(validate=validate.Length(max=1000))
    invoice_date = fields.Date(allow_none=True)
    version = fields.Integer()


class IssueInSchema(Schema):
    """The invoice date (default: today in the company's time zone)."""

    invoice_date = fields.Date(load_default=None, allow_none=True)


class CreditNoteInSchema(Schema):
    """Quantities per line id of the invoice (omit: everything not yet credited) and the reason."""

    quantities = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=None, allow_none=True)
    reason = fields.String(required=True, validate=validate.Length(max=1000))


class UninvoicedQuerySchema(Schema):
    """The day the report looks from (default: today)."""

    as_of = fields.Date(load_default=None, allow_none=True)


class UninvoicedSchema(Schema):
    """A delivery not invoiced within the late days, without a recorded reason."""

    order_id = fields.Integer(required=True)
    order_number = fields.String(required=True)
    customer_id = fields.Integer(required=True)
    customer_name = fields.String(required=True)
    reference = fields.String(required=True, metadata={"description": "The shipment's number; '' for the order."})
    shipped_at = fields.DateTime(required=True)
    amount = fields.Decimal(as_string=True, required=True)
    days = fields.Integer(required=True)


class UninvoicedListSchema(Schema):
    """The report's rows, oldest delivery first."""

    items = fields.List(fields.Nested(UninvoicedSchema), required=True)


class UninvoicedReasonInSchema(Schema):
    """Why a delivery is not invoiced yet."""

    order_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    shipment_reference = fields.String(load_default="", validate=validate.Length(max=64))
    reason = fields.String(required=True, validate=validate.Length(max=500))


class UninvoicedReasonSchema(Schema):
    """A recorded reason."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    shipment_reference = fields.String(required=True)
    reason = fields.String(required=True)
    recorded_at = fields.DateTime(required=True)


def _load(schema: type[Schema], body: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(body, partial=partial)
    except ValidationError as exc:
        raise BillingError("invalid", N_("The request is not valid."), details=exc.messages) from None
    return loaded


def _require(user: User, permission: str) -> None:
    if not user.can(permission):
        raise BillingError("forbidden", invoices.FORBIDDEN, 403, permission=permission)


def invoice_answer(invoice: BillingInvoice) -> dict[str, Any]:
    """An invoice as the API answers it."""
    from plugins.billing import ledger

    balances = ledger.due_balances(db(), [invoice.id])
    return {
        "id": invoice.id,
        "kind": invoice.kind,
        "number": invoice.number,
        "status": invoice.status,
        "basis": invoice.basis,
        "invoice_type": invoice.invoice_type,
        "customer_id": invoice.customer_id,
        "order_id": invoice.order_id,
        "credited_invoice_id": invoice.credited_invoice_id,
        "currency": invoice.currency,
        "untaxed": invoice.untaxed,
        "tax": invoice.tax,
        "total": invoice.total,
        "settled": invoice.settled,
        "open_amount": invoice.open_amount,
        "invoice_date": invoice.invoice_date,
        "due_date": invoice.due_date,
        "buyer_name": invoice.buyer_name,
        "buyer_tax_id": invoice.buyer_tax_id,
        "note": invoice.note,
        "version": invoice.version,
        "lines": [
            {
                "id": li.id,
                "position": li.position,
                "order_line_id": li.order_line_id,
                "description": li.description,
                "quantity": li.quantity,
                "unit": li.unit,
                "unit_price": li.unit_price,
                "discount": li.discount,
                "tax_rate": li.tax_rate,
                "amount": li.amount,
                "tax": li.tax,
            }
            for li in invoice.lines
        ],
        "dues": [
            {"sequence": d.sequence, "due_date": d.due_date, "amount": d.amount, "open": balances.get(d.id, d.amount)}
            for d in invoice.dues
        ],
    }


def _fresh(invoice_id: int) -> dict[str, Any]:
    return invoice_answer(invoices.get_invoice(db(), api_user(), invoice_id))


@blp.route("/invoices", methods=["GET"])
@blp.arguments(InvoiceQuerySchema, location="query", unknown="raise")
@blp.response(200, InvoicePageSchema)
@errors(blp, 401, 403, 422)
def list_invoices(args: dict[str, Any]) -> dict[str, Any]:
    """List invoices and credit notes in your data scope, newest first, by status, kind, customer, order, overdue."""
    user, session = api_user(), db()
    _require(user, flow.INVOICES_READ)
    stmt = select(BillingInvoice).where(invoices.visible_invoices(user)).order_by(BillingInvoice.id.desc())
    for name in ("status", "kind", "customer_id", "order_id"):
        if args.get(name):
            stmt = stmt.where(getattr(BillingInvoice, name) == args[name])
    if args.get("overdue"):
        stmt = stmt.where(
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
            BillingInvoice.due_date < company_now().date(),
        )
    if args.get("cursor"):
        value = decode_cursor(CURSOR, args["cursor"])
        if not value.isdigit():
            raise BillingError("invalid", N_("The request is not valid."), details={"cursor": ["Not a valid cursor."]})
        stmt = stmt.where(BillingInvoice.id < int(value))
    limit = args["limit"]
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor(CURSOR, str(rows[limit - 1].id)) if len(rows) > limit else None
    return {"items": [invoice_answer(r) for r in rows[:limit]], "next_cursor": next_cursor}


@blp.route("/invoices", methods=["POST"])
@blp.doc(
    requestBody=json_body(InvoiceInSchema, example={"order_id": 7, "basis": "delivered", "quantities": {"12": "2"}})
)
@blp.response(201, InvoiceSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def create_invoice() -> tuple[dict[str, Any], int]:
    """Create a draft invoice of an order (no number yet): delivered, ordered or prepayment basis."""
    user, session = api_user(), db()
    values = _load(InvoiceInSchema, read_json())
    order = get_order(session, user, values["order_id"])
    if values["basis"] == "prepayment":
        invoice = invoices.create_prepayment_invoice(session, user, order, values.get("percent"))
    else:
        invoice = invoices.create_invoice(
            session,
            user,
            order,
            basis=values["basis"],
            quantities=values.get("quantities"),
            invoice_type=values.get("invoice_type"),
        )
    invoice_id = invoice.id
    commit()
    return _fresh(invoice_id), 201


@blp.route("/invoices/<int:invoice_id>", methods=["GET"])
@blp.response(200, InvoiceSchema)
@errors(blp, 401, 403, 404)
def get_invoice(invoice_id: int) -> dict[str, Any]:
    """One invoice or credit note with its lines and dues (open amount per due)."""
    user = api_user()
    invoice = invoices.get_invoice(db(), user, invoice_id)
    _require(user, flow.INVOICES_READ)
    return invoice_answer(invoice)


@blp.route("/invoices/<int:invoice_id>", methods=["PATCH"])
@blp.doc(requestBody=json_body(InvoiceChangeSchema, example={"note": "PO 4711", "version": 1}))
@blp.response(200, InvoiceSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def change_invoice(invoice_id: int) -> dict[str, Any]:
    """Change a draft; an issued invoice answers 409 (issued invoices are immutable: credit note)."""
    user, session = api_user(), db()
    invoices.get_invoice(session, user, invoice_id)
    values = _load(InvoiceChangeSchema, read_json(), partial=True)
    version = values.pop("version", None)
    invoices.update_draft(session, user, invoice_id, values, version)
    commit()
    return _fresh(invoice_id)


@blp.route("/invoices/<int:invoice_id>", methods=["DELETE"])
@blp.response(204)
@errors(blp, 401, 403, 404, 409)
def delete_invoice(invoice_id: int) -> None:
    """Delete a draft (it has no number); an issued invoice answers 409."""
    user, session = api_user(), db()
    invoices.get_invoice(session, user, invoice_id)
    invoices.delete_draft(session, user, invoice_id)
    commit()


@blp.route("/invoices/<int:invoice_id>/issue", methods=["POST"])
@blp.doc(requestBody=json_body(IssueInSchema, required=False, example={"invoice_date": "2026-03-31"}))
@blp.response(200, InvoiceSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def issue_invoice(invoice_id: int) -> dict[str, Any]:
    """Issue a draft: the next gapless number of the company, kind and year; the balance is applied."""
    user, session = api_user(), db()
    invoices.get_invoice(session, user, invoice_id)
    values = _load(IssueInSchema, read_json(required=False))
    invoices.issue_invoice(session, user, invoice_id, invoice_date=values.get("invoice_date"))
    commit()
    return _fresh(invoice_id)


@blp.route("/invoices/<int:invoice_id>/credit-notes", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        CreditNoteInSchema, example={"quantities": {"31": "1"}, "reason": "One unit damaged on arrival"}
    )
)
@blp.response(201, InvoiceSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def create_credit_note(invoice_id: int) -> tuple[dict[str, Any], int]:
    """Create a draft credit note of an issued invoice (quantities per invoice line id; omit: everything)."""
    user, session = api_user(), db()
    invoices.get_invoice(session, user, invoice_id)
    values = _load(CreditNoteInSchema, read_json())
    note = invoices.create_credit_note(session, user, invoice_id, values.get("quantities"), values["reason"])
    note_id = note.id
    commit()
    return _fresh(note_id), 201


@blp.route("/invoices/<int:invoice_id>/pdf", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
@errors(blp, 401, 403, 404, 422)
def invoice_pdf(invoice_id: int) -> Response:
    """The invoice PDF; ``?lang=zh_CN|en`` (default Chinese)."""
    user, session = api_user(), db()
    invoice = invoices.get_invoice(session, user, invoice_id)
    _require(user, flow.INVOICES_READ)
    language = request.args.get("lang", "zh_CN")
    pdf = render_invoice_pdf(session, ordo().registry, invoice, language)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_filename(invoice)}"'},
    )


@blp.route("/uninvoiced", methods=["GET"])
@blp.arguments(UninvoicedQuerySchema, location="query", unknown="raise")
@blp.response(200, UninvoicedListSchema)
@errors(blp, 401, 403, 422)
def list_uninvoiced(args: dict[str, Any]) -> dict[str, Any]:
    """Deliveries not invoiced within ``billing.invoices.late_days`` and without a recorded reason."""
    user, session = api_user(), db()
    as_of: dt.date = args.get("as_of") or company_now().date()
    rows = invoices.uninvoiced_deliveries(session, user, as_of)
    return {"items": [row.__dict__ for row in rows]}


@blp.route("/uninvoiced/reasons", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        UninvoicedReasonInSchema,
        example={"order_id": 7, "shipment_reference": "SH2026-000012", "reason": "月结合并开票"},
    )
)
@blp.response(201, UninvoicedReasonSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def record_uninvoiced_reason() -> tuple[dict[str, Any], int]:
    """Record why a delivery is not invoiced yet; it leaves the report."""
    user, session = api_user(), db()
    values = _load(UninvoicedReasonInSchema, read_json())
    row = invoices.record_uninvoiced_reason(
        session, user, values["order_id"], values["shipment_reference"], values["reason"]
    )
    answer = {
        "id": row.id,
        "order_id": row.order_id,
        "shipment_reference": row.shipment_reference,
        "reason": row.reason,
        "recorded_at": row.recorded_at,
    }
    commit()
    return answer, 201

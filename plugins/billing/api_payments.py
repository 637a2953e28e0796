"""API: payments, their allocation and payer proof, customer balances, payment providers.

``/api/v1/billing``: list, record and read payments (BL-6), allocate a payment to one or
several invoices or automatically (oldest due first), attach the customer's written proof
for a third-party payer (BL-3), read a customer's balance (BL-7), and manage the
online-payment providers whose signed webhook (:mod:`plugins.billing.webhook`) records
payments. The services in :mod:`plugins.billing.payments` check permissions and input;
here bodies are read and answers shaped. 404 outside the data scope, 403 without the
permission, 409 for a state, 422 with ``details`` for bad input; a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.labels import N_
from core.models import Customer, User
from core.schemas import MAX_ID
from core.services import ServiceError
from core.services.paging import decode_cursor, encode_cursor
from core.web import db
from plugins.billing import flow, ledger, payments, scope, webhook
from plugins.billing.errors import BillingError
from plugins.billing.models import PAYMENT_METHODS, BillingPayment

blp = Blueprint("billing_payments_api", __name__, url_prefix="/api/v1/billing", description="Billing: payments.")
blp.before_request(require_api_user)

PAYMENT_CURSOR = "bp"
FORBIDDEN = N_("You need the permission %(permission)s.")
INVALID = N_("The request is not valid.")


# --------------------------------------------------------------------------- schemas


class BillingPayAllocationSchema(Schema):
    """Part of the payment matched to an invoice."""

    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    invoice_number = fields.String(required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    amount = fields.Decimal(as_string=True, required=True)
    effective_on = fields.Date(required=True)


class BillingPaySchema(Schema):
    """A payment received (收款)."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    method = fields.String(required=True, metadata={"description": "bank_transfer, cash or online."})
    amount = fields.Decimal(as_string=True, required=True, metadata={"description": "In the payment's currency."})
    currency = fields.String(required=True)
    rate = fields.Decimal(as_string=True, required=True)
    amount_base = fields.Decimal(as_string=True, required=True, metadata={"description": "In CNY."})
    allocated = fields.Decimal(as_string=True, required=True)
    unallocated = fields.Decimal(as_string=True, required=True, metadata={"description": "In the balance."})
    received_on = fields.Date(required=True)
    payer_name = fields.String(required=True)
    third_party = fields.Boolean(required=True, metadata={"description": "The payer is not the customer."})
    needs_proof = fields.Boolean(required=True, metadata={"description": "Cannot be allocated before proof."})
    proof_attachment_id = fields.Integer(allow_none=True, required=True)
    reference = fields.String(required=True)
    note = fields.String(required=True)
    provider = fields.String(allow_none=True, required=True)
    event_id = fields.String(allow_none=True, required=True)
    allocations = fields.List(fields.Nested(BillingPayAllocationSchema), required=True)


class BillingPayPageSchema(Schema):
    """A page of payments, newest first."""

    items = fields.List(fields.Nested(BillingPaySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class BillingPayQuerySchema(PageQuerySchema):
    """Which payments to list."""

    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    method = fields.String(validate=validate.OneOf(list(PAYMENT_METHODS)))
    unallocated = fields.Boolean(metadata={"description": "Only payments with money left in the balance."})


class BillingPayInSchema(Schema):
    """A payment to record."""

    customer_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    method = fields.String(required=True, validate=validate.OneOf([m for m in PAYMENT_METHODS if m != "online"]))
    amount = fields.Raw(required=True, metadata={"description": "A decimal string above zero, two decimals."})
    currency = fields.String(load_default="CNY")
    rate = fields.Raw(load_default=None, allow_none=True, metadata={"description": "Required unless CNY."})
    received_on = fields.Date(required=True)
    payer_name = fields.String(required=True)
    reference = fields.String(load_default="")
    note = fields.String(load_default="")
    proof_attachment_id = fields.Integer(load_default=None, allow_none=True)
    auto_allocate = fields.Boolean(load_default=False, metadata={"description": "Allocate to open invoices now."})


class BillingPayAllocationInSchema(Schema):
    """One invoice and the amount of the payment to match to it."""

    invoice_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    amount = fields.Raw(required=True)


class BillingPayAllocateInSchema(Schema):
    """Allocations to make (all or none), or ``auto``: oldest due first."""

    allocations = fields.List(fields.Nested(BillingPayAllocationInSchema), load_default=list)
    auto = fields.Boolean(load_default=False)


class BillingPayProofInSchema(Schema):
    """The customer's written proof: an attachment of one of its orders."""

    attachment_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))


class BillingBalanceSchema(Schema):
    """A customer's balance (BL-7): unallocated payments and unused credit notes."""

    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    balance = fields.Decimal(as_string=True, required=True)
    open_receivables = fields.Decimal(as_string=True, required=True)
    payments = fields.List(fields.Dict(), required=True)
    credit_notes = fields.List(fields.Dict(), required=True)


class BillingProviderSchema(Schema):
    """An online-payment provider (the secret only in the answer that created it)."""

    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    active = fields.Boolean(required=True)
    webhook_url = fields.String(required=True)
    secret = fields.String(metadata={"description": "Only when just created: keep it, it is never shown again."})


class BillingProviderListSchema(Schema):
    """Every provider."""

    items = fields.List(fields.Nested(BillingProviderSchema), required=True)


class BillingProviderInSchema(Schema):
    """A provider to add."""

    code = fields.String(required=True)
    name = fields.String(required=True)


# --------------------------------------------------------------------------- helpers


def _load(schema: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as exc:
        raise BillingError("invalid", INVALID, 422, details=exc.messages) from None
    return loaded


def _require(user: User, permission: str) -> None:
    if not user.can(permission):
        raise BillingError("forbidden", FORBIDDEN, 403, permission=permission)


def payment_dict(session: Session, payment: BillingPayment, viewer: User | None = None) -> dict[str, Any]:
    """A payment with its allocations (those to invoices in ``viewer``'s scope), as the API shows it."""
    customer = session.get(Customer, payment.customer_id)
    return {
        "id": payment.id,
        "number": payment.number,
        "customer_id": payment.customer_id,
        "customer_code": customer.code if customer is not None else "",
        "method": payment.method,
        "amount": payment.amount,
        "currency": payment.currency,
        "rate": payment.rate,
        "amount_base": payment.amount_base,
        "allocated": payment.allocated,
        "unallocated": payment.unallocated,
        "received_on": payment.received_on,
        "payer_name": payment.payer_name,
        "third_party": customer is not None and payments.is_third_party(payment, customer),
        "needs_proof": payments.needs_proof(session, payment),
        "proof_attachment_id": payment.proof_attachment_id,
        "reference": payment.reference,
        "note": payment.note,
        "provider": payment.provider,
        "event_id": payment.event_id,
        "allocations": [
            {
                "id": a.id,
                "invoice_id": i.id,
                "invoice_number": i.number or "",
                "order_id": i.order_id,
                "amount": a.amount,
                "effective_on": a.effective_on,
            }
            for a, i in payments.allocations_of(session, payment.id, viewer)
        ],
    }


def _payment_answer(session: Session, user: User, payment_id: int) -> dict[str, Any]:
    session.expire_all()
    return payment_dict(session, scope.get_payment(session, user, payment_id), user)


def _provider_dict(provider: Any, secret: str | None = None) -> dict[str, Any]:
    from flask import url_for

    row = {
        "id": provider.id,
        "code": provider.code,
        "name": provider.name,
        "active": provider.active,
        "webhook_url": url_for("billing_webhooks.payment_event", provider=provider.code, _external=True),
    }
    if secret is not None:
        row["secret"] = secret
    return row


# --------------------------------------------------------------------------- payments


@blp.route("/payments", methods=["GET"])
@blp.arguments(BillingPayQuerySchema, location="query", unknown="raise")
@blp.response(200, BillingPayPageSchema)
@errors(blp, 401, 403, 422)
def list_payments(args: dict[str, Any]) -> dict[str, Any]:
    """Payments of the customers in your data scope, newest first; filter by customer, method, unallocated."""
    user, session = api_user(), db()
    _require(user, flow.PAYMENTS_READ)
    stmt = select(BillingPayment).where(scope.payment_scope(user)).order_by(BillingPayment.id.desc())
    if args.get("customer_id"):
        stmt = stmt.where(BillingPayment.customer_id == args["customer_id"])
    if args.get("method"):
        stmt = stmt.where(BillingPayment.method == args["method"])
    if args.get("unallocated"):
        stmt = stmt.where(BillingPayment.allocated < BillingPayment.amount_base)
    if args.get("cursor"):
        value = decode_cursor(PAYMENT_CURSOR, args["cursor"])
        if not value.isdigit() or len(value) > 19:
            raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
        stmt = stmt.where(BillingPayment.id < int(value))
    limit = args["limit"]
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor(PAYMENT_CURSOR, rows[limit - 1].id) if len(rows) > limit else None
    return {"items": [payment_dict(session, p, user) for p in rows[:limit]], "next_cursor": next_cursor}


@blp.route("/payments", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        BillingPayInSchema,
        example={
            "customer_id": 1,
            "method": "bank_transfer",
            "amount": "5000.00",
            "currency": "CNY",
            "received_on": "2026-12-02",
            "payer_name": "重庆山城机电有限公司",
            "reference": "招行回单 0012",
            "auto_allocate": True,
        },
    )
)
@blp.response(201, BillingPaySchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def create_payment() -> tuple[dict[str, Any], int]:
    """Record a bank transfer or cash payment (online ones come by the webhook); optionally allocate it at once."""
    user, session = api_user(), db()
    values = _load(BillingPayInSchema, read_json())
    payment = payments.record_payment(
        session,
        user,
        customer_id=values["customer_id"],
        method=values["method"],
        amount=values["amount"],
        received_on=values["received_on"],
        payer_name=values["payer_name"],
        currency=values["currency"],
        rate=values["rate"],
        reference=values["reference"],
        note=values["note"],
        proof_attachment_id=values["proof_attachment_id"],
    )
    if values["auto_allocate"]:
        payments.auto_allocate(session, user, payment)
    commit()
    return _payment_answer(session, user, payment.id), 201


@blp.route("/payments/<int:payment_id>", methods=["GET"])
@blp.response(200, BillingPaySchema)
@errors(blp, 401, 403, 404)
def get_payment(payment_id: int) -> dict[str, Any]:
    """One payment with its allocations."""
    user, session = api_user(), db()
    payment = scope.get_payment(session, user, payment_id)
    _require(user, flow.PAYMENTS_READ)
    return payment_dict(session, payment, user)


@blp.route("/payments/<int:payment_id>/allocations", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        BillingPayAllocateInSchema,
        example={"allocations": [{"invoice_id": 3, "amount": "2712.00"}, {"invoice_id": 4, "amount": "1000.00"}]},
    )
)
@blp.response(200, BillingPaySchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def allocate(payment_id: int) -> dict[str, Any]:
    """Allocate the payment to invoices (all rows or none), or with ``auto`` to the oldest due first."""
    user, session = api_user(), db()
    scope.get_payment(session, user, payment_id)
    values = _load(BillingPayAllocateInSchema, read_json())
    if values["auto"]:
        payment = scope.get_payment(session, user, payment_id, for_update=True)
        payments.auto_allocate(session, user, payment)
    else:
        rows = [(row["invoice_id"], row["amount"]) for row in values["allocations"]]
        payments.allocate_payment(session, user, payment_id, rows)
    commit()
    return _payment_answer(session, user, payment_id)


@blp.route("/payments/<int:payment_id>/proof", methods=["POST"])
@blp.doc(requestBody=json_body(BillingPayProofInSchema, example={"attachment_id": 17}))
@blp.response(200, BillingPaySchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def attach_proof(payment_id: int) -> dict[str, Any]:
    """Attach the customer's written proof that the payer pays for it (upload the file to an order first)."""
    user, session = api_user(), db()
    scope.get_payment(session, user, payment_id)
    values = _load(BillingPayProofInSchema, read_json())
    payments.attach_proof(session, user, payment_id, values["attachment_id"])
    commit()
    return _payment_answer(session, user, payment_id)


@blp.route("/balances/<int:customer_id>", methods=["GET"])
@blp.response(200, BillingBalanceSchema)
@errors(blp, 401, 403, 404)
def customer_balance(customer_id: int) -> dict[str, Any]:
    """A customer's balance: unallocated payments and unused credit notes, usable as prepayment (BL-7)."""
    user, session = api_user(), db()
    customer = scope.get_customer(session, user, customer_id)
    _require(user, flow.PAYMENTS_READ)
    open_payments, notes = payments.balance_sources(session, customer.id)
    return {
        "customer_id": customer.id,
        "customer_code": customer.code,
        "balance": ledger.customer_balance(session, customer.id),
        "open_receivables": ledger.open_receivables(session, customer.id),
        "payments": [
            {
                "id": p.id,
                "number": p.number,
                "received_on": p.received_on.isoformat(),
                "unallocated": str(p.unallocated),
            }
            for p in open_payments
        ],
        "credit_notes": [
            {
                "id": n.id,
                "number": n.number,
                "invoice_date": n.invoice_date.isoformat() if isinstance(n.invoice_date, dt.date) else None,
                "unused": str(n.open_amount),
            }
            for n in notes
        ],
    }


# --------------------------------------------------------------------------- providers


@blp.route("/payment-providers", methods=["GET"])
@blp.response(200, BillingProviderListSchema)
@errors(blp, 401, 403)
def list_providers() -> dict[str, Any]:
    """The online-payment providers and their webhook URLs (never their secrets)."""
    user, session = api_user(), db()
    _require(user, flow.SETTINGS_MANAGE)
    return {"items": [_provider_dict(p) for p in webhook.providers(session)]}


@blp.route("/payment-providers", methods=["POST"])
@blp.doc(requestBody=json_body(BillingProviderInSchema, example={"code": "wechat", "name": "微信支付"}))
@blp.response(201, BillingProviderSchema)
@errors(blp, 400, 401, 403, 409, 415, 422)
def create_provider() -> tuple[dict[str, Any], int]:
    """Add a provider; the answer holds its signing secret, shown this once only."""
    user, session = api_user(), db()
    values = _load(BillingProviderInSchema, read_json())
    provider, secret = webhook.create_provider(session, user, values["code"], values["name"])
    answer = _provider_dict(provider, secret)
    commit()
    return answer, 201

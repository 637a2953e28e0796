"""The signed online-payment webhook and its providers (BL-6: online payments settle automatically).

A provider's server posts each payment event to
``POST /api/v1/billing/webhooks/<provider>/payments`` with the header
``X-Ordo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.
There is no bearer token and no CSRF token: the signature over the exact body and the
timestamp is the proof. Ordo answers

- ``404`` for an unknown or deactivated provider;
- ``401`` when the signature header is missing or malformed, ``403`` when it is wrong,
  ``400`` when its timestamp is further from now than ``billing.webhook.tolerance_seconds``
  (a replayed or delayed event) — nothing is recorded;
- ``201`` with the payment recorded (method ``online``) and allocated automatically to the
  invoice the event names, then to the customer's oldest open invoices (the rest stays in
  the customer's balance, and finance is told);
- ``200`` with the same payment and ``"duplicate": true`` when the event was recorded
  before — the provider may repeat a delivery safely, also concurrently (the unique
  provider + event id and a savepoint make a racing twin lose); ``409`` when the same event
  id comes with different content.

Providers (code, name, secret) are managed by ``billing.settings.manage``; the secret is
generated here and shown once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.common import commit, errors, json_body
from core.clock import company_now
from core.labels import N_
from core.models import Customer, User
from core.notify import notify
from core.notify.recipients import ToRole
from core.services import NotFound, audit
from core.settings import get_setting
from core.web import db
from plugins.billing import flow, payments
from plugins.billing.errors import BillingError
from plugins.billing.models import PAYMENT_METHODS, BillingAllocation, BillingPayment, BillingPaymentProvider

SIGNATURE_HEADER = "X-Ordo-Signature"

bp = Blueprint(
    "billing_webhooks",
    __name__,
    url_prefix="/api/v1/billing/webhooks",
    description="Online-payment providers push payments here, signed with their secret (X-Ordo-Signature).",
)


def _exempt_webhooks_from_csrf() -> None:
    """Providers' servers call the webhook, never a browser: no CSRF token applies (the signature does)."""
    from core.app import csrf

    csrf.exempt(bp)


_exempt_webhooks_from_csrf()

NO_SIGNATURE = N_("The request is not signed: send the header X-Ordo-Signature: t=<unix time>,v1=<signature>.")
MALFORMED_SIGNATURE = N_("The signature header is malformed: expected t=<unix time>,v1=<hex HMAC-SHA256>.")
BAD_SIGNATURE = N_("The signature does not match the body; nothing was recorded.")
STALE = N_("The event was signed %(age)s seconds ago, more than the %(tolerance)s allowed: refused as a replay.")
MALFORMED_BODY = N_("The body is not a JSON object.")
INVALID_EVENT = N_("The payment event is not valid.")
UNKNOWN_CUSTOMER = N_("Unknown customer %(customer)s.")
EVENT_CONFLICT = N_("Event %(event)s was recorded as payment %(number)s with other content; it cannot change.")
FORBIDDEN = N_("You need the permission %(permission)s.")
BAD_CODE = N_("The code must be 2 to 32 lower-case letters, digits, '-' or '_'.")
CODE_TAKEN = N_("A provider with the code %(provider)s exists already.")
NO_NAME = N_("Give the provider's name (at most 100 characters).")


# --------------------------------------------------------------------------- providers


def _require(actor: User) -> None:
    if not actor.can(flow.SETTINGS_MANAGE):
        raise BillingError("forbidden", FORBIDDEN, 403, permission=flow.SETTINGS_MANAGE)


def providers(session: Session) -> list[BillingPaymentProvider]:
    """Every online-payment provider, active ones first."""
    return list(
        session.scalars(
            select(BillingPaymentProvider).order_by(BillingPaymentProvider.active.desc(), BillingPaymentProvider.code)
        )
    )


def create_provider(session: Session, actor: User, code: str, name: str) -> tuple[BillingPaymentProvider, str]:
    """Add a provider with a new secret; returns it and the secret (shown this once, never again)."""
    _require(actor)
    code = (code or "").strip().lower()
    name = (name or "").strip()
    if not re.fullmatch(r"[a-z0-9_-]{2,32}", code):
        raise BillingError("invalid", BAD_CODE, 422, details={"code": [BAD_CODE]})
    if not name or len(name) > 100:
        raise BillingError("invalid", NO_NAME, 422, details={"name": [NO_NAME]})
    if session.scalar(select(BillingPaymentProvider.id).where(BillingPaymentProvider.code == code)) is not None:
        raise BillingError("code_taken", CODE_TAKEN, 409, provider=code)
    secret = secrets.token_hex(32)
    provider = BillingPaymentProvider(code=code, name=name, secret=secret, active=True)
    session.add(provider)
    session.flush()
    audit.record(session, actor, "billing_payment_provider", provider.id, "create", {"code": code, "name": name})
    return provider, secret


def deactivate_provider(session: Session, actor: User, provider_id: int) -> BillingPaymentProvider:
    """Stop accepting a provider's events (its later calls answer 404)."""
    _require(actor)
    provider = session.get(BillingPaymentProvider, provider_id)
    if provider is None:
        raise NotFound("payment provider", provider_id)
    if provider.active:
        provider.active = False
        session.flush()
        audit.record(session, actor, "billing_payment_provider", provider.id, "deactivate", {"active": [True, False]})
    return provider


# --------------------------------------------------------------------------- signature


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The ``X-Ordo-Signature`` header value a provider sends for ``raw_body`` at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(session: Session, provider: BillingPaymentProvider, header: str | None, raw_body: bytes, now: float) -> None:
    """Refuse a missing or malformed (401), wrong (403) or too old (400) signature."""
    if not header or not header.strip():
        raise BillingError("signature_missing", NO_SIGNATURE, 401)
    parts: dict[str, str] = {}
    for piece in header.split(","):
        key, sep, value = piece.strip().partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or len(stamp) > 12 or not re.fullmatch(r"[0-9a-fA-F]{64}", given):
        raise BillingError("signature_malformed", MALFORMED_SIGNATURE, 401)
    expected = hmac.new(provider.secret.encode(), f"{stamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        raise BillingError("bad_signature", BAD_SIGNATURE, 403)
    tolerance = int(get_setting(session, flow.WEBHOOK_TOLERANCE))
    age = int(now) - int(stamp)
    if abs(age) > tolerance:
        raise BillingError("replayed_event", STALE, 400, age=age, tolerance=tolerance)


# --------------------------------------------------------------------------- the event


@dataclass
class Received:
    """What a delivery did: the payment, its allocations and whether it was a repeat."""

    payment: BillingPayment
    allocations: list[BillingAllocation] = field(default_factory=list)
    duplicate: bool = False


class _EventSchema(Schema):
    event_id = fields.String(required=True)
    customer = fields.String(required=True)
    amount = fields.Raw(required=True)
    currency = fields.String(load_default="CNY")
    rate = fields.Raw(load_default=None, allow_none=True)
    paid_at = fields.String(required=True)
    payer_name = fields.String(required=True)
    reference = fields.String(load_default="")
    invoice = fields.String(load_default=None, allow_none=True)


def _event(session: Session, raw_body: bytes) -> dict[str, Any]:
    """The event's fields, checked for shape (the payment rules are record_payment's)."""
    from marshmallow import ValidationError

    try:
        body = json.loads(raw_body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise BillingError("malformed_json", MALFORMED_BODY, 400)
    try:
        event: dict[str, Any] = _EventSchema().load(body, unknown="exclude")
    except ValidationError as exc:
        raise BillingError("invalid", INVALID_EVENT, 422, details=exc.messages) from None
    event_id = event["event_id"].strip()
    if not event_id or len(event_id) > 100:
        raise BillingError("invalid", INVALID_EVENT, 422, details={"event_id": ["1 to 100 characters."]})
    event["event_id"] = event_id
    try:
        event["paid_on"] = _date(event["paid_at"])
    except ValueError:
        raise BillingError("invalid", INVALID_EVENT, 422, details={"paid_at": ["An ISO 8601 date."]}) from None
    customer = session.scalar(select(Customer).where(Customer.code == event["customer"].strip()))
    if customer is None:
        raise BillingError(
            "invalid",
            UNKNOWN_CUSTOMER,
            422,
            details={"customer": [UNKNOWN_CUSTOMER % {"customer": repr(event["customer"])}]},
            customer=repr(event["customer"]),
        )
    event["customer_id"] = customer.id
    return event


def _date(text: str) -> dt.date:
    """An ISO date, or the company date of an ISO date-time."""
    text = text.strip()
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(company_now().tzinfo)
    return moment.date()


def _same(payment: BillingPayment, event: dict[str, Any]) -> bool:
    """Whether ``event`` says what the recorded ``payment`` says."""
    amount = payments.money(event["amount"])
    currency = (event["currency"] or "").strip().upper()
    rate = Decimal("1") if currency == "CNY" else payments._decimal(event["rate"])
    return (
        payment.customer_id == event["customer_id"]
        and amount == payment.amount
        and currency == payment.currency
        and rate is not None
        and rate == payment.rate
        and payment.received_on == event["paid_on"]
        and payment.payer_name == (event["payer_name"] or "").strip()
        and payment.reference == (event["reference"] or "").strip()
    )


def _repeat(payment: BillingPayment, event: dict[str, Any]) -> Received:
    if not _same(payment, event):
        raise BillingError("event_conflict", EVENT_CONFLICT, 409, event=event["event_id"], number=payment.number)
    return Received(payment, [], duplicate=True)


def receive_payment(
    session: Session, provider_code: str, signature: str | None, raw_body: bytes, *, now: float | None = None
) -> Received:
    """Check, record and allocate one signed payment event; nothing is written on any refusal.

    Raises :class:`BillingError` (see the module's answers) or ``NotFound`` for an unknown
    or inactive provider. A repeat of a recorded event returns it with ``duplicate``.
    The caller commits.
    """
    provider = session.scalar(
        select(BillingPaymentProvider).where(
            BillingPaymentProvider.code == provider_code, BillingPaymentProvider.active.is_(True)
        )
    )
    if provider is None:
        raise NotFound("payment provider", provider_code)
    verify(session, provider, signature, raw_body, time.time() if now is None else now)
    event = _event(session, raw_body)
    existing = payments.event_payment(session, provider.code, event["event_id"])
    if existing is not None:
        return _repeat(existing, event)
    try:
        payment = payments.record_payment(
            session,
            None,
            customer_id=event["customer_id"],
            method="online",
            amount=event["amount"],
            received_on=event["paid_on"],
            payer_name=event["payer_name"],
            currency=event["currency"],
            rate=event["rate"],
            reference=event["reference"],
            note=f"{provider.name}: {event['invoice']}" if event["invoice"] else provider.name,
            provider=provider.code,
            event_id=event["event_id"],
        )
    except BillingError as exc:
        if exc.code != "duplicate_event":
            raise
        # A concurrent delivery of the same event won: give back what this one took.
        session.rollback()
        existing = payments.event_payment(session, provider_code, event["event_id"])
        if existing is None:  # pragma: no cover - the unique constraint said it exists
            raise
        return _repeat(existing, event)
    allocations = payments.auto_allocate(session, None, payment, prefer=event["invoice"])
    session.refresh(payment)
    if payment.unallocated > 0:
        customer = session.get(Customer, payment.customer_id)
        notify(
            session,
            payments.PAYMENT_UNALLOCATED.name,
            to=[ToRole("finance")],
            context={
                "number": payment.number,
                "customer": customer.name if customer is not None else "",
                "method": PAYMENT_METHODS["online"],
                "payer": payment.payer_name,
                "reference": payment.reference,
                "amount": str(payment.amount_base),
                "unallocated": str(payment.unallocated),
                "proof_missing": payments.needs_proof(session, payment),
            },
            dedupe_key=f"billing.payment_unallocated:{payment.id}",
        )
    return Received(payment, allocations)


# --------------------------------------------------------------------------- the endpoint


class BillingWebhookAllocationSchema(Schema):
    """An allocation the event made."""

    invoice_id = fields.Integer(required=True)
    invoice_number = fields.String(required=True)
    amount = fields.Decimal(as_string=True, required=True)


class BillingWebhookAnswerSchema(Schema):
    """The payment recorded for the event (now, or by an earlier delivery)."""

    payment_id = fields.Integer(required=True)
    payment_number = fields.String(required=True)
    amount_base = fields.Decimal(as_string=True, required=True)
    unallocated = fields.Decimal(as_string=True, required=True)
    allocations = fields.List(fields.Nested(BillingWebhookAllocationSchema), required=True)
    duplicate = fields.Boolean(required=True, metadata={"description": "True: recorded by an earlier delivery."})


class BillingWebhookEventSchema(Schema):
    """A payment event as a provider sends it."""

    event_id = fields.String(required=True, metadata={"description": "The provider's unique id of the event."})
    customer = fields.String(required=True, metadata={"description": "The customer's code in Ordo."})
    amount = fields.Decimal(as_string=True, required=True)
    currency = fields.String(metadata={"description": "ISO code; default CNY. Other currencies need `rate`."})
    rate = fields.Decimal(as_string=True, metadata={"description": "1 unit = rate CNY."})
    paid_at = fields.String(required=True, metadata={"description": "ISO 8601 date or date-time."})
    payer_name = fields.String(required=True)
    reference = fields.String()
    invoice = fields.String(metadata={"description": "An invoice number to pay first."})


def answer(session: Session, received: Received) -> dict[str, Any]:
    """The webhook's answer for ``received``."""
    payment = received.payment
    rows = payments.allocations_of(session, payment.id)
    mine = {a.id for a in received.allocations}
    shown = [(a, i) for a, i in rows if not received.allocations or a.id in mine]
    return {
        "payment_id": payment.id,
        "payment_number": payment.number,
        "amount_base": payment.amount_base,
        "unallocated": payment.unallocated,
        "allocations": [{"invoice_id": i.id, "invoice_number": i.number or "", "amount": a.amount} for a, i in shown],
        "duplicate": received.duplicate,
    }


@bp.route("/<string:provider>/payments", methods=["POST"])
@bp.doc(
    security=[],
    parameters=[
        {
            "in": "header",
            "name": SIGNATURE_HEADER,
            "required": True,
            "schema": {"type": "string"},
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>' with the provider's secret>.",
        }
    ],
    requestBody=json_body(
        BillingWebhookEventSchema,
        example={
            "event_id": "evt_20261202_0001",
            "customer": "C001",
            "amount": "2712.00",
            "currency": "CNY",
            "paid_at": "2026-12-02",
            "payer_name": "重庆山城机电有限公司",
            "reference": "WX4200001234",
            "invoice": "INV2026-000001",
        },
    ),
)
@bp.response(201, BillingWebhookAnswerSchema)
@errors(bp, 400, 401, 403, 404, 409, 422)
def payment_event(provider: str) -> tuple[dict[str, Any], int]:
    """A provider pushes one payment: recorded and allocated (201), or the earlier record of the same event (200)."""
    session = db()
    received = receive_payment(session, provider, request.headers.get(SIGNATURE_HEADER), request.get_data(cache=True))
    result = answer(session, received)
    commit()
    return result, 200 if received.duplicate else 201

"""API: the credit gate and its exceptions (``/api/v1/billing``; RV-7, BL-5).

Other systems ask here what the screens show: a customer's exposure and hold reasons,
the gate's answer for an order on every path, and they grant, list and revoke credit
exceptions. The service module :mod:`plugins.billing.credit` checks permissions,
validates and changes; here bodies are read, the data scope applied and answers shaped.
404 for a customer, order or exception outside the caller's data scope, 403 without the
permission, 409 for a state that forbids the change, 422 for bad input; a refused request
changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.labels import N_
from core.models import Order, User
from core.schemas import MAX_ID
from core.security.scopes import order_visible
from core.services.orders import get_order
from core.web import db
from plugins.billing import credit, flow, scope
from plugins.billing.errors import BillingError
from plugins.billing.models import GATE_PATHS, BillingCreditException

blp = Blueprint("billing_credit_api", __name__, url_prefix="/api/v1/billing", description="Billing: credit.")
blp.before_request(require_api_user)

STATES = ("valid", "expired", "revoked")


class BillingExposureSchema(Schema):
    """A customer's exposure against the credit limit (CNY)."""

    open_receivables = fields.Decimal(as_string=True, required=True)
    uninvoiced = fields.Decimal(as_string=True, required=True, metadata={"description": "Confirmed, not invoiced."})
    this_order = fields.Decimal(as_string=True, required=True)
    total = fields.Decimal(as_string=True, required=True)
    limit = fields.Decimal(as_string=True, required=True, allow_none=True, metadata={"description": "null: none."})
    available = fields.Decimal(as_string=True, required=True, allow_none=True)


class BillingCustomerCreditSchema(Schema):
    """A customer's credit standing: exposure and why it is on hold (empty: good standing)."""

    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    on_hold = fields.Boolean(required=True)
    reasons = fields.List(fields.String(), required=True)
    exposure = fields.Nested(BillingExposureSchema, required=True)


class BillingOrderCreditSchema(Schema):
    """The gate's answer for an order on each path (an empty list: the path passes)."""

    order_id = fields.Integer(required=True)
    number = fields.String(required=True)
    exception_valid = fields.Boolean(required=True)
    roles_still_to_grant = fields.List(fields.String(), required=True)
    exposure = fields.Nested(BillingExposureSchema, required=True)
    paths = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)


class BillingExceptionInSchema(Schema):
    """A grant: the reason is required."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class BillingRevokeInSchema(Schema):
    """A revocation: an optional reason."""

    reason = fields.String(load_default="", validate=validate.Length(max=500))


class BillingExceptionSchema(Schema):
    """One named role's grant of a credit exception for an order."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    order_number = fields.String(required=True)
    customer_id = fields.Integer(required=True)
    role_code = fields.String(required=True)
    reason = fields.String(required=True)
    hold_reasons = fields.List(fields.String(), required=True)
    granted_by_id = fields.Integer(required=True, allow_none=True)
    granted_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)
    state = fields.String(required=True, metadata={"description": "valid, expired or revoked."})


class BillingExceptionQuerySchema(PageQuerySchema):
    """Which grants to list (newest first)."""

    order_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    customer_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    state = fields.String(validate=validate.OneOf(STATES))


class BillingExceptionPageSchema(Schema):
    """One page of grants and the next page's cursor (null on the last page)."""

    items = fields.List(fields.Nested(BillingExceptionSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


def _load(schema: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as exc:
        raise BillingError("invalid", N_("The request is not valid."), details=exc.messages) from None
    return loaded


def _require(user: User, *permissions: str) -> None:
    if not any(user.can(p) for p in permissions):
        raise BillingError(
            "forbidden", N_("You need the permission %(permission)s."), 403, permission=" / ".join(permissions)
        )


def _exposure(exp: credit.Exposure) -> dict[str, Any]:
    return {
        "open_receivables": exp.open_receivables,
        "uninvoiced": exp.uninvoiced,
        "this_order": exp.this_order,
        "total": exp.total,
        "limit": exp.limit,
        "available": exp.available,
    }


def _grant(grant: BillingCreditException, number: str) -> dict[str, Any]:
    return {
        "id": grant.id,
        "order_id": grant.order_id,
        "order_number": number,
        "customer_id": grant.customer_id,
        "role_code": grant.role_code,
        "reason": grant.reason,
        "hold_reasons": list(grant.hold_reasons or []),
        "granted_by_id": grant.granted_by_id,
        "granted_at": grant.granted_at,
        "expires_at": grant.expires_at,
        "revoked_at": grant.revoked_at,
        "state": credit.exception_state(grant),
    }


@blp.route("/credit/<int:customer_id>", methods=["GET"])
@blp.response(200, BillingCustomerCreditSchema)
@errors(blp, 401, 403, 404)
def customer_credit(customer_id: int) -> dict[str, Any]:
    """Read a customer's exposure and credit hold reasons (`billing.accounts.read`)."""
    user, session = api_user(), db()
    customer = scope.get_customer(session, user, customer_id)
    _require(user, flow.ACCOUNTS_READ)
    reasons = credit.hold_reasons(session, customer.id)
    return {
        "customer_id": customer.id,
        "customer_code": customer.code,
        "on_hold": bool(reasons),
        "reasons": reasons,
        "exposure": _exposure(credit.exposure(session, customer.id)),
    }


@blp.route("/orders/<int:order_id>/credit", methods=["GET"])
@blp.response(200, BillingOrderCreditSchema)
@errors(blp, 401, 403, 404)
def order_credit(order_id: int) -> dict[str, Any]:
    """Read the gate's answer for an order on every path (`billing.accounts.read`)."""
    user, session = api_user(), db()
    order = get_order(session, user, order_id)
    _require(user, flow.ACCOUNTS_READ)
    return {
        "order_id": order.id,
        "number": order.number,
        "exception_valid": credit.valid_exception(session, order.id),
        "roles_still_to_grant": credit.roles_still_to_grant(session, order.id),
        "exposure": _exposure(credit.exposure(session, order.customer_id, order)),
        "paths": {path: credit.gate_reasons(session, order, path) for path in GATE_PATHS},
    }


@blp.route("/orders/<int:order_id>/credit-exceptions", methods=["POST"])
@blp.doc(requestBody=json_body(BillingExceptionInSchema, example={"reason": "Key account; paying on Friday"}))
@blp.response(201, BillingExceptionSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def grant_exception(order_id: int) -> tuple[dict[str, Any], int]:
    """Grant a credit exception for the order for one of your named roles (`billing.credit.exception`)."""
    user, session = api_user(), db()
    values = _load(BillingExceptionInSchema, read_json())
    grant = credit.grant_exception(session, user, order_id, values["reason"])
    grant_id = grant.id
    commit()
    grant = session.get(BillingCreditException, grant_id)  # type: ignore[assignment]
    order = session.get(Order, grant.order_id)
    return _grant(grant, order.number if order else ""), 201


@blp.route("/credit-exceptions", methods=["GET"])
@blp.arguments(BillingExceptionQuerySchema, location="query", unknown="raise")
@blp.response(200, BillingExceptionPageSchema)
@errors(blp, 400, 401, 403)
def list_exceptions(query: dict[str, Any]) -> dict[str, Any]:
    """List credit exception grants on orders in your scope, newest first (`billing.accounts.read`)."""
    from core.db import utcnow

    user, session = api_user(), db()
    _require(user, flow.ACCOUNTS_READ, flow.CREDIT_EXCEPTION)
    stmt = (
        select(BillingCreditException, Order.number)
        .join(Order, Order.id == BillingCreditException.order_id)
        .where(order_visible(BillingCreditException.order_id, user))
    )
    if query.get("order_id"):
        stmt = stmt.where(BillingCreditException.order_id == query["order_id"])
    if query.get("customer_id"):
        stmt = stmt.where(BillingCreditException.customer_id == query["customer_id"])
    now = utcnow()
    state = query.get("state")
    if state == "revoked":
        stmt = stmt.where(BillingCreditException.revoked_at.is_not(None))
    elif state == "valid":
        stmt = stmt.where(BillingCreditException.revoked_at.is_(None), BillingCreditException.expires_at > now)
    elif state == "expired":
        stmt = stmt.where(BillingCreditException.revoked_at.is_(None), BillingCreditException.expires_at <= now)
    cursor = query.get("cursor")
    if cursor:
        if not cursor.isdigit():
            raise BillingError("invalid", N_("The request is not valid."), details={"cursor": ["Not a valid cursor."]})
        stmt = stmt.where(BillingCreditException.id < int(cursor))
    limit = query["limit"]
    rows = session.execute(stmt.order_by(BillingCreditException.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [_grant(grant, number) for grant, number in rows],
        "next_cursor": str(rows[-1][0].id) if more and rows else None,
    }


@blp.route("/credit-exceptions/<int:exception_id>/revoke", methods=["POST"])
@blp.doc(requestBody=json_body(BillingRevokeInSchema, required=False, example={"reason": "Customer did not pay"}))
@blp.response(200, BillingExceptionSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def revoke_exception(exception_id: int) -> dict[str, Any]:
    """Revoke a grant: the order's exception stops being valid at once (`billing.credit.exception`)."""
    user, session = api_user(), db()
    values = _load(BillingRevokeInSchema, read_json(required=False))
    credit.revoke_exception(session, user, exception_id, values["reason"])
    commit()
    grant = session.get(BillingCreditException, exception_id)
    order = session.get(Order, grant.order_id) if grant else None
    return _grant(grant, order.number if order else "")  # type: ignore[arg-type]

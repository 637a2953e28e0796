"""API: customer accounts and payment terms (``/api/v1/billing/accounts``, ``/api/v1/billing/terms``).

What the account and terms screens do: read a customer's account (terms, credit limit,
rating, next review, block, guarantee, prepayment ratio, invoice type, balance, open
receivables, exposure), change it (``PATCH`` with ``version`` or ``If-Match``; a stale
version answers 409), record a rating review, list and manage payment terms and show a
term's due schedule for an invoice date and total.

Thin endpoints over :mod:`plugins.billing.accounts` and :mod:`plugins.billing.terms`:
404 for a customer outside the caller's billing scope (checked before anything else),
403 without ``billing.accounts.read`` / ``billing.accounts.manage`` /
``billing.terms.manage``, 409 for a stale version or a duplicate code, 422 with
per-field ``details`` for bad input; a refused request changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import (
    IF_MATCH,
    PageQuerySchema,
    commit,
    errors,
    json_body,
    keyset_page,
    merge_version,
    read_json,
)
from core.labels import N_
from core.models import Customer, User
from core.web import db
from plugins.billing import accounts, flow, ledger, terms
from plugins.billing.account_views import exposure_amount
from plugins.billing.errors import BillingError
from plugins.billing.models import RATINGS, TERM_KINDS, BillingAccount, BillingPaymentTerm
from plugins.billing.scope import customer_scope, get_customer

blp = Blueprint(
    "billing_accounts_api",
    __name__,
    url_prefix="/api/v1/billing",
    description="Billing: customer accounts (credit limit, rating, terms) and payment terms.",
)
blp.before_request(require_api_user)

UNKNOWN_FIELD = N_("Unknown field.")
INVALID = N_("The request is not valid.")
READ_FORBIDDEN = N_("You may not see customers' credit.")
BAD_QUERY_DATE = N_("Enter a date (YYYY-MM-DD).")
BAD_QUERY_TOTAL = N_("Enter an amount.")


# --------------------------------------------------------------------------- schemas


class InstalmentSchema(Schema):
    """One instalment: a percentage of the invoice due some days after its date."""

    percent = fields.Decimal(as_string=True, required=True, metadata={"example": "50"})
    due_days = fields.Integer(required=True, metadata={"example": 30})


class TermSchema(Schema):
    """Payment terms (BL-1)."""

    id = fields.Integer(dump_only=True)
    code = fields.String(required=True, validate=validate.Length(max=32))
    name = fields.String(required=True, validate=validate.Length(max=100))
    kind = fields.String(required=True, validate=validate.OneOf(list(TERM_KINDS)))
    special = fields.Boolean(dump_only=True, metadata={"description": "Orders on these terms need finance's approval."})
    prepayment_percent = fields.Decimal(as_string=True, metadata={"description": "Prepayment terms: percent (0–100]."})
    cutoff_day = fields.Integer(metadata={"description": "Monthly settlement: cut-off day 1–31."})
    days_after_month_end = fields.Integer(metadata={"description": "Monthly settlement: days after the month end."})
    due_days = fields.Integer(metadata={"description": "Prepayment, cash on delivery: days after the invoice date."})
    active = fields.Boolean()
    instalments = fields.List(fields.Nested(InstalmentSchema), metadata={"description": "Instalment terms only."})


class TermListSchema(Schema):
    """Every payment term by code."""

    items = fields.List(fields.Nested(TermSchema), required=True)


class TermQuerySchema(Schema):
    """Which terms to list."""

    include_inactive = fields.Boolean(load_default=False, metadata={"description": "Also list deactivated terms."})
    kind = fields.String(validate=validate.OneOf(list(TERM_KINDS)))


class ScheduleQuerySchema(Schema):
    """The invoice to compute a schedule for."""

    invoice_date = fields.Date(required=True, metadata={"description": "The invoice date (YYYY-MM-DD)."})
    total = fields.Decimal(required=True, as_string=True, metadata={"description": "The invoice total (CNY)."})


class DueSchema(Schema):
    """One due date and amount."""

    due_on = fields.Date(required=True)
    amount = fields.Decimal(as_string=True, required=True)


class ScheduleSchema(Schema):
    """A term's due schedule: amounts summing exactly to the total."""

    term_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    invoice_date = fields.Date(required=True)
    total = fields.Decimal(as_string=True, required=True)
    dues = fields.List(fields.Nested(DueSchema), required=True)


class AccountSchema(Schema):
    """A customer's billing account (BL-5) with its balance and exposure."""

    customer_id = fields.Integer(required=True)
    customer_code = fields.String(required=True)
    customer_name = fields.String(required=True)
    term = fields.String(allow_none=True, metadata={"description": "The payment terms' code (null: none)."})
    term_id = fields.Integer(allow_none=True)
    credit_limit = fields.Decimal(as_string=True, allow_none=True, metadata={"description": "null: no limit."})
    rating = fields.String(validate=validate.OneOf(list(RATINGS)))
    next_review_on = fields.Date(allow_none=True)
    blocked = fields.Boolean()
    block_reason = fields.String()
    guarantee_on_file = fields.Boolean()
    guarantee_note = fields.String()
    prepayment_ratio = fields.Decimal(as_string=True)
    invoice_type = fields.String(validate=validate.OneOf(["special", "normal"]))
    note = fields.String()
    version = fields.Integer(required=True)
    balance = fields.Decimal(as_string=True, metadata={"description": "Unallocated payments + unused credit notes."})
    open_receivables = fields.Decimal(as_string=True)
    exposure = fields.Decimal(as_string=True, allow_none=True)


class AccountChangeSchema(Schema):
    """A change of an account: fields left out stay; ``version`` (or If-Match) guards against stale writes."""

    term = fields.String(allow_none=True, metadata={"description": "Code or id of active terms; null or '' for none."})
    credit_limit = fields.Decimal(as_string=True, allow_none=True)
    blocked = fields.Boolean()
    block_reason = fields.String()
    guarantee_on_file = fields.Boolean()
    guarantee_note = fields.String()
    prepayment_ratio = fields.Decimal(as_string=True)
    invoice_type = fields.String()
    note = fields.String()
    version = fields.Integer()


class AccountPageSchema(Schema):
    """One page of accounts (by customer code) and the next page's cursor."""

    items = fields.List(fields.Nested(AccountSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class RatingInSchema(Schema):
    """A rating review."""

    rating = fields.String(required=True, validate=validate.OneOf(list(RATINGS)))
    note = fields.String(metadata={"description": "Required when the rating changes."})
    next_review_on = fields.Date(
        allow_none=True, metadata={"description": "After today; default today + review months."}
    )


# --------------------------------------------------------------------------- helpers


def _require(user: User, permission: str) -> None:
    if not user.can(permission):
        raise BillingError("forbidden", READ_FORBIDDEN, status=403)


def _known(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise BillingError("invalid", INVALID, details={k: [UNKNOWN_FIELD] for k in unknown})


def _account_out(session: Session, customer: Customer, account: BillingAccount) -> dict[str, Any]:
    return {
        "customer_id": customer.id,
        "customer_code": customer.code,
        "customer_name": customer.name,
        "term": account.term.code if account.term is not None else None,
        "term_id": account.term_id,
        "credit_limit": account.credit_limit,
        "rating": account.rating,
        "next_review_on": account.next_review_on,
        "blocked": account.blocked,
        "block_reason": account.block_reason,
        "guarantee_on_file": account.guarantee_on_file,
        "guarantee_note": account.guarantee_note,
        "prepayment_ratio": account.prepayment_ratio,
        "invoice_type": account.invoice_type,
        "note": account.note,
        "version": account.version,
        "balance": ledger.customer_balance(session, customer.id),
        "open_receivables": ledger.open_receivables(session, customer.id),
        "exposure": exposure_amount(session, customer.id),
    }


def _term_out(term: BillingPaymentTerm) -> dict[str, Any]:
    return {
        "id": term.id,
        "code": term.code,
        "name": term.name,
        "kind": term.kind,
        "special": term.special,
        "prepayment_percent": term.prepayment_percent,
        "cutoff_day": term.cutoff_day,
        "days_after_month_end": term.days_after_month_end,
        "due_days": term.due_days,
        "active": term.active,
        "instalments": [{"percent": i.percent, "due_days": i.due_days} for i in term.instalments],
    }


def _read_account(customer_id: int) -> dict[str, Any]:
    session = db()
    user = api_user()
    customer = get_customer(session, user, customer_id)
    _require(user, flow.ACCOUNTS_READ)
    account = accounts.account_view(session, customer.id)  # the defaults, unsaved, until first changed
    return _account_out(session, session.get(Customer, customer_id) or customer, account)


# --------------------------------------------------------------------------- accounts


@blp.route("/accounts", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query", unknown="raise")
@blp.response(200, AccountPageSchema)
@errors(blp, 401, 403, 422)
def list_accounts(args: dict[str, Any]) -> dict[str, Any]:
    """List the accounts of the customers in the caller's scope, by customer code (keyset paged)."""
    session = db()
    user = api_user()
    _require(user, flow.ACCOUNTS_READ)
    stmt = select(Customer).where(customer_scope(user)).order_by(Customer.code)
    customers, next_cursor = keyset_page(session, stmt, Customer.code, "ba", args["limit"], args.get("cursor"))
    rows = [(c, accounts.account_view(session, c.id)) for c in customers]
    return {"items": [_account_out(session, c, a) for c, a in rows], "next_cursor": next_cursor}


@blp.route("/accounts/<int:customer_id>")
class AccountItem(MethodView):
    """One customer's account."""

    @blp.response(200, AccountSchema)
    @errors(blp, 401, 403, 404)
    def get(self, customer_id: int) -> dict[str, Any]:
        """Read a customer's account (created with the defaults on first use)."""
        return _read_account(customer_id)

    @blp.doc(
        requestBody=json_body(AccountChangeSchema, example={"credit_limit": "200000", "version": 1}),
        parameters=[IF_MATCH],
    )
    @blp.response(200, AccountSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, customer_id: int) -> dict[str, Any]:
        """Change an account: terms, credit limit, block and reason, guarantee, prepayment ratio, invoice type."""
        session = db()
        user = api_user()
        get_customer(session, user, customer_id)
        body = merge_version(read_json())
        _known(body, (*accounts.FIELDS, "version"))
        accounts.update_account(session, user, customer_id, body)
        commit()
        return _read_account(customer_id)


@blp.route("/accounts/<int:customer_id>/rating", methods=["POST"])
@blp.doc(requestBody=json_body(RatingInSchema, example={"rating": "C", "note": "两次逾期超过 30 天"}))
@blp.response(200, AccountSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def rate_account(customer_id: int) -> dict[str, Any]:
    """Record a rating review; a poor rating raises the required prepayment ratio (never lowers it)."""
    session = db()
    user = api_user()
    get_customer(session, user, customer_id)
    body = read_json()
    _known(body, ("rating", "note", "next_review_on"))
    accounts.set_rating(
        session,
        user,
        customer_id,
        str(body.get("rating") or ""),
        str(body.get("note") or ""),
        body.get("next_review_on"),
    )
    commit()
    return _read_account(customer_id)


# --------------------------------------------------------------------------- terms


@blp.route("/terms")
class Terms(MethodView):
    """The payment terms and their creation."""

    @blp.arguments(TermQuerySchema, location="query", unknown="raise")
    @blp.response(200, TermListSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List payment terms by code (active ones unless `include_inactive`; optionally one `kind`)."""
        _require(api_user(), flow.ACCOUNTS_READ)
        stmt = select(BillingPaymentTerm).order_by(BillingPaymentTerm.code)
        if not args["include_inactive"]:
            stmt = stmt.where(BillingPaymentTerm.active.is_(True))
        if args.get("kind"):
            stmt = stmt.where(BillingPaymentTerm.kind == args["kind"])
        return {"items": [_term_out(t) for t in db().scalars(stmt)]}

    @blp.doc(
        requestBody=json_body(
            TermSchema,
            example={
                "code": "INST-3",
                "name": "分期付款 30/30/40",
                "kind": "instalments",
                "instalments": [
                    {"percent": "30", "due_days": 0},
                    {"percent": "30", "due_days": 30},
                    {"percent": "40", "due_days": 60},
                ],
            },
        )
    )
    @blp.response(201, TermSchema)
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[dict[str, Any], int]:
        """Create payment terms: `code` (unique), `name`, `kind` and the kind's parameters."""
        body = read_json()
        _known(body, tuple(TermSchema._declared_fields))
        term = terms.create_term(db(), api_user(), body)
        commit()
        return _term_out(term), 201


@blp.route("/terms/<int:term_id>")
class TermItem(MethodView):
    """One payment term."""

    @blp.response(200, TermSchema)
    @errors(blp, 401, 403, 404)
    def get(self, term_id: int) -> dict[str, Any]:
        """Read payment terms with their instalments."""
        _require(api_user(), flow.ACCOUNTS_READ)
        return _term_out(terms.get_term(db(), term_id))

    @blp.doc(requestBody=json_body(TermSchema, required=True, example={"cutoff_day": 25, "active": True}))
    @blp.response(200, TermSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, term_id: int) -> dict[str, Any]:
        """Change payment terms; fields left out stay, `instalments` replace the schedule; `active: false` retires."""
        body = read_json()
        _known(body, tuple(TermSchema._declared_fields))
        term = terms.update_term(db(), api_user(), term_id, body)
        commit()
        return _term_out(term)


def _query_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    raise BillingError("invalid", INVALID, details={"invoice_date": [BAD_QUERY_DATE]})


def _query_total(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise BillingError("invalid", INVALID, details={"total": [BAD_QUERY_TOTAL]}) from None


@blp.route("/terms/<int:term_id>/schedule", methods=["GET"])
@blp.arguments(ScheduleQuerySchema, location="query", unknown="raise")
@blp.response(200, ScheduleSchema)
@errors(blp, 401, 403, 404, 422)
def term_schedule(args: dict[str, Any], term_id: int) -> dict[str, Any]:
    """The due dates and amounts of an invoice of `total` dated `invoice_date` on these terms."""
    _require(api_user(), flow.ACCOUNTS_READ)
    term = terms.get_term(db(), term_id)
    invoice_date = _query_date(args["invoice_date"])
    total = _query_total(args["total"])
    dues = terms.due_schedule(term, term.kind, invoice_date, total)
    return {
        "term_id": term.id,
        "kind": term.kind,
        "invoice_date": invoice_date,
        "total": sum((amount for _d, amount in dues), Decimal("0")),
        "dues": [{"due_on": due, "amount": amount} for due, amount in dues],
    }

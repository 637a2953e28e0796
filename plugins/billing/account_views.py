"""Customer account screens (BL-5): the accounts list and a customer's account page.

* ``/billing/accounts`` — every customer in the reader's scope with terms, credit
  limit, exposure, rating, next review and block; filters: blocked, review due, rating.
* ``/billing/accounts/<customer_id>`` — the account: the edit form (terms, limit,
  block, guarantee, prepayment ratio, invoice type, note), the rating review form, the
  rating history, the balance (BL-7), open receivables and credit hold reasons.

Reading needs ``billing.accounts.read``; changing ``billing.accounts.manage``. Thin
views over :mod:`plugins.billing.accounts`; out-of-scope customers answer 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer
from core.services import ServiceError
from core.views.common import FieldErrors, abort_for, current_actor, field_errors, paginate, permission_required
from core.web import db
from plugins.billing import accounts, credit, flow, ledger, terms
from plugins.billing.errors import BillingError
from plugins.billing.models import INVOICE_TYPES, RATINGS, BillingAccount, BillingInvoice
from plugins.billing.scope import customer_scope, get_customer
from plugins.billing.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Customer accounts"),
        "billing.account_list",
        permission=flow.ACCOUNTS_READ,
        order=10,
        icon="person-vcard",
        plugin="billing",
    ),
)


def exposure_amount(session: Any, customer_id: int) -> Decimal:
    """The customer's credit exposure as the credit gate computes it."""
    return credit.exposure(session, customer_id).total


def hold_reasons(session: Any, customer_id: int) -> list[str]:
    """Why the customer is on credit hold now (the credit gate's reasons; empty when none)."""
    return list(credit.hold_reasons(session, customer_id))


def _account_page(customer_id: int, errors: FieldErrors | None = None, values: Any = None, status: int = 200) -> Any:
    session = db()
    actor = current_actor()
    try:
        customer = get_customer(session, actor, customer_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    account = accounts.account_view(session, customer.id)  # the defaults, unsaved, until first changed
    open_invoices = list(
        session.scalars(
            select(BillingInvoice)
            .where(
                BillingInvoice.customer_id == customer.id,
                BillingInvoice.kind == "invoice",
                BillingInvoice.status == "issued",
                BillingInvoice.settled < BillingInvoice.total,
            )
            .order_by(BillingInvoice.due_date, BillingInvoice.id)
            .limit(50)
        )
    )
    return (
        render_template(
            "billing/account_view.html",
            customer=customer,
            account=account,
            values=values or {},
            errors=errors or FieldErrors(),
            terms=terms.active_terms(session),
            ratings=RATINGS,
            invoice_types=INVOICE_TYPES,
            history=accounts.rating_history(session, account),
            balance=ledger.customer_balance(session, customer.id),
            receivables=ledger.open_receivables(session, customer.id),
            open_invoices=open_invoices,
            exposure=exposure_amount(session, customer.id),
            holds=hold_reasons(session, customer.id),
            can_manage=actor.can(flow.ACCOUNTS_MANAGE),
            today=accounts.today(),
        ),
        status,
    )


@bp.get("/accounts")
@permission_required(flow.ACCOUNTS_READ)
def account_list() -> str:
    """Customers in scope with their accounts; filter by blocked, review due, rating; search code or name."""
    session = db()
    actor = current_actor()
    args = {k: request.args.get(k, "").strip() for k in ("q", "blocked", "review_due", "rating")}
    stmt = (
        select(Customer)
        .outerjoin(BillingAccount, BillingAccount.customer_id == Customer.id)
        .where(customer_scope(actor))
    )
    if args["q"]:
        pattern = f"%{args['q']}%"
        stmt = stmt.where(or_(Customer.code.ilike(pattern), Customer.name.ilike(pattern)))
    if args["blocked"]:
        stmt = stmt.where(BillingAccount.blocked.is_(True))
    if args["review_due"]:
        stmt = stmt.where(BillingAccount.next_review_on <= accounts.today())
    if args["rating"] in RATINGS:
        rating = args["rating"]
        if rating == "B":  # customers without an account yet are rated B
            stmt = stmt.where(or_(BillingAccount.rating == rating, BillingAccount.id.is_(None)))
        else:
            stmt = stmt.where(BillingAccount.rating == rating)
    page = paginate(
        session,
        stmt,
        sortable={
            "code": Customer.code,
            "name": Customer.name,
            "limit": BillingAccount.credit_limit,
            "rating": BillingAccount.rating,
            "review": BillingAccount.next_review_on,
        },
        default_sort="code",
        endpoint="billing.account_list",
        args={k: v for k, v in args.items() if v},
        tie_breaker=Customer.id,
    )
    ids = [c.id for c in page.rows]
    by_customer = {
        a.customer_id: a for a in session.scalars(select(BillingAccount).where(BillingAccount.customer_id.in_(ids)))
    }
    exposures = {cid: exposure_amount(session, cid) for cid in ids}
    return render_template(
        "billing/account_list.html",
        page=page,
        accounts=by_customer,
        exposures=exposures,
        filters=args,
        rating_options=[(code, _(label)) for code, label in RATINGS.items()],
        today=accounts.today(),
    )


@bp.get("/accounts/<int:customer_id>")
@permission_required(flow.ACCOUNTS_READ)
def account_view(customer_id: int) -> Any:
    """A customer's account: edit form, rating review, history, balance and open receivables."""
    return _account_page(customer_id)


@bp.post("/accounts/<int:customer_id>")
@permission_required(flow.ACCOUNTS_MANAGE)
def account_update(customer_id: int) -> Any:
    """Save the account form (terms, limit, block, guarantee, prepayment ratio, invoice type, note)."""
    session = db()
    form = request.form
    values: dict[str, Any] = {name: form.get(name, "") for name in accounts.FIELDS}
    values["blocked"] = form.get("blocked") == "1"
    values["guarantee_on_file"] = form.get("guarantee_on_file") == "1"
    values["version"] = form.get("version", "")
    try:
        accounts.update_account(session, current_actor(), customer_id, values)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details)
        message = exc.localized() if isinstance(exc, BillingError) else exc.message
        if not errors.fields:
            errors.general.append(message)
        flash(message, "danger")
        return _account_page(customer_id, errors, values, exc.status)
    flash(_("The customer account was saved."), "success")
    return redirect(url_for("billing.account_view", customer_id=customer_id))


@bp.post("/accounts/<int:customer_id>/rating")
@permission_required(flow.ACCOUNTS_MANAGE)
def account_rating(customer_id: int) -> Any:
    """Record a rating review: rating, note, next review (raises the prepayment ratio for poor ratings)."""
    session = db()
    form = request.form
    try:
        account = accounts.set_rating(
            session,
            current_actor(),
            customer_id,
            form.get("rating", ""),
            form.get("note", ""),
            form.get("next_review_on") or None,
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        errors = field_errors(exc.details)
        errors.fields = {f"rating_{k}": v for k, v in errors.fields.items()}
        message = exc.localized() if isinstance(exc, BillingError) else exc.message
        flash(message, "danger")
        values = {f"rating_{k}": form.get(k, "") for k in ("rating", "note", "next_review_on")}
        return _account_page(customer_id, errors, values, exc.status)
    flash(
        _("Rating %(rating)s recorded; next review on %(date)s.", rating=account.rating, date=account.next_review_on),
        "success",
    )
    return redirect(url_for("billing.account_view", customer_id=customer_id))

"""Payment screens (``/billing/payments…``): record, list, allocate, payer proof, balance, providers.

- **Payments**: a paginated list filtered by customer, method and "money left"; the
  record form (method, amount, currency — a rate field appears for another currency than
  CNY —, received date, payer, reference), keyboard-friendly with access keys.
- **Payment page**: what was received and allocated; the allocation table lists the
  customer's open invoices with their open amounts and an amount field each, posted with
  a confirmation; "allocate automatically" serves the oldest due first. A third-party
  payer shows the proof section: upload the customer's written confirmation onto one of
  its orders, or pick a file already attached (BL-3).
- **Customer balance** (BL-7): unallocated payments and unused credit notes.
- **Online-payment providers**: add one (its secret shown once) or deactivate it.

The services (:mod:`plugins.billing.payments`, :mod:`plugins.billing.webhook`) check
permissions and input; their refusals are flashed in the reader's language.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer, OrderAttachment
from core.services import ServiceError
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.web import db
from plugins.billing import flow, ledger, payments, scope, webhook
from plugins.billing.errors import BillingError
from plugins.billing.models import PAYMENT_METHODS, BillingPayment
from plugins.billing.views import bp

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Payments"),
        "billing.payment_list",
        permission=flow.PAYMENTS_READ,
        order=40,
        icon="cash-coin",
        plugin="billing",
    ),
    MenuItem(
        N_("Record payment"),
        "billing.payment_new",
        permission=flow.PAYMENTS_RECORD,
        order=41,
        icon="plus-circle",
        plugin="billing",
    ),
    MenuItem(
        N_("Payment providers"),
        "billing.payment_providers",
        permission=flow.SETTINGS_MANAGE,
        order=95,
        icon="plug",
        plugin="billing",
    ),
)

_FORM = ("customer", "method", "amount", "currency", "rate", "received_on", "payer_name", "reference", "note")


def _message(exc: ServiceError) -> str:
    """The refusal in the reader's language; 403/404 become the error pages."""
    abort_for(exc)
    return exc.localized() if isinstance(exc, BillingError) else exc.message


def _customers(session: Any) -> list[Customer]:
    user = current_actor()
    return list(
        session.scalars(
            select(Customer).where(Customer.active.is_(True), scope.customer_scope(user)).order_by(Customer.code)
        )
    )


def _method_labels() -> dict[str, str]:
    return {code: _(label) for code, label in PAYMENT_METHODS.items()}


# --------------------------------------------------------------------------- list


@bp.get("/payments")
@permission_required(flow.PAYMENTS_READ)
def payment_list() -> str:
    """Payments of the customers in the user's scope, newest first."""
    session = db()
    user = current_actor()
    args = query_args("q", "method", "unallocated", "customer_id")
    stmt = (
        select(BillingPayment)
        .join(Customer, Customer.id == BillingPayment.customer_id)
        .where(scope.payment_scope(user))
    )
    if "q" in args:
        pattern = f"%{args['q']}%"
        stmt = stmt.where(
            or_(
                Customer.code.ilike(pattern),
                Customer.name.ilike(pattern),
                BillingPayment.number.ilike(pattern),
                BillingPayment.payer_name.ilike(pattern),
                BillingPayment.reference.ilike(pattern),
            )
        )
    if args.get("customer_id", "").isdigit():
        stmt = stmt.where(BillingPayment.customer_id == int(args["customer_id"]))
    if args.get("method") in PAYMENT_METHODS:
        stmt = stmt.where(BillingPayment.method == args["method"])
    if args.get("unallocated"):
        stmt = stmt.where(BillingPayment.allocated < BillingPayment.amount_base)
    page = paginate(
        session,
        stmt,
        sortable={
            "number": BillingPayment.number,
            "received_on": BillingPayment.received_on,
            "customer": Customer.code,
            "amount": BillingPayment.amount_base,
        },
        default_sort="-received_on",
        endpoint="billing.payment_list",
        args=args,
        tie_breaker=BillingPayment.id,
    )
    customers = {
        c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_({p.customer_id for p in page.rows})))
    }
    filters = [
        {
            "name": "method",
            "label": _("Method"),
            "kind": "select",
            "value": args.get("method", ""),
            "options": list(_method_labels().items()),
        },
        {
            "name": "unallocated",
            "label": _("Money left to allocate"),
            "kind": "checkbox",
            "value": args.get("unallocated"),
        },
    ]
    return render_template(
        "billing/payment_list.html",
        page=page,
        customers=customers,
        filters=filters,
        search=args.get("q", ""),
        methods=_method_labels(),
        needs_proof={p.id for p in page.rows if payments.needs_proof(session, p)},
    )


# --------------------------------------------------------------------------- record


@bp.route("/payments/new", methods=["GET", "POST"])
@permission_required(flow.PAYMENTS_RECORD)
def payment_new() -> str | Response:
    """Record money received; then go to its page to allocate it."""
    session = db()
    user = current_actor()
    today = company_now().date()
    values: dict[str, str] = {"method": "bank_transfer", "currency": "CNY", "received_on": today.isoformat()}
    if request.args.get("customer_id", "").isdigit():
        values["customer"] = request.args["customer_id"]
    errors: list[str] = []
    if request.method == "POST":
        values = {name: request.form.get(name, "").strip() for name in _FORM}
        try:
            received = dt.date.fromisoformat(values["received_on"]) if values["received_on"] else None
        except ValueError:
            received = None
        if not values["customer"].isdigit():
            errors.append(_("Choose the customer."))
        else:
            if not values["payer_name"]:
                chosen = session.scalars(
                    select(Customer).where(Customer.id == int(values["customer"]), scope.customer_scope(user))
                ).first()  # never the name of a customer outside the user's scope
                values["payer_name"] = chosen.name if chosen is not None else ""
            try:
                payment = payments.record_payment(
                    session,
                    user,
                    customer_id=int(values["customer"]),
                    method=values["method"],
                    amount=values["amount"],
                    received_on=received,
                    payer_name=values["payer_name"],
                    currency=values["currency"] or "CNY",
                    rate=values["rate"] or None,
                    reference=values["reference"],
                    note=values["note"],
                )
                if request.form.get("auto_allocate"):
                    payments.auto_allocate(session, user, payment)
                session.commit()
            except ServiceError as exc:
                session.rollback()
                errors.append(_message(exc))
            else:
                flash(_("Payment %(number)s was recorded.", number=payment.number), "success")
                return redirect(url_for("billing.payment_view", payment_id=payment.id))
    return render_template(
        "billing/payment_form.html",
        values=values,
        errors=errors,
        customers=_customers(session),
        methods={k: v for k, v in _method_labels().items() if k != "online"},
        today=today,
    )


# --------------------------------------------------------------------------- one payment


@bp.get("/payments/<int:payment_id>")
@permission_required(flow.PAYMENTS_READ)
def payment_view(payment_id: int) -> str:
    """A payment with its allocations, the open invoices to allocate to, and the payer proof."""
    session = db()
    user = current_actor()
    try:
        payment = scope.get_payment(session, user, payment_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    open_invoices = payments.open_invoices(session, user, payment.customer_id)
    return render_template(
        "billing/payment_view.html",
        payment=payment,
        customer=customer,
        methods=_method_labels(),
        allocations=payments.allocations_of(session, payment.id, user),
        open_invoices=open_invoices,
        third_party=payments.is_third_party(payment, customer),
        needs_proof=payments.needs_proof(session, payment),
        orders=payments.customer_orders(session, user, customer.id) if user.can(flow.PAYMENTS_RECORD) else [],
        candidates=payments.proof_candidates(session, user, customer.id) if user.can(flow.PAYMENTS_RECORD) else [],
        proof=session.get(OrderAttachment, payment.proof_attachment_id) if payment.proof_attachment_id else None,
        can_record=user.can(flow.PAYMENTS_RECORD),
        balance=ledger.customer_balance(session, customer.id),
    )


@bp.post("/payments/<int:payment_id>/allocate")
@permission_required(flow.PAYMENTS_RECORD)
def payment_allocate(payment_id: int) -> Response:
    """Allocate the amounts typed per invoice (all or none)."""
    session = db()
    user = current_actor()
    rows: list[tuple[int, Decimal | str]] = []
    for key, value in request.form.items():
        if key.startswith("amount-") and key[7:].isdigit() and value.strip():
            rows.append((int(key[7:]), value.strip()))
    try:
        made = payments.allocate_payment(session, user, payment_id, rows)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(_message(exc), "danger")
    else:
        total = sum((a.amount for a in made), Decimal("0"))
        flash(_("%(amount)s CNY allocated to %(count)s invoices.", amount=total, count=len(made)), "success")
    return redirect(url_for("billing.payment_view", payment_id=payment_id))


@bp.post("/payments/<int:payment_id>/auto-allocate")
@permission_required(flow.PAYMENTS_RECORD)
def payment_auto_allocate(payment_id: int) -> Response:
    """Allocate what is left to the customer's open invoices, oldest due first."""
    session = db()
    user = current_actor()
    try:
        payment = scope.get_payment(session, user, payment_id, for_update=True)
        if payments.needs_proof(session, payment):
            raise BillingError("proof_required", payments.PROOF_REQUIRED, 422, payer=payment.payer_name)
        made = payments.auto_allocate(session, user, payment)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(_message(exc), "danger")
    else:
        if made:
            total = sum((a.amount for a in made), Decimal("0"))
            flash(_("%(amount)s CNY allocated to %(count)s invoices.", amount=total, count=len(made)), "success")
        else:
            flash(_("No open invoice of the customer could take the payment; it stays in the balance."), "info")
    return redirect(url_for("billing.payment_view", payment_id=payment_id))


@bp.post("/payments/<int:payment_id>/proof")
@permission_required(flow.PAYMENTS_RECORD)
def payment_proof(payment_id: int) -> Response:
    """Upload the customer's written proof onto one of its orders, or pick a file already attached."""
    session = db()
    user = current_actor()
    upload = request.files.get("file")
    chosen = request.form.get("attachment_id", "").strip()
    order_id = request.form.get("order_id", "").strip()
    try:
        if upload is not None and upload.filename:
            if not order_id.isdigit():
                raise BillingError("invalid", N_("Choose the order the proof is filed with."), 422)
            payments.upload_proof(
                session,
                user,
                payment_id,
                int(order_id),
                filename=upload.filename,
                data=upload.read(),
                note=request.form.get("note", ""),
            )
        elif chosen.isdigit():
            payments.attach_proof(session, user, payment_id, int(chosen))
        else:
            raise BillingError("invalid", N_("Choose a file to upload or one already attached."), 422)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(_message(exc), "danger")
    else:
        flash(_("The payer proof was attached; the payment can be allocated now."), "success")
    return redirect(url_for("billing.payment_view", payment_id=payment_id))


# --------------------------------------------------------------------------- balance


@bp.get("/customers/<int:customer_id>/balance")
@permission_required(flow.PAYMENTS_READ)
def payment_balance(customer_id: int) -> str:
    """A customer's balance (BL-7): unallocated payments and unused credit notes, and what it owes."""
    session = db()
    user = current_actor()
    try:
        customer = scope.get_customer(session, user, customer_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    open_payments, notes = payments.balance_sources(session, customer.id)
    return render_template(
        "billing/payment_balance.html",
        customer=customer,
        balance=ledger.customer_balance(session, customer.id),
        receivables=ledger.open_receivables(session, customer.id),
        open_payments=open_payments,
        notes=notes,
        open_invoices=payments.open_invoices(session, user, customer.id),
        methods=_method_labels(),
        can_record=user.can(flow.PAYMENTS_RECORD),
    )


# --------------------------------------------------------------------------- providers


@bp.route("/payment-providers", methods=["GET", "POST"])
@permission_required(flow.SETTINGS_MANAGE)
def payment_providers() -> str:
    """The online-payment providers; adding one shows its new secret this once."""
    session = db()
    user = current_actor()
    errors: list[str] = []
    values = {"code": "", "name": ""}
    if request.method == "POST":
        values = {"code": request.form.get("code", "").strip(), "name": request.form.get("name", "").strip()}
        try:
            provider, secret = webhook.create_provider(session, user, values["code"], values["name"])
            session.commit()
        except ServiceError as exc:
            session.rollback()
            errors.append(_message(exc))
        else:
            return render_template(
                "billing/payment_provider_secret.html",
                provider=provider,
                secret=secret,
                webhook_url=url_for("billing_webhooks.payment_event", provider=provider.code, _external=True),
            )
    return render_template(
        "billing/payment_providers.html",
        providers=webhook.providers(session),
        values=values,
        errors=errors,
    )


@bp.post("/payment-providers/<int:provider_id>/deactivate")
@permission_required(flow.SETTINGS_MANAGE)
def payment_provider_deactivate(provider_id: int) -> Response:
    """Stop accepting a provider's events."""
    session = db()
    try:
        provider = webhook.deactivate_provider(session, current_actor(), provider_id)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        flash(_message(exc), "danger")
    else:
        flash(_("Provider %(code)s no longer records payments.", code=provider.code), "success")
    return redirect(url_for("billing.payment_providers"))

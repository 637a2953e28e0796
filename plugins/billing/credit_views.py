"""Credit screens (RV-7, BL-5): customers on credit hold, credit exceptions, an order's gate.

* ``/billing/credit/holds`` — customers in the reader's scope on credit hold now, each
  with its reasons and its open orders (in the reader's scope), each order linking to
  its gate page;
* ``/billing/credit/exceptions`` — every grant (valid, expired, revoked) with its reason,
  expiry and the paths passed under it; revoke with confirmation;
* ``/billing/credit/orders/<order_id>`` — the gate's answer for the order on every path,
  its grants, and the form granting an exception for one of the user's named roles.

Reading needs ``billing.accounts.read``; granting and revoking
``billing.credit.exception``. Thin views over :mod:`plugins.billing.credit`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer, Order
from core.security.scopes import order_visible
from core.services import ServiceError
from core.services.orders import get_order, visible_orders
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.views.messages import localize
from core.web import db
from plugins.billing import credit, flow
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    GATE_PATHS,
    BillingAccount,
    BillingCreditException,
    BillingExceptionUse,
    BillingInvoice,
)
from plugins.billing.scope import customer_scope
from plugins.billing.views import bp

#: Menu entries of these screens.
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Credit holds"),
        "billing.credit_holds",
        permission=flow.ACCOUNTS_READ,
        order=20,
        icon="shield-exclamation",
        plugin="billing",
    ),
    MenuItem(
        N_("Credit exceptions"),
        "billing.credit_exceptions",
        permission=flow.ACCOUNTS_READ,
        order=21,
        icon="shield-check",
        plugin="billing",
    ),
)

#: Order statuses that still commit the company (shown under a customer on hold).
OPEN_STATUSES = ("draft", "submitted", "confirmed")


def _message(exc: ServiceError) -> str:
    return exc.localized() if isinstance(exc, BillingError) else localize(exc.message)


@bp.get("/credit/holds")
@permission_required(flow.ACCOUNTS_READ)
def credit_holds() -> str:
    """Customers on credit hold now, with the reasons and their open orders."""
    session, actor = db(), current_actor()
    search = request.args.get("q", "").strip()
    candidates = select(Customer.id).where(
        customer_scope(actor),
        or_(
            Customer.id.in_(select(BillingAccount.customer_id)),
            Customer.id.in_(select(BillingInvoice.customer_id).where(BillingInvoice.status == "issued")),
            Customer.id.in_(select(Order.customer_id).where(Order.status == "confirmed")),
        ),
    )
    if search:
        like = f"%{search}%"
        candidates = candidates.where(or_(Customer.code.ilike(like), Customer.name.ilike(like)))
    holds = credit.holds_by_customer(session, session.scalars(candidates))
    customers = (
        list(session.scalars(select(Customer).where(Customer.id.in_(list(holds))).order_by(Customer.code)))
        if holds
        else []
    )
    orders: dict[int, list[Order]] = {}
    if customers:
        for order in session.scalars(
            visible_orders(actor)
            .where(Order.customer_id.in_([c.id for c in customers]), Order.status.in_(OPEN_STATUSES))
            .order_by(Order.created_at.desc())
        ):
            orders.setdefault(order.customer_id, []).append(order)
    rows = [
        {
            "customer": customer,
            "reasons": [reason.localized() for reason in holds[customer.id]],
            "orders": orders.get(customer.id, []),
        }
        for customer in customers
    ]
    return render_template("billing/credit_holds.html", rows=rows, search=search)


@bp.get("/credit/exceptions")
@permission_required(flow.ACCOUNTS_READ)
def credit_exceptions() -> str:
    """Every credit exception grant in the reader's scope, newest first, with its state and uses."""
    session, actor = db(), current_actor()
    args = query_args("state", "q")
    stmt = (
        select(BillingCreditException)
        .join(Order, Order.id == BillingCreditException.order_id)
        .where(order_visible(BillingCreditException.order_id, actor))
    )
    if args.get("q"):
        stmt = stmt.where(Order.number.ilike(f"%{args['q']}%"))
    from core.db import utcnow

    now = utcnow()
    state = args.get("state")
    if state == "revoked":
        stmt = stmt.where(BillingCreditException.revoked_at.is_not(None))
    elif state == "valid":
        stmt = stmt.where(BillingCreditException.revoked_at.is_(None), BillingCreditException.expires_at > now)
    elif state == "expired":
        stmt = stmt.where(BillingCreditException.revoked_at.is_(None), BillingCreditException.expires_at <= now)
    page = paginate(
        session,
        stmt,
        sortable={"granted": BillingCreditException.granted_at, "expires": BillingCreditException.expires_at},
        default_sort="-granted",
        endpoint="billing.credit_exceptions",
        args=args,
        tie_breaker=BillingCreditException.id,
    )
    order_ids = {grant.order_id for grant in page.rows}
    numbers = dict(session.execute(select(Order.id, Order.number).where(Order.id.in_(order_ids))).tuples().all())
    used: dict[int, list[BillingExceptionUse]] = {}
    for use in session.scalars(
        select(BillingExceptionUse).where(BillingExceptionUse.order_id.in_(order_ids)).order_by(BillingExceptionUse.at)
    ):
        used.setdefault(use.order_id, []).append(use)
    rows = [
        {
            "grant": grant,
            "number": numbers.get(grant.order_id, ""),
            "state": credit.exception_state(grant, now),
            "uses": used.get(grant.order_id, []),
        }
        for grant in page.rows
    ]
    return render_template(
        "billing/credit_exceptions.html",
        page=page,
        rows=rows,
        state=state or "",
        search=args.get("q", ""),
        paths=GATE_PATHS,
        may_revoke=actor.can(flow.CREDIT_EXCEPTION),
    )


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


@bp.get("/credit/orders/<int:order_id>")
@permission_required(flow.ACCOUNTS_READ)
def credit_order(order_id: int) -> str:
    """The gate's answer for an order on each path, its grants and the grant form."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    return _order_page(session, actor, order, reason=request.args.get("reason", ""))


def _order_page(session: Any, actor: Any, order: Order, reason: str = "", error: str = "") -> str:
    from core.db import utcnow

    now = utcnow()
    answers = {path: credit.localized_reasons(session, order, path) for path in GATE_PATHS}
    holds = [r.localized() for r in credit.hold_details(session, order.customer_id, order, "release")]
    grants = list(
        session.scalars(
            select(BillingCreditException)
            .where(BillingCreditException.order_id == order.id)
            .order_by(BillingCreditException.id.desc())
        )
    )
    uses = list(
        session.scalars(
            select(BillingExceptionUse).where(BillingExceptionUse.order_id == order.id).order_by(BillingExceptionUse.at)
        )
    )
    still = credit.roles_still_to_grant(session, order.id)
    held = {role.code for role in actor.roles}
    return render_template(
        "billing/credit_order.html",
        order=order,
        exposure=credit.exposure(session, order.customer_id, order),
        answers=answers,
        paths=GATE_PATHS,
        holds=holds,
        grants=[(g, credit.exception_state(g, now)) for g in grants],
        uses=uses,
        valid=credit.valid_exception(session, order.id),
        still=still,
        may_grant=actor.can(flow.CREDIT_EXCEPTION)
        and bool(holds)
        and any(role in held for role in still)
        and order.status not in credit.CLOSED_STATUSES,
        may_revoke=actor.can(flow.CREDIT_EXCEPTION),
        reason=reason,
        error=error,
    )


@bp.post("/credit/orders/<int:order_id>/exceptions")
@permission_required(flow.CREDIT_EXCEPTION)
def credit_grant(order_id: int) -> Response | tuple[str, int]:
    """Grant a credit exception for the order for one of the user's named roles."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    reason = request.form.get("reason", "")
    try:
        grant = credit.grant_exception(session, actor, order.id, reason)
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        return _order_page(session, actor, _order(order_id), reason=reason, error=_message(exc)), 422
    role = grant.role_code
    session.commit()
    flash(_("Credit exception granted for order %(number)s as %(role)s.", number=order.number, role=role), "success")
    return redirect(url_for("billing.credit_order", order_id=order.id))


@bp.post("/credit/exceptions/<int:exception_id>/revoke")
@permission_required(flow.CREDIT_EXCEPTION)
def credit_revoke(exception_id: int) -> Response:
    """Revoke one grant (the form asks for confirmation)."""
    session, actor = db(), current_actor()
    try:
        grant = credit.revoke_exception(session, actor, exception_id, request.form.get("reason", ""))
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_message(exc), "danger")
        return redirect(url_for("billing.credit_exceptions"))
    order_id = grant.order_id
    session.commit()
    flash(_("The credit exception was revoked."), "success")
    target = request.form.get("next", "")
    if target == "order":
        return redirect(url_for("billing.credit_order", order_id=order_id))
    return redirect(url_for("billing.credit_exceptions"))

"""The one credit gate (RV-7, BL-5): exposure, holds, exceptions with expiry, weekly report.

Why one module: every path that commits the company further — confirmation, re-opening
a completed order, copying an order, release to shipping, each shipment, finance's
approval, review's credit check and intake's pre-check — asks :func:`gate_reasons`
(through :mod:`plugins.billing.flow`, the bridges and the logistics shipment hook), so
no path can bypass the same rules:

- **exposure** = open receivables (issued invoices not yet settled) + what confirmed
  orders still have to invoice + this order (:func:`exposure`);
- the customer is on **credit hold** when blocked, over the credit limit, with amounts
  overdue past the grace period (setting ``billing.credit.grace_days``), or — on the
  paths *release* and *shipment* — without the prepayment the order's terms require
  (:func:`hold_reasons`);
- a **credit exception** lets one order pass: every role named in
  ``billing.credit.exception_roles`` grants once, with a reason, each by a different
  person holding that role; it expires after ``billing.credit.exception_days`` and can be
  revoked. Copies never inherit it. Every path passed only thanks to an exception is
  recorded (:class:`~plugins.billing.models.BillingExceptionUse`) and listed once in the
  weekly report to the role in ``billing.credit.report_role``.

Reasons are English sentences (the API's language, ``msgid % params``); screens show
the same sentence from billing's catalogue through :class:`HoldReason`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from core.clock import company_now
from core.contrib import Badge, Finding, Job, NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import Customer, Order
from core.models.order import to_cents
from core.notify import notify
from core.notify.recipients import Recipient, ToRole, ToUser
from core.services import NotFound, audit
from core.services.orders import get_order
from core.settings import get_setting
from plugins.billing import flow, ledger
from plugins.billing.errors import BillingError
from plugins.billing.models import (
    GATE_PATHS,
    BillingAccount,
    BillingCreditException,
    BillingExceptionUse,
    BillingInvoice,
    BillingInvoiceDue,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import User

ZERO = Decimal("0.00")
HALF_CENT = Decimal("0.005")
#: Paths on which a missing required prepayment holds the order (goods about to leave).
PREPAYMENT_PATHS = ("release", "shipment")
#: Order statuses an exception can no longer be granted for.
CLOSED_STATUSES = ("completed", "cancelled", "rejected")

# Hold reasons (sentences a salesperson can act on).
BLOCKED = N_("Customer %(customer)s is blocked by finance.")
BLOCKED_BECAUSE = N_("Customer %(customer)s is blocked by finance: %(reason)s")
OVER_LIMIT = N_(
    "Customer %(customer)s is over the credit limit: exposure %(exposure)s CNY against a limit of %(limit)s CNY."
)
OVERDUE = N_("Customer %(customer)s has %(amount)s CNY overdue by more than %(days)s days.")
#: The same in lists, which do not add up the amount (the order's page says how much).
OVERDUE_UNTOLD = N_("Customer %(customer)s has amounts overdue by more than %(days)s days.")
PREPAYMENT_MISSING = N_(
    "The required prepayment of %(required)s CNY is not covered: %(paid)s CNY paid on the order or in the "
    "customer's balance."
)

# Refusals.
NOT_ALLOWED = N_("You may not grant credit exceptions.")
NOT_A_NAMED_ROLE = N_("You hold none of the roles that still have to grant this exception: %(roles)s.")
ALREADY_GRANTED = N_("You have already granted this exception; another named role must grant the rest.")
ALREADY_VALID = N_("Order %(number)s already has a valid credit exception.")
REASON_REQUIRED = N_("Give the reason for the credit exception.")
REASON_TOO_LONG = N_("The reason may have at most %(max)s characters.")
ORDER_CLOSED = N_("Order %(number)s is %(state)s; no credit exception can be granted for it.")
NO_HOLD = N_("Customer %(customer)s is not on credit hold: there is nothing to except.")
NOT_FOUND = N_("Credit exception %(id)s was not found.")
ALREADY_REVOKED = N_("Credit exception %(id)s was already revoked.")
REVIEW_EXCEPTION = "Review credit exception: %s"

BADGE_LABEL = N_("Credit hold")

EXCEPTION_REPORT = NotificationTemplate(
    "billing.exception_report",
    label=N_("Weekly report of orders and shipments passed under a credit exception (to the general manager)"),
    subject={
        "zh_CN": "信用例外周报：{{ uses|length }} 项例外放行",
        "en": "Credit exceptions this week: {{ uses|length }} passed under an exception",
    },
    body={
        "zh_CN": "以下订单或发货在信用冻结期间凭例外审批放行：\n\n"
        "{% for u in uses %}- {{ u.at }} {{ u.order }}（{{ u.customer }}）{{ u.path_zh }}"
        "{% if u.reference %} {{ u.reference }}{% endif %}，金额 {{ u.amount }} CNY；冻结原因：{{ u.reasons }}\n"
        "{% endfor %}",
        "en": "These orders or shipments passed while the customer was on credit hold, under an exception:\n\n"
        "{% for u in uses %}- {{ u.at }} {{ u.order }} ({{ u.customer }}) {{ u.path_en }}"
        "{% if u.reference %} {{ u.reference }}{% endif %}, {{ u.amount }} CNY; hold: {{ u.reasons }}\n"
        "{% endfor %}",
    },
    plugin="billing",
)

CREDIT_HOLD = NotificationTemplate(
    "billing.credit_hold",
    label=N_("Order held by the credit gate (to the salesperson and the exception roles)"),
    subject={
        "zh_CN": "订单 {{ order.number }} 因客户信用冻结被暂停",
        "en": "Order {{ order.number }} is on credit hold",
    },
    body={
        "zh_CN": "订单 {{ order.number }}（{{ order.customer.name }}）因客户信用冻结未能通过{{ path_zh }}：\n\n"
        "{% for reason in reasons %}- {{ reason }}\n{% endfor %}\n"
        "如需例外放行，须由以下角色分别批准：{{ roles }}。\n",
        "en": "Order {{ order.number }} ({{ order.customer.name }}) is on credit hold at {{ path_en }}:\n\n"
        "{% for reason in reasons %}- {{ reason }}\n{% endfor %}\n"
        "An exception needs the approval of each of these roles: {{ roles }}.\n",
    },
    plugin="billing",
)

#: The paths in Chinese for the notices (the screens use GATE_PATHS through the catalogue).
_PATHS_ZH = {
    "confirm": "确认",
    "reopen": "重新打开",
    "copy": "复制订单",
    "release": "出库放行",
    "shipment": "发货",
    "finance_check": "财务审核",
    "review": "评审信用检查",
    "precheck": "预检",
}


@dataclass(frozen=True)
class HoldReason:
    """One reason for a credit hold: a catalogue ``msgid`` and its values."""

    msgid: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The English sentence (API, logs, history)."""
        return self.msgid % self.params if self.params else self.msgid

    def localized(self) -> str:
        """The sentence in the current request's language (needs a Flask request context)."""
        from flask_babel import gettext

        return gettext(self.msgid, **self.params)


@dataclass(frozen=True)
class Exposure:
    """What the company has at stake with a customer, against the credit limit (CNY)."""

    customer_id: int
    open_receivables: Decimal
    uninvoiced: Decimal
    this_order: Decimal
    limit: Decimal | None

    @property
    def total(self) -> Decimal:
        """Open receivables + uninvoiced confirmed orders + this order."""
        return self.open_receivables + self.uninvoiced + self.this_order

    @property
    def available(self) -> Decimal | None:
        """What is left under the limit (negative: over it); None without a limit."""
        return None if self.limit is None else self.limit - self.total

    @property
    def over_limit(self) -> bool:
        """Whether the exposure is above the limit."""
        return self.limit is not None and self.total > self.limit


@dataclass
class _Standing:
    """The customer-level facts of a hold (no order): account, exposure parts, overdue."""

    customer: Customer
    blocked: bool
    block_reason: str
    limit: Decimal | None
    open_receivables: Decimal = ZERO
    uninvoiced: Decimal = ZERO
    #: Something is overdue past the grace period; ``overdue`` is how much, None when
    #: not added up (lists).
    late: bool = False
    overdue: Decimal | None = ZERO


def money(value: Decimal) -> str:
    """An amount as the reasons show it: two decimals with thousands separators."""
    return format(to_cents(Decimal(value)), ",.2f")


def _default_limit(session: Session) -> Decimal | None:
    value = Decimal(str(get_setting(session, flow.DEFAULT_CREDIT_LIMIT) or 0))
    return to_cents(value) if value > 0 else None


def _today() -> dt.date:
    return company_now().date()


def _accounts(session: Session, ids: list[int]) -> dict[int, _Standing]:
    """Each customer's account facts (blocked, limit) without amounts: two queries."""
    default_limit = _default_limit(session)
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    accounts = {
        a.customer_id: a for a in session.scalars(select(BillingAccount).where(BillingAccount.customer_id.in_(ids)))
    }
    result: dict[int, _Standing] = {}
    for cid, customer in customers.items():
        account = accounts.get(cid)
        if account is None:
            result[cid] = _Standing(customer, False, "", default_limit)
        else:
            limit = to_cents(account.credit_limit) if account.credit_limit is not None else None
            result[cid] = _Standing(customer, account.blocked, account.block_reason or "", limit)
    return result


def _add_exposure(session: Session, standings: dict[int, _Standing]) -> None:
    """Fill in open receivables and uninvoiced confirmed orders (two queries and one more)."""
    ids = sorted(standings)
    if not ids:
        return
    # An invoice's settled never exceeds its total (a check constraint): only invoices
    # still open add to the sum, and the partial index ix_billing_invoice_open holds
    # just those, so the sum reads a customer's open invoices, not their whole history.
    receivables = session.execute(
        select(BillingInvoice.customer_id, func.coalesce(func.sum(BillingInvoice.total - BillingInvoice.settled), 0))
        .where(
            BillingInvoice.customer_id.in_(ids),
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
        )
        .group_by(BillingInvoice.customer_id)
    )
    for cid, amount in receivables:
        if cid in standings:
            standings[cid].open_receivables = to_cents(Decimal(amount or 0))
    confirmed = session.execute(
        select(Order.id, Order.customer_id, Order.total).where(Order.customer_id.in_(ids), Order.status == "confirmed")
    ).all()
    invoiced = ledger.invoiced_by_order(session, [row.id for row in confirmed])
    for row in confirmed:
        remaining = to_cents(Decimal(row.total or 0)) - invoiced.get(row.id, ZERO)
        if remaining > 0 and row.customer_id in standings:
            standings[row.customer_id].uninvoiced += remaining


def _late_customers(session: Session, ids: list[int], cutoff: dt.date) -> set[int]:
    """The customers among ``ids`` with something overdue: :func:`ledger.overdue_amount` > 0.

    One query asking, per customer, whether *any* due before ``cutoff`` of an open issued
    invoice is not covered by what the invoice has settled (settled amounts cover the
    oldest dues first, as :func:`ledger.due_balances` applies them): the database stops at
    the first such due instead of adding up every overdue amount. The open invoices are
    read from the partial index ``ix_billing_invoice_open``.
    """
    if not ids:
        return set()
    earlier = aliased(BillingInvoiceDue)
    covered_through = (
        select(func.sum(earlier.amount))
        .where(earlier.invoice_id == BillingInvoiceDue.invoice_id, earlier.sequence <= BillingInvoiceDue.sequence)
        .scalar_subquery()
    )
    uncovered = (
        select(BillingInvoice.id)
        .join(BillingInvoiceDue, BillingInvoiceDue.invoice_id == BillingInvoice.id)
        .where(
            BillingInvoice.customer_id == Customer.id,
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
            BillingInvoiceDue.due_date < cutoff,
            BillingInvoiceDue.amount > 0,
            # Uncovered by half a cent at least: SQLite keeps amounts as floating point.
            BillingInvoice.settled + HALF_CENT < covered_through,
        )
        .correlate(Customer)
    )
    return set(session.scalars(select(Customer.id).where(Customer.id.in_(ids), uncovered.exists())))


def _standings(
    session: Session, customer_ids: Iterable[int], *, exposure: bool = True, overdue_amounts: bool = True
) -> dict[int, _Standing]:
    """Customer-level hold facts for many customers in a fixed number of queries.

    Accounts (two queries); the exposure (:func:`_add_exposure`) — with ``exposure``
    false only for customers with a credit limit, as without one it decides no hold; the
    customers with something overdue (one query, :func:`_late_customers`), and for each
    of those :func:`ledger.overdue_amount` — unless ``overdue_amounts`` is false (lists),
    when a late customer is only marked ``late`` and the amount is not added up.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    result = _accounts(session, ids)
    _add_exposure(session, {cid: st for cid, st in result.items() if exposure or st.limit is not None})
    grace = int(get_setting(session, flow.GRACE_DAYS))
    today = _today()
    for cid in sorted(_late_customers(session, list(result), today - dt.timedelta(days=grace))):
        result[cid].late = True
        result[cid].overdue = ledger.overdue_amount(session, cid, today, grace) if overdue_amounts else None
    return result


def _this_order(session: Session, order: Order | None, path: str) -> Decimal:
    """What ``order`` adds to the exposure on ``path`` (0 when already counted as confirmed)."""
    if order is None:
        return ZERO
    total = to_cents(Decimal(order.total or 0))
    if path == "copy":
        return total  # the copy is a new order of the same total
    if order.status == "confirmed":
        return ZERO  # already counted among the confirmed orders
    if order.status == "completed":
        # Re-opening commits again what is not invoiced yet (invoiced parts are receivables).
        invoiced = ledger.invoiced_by_order(session, [order.id]).get(order.id, ZERO)
        return max(ZERO, total - invoiced)
    return total


def _exposure_of(standing: _Standing, this_order: Decimal) -> Exposure:
    return Exposure(standing.customer.id, standing.open_receivables, standing.uninvoiced, this_order, standing.limit)


def exposure(session: Session, customer_id: int, order: Order | None = None, path: str = "confirm") -> Exposure:
    """The customer's exposure: open receivables + uninvoiced confirmed orders + ``order`` (BL-5).

    ``order`` counts in full unless it is confirmed already (then it is among the
    confirmed orders); a completed order being re-opened counts what it has not invoiced;
    on the path ``copy`` the copy's total (the source's) always counts.
    """
    standing = _standings(session, [customer_id]).get(customer_id)
    if standing is None:
        raise BillingError("not_found", N_("Customer %(id)s was not found."), status=404, id=customer_id)
    return _exposure_of(standing, _this_order(session, order, path))


def _customer_reasons(session: Session, standing: _Standing, exp: Exposure) -> list[HoldReason]:
    name = standing.customer.name
    reasons: list[HoldReason] = []
    if standing.blocked:
        if standing.block_reason.strip():
            reasons.append(HoldReason(BLOCKED_BECAUSE, {"customer": name, "reason": standing.block_reason.strip()}))
        else:
            reasons.append(HoldReason(BLOCKED, {"customer": name}))
    if exp.over_limit:
        reasons.append(
            HoldReason(OVER_LIMIT, {"customer": name, "exposure": money(exp.total), "limit": money(exp.limit or ZERO)})
        )
    if standing.overdue is not None and standing.overdue > 0:
        grace = int(get_setting(session, flow.GRACE_DAYS))
        reasons.append(HoldReason(OVERDUE, {"customer": name, "amount": money(standing.overdue), "days": str(grace)}))
    elif standing.late and standing.overdue is None:
        # Lists: overdue, the amount not added up (the order's page shows it).
        grace = int(get_setting(session, flow.GRACE_DAYS))
        reasons.append(HoldReason(OVERDUE_UNTOLD, {"customer": name, "days": str(grace)}))
    return reasons


def _prepayment_reason(session: Session, order: Order) -> HoldReason | None:
    from plugins.billing import terms

    required = to_cents(Decimal(terms.required_prepayment(session, order) or 0))
    if required <= 0:
        return None
    paid = ledger.paid_by_order(session, [order.id]).get(order.id, ZERO) + _balance_left_for(session, order)
    if required > paid:
        return HoldReason(PREPAYMENT_MISSING, {"required": money(required), "paid": money(paid)})
    return None


def _balance_left_for(session: Session, order: Order) -> Decimal:
    """The customer's balance (BL-7) this order may count as its prepayment.

    One balance must not cover several orders: the customer's other confirmed orders
    that came first (lower id) claim it first, each for the part of its own required
    prepayment not yet paid on its invoices.
    """
    from plugins.billing import terms

    balance = ledger.customer_balance(session, order.customer_id)
    if balance <= 0:
        return ZERO
    earlier = list(
        session.scalars(
            select(Order).where(
                Order.customer_id == order.customer_id, Order.status == "confirmed", Order.id < order.id
            )
        )
    )
    paid = ledger.paid_by_order(session, [o.id for o in earlier])
    claimed = sum(
        (
            max(ZERO, to_cents(Decimal(terms.required_prepayment(session, o) or 0)) - paid.get(o.id, ZERO))
            for o in earlier
        ),
        ZERO,
    )
    return max(ZERO, balance - claimed)


def hold_details(
    session: Session, customer_id: int, order: Order | None = None, path: str = "confirm"
) -> list[HoldReason]:
    """Why ``customer_id`` (with ``order`` on ``path``) is on credit hold now, as :class:`HoldReason`."""
    standing = _standings(session, [customer_id], exposure=False).get(customer_id)
    if standing is None:
        return []
    reasons = _customer_reasons(session, standing, _exposure_of(standing, _this_order(session, order, path)))
    if order is not None and path in PREPAYMENT_PATHS:
        missing = _prepayment_reason(session, order)
        if missing is not None:
            reasons.append(missing)
    return reasons


def hold_reasons(session: Session, customer_id: int, order: Order | None = None, path: str = "confirm") -> list[str]:
    """Why the customer is on credit hold now (empty: in good standing), as English sentences.

    Blocked (with the block reason); exposure over the limit (both amounts); amounts
    overdue past the grace period; on the paths ``release`` and ``shipment`` a required
    prepayment not covered by what was paid on the order's invoices plus the customer's
    balance (both amounts).
    """
    return [reason.text for reason in hold_details(session, customer_id, order, path)]


def gate_details(session: Session, order: Order, path: str) -> list[HoldReason]:
    """The gate's answer as :class:`HoldReason`: none under a valid exception (never for copies)."""
    if path != "copy" and valid_exception(session, order.id):
        return []
    return hold_details(session, order.customer_id, order, path)


def gate_reasons(session: Session, order: Order, path: str) -> list[str]:
    """Why the credit gate refuses ``order`` on ``path`` (a key of ``GATE_PATHS``); empty: it passes.

    A valid exception for the order lets every path pass except ``copy``: a copy is a
    new order and never inherits the source's exception.
    """
    return [reason.text for reason in gate_details(session, order, path)]


def localized_reasons(session: Session, order: Order, path: str) -> list[str]:
    """:func:`gate_reasons` in the current request's language (screens)."""
    return [reason.localized() for reason in gate_details(session, order, path)]


# --------------------------------------------------------------------------- exceptions


def exception_roles(session: Session) -> list[str]:
    """The role codes ``billing.credit.exception_roles`` names, in order, each once."""
    roles: list[str] = []
    for code in str(get_setting(session, flow.EXCEPTION_ROLES) or "").split(","):
        if code.strip() and code.strip() not in roles:
            roles.append(code.strip())
    return roles


def _valid_grants(session: Session, order_id: int, at: dt.datetime | None = None) -> list[BillingCreditException]:
    moment = at or utcnow()
    return list(
        session.scalars(
            select(BillingCreditException)
            .where(
                BillingCreditException.order_id == order_id,
                BillingCreditException.revoked_at.is_(None),
                BillingCreditException.expires_at > moment,
            )
            .order_by(BillingCreditException.id)
        )
    )


def valid_exception(session: Session, order_id: int, at: dt.datetime | None = None) -> bool:
    """Whether every named role has an unexpired, unrevoked grant for ``order_id`` (at ``at``, default now)."""
    roles = exception_roles(session)
    if not roles:
        return False
    granted = {grant.role_code for grant in _valid_grants(session, order_id, at)}
    return all(role in granted for role in roles)


def exception_state(grant: BillingCreditException, at: dt.datetime | None = None) -> str:
    """``valid``, ``expired`` or ``revoked``."""
    if grant.revoked_at is not None:
        return "revoked"
    return "valid" if _aware(grant.expires_at) > (at or utcnow()) else "expired"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def roles_still_to_grant(session: Session, order_id: int) -> list[str]:
    """Named roles without a valid grant for ``order_id``."""
    granted = {grant.role_code for grant in _valid_grants(session, order_id)}
    return [role for role in exception_roles(session) if role not in granted]


def _expiry(session: Session) -> dt.datetime:
    return utcnow() + dt.timedelta(days=int(get_setting(session, flow.EXCEPTION_DAYS)))


def grant_exception(session: Session, actor: User, order_id: int, reason: str) -> BillingCreditException:
    """Record ``actor``'s grant of a credit exception for ``order_id`` for one of their named roles.

    Refused with nothing changed: the order outside the actor's scope (404), without
    ``billing.credit.exception`` (403), the order completed, cancelled or rejected (409),
    no reason (422), the customer not on hold (409: nothing to except), the exception
    already valid (409), the actor already granted (409: each role's grant comes from a
    different person), or the actor holding none of the roles still to grant (403).
    The grant stores the hold reasons and expires after ``billing.credit.exception_days``.
    """
    order = get_order(session, actor, order_id)
    if not actor.can(flow.CREDIT_EXCEPTION):
        raise BillingError("forbidden", NOT_ALLOWED, status=403)
    if order.status in ("cancelled", "rejected"):  # a completed order may need one to be re-opened
        raise BillingError("order_closed", ORDER_CLOSED, status=409, number=order.number, state=order.status)
    text = (reason or "").strip()
    if not text:
        raise BillingError("reason_required", REASON_REQUIRED, status=422)
    if len(text) > 1000:
        raise BillingError("reason_too_long", REASON_TOO_LONG, status=422, max=1000)
    holds = hold_reasons(session, order.customer_id, order, "reopen" if order.status == "completed" else "release")
    if not holds:
        raise BillingError("no_hold", NO_HOLD, status=409, customer=order.customer.name)
    grants = _valid_grants(session, order.id)
    roles = exception_roles(session)
    still = [role for role in roles if role not in {g.role_code for g in grants}]
    if not still:
        raise BillingError("already_valid", ALREADY_VALID, status=409, number=order.number)
    if any(grant.granted_by_id == actor.id for grant in grants):
        raise BillingError("already_granted", ALREADY_GRANTED, status=409)
    held = {role.code for role in actor.roles}
    mine = [role for role in still if role in held]
    if not mine:
        raise BillingError("not_a_named_role", NOT_A_NAMED_ROLE, status=403, roles=", ".join(still))
    grant = BillingCreditException(
        order_id=order.id,
        customer_id=order.customer_id,
        role_code=mine[0],
        reason=text,
        hold_reasons=holds,
        granted_by_id=actor.id,
        granted_at=utcnow(),
        expires_at=_expiry(session),
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor,
        "billing_credit_exception",
        grant.id,
        "grant",
        {"role": grant.role_code, "expires_at": grant.expires_at.isoformat(), "hold_reasons": holds},
        reason=text,
        order_id=order.id,
    )
    return grant


def revoke_exception(session: Session, actor: User, exception_id: int, reason: str = "") -> BillingCreditException:
    """Revoke one grant: the order's exception stops being valid at once.

    Refused with nothing changed: unknown or its order outside the actor's scope (404),
    without ``billing.credit.exception`` (403), already revoked (409).
    """
    grant = session.get(BillingCreditException, exception_id) if exception_id > 0 else None
    if grant is None:
        raise BillingError("not_found", NOT_FOUND, status=404, id=exception_id)
    try:
        get_order(session, actor, grant.order_id)
    except NotFound as exc:  # out of scope answers as unknown
        raise BillingError("not_found", NOT_FOUND, status=404, id=exception_id) from exc
    if not actor.can(flow.CREDIT_EXCEPTION):
        raise BillingError("forbidden", NOT_ALLOWED, status=403)
    if grant.revoked_at is not None:
        raise BillingError("already_revoked", ALREADY_REVOKED, status=409, id=exception_id)
    grant.revoked_at = utcnow()
    grant.revoked_by_id = actor.id
    session.flush()
    audit.record(
        session,
        actor,
        "billing_credit_exception",
        grant.id,
        "revoke",
        {"role": grant.role_code},
        reason=(reason or "").strip()[:500],
        order_id=grant.order_id,
    )
    return grant


def adopt_review_exception(session: Session, order: Order, user: User | None, reason: str) -> None:
    """Review's credit exception (its named roles all granted) becomes billing's for ``order``.

    One grant per role billing's setting names that has no valid grant yet, reason
    "Review credit exception: …", granted by ``user``, expiring like any grant; so the
    same decision is not asked again at confirmation (RV-7).
    """
    holds = hold_reasons(session, order.customer_id, order, "release")
    text = (REVIEW_EXCEPTION % (reason or "").strip())[:1000]
    added = []
    for role in roles_still_to_grant(session, order.id):
        grant = BillingCreditException(
            order_id=order.id,
            customer_id=order.customer_id,
            role_code=role,
            reason=text,
            hold_reasons=holds,
            granted_by_id=user.id if user is not None else None,
            granted_at=utcnow(),
            expires_at=_expiry(session),
        )
        session.add(grant)
        added.append(grant)
    if added:
        session.flush()
        for grant in added:
            audit.record(
                session,
                user,
                "billing_credit_exception",
                grant.id,
                "adopt_review",
                {"role": grant.role_code},
                reason=text,
                order_id=order.id,
            )


def record_use(
    session: Session, order: Order, path: str, user: User | None, reference: str = "", amount: Decimal | None = None
) -> BillingExceptionUse | None:
    """Record that ``order`` passed ``path`` only thanks to a valid exception (once per path and reference).

    Nothing is recorded when no exception is valid or the customer is in good standing
    now (the gate was not what let the order pass). The exception is asked first: one
    query, where the standing takes several and most orders have no exception.
    """
    if path not in GATE_PATHS:
        raise ValueError(f"unknown gate path {path!r}")
    if not valid_exception(session, order.id):
        return None
    holds = hold_reasons(session, order.customer_id, order, path)
    if not holds:
        return None
    reference = (reference or "")[:64]
    existing = session.scalar(
        select(BillingExceptionUse).where(
            BillingExceptionUse.order_id == order.id,
            BillingExceptionUse.path == path,
            BillingExceptionUse.reference == reference,
        )
    )
    if existing is not None:
        return None
    use = BillingExceptionUse(
        order_id=order.id,
        customer_id=order.customer_id,
        path=path,
        reference=reference,
        amount=to_cents(Decimal(order.total if amount is None else amount)),
        hold_reasons=holds,
        actor_id=user.id if user is not None else None,
        at=utcnow(),
    )
    session.add(use)
    session.flush()
    return use


def shipment_reasons(session: Session, order: Order, reference: str) -> list[str]:
    """The gate at a shipment (each partial one): its reasons, or [] — recording a pass under exception.

    As :func:`gate_reasons` on the path ``shipment``, with the standing computed once:
    without a valid exception the hold reasons are the gate's; with one the gate passes
    and :func:`record_use` records the pass if the customer is on hold.
    """
    if not valid_exception(session, order.id):
        return hold_reasons(session, order.customer_id, order, "shipment")
    record_use(session, order, "shipment", None, reference)
    return []


def notify_hold(session: Session, order: Order, path: str, reasons: Sequence[str] | None = None) -> None:
    """Tell the salesperson and the exception roles that ``order`` is held on ``path`` (once per order and path)."""
    reasons = list(reasons) if reasons is not None else gate_reasons(session, order, path)
    if not reasons:
        return
    roles = exception_roles(session)
    to: list[Recipient] = [ToRole(code) for code in roles]
    owner = order.owner_id or order.created_by_id
    if owner is not None:
        to.append(ToUser(owner))
    notify(
        session,
        CREDIT_HOLD.name,
        to=to,
        order=order,
        context={
            "reasons": reasons,
            "roles": ", ".join(roles),
            "path_en": GATE_PATHS.get(path, path),
            "path_zh": _PATHS_ZH.get(path, path),
        },
        dedupe_key=f"billing.credit_hold:{order.id}:{path}:{order.version}",
    )


# --------------------------------------------------------------------------- lists and hooks


def holds_by_customer(
    session: Session, customer_ids: Iterable[int], *, amounts: bool = True
) -> dict[int, list[HoldReason]]:
    """Customer-level holds (no order) of many customers at once: only those on hold appear.

    ``amounts=False`` (order lists' badges) leaves out the overdue amounts: whether a
    customer is late is one indexed look-up that stops at the first overdue due, while
    adding up how much reads every overdue due of the customer's history.
    """
    result: dict[int, list[HoldReason]] = {}
    standings = _standings(session, customer_ids, exposure=False, overdue_amounts=amounts)
    for cid, standing in standings.items():
        reasons = _customer_reasons(session, standing, _exposure_of(standing, ZERO))
        if reasons:
            result[cid] = reasons
    return result


def hold_badges(session: Session, orders: list[Order]) -> dict[int, list[Badge]]:
    """A "Credit hold" mark for open orders whose customer is on hold now (a fixed number of queries)."""
    from flask_babel import gettext as _

    open_orders = [order for order in orders if order.status not in CLOSED_STATUSES]
    holds = holds_by_customer(session, {order.customer_id for order in open_orders}, amounts=False)
    badges: dict[int, list[Badge]] = {}
    for order in open_orders:
        reasons = holds.get(order.customer_id)
        if reasons:
            title = " ".join(reason.localized() for reason in reasons)
            badges[order.id] = [Badge(_(BADGE_LABEL), "danger", title, plugin="billing")]
    return badges


def precheck_findings(session: Session, order: Order, settings: Any) -> list[Finding]:
    """Intake's credit rule: a warning per reason the gate gives on the path ``precheck``."""
    try:
        from plugins.intake.precheck import Reason
    except ImportError:  # intake not installed: plain findings
        return [Finding("warn", r.text, "customer", plugin="billing") for r in gate_details(session, order, "precheck")]
    return [
        Reason.build("warn", r.msgid, "customer", plugin="billing", **r.params)
        for r in gate_details(session, order, "precheck")
    ]


# --------------------------------------------------------------------------- weekly report


def exception_report(session: Session, now: dt.datetime) -> int:
    """The weekly job: uses not reported yet go to the report role in one notice; returns how many.

    Nothing to report: no notice. Each use is reported once (``reported_at``).
    """
    uses = list(
        session.scalars(
            select(BillingExceptionUse)
            .where(BillingExceptionUse.reported_at.is_(None))
            .order_by(BillingExceptionUse.at, BillingExceptionUse.id)
        )
    )
    if not uses:
        return 0
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_({u.order_id for u in uses})))}
    customers = {
        c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_({u.customer_id for u in uses})))
    }
    rows = []
    for use in uses:
        order = orders.get(use.order_id)
        customer = customers.get(use.customer_id)
        rows.append(
            {
                "at": _aware(use.at).astimezone(company_now().tzinfo).strftime("%Y-%m-%d %H:%M"),
                "order": order.number if order is not None else str(use.order_id),
                "customer": customer.name if customer is not None else "",
                "path": use.path,
                "path_en": GATE_PATHS.get(use.path, use.path),
                "path_zh": _PATHS_ZH.get(use.path, use.path),
                "reference": use.reference,
                "amount": money(use.amount),
                "reasons": "; ".join(use.hold_reasons or []),
            }
        )
    role = str(get_setting(session, flow.REPORT_RECIPIENT_ROLE) or "general_manager").strip()
    notify(
        session,
        EXCEPTION_REPORT.name,
        to=[ToRole(role)],
        context={"uses": rows},
        dedupe_key=f"billing.exception_report:{uses[0].id}-{uses[-1].id}",
    )
    moment = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    for use in uses:
        use.reported_at = moment
    session.flush()
    return len(uses)


NOTIFICATIONS: tuple[NotificationTemplate, ...] = (EXCEPTION_REPORT, CREDIT_HOLD)
JOBS: tuple[Job, ...] = (
    Job(
        "billing.exception_report",
        "weekly:mon:08:00",
        exception_report,
        plugin="billing",
        label=N_("Weekly report of shipments and orders passed under a credit exception"),
    ),
)

"""Billing's steps, permissions, roles and settings, and what the order's moves set off.

- ``billing.finance_check`` (70, submitted phase, 易订货's 财务审核): entering it fixes
  the order's terms (:func:`plugins.billing.terms.order_terms`). Standard terms with
  the customer in good standing move on at once (``terms_ok``); special terms (cash on
  delivery, instalments, BL-1) or a credit hold wait for finance's ``approve_terms``
  (the credit gate is asked again then) or ``return_to_sales``.
- ``billing.settlement`` (400, confirmed phase, after logistics' receipt): the order moves
  on by itself (``settled``) when the settlement check passes — documents present,
  invoiced equal to delivered, everything paid — or an approved write-off covers the
  rest (``written_off``); finance may ask again (``check_settlement``).

The credit gate (:mod:`plugins.billing.credit`) is asked on every path that commits the
company further: any move *into* the confirmed status (``confirm``, ``reopen`` of a
completed order, or another plugin's move), ``copy``, logistics' ``release`` and every
shipment (its own hook), finance's approval, review's credit check and intake's
pre-check. This module holds the definitions and routes each hook call to the module
doing the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contrib import Action, Permission, RoleDefinition, Setting, Step
from core.labels import N_

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User

FINANCE_CHECK = "billing.finance_check"
SETTLEMENT = "billing.settlement"
APPROVE_TERMS = "approve_terms"
RETURN_TO_SALES = "return_to_sales"
CHECK_SETTLEMENT = "check_settlement"
#: The automatic moves.
TERMS_OK = "terms_ok"
SETTLED = "settled"
WRITTEN_OFF = "written_off"
#: Logistics' action releasing an order to shipping (billing guards it by name).
RELEASE = "release"

# Permissions.
ACCOUNTS_READ = "billing.accounts.read"
ACCOUNTS_MANAGE = "billing.accounts.manage"
TERMS_MANAGE = "billing.terms.manage"
FINANCE_APPROVE = "billing.finance.approve"
CREDIT_EXCEPTION = "billing.credit.exception"
INVOICES_READ = "billing.invoices.read"
INVOICES_MANAGE = "billing.invoices.manage"
INVOICES_ISSUE = "billing.invoices.issue"
PAYMENTS_READ = "billing.payments.read"
PAYMENTS_RECORD = "billing.payments.record"
DUNNING_MANAGE = "billing.dunning.manage"
WRITE_OFF_REQUEST = "billing.writeoff.request"
WRITE_OFF_APPROVE = "billing.writeoff.approve"
REPORTS_READ = "billing.reports.read"
SETTINGS_MANAGE = "billing.settings.manage"

# Settings.
GRACE_DAYS = "billing.credit.grace_days"
EXCEPTION_ROLES = "billing.credit.exception_roles"
EXCEPTION_DAYS = "billing.credit.exception_days"
POOR_RATING_PREPAYMENT = "billing.credit.poor_rating_prepayment"
REVIEW_MONTHS = "billing.credit.review_months"
DEFAULT_CREDIT_LIMIT = "billing.credit.default_limit"
INVOICE_LATE_DAYS = "billing.invoices.late_days"
INVOICE_PREFIX = "billing.invoices.prefix"
CREDIT_NOTE_PREFIX = "billing.invoices.credit_note_prefix"
INTEREST_ENABLED = "billing.interest.enabled"
INTEREST_DAILY_RATE = "billing.interest.daily_rate"
WEBHOOK_TOLERANCE = "billing.webhook.tolerance_seconds"
REPORT_RECIPIENT_ROLE = "billing.credit.report_role"

#: Billing adds no roles of its own: finance, the general manager and sales are core's.
ROLES: tuple[RoleDefinition, ...] = ()

_FINANCE = ("finance",)
_MANAGERS = ("general_manager", "sales_manager")
_READERS = ("finance", "general_manager", "sales_manager", "sales", "auditor")

PERMISSIONS = (
    Permission(ACCOUNTS_READ, N_("See customers' credit: limits, ratings, exposure and holds"), _READERS),
    Permission(
        ACCOUNTS_MANAGE,
        N_("Manage customer accounts: terms, credit limit, rating, blocks"),
        ("finance", "general_manager"),
    ),
    Permission(TERMS_MANAGE, N_("Manage payment terms"), ("finance",)),
    Permission(FINANCE_APPROVE, N_("Approve orders' payment terms (finance check)"), ("finance",)),
    Permission(CREDIT_EXCEPTION, N_("Grant credit exceptions"), ("general_manager",)),
    Permission(INVOICES_READ, N_("See invoices and credit notes"), _READERS),
    Permission(INVOICES_MANAGE, N_("Prepare and correct invoices"), ("finance",)),
    Permission(INVOICES_ISSUE, N_("Issue invoices and credit notes"), ("finance",)),
    Permission(PAYMENTS_READ, N_("See payments and allocations"), _READERS),
    Permission(PAYMENTS_RECORD, N_("Record and allocate payments"), ("finance",)),
    Permission(DUNNING_MANAGE, N_("Run collection: dunning, pauses, interest"), ("finance", "sales_manager")),
    Permission(WRITE_OFF_REQUEST, N_("Request write-offs"), ("finance",)),
    Permission(WRITE_OFF_APPROVE, N_("Approve write-offs"), ("general_manager",)),
    Permission(
        REPORTS_READ, N_("See receivables, balances and collections reports"), ("finance", *_MANAGERS, "auditor")
    ),
    Permission(
        SETTINGS_MANAGE, N_("Manage the dunning ladder and online-payment providers"), ("finance", "general_manager")
    ),
)

SETTINGS = (
    Setting(
        GRACE_DAYS,
        int,
        5,
        N_("Billing: days an amount may be overdue before the customer is on credit hold"),
        minimum=0,
    ),
    Setting(
        EXCEPTION_ROLES,
        str,
        "general_manager",
        N_("Billing: roles that must each grant a credit exception"),
        N_("Comma-separated role codes; each must grant, e.g. vice_president,general_manager (RV-7)."),
    ),
    Setting(
        EXCEPTION_DAYS,
        int,
        7,
        N_("Billing: days a credit exception stays valid"),
        minimum=1,
    ),
    Setting(
        POOR_RATING_PREPAYMENT,
        str,
        "C:30,D:100",
        N_("Billing: prepayment ratio required by rating"),
        N_("rating:percent pairs, e.g. C:30,D:100. Setting a rating raises the account's ratio to at least this."),
    ),
    Setting(
        REVIEW_MONTHS,
        int,
        12,
        N_("Billing: months until a credit rating is reviewed again"),
        minimum=1,
    ),
    Setting(
        DEFAULT_CREDIT_LIMIT,
        float,
        0.0,
        N_("Billing: credit limit of a new customer account"),
        N_("0: new accounts start without a limit until finance sets one (a limit of 0 itself means no credit)."),
        minimum=0,
    ),
    Setting(
        INVOICE_LATE_DAYS,
        int,
        30,
        N_("Billing: days after shipping within which an invoice must be issued"),
        minimum=1,
    ),
    Setting(INVOICE_PREFIX, str, "INV", N_("Billing: prefix of invoice numbers")),
    Setting(CREDIT_NOTE_PREFIX, str, "CN", N_("Billing: prefix of credit note numbers")),
    Setting(INTEREST_ENABLED, bool, False, N_("Billing: charge late interest on overdue balances")),
    Setting(
        INTEREST_DAILY_RATE,
        float,
        0.05,
        N_("Billing: late interest per day, in percent of the remaining balance"),
        minimum=0,
        maximum=1,
    ),
    Setting(
        WEBHOOK_TOLERANCE,
        int,
        300,
        N_("Billing: seconds a signed payment event stays valid (older ones are replays)"),
        minimum=30,
    ),
    Setting(
        REPORT_RECIPIENT_ROLE,
        str,
        "general_manager",
        N_("Billing: role that receives the weekly report of shipments under credit exception"),
    ),
)

STEPS = (
    Step(
        FINANCE_CHECK,
        N_("Finance check"),
        70,
        (
            Action(APPROVE_TERMS, N_("Approve terms"), permission=FINANCE_APPROVE, style="success"),
            Action(
                RETURN_TO_SALES,
                N_("Return to sales"),
                target="draft",
                permission=FINANCE_APPROVE,
                needs_reason=True,
                style="warning",
                confirm=N_("Return this order to sales for other terms?"),
            ),
        ),
        automatic=((TERMS_OK, N_("Terms and credit in order")),),
        help=N_(
            "财务审核: finance checks the payment terms, the prepayment and the customer's credit; standard terms "
            "of a customer in good standing pass by themselves."
        ),
    ),
    Step(
        SETTLEMENT,
        N_("Settlement"),
        400,
        (Action(CHECK_SETTLEMENT, N_("Check settlement"), target="completed", permission=INVOICES_MANAGE),),
        automatic=((SETTLED, N_("Invoiced and paid")), (WRITTEN_OFF, N_("Rest written off"))),
        help=N_(
            "The order completes when the settlement documents agree, everything delivered is invoiced and every "
            "invoice is paid (or the rest written off with approval)."
        ),
    ),
)


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Why ``order`` may not move as ``transition`` says: the credit gate, finance, settlement."""
    from plugins.billing import credit, settlement

    if action == "copy":  # before the rest: a copy's transition leads to draft
        return credit.gate_reasons(session, order, "copy")
    if transition.to_step in ("cancelled", "rejected", "draft"):
        return []
    if transition.to_status == "confirmed" and transition.from_status != "confirmed":
        return credit.gate_reasons(session, order, "reopen" if transition.from_status == "completed" else "confirm")
    if action == RELEASE:
        return credit.gate_reasons(session, order, "release")
    if action == APPROVE_TERMS:
        return credit.gate_reasons(session, order, "finance_check")
    if action == CHECK_SETTLEMENT:
        return settlement.check_settlement_blockers(session, order)
    if action == "complete":
        return settlement.completion_blockers(session, order)
    return []


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Fix terms on the finance check, record exception uses, settle when due."""
    from plugins.billing import credit, settlement, terms

    if transition.to_step == FINANCE_CHECK:
        terms.on_enter_finance_check(session, order, transition, user)
    if transition.action == APPROVE_TERMS:
        terms.approve(session, order, user, transition.reason)
    if transition.to_status == "confirmed" and transition.from_status != "confirmed":
        credit.record_use(session, order, "reopen" if transition.from_status == "completed" else "confirm", user)
    elif transition.action == RELEASE:
        credit.record_use(session, order, "release", user)
    if transition.to_step == SETTLEMENT:
        settlement.advance(session, order, user)

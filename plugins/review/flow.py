"""Review's steps, permissions, roles and settings, and where the order's moves lead.

The pipeline inside *submitted* (positions 1–99; intake's checks sit at 10 and 20):

- ``review.credit_check`` (30, automatic): asks every ``ordo_review_credit_standing``
  answer (billing's, when enabled) whether the customer is in good standing; if so the
  order moves on at once, if not it waits here on a credit hold until the roles the
  settings name grant an exception, the standing clears, or sales takes it back (RV-7).
- ``review.department_review`` (40): entering it opens a review sheet with one task per
  department the matching template names; when every task of the last tier is answered
  the order moves on by itself, or to the president when an escalating department
  (purchasing, quality, finance) rejected (RV-1, RV-2, RV-3).
- ``review.president`` (45, a detour): the president abandons or re-quotes a
  not-acceptable order; sales may appeal to the chairman instead.
- ``review.appeal`` (46, a detour): the chairman accepts the order (on to consolidation)
  or dismisses the appeal (back to the president).
- ``review.consolidation`` (50): sales sees every verdict, negotiates (re-opening only
  the departments a change affects), then sends for final approval (RV-4).
- ``review.final_approval`` (60): the approver the approval limits name (RV-6).

Core's ``submitted`` (100) follows: sales confirms the approved order to the customer.
This module holds the definitions and routes each hook call to the module doing the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contrib import Action, Permission, RoleDefinition, Setting, Step
from core.labels import N_

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User

CREDIT_CHECK = "review.credit_check"
DEPARTMENT_REVIEW = "review.department_review"
PRESIDENT = "review.president"
APPEAL = "review.appeal"
CONSOLIDATION = "review.consolidation"
FINAL_APPROVAL = "review.final_approval"

# Permissions.
READ = "review.tasks.read"
DECIDE = "review.tasks.decide"
CONSOLIDATE = "review.consolidate"
APPROVE = "review.approve"
PRESIDENT_DECIDE = "review.president.decide"
APPEAL_FILE = "review.appeal.file"
APPEAL_DECIDE = "review.appeal.decide"
CREDIT_EXCEPTION = "review.credit.exception"
QUOTATION_MANAGE = "review.quotation.manage"
MARGINS_READ = "review.margins.read"
CHANGES_REQUEST = "review.changes.request"
CHANGES_APPROVE = "review.changes.approve"
SETTINGS_MANAGE = "review.settings.manage"

# Settings.
SLA_DAYS = "review.sla.days"
SLA_REMIND_BEFORE = "review.sla.remind_before_days"
SLA_ESCALATE_TO = "review.sla.escalate_to_role"
AUDIT_THRESHOLD = "review.audit.threshold"
MIN_GROSS_MARGIN = "review.quotation.min_gross_margin"
MIN_PROFIT_MARGIN = "review.quotation.min_profit_margin"
EXCEPTION_ROLES = "review.credit.exception_roles"

#: The department reviewer roles review ships (finance reviews with core's finance role).
REVIEWER_ROLES = ("review_technical", "review_production", "review_quality", "review_purchasing")
#: The company's leaders the procedures name (RV-3, RV-7).
LEADER_ROLES = ("vice_president", "president", "chairman")
_REVIEWERS = (*REVIEWER_ROLES, "finance")
_LEADERS = ("general_manager", *LEADER_ROLES)
_READERS = ("admin", "sales", "sales_manager", "order_clerk", "auditor", *_REVIEWERS, *_LEADERS)

ROLES = (
    RoleDefinition("review_technical", N_("Technical reviewer"), "all", ("orders.read", "customers.read")),
    RoleDefinition("review_production", N_("Production reviewer"), "all", ("orders.read", "customers.read")),
    RoleDefinition("review_quality", N_("Quality reviewer"), "all", ("orders.read", "customers.read")),
    RoleDefinition("review_purchasing", N_("Purchasing reviewer"), "all", ("orders.read", "customers.read")),
    RoleDefinition("vice_president", N_("Vice-president"), "all", ("orders.read", "customers.read", "audit.read")),
    RoleDefinition("president", N_("President"), "all", ("orders.read", "customers.read", "audit.read")),
    RoleDefinition("chairman", N_("Chairman"), "all", ("orders.read", "customers.read", "audit.read")),
)

PERMISSIONS = (
    Permission(READ, N_("See review sheets, tasks and change requests"), _READERS),
    Permission(DECIDE, N_("Give your department's verdicts and change assessments"), _REVIEWERS),
    Permission(CONSOLIDATE, N_("Consolidate reviews, negotiate and send for approval"), ("sales", "sales_manager")),
    Permission(APPROVE, N_("Give final approval within your approval limit"), ("sales_manager", *_LEADERS)),
    Permission(PRESIDENT_DECIDE, N_("Decide not-acceptable orders: abandon or re-quote"), ("president",)),
    Permission(APPEAL_FILE, N_("Appeal a decision to the chairman"), ("sales", "sales_manager")),
    Permission(APPEAL_DECIDE, N_("Rule on appeals"), ("chairman",)),
    Permission(CREDIT_EXCEPTION, N_("Grant credit exceptions"), ("vice_president", "general_manager")),
    Permission(
        QUOTATION_MANAGE,
        N_("Prepare quotations with their cost lines"),
        ("sales", "sales_manager", "finance", "review_technical"),
    ),
    Permission(
        MARGINS_READ,
        N_("See costs and margins of quotations and reviews"),
        ("sales_manager", "finance", "auditor", "review_technical", *_LEADERS),
    ),
    Permission(CHANGES_REQUEST, N_("Request changes and cancellations of orders"), ("sales", "sales_manager")),
    Permission(CHANGES_APPROVE, N_("Approve or reject change requests"), ("sales_manager", "general_manager")),
    Permission(SETTINGS_MANAGE, N_("Manage review departments, templates and approval limits"), ("general_manager",)),
)

SETTINGS = (
    Setting(
        SLA_DAYS,
        int,
        2,
        N_("Review: working days a department has to answer"),
        N_("Unless the department sets its own."),
        minimum=1,
        maximum=60,
    ),
    Setting(
        SLA_REMIND_BEFORE,
        int,
        1,
        N_("Review: remind reviewers this many working days before the due day"),
        minimum=0,
        maximum=30,
    ),
    Setting(
        SLA_ESCALATE_TO,
        str,
        "general_manager",
        N_("Review: role told of overdue tasks of a department without a head"),
    ),
    Setting(
        AUDIT_THRESHOLD,
        float,
        1_000_000.0,
        N_("Review: order total above which internal audit supervises the order"),
        minimum=0,
    ),
    Setting(
        MIN_GROSS_MARGIN,
        float,
        15.0,
        N_("Review: minimum gross margin of a quotation (%)"),
        N_("A quotation under it is flagged."),
        minimum=-100,
        maximum=100,
    ),
    Setting(
        MIN_PROFIT_MARGIN,
        float,
        5.0,
        N_("Review: minimum profit margin of a quotation (%)"),
        N_("A quotation under it is flagged."),
        minimum=-100,
        maximum=100,
    ),
    Setting(
        EXCEPTION_ROLES,
        str,
        "vice_president,general_manager",
        N_("Review: roles that must each grant a credit exception"),
        N_("Comma-separated role codes; every one of them grants before the order goes on."),
    ),
)

STEPS = (
    Step(
        CREDIT_CHECK,
        N_("Credit check"),
        30,
        (
            Action("recheck_credit", N_("Check credit again"), target=CREDIT_CHECK, permission=CONSOLIDATE),
            Action(
                "return_to_sales",
                N_("Return to sales"),
                target="draft",
                permission=CONSOLIDATE,
                needs_reason=True,
                style="secondary",
            ),
        ),
        automatic=(
            ("credit_ok", N_("Customer in good standing")),
            ("credit_hold", N_("Held: customer not in good standing")),
            ("credit_exception", N_("Credit exception granted")),
        ),
        help=N_(
            "Automatic: a customer in good standing goes straight on; otherwise the order waits here until "
            "the named roles grant an exception, or goes back to sales."
        ),
    ),
    Step(
        DEPARTMENT_REVIEW,
        N_("Department review"),
        40,
        (
            Action(
                "withdraw",
                N_("Withdraw to draft"),
                target="draft",
                permission=CONSOLIDATE,
                needs_reason=True,
                style="secondary",
                confirm=N_("Withdraw this order from review? Open review tasks are withdrawn."),
            ),
        ),
        automatic=(
            ("reviewed", N_("Every department answered")),
            ("not_acceptable", N_("Not acceptable: to the president")),
            ("revise", N_("Changed by an approved change request")),
        ),
        help=N_(
            "The departments the review template names give their verdicts in parallel; the order moves on "
            "when all have answered."
        ),
    ),
    Step(
        PRESIDENT,
        N_("President's decision"),
        45,
        (
            Action(
                "abandon",
                N_("Abandon"),
                target="rejected",
                permission=PRESIDENT_DECIDE,
                needs_reason=True,
                style="danger",
                confirm=N_("Abandon this order? It is rejected and the reason is kept."),
            ),
            Action(
                "requote",
                N_("Re-quote and review again"),
                target=DEPARTMENT_REVIEW,
                permission=PRESIDENT_DECIDE,
                needs_reason=True,
            ),
            Action(
                "appeal",
                N_("Appeal to the chairman"),
                target=APPEAL,
                permission=APPEAL_FILE,
                needs_reason=True,
                style="secondary",
            ),
        ),
        detour=True,
        help=N_("A not-acceptable order: the president abandons it or has it re-quoted; sales may appeal."),
    ),
    Step(
        APPEAL,
        N_("Appeal to the chairman"),
        46,
        (
            Action("accept_appeal", N_("Accept the order"), permission=APPEAL_DECIDE, needs_reason=True),
            Action(
                "dismiss_appeal",
                N_("Dismiss the appeal"),
                target=PRESIDENT,
                permission=APPEAL_DECIDE,
                needs_reason=True,
                style="danger",
            ),
        ),
        detour=True,
        help=N_("The chairman rules: the order goes on to consolidation, or back to the president."),
    ),
    Step(
        CONSOLIDATION,
        N_("Consolidation"),
        50,
        (
            Action("send_for_approval", N_("Send for final approval"), permission=CONSOLIDATE, style="success"),
            Action(
                "reject",
                N_("Reject"),
                target="rejected",
                permission=CONSOLIDATE,
                needs_reason=True,
                style="danger",
                confirm=N_("Reject this order? The reason is kept."),
            ),
        ),
        automatic=(("renegotiate", N_("Negotiated changes: affected departments review again")),),
        help=N_("Sales reads every verdict, negotiates with the customer and sends the order for approval."),
    ),
    Step(
        FINAL_APPROVAL,
        N_("Final approval"),
        60,
        (
            Action("approve", N_("Approve"), permission=APPROVE, style="success"),
            Action(
                "send_back",
                N_("Send back to sales"),
                target=CONSOLIDATION,
                permission=APPROVE,
                needs_reason=True,
                style="secondary",
            ),
            Action(
                "reject",
                N_("Reject"),
                target="rejected",
                permission=APPROVE,
                needs_reason=True,
                style="danger",
                confirm=N_("Reject this order? The reason is kept."),
            ),
        ),
        help=N_("The approver the approval limits name approves the order; large orders go to the general manager."),
    ),
)


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Route a move to the modules that react to it (called last, after every plugin).

    What leaving a step closes is handled before what entering the next one opens, so a
    re-quote closes the old sheet before it opens the new round's.
    """
    from plugins.review import approval, changes, credit, quotation, sheets

    approval.follow_supervised(session, order, transition, user)
    if transition.from_step == CREDIT_CHECK:
        credit.on_leave(session, order, transition, user)
    if transition.from_step in (DEPARTMENT_REVIEW, CONSOLIDATION, FINAL_APPROVAL, PRESIDENT, APPEAL):
        sheets.on_leave(session, order, transition, user)
    if transition.to_step == CREDIT_CHECK:
        credit.on_enter_credit_check(session, order, transition, user)
    elif transition.to_step == DEPARTMENT_REVIEW:
        sheet = sheets.on_enter_review(session, order, transition, user)
        if sheet is not None:
            quotation.on_sheet_opened(session, order, sheet)
    elif transition.to_step == CONSOLIDATION:
        sheets.on_enter_consolidation(session, order, transition, user)
    elif transition.to_step == FINAL_APPROVAL:
        approval.on_enter_final_approval(session, order, transition, user)
    elif transition.to_step == PRESIDENT:
        approval.on_enter_president(session, order, transition, user)
    elif transition.to_step == APPEAL:
        approval.on_appeal(session, order, transition, user)
    changes.on_transitioned(session, order, transition, user)


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Every reason review has to refuse ``action`` on ``order`` (approval limits, open tasks…)."""
    from plugins.review import approval, changes, sheets

    return [
        *sheets.guard(session, order, action, transition, user),
        *approval.guard(session, order, action, transition, user),
        *changes.guard(session, order, action, transition, user),
    ]

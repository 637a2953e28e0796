"""Review's tables, keyed to core's orders, users and branches (core tables are never altered).

- Departments (技术, 生产, 品质, 采购, 财务 …) and the templates that decide which of them
  review an order, in one tier or two (RV-1, RV-2, RV-5).
- The review sheet (订单评审表) of each review round, with one task per department and
  tier, and every verdict given on a task (a re-opened task keeps its earlier verdicts).
- Negotiations recorded during consolidation (RV-4), quotations (报价单) with cost lines
  and margins, approval limits per role (RV-6) and audit supervision of large orders.
- Credit holds and the exceptions granted on them (RV-7).
- Change and cancellation requests (订单变更申请表) with the departments' assessments,
  and the order revisions they produce (RV-8, RV-9, CORE-5).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, Money, Percent, utcnow
from core.labels import N_

#: What a department's figures are about; decides the fields of its verdict form.
DEPARTMENT_KINDS = {
    "technical": N_("Technical"),
    "production": N_("Production"),
    "quality": N_("Quality"),
    "purchasing": N_("Purchasing"),
    "finance": N_("Finance"),
    "other": N_("Other"),
}
#: A department's verdict on an order (RV-1).
VERDICTS = {
    "approve": N_("Approve"),
    "approve_with_conditions": N_("Approve with conditions"),
    "reject": N_("Reject"),
}
#: What a negotiated change touches; a department re-opens on the kinds it names (RV-4).
CHANGE_KINDS = {"price": N_("Price"), "date": N_("Date"), "quantity": N_("Quantity")}
#: A sheet's life: departments answering, then done; ``outcome`` says how it ended.
SHEET_STATUSES = {
    "open": N_("Departments reviewing"),
    "complete": N_("Reviewed"),
    "not_acceptable": N_("Not acceptable"),
    "closed": N_("Closed"),
}
#: How a sheet ended once closed (the order was approved, abandoned, re-quoted …).
SHEET_OUTCOMES = {
    "approved": N_("Approved"),
    "abandoned": N_("Abandoned"),
    "requoted": N_("Re-quoted"),
    "rejected": N_("Rejected"),
    "superseded": N_("Superseded"),
}
TASK_STATUSES = {"open": N_("Open"), "answered": N_("Answered"), "withdrawn": N_("Withdrawn")}
#: Cost lines of a quotation; ``tax`` and ``expense`` lines are not part of the cost of goods.
QUOTATION_LINE_KINDS = {
    "material": N_("Material"),
    "outsourcing": N_("Outsourcing"),
    "labour": N_("Labour"),
    "overhead": N_("Overhead"),
    "freight": N_("Freight"),
    "tax": N_("Taxes and surcharges"),
    "expense": N_("Selling expenses"),
}
CHANGE_REQUEST_KINDS = {"change": N_("Change"), "cancel": N_("Cancellation")}
CHANGE_REQUEST_STATUSES = {
    "assessing": N_("Departments assessing"),
    "pending_approval": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
}


class ReviewDepartment(Base):
    """A department that reviews orders; its reviewers are the users holding ``role_code``."""

    __tablename__ = "review_department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_zh: Mapped[str] = mapped_column(String(100), default="")
    #: One of :data:`DEPARTMENT_KINDS`: which figures its verdict carries.
    kind: Mapped[str] = mapped_column(String(16), default="other")
    #: Users holding this role give the department's verdicts.
    role_code: Mapped[str] = mapped_column(String(64))
    #: Where an overdue task escalates (the department head); none: the general manager.
    head_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: A reject from this department makes the order "not acceptable" (RV-3).
    escalating: Mapped[bool] = mapped_column(default=False)
    #: Comma-separated :data:`CHANGE_KINDS` that re-open its task during negotiation.
    reopen_on: Mapped[str] = mapped_column(String(64), default="")
    #: Working days to answer; none: the setting ``review.sla.days``.
    sla_days: Mapped[int | None] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


class ReviewTemplate(Base):
    """Which departments review which orders; the first active match by ``priority`` wins.

    An empty condition matches every order: ``regular`` None is either kind, no amounts
    is any amount (``min_amount`` inclusive, ``max_amount`` exclusive), an empty category,
    urgency or branch is any.
    """

    __tablename__ = "review_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    regular: Mapped[bool | None] = mapped_column()
    min_amount: Mapped[Decimal | None] = mapped_column(Money)
    max_amount: Mapped[Decimal | None] = mapped_column(Money)
    product_category: Mapped[str] = mapped_column(String(64), default="")
    urgency: Mapped[str] = mapped_column(String(16), default="")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    #: Branch initial review (tier 1), then head-office committee re-review (tier 2).
    two_tier: Mapped[bool] = mapped_column(default=False)

    departments: Mapped[list[ReviewTemplateDepartment]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewTemplateDepartment.tier"
    )


class ReviewTemplateDepartment(Base):
    """A department in a template, in tier 1 (initial review) or 2 (committee re-review)."""

    __tablename__ = "review_template_department"

    template_id: Mapped[int] = mapped_column(ForeignKey("review_template.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("review_department.id"), primary_key=True)
    tier: Mapped[int] = mapped_column(primary_key=True, default=1)

    department: Mapped[ReviewDepartment] = relationship()


class ReviewSheet(Base):
    """One review round of an order (订单评审表): its tasks, verdicts and how it ended."""

    __tablename__ = "review_sheet"
    __table_args__ = (
        UniqueConstraint("order_id", "round"),
        #: kpi reads the sheets opened (change requests per order) and closed (acceptance) in a period.
        Index("ix_review_sheet_opened_at", "opened_at"),
        Index("ix_review_sheet_closed_at", "closed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(default=1)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("review_template.id"))
    two_tier: Mapped[bool] = mapped_column(default=False)
    #: The tier whose tasks are open now (1, or 2 once tier 1 has answered).
    tier: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")
    #: The order's total when the sheet opened and the role that must approve it (RV-6).
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    approver_role: Mapped[str] = mapped_column(String(64), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()

    tasks: Mapped[list[ReviewTask]] = relationship(
        back_populates="sheet", cascade="all, delete-orphan", order_by="(ReviewTask.tier, ReviewTask.id)"
    )


class ReviewTask(Base):
    """One department's part of a sheet, in its queue until answered (then its verdicts)."""

    __tablename__ = "review_task"
    __table_args__ = (
        UniqueConstraint("sheet_id", "department_id", "tier"),
        Index("ix_review_task_status_due", "status", "due_date"),
        #: kpi's review timeliness reads the tasks answered in a period.
        Index("ix_review_task_answered_at", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("review_sheet.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("review_department.id"), index=True)
    tier: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="open")
    #: The latest verdict (:data:`VERDICTS`), '' while never answered.
    verdict: Mapped[str] = mapped_column(String(24), default="")
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    due_date: Mapped[dt.date] = mapped_column()
    reminded_at: Mapped[dt.datetime | None] = mapped_column()
    escalated_at: Mapped[dt.datetime | None] = mapped_column()

    sheet: Mapped[ReviewSheet] = relationship(back_populates="tasks")
    department: Mapped[ReviewDepartment] = relationship()
    verdicts: Mapped[list[ReviewVerdict]] = relationship(
        back_populates="task", cascade="all, delete-orphan", order_by="ReviewVerdict.id"
    )


class ReviewVerdict(Base):
    """A verdict given on a task, with the comment, conditions and the department's figures."""

    __tablename__ = "review_verdict"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(String(2000), default="")
    conditions: Mapped[str] = mapped_column(String(2000), default="")
    #: The department's own figures (see ``plugins.review.figures``), as strings.
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The date the department can meet (production's completion, technical's solution).
    proposed_date: Mapped[dt.date | None] = mapped_column()
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    task: Mapped[ReviewTask] = relationship(back_populates="verdicts")


class ReviewNegotiation(Base):
    """A change sales agreed with the customer during consolidation, and whom it re-opened."""

    __tablename__ = "review_negotiation"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("review_sheet.id", ondelete="CASCADE"), index=True)
    #: ``{"kinds": [...], "changes": {...}}``: what changed, before and after.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Codes of the departments whose tasks were re-opened.
    reopened: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(2000), default="")
    by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewQuotation(Base):
    """A quotation (报价单): revenue against cost lines, with the margins they give."""

    __tablename__ = "review_quotation"
    __table_args__ = (UniqueConstraint("order_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("review_sheet.id", ondelete="SET NULL"), index=True)
    #: 1, 2, … per order: a re-quote makes a new one; earlier ones are kept.
    number: Mapped[int] = mapped_column(default=1)
    revenue: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    taxes: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    expenses: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    gross_margin: Mapped[Decimal | None] = mapped_column(Percent)
    expense_ratio: Mapped[Decimal | None] = mapped_column(Percent)
    profit_margin: Mapped[Decimal | None] = mapped_column(Percent)
    #: Set when a margin is under its configured minimum (flagged automatically).
    below_minimum: Mapped[bool] = mapped_column(default=False)
    payment_terms: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    lines: Mapped[list[ReviewQuotationLine]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewQuotationLine.position"
    )


class ReviewQuotationLine(Base):
    """A cost line of a quotation (:data:`QUOTATION_LINE_KINDS`)."""

    __tablename__ = "review_quotation_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    quotation_id: Mapped[int] = mapped_column(ForeignKey("review_quotation.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[Decimal] = mapped_column(Money)


class ReviewApprovalLimit(Base):
    """The largest order total a role may approve (RV-6); no amount: without limit."""

    __tablename__ = "review_approval_limit"

    role_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_amount: Mapped[Decimal | None] = mapped_column(Money)


class ReviewSupervision(Base):
    """An order above the audit threshold: internal audit follows every step (RV-6)."""

    __tablename__ = "review_supervision"

    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    threshold: Mapped[Decimal] = mapped_column(Money)
    flagged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewCreditHold(Base):
    """The credit gate said no (RV-7): why, and how the hold ended."""

    __tablename__ = "review_credit_hold"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    held_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column()
    #: '' while held; ``cleared`` (standing good again), ``exception``, ``returned`` to sales.
    outcome: Mapped[str] = mapped_column(String(16), default="")

    exceptions: Mapped[list[ReviewCreditException]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewCreditException.id"
    )


class ReviewCreditException(Base):
    """One named role's grant of an exception on a credit hold, with its reason."""

    __tablename__ = "review_credit_exception"
    __table_args__ = (UniqueConstraint("hold_id", "role_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hold_id: Mapped[int] = mapped_column(ForeignKey("review_credit_hold.id", ondelete="CASCADE"), index=True)
    role_code: Mapped[str] = mapped_column(String(64))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    reason: Mapped[str] = mapped_column(String(1000))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewChangeRequest(Base):
    """A change or cancellation request (订单变更申请表) on a submitted or confirmed order."""

    __tablename__ = "review_change_request"
    __table_args__ = (
        UniqueConstraint("order_id", "number"),
        #: kpi's change requests per order read the requests filed in a period.
        Index("ix_review_change_request_requested_at", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(16), default="change")
    status: Mapped[str] = mapped_column(String(16), default="assessing", index=True)
    #: The proposed values: ``lines``, ``requested_date``, ``ship_to``, ``specification``…
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope: Mapped[str] = mapped_column(String(2000), default="")
    reason: Mapped[str] = mapped_column(String(1000))
    #: Step key → the expected impact on that step, in the requester's words.
    impact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expected_days: Mapped[int | None] = mapped_column()
    new_delivery_date: Mapped[dt.date | None] = mapped_column()
    #: The step the order goes back to on approval (e.g. re-review).
    rewind_to: Mapped[str] = mapped_column(String(64), default="")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    decision_reason: Mapped[str] = mapped_column(String(1000), default="")
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("review_order_revision.id"))

    assessments: Mapped[list[ReviewChangeAssessment]] = relationship(
        cascade="all, delete-orphan", order_by="ReviewChangeAssessment.id"
    )


class ReviewChangeAssessment(Base):
    """An affected department's assessment of a change request."""

    __tablename__ = "review_change_assessment"
    __table_args__ = (UniqueConstraint("change_request_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_request_id: Mapped[int] = mapped_column(
        ForeignKey("review_change_request.id", ondelete="CASCADE"), index=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("review_department.id"))
    #: '' until assessed, then one of :data:`VERDICTS`.
    verdict: Mapped[str] = mapped_column(String(24), default="")
    comment: Mapped[str] = mapped_column(String(2000), default="")
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    assessed_at: Mapped[dt.datetime | None] = mapped_column()

    department: Mapped[ReviewDepartment] = relationship()


class ReviewOrderRevision(Base):
    """A kept state of an order: revision 1 as first confirmed, then one per approved change.

    The change request that made it points here (``ReviewChangeRequest.revision_id``).
    """

    __tablename__ = "review_order_revision"
    __table_args__ = (UniqueConstraint("order_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column()
    #: Header and lines as they were (see ``plugins.review.revisions.snapshot``).
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Why it was made: ``confirmed`` (revision 1) or ``change request N``.
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

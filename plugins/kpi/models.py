"""The kpi plugin's tables: targets, reward/alert rules, surveys, complaints, visits,
supervision samples and findings, and the archive of generated reports.

Metrics are computed from the other plugins' records (:mod:`plugins.kpi.engine`); only
their rollups are kept, a cache the dashboard reads so it stays fast over millions of
orders (:mod:`plugins.kpi.rollups`). What is stored is what people decide or
answer: targets (KP-2), rule results (KP-2), survey answers, complaints and follow-up
visits (KP-6), supervision samples, checks and findings (KP-5), and each daily or
monthly report as it was sent (KP-4).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.labels import N_

#: A reward rule recognises; an alert rule asks for a follow-up.
RULE_KINDS = {"reward": N_("Reward"), "alert": N_("Alert")}
#: How a month's value is compared with a rule's threshold.
COMPARISONS = {">=": N_("at least"), ">": N_("above"), "<=": N_("at most"), "<": N_("below")}
#: Who a rule is evaluated for: the company, each branch, each department, each salesperson.
RULE_SUBJECTS = {
    "company": N_("Company"),
    "branch": N_("Each branch"),
    "department": N_("Each department"),
    "salesperson": N_("Each salesperson"),
}
#: What became of a rule result: to act on, then recognised / followed up.
RESULT_STATUSES = {"open": N_("Open"), "done": N_("Done")}
#: A survey sent after delivery/completion of an order, or the quarterly one per customer.
SURVEY_KINDS = {"order": N_("After delivery"), "quarterly": N_("Quarterly")}
#: A complaint's life: received, being handled, resolved (root cause and resolution given).
COMPLAINT_STATUSES = {"open": N_("Open"), "in_progress": N_("In progress"), "resolved": N_("Resolved")}
#: Follow-up visits (客户回访) are planned, then done with an outcome.
VISIT_STATUSES = {"planned": N_("Planned"), "done": N_("Done")}
#: How a follow-up visit is made.
VISIT_KINDS = {"phone": N_("Phone"), "onsite": N_("On site"), "online": N_("Online")}
#: The supervision checklist (KP-5): each sampled order is checked on these points.
CHECK_ITEMS = {
    "roles": N_("Each step done by the right role"),
    "sla": N_("Each step within its time limit"),
    "documents": N_("Documents complete"),
    "data": N_("Data accurate"),
}
#: A finding's life: open until corrected, closed when the correction is verified.
FINDING_STATUSES = {"open": N_("Open"), "corrected": N_("Corrected"), "closed": N_("Closed")}
#: Reports kpi generates and archives.
REPORT_KINDS = {"daily": N_("Daily order detail report"), "monthly": N_("Monthly KPI report")}


class KpiTarget(Base):
    """A metric's target for the company, a branch or a department (KP-2), overriding the default.

    At most one row per metric, branch and department (NULL = company-wide); the service
    keeps it so, since a unique constraint does not compare NULLs.
    """

    __tablename__ = "kpi_target"
    __table_args__ = (Index("ix_kpi_target_metric", "metric", "branch_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(100))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    value: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KpiRule(Base):
    """A reward or alert rule: "on-time delivery at least 100 three months running" (KP-2)."""

    __tablename__ = "kpi_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(100))
    comparison: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    #: How many consecutive months the condition must hold (1–12).
    months: Mapped[int] = mapped_column(default=1)
    subject: Mapped[str] = mapped_column(String(16), default="company")
    active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KpiRuleResult(Base):
    """A team or person a rule found in a month: to recognise (reward) or follow up (alert)."""

    __tablename__ = "kpi_rule_result"
    __table_args__ = (UniqueConstraint("rule_id", "month", "subject_kind", "subject_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("kpi_rule.id", ondelete="CASCADE"), index=True)
    #: The first day of the month evaluated (the last of the consecutive months).
    month: Mapped[dt.date] = mapped_column(index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    #: The branch, department or user id as text ("" for the company).
    subject_key: Mapped[str] = mapped_column(String(32), default="")
    subject_name: Mapped[str] = mapped_column(String(200), default="")
    #: The metric's values over the consecutive months, oldest first ("98.50,100.00,100.00").
    values: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str] = mapped_column(String(1000), default="")
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    done_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    rule: Mapped[KpiRule] = relationship()


class KpiSurvey(Base):
    """A satisfaction survey sent to a customer: after an order, or quarterly (KP-2, KP-6).

    ``key`` makes sending idempotent (``order:<id>``, ``quarterly:<customer>:<2026Q4>``);
    the link carries a random token of which only the SHA-256 is stored.
    """

    __tablename__ = "kpi_survey"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: The mean of the answers' scores (1–5), kept for the satisfaction metric.
    score: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    comment: Mapped[str] = mapped_column(Text, default="")

    answers: Mapped[list[KpiSurveyAnswer]] = relationship(
        back_populates="survey", cascade="all, delete-orphan", order_by="KpiSurveyAnswer.question"
    )


class KpiSurveyAnswer(Base):
    """One question's score (1–5) in an answered survey."""

    __tablename__ = "kpi_survey_answer"

    survey_id: Mapped[int] = mapped_column(ForeignKey("kpi_survey.id", ondelete="CASCADE"), primary_key=True)
    question: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[int]

    survey: Mapped[KpiSurvey] = relationship(back_populates="answers")


class KpiComplaint(Base):
    """A customer complaint (客诉, KP-6): owner, due date, resolution and root cause."""

    __tablename__ = "kpi_complaint"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    category: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    due_date: Mapped[dt.date | None]
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(String(1000), default="")
    resolved_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))


class KpiVisit(Base):
    """A follow-up visit to a customer (客户回访, KP-6): planned with an owner and date, then done."""

    __tablename__ = "kpi_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="phone")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    due_date: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    purpose: Mapped[str] = mapped_column(String(1000), default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    #: A problem the visit surfaced and its root cause, when there was one.
    issue: Mapped[str] = mapped_column(String(1000), default="")
    root_cause: Mapped[str] = mapped_column(String(1000), default="")
    done_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KpiSample(Base):
    """A month's random sample of orders for compliance checks (KP-5)."""

    __tablename__ = "kpi_sample"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The first day of the month whose orders were sampled.
    month: Mapped[dt.date] = mapped_column(unique=True)
    size: Mapped[int]
    drawn_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    drawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    orders: Mapped[list[KpiSampleOrder]] = relationship(
        back_populates="sample", cascade="all, delete-orphan", order_by="KpiSampleOrder.id"
    )


class KpiSampleOrder(Base):
    """One sampled order and whether its checks are done."""

    __tablename__ = "kpi_sample_order"
    __table_args__ = (UniqueConstraint("sample_id", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("kpi_sample.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    checked_at: Mapped[dt.datetime | None]
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    sample: Mapped[KpiSample] = relationship(back_populates="orders")
    checks: Mapped[list[KpiCheck]] = relationship(
        back_populates="sample_order", cascade="all, delete-orphan", order_by="KpiCheck.id"
    )


class KpiCheck(Base):
    """One checklist point of a sampled order: what the system found, and the checker's verdict."""

    __tablename__ = "kpi_check"
    __table_args__ = (UniqueConstraint("sample_order_id", "item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_order_id: Mapped[int] = mapped_column(ForeignKey("kpi_sample_order.id", ondelete="CASCADE"))
    item: Mapped[str] = mapped_column(String(16))
    #: What the automatic check found ("confirmed by sales (sales_manager) — ok", …).
    found: Mapped[str] = mapped_column(Text, default="")
    #: The checker's verdict: True passed, False failed, None not yet checked.
    passed: Mapped[bool | None]
    note: Mapped[str] = mapped_column(String(1000), default="")

    sample_order: Mapped[KpiSampleOrder] = relationship(back_populates="checks")


class KpiFinding(Base):
    """A supervision finding with its owner and correction deadline, tracked to closure (KP-5)."""

    __tablename__ = "kpi_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_order_id: Mapped[int | None] = mapped_column(ForeignKey("kpi_sample_order.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    item: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    due_date: Mapped[dt.date]
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    correction: Mapped[str] = mapped_column(Text, default="")
    corrected_at: Mapped[dt.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    closed_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KpiReport(Base):
    """A generated daily or monthly report as it was sent: files in the file store (KP-4).

    One per kind and period, so a job run twice (or on two workers) sends it once.
    """

    __tablename__ = "kpi_report"
    __table_args__ = (UniqueConstraint("kind", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[dt.date]
    period_end: Mapped[dt.date]
    generated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    pdf_sha256: Mapped[str] = mapped_column(String(64), default="")
    pdf_size: Mapped[int] = mapped_column(default=0)
    xlsx_sha256: Mapped[str] = mapped_column(String(64), default="")
    xlsx_size: Mapped[int] = mapped_column(default=0)
    #: How many people it was sent to.
    recipients: Mapped[int] = mapped_column(default=0)


class KpiRollupPeriod(Base):
    """A day, week, month or quarter whose metrics were rolled up, and when (the rollups' age).

    ``metrics`` lists the metric keys computed (comma-separated): a metric missing there
    (its plugin enabled since) is computed live.
    """

    __tablename__ = "kpi_rollup_period"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    start: Mapped[dt.date] = mapped_column(primary_key=True)
    end: Mapped[dt.date]
    computed_at: Mapped[dt.datetime]
    metrics: Mapped[str] = mapped_column(Text, default="")
    #: How long computing took (milliseconds), shown on the Jobs screen's log and in the docs.
    milliseconds: Mapped[int] = mapped_column(default=0)


class KpiRollup(Base):
    """One metric's sums over one period for one combination of the data-scope columns.

    A derived cache, rebuilt from the facts by :mod:`plugins.kpi.rollups`: the order's
    branch, department, owner and creator (``has_order``), or for facts without an order
    their customer's branch and owner, are what the data scopes filter on, so a viewer's
    scope applies to these rows as it does to orders. No foreign keys: rows are replaced
    wholesale at each refresh.
    """

    __tablename__ = "kpi_rollup"
    __table_args__ = (Index("ix_kpi_rollup_period_metric", "kind", "start", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    start: Mapped[dt.date]
    metric: Mapped[str] = mapped_column(String(80))
    has_order: Mapped[bool]
    branch_id: Mapped[int | None]
    department_id: Mapped[int | None]
    owner_id: Mapped[int | None]
    created_by_id: Mapped[int | None]
    customer_branch_id: Mapped[int | None]
    customer_owner_id: Mapped[int | None]
    num: Mapped[Decimal] = mapped_column(Numeric(28, 6))
    den: Mapped[Decimal] = mapped_column(Numeric(28, 6))

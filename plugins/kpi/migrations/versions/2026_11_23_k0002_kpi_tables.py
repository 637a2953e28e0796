"""kpi tables: targets, rules and results, surveys, complaints, visits, supervision, reports

Revision ID: k0002
Revises: k0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "k0002"
down_revision: str | Sequence[str] | None = "k0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0007"


def upgrade() -> None:
    """Create kpi's tables."""
    op.create_table(
        "kpi_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("generated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_size", sa.Integer(), nullable=False),
        sa.Column("xlsx_sha256", sa.String(length=64), nullable=False),
        sa.Column("xlsx_size", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_report")),
        sa.UniqueConstraint("kind", "period_start", name=op.f("uq_kpi_report_kind_period_start")),
    )
    op.create_table(
        "kpi_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("comparison", sa.String(length=2), nullable=False),
        sa.Column("threshold", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_kpi_rule_created_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_rule")),
    )
    op.create_table(
        "kpi_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("drawn_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("drawn_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["drawn_by_id"], ["user.id"], name=op.f("fk_kpi_sample_drawn_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_sample")),
        sa.UniqueConstraint("month", name=op.f("uq_kpi_sample_month")),
    )
    op.create_table(
        "kpi_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("set_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"], name=op.f("fk_kpi_target_branch_id_branch")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_kpi_target_department_id_department")
        ),
        sa.ForeignKeyConstraint(["set_by_id"], ["user.id"], name=op.f("fk_kpi_target_set_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_target")),
    )
    with op.batch_alter_table("kpi_target", schema=None) as batch_op:
        batch_op.create_index("ix_kpi_target_metric", ["metric", "branch_id", "department_id"], unique=False)

    op.create_table(
        "kpi_complaint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("root_cause", sa.String(length=1000), nullable=False),
        sa.Column("resolved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_kpi_complaint_created_by_id_user")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_kpi_complaint_customer_id_customer")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_kpi_complaint_order_id_order")),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_kpi_complaint_owner_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_complaint")),
        sa.UniqueConstraint("number", name=op.f("uq_kpi_complaint_number")),
    )
    with op.batch_alter_table("kpi_complaint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_complaint_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_complaint_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_complaint_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_complaint_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_complaint_resolved_at"), ["resolved_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_complaint_status"), ["status"], unique=False)

    op.create_table(
        "kpi_rule_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_key", sa.String(length=32), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("values", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("done_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["done_by_id"], ["user.id"], name=op.f("fk_kpi_rule_result_done_by_id_user")),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["kpi_rule.id"], name=op.f("fk_kpi_rule_result_rule_id_kpi_rule"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_rule_result")),
        sa.UniqueConstraint(
            "rule_id",
            "month",
            "subject_kind",
            "subject_key",
            name=op.f("uq_kpi_rule_result_rule_id_month_subject_kind_subject_key"),
        ),
    )
    with op.batch_alter_table("kpi_rule_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_rule_result_month"), ["month"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_rule_result_rule_id"), ["rule_id"], unique=False)

    op.create_table(
        "kpi_sample_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["checked_by_id"], ["user.id"], name=op.f("fk_kpi_sample_order_checked_by_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_kpi_sample_order_order_id_order")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["kpi_sample.id"], name=op.f("fk_kpi_sample_order_sample_id_kpi_sample"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_sample_order")),
        sa.UniqueConstraint("sample_id", "order_id", name=op.f("uq_kpi_sample_order_sample_id_order_id")),
    )
    with op.batch_alter_table("kpi_sample_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_sample_order_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_sample_order_sample_id"), ["sample_id"], unique=False)

    op.create_table(
        "kpi_survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["answered_by_id"], ["user.id"], name=op.f("fk_kpi_survey_answered_by_id_user")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_kpi_survey_customer_id_customer")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_kpi_survey_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_survey")),
        sa.UniqueConstraint("key", name=op.f("uq_kpi_survey_key")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_kpi_survey_token_hash")),
    )
    with op.batch_alter_table("kpi_survey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_survey_answered_at"), ["answered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_survey_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_survey_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_survey_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "kpi_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("issue", sa.String(length=1000), nullable=False),
        sa.Column("root_cause", sa.String(length=1000), nullable=False),
        sa.Column("done_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_kpi_visit_created_by_id_user")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_kpi_visit_customer_id_customer")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_kpi_visit_order_id_order")),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_kpi_visit_owner_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_visit")),
    )
    with op.batch_alter_table("kpi_visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_visit_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_visit_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_visit_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_visit_status"), ["status"], unique=False)

    op.create_table(
        "kpi_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_order_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=16), nullable=False),
        sa.Column("found", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_order_id"],
            ["kpi_sample_order.id"],
            name=op.f("fk_kpi_check_sample_order_id_kpi_sample_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_check")),
        sa.UniqueConstraint("sample_order_id", "item", name=op.f("uq_kpi_check_sample_order_id_item")),
    )
    op.create_table(
        "kpi_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_order_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("item", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("correction", sa.Text(), nullable=False),
        sa.Column("corrected_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["closed_by_id"], ["user.id"], name=op.f("fk_kpi_finding_closed_by_id_user")),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_kpi_finding_created_by_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_kpi_finding_order_id_order")),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_kpi_finding_owner_id_user")),
        sa.ForeignKeyConstraint(
            ["sample_order_id"], ["kpi_sample_order.id"], name=op.f("fk_kpi_finding_sample_order_id_kpi_sample_order")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_finding")),
    )
    with op.batch_alter_table("kpi_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kpi_finding_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_finding_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_finding_sample_order_id"), ["sample_order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kpi_finding_status"), ["status"], unique=False)

    op.create_table(
        "kpi_survey_answer",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["kpi_survey.id"], name=op.f("fk_kpi_survey_answer_survey_id_kpi_survey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("survey_id", "question", name=op.f("pk_kpi_survey_answer")),
    )


def downgrade() -> None:
    """Drop kpi's tables."""
    op.drop_table("kpi_survey_answer")
    with op.batch_alter_table("kpi_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_finding_status"))
        batch_op.drop_index(batch_op.f("ix_kpi_finding_sample_order_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_finding_owner_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_finding_order_id"))

    op.drop_table("kpi_finding")
    op.drop_table("kpi_check")
    with op.batch_alter_table("kpi_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_visit_status"))
        batch_op.drop_index(batch_op.f("ix_kpi_visit_owner_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_visit_order_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_visit_customer_id"))

    op.drop_table("kpi_visit")
    with op.batch_alter_table("kpi_survey", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_survey_sent_at"))
        batch_op.drop_index(batch_op.f("ix_kpi_survey_order_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_survey_customer_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_survey_answered_at"))

    op.drop_table("kpi_survey")
    with op.batch_alter_table("kpi_sample_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_sample_order_sample_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_sample_order_order_id"))

    op.drop_table("kpi_sample_order")
    with op.batch_alter_table("kpi_rule_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_rule_result_rule_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_rule_result_month"))

    op.drop_table("kpi_rule_result")
    with op.batch_alter_table("kpi_complaint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_status"))
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_resolved_at"))
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_received_at"))
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_owner_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_order_id"))
        batch_op.drop_index(batch_op.f("ix_kpi_complaint_customer_id"))

    op.drop_table("kpi_complaint")
    with op.batch_alter_table("kpi_target", schema=None) as batch_op:
        batch_op.drop_index("ix_kpi_target_metric")

    op.drop_table("kpi_target")
    op.drop_table("kpi_sample")
    op.drop_table("kpi_rule")
    op.drop_table("kpi_report")

"""review's tables: departments, templates, sheets, tasks and verdicts, quotations,
approval limits, supervision, credit holds, change requests and order revisions; the
shipped departments, templates and approval limits

Revision ID: r0002
Revises: r0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "r0002"
down_revision: str | Sequence[str] | None = "r0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0006"

#: code, name, 中文名, kind, reviewer role, escalating (RV-3), re-opened by, position.
DEPARTMENTS = (
    ("technical", "Technical", "技术部", "technical", "review_technical", False, "date", 10),
    ("production", "Production", "生产部", "production", "review_production", False, "date,quantity", 20),
    ("quality", "Quality", "品质部", "quality", "review_quality", True, "", 30),
    ("purchasing", "Purchasing", "采购部", "purchasing", "review_purchasing", True, "price,quantity", 40),
    ("finance", "Finance", "财务部", "finance", "finance", True, "price", 50),
)
#: name, priority, regular, min amount, two-tier, [(department code, tier)] (RV-2, RV-5).
TEMPLATES = (
    (
        "Large orders: branch review, then committee",
        10,
        None,
        500000,
        True,
        [("technical", 1), ("production", 1), ("quality", 1), ("finance", 2), ("quality", 2), ("purchasing", 2)],
    ),
    ("Regular orders", 20, True, None, False, [("production", 1), ("finance", 1)]),
    (
        "Non-regular orders",
        30,
        False,
        None,
        False,
        [("technical", 1), ("production", 1), ("quality", 1), ("purchasing", 1), ("finance", 1)],
    ),
    (
        "Every order",
        1000,
        None,
        None,
        False,
        [("technical", 1), ("production", 1), ("quality", 1), ("purchasing", 1), ("finance", 1)],
    ),
)


def upgrade() -> None:
    """Create the tables, then the shipped departments, templates and approval limits."""
    op.create_table(
        "review_approval_limit",
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("max_amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.PrimaryKeyConstraint("role_code", name=op.f("pk_review_approval_limit")),
    )
    op.create_table(
        "review_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("regular", sa.Boolean(), nullable=True),
        sa.Column("min_amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("max_amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("product_category", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("two_tier", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"], name=op.f("fk_review_template_branch_id_branch")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_template")),
    )
    op.create_table(
        "review_department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("head_user_id", sa.Integer(), nullable=True),
        sa.Column("escalating", sa.Boolean(), nullable=False),
        sa.Column("reopen_on", sa.String(length=64), nullable=False),
        sa.Column("sla_days", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["head_user_id"], ["user.id"], name=op.f("fk_review_department_head_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_department")),
        sa.UniqueConstraint("code", name=op.f("uq_review_department_code")),
    )
    op.create_table(
        "review_credit_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("held_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_credit_hold_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_credit_hold")),
    )
    with op.batch_alter_table("review_credit_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_credit_hold_order_id"), ["order_id"], unique=False)
    op.create_table(
        "review_order_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_review_order_revision_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_order_revision_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_order_revision")),
        sa.UniqueConstraint("order_id", "number", name=op.f("uq_review_order_revision_order_id_number")),
    )
    with op.batch_alter_table("review_order_revision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_order_revision_order_id"), ["order_id"], unique=False)
    op.create_table(
        "review_sheet",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("two_tier", sa.Boolean(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("approver_role", sa.String(length=64), nullable=False),
        sa.Column("opened_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_sheet_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["review_template.id"], name=op.f("fk_review_sheet_template_id_review_template")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_sheet")),
        sa.UniqueConstraint("order_id", "round", name=op.f("uq_review_sheet_order_id_round")),
    )
    with op.batch_alter_table("review_sheet", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_sheet_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_sheet_status"), ["status"], unique=False)
    op.create_table(
        "review_supervision",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("threshold", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("flagged_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_supervision_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_review_supervision")),
    )
    op.create_table(
        "review_template_department",
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["review_department.id"],
            name=op.f("fk_review_template_department_department_id_review_department"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["review_template.id"],
            name=op.f("fk_review_template_department_template_id_review_template"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("template_id", "department_id", "tier", name=op.f("pk_review_template_department")),
    )
    op.create_table(
        "review_change_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("impact", sa.JSON(), nullable=False),
        sa.Column("expected_days", sa.Integer(), nullable=True),
        sa.Column("new_delivery_date", sa.Date(), nullable=True),
        sa.Column("rewind_to", sa.String(length=64), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=1000), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["user.id"], name=op.f("fk_review_change_request_decided_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_change_request_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"], name=op.f("fk_review_change_request_requested_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["review_order_revision.id"],
            name=op.f("fk_review_change_request_revision_id_review_order_revision"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_change_request")),
        sa.UniqueConstraint("order_id", "number", name=op.f("uq_review_change_request_order_id_number")),
    )
    with op.batch_alter_table("review_change_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_change_request_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_change_request_status"), ["status"], unique=False)
    op.create_table(
        "review_credit_exception",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("granted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["user.id"], name=op.f("fk_review_credit_exception_granted_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["review_credit_hold.id"],
            name=op.f("fk_review_credit_exception_hold_id_review_credit_hold"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_credit_exception")),
        sa.UniqueConstraint("hold_id", "role_code", name=op.f("uq_review_credit_exception_hold_id_role_code")),
    )
    with op.batch_alter_table("review_credit_exception", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_credit_exception_hold_id"), ["hold_id"], unique=False)
    op.create_table(
        "review_negotiation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("reopened", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["by_id"], ["user.id"], name=op.f("fk_review_negotiation_by_id_user")),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["review_sheet.id"],
            name=op.f("fk_review_negotiation_sheet_id_review_sheet"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_negotiation")),
    )
    with op.batch_alter_table("review_negotiation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_negotiation_sheet_id"), ["sheet_id"], unique=False)
    op.create_table(
        "review_quotation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("cost", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("taxes", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("expenses", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("gross_margin", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("expense_ratio", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("profit_margin", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.Column("below_minimum", sa.Boolean(), nullable=False),
        sa.Column("payment_terms", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_review_quotation_created_by_id_user")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_review_quotation_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"],
            ["review_sheet.id"],
            name=op.f("fk_review_quotation_sheet_id_review_sheet"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_quotation")),
        sa.UniqueConstraint("order_id", "number", name=op.f("uq_review_quotation_order_id_number")),
    )
    with op.batch_alter_table("review_quotation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_quotation_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_quotation_sheet_id"), ["sheet_id"], unique=False)
    op.create_table(
        "review_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sheet_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("opened_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("reminded_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"], ["review_department.id"], name=op.f("fk_review_task_department_id_review_department")
        ),
        sa.ForeignKeyConstraint(
            ["sheet_id"], ["review_sheet.id"], name=op.f("fk_review_task_sheet_id_review_sheet"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_task")),
        sa.UniqueConstraint(
            "sheet_id", "department_id", "tier", name=op.f("uq_review_task_sheet_id_department_id_tier")
        ),
    )
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_task_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_review_task_sheet_id"), ["sheet_id"], unique=False)
        batch_op.create_index("ix_review_task_status_due", ["status", "due_date"], unique=False)
    op.create_table(
        "review_change_assessment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=False),
        sa.Column("assessed_by_id", sa.Integer(), nullable=True),
        sa.Column("assessed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assessed_by_id"], ["user.id"], name=op.f("fk_review_change_assessment_assessed_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["review_change_request.id"],
            name=op.f("fk_review_change_assessment_change_request_id_review_change_request"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["review_department.id"],
            name=op.f("fk_review_change_assessment_department_id_review_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_change_assessment")),
        sa.UniqueConstraint(
            "change_request_id",
            "department_id",
            name=op.f("uq_review_change_assessment_change_request_id_department_id"),
        ),
    )
    with op.batch_alter_table("review_change_assessment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_change_assessment_change_request_id"), ["change_request_id"], unique=False
        )
    op.create_table(
        "review_quotation_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quotation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["quotation_id"],
            ["review_quotation.id"],
            name=op.f("fk_review_quotation_line_quotation_id_review_quotation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_quotation_line")),
    )
    with op.batch_alter_table("review_quotation_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_quotation_line_quotation_id"), ["quotation_id"], unique=False)
    op.create_table(
        "review_verdict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=False),
        sa.Column("conditions", sa.String(length=2000), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("proposed_date", sa.Date(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["decided_by_id"], ["user.id"], name=op.f("fk_review_verdict_decided_by_id_user")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["review_task.id"], name=op.f("fk_review_verdict_task_id_review_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_verdict")),
    )
    with op.batch_alter_table("review_verdict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_verdict_task_id"), ["task_id"], unique=False)
    _seed()


def _seed() -> None:
    department = sa.table(
        "review_department",
        *(sa.column(c) for c in ("id", "code", "name", "name_zh", "kind", "role_code", "escalating", "reopen_on")),
        sa.column("position"),
        sa.column("active"),
    )
    op.bulk_insert(
        department,
        [
            {
                "id": number,
                "code": code,
                "name": name,
                "name_zh": name_zh,
                "kind": kind,
                "role_code": role,
                "escalating": escalating,
                "reopen_on": reopen_on,
                "position": position,
                "active": True,
            }
            for number, (code, name, name_zh, kind, role, escalating, reopen_on, position) in enumerate(
                DEPARTMENTS, start=1
            )
        ],
    )
    ids = {code: number for number, (code, *_rest) in enumerate(DEPARTMENTS, start=1)}
    template = sa.table(
        "review_template",
        *(sa.column(c) for c in ("id", "name", "priority", "active", "regular", "min_amount", "two_tier")),
        sa.column("product_category"),
        sa.column("urgency"),
    )
    member = sa.table(
        "review_template_department", sa.column("template_id"), sa.column("department_id"), sa.column("tier")
    )
    for number, (name, priority, regular, min_amount, two_tier, members) in enumerate(TEMPLATES, start=1):
        op.bulk_insert(
            template,
            [
                {
                    "id": number,
                    "name": name,
                    "priority": priority,
                    "active": True,
                    "regular": regular,
                    "min_amount": min_amount,
                    "two_tier": two_tier,
                    "product_category": "",
                    "urgency": "",
                }
            ],
        )
        op.bulk_insert(member, [{"template_id": number, "department_id": ids[c], "tier": t} for c, t in members])
    core.db.sync_id_sequences(op.get_bind(), "review_department", "review_template")  # the ids above were explicit
    limit = sa.table("review_approval_limit", sa.column("role_code"), sa.column("max_amount"))
    op.bulk_insert(
        limit,
        [{"role_code": "sales_manager", "max_amount": 200000}, {"role_code": "general_manager", "max_amount": None}],
    )


def downgrade() -> None:
    """Drop the tables (and with them the shipped rows)."""
    with op.batch_alter_table("review_verdict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_verdict_task_id"))
    op.drop_table("review_verdict")
    with op.batch_alter_table("review_quotation_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_quotation_line_quotation_id"))
    op.drop_table("review_quotation_line")
    with op.batch_alter_table("review_change_assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_change_assessment_change_request_id"))
    op.drop_table("review_change_assessment")
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.drop_index("ix_review_task_status_due")
        batch_op.drop_index(batch_op.f("ix_review_task_sheet_id"))
        batch_op.drop_index(batch_op.f("ix_review_task_department_id"))
    op.drop_table("review_task")
    with op.batch_alter_table("review_quotation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_quotation_sheet_id"))
        batch_op.drop_index(batch_op.f("ix_review_quotation_order_id"))
    op.drop_table("review_quotation")
    with op.batch_alter_table("review_negotiation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_negotiation_sheet_id"))
    op.drop_table("review_negotiation")
    with op.batch_alter_table("review_credit_exception", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_credit_exception_hold_id"))
    op.drop_table("review_credit_exception")
    with op.batch_alter_table("review_change_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_change_request_status"))
        batch_op.drop_index(batch_op.f("ix_review_change_request_order_id"))
    op.drop_table("review_change_request")
    op.drop_table("review_template_department")
    op.drop_table("review_supervision")
    with op.batch_alter_table("review_sheet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_sheet_status"))
        batch_op.drop_index(batch_op.f("ix_review_sheet_order_id"))
    op.drop_table("review_sheet")
    with op.batch_alter_table("review_order_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_order_revision_order_id"))
    op.drop_table("review_order_revision")
    with op.batch_alter_table("review_credit_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_credit_hold_order_id"))
    op.drop_table("review_credit_hold")
    op.drop_table("review_department")
    op.drop_table("review_template")
    op.drop_table("review_approval_limit")

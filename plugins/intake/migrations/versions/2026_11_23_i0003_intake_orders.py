"""intake's record of orders: classification, pre-check findings, manual check,
corrections; purchase limits; regular products

Revision ID: i0003
Revises: i0002
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "i0003"
down_revision: str | Sequence[str] | None = "i0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0006"


def upgrade() -> None:
    """Create the tables; mark no product regular yet."""
    with op.batch_alter_table("intake_product_rule") as batch:
        batch.add_column(sa.Column("regular", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("intake_product_rule") as batch:
        batch.alter_column("regular", server_default=None)
    op.create_table(
        "intake_purchase_limit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("max_quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_intake_purchase_limit_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_intake_purchase_limit_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_purchase_limit")),
        sa.UniqueConstraint(
            "customer_id", "product_id", "period", name=op.f("uq_intake_purchase_limit_customer_id_product_id_period")
        ),
    )
    op.create_index(op.f("ix_intake_purchase_limit_customer_id"), "intake_purchase_limit", ["customer_id"])
    op.create_table(
        "intake_order",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("regular", sa.Boolean(), nullable=True),
        sa.Column("transaction_type", sa.String(length=16), nullable=False),
        sa.Column("precheck_level", sa.String(length=8), nullable=False),
        sa.Column("prechecked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("check_due", sa.Date(), nullable=True),
        sa.Column("checked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_by_id", sa.Integer(), nullable=True),
        sa.Column("check_outcome", sa.String(length=16), nullable=False),
        sa.Column("reminded_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["checked_by_id"], ["user.id"], name=op.f("fk_intake_order_checked_by_id_user")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_intake_order_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_intake_order")),
    )
    op.create_index("ix_intake_order_due", "intake_order", ["checked_at", "check_due"])
    op.create_table(
        "intake_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("plugin", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("msgid", sa.String(length=500), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_intake_finding_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_finding")),
    )
    op.create_index(op.f("ix_intake_finding_order_id"), "intake_finding", ["order_id"])
    op.create_table(
        "intake_correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("before", sa.String(length=1000), nullable=False),
        sa.Column("after", sa.String(length=1000), nullable=False),
        sa.Column("entry_error", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_intake_correction_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_intake_correction_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_correction")),
    )
    op.create_index(op.f("ix_intake_correction_order_id"), "intake_correction", ["order_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("intake_correction")
    op.drop_table("intake_finding")
    op.drop_table("intake_order")
    op.drop_table("intake_purchase_limit")
    with op.batch_alter_table("intake_product_rule") as batch:
        batch.drop_column("regular")

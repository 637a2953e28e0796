"""intake's tables: customer groups and profiles, price lists with items, product ordering rules

Revision ID: i0002
Revises: i0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "i0002"
down_revision: str | Sequence[str] | None = "i0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0005"


def upgrade() -> None:
    """Create intake's tables."""
    op.create_table(
        "intake_customer_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_customer_group")),
        sa.UniqueConstraint("code", name=op.f("uq_intake_customer_group_code")),
    )
    op.create_table(
        "intake_product_rule",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("min_quantity", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.Column("max_quantity", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], name=op.f("fk_intake_product_rule_product_id_product")),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_intake_product_rule")),
    )
    op.create_table(
        "intake_customer_profile",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("blocked_reason", sa.String(length=500), nullable=False),
        sa.Column("payment_methods", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_intake_customer_profile_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["intake_customer_group.id"],
            name=op.f("fk_intake_customer_profile_group_id_intake_customer_group"),
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_intake_customer_profile")),
    )
    with op.batch_alter_table("intake_customer_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_customer_profile_group_id"), ["group_id"], unique=False)

    op.create_table(
        "intake_price_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_group_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("contract_number", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_group_id"],
            ["intake_customer_group.id"],
            name=op.f("fk_intake_price_list_customer_group_id_intake_customer_group"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_intake_price_list_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_price_list")),
        sa.UniqueConstraint("code", name=op.f("uq_intake_price_list_code")),
    )
    with op.batch_alter_table("intake_price_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_price_list_customer_group_id"), ["customer_group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_intake_price_list_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "intake_price_list_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("price_list_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("min_quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["price_list_id"],
            ["intake_price_list.id"],
            name=op.f("fk_intake_price_list_item_price_list_id_intake_price_list"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_intake_price_list_item_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_price_list_item")),
        sa.UniqueConstraint(
            "price_list_id",
            "product_id",
            "min_quantity",
            name=op.f("uq_intake_price_list_item_price_list_id_product_id_min_quantity"),
        ),
    )
    with op.batch_alter_table("intake_price_list_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intake_price_list_item_price_list_id"), ["price_list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_intake_price_list_item_product_id"), ["product_id"], unique=False)


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("intake_price_list_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_price_list_item_product_id"))
        batch_op.drop_index(batch_op.f("ix_intake_price_list_item_price_list_id"))

    op.drop_table("intake_price_list_item")
    with op.batch_alter_table("intake_price_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_price_list_customer_id"))
        batch_op.drop_index(batch_op.f("ix_intake_price_list_customer_group_id"))

    op.drop_table("intake_price_list")
    with op.batch_alter_table("intake_customer_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_customer_profile_group_id"))

    op.drop_table("intake_customer_profile")
    op.drop_table("intake_product_rule")
    op.drop_table("intake_customer_group")

"""inspection: the inspection_report table, keyed to core's order and user

Revision ID: insp0001
Revises:
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "insp0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("inspection",)
depends_on: str | Sequence[str] | None = "c0001"


def upgrade() -> None:
    """Create ``inspection_report``."""
    op.create_table(
        "inspection_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inspector_id"], ["user.id"], name=op.f("fk_inspection_report_inspector_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_inspection_report_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_report")),
    )
    with op.batch_alter_table("inspection_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inspection_report_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    """Drop ``inspection_report`` (only when the plugin is removed for good)."""
    with op.batch_alter_table("inspection_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inspection_report_order_id"))
    op.drop_table("inspection_report")

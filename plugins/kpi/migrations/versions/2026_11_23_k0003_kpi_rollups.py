"""kpi rollups: each metric's sums per period and scope columns, for the dashboard

Revision ID: k0003
Revises: k0002
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "k0003"
down_revision: str | Sequence[str] | None = "k0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the rollup tables."""
    op.create_table(
        "kpi_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=80), nullable=False),
        sa.Column("has_order", sa.Boolean(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("customer_branch_id", sa.Integer(), nullable=True),
        sa.Column("customer_owner_id", sa.Integer(), nullable=True),
        sa.Column("num", sa.Numeric(precision=28, scale=6), nullable=False),
        sa.Column("den", sa.Numeric(precision=28, scale=6), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_rollup")),
    )
    with op.batch_alter_table("kpi_rollup", schema=None) as batch_op:
        batch_op.create_index("ix_kpi_rollup_period_metric", ["kind", "start", "metric"], unique=False)
    op.create_table(
        "kpi_rollup_period",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("milliseconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "start", name=op.f("pk_kpi_rollup_period")),
    )


def downgrade() -> None:
    """Drop the rollup tables."""
    op.drop_table("kpi_rollup_period")
    with op.batch_alter_table("kpi_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_kpi_rollup_period_metric")
    op.drop_table("kpi_rollup")

"""intake: index the pre-check time for kpi's pre-check rejection rate

Revision ID: i0004
Revises: i0003
Create Date: 2026-11-23

"""

from collections.abc import Sequence

from alembic import op

revision: str = "i0004"
down_revision: str | Sequence[str] | None = "i0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0007"


def upgrade() -> None:
    """Add the ``prechecked_at`` index (orders pre-checked in a period)."""
    with op.batch_alter_table("intake_order", schema=None) as batch_op:
        batch_op.create_index("ix_intake_order_prechecked_at", ["prechecked_at"], unique=False)


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("intake_order", schema=None) as batch_op:
        batch_op.drop_index("ix_intake_order_prechecked_at")

"""index on the date allocations take effect, which kpi's billing metrics select by

Revision ID: b0003
Revises: b0002
Create Date: 2026-11-24

"""

from collections.abc import Sequence

from alembic import op

revision: str = "b0003"
down_revision: str | Sequence[str] | None = "b0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0007"


def upgrade() -> None:
    """Add the index."""
    with op.batch_alter_table("billing_allocation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_allocation_effective_on"), ["effective_on"], unique=False)


def downgrade() -> None:
    """Drop the index."""
    with op.batch_alter_table("billing_allocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_allocation_effective_on"))

"""indexes on the times kpi's logistics metrics select by: delivery, receipt, exception
reports and received returns

Revision ID: l0003
Revises: l0002
Create Date: 2026-11-24

"""

from collections.abc import Sequence

from alembic import op

revision: str = "l0003"
down_revision: str | Sequence[str] | None = "l0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0007"

_INDEXES = (
    ("logistics_shipment", "delivered_at"),
    ("logistics_shipment", "receipt_at"),
    ("logistics_exception", "reported_at"),
    ("logistics_return", "received_at"),
)


def upgrade() -> None:
    """Add the indexes."""
    for table, column in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def downgrade() -> None:
    """Drop the indexes."""
    for table, column in reversed(_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))

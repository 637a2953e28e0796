"""orders: indexes per data-scope column ending in the lists' order (newest first)

Revision ID: c0009_order_list_indexes
Revises: c0008
Create Date: 2026-11-24

The single-column indexes on ``branch_id``, ``department_id``, ``customer_id`` and
``owner_id`` become ``(column, created_at, id)``, and ``created_by_id`` (the other half
of the ``own`` scope) gets one: a scoped user's page of newest orders is read from the
index in order instead of sorting every order of the scope. Each new index still serves
look-ups by its column alone. ``(column, status, created_at, id)`` serves the same lists
filtered by status: without it, SQLite (which knows no skew between statuses) reads the
whole scope to count its few submitted orders.
"""

from collections.abc import Sequence

from alembic import op

from core.migrate import analyze_indexes

revision: str = "c0009_order_list_indexes"
down_revision: str | Sequence[str] | None = "c0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE_COLUMNS = ("branch_id", "department_id", "customer_id", "owner_id", "created_by_id")
REPLACED = ("branch_id", "department_id", "customer_id", "owner_id")


def upgrade() -> None:
    """Create the ``(column, created_at, id)`` and ``(column, status, created_at, id)``
    indexes, then drop the single-column ones."""
    with op.batch_alter_table("order", schema=None) as batch_op:
        for column in SCOPE_COLUMNS:
            batch_op.create_index(f"ix_order_{column}_created", [column, "created_at", "id"], unique=False)
            batch_op.create_index(f"ix_order_{column}_status", [column, "status", "created_at", "id"], unique=False)
        for column in REPLACED:
            batch_op.drop_index(f"ix_order_{column}")
    analyze_indexes(op.get_bind(), [f"ix_order_{c}_{s}" for c in SCOPE_COLUMNS for s in ("created", "status")])


def downgrade() -> None:
    """Back to single-column indexes (none on ``created_by_id``)."""
    with op.batch_alter_table("order", schema=None) as batch_op:
        for column in REPLACED:
            batch_op.create_index(f"ix_order_{column}", [column], unique=False)
        for column in SCOPE_COLUMNS:
            batch_op.drop_index(f"ix_order_{column}_status")
            batch_op.drop_index(f"ix_order_{column}_created")

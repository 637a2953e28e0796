"""review: index the times kpi's review metrics count by (answers, sheets, change requests)

Revision ID: r0003
Revises: r0002
Create Date: 2026-11-23

"""

from collections.abc import Sequence

from alembic import op

revision: str = "r0003"
down_revision: str | Sequence[str] | None = "r0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0007"

#: table, index name, column.
INDEXES = (
    ("review_task", "ix_review_task_answered_at", "answered_at"),
    ("review_sheet", "ix_review_sheet_opened_at", "opened_at"),
    ("review_sheet", "ix_review_sheet_closed_at", "closed_at"),
    ("review_change_request", "ix_review_change_request_requested_at", "requested_at"),
)


def upgrade() -> None:
    """Add the indexes: tasks answered, sheets opened and closed, requests filed in a period."""
    for table, index, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(index, [column], unique=False)


def downgrade() -> None:
    """Drop them."""
    for table, index, _ in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)

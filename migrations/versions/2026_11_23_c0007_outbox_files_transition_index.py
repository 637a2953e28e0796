"""notifications: files sent along with e-mails; transitions indexed by status and time

Revision ID: c0007
Revises: c0006
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0007"
down_revision: str | Sequence[str] | None = "c0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``outbox_file`` (report attachments) and the ``(to_status, at)`` index on transitions."""
    op.create_table(
        "outbox_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_message.id"],
            name=op.f("fk_outbox_file_message_id_outbox_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_file")),
    )
    with op.batch_alter_table("outbox_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_file_message_id"), ["message_id"], unique=False)
    with op.batch_alter_table("order_transition", schema=None) as batch_op:
        batch_op.create_index("ix_order_transition_to_status_at", ["to_status", "at"], unique=False)


def downgrade() -> None:
    """Drop the index and the table."""
    with op.batch_alter_table("order_transition", schema=None) as batch_op:
        batch_op.drop_index("ix_order_transition_to_status_at")
    with op.batch_alter_table("outbox_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_file_message_id"))
    op.drop_table("outbox_file")

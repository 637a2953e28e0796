"""partial index of the invoices still open, for credit holds and open receivables

Revision ID: b0004_open_invoices
Revises: b0003
Create Date: 2026-11-24

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.migrate import analyze_indexes

revision: str = "b0004_open_invoices"
down_revision: str | Sequence[str] | None = "b0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``ix_billing_invoice_open``: the invoices whose settled amount is below the total."""
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.create_index(
            "ix_billing_invoice_open",
            ["customer_id", "status", "kind", "total", "settled"],
            unique=False,
            sqlite_where=sa.text("settled < total"),
            postgresql_where=sa.text("settled < total"),
        )
    analyze_indexes(op.get_bind(), ["ix_billing_invoice_open"])


def downgrade() -> None:
    """Drop the index."""
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_index("ix_billing_invoice_open")

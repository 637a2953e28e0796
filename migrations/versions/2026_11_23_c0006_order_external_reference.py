"""orders: the sender's external reference, unique per channel and customer

Revision ID: c0006
Revises: c0005
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0006"
down_revision: str | Sequence[str] | None = "c0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``order.external_reference`` and its uniqueness per company, channel and customer."""
    with op.batch_alter_table("order") as batch:
        batch.add_column(sa.Column("external_reference", sa.String(length=100), nullable=True))
        batch.create_unique_constraint(
            batch.f("uq_order_company_id_channel_customer_id_external_reference"),
            ["company_id", "channel", "customer_id", "external_reference"],
        )


def downgrade() -> None:
    """Drop the external reference."""
    with op.batch_alter_table("order") as batch:
        batch.drop_constraint(batch.f("uq_order_company_id_channel_customer_id_external_reference"), type_="unique")
        batch.drop_column("external_reference")

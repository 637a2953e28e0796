"""audit entries name the order they belong to (a plugin record's order too)

Revision ID: c0003
Revises: c0002
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0003"
down_revision: str | Sequence[str] | None = "c0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_TRIGGER = "audit_log_append_only"


def upgrade() -> None:
    """Add ``audit_log.order_id`` and fill it for the entries about orders."""
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.add_column(sa.Column("order_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_log_order_id"), ["order_id"], unique=False)
    # The one sanctioned rewrite: the migration itself, with the guard lifted for the
    # back-fill only and put back at once.
    _without_guard("UPDATE audit_log SET order_id = entity_id WHERE entity = 'order'")


def _without_guard(statement: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
        if statement:
            op.execute(statement)
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
    else:
        op.execute(f"ALTER TABLE audit_log DISABLE TRIGGER {_PG_TRIGGER}")
        if statement:
            op.execute(statement)
        op.execute(f"ALTER TABLE audit_log ENABLE TRIGGER {_PG_TRIGGER}")


def downgrade() -> None:
    """Drop ``audit_log.order_id``."""
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_order_id"))
        batch_op.drop_column("order_id")
    _without_guard("")

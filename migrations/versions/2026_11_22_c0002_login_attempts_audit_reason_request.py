"""login attempts for throttling; audit entries keep a reason and the request id

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "c0002"
down_revision: str | Sequence[str] | None = "c0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``login_attempt`` and the audit log's ``reason`` and ``request_id``."""
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempt")),
    )
    op.create_index("ix_login_attempt_client_at", "login_attempt", ["client_address", "at"], unique=False)
    op.create_index("ix_login_attempt_email_at", "login_attempt", ["email", "at"], unique=False)
    # The audit log refuses UPDATE (triggers), so new columns come with server defaults
    # for the rows already there instead of a back-fill.
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=1000), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_audit_log_request_id"), ["request_id"], unique=False)
    _recreate_sqlite_triggers()


def _recreate_sqlite_triggers() -> None:
    # SQLite's batch mode rebuilds the table, which drops its triggers.
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_request_id"))
        batch_op.drop_column("request_id")
        batch_op.drop_column("reason")
    _recreate_sqlite_triggers()
    op.drop_index("ix_login_attempt_email_at", table_name="login_attempt")
    op.drop_index("ix_login_attempt_client_at", table_name="login_attempt")
    op.drop_table("login_attempt")

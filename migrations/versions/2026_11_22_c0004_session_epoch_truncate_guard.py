"""users get a session epoch (logout ends every session); TRUNCATE cannot empty the audit log

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0004"
down_revision: str | Sequence[str] | None = "c0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``user.session_epoch``; on PostgreSQL, refuse ``TRUNCATE audit_log``."""
    # A plain ALTER TABLE, not a batch: rebuilding ``user`` on SQLite would drop the table
    # under its foreign keys (cascading into roles and tokens, refused by the audit log).
    op.add_column("user", sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        # The row triggers of c0001 do not fire on TRUNCATE; a statement trigger does.
        # SQLite has no TRUNCATE (its DELETE without WHERE fires the row trigger).
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    """Drop what upgrade added."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    # SQLite 3.35+ drops a column in place (no table rebuild, see upgrade).
    op.drop_column("user", "session_epoch")

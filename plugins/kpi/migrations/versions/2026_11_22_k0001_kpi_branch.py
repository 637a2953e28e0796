"""start the kpi plugin's migration branch

Revision ID: k0001
Revises:
Create Date: 2026-11-22

"""

from collections.abc import Sequence

revision: str = "k0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("kpi",)
depends_on: str | Sequence[str] | None = "c0001"


def upgrade() -> None:
    """The branch starts empty; the plugin's tables arrive in later revisions."""


def downgrade() -> None:
    """Nothing to undo."""

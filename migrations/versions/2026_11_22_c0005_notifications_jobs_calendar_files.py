"""core services: notification outbox and in-app notifications, scheduled jobs, working
calendar, order attachments and issued documents; company letterhead; customer language

Revision ID: c0005
Revises: c0004
Create Date: 2026-11-22

"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

# revision identifiers, used by Alembic.
revision: str = "c0005"
down_revision: str | Sequence[str] | None = "c0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the services' tables; remember the permissions already granted."""
    known = op.create_table(
        "known_permission",
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("first_seen_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_known_permission")),
    )
    # Every permission that existed before this revision was granted by default already:
    # ``ordo db upgrade`` grants only codes that are new, so an administrator's earlier
    # removals are not undone. Those are the codes roles hold, plus every permission core
    # and the database's enabled plugins registered before (even if removed from all roles).
    bind = op.get_bind()
    codes = set(bind.execute(sa.text("SELECT DISTINCT code FROM role_permission")).scalars())
    if codes:  # an installation in use (a new database is granted everything at init)
        codes |= _registered_before(bind)
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(known, [{"code": code, "first_seen_at": now} for code in codes])
    op.create_table(
        "job_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("started_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_run")),
    )
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_run_job"), ["job"], unique=False)

    op.create_table(
        "job_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("schedule", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=False),
        sa.Column("lease_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_run_id"], ["job_run.id"], name=op.f("fk_job_state_last_run_id_job_run"), use_alter=True
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_state")),
    )
    op.create_table(
        "calendar_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], name=op.f("fk_calendar_day_company_id_company")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_day")),
        sa.UniqueConstraint("company_id", "day", name=op.f("uq_calendar_day_company_id_day")),
    )
    with op.batch_alter_table("calendar_day", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_day_company_id"), ["company_id"], unique=False)

    op.create_table(
        "issued_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issued_by_id"], ["user.id"], name=op.f("fk_issued_document_issued_by_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_issued_document_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_document")),
    )
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_document_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_issued_document_sha256"), ["sha256"], unique=False)

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_notification_customer_id_customer")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_notification_order_id_order")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_notification_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notification_dedupe_key")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_customer_unread", ["customer_id", "read_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notification_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_notification_user_unread", ["user_id", "read_at"], unique=False)

    op.create_table(
        "order_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("customer_visible", sa.Boolean(), nullable=False),
        sa.Column("removed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_order_attachment_order_id_order")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["user.id"], name=op.f("fk_order_attachment_uploaded_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_attachment")),
    )
    with op.batch_alter_table("order_attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_attachment_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_attachment_sha256"), ["sha256"], unique=False)

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("lease_until", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=300), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["customer_contact.id"], name=op.f("fk_outbox_message_contact_id_customer_contact")
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_outbox_message_customer_id_customer")),
        sa.ForeignKeyConstraint(
            ["document_id"], ["issued_document.id"], name=op.f("fk_outbox_message_document_id_issued_document")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_outbox_message_order_id_order")),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_outbox_message_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_message_dedupe_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_message_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_outbox_message_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_user_id"), ["user_id"], unique=False)

    # Plain ALTER TABLE, not a batch: rebuilding a table on SQLite would drop it under its
    # foreign keys (see c0004).
    op.add_column("company", sa.Column("weekend_days", sa.String(length=32), nullable=False, server_default="sat,sun"))
    op.add_column("company", sa.Column("address", sa.String(length=300), nullable=False, server_default=""))
    op.add_column("company", sa.Column("phone", sa.String(length=50), nullable=False, server_default=""))
    op.add_column("company", sa.Column("email", sa.String(length=254), nullable=False, server_default=""))
    op.add_column("company", sa.Column("tax_id", sa.String(length=64), nullable=False, server_default=""))
    op.add_column("company", sa.Column("logo_sha256", sa.String(length=64), nullable=False, server_default=""))
    op.add_column("company", sa.Column("logo_type", sa.String(length=32), nullable=False, server_default=""))
    op.add_column("customer", sa.Column("language", sa.String(length=8), nullable=False, server_default="zh_CN"))


#: Core's permissions before this revision (later ones are granted when first seen).
_CORE_PERMISSIONS_BEFORE = (
    "orders.read",
    "orders.create",
    "orders.edit",
    "orders.submit",
    "orders.confirm",
    "orders.complete",
    "orders.cancel",
    "orders.reject",
    "customers.read",
    "customers.manage",
    "products.read",
    "products.manage",
    "users.manage",
    "audit.read",
    "settings.manage",
)


def _registered_before(bind: sa.Connection) -> set[str]:
    """Core's earlier permissions and those of the plugins enabled in this database."""
    from core.plugins import PluginError, Registry

    codes = set(_CORE_PERMISSIONS_BEFORE)
    enabled = bind.execute(sa.text("SELECT name FROM plugin_state WHERE enabled")).scalars().all()
    try:
        registry = Registry(list(enabled))
    except PluginError:
        return codes  # a plugin that no longer loads: its codes are granted when it does
    return codes | {p.code for p in registry.permissions.values() if p.plugin != "core"}


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("known_permission")
    op.drop_column("customer", "language")
    op.drop_column("company", "logo_type")
    op.drop_column("company", "logo_sha256")
    op.drop_column("company", "tax_id")
    op.drop_column("company", "email")
    op.drop_column("company", "phone")
    op.drop_column("company", "address")
    op.drop_column("company", "weekend_days")

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_user_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_message_order_id"))
        batch_op.drop_index("ix_outbox_message_due")
        batch_op.drop_index(batch_op.f("ix_outbox_message_customer_id"))

    op.drop_table("outbox_message")
    with op.batch_alter_table("order_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_attachment_sha256"))
        batch_op.drop_index(batch_op.f("ix_order_attachment_order_id"))

    op.drop_table("order_attachment")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_user_unread")
        batch_op.drop_index(batch_op.f("ix_notification_order_id"))
        batch_op.drop_index("ix_notification_customer_unread")

    op.drop_table("notification")
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_document_sha256"))
        batch_op.drop_index(batch_op.f("ix_issued_document_order_id"))

    op.drop_table("issued_document")
    with op.batch_alter_table("calendar_day", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_day_company_id"))

    op.drop_table("calendar_day")
    op.drop_table("job_state")
    with op.batch_alter_table("job_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_run_job"))

    op.drop_table("job_run")

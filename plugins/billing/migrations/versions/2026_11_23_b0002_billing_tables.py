"""billing's tables: payment terms and instalments, customer accounts and rating reviews,
order terms, credit exceptions and their uses, invoices with lines and dues, payments,
write-offs, allocations, the dunning ladder, events and pauses, interest charges,
reasons for late invoicing, online-payment providers; default terms and dunning ladder

Revision ID: b0002
Revises: b0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "b0002"
down_revision: str | Sequence[str] | None = "b0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0006"

#: The payment terms a new installation starts with (BL-1): code, name, kind, prepayment %,
#: cut-off day, days after month end, due days, instalments (percent, due days).
TERMS = (
    ("PREPAY", "预付款 Prepayment 100%", "prepayment", 100, 31, 30, 0, ()),
    ("PREPAY30", "预付 30% Prepayment 30%", "prepayment", 30, 31, 30, 30, ()),
    ("COD", "货到付款 Cash on delivery", "cash_on_delivery", 0, 31, 30, 0, ()),
    ("MONTHLY30", "月结 30 天 Monthly, 30 days", "monthly_settlement", 0, 25, 30, 0, ()),
    ("INST3", "分期 3 期 Three instalments", "instalments", 0, 31, 30, 0, ((30, 0), (40, 30), (30, 60))),
)
#: The dunning ladder (BL-4): code, days from the due date, kind, letter, tell sales.
LADDER = (
    ("before_due", -3, "reminder", False, False),
    ("friendly", 7, "friendly", False, False),
    ("letter", 30, "letter", True, True),
    ("legal", 60, "legal", False, True),
)


def upgrade() -> None:
    """Create billing's tables and the default terms and dunning ladder."""
    op.create_table(
        "billing_dunning_level",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("letter", sa.Boolean(), nullable=False),
        sa.Column("notify_sales", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_dunning_level")),
        sa.UniqueConstraint("code", name=op.f("uq_billing_dunning_level_code")),
    )
    op.create_table(
        "billing_payment_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payment_provider")),
        sa.UniqueConstraint("code", name=op.f("uq_billing_payment_provider_code")),
    )
    op.create_table(
        "billing_payment_term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("prepayment_percent", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("cutoff_day", sa.Integer(), nullable=False),
        sa.Column("days_after_month_end", sa.Integer(), nullable=False),
        sa.Column("due_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payment_term")),
        sa.UniqueConstraint("code", name=op.f("uq_billing_payment_term_code")),
    )
    op.create_table(
        "billing_term_instalment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("due_days", sa.Integer(), nullable=False),
        sa.CheckConstraint("due_days >= 0", name=op.f("ck_billing_term_instalment_instalment_due_days")),
        sa.CheckConstraint(
            "percent > 0 AND percent <= 100", name=op.f("ck_billing_term_instalment_instalment_percent")
        ),
        sa.ForeignKeyConstraint(
            ["term_id"],
            ["billing_payment_term.id"],
            name=op.f("fk_billing_term_instalment_term_id_billing_payment_term"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_term_instalment")),
        sa.UniqueConstraint("term_id", "sequence", name=op.f("uq_billing_term_instalment_term_id_sequence")),
    )
    with op.batch_alter_table("billing_term_instalment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_term_instalment_term_id"), ["term_id"], unique=False)

    op.create_table(
        "billing_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("credit_limit", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("rating", sa.String(length=1), nullable=False),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("block_reason", sa.String(length=500), nullable=False),
        sa.Column("guarantee_on_file", sa.Boolean(), nullable=False),
        sa.Column("guarantee_note", sa.String(length=500), nullable=False),
        sa.Column("prepayment_ratio", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("invoice_type", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "credit_limit IS NULL OR credit_limit >= 0", name=op.f("ck_billing_account_account_credit_limit")
        ),
        sa.CheckConstraint(
            "prepayment_ratio >= 0 AND prepayment_ratio <= 100",
            name=op.f("ck_billing_account_account_prepayment_ratio"),
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_billing_account_customer_id_customer")),
        sa.ForeignKeyConstraint(
            ["term_id"], ["billing_payment_term.id"], name=op.f("fk_billing_account_term_id_billing_payment_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_account")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_billing_account_customer_id")),
    )
    with op.batch_alter_table("billing_account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_account_next_review_on"), ["next_review_on"], unique=False)

    op.create_table(
        "billing_rating_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("rating_from", sa.String(length=1), nullable=False),
        sa.Column("rating_to", sa.String(length=1), nullable=False),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["billing_account.id"], name=op.f("fk_billing_rating_review_account_id_billing_account")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"], ["user.id"], name=op.f("fk_billing_rating_review_reviewed_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_rating_review")),
    )
    with op.batch_alter_table("billing_rating_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_rating_review_account_id"), ["account_id"], unique=False)

    op.create_table(
        "billing_credit_exception",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("role_code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("hold_reasons", sa.JSON(), nullable=False),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_billing_credit_exception_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"], ["user.id"], name=op.f("fk_billing_credit_exception_granted_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_billing_credit_exception_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["user.id"], name=op.f("fk_billing_credit_exception_revoked_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_credit_exception")),
    )
    with op.batch_alter_table("billing_credit_exception", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_credit_exception_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_credit_exception_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index("ix_billing_credit_exception_order", ["order_id", "role_code"], unique=False)

    op.create_table(
        "billing_exception_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("hold_reasons", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"], name=op.f("fk_billing_exception_use_actor_id_user")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_billing_exception_use_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_billing_exception_use_order_id_order"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_exception_use")),
        sa.UniqueConstraint(
            "order_id", "path", "reference", name=op.f("uq_billing_exception_use_order_id_path_reference")
        ),
    )
    with op.batch_alter_table("billing_exception_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_exception_use_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_exception_use_order_id"), ["order_id"], unique=False)

    op.create_table(
        "billing_invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("invoice_type", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("credited_invoice_id", sa.Integer(), nullable=True),
        sa.Column("source_key", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("untaxed", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("settled", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("invoice_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("buyer_name", sa.String(length=200), nullable=False),
        sa.Column("buyer_tax_id", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'invoice' AND settled <= total) OR (kind = 'credit_note' AND settled <= -total)",
            name=op.f("ck_billing_invoice_invoice_settled_within_total"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR number IS NOT NULL", name=op.f("ck_billing_invoice_invoice_numbered_when_issued")
        ),
        sa.CheckConstraint("settled >= 0", name=op.f("ck_billing_invoice_invoice_settled_positive")),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], name=op.f("fk_billing_invoice_company_id_company")),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_billing_invoice_created_by_id_user")),
        sa.ForeignKeyConstraint(
            ["credited_invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_invoice_credited_invoice_id_billing_invoice"),
        ),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_billing_invoice_customer_id_customer")),
        sa.ForeignKeyConstraint(["issued_by_id"], ["user.id"], name=op.f("fk_billing_invoice_issued_by_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_billing_invoice_order_id_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice")),
        sa.UniqueConstraint("company_id", "kind", "number", name=op.f("uq_billing_invoice_company_id_kind_number")),
        sa.UniqueConstraint("source_key", name=op.f("uq_billing_invoice_source_key")),
    )
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_invoice_credited_invoice_id"), ["credited_invoice_id"], unique=False
        )
        batch_op.create_index("ix_billing_invoice_customer_status", ["customer_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_due_date"), ["due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_invoice_date"), ["invoice_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_status"), ["status"], unique=False)

    op.create_table(
        "billing_order_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("special", sa.Boolean(), nullable=False),
        sa.Column("prepayment_percent", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["user.id"], name=op.f("fk_billing_order_terms_approved_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_billing_order_terms_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["billing_payment_term.id"], name=op.f("fk_billing_order_terms_term_id_billing_payment_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_order_terms")),
        sa.UniqueConstraint("order_id", name=op.f("uq_billing_order_terms_order_id")),
    )
    op.create_table(
        "billing_uninvoiced_reason",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("shipment_reference", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_billing_uninvoiced_reason_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["user.id"], name=op.f("fk_billing_uninvoiced_reason_recorded_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_uninvoiced_reason")),
        sa.UniqueConstraint(
            "order_id", "shipment_reference", name=op.f("uq_billing_uninvoiced_reason_order_id_shipment_reference")
        ),
    )
    with op.batch_alter_table("billing_uninvoiced_reason", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_uninvoiced_reason_order_id"), ["order_id"], unique=False)

    op.create_table(
        "billing_dunning_pause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_billing_dunning_pause_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_billing_dunning_pause_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(["ended_by_id"], ["user.id"], name=op.f("fk_billing_dunning_pause_ended_by_id_user")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["billing_invoice.id"], name=op.f("fk_billing_dunning_pause_invoice_id_billing_invoice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_dunning_pause")),
    )
    with op.batch_alter_table("billing_dunning_pause", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_dunning_pause_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "billing_interest_charge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("daily_rate", sa.Numeric(precision=9, scale=6), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_billing_interest_charge_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_billing_interest_charge_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["billing_invoice.id"], name=op.f("fk_billing_interest_charge_invoice_id_billing_invoice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_interest_charge")),
        sa.UniqueConstraint("invoice_id", "period_end", name=op.f("uq_billing_interest_charge_invoice_id_period_end")),
    )
    with op.batch_alter_table("billing_interest_charge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_interest_charge_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_interest_charge_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "billing_invoice_due",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_invoice_due_invoice_id_billing_invoice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice_due")),
        sa.UniqueConstraint("invoice_id", "sequence", name=op.f("uq_billing_invoice_due_invoice_id_sequence")),
    )
    with op.batch_alter_table("billing_invoice_due", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoice_due_due_date"), ["due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_due_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "billing_invoice_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=16, scale=4), nullable=False),
        sa.Column("discount", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_invoice_line_invoice_id_billing_invoice"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_line.id"], name=op.f("fk_billing_invoice_line_order_line_id_order_line")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_billing_invoice_line_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice_line")),
    )
    with op.batch_alter_table("billing_invoice_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_invoice_line_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_invoice_line_order_line_id"), ["order_line_id"], unique=False)

    op.create_table(
        "billing_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.Numeric(precision=16, scale=6), nullable=False),
        sa.Column("amount_base", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("allocated", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("payer_name", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("proof_attachment_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "allocated >= 0 AND allocated <= amount_base", name=op.f("ck_billing_payment_payment_allocated_within")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_billing_payment_payment_amount_positive")),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], name=op.f("fk_billing_payment_company_id_company")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], name=op.f("fk_billing_payment_customer_id_customer")),
        sa.ForeignKeyConstraint(
            ["proof_attachment_id"],
            ["order_attachment.id"],
            name=op.f("fk_billing_payment_proof_attachment_id_order_attachment"),
        ),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["user.id"], name=op.f("fk_billing_payment_recorded_by_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_payment")),
        sa.UniqueConstraint("number", name=op.f("uq_billing_payment_number")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_billing_payment_provider_event_id")),
    )
    with op.batch_alter_table("billing_payment", schema=None) as batch_op:
        batch_op.create_index("ix_billing_payment_customer_received", ["customer_id", "received_on"], unique=False)

    op.create_table(
        "billing_write_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=1000), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_billing_write_off_write_off_amount_positive")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["user.id"], name=op.f("fk_billing_write_off_decided_by_id_user")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["billing_invoice.id"], name=op.f("fk_billing_write_off_invoice_id_billing_invoice")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_billing_write_off_order_id_order")),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"], name=op.f("fk_billing_write_off_requested_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_write_off")),
    )
    with op.batch_alter_table("billing_write_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_write_off_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_write_off_order_id"), ["order_id"], unique=False)

    op.create_table(
        "billing_allocation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("credit_note_id", sa.Integer(), nullable=True),
        sa.Column("write_off_id", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("allocated_by_id", sa.Integer(), nullable=True),
        sa.Column("allocated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(CASE WHEN payment_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN credit_note_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN write_off_id IS NULL THEN 0 ELSE 1 END) = 1",
            name=op.f("ck_billing_allocation_allocation_one_source"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_billing_allocation_allocation_amount_positive")),
        sa.ForeignKeyConstraint(
            ["allocated_by_id"], ["user.id"], name=op.f("fk_billing_allocation_allocated_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_allocation_credit_note_id_billing_invoice"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["billing_invoice.id"], name=op.f("fk_billing_allocation_invoice_id_billing_invoice")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["billing_payment.id"], name=op.f("fk_billing_allocation_payment_id_billing_payment")
        ),
        sa.ForeignKeyConstraint(
            ["write_off_id"],
            ["billing_write_off.id"],
            name=op.f("fk_billing_allocation_write_off_id_billing_write_off"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_allocation")),
    )
    with op.batch_alter_table("billing_allocation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_allocation_credit_note_id"), ["credit_note_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_allocation_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_allocation_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "billing_dunning_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_id", sa.Integer(), nullable=False),
        sa.Column("level_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("open_amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("letter_attachment_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"], name=op.f("fk_billing_dunning_event_actor_id_user")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_billing_dunning_event_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["due_id"],
            ["billing_invoice_due.id"],
            name=op.f("fk_billing_dunning_event_due_id_billing_invoice_due"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["billing_invoice.id"], name=op.f("fk_billing_dunning_event_invoice_id_billing_invoice")
        ),
        sa.ForeignKeyConstraint(
            ["letter_attachment_id"],
            ["order_attachment.id"],
            name=op.f("fk_billing_dunning_event_letter_attachment_id_order_attachment"),
        ),
        sa.ForeignKeyConstraint(
            ["level_id"],
            ["billing_dunning_level.id"],
            name=op.f("fk_billing_dunning_event_level_id_billing_dunning_level"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_dunning_event")),
        sa.UniqueConstraint("due_id", "level_id", name=op.f("uq_billing_dunning_event_due_id_level_id")),
    )
    with op.batch_alter_table("billing_dunning_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_billing_dunning_event_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_billing_dunning_event_invoice_id"), ["invoice_id"], unique=False)

    _seed()


def _seed() -> None:
    term = sa.table(
        "billing_payment_term",
        *(sa.column(c) for c in ("id", "code", "name", "kind", "prepayment_percent", "cutoff_day")),
        *(sa.column(c) for c in ("days_after_month_end", "due_days", "active", "created_at")),
    )
    now = core.db.utcnow()
    op.bulk_insert(
        term,
        [
            {
                "id": number,
                "code": code,
                "name": name,
                "kind": kind,
                "prepayment_percent": percent,
                "cutoff_day": cutoff,
                "days_after_month_end": after,
                "due_days": due,
                "active": True,
                "created_at": now,
            }
            for number, (code, name, kind, percent, cutoff, after, due, _parts) in enumerate(TERMS, start=1)
        ],
    )
    core.db.sync_id_sequences(op.get_bind(), "billing_payment_term")  # the ids above were explicit
    instalment = sa.table(
        "billing_term_instalment", *(sa.column(c) for c in ("term_id", "sequence", "percent", "due_days"))
    )
    op.bulk_insert(
        instalment,
        [
            {"term_id": number, "sequence": sequence, "percent": percent, "due_days": due}
            for number, (*_head, parts) in enumerate(TERMS, start=1)
            for sequence, (percent, due) in enumerate(parts, start=1)
        ],
    )
    level = sa.table(
        "billing_dunning_level", *(sa.column(c) for c in ("code", "days", "kind", "letter", "notify_sales", "active"))
    )
    op.bulk_insert(
        level,
        [
            {"code": code, "days": days, "kind": kind, "letter": letter, "notify_sales": sales, "active": True}
            for code, days, kind, letter, sales in LADDER
        ],
    )


def downgrade() -> None:
    """Drop billing's tables."""
    with op.batch_alter_table("billing_dunning_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_dunning_event_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billing_dunning_event_customer_id"))

    op.drop_table("billing_dunning_event")
    with op.batch_alter_table("billing_allocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_allocation_payment_id"))
        batch_op.drop_index(batch_op.f("ix_billing_allocation_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billing_allocation_credit_note_id"))

    op.drop_table("billing_allocation")
    with op.batch_alter_table("billing_write_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_write_off_order_id"))
        batch_op.drop_index(batch_op.f("ix_billing_write_off_invoice_id"))

    op.drop_table("billing_write_off")
    with op.batch_alter_table("billing_payment", schema=None) as batch_op:
        batch_op.drop_index("ix_billing_payment_customer_received")

    op.drop_table("billing_payment")
    with op.batch_alter_table("billing_invoice_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoice_line_order_line_id"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_line_invoice_id"))

    op.drop_table("billing_invoice_line")
    with op.batch_alter_table("billing_invoice_due", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoice_due_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_due_due_date"))

    op.drop_table("billing_invoice_due")
    with op.batch_alter_table("billing_interest_charge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_interest_charge_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_billing_interest_charge_customer_id"))

    op.drop_table("billing_interest_charge")
    with op.batch_alter_table("billing_dunning_pause", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_dunning_pause_customer_id"))

    op.drop_table("billing_dunning_pause")
    with op.batch_alter_table("billing_uninvoiced_reason", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_uninvoiced_reason_order_id"))

    op.drop_table("billing_uninvoiced_reason")
    op.drop_table("billing_order_terms")
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_invoice_status"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_order_id"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_invoice_date"))
        batch_op.drop_index(batch_op.f("ix_billing_invoice_due_date"))
        batch_op.drop_index("ix_billing_invoice_customer_status")
        batch_op.drop_index(batch_op.f("ix_billing_invoice_credited_invoice_id"))

    op.drop_table("billing_invoice")
    with op.batch_alter_table("billing_exception_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_exception_use_order_id"))
        batch_op.drop_index(batch_op.f("ix_billing_exception_use_at"))

    op.drop_table("billing_exception_use")
    with op.batch_alter_table("billing_credit_exception", schema=None) as batch_op:
        batch_op.drop_index("ix_billing_credit_exception_order")
        batch_op.drop_index(batch_op.f("ix_billing_credit_exception_expires_at"))
        batch_op.drop_index(batch_op.f("ix_billing_credit_exception_customer_id"))

    op.drop_table("billing_credit_exception")
    with op.batch_alter_table("billing_rating_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_rating_review_account_id"))

    op.drop_table("billing_rating_review")
    with op.batch_alter_table("billing_account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_account_next_review_on"))

    op.drop_table("billing_account")
    with op.batch_alter_table("billing_term_instalment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_billing_term_instalment_term_id"))

    op.drop_table("billing_term_instalment")
    op.drop_table("billing_payment_term")
    op.drop_table("billing_payment_provider")
    op.drop_table("billing_dunning_level")

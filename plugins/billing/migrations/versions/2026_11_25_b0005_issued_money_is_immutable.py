"""issued invoices and recorded payments refuse changes in the database itself (BL-3, BL-6)

The billing services already refuse to change an issued invoice (409, correct it with a
credit note) and offer no way to edit a payment. These triggers make the database refuse it
too, whatever the channel — a future code path, a script, raw SQL:

- an issued invoice or credit note keeps every column but ``settled`` (what payments,
  credits and write-offs have matched) and ``version``; it cannot be deleted;
- its lines and dues cannot be changed or deleted, nor lines added (dues are written as
  the invoice is issued, so adding dues stays possible);
- a payment keeps every column but ``allocated`` and its proof of payer
  (``proof_attachment_id``); it cannot be deleted.

On SQLite, a later migration that rebuilds one of these tables (``batch_alter_table`` with
recreate) drops its triggers and must create them again;
``tests/plugins/test_billing_integrity.py`` checks them at head.

Revision ID: b0005_immutable
Revises: b0004_open_invoices
Create Date: 2026-11-25

"""

from collections.abc import Sequence

from alembic import op

revision: str = "b0005_immutable"
down_revision: str | Sequence[str] | None = "b0004_open_invoices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INVOICE_FIXED = [
    "company_id",
    "kind",
    "number",
    "year",
    "status",
    "basis",
    "invoice_type",
    "customer_id",
    "order_id",
    "credited_invoice_id",
    "source_key",
    "currency",
    "untaxed",
    "tax",
    "total",
    "invoice_date",
    "due_date",
    "buyer_name",
    "buyer_tax_id",
    "note",
    "created_by_id",
    "created_at",
    "issued_by_id",
    "issued_at",
]
PAYMENT_FIXED = [
    "company_id",
    "number",
    "customer_id",
    "method",
    "amount",
    "currency",
    "rate",
    "amount_base",
    "received_on",
    "payer_name",
    "reference",
    "provider",
    "event_id",
    "note",
    "recorded_by_id",
    "created_at",
]

INVOICE_ISSUED = "the invoice is issued; issued invoices are immutable"
PAYMENT_RECORDED = "a recorded payment is immutable"


def _changed(columns: Sequence[str], differ: str) -> str:
    return " OR ".join(f"NEW.{c} {differ} OLD.{c}" for c in columns)


def _guards(differ: str) -> list[tuple[str, str, str, str, str]]:
    """(trigger name, table, event, condition on OLD/NEW, message) of each guard."""
    issued = "(SELECT status FROM billing_invoice WHERE id = {row}.invoice_id) <> 'draft'"
    return [
        ("billing_invoice_fixed", "billing_invoice", "UPDATE",
         f"OLD.status <> 'draft' AND ({_changed(INVOICE_FIXED, differ)})", INVOICE_ISSUED),
        ("billing_invoice_kept", "billing_invoice", "DELETE", "OLD.status <> 'draft'", INVOICE_ISSUED),
        ("billing_invoice_line_add", "billing_invoice_line", "INSERT", issued.format(row="NEW"), INVOICE_ISSUED),
        ("billing_invoice_line_fixed", "billing_invoice_line", "UPDATE", issued.format(row="OLD"), INVOICE_ISSUED),
        ("billing_invoice_line_kept", "billing_invoice_line", "DELETE", issued.format(row="OLD"), INVOICE_ISSUED),
        ("billing_invoice_due_fixed", "billing_invoice_due", "UPDATE", issued.format(row="OLD"), INVOICE_ISSUED),
        ("billing_invoice_due_kept", "billing_invoice_due", "DELETE", issued.format(row="OLD"), INVOICE_ISSUED),
        ("billing_payment_fixed", "billing_payment", "UPDATE", _changed(PAYMENT_FIXED, differ), PAYMENT_RECORDED),
        ("billing_payment_kept", "billing_payment", "DELETE", "1 = 1", PAYMENT_RECORDED),
    ]  # fmt: skip


def upgrade() -> None:
    """Create the guards: SQLite ``RAISE(ABORT)`` triggers, PostgreSQL plpgsql row triggers."""
    if op.get_bind().dialect.name == "sqlite":
        for name, table, event, condition, message in _guards("IS NOT"):
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {condition} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return
    for name, table, event, condition, message in _guards("IS DISTINCT FROM"):
        row = "OLD" if event == "DELETE" else "NEW"
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF {condition} THEN RAISE EXCEPTION '{message}'; END IF; RETURN {row}; END $$"
        )
        op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    """Drop the guards."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, table, _event, _condition, _message in _guards("IS NOT"):
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")

"""logistics' tables: warehouses, locations, stock, moves, reservations, counts, carriers,
services, transit times, rates, pick lists, shipments, packages, tracking events,
exceptions, objections, acceptance reports, returns and dispositions

Revision ID: l0002
Revises: l0001
Create Date: 2026-11-23

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "l0002"
down_revision: str | Sequence[str] | None = "l0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "c0006"


def upgrade() -> None:
    """Create logistics' tables."""
    op.create_table(
        "logistics_carrier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("liability", sa.String(length=1000), nullable=False),
        sa.Column("insurance_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("insurance_minimum", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("webhook_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_carrier")),
        sa.UniqueConstraint("code", name=op.f("uq_logistics_carrier_code")),
    )
    op.create_table(
        "logistics_product",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("unit_weight", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("unit_volume", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("reorder_level", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], name=op.f("fk_logistics_product_product_id_product")),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_logistics_product")),
    )
    op.create_table(
        "logistics_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("volumetric_divisor", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["logistics_carrier.id"], name=op.f("fk_logistics_service_carrier_id_logistics_carrier")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_service")),
        sa.UniqueConstraint("carrier_id", "code", name=op.f("uq_logistics_service_carrier_id_code")),
    )
    with op.batch_alter_table("logistics_service", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_service_carrier_id"), ["carrier_id"], unique=False)

    op.create_table(
        "logistics_rate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("to_province", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("first_unit", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("first_price", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("additional_unit", sa.Numeric(precision=14, scale=6), nullable=False),
        sa.Column("additional_price", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("minimum_charge", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["logistics_service.id"], name=op.f("fk_logistics_rate_service_id_logistics_service")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_rate")),
        sa.UniqueConstraint(
            "service_id", "to_province", "basis", name=op.f("uq_logistics_rate_service_id_to_province_basis")
        ),
    )
    with op.batch_alter_table("logistics_rate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_rate_service_id"), ["service_id"], unique=False)

    op.create_table(
        "logistics_transit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("from_province", sa.String(length=64), nullable=False),
        sa.Column("to_province", sa.String(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["logistics_service.id"], name=op.f("fk_logistics_transit_service_id_logistics_service")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_transit")),
        sa.UniqueConstraint(
            "service_id",
            "from_province",
            "to_province",
            name=op.f("uq_logistics_transit_service_id_from_province_to_province"),
        ),
    )
    with op.batch_alter_table("logistics_transit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_transit_service_id"), ["service_id"], unique=False)

    op.create_table(
        "logistics_warehouse",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("province", sa.String(length=64), nullable=False),
        sa.Column("city", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("contact", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"], name=op.f("fk_logistics_warehouse_branch_id_branch")),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], name=op.f("fk_logistics_warehouse_company_id_company")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_warehouse")),
        sa.UniqueConstraint("code", name=op.f("uq_logistics_warehouse_code")),
    )
    with op.batch_alter_table("logistics_warehouse", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_warehouse_branch_id"), ["branch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_warehouse_company_id"), ["company_id"], unique=False)

    op.create_table(
        "logistics_location",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_location_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_location")),
        sa.UniqueConstraint("warehouse_id", "code", name=op.f("uq_logistics_location_warehouse_id_code")),
    )
    with op.batch_alter_table("logistics_location", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_location_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("posted_by_id", sa.Integer(), nullable=True),
        sa.Column("posted_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_logistics_count_created_by_id_user")),
        sa.ForeignKeyConstraint(["posted_by_id"], ["user.id"], name=op.f("fk_logistics_count_posted_by_id_user")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_count_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_count")),
        sa.UniqueConstraint("number", name=op.f("uq_logistics_count_number")),
    )
    with op.batch_alter_table("logistics_count", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_count_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_count_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_pick_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("estimated_minutes", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"], ["user.id"], name=op.f("fk_logistics_pick_list_confirmed_by_id_user")
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_logistics_pick_list_created_by_id_user")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_pick_list_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_pick_list")),
        sa.UniqueConstraint("number", name=op.f("uq_logistics_pick_list_number")),
    )
    with op.batch_alter_table("logistics_pick_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_pick_list_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_pick_list_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_stock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("on_hand", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("reserved", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.CheckConstraint("on_hand - reserved > -0.0005", name=op.f("ck_logistics_stock_reserved_within_on_hand")),
        sa.CheckConstraint("on_hand > -0.0005", name=op.f("ck_logistics_stock_on_hand_not_negative")),
        sa.CheckConstraint("reserved > -0.0005", name=op.f("ck_logistics_stock_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["logistics_location.id"], name=op.f("fk_logistics_stock_location_id_logistics_location")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], name=op.f("fk_logistics_stock_product_id_product")),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_stock_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_stock")),
        sa.UniqueConstraint("product_id", "location_id", name=op.f("uq_logistics_stock_product_id_location_id")),
    )
    with op.batch_alter_table("logistics_stock", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_stock_location_id"), ["location_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_stock_product_id"), ["product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_stock_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_count_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("count_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("expected", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("counted", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["count_id"], ["logistics_count.id"], name=op.f("fk_logistics_count_line_count_id_logistics_count")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["logistics_location.id"],
            name=op.f("fk_logistics_count_line_location_id_logistics_location"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_logistics_count_line_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_count_line")),
        sa.UniqueConstraint(
            "count_id",
            "product_id",
            "location_id",
            name=op.f("uq_logistics_count_line_count_id_product_id_location_id"),
        ),
    )
    with op.batch_alter_table("logistics_count_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_count_line_count_id"), ["count_id"], unique=False)

    op.create_table(
        "logistics_order",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=True),
        sa.Column("remote", sa.Boolean(), nullable=False),
        sa.Column("allow_partial", sa.Boolean(), nullable=False),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("ready_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ageing_level", sa.Integer(), nullable=False),
        sa.Column("checked_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_by_id", sa.Integer(), nullable=True),
        sa.Column("backorder_closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["checked_by_id"], ["user.id"], name=op.f("fk_logistics_order_checked_by_id_user")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["order.id"], name=op.f("fk_logistics_order_order_id_order"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_order_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_logistics_order")),
    )
    with op.batch_alter_table("logistics_order", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_order_ready_at"), ["ready_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_order_remote"), ["remote"], unique=False)

    op.create_table(
        "logistics_acceptance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("attachment_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["order_attachment.id"],
            name=op.f("fk_logistics_acceptance_attachment_id_order_attachment"),
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_acceptance_order_id_order")),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["user.id"], name=op.f("fk_logistics_acceptance_recorded_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_acceptance")),
        sa.UniqueConstraint("order_id", "round", name=op.f("uq_logistics_acceptance_order_id_round")),
    )
    with op.batch_alter_table("logistics_acceptance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_acceptance_order_id"), ["order_id"], unique=False)

    op.create_table(
        "logistics_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("stock_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > -0.0005", name=op.f("ck_logistics_reservation_reservation_not_negative")),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["logistics_location.id"],
            name=op.f("fk_logistics_reservation_location_id_logistics_location"),
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_reservation_order_id_order")),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_line.id"], name=op.f("fk_logistics_reservation_order_line_id_order_line")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_logistics_reservation_product_id_product")
        ),
        sa.ForeignKeyConstraint(
            ["stock_id"], ["logistics_stock.id"], name=op.f("fk_logistics_reservation_stock_id_logistics_stock")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_reservation")),
        sa.UniqueConstraint("order_line_id", "stock_id", name=op.f("uq_logistics_reservation_order_line_id_stock_id")),
    )
    with op.batch_alter_table("logistics_reservation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_reservation_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_reservation_order_line_id"), ["order_line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_reservation_product_id"), ["product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_reservation_stock_id"), ["stock_id"], unique=False)

    op.create_table(
        "logistics_shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pick_list_id", sa.Integer(), nullable=True),
        sa.Column("remote", sa.Boolean(), nullable=False),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("suggested_service_id", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.String(length=500), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("freight", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("insured", sa.Boolean(), nullable=False),
        sa.Column("insured_value", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("insurance_fee", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("goods_value", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("packed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("shipped_by_id", sa.Integer(), nullable=True),
        sa.Column("shipped_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pod_signer", sa.String(length=100), nullable=False),
        sa.Column("pod_signed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pod_attachment_id", sa.Integer(), nullable=True),
        sa.Column("receipt_status", sa.String(length=16), nullable=False),
        sa.Column("receipt_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("receipt_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["logistics_carrier.id"], name=op.f("fk_logistics_shipment_carrier_id_logistics_carrier")
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"], name=op.f("fk_logistics_shipment_created_by_id_user")),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_shipment_order_id_order")),
        sa.ForeignKeyConstraint(
            ["pick_list_id"],
            ["logistics_pick_list.id"],
            name=op.f("fk_logistics_shipment_pick_list_id_logistics_pick_list"),
        ),
        sa.ForeignKeyConstraint(
            ["pod_attachment_id"],
            ["order_attachment.id"],
            name=op.f("fk_logistics_shipment_pod_attachment_id_order_attachment"),
        ),
        sa.ForeignKeyConstraint(["receipt_by_id"], ["user.id"], name=op.f("fk_logistics_shipment_receipt_by_id_user")),
        sa.ForeignKeyConstraint(
            ["service_id"], ["logistics_service.id"], name=op.f("fk_logistics_shipment_service_id_logistics_service")
        ),
        sa.ForeignKeyConstraint(["shipped_by_id"], ["user.id"], name=op.f("fk_logistics_shipment_shipped_by_id_user")),
        sa.ForeignKeyConstraint(
            ["suggested_service_id"],
            ["logistics_service.id"],
            name=op.f("fk_logistics_shipment_suggested_service_id_logistics_service"),
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_shipment_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_shipment")),
        sa.UniqueConstraint("number", name=op.f("uq_logistics_shipment_number")),
    )
    with op.batch_alter_table("logistics_shipment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_shipment_carrier_id"), ["carrier_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_pick_list_id"), ["pick_list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_shipped_at"), ["shipped_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_status"), ["status"], unique=False)
        batch_op.create_index("ix_logistics_shipment_tracking", ["carrier_id", "tracking_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_exception",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("resolution", sa.String(length=1000), nullable=False),
        sa.Column("reported_by_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_exception_order_id_order")),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], name=op.f("fk_logistics_exception_owner_id_user")),
        sa.ForeignKeyConstraint(
            ["reported_by_id"], ["user.id"], name=op.f("fk_logistics_exception_reported_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["user.id"], name=op.f("fk_logistics_exception_resolved_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["logistics_shipment.id"],
            name=op.f("fk_logistics_exception_shipment_id_logistics_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_exception")),
    )
    with op.batch_alter_table("logistics_exception", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_exception_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_exception_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_exception_shipment_id"), ["shipment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_exception_status"), ["status"], unique=False)

    op.create_table(
        "logistics_objection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=False),
        sa.Column("replacement_shipment_id", sa.Integer(), nullable=True),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("raised_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_objection_order_id_order")),
        sa.ForeignKeyConstraint(["raised_by_id"], ["user.id"], name=op.f("fk_logistics_objection_raised_by_id_user")),
        sa.ForeignKeyConstraint(
            ["replacement_shipment_id"],
            ["logistics_shipment.id"],
            name=op.f("fk_logistics_objection_replacement_shipment_id_logistics_shipment"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["user.id"], name=op.f("fk_logistics_objection_resolved_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["logistics_shipment.id"],
            name=op.f("fk_logistics_objection_shipment_id_logistics_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_objection")),
    )
    with op.batch_alter_table("logistics_objection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_objection_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_objection_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "logistics_package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("length", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("width", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("height", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "length > 0 AND width > 0 AND height > 0", name=op.f("ck_logistics_package_package_dimensions_positive")
        ),
        sa.CheckConstraint("weight > 0", name=op.f("ck_logistics_package_package_weight_positive")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["logistics_shipment.id"], name=op.f("fk_logistics_package_shipment_id_logistics_shipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_package")),
    )
    with op.batch_alter_table("logistics_package", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_package_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "logistics_shipment_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("picked_quantity", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["logistics_location.id"],
            name=op.f("fk_logistics_shipment_line_location_id_logistics_location"),
        ),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_line.id"], name=op.f("fk_logistics_shipment_line_order_line_id_order_line")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_logistics_shipment_line_product_id_product")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["logistics_shipment.id"],
            name=op.f("fk_logistics_shipment_line_shipment_id_logistics_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_shipment_line")),
    )
    with op.batch_alter_table("logistics_shipment_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_shipment_line_order_line_id"), ["order_line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_shipment_line_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "logistics_tracking_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["user.id"], name=op.f("fk_logistics_tracking_event_recorded_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"],
            ["logistics_shipment.id"],
            name=op.f("fk_logistics_tracking_event_shipment_id_logistics_shipment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_tracking_event")),
        sa.UniqueConstraint(
            "shipment_id", "external_id", name=op.f("uq_logistics_tracking_event_shipment_id_external_id")
        ),
    )
    with op.batch_alter_table("logistics_tracking_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_tracking_event_shipment_id"), ["shipment_id"], unique=False)

    op.create_table(
        "logistics_return",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("objection_id", sa.Integer(), nullable=True),
        sa.Column("exception_reason", sa.String(length=1000), nullable=False),
        sa.Column("stamped_attachment_id", sa.Integer(), nullable=True),
        sa.Column("freight_paid_by", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=1000), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=1000), nullable=False),
        sa.Column("received_by_id", sa.Integer(), nullable=True),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["approved_by_id"], ["user.id"], name=op.f("fk_logistics_return_approved_by_id_user")),
        sa.ForeignKeyConstraint(
            ["objection_id"],
            ["logistics_objection.id"],
            name=op.f("fk_logistics_return_objection_id_logistics_objection"),
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_return_order_id_order")),
        sa.ForeignKeyConstraint(["received_by_id"], ["user.id"], name=op.f("fk_logistics_return_received_by_id_user")),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"], name=op.f("fk_logistics_return_requested_by_id_user")
        ),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["user.id"], name=op.f("fk_logistics_return_reviewed_by_id_user")),
        sa.ForeignKeyConstraint(
            ["stamped_attachment_id"],
            ["order_attachment.id"],
            name=op.f("fk_logistics_return_stamped_attachment_id_order_attachment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_return")),
        sa.UniqueConstraint("number", name=op.f("uq_logistics_return_number")),
    )
    with op.batch_alter_table("logistics_return", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_return_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_return_status"), ["status"], unique=False)

    op.create_table(
        "logistics_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_line_id", sa.Integer(), nullable=True),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.Column("count_id", sa.Integer(), nullable=True),
        sa.Column("return_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"], name=op.f("fk_logistics_move_actor_id_user")),
        sa.ForeignKeyConstraint(
            ["count_id"], ["logistics_count.id"], name=op.f("fk_logistics_move_count_id_logistics_count")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["logistics_location.id"], name=op.f("fk_logistics_move_location_id_logistics_location")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["order.id"], name=op.f("fk_logistics_move_order_id_order")),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_line.id"], name=op.f("fk_logistics_move_order_line_id_order_line")
        ),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], name=op.f("fk_logistics_move_product_id_product")),
        sa.ForeignKeyConstraint(
            ["return_id"], ["logistics_return.id"], name=op.f("fk_logistics_move_return_id_logistics_return")
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["logistics_shipment.id"], name=op.f("fk_logistics_move_shipment_id_logistics_shipment")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["logistics_warehouse.id"],
            name=op.f("fk_logistics_move_warehouse_id_logistics_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_move")),
    )
    with op.batch_alter_table("logistics_move", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_move_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_count_id"), ["count_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_location_id"), ["location_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_logistics_move_product_at", ["product_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_return_id"), ["return_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_shipment_id"), ["shipment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_move_warehouse_id"), ["warehouse_id"], unique=False)

    op.create_table(
        "logistics_return_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("order_line_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("reason_detail", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("approved_quantity", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.Column("received_quantity", sa.Numeric(precision=16, scale=3), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_logistics_return_line_return_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_line.id"], name=op.f("fk_logistics_return_line_order_line_id_order_line")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_logistics_return_line_product_id_product")
        ),
        sa.ForeignKeyConstraint(
            ["return_id"], ["logistics_return.id"], name=op.f("fk_logistics_return_line_return_id_logistics_return")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_return_line")),
        sa.UniqueConstraint(
            "return_id", "order_line_id", name=op.f("uq_logistics_return_line_return_id_order_line_id")
        ),
    )
    with op.batch_alter_table("logistics_return_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_return_line_order_line_id"), ["order_line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_logistics_return_line_return_id"), ["return_id"], unique=False)

    op.create_table(
        "logistics_disposition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_line_id", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=16, scale=3), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("inspected_by_id", sa.Integer(), nullable=True),
        sa.Column("inspected_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_logistics_disposition_disposition_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["inspected_by_id"], ["user.id"], name=op.f("fk_logistics_disposition_inspected_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["logistics_location.id"],
            name=op.f("fk_logistics_disposition_location_id_logistics_location"),
        ),
        sa.ForeignKeyConstraint(
            ["return_line_id"],
            ["logistics_return_line.id"],
            name=op.f("fk_logistics_disposition_return_line_id_logistics_return_line"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logistics_disposition")),
    )
    with op.batch_alter_table("logistics_disposition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_logistics_disposition_return_line_id"), ["return_line_id"], unique=False)


def downgrade() -> None:
    """Drop logistics' tables."""
    with op.batch_alter_table("logistics_disposition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_disposition_return_line_id"))

    op.drop_table("logistics_disposition")
    with op.batch_alter_table("logistics_return_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_return_line_return_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_return_line_order_line_id"))

    op.drop_table("logistics_return_line")
    with op.batch_alter_table("logistics_move", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_move_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_return_id"))
        batch_op.drop_index("ix_logistics_move_product_at")
        batch_op.drop_index(batch_op.f("ix_logistics_move_order_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_location_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_kind"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_count_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_move_at"))

    op.drop_table("logistics_move")
    with op.batch_alter_table("logistics_return", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_return_status"))
        batch_op.drop_index(batch_op.f("ix_logistics_return_order_id"))

    op.drop_table("logistics_return")
    with op.batch_alter_table("logistics_tracking_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_tracking_event_shipment_id"))

    op.drop_table("logistics_tracking_event")
    with op.batch_alter_table("logistics_shipment_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_line_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_line_order_line_id"))

    op.drop_table("logistics_shipment_line")
    with op.batch_alter_table("logistics_package", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_package_shipment_id"))

    op.drop_table("logistics_package")
    with op.batch_alter_table("logistics_objection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_objection_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_objection_order_id"))

    op.drop_table("logistics_objection")
    with op.batch_alter_table("logistics_exception", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_exception_status"))
        batch_op.drop_index(batch_op.f("ix_logistics_exception_shipment_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_exception_owner_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_exception_order_id"))

    op.drop_table("logistics_exception")
    with op.batch_alter_table("logistics_shipment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_warehouse_id"))
        batch_op.drop_index("ix_logistics_shipment_tracking")
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_status"))
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_shipped_at"))
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_pick_list_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_order_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_shipment_carrier_id"))

    op.drop_table("logistics_shipment")
    with op.batch_alter_table("logistics_reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_reservation_stock_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_reservation_product_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_reservation_order_line_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_reservation_order_id"))

    op.drop_table("logistics_reservation")
    with op.batch_alter_table("logistics_acceptance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_acceptance_order_id"))

    op.drop_table("logistics_acceptance")
    with op.batch_alter_table("logistics_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_order_remote"))
        batch_op.drop_index(batch_op.f("ix_logistics_order_ready_at"))

    op.drop_table("logistics_order")
    with op.batch_alter_table("logistics_count_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_count_line_count_id"))

    op.drop_table("logistics_count_line")
    with op.batch_alter_table("logistics_stock", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_stock_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_stock_product_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_stock_location_id"))

    op.drop_table("logistics_stock")
    with op.batch_alter_table("logistics_pick_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_pick_list_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_pick_list_status"))

    op.drop_table("logistics_pick_list")
    with op.batch_alter_table("logistics_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_count_warehouse_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_count_status"))

    op.drop_table("logistics_count")
    with op.batch_alter_table("logistics_location", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_location_warehouse_id"))

    op.drop_table("logistics_location")
    with op.batch_alter_table("logistics_warehouse", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_warehouse_company_id"))
        batch_op.drop_index(batch_op.f("ix_logistics_warehouse_branch_id"))

    op.drop_table("logistics_warehouse")
    with op.batch_alter_table("logistics_transit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_transit_service_id"))

    op.drop_table("logistics_transit")
    with op.batch_alter_table("logistics_rate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_rate_service_id"))

    op.drop_table("logistics_rate")
    with op.batch_alter_table("logistics_service", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logistics_service_carrier_id"))

    op.drop_table("logistics_service")
    op.drop_table("logistics_product")
    op.drop_table("logistics_carrier")

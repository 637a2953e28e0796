"""Logistics' tables, keyed to core's orders, order lines, products, users and branches.

- Stock (LG-2): warehouses and their locations, the stock of each product at each
  location (``on_hand`` and ``reserved``, never negative, reserved never above on hand),
  the stock moves that are the only way ``on_hand`` changes, the reservations of order
  lines, and stock counts (盘点) with their count lines.
- Per-order logistics facts: remote or local, partial shipments allowed, the promised
  date, when the goods were ready (for ageing, LG-10).
- Carriers (LG-3): service levels, transit days province to province, rate tables by
  weight and volume, insurance rate, the per-carrier webhook secret (stored hashed).
- Shipments (LG-4 … LG-7): pick lists (拣货单), shipment lines with picked quantities,
  packages, tracking events, exceptions with their follow-up, proof of delivery, the
  customer's receipt confirmation or objection, acceptance reports (LG-8).
- Returns (退换货, LG-9): requests per delivered line, review and approval, receipt and
  QC disposition per unit.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, Money, Percent, Quantity, utcnow
from core.labels import N_

#: Kilograms and cubic metres carry three and six decimals.
Weight = Numeric(12, 3, asdecimal=True)
Volume = Numeric(14, 6, asdecimal=True)

#: Why stock moved; the sign of :attr:`LogisticsMove.quantity` says in or out.
MOVE_KINDS = {
    "receipt": N_("Receipt"),
    "adjustment": N_("Adjustment"),
    "count": N_("Count difference"),
    "shipment": N_("Shipment"),
    "return": N_("Return"),
    "rework": N_("Rework"),
    "downgrade": N_("Downgrade"),
    "scrap": N_("Scrap"),
    "transfer": N_("Transfer"),
}
COUNT_STATUSES = {"counting": N_("Counting"), "posted": N_("Posted"), "cancelled": N_("Cancelled")}
SHIPMENT_STATUSES = {
    "planned": N_("Planned"),
    "picking": N_("Picking"),
    "picked": N_("Picked"),
    "packed": N_("Packed"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
}
#: Why a shipment was made: the order's goods, or a replacement after an objection.
SHIPMENT_KINDS = {"normal": N_("Normal"), "replacement": N_("Replacement")}
#: The customer's answer on a delivered shipment (LG-7).
RECEIPT_STATUSES = {"pending": N_("Waiting for the customer"), "confirmed": N_("Received"), "objected": N_("Objected")}
OBJECTION_KINDS = {"damaged": N_("Damaged"), "short": N_("Short"), "wrong_item": N_("Wrong item")}
OBJECTION_RESOLUTIONS = {"replacement": N_("Replacement shipment"), "return": N_("Return")}
#: A rate row charges by actual/volumetric weight or by volume.
RATE_BASES = {"weight": N_("By weight"), "volume": N_("By volume")}
TRACKING_CODES = {
    "booked": N_("Booked"),
    "picked_up": N_("Picked up"),
    "in_transit": N_("In transit"),
    "out_for_delivery": N_("Out for delivery"),
    "delivered": N_("Delivered"),
    "exception": N_("Exception"),
}
TRACKING_SOURCES = {"manual": N_("Entered"), "webhook": N_("Carrier webhook"), "connector": N_("Carrier connector")}
EXCEPTION_KINDS = {"delay": N_("Delay"), "damage": N_("Damage"), "loss": N_("Loss")}
EXCEPTION_STATUSES = {"open": N_("Open"), "resolved": N_("Resolved")}
ACCEPTANCE_RESULTS = {"accepted": N_("Accepted"), "rework": N_("Rework needed")}
RETURN_STATUSES = {
    "requested": N_("Requested"),
    "reviewed": N_("Reviewed by the regional manager"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "received": N_("Goods received"),
    "closed": N_("Inspected and closed"),
}
#: Return reasons; the quality ones are accepted normally, others need an exception (LG-9).
RETURN_REASONS = {
    "quality": N_("Quality problem"),
    "damaged": N_("Damaged in transit"),
    "wrong_item": N_("Wrong item delivered"),
    "not_needed": N_("No longer needed"),
    "ordered_wrong": N_("Customer ordered the wrong item"),
    "other": N_("Other"),
}
QUALITY_REASONS = ("quality", "damaged", "wrong_item")
DISPOSITIONS = {
    "restock": N_("Restock"),
    "rework": N_("Rework"),
    "downgrade": N_("Downgrade"),
    "scrap": N_("Scrap"),
}
FREIGHT_PARTIES = {"company": N_("Our company"), "customer": N_("Customer"), "carrier": N_("Carrier")}


class LogisticsWarehouse(Base):
    """A warehouse (仓库): where stock lies and shipments leave from (ship-from address)."""

    __tablename__ = "logistics_warehouse"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    province: Mapped[str] = mapped_column(String(64), default="")
    city: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    contact: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    #: Orders reserve from the default warehouse unless another is chosen.
    is_default: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    locations: Mapped[list[LogisticsLocation]] = relationship(
        back_populates="warehouse", order_by="LogisticsLocation.sequence"
    )


class LogisticsLocation(Base):
    """A location (库位) in a warehouse; ``sequence`` is the walking order pickers follow."""

    __tablename__ = "logistics_location"
    __table_args__ = (UniqueConstraint("warehouse_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100), default="")
    sequence: Mapped[int] = mapped_column(default=0)
    #: Goods here are not sellable (QC, downgraded, rework): never reserved for orders.
    blocked: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)

    warehouse: Mapped[LogisticsWarehouse] = relationship(back_populates="locations")


class LogisticsProduct(Base):
    """Logistics facts of a core product: unit weight and volume, replenishment level."""

    __tablename__ = "logistics_product"

    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    #: Gross weight of one unit in kilograms.
    unit_weight: Mapped[Decimal] = mapped_column(Weight, default=Decimal("0"))
    #: Volume of one unit in cubic metres.
    unit_volume: Mapped[Decimal] = mapped_column(Volume, default=Decimal("0"))
    #: Stock below this (free stock minus backorders) appears on the replenishment list.
    reorder_level: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))


class LogisticsStock(Base):
    """The stock of one product at one location: on hand, and how much of it is reserved.

    Changed only by :mod:`plugins.logistics.stock` (moves and reservations), with
    conditional updates so concurrent transactions never take the same units twice.
    """

    __tablename__ = "logistics_stock"
    __table_args__ = (
        UniqueConstraint("product_id", "location_id"),
        CheckConstraint("on_hand > -0.0005", name="on_hand_not_negative"),
        CheckConstraint("reserved > -0.0005", name="reserved_not_negative"),
        CheckConstraint("on_hand - reserved > -0.0005", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("logistics_location.id"), index=True)
    on_hand: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))
    reserved: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))


class LogisticsMove(Base):
    """One stock move (库存流水): the ledger whose sum per location is the stock on hand."""

    __tablename__ = "logistics_move"
    __table_args__ = (Index("ix_logistics_move_product_at", "product_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("logistics_location.id"), index=True)
    #: Positive in, negative out.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"))
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    count_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_count.id"), index=True)
    return_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_return.id"), index=True)
    reference: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class LogisticsReservation(Base):
    """Units of one stock row held for one order line until shipped or released."""

    __tablename__ = "logistics_reservation"
    __table_args__ = (
        UniqueConstraint("order_line_id", "stock_id"),
        CheckConstraint("quantity > -0.0005", name="reservation_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    stock_id: Mapped[int] = mapped_column(ForeignKey("logistics_stock.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("logistics_location.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LogisticsOrder(Base):
    """Logistics' facts about one order (created when the order is confirmed)."""

    __tablename__ = "logistics_order"

    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), primary_key=True)
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_warehouse.id"))
    #: Ship-to outside the company's home region (LG-1), decided at confirmation.
    remote: Mapped[bool] = mapped_column(default=False, index=True)
    #: Whether the order may ship in parts (else it waits until every line is reserved).
    allow_partial: Mapped[bool] = mapped_column(default=True)
    #: The date the customer was promised (the requested date unless changed).
    promised_date: Mapped[dt.date | None]
    #: When the order's goods were first ready to ship (fully reserved and checked), for ageing.
    ready_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    #: How far the ageing job has escalated (0 none, 1 sales, 2 sales manager, 3 general manager).
    ageing_level: Mapped[int] = mapped_column(default=0)
    #: When the outbound check (出库审核) passed, and who passed it.
    checked_at: Mapped[dt.datetime | None]
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: When sales closed the backorder (ship no more); its reason is in the order's history.
    backorder_closed_at: Mapped[dt.datetime | None]


class LogisticsCount(Base):
    """A stock count (盘点) of one warehouse: a count sheet, then posted differences."""

    __tablename__ = "logistics_count"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="counting", index=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    posted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    posted_at: Mapped[dt.datetime | None]

    warehouse: Mapped[LogisticsWarehouse] = relationship()
    lines: Mapped[list[LogisticsCountLine]] = relationship(
        back_populates="count", order_by="LogisticsCountLine.id", cascade="all, delete-orphan"
    )


class LogisticsCountLine(Base):
    """One product at one location on a count sheet: expected (snapshot) and counted."""

    __tablename__ = "logistics_count_line"
    __table_args__ = (UniqueConstraint("count_id", "product_id", "location_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("logistics_count.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("logistics_location.id"))
    expected: Mapped[Decimal] = mapped_column(Quantity)
    counted: Mapped[Decimal | None] = mapped_column(Quantity)

    count: Mapped[LogisticsCount] = relationship(back_populates="lines")


class LogisticsCarrier(Base):
    """A carrier (承运商) with its contract terms, insurance rate and webhook secret."""

    __tablename__ = "logistics_carrier"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The contract's liability terms (LG-3): what the carrier pays for damage and loss.
    liability: Mapped[str] = mapped_column(String(1000), default="")
    #: Cargo insurance premium as a percentage of the insured value, and its minimum.
    insurance_rate: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    insurance_minimum: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    #: The connector an integrator registered for this carrier (``ordo_logistics_carrier_connectors``).
    connector: Mapped[str] = mapped_column(String(64), default="")
    #: SHA-256 of the secret the carrier's tracking webhook presents; empty: webhook closed.
    webhook_secret_hash: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(default=True)

    services: Mapped[list[LogisticsService]] = relationship(
        back_populates="carrier", order_by="LogisticsService.id", cascade="all, delete-orphan"
    )


class LogisticsService(Base):
    """A service level of a carrier (e.g. 标准快递, 特快, 零担) with its volumetric divisor."""

    __tablename__ = "logistics_service"
    __table_args__ = (UniqueConstraint("carrier_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("logistics_carrier.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    #: Cubic centimetres per chargeable kilogram (e.g. 6000): volumetric weight = cm³ / divisor.
    volumetric_divisor: Mapped[int] = mapped_column(default=6000)
    active: Mapped[bool] = mapped_column(default=True)

    carrier: Mapped[LogisticsCarrier] = relationship(back_populates="services")
    transits: Mapped[list[LogisticsTransit]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="LogisticsTransit.id"
    )
    rates: Mapped[list[LogisticsRate]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="LogisticsRate.id"
    )


class LogisticsTransit(Base):
    """Working days a service takes from one province to another (``*`` matches any)."""

    __tablename__ = "logistics_transit"
    __table_args__ = (UniqueConstraint("service_id", "from_province", "to_province"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("logistics_service.id"), index=True)
    from_province: Mapped[str] = mapped_column(String(64))
    to_province: Mapped[str] = mapped_column(String(64))
    days: Mapped[int]

    service: Mapped[LogisticsService] = relationship(back_populates="transits")


class LogisticsRate(Base):
    """A rate of a service to a province (``*`` any): first unit price plus each additional unit.

    ``basis`` ``weight``: units are chargeable kilograms (the larger of actual and
    volumetric weight); ``volume``: units are cubic metres.
    """

    __tablename__ = "logistics_rate"
    __table_args__ = (UniqueConstraint("service_id", "to_province", "basis"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("logistics_service.id"), index=True)
    to_province: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(8), default="weight")
    first_unit: Mapped[Decimal] = mapped_column(Volume)
    first_price: Mapped[Decimal] = mapped_column(Money)
    additional_unit: Mapped[Decimal] = mapped_column(Volume)
    additional_price: Mapped[Decimal] = mapped_column(Money)
    minimum_charge: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))

    service: Mapped[LogisticsService] = relationship(back_populates="rates")


class LogisticsPickList(Base):
    """A picking list (拣货单) over the shipments of one or several orders."""

    __tablename__ = "logistics_pick_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    #: The standard picking time (minutes) from the settings' per-line and per-unit times.
    estimated_minutes: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    confirmed_at: Mapped[dt.datetime | None]

    shipments: Mapped[list[LogisticsShipment]] = relationship(back_populates="pick_list")


class LogisticsShipment(Base):
    """One shipment (发货) of an order: lines, packages, carrier, tracking, delivery, receipt."""

    __tablename__ = "logistics_shipment"
    __table_args__ = (Index("ix_logistics_shipment_tracking", "carrier_id", "tracking_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("logistics_warehouse.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    pick_list_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_pick_list.id"), index=True)
    remote: Mapped[bool] = mapped_column(default=False)
    promised_date: Mapped[dt.date | None]
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_carrier.id"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_service.id"))
    #: What Ordo suggested, and why the user chose otherwise (empty when the suggestion was taken).
    suggested_service_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_service.id"))
    override_reason: Mapped[str] = mapped_column(String(500), default="")
    tracking_number: Mapped[str] = mapped_column(String(64), default="")
    freight: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    insured: Mapped[bool] = mapped_column(default=False)
    insured_value: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    insurance_fee: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    #: Value of the goods in the shipment (order prices), for insurance and the waybill.
    goods_value: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    packed_at: Mapped[dt.datetime | None]
    shipped_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    shipped_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    #: Proof of delivery: who signed, when, and the signed delivery note (an order attachment).
    pod_signer: Mapped[str] = mapped_column(String(100), default="")
    pod_signed_at: Mapped[dt.datetime | None]
    pod_attachment_id: Mapped[int | None] = mapped_column(ForeignKey("order_attachment.id"))
    receipt_status: Mapped[str] = mapped_column(String(16), default="pending")
    receipt_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    receipt_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    pick_list: Mapped[LogisticsPickList | None] = relationship(back_populates="shipments")
    lines: Mapped[list[LogisticsShipmentLine]] = relationship(
        back_populates="shipment", order_by="LogisticsShipmentLine.id", cascade="all, delete-orphan"
    )
    packages: Mapped[list[LogisticsPackage]] = relationship(
        back_populates="shipment", order_by="LogisticsPackage.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[LogisticsTrackingEvent]] = relationship(
        back_populates="shipment", order_by="LogisticsTrackingEvent.at", cascade="all, delete-orphan"
    )


class LogisticsShipmentLine(Base):
    """An order line's quantity in a shipment: planned from the reservation, then picked."""

    __tablename__ = "logistics_shipment_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("logistics_location.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: What the picker actually took (``None`` until the pick is confirmed); less is a short pick.
    picked_quantity: Mapped[Decimal | None] = mapped_column(Quantity)

    shipment: Mapped[LogisticsShipment] = relationship(back_populates="lines")


class LogisticsPackage(Base):
    """A package (件) of a shipment, with its weight and dimensions."""

    __tablename__ = "logistics_package"
    __table_args__ = (
        CheckConstraint("weight > 0", name="package_weight_positive"),
        CheckConstraint("length > 0 AND width > 0 AND height > 0", name="package_dimensions_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    #: Kilograms; centimetres.
    weight: Mapped[Decimal] = mapped_column(Weight)
    length: Mapped[Decimal] = mapped_column(Weight)
    width: Mapped[Decimal] = mapped_column(Weight)
    height: Mapped[Decimal] = mapped_column(Weight)
    note: Mapped[str] = mapped_column(String(200), default="")

    shipment: Mapped[LogisticsShipment] = relationship(back_populates="packages")


class LogisticsTrackingEvent(Base):
    """A tracking event of a shipment, entered by hand, pushed by the carrier or pulled."""

    __tablename__ = "logistics_tracking_event"
    __table_args__ = (UniqueConstraint("shipment_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime]
    place: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16), default="manual")
    #: The carrier's own id of the event, so a repeated webhook call records it once.
    external_id: Mapped[str | None] = mapped_column(String(100))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    shipment: Mapped[LogisticsShipment] = relationship(back_populates="events")


class LogisticsException(Base):
    """A logistics exception (delay, damage, loss) and its follow-up: owner, due date, resolution."""

    __tablename__ = "logistics_exception"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    due_date: Mapped[dt.date]
    resolution: Mapped[str] = mapped_column(String(1000), default="")
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolved_at: Mapped[dt.datetime | None]


class LogisticsObjection(Base):
    """The customer's objection to a delivered shipment, and how it was resolved (LG-7)."""

    __tablename__ = "logistics_objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("logistics_shipment.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1000), default="")
    #: ``replacement`` or ``return`` once decided; empty while open.
    resolution: Mapped[str] = mapped_column(String(16), default="")
    #: The replacement shipment that answers it (resolution ``replacement``).
    replacement_shipment_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_shipment.id"))
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolved_at: Mapped[dt.datetime | None]


class LogisticsAcceptance(Base):
    """An acceptance report (验收报告) round of an order: accepted, or rework needed (LG-8)."""

    __tablename__ = "logistics_acceptance"
    __table_args__ = (UniqueConstraint("order_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    round: Mapped[int] = mapped_column(default=1)
    result: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(1000), default="")
    #: The signed report, archived as an order attachment.
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("order_attachment.id"))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LogisticsReturn(Base):
    """A return request (退货申请) of an order: reviewed, approved, received, inspected (LG-9)."""

    __tablename__ = "logistics_return"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    #: The objection that led to it, if any.
    objection_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_objection.id"))
    #: Why a return for a non-quality reason is accepted anyway (the exception).
    exception_reason: Mapped[str] = mapped_column(String(1000), default="")
    #: Whether the customer's stamped request form is on file (an order attachment).
    stamped_attachment_id: Mapped[int | None] = mapped_column(ForeignKey("order_attachment.id"))
    freight_paid_by: Mapped[str] = mapped_column(String(16), default="company")
    note: Mapped[str] = mapped_column(String(1000), default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reviewed_at: Mapped[dt.datetime | None]
    review_note: Mapped[str] = mapped_column(String(1000), default="")
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str] = mapped_column(String(1000), default="")
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    received_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    closed_at: Mapped[dt.datetime | None]

    lines: Mapped[list[LogisticsReturnLine]] = relationship(
        back_populates="request", order_by="LogisticsReturnLine.id", cascade="all, delete-orphan"
    )


class LogisticsReturnLine(Base):
    """A delivered order line being returned: requested, approved, received quantities."""

    __tablename__ = "logistics_return_line"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="return_quantity_positive"),
        UniqueConstraint("return_id", "order_line_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("logistics_return.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    reason: Mapped[str] = mapped_column(String(16))
    reason_detail: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    approved_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    received_quantity: Mapped[Decimal | None] = mapped_column(Quantity)

    request: Mapped[LogisticsReturn] = relationship(back_populates="lines")
    dispositions: Mapped[list[LogisticsDisposition]] = relationship(
        back_populates="line", order_by="LogisticsDisposition.id", cascade="all, delete-orphan"
    )


class LogisticsDisposition(Base):
    """QC's decision on returned units of one line: restock, rework, downgrade or scrap."""

    __tablename__ = "logistics_disposition"
    __table_args__ = (CheckConstraint("quantity > 0", name="disposition_quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_line_id: Mapped[int] = mapped_column(ForeignKey("logistics_return_line.id"), index=True)
    disposition: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_location.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    inspected_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    inspected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    line: Mapped[LogisticsReturnLine] = relationship(back_populates="dispositions")

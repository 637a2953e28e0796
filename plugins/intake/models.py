"""Intake's tables, keyed to core's customers and products (core tables are never altered).

- Customer groups (客户分类) and each customer's intake profile: its group, whether it is
  blocked from ordering, which payment methods it may use.
- Price lists (价格表) per customer group or per customer (contract prices, 合同价), with
  validity dates and currency; the price an order line should have comes from them
  (IN-3 "price consistent with pricing policy or contract").
- Each product's ordering rules: minimum and maximum quantity per order, lead time in
  working days (IN-3 sales policy, requested date), whether it is a regular product.
- Per-customer purchase limits per period (IN-3 "purchase limits").
- What intake records of each order: its classification (regular, transaction type),
  the pre-check's findings, the manual check's due date and outcome, and every
  correction made while checking, marked as entry error or not (IN-4, IN-5, IN-7, IN-9).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, Quantity, UnitPrice, utcnow
from core.labels import N_


class IntakeCustomerGroup(Base):
    """A group of customers sharing a price list (distributors, key accounts, retail…)."""

    __tablename__ = "intake_customer_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class IntakeCustomerProfile(Base):
    """What intake knows of a customer beyond core's record; absent means the defaults."""

    __tablename__ = "intake_customer_profile"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("intake_customer_group.id"), index=True)
    #: A blocked customer's orders are rejected by the pre-check, with the reason.
    blocked: Mapped[bool] = mapped_column(default=False)
    blocked_reason: Mapped[str] = mapped_column(String(500), default="")
    #: Comma-separated payment methods the customer may use ('' for any).
    payment_methods: Mapped[str] = mapped_column(String(200), default="")


class IntakePriceList(Base):
    """Prices for a customer group or one customer (a contract), valid between two dates.

    Exactly one of ``customer_group_id`` and ``customer_id`` is set. A customer's own
    list wins over its group's; among lists of the same kind, the one valid on the day
    with the latest ``valid_from`` wins.
    """

    __tablename__ = "intake_price_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    customer_group_id: Mapped[int | None] = mapped_column(ForeignKey("intake_customer_group.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    #: The contract the prices come from (合同号), for contract price lists.
    contract_number: Mapped[str] = mapped_column(String(64), default="")
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    items: Mapped[list[IntakePriceListItem]] = relationship(
        back_populates="price_list", cascade="all, delete-orphan", order_by="IntakePriceListItem.id"
    )


class IntakePriceListItem(Base):
    """A product's unit price on a price list, from a minimum quantity on (tiered prices)."""

    __tablename__ = "intake_price_list_item"
    __table_args__ = (UniqueConstraint("price_list_id", "product_id", "min_quantity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(ForeignKey("intake_price_list.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    min_quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal("0"))

    price_list: Mapped[IntakePriceList] = relationship(back_populates="items")


class IntakeProductRule(Base):
    """A product's ordering rules: quantity bounds per order and lead time in working days."""

    __tablename__ = "intake_product_rule"

    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    min_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    max_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    lead_time_days: Mapped[int] = mapped_column(default=0)
    #: A regular product (常规产品): standard, with complete technical documents. An order
    #: is regular when all its products are and the customer was shipped each before.
    regular: Mapped[bool] = mapped_column(default=False)


#: Periods a purchase limit counts over.
LIMIT_PERIODS = ("month", "quarter", "year")


class IntakePurchaseLimit(Base):
    """How much of a product a customer may order per period (calendar month, quarter, year)."""

    __tablename__ = "intake_purchase_limit"
    __table_args__ = (UniqueConstraint("customer_id", "product_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    period: Mapped[str] = mapped_column(String(8))
    max_quantity: Mapped[Decimal] = mapped_column(Quantity)


#: Transaction types (交易类型) an order is classified by (IN-7), with their labels.
TRANSACTION_TYPE_LABELS = {
    "domestic": N_("Domestic sale"),
    "export": N_("Export"),
    "sample": N_("Sample"),
    "consignment": N_("Consignment"),
    "project": N_("Project"),
}
TRANSACTION_TYPES = tuple(TRANSACTION_TYPE_LABELS)


class IntakeOrder(Base):
    """Intake's record of an order: classification, pre-check outcome and manual check.

    Created when the order is first pre-checked; ``check_due`` is set when it enters the
    manual check (N working days, setting ``intake.manual_check.days``).
    """

    __tablename__ = "intake_order"
    __table_args__ = (
        Index("ix_intake_order_due", "checked_at", "check_due"),
        #: kpi's pre-check rejection rate reads the orders pre-checked in a period.
        Index("ix_intake_order_prechecked_at", "prechecked_at"),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), primary_key=True)
    #: Regular (常规) or not; None until classified.
    regular: Mapped[bool | None]
    transaction_type: Mapped[str] = mapped_column(String(16), default="domestic")
    #: The pre-check's worst level: pass, warn or reject ('' before it ran).
    precheck_level: Mapped[str] = mapped_column(String(8), default="")
    prechecked_at: Mapped[dt.datetime | None]
    check_due: Mapped[dt.date | None]
    checked_at: Mapped[dt.datetime | None]
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    #: accepted or rejected, once the manual check is done.
    check_outcome: Mapped[str] = mapped_column(String(16), default="")
    reminded_at: Mapped[dt.datetime | None]
    escalated_at: Mapped[dt.datetime | None]


class IntakeFinding(Base):
    """One finding of the last pre-check of an order: rule, level and message (kept as reasons)."""

    __tablename__ = "intake_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    plugin: Mapped[str] = mapped_column(String(64), default="intake")
    level: Mapped[str] = mapped_column(String(8))
    #: The message in English as the rule wrote it; ``msgid``/``params`` translate it.
    message: Mapped[str] = mapped_column(String(1000))
    msgid: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    field: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IntakeCorrection(Base):
    """A change a clerk made while checking an order, and whether it fixed an entry error (IN-9)."""

    __tablename__ = "intake_correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(100))
    before: Mapped[str] = mapped_column(String(1000), default="")
    after: Mapped[str] = mapped_column(String(1000), default="")
    #: True when the value had been entered wrongly (counts against entry accuracy).
    entry_error: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(String(500), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

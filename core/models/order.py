"""Orders (订单), their lines, their workflow history and their numbering.

Money is ``Decimal`` in ``Numeric`` columns; totals are computed here, server-side.
``version`` is an optimistic-lock counter: a stale write raises instead of
overwriting somebody else's change.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, Percent, Quantity, UnitPrice, utcnow
from core.models.party import Customer
from core.models.product import Product

#: Channels an order can arrive by (接收渠道, IN-1).
CHANNELS = ("phone", "email", "fax", "portal", "api", "offline")
#: Payment methods (BL-1); billing refines the terms.
PAYMENT_METHODS = ("prepayment", "cash_on_delivery", "monthly_settlement", "instalments")
URGENCIES = ("normal", "urgent")
#: The columns a data scope selects orders by (``order_scope``): each has an index.
SCOPE_COLUMNS = ("branch_id", "department_id", "customer_id", "owner_id", "created_by_id")

CENT = Decimal("0.01")


def to_cents(value: Decimal) -> Decimal:
    """Round a money amount to the cent, half up (the commercial rule)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Order(Base):
    """A customer's order: header, lines, current workflow step and status."""

    __tablename__ = "order"
    __table_args__ = (
        UniqueConstraint("company_id", "number"),
        # A client's own reference is unique per channel and customer: the same API or
        # EDI order sent twice is a duplicate, not a second order (IN-1). NULLs never clash.
        UniqueConstraint("company_id", "channel", "customer_id", "external_reference"),
        Index("ix_order_status_created", "status", "created_at"),
        # One index per data-scope column (core.security.scopes), ending in the lists'
        # default order (newest first, id breaking ties): a scoped user's first page and
        # the next cursor's page read only their own rows, however many orders there are.
        # Each also serves its column alone (foreign-key look-ups, a customer's orders).
        *(Index(f"ix_order_{column}_created", column, "created_at", "id") for column in SCOPE_COLUMNS),
        # And with the status between: a scope filtered by status ("my submitted orders")
        # is counted and paged from its own rows of that status, rare or common.
        *(Index(f"ix_order_{column}_status", column, "status", "created_at", "id") for column in SCOPE_COLUMNS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(100), default="", index=True)
    #: The sending system's own id of the order (an e-shop's or EDI partner's order number).
    external_reference: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500), default="")
    requested_date: Mapped[dt.date | None]
    payment_method: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    ship_to_contact: Mapped[str] = mapped_column(String(100), default="")
    ship_to_phone: Mapped[str] = mapped_column(String(50), default="")
    ship_to_province: Mapped[str] = mapped_column(String(64), default="")
    ship_to_city: Mapped[str] = mapped_column(String(64), default="")
    ship_to_address: Mapped[str] = mapped_column(String(300), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")
    #: The workflow step the order waits in (e.g. ``draft``, ``review.department_review``).
    step: Mapped[str] = mapped_column(String(64), index=True)
    #: The coarse state derived from the step: draft, submitted, confirmed, completed,
    #: cancelled or rejected. Stored so lists filter on an index.
    status: Mapped[str] = mapped_column(String(16), index=True)
    untaxed_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    tax_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.position"
    )
    transitions: Mapped[list[OrderTransition]] = relationship(
        back_populates="order", order_by="OrderTransition.id", viewonly=True
    )

    __mapper_args__ = {"version_id_col": version}

    def recompute_totals(self) -> None:
        """Recompute line amounts and the order's untaxed, tax and total amounts."""
        untaxed = Decimal("0")
        tax = Decimal("0")
        for line in self.lines:
            line.recompute()
            untaxed += line.amount
            tax += to_cents(line.amount * line.tax_rate / 100)
        self.untaxed_amount = to_cents(untaxed)
        self.tax_amount = to_cents(tax)
        self.total = self.untaxed_amount + self.tax_amount


class OrderLine(Base):
    """One product line of an order: quantity × unit price less discount, plus tax."""

    __tablename__ = "order_line"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    unit: Mapped[str] = mapped_column(String(16))
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    #: Discount in percent of the gross line amount.
    discount: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    tax_rate: Mapped[Decimal] = mapped_column(Percent, default=Decimal("0"))
    amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    def recompute(self) -> None:
        """Set ``amount`` (untaxed, after discount) from quantity, price and discount."""
        gross = self.quantity * self.unit_price
        self.amount = to_cents(gross * (Decimal("100") - (self.discount or 0)) / 100)


class OrderTransition(Base):
    """One move of an order between steps: who, when, from, to, why (CORE-6)."""

    __tablename__ = "order_transition"
    #: Measuring "completed in November" reads one index range (kpi's cycle time).
    __table_args__ = (Index("ix_order_transition_to_status_at", "to_status", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    from_step: Mapped[str] = mapped_column(String(64))
    to_step: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    reason: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    order: Mapped[Order] = relationship(back_populates="transitions")


class NumberSequence(Base):
    """The next serial of a numbered document per company, code and year."""

    __tablename__ = "number_sequence"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    next_value: Mapped[int] = mapped_column(default=1)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` with the request it came with and the answer given."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

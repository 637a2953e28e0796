"""Customers (客户) with their contacts and addresses."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow


class Customer(Base):
    """A customer the company sells to; ``active=False`` hides it from new orders."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), index=True)
    #: The salesperson who looks after this customer.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", use_alter=True), index=True)
    tax_id: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(2000), default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: The language the customer's notifications and documents are written in.
    language: Mapped[str] = mapped_column(String(8), default="zh_CN")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    contacts: Mapped[list[CustomerContact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerContact.id"
    )
    addresses: Mapped[list[CustomerAddress]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerAddress.id"
    )


class CustomerContact(Base):
    """A person at the customer: who orders, who receives, who pays."""

    __tablename__ = "customer_contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    role: Mapped[str] = mapped_column(String(50), default="")

    customer: Mapped[Customer] = relationship(back_populates="contacts")


class CustomerAddress(Base):
    """A ship-to or bill-to address; the province decides whether an order is remote."""

    __tablename__ = "customer_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    province: Mapped[str] = mapped_column(String(64))
    city: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(300))
    postcode: Mapped[str] = mapped_column(String(16), default="")

    customer: Mapped[Customer] = relationship(back_populates="addresses")

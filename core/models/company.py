"""The company running Ordo, its branches (分公司) and departments (部门)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base


class Company(Base):
    """The legal entity whose orders Ordo manages; numbers orders with its prefix."""

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Order numbers read ``<prefix><year>-<serial>``, e.g. ``SO2026-000123``.
    order_prefix: Mapped[str] = mapped_column(String(16), default="SO")
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: The home region (省/市); orders shipped outside it are remote orders (LG-1).
    home_province: Mapped[str] = mapped_column(String(64), default="")
    #: The days of the week nobody works, as ``sat,sun`` (see :mod:`core.calendar`).
    weekend_days: Mapped[str] = mapped_column(String(32), default="sat,sun")
    # The letterhead printed on documents.
    address: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    tax_id: Mapped[str] = mapped_column(String(64), default="")
    #: The logo in the file store (its SHA-256; '' for none) and its image type.
    logo_sha256: Mapped[str] = mapped_column(String(64), default="")
    logo_type: Mapped[str] = mapped_column(String(32), default="")

    branches: Mapped[list[Branch]] = relationship(back_populates="company")


class Branch(Base):
    """A branch company or the head office; orders and users are scoped by branch."""

    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_head_office: Mapped[bool] = mapped_column(default=False)

    company: Mapped[Company] = relationship(back_populates="branches")


class Department(Base):
    """A department (sales, finance, warehouse, …) a user belongs to."""

    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("company_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))

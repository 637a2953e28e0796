"""The product catalogue (型号/规格)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, Percent, UnitPrice


class Product(Base):
    """A product or service that can be ordered; inactive ones cannot be."""

    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    spec: Mapped[str] = mapped_column(String(500), default="")
    unit: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64), default="", index=True)
    list_price: Mapped[Decimal] = mapped_column(UnitPrice)
    tax_rate: Mapped[Decimal] = mapped_column(Percent, default=Decimal("13"))
    #: A regular product (常规) has shipped before with complete technical documents.
    regular: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)

"""The inspection plugin's one table: ``inspection_report``, keyed to core's ``order`` rows.

A plugin extends core records with tables of its own and never alters core tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, utcnow
from core.models import Order, User


class InspectionReport(Base):
    """One inspection of an order's goods (验货记录): who inspected, when, passed or not, and why."""

    __tablename__ = "inspection_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    passed: Mapped[bool]
    #: What was checked or found; required when the inspection failed.
    note: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship()
    inspector: Mapped[User] = relationship()

"""The company's working calendar: holidays and make-up working days (调休)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

#: A calendar day is a holiday (no work on a weekday) or a make-up working day (work on
#: a weekend day, as China's official calendar moves days around public holidays).
CALENDAR_DAY_KINDS = ("holiday", "workday")


class CalendarDay(Base):
    """A day that departs from the company's weekly pattern of working days."""

    __tablename__ = "calendar_day"
    __table_args__ = (UniqueConstraint("company_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    day: Mapped[dt.date]
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")

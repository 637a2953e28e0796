"""The kpi plugin's hook: other plugins contribute indicators (KP-1) without depending on kpi.

Added to the plugin manager through ``ordo_add_hookspecs`` when kpi is enabled. A
plugin implements :func:`ordo_kpi_indicators` with ``@hookimpl(optionalhook=True)`` —
usually in a bridge module (``extras = {"kpi": "plugins.<name>.bridges.kpi"}``) so
that it is loaded only when kpi is enabled too — and returns :class:`Indicator`
objects. Each indicator computes an :class:`IndicatorValue` for a period of company
days; :mod:`plugins.kpi.indicators` collects and computes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from core import hookspec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The units an indicator's value is given in.
UNITS = ("percent", "count", "days")
#: Percentages keep two decimal places (66.67).
PERCENT_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class IndicatorValue:
    """An indicator's value over one period, with the figures it comes from.

    ``value`` is None when there was nothing to measure (a denominator of 0), so a
    quiet month shows "no data" rather than 0 % or 100 %. ``breakdown`` splits the
    value by a dimension the indicator names (a rejection reason, a customer group…),
    each part an :class:`IndicatorValue` over the same denominator.
    """

    value: Decimal | None
    numerator: Decimal
    denominator: Decimal
    breakdown: Mapping[str, IndicatorValue] = field(default_factory=dict)

    @classmethod
    def ratio(
        cls, numerator: int | Decimal, denominator: int | Decimal, breakdown: Mapping[str, IndicatorValue] | None = None
    ) -> IndicatorValue:
        """``numerator / denominator`` as a percentage with two decimals (None when nothing was measured)."""
        num, den = Decimal(numerator), Decimal(denominator)
        value = (num * 100 / den).quantize(PERCENT_PLACES, ROUND_HALF_UP) if den else None
        return cls(value, num, den, dict(breakdown or {}))


@dataclass(frozen=True)
class Indicator:
    """A measurable indicator a plugin contributes (entry accuracy, on-time delivery rate…).

    ``code`` reads ``<plugin>.<name>`` and is unique across plugins; ``label`` and
    ``description`` are marked for translation (``N_``) and translated where shown;
    ``unit`` is one of :data:`UNITS`. ``compute(session, start, end)`` measures the
    company days ``start`` … ``end`` inclusive (see
    :func:`plugins.kpi.indicators.period_bounds`) and must not change data. ``plugin``
    is filled in by kpi with the contributing plugin's name.
    """

    code: str
    label: str
    unit: str
    description: str
    compute: Callable[[Session, dt.date, dt.date], IndicatorValue] = field(repr=False, compare=False)
    plugin: str = ""


@hookspec
def ordo_kpi_indicators() -> list[Indicator]:  # type: ignore[empty-body]
    """Return the indicators the plugin contributes to kpi (codes ``<plugin>.<name>``, unique).

    Called whenever kpi lists or computes indicators. Implement it with
    ``@hookimpl(optionalhook=True)``; it is simply not called when kpi is disabled.
    """

"""Collect every enabled plugin's indicators and compute them for a period (KP-1).

Plugins contribute :class:`plugins.kpi.hookspecs.Indicator` objects through the hook
``ordo_kpi_indicators``; :func:`collect_indicators` gathers them by code (a code used
twice stops with both plugins named) and :func:`compute_indicators` measures each over
the company days ``start`` … ``end`` inclusive. A period is counted in the company's
time zone (``core.clock``): 1–30 November is from midnight on 1 November to midnight
on 1 December, Chongqing time, whatever the server's zone.

This is deliberately small: the dashboard, monthly evaluation and targets come with the
kpi plugin's own issue and build on these two functions.

Usage::

    values = compute_indicators(session, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    values["intake.entry_accuracy"].value  # Decimal('98.50'), or None without checks
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from core.clock import day_end, day_start
from core.plugins import PluginError
from core.services import ServiceError
from core.settings import session_registry
from plugins.kpi.hookspecs import UNITS, Indicator, IndicatorValue

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.plugins import Registry


def collect_indicators(registry: Registry) -> dict[str, Indicator]:
    """Every indicator the enabled plugins contribute, by code (in the order plugins answer).

    Empty when kpi is disabled (the hook does not exist then). Raises
    :class:`core.plugins.PluginError` for a code contributed twice, an object that is
    not an :class:`Indicator`, or an unknown unit.
    """
    caller = getattr(registry.hook, "ordo_kpi_indicators", None)
    if caller is None:
        return {}
    found: dict[str, Indicator] = {}
    for impl in caller.get_hookimpls():  # in registration order
        owner = impl.plugin_name.split("+", 1)[0]
        for item in impl.function() or ():
            if not isinstance(item, Indicator):
                raise PluginError(f"ordo_kpi_indicators of plugin {owner!r} returned {item!r}, not an Indicator")
            if item.unit not in UNITS:
                raise PluginError(f"indicator {item.code!r} of plugin {owner!r} has unknown unit {item.unit!r}")
            if item.code in found:
                raise PluginError(f"duplicate indicator {item.code!r} (from {found[item.code].plugin!r} and {owner!r})")
            found[item.code] = Indicator(item.code, item.label, item.unit, item.description, item.compute, owner)
    return found


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime | None]:
    """The instants the company days ``start`` … ``end`` (inclusive) begin and end.

    Compare a stored time ``t`` as ``lower <= t < upper`` (no upper bound when None).
    Raises a 422 :class:`core.services.ServiceError` when ``start`` is after ``end``.
    """
    if start > end:
        raise ServiceError(
            "invalid",
            f"the period starts {start.isoformat()}, after its end {end.isoformat()}",
            {"start": ["Must not be after the end of the period."]},
        )
    return day_start(start), day_end(end)


def compute_indicators(
    session: Session,
    start: dt.date,
    end: dt.date,
    registry: Registry | None = None,
    codes: list[str] | None = None,
) -> dict[str, IndicatorValue]:
    """Each indicator's value over the company days ``start`` … ``end`` inclusive, by code.

    ``registry`` defaults to the one that opened ``session``; ``codes`` limits the result
    to those indicators (an unknown code is a 422 error naming it). Only reads.
    """
    period_bounds(start, end)  # refuses a reversed period before anything runs
    indicators = collect_indicators(registry or session_registry(session))
    if codes is not None:
        unknown = [code for code in codes if code not in indicators]
        if unknown:
            raise ServiceError(
                "invalid", f"unknown indicator {', '.join(unknown)}", {"codes": [f"Unknown: {', '.join(unknown)}."]}
            )
        indicators = {code: indicators[code] for code in codes}
    return {code: indicator.compute(session, start, end) for code, indicator in indicators.items()}

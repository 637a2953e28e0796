"""The kpi plugin's indicator hook (KP-1): plugins contribute indicators, kpi collects them by
unique code and computes them over a period of company days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from core.clock import COMPANY_TIMEZONE
from core.contract import fake_plugin
from core.plugins import PluginError, Registry, discover
from core.services import ServiceError
from plugins.kpi.hookspecs import Indicator, IndicatorValue
from plugins.kpi.indicators import collect_indicators, compute_indicators, period_bounds

pytestmark = pytest.mark.req("KP-1")

NOV_1, NOV_30 = dt.date(2026, 11, 1), dt.date(2026, 11, 30)


def counting(code: str, calls: list[tuple[Any, ...]], value: int = 3) -> Indicator:
    """An indicator that records the period it was asked for and counts ``value`` of 4."""

    def compute(session: Any, start: dt.date, end: dt.date) -> IndicatorValue:
        calls.append((code, start, end))
        return IndicatorValue.ratio(value, 4)

    return Indicator(code, f"{code} label", "percent", f"{code} description", compute)


def registry_with(*plugins: tuple[str, list[Any]], kpi: bool = True) -> Registry:
    """A registry with kpi (unless ``kpi`` is False) and fake plugins contributing ``indicators``."""
    installed = dict(discover())
    names = ["kpi"] if kpi else []
    for name, indicators in plugins:
        installed[name] = fake_plugin(name, ordo_kpi_indicators=lambda found=indicators: list(found))
        names.append(name)
    return Registry(names, installed)


def test_the_ratio_is_a_percentage_with_two_decimals_or_none():
    assert IndicatorValue.ratio(2, 3).value == Decimal("66.67")
    assert IndicatorValue.ratio(1, 8).value == Decimal("12.50")
    assert IndicatorValue.ratio(4, 4).value == Decimal("100.00")
    empty = IndicatorValue.ratio(0, 0)
    assert (empty.value, empty.numerator, empty.denominator, empty.breakdown) == (None, 0, 0, {})


def test_every_plugins_indicators_are_collected_with_their_plugin():
    calls: list[tuple[Any, ...]] = []
    registry = registry_with(
        ("alpha", [counting("alpha.first", calls), counting("alpha.second", calls)]),
        ("beta", [counting("beta.only", calls, value=1)]),
    )
    indicators = collect_indicators(registry)
    assert {code: ind.plugin for code, ind in indicators.items()} == {
        "alpha.first": "alpha",
        "alpha.second": "alpha",
        "beta.only": "beta",
    }
    values = compute_indicators(object(), NOV_1, NOV_30, registry)  # type: ignore[arg-type]
    assert {code: v.value for code, v in values.items()} == {
        "alpha.first": Decimal("75.00"),
        "alpha.second": Decimal("75.00"),
        "beta.only": Decimal("25.00"),
    }
    assert sorted(calls) == [
        ("alpha.first", NOV_1, NOV_30),
        ("alpha.second", NOV_1, NOV_30),
        ("beta.only", NOV_1, NOV_30),
    ]


def test_codes_limit_what_is_computed_and_an_unknown_code_is_refused():
    calls: list[tuple[Any, ...]] = []
    registry = registry_with(("alpha", [counting("alpha.first", calls), counting("alpha.second", calls)]))
    values = compute_indicators(object(), NOV_1, NOV_30, registry, codes=["alpha.second"])  # type: ignore[arg-type]
    assert list(values) == ["alpha.second"] and [c[0] for c in calls] == ["alpha.second"]
    with pytest.raises(ServiceError, match=r"unknown indicator alpha\.third"):
        compute_indicators(object(), NOV_1, NOV_30, registry, codes=["alpha.third"])  # type: ignore[arg-type]


def test_a_code_contributed_twice_names_both_plugins():
    registry = registry_with(("alpha", [counting("shared.rate", [])]), ("beta", [counting("shared.rate", [])]))
    with pytest.raises(PluginError, match=r"duplicate indicator 'shared.rate' \(from 'alpha' and 'beta'\)"):
        collect_indicators(registry)


def test_a_contribution_that_is_not_an_indicator_or_has_an_unknown_unit_is_refused():
    with pytest.raises(PluginError, match="not an Indicator"):
        collect_indicators(registry_with(("alpha", ["alpha.rate"])))
    bad_unit = Indicator("alpha.rate", "Rate", "furlongs", "", lambda s, a, b: IndicatorValue.ratio(0, 0))
    with pytest.raises(PluginError, match="unknown unit 'furlongs'"):
        collect_indicators(registry_with(("alpha", [bad_unit])))


def test_a_reversed_period_is_refused_before_any_indicator_runs():
    calls: list[tuple[Any, ...]] = []
    registry = registry_with(("alpha", [counting("alpha.first", calls)]))
    with pytest.raises(ServiceError, match=r"starts 2026-11-30, after its end 2026-11-01") as refused:
        compute_indicators(object(), NOV_30, NOV_1, registry)  # type: ignore[arg-type]
    assert refused.value.status == 422 and calls == []


def test_a_period_runs_from_midnight_to_midnight_company_time():
    lower, upper = period_bounds(NOV_1, NOV_30)
    assert lower == dt.datetime(2026, 11, 1, tzinfo=COMPANY_TIMEZONE)
    assert upper == dt.datetime(2026, 12, 1, tzinfo=COMPANY_TIMEZONE)
    assert period_bounds(NOV_1, dt.date.max)[1] is None


def test_without_kpi_there_is_no_indicator_hook():
    registry = registry_with(kpi=False)
    assert not hasattr(registry.hook, "ordo_kpi_indicators")
    assert collect_indicators(registry) == {}


def test_kpi_alone_collects_nothing():
    assert collect_indicators(registry_with()) == {}

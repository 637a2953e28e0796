"""The figures each kind of department gives with its verdict (RV-1, RV-2).

Technical: feasible, difficulties, solution and its date. Production: capacity,
materials, proposed completion date. Purchasing: material and outsourcing cost against
the market. Quality: requirements achievable and stated completely. Finance: cost,
taxes, gross margin, expense ratio, profit margin, payment terms, risk. Screens build
the verdict form from :data:`FIGURES`; :func:`clean_figures` checks what arrives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from core.labels import N_

#: The kinds of value a figure holds.
FIGURE_TYPES = ("bool", "text", "date", "money", "percent", "choice")
RISK_LEVELS = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")}


@dataclass(frozen=True)
class Figure:
    """One field of a department's verdict: name, label, type, whether it must be given."""

    name: str
    label: str
    type: str
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    #: This date is the department's proposed date (shown at consolidation).
    proposes_date: bool = False


FIGURES: dict[str, tuple[Figure, ...]] = {
    "technical": (
        Figure("feasible", N_("Technically feasible"), "bool", required=True),
        Figure("difficulties", N_("Difficulties"), "text"),
        Figure("solution", N_("Solution"), "text"),
        Figure("solution_date", N_("Solution ready by"), "date", proposes_date=True),
    ),
    "production": (
        Figure("capacity_ok", N_("Capacity available"), "bool", required=True),
        Figure("materials_ok", N_("Materials available"), "bool", required=True),
        Figure("completion_date", N_("Proposed completion date"), "date", required=True, proposes_date=True),
    ),
    "purchasing": (
        Figure("material_cost", N_("Material cost"), "money", required=True),
        Figure("outsourcing_cost", N_("Outsourcing cost"), "money"),
        Figure("market_cost", N_("Market price of the same"), "money"),
        Figure("in_line_with_market", N_("In line with the market"), "bool", required=True),
    ),
    "quality": (
        Figure("achievable", N_("Quality requirements achievable"), "bool", required=True),
        Figure("stated_completely", N_("Requirements stated completely and correctly"), "bool", required=True),
        Figure("notes", N_("Inspection notes"), "text"),
    ),
    "finance": (
        Figure("cost", N_("Cost"), "money", required=True),
        Figure("taxes", N_("Taxes"), "money"),
        Figure("gross_margin", N_("Gross margin (%)"), "percent", required=True),
        Figure("expense_ratio", N_("Expense ratio (%)"), "percent"),
        Figure("profit_margin", N_("Profit margin (%)"), "percent", required=True),
        Figure("payment_terms", N_("Payment terms"), "text", required=True),
        Figure("risk", N_("Financial risk"), "choice", required=True, choices=tuple(RISK_LEVELS.items())),
    ),
    "other": (),
}


def _value(figure: Figure, raw: Any) -> tuple[Any, str | None]:
    """``raw`` as the figure's stored value (a JSON-friendly string or bool), or an error msgid."""
    if figure.type == "bool":
        if isinstance(raw, bool):
            return raw, None
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on", "y"):
            return True, None
        if text in ("0", "false", "no", "off", "n"):
            return False, None
        return None, N_("Answer yes or no.")
    text = str(raw).strip()
    if figure.type == "date":
        try:
            return dt.date.fromisoformat(text).isoformat(), None
        except ValueError:
            return None, N_("Give a date as YYYY-MM-DD.")
    if figure.type in ("money", "percent"):
        try:
            number = Decimal(text.replace(",", ""))
        except InvalidOperation:
            return None, N_("Give a number.")
        if not number.is_finite() or abs(number) >= Decimal("1e14"):
            return None, N_("Give a number.")
        if figure.type == "money" and number < 0:
            return None, N_("An amount cannot be negative.")
        if figure.type == "percent" and not Decimal("-1000") <= number <= Decimal("1000"):
            return None, N_("A percentage lies between -1000 and 1000.")
        return str(number.quantize(Decimal("0.01"))), None
    if figure.type == "choice":
        if text not in dict(figure.choices):
            return None, N_("Choose one of the offered values.")
        return text, None
    if len(text) > 1000:
        return None, N_("At most 1000 characters.")
    return text, None


def clean_figures(kind: str, data: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``data`` against the figures of ``kind``: (clean values, field → error msgid).

    Missing optional figures are left out; unknown names are errors, so a typo is not
    silently dropped.
    """
    data = dict(data or {})
    figures = {f.name: f for f in FIGURES.get(kind, ())}
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in data:
        if name not in figures:
            errors[name] = N_("Unknown figure.")
    for name, figure in figures.items():
        raw = data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if figure.required and figure.type != "bool":
                errors[name] = N_("This figure is required.")
            elif figure.required:
                errors[name] = N_("Answer yes or no.")
            continue
        value, error = _value(figure, raw)
        if error:
            errors[name] = error
        else:
            clean[name] = value
    return clean, errors


def proposed_date(kind: str, clean: dict[str, Any]) -> dt.date | None:
    """The date among ``clean`` figures the department proposes (production's completion…)."""
    for figure in FIGURES.get(kind, ()):
        if figure.proposes_date and clean.get(figure.name):
            return dt.date.fromisoformat(clean[figure.name])
    return None

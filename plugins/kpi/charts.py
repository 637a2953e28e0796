"""Server-rendered SVG charts for the KPI screens and reports: a trend line and a bar chart.

Why SVG on the server: the dashboard, the metric page and the monthly report PDF
(WeasyPrint) must show charts without JavaScript or a CDN, print as they look, and be
reproducible byte for byte (tests compare them). Both functions are pure — no Flask, no
database — and return :class:`markupsafe.Markup` holding one inline ``<svg>``; every text
drawn is escaped. Values are Decimals; ``None`` is "nothing measured": a gap in the line,
an empty bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

_FONT = 'font-family="sans-serif" font-size="11"'
_LINE_COLOUR = "#0d6efd"
_TARGET_COLOUR = "#dc3545"
_GRID_COLOUR = "#dee2e6"
_TEXT_COLOUR = "#495057"


def _text(value: Decimal | None, unit: str) -> str:
    """``value`` as shown beside a point or a bar: ``96.5%``, ``5.3 days``, ``—`` for none."""
    if value is None:
        return "—"
    number = format(value, "f")
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def _num(value: float) -> str:
    """A coordinate with at most one decimal (deterministic, compact)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _bounds(values: list[Decimal]) -> tuple[Decimal, Decimal]:
    """The value range an axis covers: the values (and zero when near), padded a little."""
    low, high = min(values), max(values)
    if low > 0 and low <= (high - low) * 2:
        low = Decimal(0)
    if high < 0 and -high <= (high - low) * 2:
        high = Decimal(0)
    if low == high:
        spread = abs(low) / 10 or Decimal(1)
        return low - spread, high + spread
    pad = (high - low) / 20
    return (low if low == 0 else low - pad), high + pad


def _svg_open(width: int, height: int, title: str, css_class: str) -> list[str]:
    label = escape(title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"' + (f' aria-label="{label}"' if title else "") + ">",
    ]
    if title:
        parts.append(f"<title>{label}</title>")
    return parts


def line_chart(
    points: Sequence[tuple[str, Decimal | None]],
    *,
    target: Decimal | None = None,
    unit: str = "",
    width: int = 640,
    height: int = 200,
    title: str = "",
) -> Markup:
    """A line chart of ``points`` (``(label, value)``, oldest first) as inline SVG.

    The y axis is labelled with its lowest, middle and highest value (with ``unit``);
    every ``label`` sits under its point unless there are too many, then every n-th.
    Each point carries a ``<title>`` tooltip (``label: value``); a ``None`` value breaks
    the line (a gap). ``target`` is drawn as a dashed red line labelled "target".
    """
    parts = _svg_open(width, height, title, "kpi-chart kpi-line-chart")
    left, right, top, bottom = 56, 12, 12, 28
    plot_w, plot_h = max(width - left - right, 10), max(height - top - bottom, 10)
    values = [value for _label, value in points if value is not None]
    if not values:
        parts.append(
            f'<text x="{_num(width / 2)}" y="{_num(height / 2)}" text-anchor="middle" fill="{_TEXT_COLOUR}" '
            f'{_FONT} class="kpi-chart-empty">—</text></svg>'
        )
        return Markup("".join(parts))
    low, high = _bounds(values + ([target] if target is not None else []))
    span = float(high - low)

    def y_of(value: Decimal) -> float:
        return top + plot_h - float(value - low) / span * plot_h

    count = len(points)
    step = plot_w / (count - 1) if count > 1 else 0.0

    def x_of(index: int) -> float:
        return left + (index * step if count > 1 else plot_w / 2)

    # Axes and y labels.
    for value in (low, (low + high) / 2, high):
        y = _num(y_of(value))
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="{_GRID_COLOUR}" stroke-width="1"/>'
        )
        shown = value.quantize(Decimal("0.1")) if abs(high - low) < 10 else value.quantize(Decimal(1))
        parts.append(
            f'<text x="{left - 4}" y="{y}" text-anchor="end" dominant-baseline="middle" fill="{_TEXT_COLOUR}" '
            f"{_FONT}>{escape(_text(shown, unit))}</text>"
        )
    # X labels (at most about 12).
    every = max(1, -(-count // 12))
    for index, (label, _value) in enumerate(points):
        if index % every and index != count - 1:
            continue
        parts.append(
            f'<text x="{_num(x_of(index))}" y="{height - 8}" text-anchor="middle" fill="{_TEXT_COLOUR}" '
            f"{_FONT}>{escape(label)}</text>"
        )
    # Target.
    if target is not None:
        y = _num(y_of(target))
        parts.append(
            f'<line class="kpi-chart-target" x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" '
            f'stroke="{_TARGET_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>{escape(_text(target, unit))}</title></line>"
        )
    # The line, broken at gaps.
    segments: list[list[str]] = []
    current: list[str] = []
    for index, (_label, point) in enumerate(points):
        if point is None:
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{_num(x_of(index))},{_num(y_of(point))}")
    if current:
        segments.append(current)
    for segment in segments:
        if len(segment) > 1:
            parts.append(
                f'<polyline class="kpi-chart-line" points="{" ".join(segment)}" fill="none" '
                f'stroke="{_LINE_COLOUR}" stroke-width="2"/>'
            )
    for index, (label, point) in enumerate(points):
        if point is None:
            continue
        parts.append(
            f'<circle class="kpi-chart-point" cx="{_num(x_of(index))}" cy="{_num(y_of(point))}" r="3.5" '
            f'fill="{_LINE_COLOUR}"><title>{escape(label)}: {escape(_text(point, unit))}</title></circle>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    rows: Sequence[tuple[str, Decimal | None]],
    *,
    unit: str = "",
    width: int = 640,
    title: str = "",
) -> Markup:
    """A horizontal bar chart of ``rows`` (``(label, value)``) as inline SVG, one bar a row.

    Labels stand left of the bars (cut at 24 characters, the whole label in the bar's
    tooltip), values right of them; negative values extend left of the zero line; a
    ``None`` value draws no bar and shows "—".
    """
    bar, gap, top, label_w, value_w = 18, 6, 6, 170, 80
    height = top * 2 + max(len(rows), 1) * (bar + gap)
    parts = _svg_open(width, height, title, "kpi-chart kpi-bar-chart")
    values = [value for _label, value in rows if value is not None]
    low = min([Decimal(0), *values])
    high = max([Decimal(0), *values])
    span = float(high - low) or 1.0
    plot_w = max(width - label_w - value_w, 10)

    def x_of(value: Decimal) -> float:
        return label_w + float(value - low) / span * plot_w

    zero = x_of(Decimal(0))
    for index, (label, value) in enumerate(rows):
        y = top + index * (bar + gap)
        middle = _num(y + bar / 2)
        short = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{middle}" text-anchor="end" dominant-baseline="middle" '
            f'fill="{_TEXT_COLOUR}" {_FONT}>{escape(short)}</text>'
        )
        if value is not None:
            end = x_of(value)
            x, w = min(zero, end), abs(end - zero)
            parts.append(
                f'<rect class="kpi-chart-bar" x="{_num(x)}" y="{y}" width="{_num(max(w, 1.0))}" height="{bar}" '
                f'fill="{_LINE_COLOUR}"><title>{escape(label)}: {escape(_text(value, unit))}</title></rect>'
            )
        parts.append(
            f'<text x="{_num(label_w + plot_w + 6)}" y="{middle}" dominant-baseline="middle" fill="{_TEXT_COLOUR}" '
            f"{_FONT}>{escape(_text(value, unit))}</text>"
        )
    parts.append(
        f'<line x1="{_num(zero)}" y1="{top}" x2="{_num(zero)}" y2="{height - top}" stroke="{_GRID_COLOUR}"/></svg>'
    )
    return Markup("".join(parts))


__all__ = ["bar_chart", "line_chart"]

"""Screens "KPI dashboard", metric detail, drill-down and their exports (``/kpi/…``, KP-1).

Why: managers read the indicators the procedures evaluate people and departments by.
The dashboard shows one tile per metric the enabled plugins contribute — value, target
and a red/amber/green mark — for a period picked as a day, week, month, quarter or custom
days. It reads the period's rollups (:mod:`plugins.kpi.rollups`, refreshed by a job)
while they are fresh, else runs one aggregate query per metric, so it stays under a
second over a million orders; "compute now" (``live=1``) always computes. The metric
page adds the formula, a 12-period trend (SVG), a breakdown by any allowed dimension
(table + bars), and links every number to the drill-down: the orders behind it,
optionally only those pulling the metric the wrong way.
Every table downloads as CSV or XLSX (:mod:`plugins.kpi.exports`).

Everything is computed with ``viewer=current user``: a branch manager's dashboard counts
only their branch. Routes are added to :data:`plugins.kpi.views.bp`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import abort, flash, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from core.contrib import MenuItem
from core.labels import N_
from core.models import User
from core.settings import get_setting, session_registry
from core.views.common import PAGE_SIZES, Page, current_actor, permission_required
from core.views.labels import status_label, translate
from core.web import db
from plugins.kpi import charts, engine, exports, flow, periods, rollups
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Dimension, Metric, Period
from plugins.kpi.views import bp

MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Dashboard"),
        "kpi.dashboard",
        permission=flow.DASHBOARD_READ,
        order=10,
        icon="speedometer2",
        plugin="kpi",
    ),
)

#: Headings of the dashboard's groups, by contributing plugin.
PLUGIN_TITLES = {
    "kpi": N_("Orders and customers"),
    "intake": N_("Order intake"),
    "review": N_("Order review"),
    "logistics": N_("Logistics"),
    "billing": N_("Billing and collection"),
}
#: The marks' wording (a mark is never shown by colour alone).
MARKS = {
    "green": (N_("On target"), "success", "check-circle-fill"),
    "amber": (N_("Near target"), "warning", "exclamation-triangle-fill"),
    "red": (N_("Off target"), "danger", "x-octagon-fill"),
}
UNIT_LABELS = {
    "percent": N_("percent"),
    "count": N_("count"),
    "amount": N_("amount"),
    "days": N_("days"),
    "hours": N_("hours"),
    "score": N_("score"),
    "ratio": N_("ratio"),
}
TABLES = ("trend", "breakdown", "orders")
#: The query value that filters for "no value" (an order without a department…).
NONE_VALUE = "~"
#: How many periods the metric page's trend shows.
TREND_LENGTH = 12

# --- helpers shared with the API and the reports ---------------------------------------


def unit_suffix(metric: Metric) -> str:
    """The short unit shown after a value in charts: ``%``, ``days``, ``h``… (translated)."""
    return {"percent": "%", "days": _("days"), "hours": _("h")}.get(metric.unit, "")


def format_value(metric: Metric, value: Decimal | None) -> str:
    """``value`` as the metric's unit and places say: ``96.50%``, ``1,234``, ``5.3 days``; ``—`` for none."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "0" * metric.places if metric.places > 0 else "")
    number = format_decimal(value, format=pattern)
    if metric.unit == "percent":
        return f"{number}%"
    if metric.unit == "days":
        return _("%(value)s days", value=number)
    if metric.unit == "hours":
        return _("%(value)s h", value=number)
    return str(number)


def period_label(period: Period) -> str:
    """A short label of ``period`` for charts and tables: ``2026-10``, ``2026 Q4``, ``2026-11-16``…"""
    if period.kind == "month":
        return period.start.strftime("%Y-%m")
    if period.kind == "quarter":
        return f"{period.start.year} Q{(period.start.month - 1) // 3 + 1}"
    if period.kind in ("day", "week"):
        return period.start.isoformat()
    return f"{period.start.isoformat()} – {period.end.isoformat()}"


def period_args(period: Period) -> dict[str, str]:
    """The query parameters naming ``period`` (what :func:`plugins.kpi.periods.parse_period` reads)."""
    if period.kind == "custom":
        return {"period": "custom", "start": period.start.isoformat(), "end": period.end.isoformat()}
    return {"period": period.kind, "date": period.start.isoformat()}


def following(period: Period) -> Period:
    """The period just after ``period`` (same kind and length)."""
    if period.kind in ("day", "week", "month", "quarter"):
        return periods.period_of(period.kind, period.end + dt.timedelta(days=1))
    length = dt.timedelta(days=period.days)
    return periods.period(period.start + length, period.end + length, "custom")


def amber_band(session: Session) -> Decimal:
    """The amber band of the marks (setting ``kpi.dashboard.amber_band``, percent of the target)."""
    return Decimal(str(get_setting(session, flow.AMBER_BAND)))


def target_for(session: Session, metric: Metric, viewer: User | None) -> Decimal | None:
    """The target the viewer measures ``metric`` against: their branch's or the company's, else the default."""
    from plugins.kpi import targets

    viewer_target = getattr(targets, "viewer_target", None)
    if viewer_target is None or viewer is None:
        return metric.target
    found: Decimal | None = viewer_target(session, metric, viewer)
    return found


def parse_filters(metric: Metric, dimensions: Mapping[str, Dimension], args: Mapping[str, str]) -> dict[str, Any]:
    """The dimension filters among ``args``: ``{dimension: value}`` for the metric's dimensions.

    An empty value is no filter; :data:`NONE_VALUE` filters for "none". Other parameters
    are ignored here (the engine refuses values of the wrong kind with a 422).
    """
    allowed = {d.key for d in engine.metric_dimensions(metric, dimensions)}
    found: dict[str, Any] = {}
    for key in sorted(allowed):
        raw = (args.get(key) or "").strip()
        if raw:
            found[key] = None if raw == NONE_VALUE else raw
    return found


def filter_args(filters: Mapping[str, Any]) -> dict[str, str]:
    """``filters`` back as query parameters."""
    return {key: NONE_VALUE if value is None else str(value) for key, value in filters.items()}


@dataclass
class Tile:
    """One metric on the dashboard: its value over the period, target and mark."""

    metric: Metric
    value: engine.MetricValue
    target: Decimal | None
    mark: str | None


def tiles(
    session: Session, viewer: User, period: Period, *, live: bool = False
) -> tuple[list[Tile], dt.datetime | None]:
    """Every enabled metric over ``period`` as ``viewer`` sees it, and when its figures were rolled up.

    From the period's fresh rollups where there are some (:mod:`plugins.kpi.rollups`),
    else one aggregate query per metric; ``live`` always computes. The time is None when
    every figure was computed now.
    """
    band = amber_band(session)
    metrics = engine.collect_metrics(session_registry(session))
    values, computed_at = rollups.measure_all(session, metrics, period, viewer=viewer, live=live)
    found = []
    for key, metric in metrics.items():
        value = values[key]
        target = target_for(session, metric, viewer)
        found.append(Tile(metric, value, target, engine.mark(metric, value.value, target, band)))
    return found, computed_at


def live_requested() -> bool:
    """Whether the request asks for figures computed now (``live=1``) rather than rolled up."""
    return (request.args.get("live") or "").strip().lower() in ("1", "true", "yes")


def _period_or_error() -> tuple[Period | None, str | None]:
    try:
        return periods.parse_period(request.args), None
    except KpiError as exc:
        return None, exc.localized()


def _metric_or_404(key: str) -> Metric:
    try:
        return engine.get_metric(session_registry(db()), key)
    except KpiError:
        abort(404)


def _grouped(found: list[Tile]) -> list[tuple[str, list[Tile]]]:
    groups: dict[str, list[Tile]] = {}
    for tile in found:
        groups.setdefault(tile.metric.plugin, []).append(tile)
    return [(translate(PLUGIN_TITLES.get(plugin, plugin)) or plugin, items) for plugin, items in groups.items()]


def _picker(period: Period | None, endpoint: str = "kpi.dashboard", **keep: Any) -> dict[str, Any]:
    """What the period picker shows: the kind, the dates, the parameters it keeps and the previous/next links.

    ``keep`` holds the URL's other values (the metric key, the dimension, filters); they
    are kept as hidden fields and in the links.
    """
    args = request.args
    kind = (args.get("period") or "month").strip()
    route = {k: v for k, v in keep.items() if k == "key"}
    hidden = {k: v for k, v in keep.items() if k != "key" and v not in (None, "")}
    picker: dict[str, Any] = {
        "kind": kind if kind in periods.KINDS else "month",
        "date": args.get("date", ""),
        "start": args.get("start", ""),
        "end": args.get("end", ""),
        "kinds": [
            ("day", _("Day")),
            ("week", _("Week")),
            ("month", _("Month")),
            ("quarter", _("Quarter")),
            ("custom", _("Custom")),
        ],
        "action": url_for(endpoint, **route),
        "hidden": hidden,
        "previous": None,
        "next": None,
    }
    if period is not None:
        picker["start"] = picker["start"] or period.start.isoformat()
        picker["end"] = picker["end"] or period.end.isoformat()
        picker["date"] = picker["date"] or period.start.isoformat()
        before: dict[str, Any] = {**route, **hidden, **period_args(periods.previous(period))}
        picker["previous"] = url_for(endpoint, **before)
        try:
            after: dict[str, Any] = {**route, **hidden, **period_args(following(period))}
            picker["next"] = url_for(endpoint, **after)
        except KpiError:
            picker["next"] = None
    return picker


def _mark_info(mark: str | None) -> dict[str, str] | None:
    if mark is None:
        return None
    label, colour, icon = MARKS[mark]
    return {"code": mark, "label": translate(label), "colour": colour, "icon": icon}


def _template_helpers() -> dict[str, Any]:
    return {
        "format_value": format_value,
        "mark_info": _mark_info,
        "period_label": period_label,
        "unit_label": lambda metric: translate(UNIT_LABELS.get(metric.unit, metric.unit)),
    }


# --- the dashboard ----------------------------------------------------------------------


@bp.get("/", endpoint="dashboard")
@permission_required(flow.DASHBOARD_READ)
def dashboard() -> Any:
    """The KPI dashboard: one tile per metric over the chosen period, grouped by plugin."""
    session, user = db(), current_actor()
    period, error = _period_or_error()
    if period is None:
        flash(error or "", "danger")
        return (
            render_template(
                "kpi/dashboard.html",
                groups=[],
                period=None,
                args={},
                picker=_picker(None),
                title=_("KPI dashboard"),
                **_template_helpers(),
            ),
            400,
        )
    live = live_requested()
    found, computed_at = tiles(session, user, period, live=live)
    return render_template(
        "kpi/dashboard.html",
        groups=_grouped(found),
        period=period,
        computed_at=computed_at,
        live=live,
        args=period_args(period),
        picker=_picker(period),
        title=_("KPI dashboard"),
        **_template_helpers(),
    )


@bp.get("/export.<fmt>", endpoint="dashboard_export")
@permission_required(flow.DASHBOARD_READ)
def dashboard_export(fmt: str) -> Any:
    """The dashboard's tiles as CSV or XLSX (one row per metric)."""
    if fmt not in exports.FORMATS:
        abort(404)
    session, user = db(), current_actor()
    period, error = _period_or_error()
    if period is None:
        return _error_page(error or "", 400)
    header = [
        _("Group"),
        _("Key"),
        _("Metric"),
        _("Value"),
        _("Unit"),
        _("Numerator"),
        _("Denominator"),
        _("Target"),
        _("Mark"),
        _("From"),
        _("To"),
    ]
    rows = [
        [
            translate(PLUGIN_TITLES.get(t.metric.plugin, t.metric.plugin)),
            t.metric.key,
            translate(t.metric.label),
            t.value.value,
            translate(UNIT_LABELS.get(t.metric.unit, t.metric.unit)),
            t.value.numerator,
            t.value.denominator,
            t.target,
            translate(MARKS[t.mark][0]) if t.mark else "",
            period.start,
            period.end,
        ]
        for t in tiles(session, user, period, live=live_requested())[0]
    ]
    return exports.export_response(fmt, f"kpi-dashboard-{period.start.isoformat()}", header, rows)


def _error_page(message: str, status: int) -> tuple[str, int]:
    flash(message, "danger")
    return render_template("kpi/metric_error.html", title=_("KPI"), message=message), status


# --- the metric page -------------------------------------------------------------------


@dataclass
class _Context:
    session: Session
    user: User
    metric: Metric
    period: Period
    dimensions: dict[str, Dimension]
    filters: dict[str, Any]


def _context(key: str) -> _Context | tuple[str, int]:
    """The metric, period and filters of the request, or the 400 page when they are bad."""
    session, user = db(), current_actor()
    metric = _metric_or_404(key)
    period, error = _period_or_error()
    if period is None:
        return _error_page(error or "", 400)
    dimensions = engine.collect_dimensions(session_registry(session))
    filters = parse_filters(metric, dimensions, request.args)
    return _Context(session, user, metric, period, dimensions, filters)


def _dimension_choice(ctx: _Context) -> Dimension | None:
    available = engine.metric_dimensions(ctx.metric, ctx.dimensions)
    if not available:
        return None
    wanted = request.args.get("dimension", "").strip()
    for dimension in available:
        if dimension.key == wanted:
            return dimension
    if wanted:
        flash(_("The metric cannot be broken down by %(dimension)s.", dimension=wanted), "warning")
    return available[0]


@bp.get("/metrics/<key>", endpoint="metric")
@permission_required(flow.DASHBOARD_READ)
def metric_page(key: str) -> Any:
    """A metric: formula, value against target, trend chart, breakdown by a dimension, drill-down links."""
    ctx = _context(key)
    if not isinstance(ctx, _Context):
        return ctx
    session, metric, period = ctx.session, ctx.metric, ctx.period
    dimension = _dimension_choice(ctx)
    try:
        value = engine.measure(session, metric, period, viewer=ctx.user, filters=ctx.filters)
        trend = engine.series(
            session, metric, periods.trend(period, TREND_LENGTH), viewer=ctx.user, filters=ctx.filters
        )
        parts = (
            engine.breakdown(session, metric, period, dimension.key, viewer=ctx.user, filters=ctx.filters)
            if dimension
            else []
        )
    except KpiError as exc:
        return _error_page(exc.localized(), 400 if exc.status == 422 else exc.status)
    target = target_for(session, metric, ctx.user)
    mark = engine.mark(metric, value.value, target, amber_band(session))
    suffix = unit_suffix(metric)
    label = translate(metric.label)
    points = [(period_label(p), v.value) for p, v in trend]
    names = [(translate(part.name) or _("(none)"), part) for part in parts]
    args = {**period_args(period), **filter_args(ctx.filters)}
    filter_names = _filter_names(ctx)
    return render_template(
        "kpi/metric.html",
        metric=metric,
        label=label,
        period=period,
        value=value,
        target=target,
        mark=mark,
        trend=trend,
        trend_chart=charts.line_chart(points, target=target, unit=suffix, title=label),
        dimension=dimension,
        available=engine.metric_dimensions(metric, ctx.dimensions),
        parts=names,
        bars=charts.bar_chart([(name, part.value.value) for name, part in names], unit=suffix, title=label)
        if names
        else None,
        filters=ctx.filters,
        filter_names=filter_names,
        args=args,
        period_args=period_args,
        filter_args=filter_args,
        none_value=NONE_VALUE,
        picker=_picker(
            period,
            "kpi.metric",
            key=metric.key,
            dimension=dimension.key if dimension else "",
            **filter_args(ctx.filters),
        ),
        title=label,
        **_template_helpers(),
    )


def _seen(ctx: _Context, key: str) -> bool:
    """Whether the filtered value occurs among the facts the viewer may see (only then is it named).

    A filter typed into the address (``?customer=<any id>``) must not reveal the name of a
    customer or salesperson outside the viewer's scope: it is named only when at least one
    in-scope fact of the period carries it.
    """
    try:
        found = engine.measure(ctx.session, ctx.metric, ctx.period, viewer=ctx.user, filters={key: ctx.filters[key]})
        return bool(found.numerator or found.denominator)
    except Exception:
        return False


def _filter_names(ctx: _Context) -> list[tuple[str, str, dict[str, str]]]:
    """Each active filter as (dimension label, value name, args without it) for the "remove" chips."""
    shown = []
    for key, raw in ctx.filters.items():
        dimension = ctx.dimensions[key]
        name = _("(none)") if raw is None else str(raw)
        if raw is not None and dimension.names is not None and _seen(ctx, key):
            try:
                value: Any = int(raw) if str(raw).lstrip("-").isdigit() else raw
                name = translate(dimension.names(ctx.session, [value]).get(value, name)) or name
            except Exception:  # a name lookup must never break the page
                pass
        rest = {k: v for k, v in filter_args(ctx.filters).items() if k != key}
        shown.append((translate(dimension.label), name, rest))
    return shown


# --- drill-down -------------------------------------------------------------------------


def _page_number() -> tuple[int, int]:
    raw_page, raw_size = request.args.get("page", "1"), request.args.get("size", str(PAGE_SIZES[0]))
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
    size = int(raw_size) if raw_size.isdigit() and int(raw_size) in PAGE_SIZES else PAGE_SIZES[0]
    return page, size


@bp.get("/metrics/<key>/orders", endpoint="metric_orders")
@permission_required(flow.DASHBOARD_READ)
def metric_orders(key: str) -> Any:
    """The orders behind a number (drill-down), optionally only the problems, paginated."""
    ctx = _context(key)
    if not isinstance(ctx, _Context):
        return ctx
    problems = request.args.get("problems") in ("1", "true", "on")
    number, size = _page_number()
    try:
        rows, total = engine.fact_orders(
            ctx.session,
            ctx.metric,
            ctx.period,
            viewer=ctx.user,
            filters=ctx.filters,
            problems=problems,
            limit=size,
            offset=(number - 1) * size,
        )
        if not rows and total and number > 1:
            number = max(1, -(-total // size))
            rows, total = engine.fact_orders(
                ctx.session,
                ctx.metric,
                ctx.period,
                viewer=ctx.user,
                filters=ctx.filters,
                problems=problems,
                limit=size,
                offset=(number - 1) * size,
            )
    except KpiError as exc:
        return _error_page(exc.localized(), 400 if exc.status == 422 else exc.status)
    args: dict[str, Any] = {"key": ctx.metric.key, **period_args(ctx.period), **filter_args(ctx.filters)}
    if problems:
        args["problems"] = "1"
    page = Page(rows, total, number, size, "", "kpi.metric_orders", args)
    label = translate(ctx.metric.label)
    return render_template(
        "kpi/metric_orders.html",
        metric=ctx.metric,
        label=label,
        period=ctx.period,
        page=page,
        problems=problems,
        filter_names=_filter_names(ctx),
        base_args={k: v for k, v in args.items() if k not in ("key", "problems")},
        status_label=status_label,
        title=_("Orders behind %(metric)s", metric=label),
        **_template_helpers(),
    )


# --- exports -----------------------------------------------------------------------------


@bp.get("/metrics/<key>/export.<fmt>", endpoint="export")
@permission_required(flow.DASHBOARD_READ)
def export(key: str, fmt: str) -> Any:
    """A table of the metric page as CSV or XLSX: ``table=trend``, ``breakdown`` (default) or ``orders``."""
    if fmt not in exports.FORMATS:
        abort(404)
    ctx = _context(key)
    if not isinstance(ctx, _Context):
        return ctx
    table = request.args.get("table", "breakdown")
    if table not in TABLES:
        return _error_page(_("Unknown table %(table)s.", table=table), 400)
    try:
        header, rows = _export_table(ctx, table)
    except KpiError as exc:
        return _error_page(exc.localized(), 400 if exc.status == 422 else exc.status)
    name = f"kpi-{ctx.metric.key}-{table}-{ctx.period.start.isoformat()}"
    return exports.export_response(fmt, name, header, rows)


def _export_table(ctx: _Context, table: str) -> tuple[list[str], list[list[Any]]]:
    metric, period, user = ctx.metric, ctx.period, ctx.user
    if table == "trend":
        trend = engine.series(
            ctx.session, metric, periods.trend(period, TREND_LENGTH), viewer=user, filters=ctx.filters
        )
        header = [_("Period"), _("From"), _("To"), _("Value"), _("Numerator"), _("Denominator")]
        return header, [[period_label(p), p.start, p.end, v.value, v.numerator, v.denominator] for p, v in trend]
    if table == "orders":
        problems = request.args.get("problems") in ("1", "true", "on")
        found, _total = engine.fact_orders(
            ctx.session, metric, period, viewer=user, filters=ctx.filters, problems=problems, limit=None
        )
        header = [_("Order"), _("Customer"), _("Status"), _("Value"), _("Numerator"), _("Denominator")]
        return header, [
            [o.number, o.customer, status_label(o.status), o.value, o.numerator, o.denominator] for o in found
        ]
    dimension = _dimension_choice(ctx)
    if dimension is None:
        return [_("Value")], []
    parts = engine.breakdown(ctx.session, metric, period, dimension.key, viewer=user, filters=ctx.filters)
    header = [translate(dimension.label), _("Key"), _("Value"), _("Numerator"), _("Denominator")]
    return header, [
        [
            translate(part.name) or _("(none)"),
            "" if part.key is None else str(part.key),
            part.value.value,
            part.value.numerator,
            part.value.denominator,
        ]
        for part in parts
    ]

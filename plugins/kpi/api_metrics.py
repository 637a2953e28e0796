"""API: the KPI metrics — values, trends, breakdowns and the orders behind them (``/api/v1/kpi``).

Why: a BI tool or a wall display reads the same figures as the dashboard (KP-1): every
enabled metric over a period with its target and red/amber/green mark, one metric's
12-period trend, its breakdown by a dimension, and the drill-down list of orders. All in
the caller's data scope (a branch manager's token sees their branch only). Refusals answer
in the error envelope: 401 without a token, 403 without ``kpi.dashboard.read``, 404 for a
metric no enabled plugin provides, 422 with details for a bad period, dimension or filter.

Periods are the picker's parameters (``period=day|week|month|quarter|custom``, ``date``,
``start``, ``end``); any metric dimension (``branch=3``, ``remote=remote``; ``~`` for
"none") filters. Numbers are decimal strings; a value is null when nothing was measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields, validate

from core.api.auth import api_user, require_api_user
from core.api.common import errors
from core.labels import N_
from core.models import User
from core.settings import session_registry
from core.web import db
from plugins.kpi import engine, flow, periods, rollups
from plugins.kpi.dashboard_views import (
    TREND_LENGTH,
    amber_band,
    parse_filters,
    period_label,
    target_for,
)
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Metric, Period

blp = Blueprint("kpi_api_metrics", __name__, url_prefix="/api/v1/kpi", description="KPI: metrics.")
blp.before_request(require_api_user)

NOT_ALLOWED = N_("You may not read the KPI dashboard.")
#: Query parameters that are not dimension filters.
_RESERVED = {"period", "date", "start", "end", "dimension", "problems", "page", "size"}


class PeriodQuerySchema(Schema):
    """The period (as on the dashboard's picker) and dimension filters (any other parameter)."""

    class Meta:
        unknown = INCLUDE

    period = fields.String(metadata={"description": "day, week, month (default), quarter or custom."})
    date = fields.String(metadata={"description": "A day of the period (YYYY-MM-DD; default today)."})
    start = fields.String(metadata={"description": "First day of a custom period (YYYY-MM-DD)."})
    end = fields.String(metadata={"description": "Last day of a custom period, inclusive (YYYY-MM-DD)."})


class MetricListQuerySchema(PeriodQuerySchema):
    """The period, and whether to compute every figure now."""

    live = fields.Boolean(
        load_default=False,
        metadata={"description": "Compute every figure now instead of reading fresh rollups (slower)."},
    )


class BreakdownQuerySchema(PeriodQuerySchema):
    """The period, filters and the dimension to split by."""

    dimension = fields.String(required=True, metadata={"description": "A dimension key of the metric."})


class OrdersQuerySchema(PeriodQuerySchema):
    """The period, filters and which page of the orders."""

    problems = fields.Boolean(
        load_default=False, metadata={"description": "Only the orders pulling the metric the wrong way."}
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


def _number() -> fields.Decimal:
    return fields.Decimal(as_string=True, allow_none=True)


class PeriodSchema(Schema):
    """A period measured."""

    kind = fields.String(required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    label = fields.String(required=True)


class DimensionSchema(Schema):
    """A dimension a metric can be split by."""

    key = fields.String(required=True)
    label = fields.String(required=True)


class MetricSchema(Schema):
    """A metric over a period, with its target and mark."""

    key = fields.String(required=True)
    label = fields.String(required=True)
    description = fields.String(required=True, metadata={"description": "The formula."})
    unit = fields.String(required=True)
    aggregate = fields.String(required=True, metadata={"description": "percent, mean or sum."})
    direction = fields.String(required=True, metadata={"description": "higher or lower (is better)."})
    places = fields.Integer(required=True)
    plugin = fields.String(required=True)
    dimensions = fields.List(fields.Nested(DimensionSchema), required=True)
    value = _number()
    numerator = _number()
    denominator = _number()
    target = _number()
    mark = fields.String(allow_none=True, metadata={"description": "green, amber, red or null (no target/value)."})


class MetricListSchema(Schema):
    """Every enabled metric over a period."""

    period = fields.Nested(PeriodSchema, required=True)
    computed_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "When the rolled-up figures were computed; null when all were computed now."},
    )
    items = fields.List(fields.Nested(MetricSchema), required=True)


class TrendPointSchema(Schema):
    """The metric over one period of the trend."""

    period = fields.Nested(PeriodSchema, required=True)
    value = _number()
    numerator = _number()
    denominator = _number()


class MetricDetailSchema(MetricSchema):
    """A metric over a period, its filters and its 12-period trend (oldest first)."""

    period = fields.Nested(PeriodSchema, required=True)
    filters = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True), required=True)
    trend = fields.List(fields.Nested(TrendPointSchema), required=True)


class PartSchema(Schema):
    """One value of the dimension and the metric for it."""

    key = fields.String(allow_none=True, metadata={"description": "The dimension's value (an id, a code); null: none."})
    name = fields.String(required=True)
    value = _number()
    numerator = _number()
    denominator = _number()


class BreakdownSchema(Schema):
    """A metric split by a dimension (largest denominator first)."""

    metric = fields.String(required=True)
    dimension = fields.String(required=True)
    period = fields.Nested(PeriodSchema, required=True)
    parts = fields.List(fields.Nested(PartSchema), required=True)


class FactOrderSchema(Schema):
    """An order behind the number with its share of numerator and denominator."""

    order_id = fields.Integer(required=True)
    number = fields.String(required=True)
    customer = fields.String(required=True)
    status = fields.String(required=True)
    value = _number()
    numerator = _number()
    denominator = _number()


class FactOrdersSchema(Schema):
    """A page of the orders behind a metric (newest first)."""

    metric = fields.String(required=True)
    period = fields.Nested(PeriodSchema, required=True)
    problems = fields.Boolean(required=True)
    page = fields.Integer(required=True)
    size = fields.Integer(required=True)
    total = fields.Integer(required=True)
    items = fields.List(fields.Nested(FactOrderSchema), required=True)


# --- helpers -------------------------------------------------------------------------------


def _reader() -> User:
    user = api_user()
    if not user.can(flow.DASHBOARD_READ):
        raise KpiError("forbidden", NOT_ALLOWED, 403)
    return user


def _period() -> Period:
    return periods.parse_period(request.args)


def _metric(key: str) -> Metric:
    return engine.get_metric(session_registry(db()), key)


def _filters(metric: Metric) -> dict[str, Any]:
    """The dimension filters of the query; a parameter naming no dimension of the metric is a 422."""
    dimensions = engine.collect_dimensions(session_registry(db()))
    allowed = {d.key for d in engine.metric_dimensions(metric, dimensions)}
    unknown = sorted(k for k in request.args if k not in _RESERVED and k not in allowed)
    if unknown:
        raise KpiError(
            "invalid",
            N_("The metric %(metric)s cannot be filtered by %(dimension)s."),
            422,
            {name: [f"Not a dimension of {metric.key}."] for name in unknown},
            metric=metric.key,
            dimension=", ".join(unknown),
        )
    return parse_filters(metric, dimensions, request.args)


def _period_out(period: Period) -> dict[str, Any]:
    return {"kind": period.kind, "start": period.start, "end": period.end, "label": period_label(period)}


def _numbers(value: engine.MetricValue) -> dict[str, Decimal | None]:
    return {"value": value.value, "numerator": value.numerator, "denominator": value.denominator}


def _metric_out(
    metric: Metric, value: engine.MetricValue, target: Decimal | None, band: Decimal, dimensions: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "key": metric.key,
        "label": metric.label,
        "description": metric.description,
        "unit": metric.unit,
        "aggregate": metric.aggregate,
        "direction": metric.direction,
        "places": metric.places,
        "plugin": metric.plugin,
        "dimensions": [{"key": d.key, "label": d.label} for d in engine.metric_dimensions(metric, dimensions)],
        **_numbers(value),
        "target": target,
        "mark": engine.mark(metric, value.value, target, band),
    }


# --- endpoints -----------------------------------------------------------------------------


@blp.route("/metrics", methods=["GET"])
@blp.arguments(MetricListQuerySchema, location="query")
@blp.response(200, MetricListSchema)
@errors(blp, 401, 403, 422)
def list_metrics(args: dict[str, Any]) -> dict[str, Any]:
    """Every enabled metric over the period (default: this month) in the caller's scope, with target and mark.

    Read from the period's fresh rollups where there are some (``computed_at`` says when
    they were computed), else computed now; ``live=true`` always computes now.
    """
    user, session = _reader(), db()
    period = _period()
    band = amber_band(session)
    dimensions = engine.collect_dimensions(session_registry(session))
    metrics = engine.collect_metrics(session_registry(session))
    values, computed_at = rollups.measure_all(session, metrics, period, viewer=user, live=args["live"])
    items = [
        _metric_out(metric, values[key], target_for(session, metric, user), band, dimensions)
        for key, metric in metrics.items()
    ]
    return {"period": _period_out(period), "computed_at": computed_at, "items": items}


@blp.route("/metrics/<key>", methods=["GET"])
@blp.arguments(PeriodQuerySchema, location="query")
@blp.response(200, MetricDetailSchema)
@errors(blp, 401, 403, 404, 422)
def get_metric(args: dict[str, Any], key: str) -> dict[str, Any]:
    """One metric over the period, filtered by dimension values, with its 12-period trend."""
    user, session = _reader(), db()
    metric = _metric(key)
    period = _period()
    filters = _filters(metric)
    value = engine.measure(session, metric, period, viewer=user, filters=filters)
    trend = engine.series(session, metric, periods.trend(period, TREND_LENGTH), viewer=user, filters=filters)
    dimensions = engine.collect_dimensions(session_registry(session))
    out = _metric_out(metric, value, target_for(session, metric, user), amber_band(session), dimensions)
    out.update(
        period=_period_out(period),
        filters={k: None if v is None else str(v) for k, v in filters.items()},
        trend=[{"period": _period_out(p), **_numbers(v)} for p, v in trend],
    )
    return out


@blp.route("/metrics/<key>/breakdown", methods=["GET"])
@blp.arguments(BreakdownQuerySchema, location="query")
@blp.response(200, BreakdownSchema)
@errors(blp, 401, 403, 404, 422)
def get_breakdown(args: dict[str, Any], key: str) -> dict[str, Any]:
    """The metric over the period split by ``dimension`` (largest denominator first)."""
    user, session = _reader(), db()
    metric = _metric(key)
    period = _period()
    filters = _filters(metric)
    parts = engine.breakdown(session, metric, period, args["dimension"], viewer=user, filters=filters)
    return {
        "metric": metric.key,
        "dimension": args["dimension"],
        "period": _period_out(period),
        "parts": [{"key": None if p.key is None else str(p.key), "name": p.name, **_numbers(p.value)} for p in parts],
    }


@blp.route("/metrics/<key>/orders", methods=["GET"])
@blp.arguments(OrdersQuerySchema, location="query")
@blp.response(200, FactOrdersSchema)
@errors(blp, 401, 403, 404, 422)
def get_orders(args: dict[str, Any], key: str) -> dict[str, Any]:
    """The orders behind the metric's number (drill-down), newest first; ``problems=true`` only the wrong-way ones."""
    user, session = _reader(), db()
    metric = _metric(key)
    period = _period()
    filters = _filters(metric)
    page, size = args["page"], args["size"]
    rows, total = engine.fact_orders(
        session,
        metric,
        period,
        viewer=user,
        filters=filters,
        problems=args["problems"],
        limit=size,
        offset=(page - 1) * size,
    )
    return {
        "metric": metric.key,
        "period": _period_out(period),
        "problems": args["problems"],
        "page": page,
        "size": size,
        "total": total,
        "items": [
            {
                "order_id": o.order_id,
                "number": o.number,
                "customer": o.customer,
                "status": o.status,
                "value": o.value,
                "numerator": o.numerator,
                "denominator": o.denominator,
            }
            for o in rows
        ],
    }

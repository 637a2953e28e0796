"""Compute metrics in SQL: a value, a breakdown, a trend and the orders behind a number.

Every function here wraps a metric's fact select (:mod:`plugins.kpi.hookspecs`) in one
aggregate query: ``SUM(num)``, ``SUM(den)``, joined to the fact's order for the viewer's
data scope (``core.security.scopes``), the filters and the dimension asked for. No fact
is loaded into Python, so a month over a million orders stays one indexed query.

Data scope is never optional: each function takes ``viewer`` — a :class:`core.models.User`
(their scope applies; anonymous or inactive users see nothing) or :data:`EVERYONE` for
company-wide figures computed by jobs (the monthly evaluation, the monthly report).

Usage::

    metric = get_metric(registry, "logistics.on_time_delivery")
    measure(session, metric, period_of("month", day), viewer=user).value   # Decimal('96.50')
    breakdown(session, metric, month, "branch", viewer=user)              # [Part(...), ...]
    fact_orders(session, metric, month, viewer=user, problems=True)        # the late ones
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Select, and_, func, or_, select
from sqlalchemy.sql.elements import True_

from core.labels import N_
from core.models import Customer, Order, User
from core.plugins import PluginError
from core.security.scopes import customer_visible, order_scope
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import AGGREGATES, DIRECTIONS, UNITS, Dimension, Metric, Period

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Subquery
    from sqlalchemy.orm import Session

    from core.plugins import Registry


class _Everyone:
    """The viewer of company-wide figures (jobs, the monthly evaluation): no scope applies."""

    def __repr__(self) -> str:
        return "EVERYONE"


#: Pass as ``viewer`` for company-wide figures; only jobs and services acting for the company do.
EVERYONE = _Everyone()
Viewer = User | _Everyone | None


@dataclass(frozen=True)
class MetricValue:
    """A metric over one period: its value (None when nothing was measured) and the sums behind it."""

    value: Decimal | None
    numerator: Decimal
    denominator: Decimal


@dataclass(frozen=True)
class Part:
    """One row of a breakdown: the dimension's value, its display name and the metric for it."""

    key: Any
    name: str
    value: MetricValue


@dataclass(frozen=True)
class FactOrder:
    """An order behind a number (drill-down), with its share of the numerator and denominator."""

    order_id: int
    number: str
    customer: str
    status: str
    numerator: Decimal
    denominator: Decimal
    value: Decimal | None


# --- collecting what the plugins contribute ---------------------------------------


def _contributions(registry: Registry, hook_name: str, kind: type) -> list[tuple[str, Any]]:
    caller = getattr(registry.hook, hook_name, None)
    if caller is None:
        return []
    found: list[tuple[str, Any]] = []
    enabled = frozenset(registry.enabled)
    for impl in caller.get_hookimpls():  # in registration order
        owner = impl.plugin_name.split("+", 1)[0]
        arguments = {"enabled": enabled} if "enabled" in impl.argnames else {}
        for item in impl.function(**arguments) or ():
            if not isinstance(item, kind):
                raise PluginError(f"{hook_name} of plugin {owner!r} returned {item!r}, not a {kind.__name__}")
            found.append((owner, item))
    return found


def collect_metrics(registry: Registry) -> dict[str, Metric]:
    """Every metric the enabled plugins contribute, by key (core's order metrics first).

    Empty when kpi is disabled (the hook does not exist then). Raises
    :class:`core.plugins.PluginError` for a key contributed twice, an object that is not a
    :class:`Metric`, or an unknown unit, aggregate or direction.
    """
    found: dict[str, Metric] = {}
    for owner, item in _contributions(registry, "ordo_kpi_metrics", Metric):
        for what, value, allowed in (
            ("unit", item.unit, UNITS),
            ("aggregate", item.aggregate, AGGREGATES),
            ("direction", item.direction, DIRECTIONS),
        ):
            if value not in allowed:
                raise PluginError(f"metric {item.key!r} of plugin {owner!r} has unknown {what} {value!r}")
        if item.key in found:
            raise PluginError(f"duplicate metric {item.key!r} (from {found[item.key].plugin!r} and {owner!r})")
        found[item.key] = Metric(**{**item.__dict__, "plugin": owner})
    return found


def collect_dimensions(registry: Registry) -> dict[str, Dimension]:
    """Every dimension the enabled plugins contribute, by key (a key used twice stops)."""
    found: dict[str, Dimension] = {}
    for owner, item in _contributions(registry, "ordo_kpi_dimensions", Dimension):
        if item.key in found:
            raise PluginError(f"duplicate dimension {item.key!r} (from {found[item.key].plugin!r} and {owner!r})")
        found[item.key] = Dimension(**{**item.__dict__, "plugin": owner})
    return found


def get_metric(registry: Registry, key: str) -> Metric:
    """The metric ``key``; a 404 :class:`KpiError` when no enabled plugin provides it."""
    metric = collect_metrics(registry).get(key)
    if metric is None:
        raise KpiError("not_found", N_("No enabled plugin provides the metric %(key)s."), 404, key=key)
    return metric


def metric_dimensions(metric: Metric, dimensions: Mapping[str, Dimension]) -> list[Dimension]:
    """The dimensions ``metric`` can be split by that are there (a disabled plugin's are not)."""
    return [dimensions[key] for key in metric.dimensions if key in dimensions]


def dimension_for(metric: Metric, dimensions: Mapping[str, Dimension], key: str) -> Dimension:
    """The dimension ``key`` of ``metric``; a 422 :class:`KpiError` when the metric cannot be split so."""
    for dimension in metric_dimensions(metric, dimensions):
        if dimension.key == key:
            return dimension
    raise KpiError(
        "invalid",
        N_("The metric %(metric)s cannot be broken down by %(dimension)s."),
        422,
        {"dimension": [f"Not a dimension of {metric.key}."]},
        metric=metric.key,
        dimension=key,
    )


# --- arithmetic --------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def value_of(metric: Metric, numerator: Any, denominator: Any) -> MetricValue:
    """The metric's value from its sums: ``100·num/den``, ``num/den`` or ``num``, rounded to its places."""
    num, den = _decimal(numerator), _decimal(denominator)
    quantum = Decimal(1).scaleb(-metric.places)
    if metric.aggregate == "sum":
        value: Decimal | None = num.quantize(quantum, ROUND_HALF_UP)
    elif not den:
        value = None
    else:
        raw = num * 100 / den if metric.aggregate == "percent" else num / den
        value = raw.quantize(quantum, ROUND_HALF_UP)
    return MetricValue(value, num, den)


def mark(metric: Metric, value: Decimal | None, target: Decimal | None, band: Decimal) -> str | None:
    """The red/amber/green mark of ``value`` against ``target`` (None without one or the other).

    Green meets the target; amber misses it by at most ``band`` percent of the target;
    red misses it by more. "Meets" follows the metric's direction.
    """
    if value is None or target is None:
        return None
    slack = abs(target) * band / 100
    if metric.direction == "higher":
        return "green" if value >= target else "amber" if value >= target - slack else "red"
    return "green" if value <= target else "amber" if value <= target + slack else "red"


# --- the queries -------------------------------------------------------------------


def _scope_clause(facts: Subquery, viewer: Viewer) -> ColumnElement[bool] | None:
    """The WHERE clause limiting facts to ``viewer``'s scope (None: no limit)."""
    if isinstance(viewer, _Everyone):
        return None
    user = viewer if isinstance(viewer, User) else None
    orders = order_scope(user)
    if isinstance(orders, True_):
        return None
    by_order = and_(facts.c.order_id.is_not(None), orders)
    if "customer_id" in facts.c:
        return or_(by_order, and_(facts.c.order_id.is_(None), customer_visible(facts.c.customer_id, user)))
    return by_order


def _expression(facts: Subquery, dimension: Dimension) -> ColumnElement[Any]:
    if dimension.expression is None:
        if dimension.key not in facts.c:
            raise PluginError(f"the facts have no column {dimension.key!r} for the fact dimension")
        return facts.c[dimension.key]
    return dimension.expression()


def _coerce(expression: ColumnElement[Any], value: Any, key: str) -> Any:
    if value is None or not isinstance(value, str):
        return value
    if isinstance(expression.type, Integer):
        try:
            return int(value)
        except ValueError:
            raise KpiError(
                "invalid",
                N_("%(value)s is not a valid %(dimension)s."),
                422,
                {key: ["Not valid."]},
                value=value,
                dimension=key,
            ) from None
    return value


class _Query:
    """One metric over one period for one viewer, filtered: builds the aggregate selects."""

    def __init__(
        self,
        session: Session,
        metric: Metric,
        period: Period,
        viewer: Viewer,
        filters: Mapping[str, Any] | None,
    ) -> None:
        self.session, self.metric, self.period = session, metric, period
        self.facts = metric.facts(period).subquery("facts")
        self.dimensions = {d.key: d for d in metric_dimensions(metric, collect_dimensions_of(session))}
        self.needs_order = False
        self.where: list[ColumnElement[bool]] = []
        scope = _scope_clause(self.facts, viewer)
        if scope is not None:
            self.where.append(scope)
            self.needs_order = True
        for key, value in (filters or {}).items():
            expression = self.expression(key)
            coerced = _coerce(expression, value, key)
            self.where.append(expression.is_(None) if coerced is None else expression == coerced)

    def expression(self, key: str) -> ColumnElement[Any]:
        dimension = self.dimensions.get(key)
        if dimension is None:
            dimension_for(self.metric, self.dimensions, key)  # raises the 422
            raise AssertionError
        if dimension.expression is not None:
            self.needs_order = True
        return _expression(self.facts, dimension)

    def select(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns).select_from(self.facts)
        if self.needs_order:
            stmt = stmt.outerjoin(Order, Order.id == self.facts.c.order_id)
        return stmt.where(*self.where) if self.where else stmt

    def sums(self) -> tuple[Any, Any]:
        return func.coalesce(func.sum(self.facts.c.num), 0), func.coalesce(func.sum(self.facts.c.den), 0)


def collect_dimensions_of(session: Session) -> dict[str, Dimension]:
    """:func:`collect_dimensions` of the registry that opened ``session``."""
    from core.settings import session_registry

    return collect_dimensions(session_registry(session))


def measure(
    session: Session,
    metric: Metric,
    period: Period,
    *,
    viewer: Viewer,
    filters: Mapping[str, Any] | None = None,
) -> MetricValue:
    """``metric`` over ``period`` as ``viewer`` may see it, optionally filtered by dimension values.

    ``filters`` maps dimension keys to values (``{"branch": 3}``; None matches "none");
    an unknown dimension or a value of the wrong kind is a 422 :class:`KpiError`.
    """
    query = _Query(session, metric, period, viewer, filters)
    numerator, denominator = session.execute(query.select(*query.sums())).one()
    return value_of(metric, numerator, denominator)


def breakdown(
    session: Session,
    metric: Metric,
    period: Period,
    dimension: str,
    *,
    viewer: Viewer,
    filters: Mapping[str, Any] | None = None,
) -> list[Part]:
    """``metric`` over ``period`` split by ``dimension`` (largest denominator first, then name)."""
    query = _Query(session, metric, period, viewer, filters)
    expression = query.expression(dimension)
    key = expression.label("dimension_key")
    rows = session.execute(query.select(key, *query.sums()).group_by(key)).all()
    names = _names(session, query.dimensions[dimension], [row[0] for row in rows])
    parts = [
        Part(row[0], names.get(row[0], "" if row[0] is None else str(row[0])), value_of(metric, row[1], row[2]))
        for row in rows
    ]
    return sorted(parts, key=lambda part: (-part.value.denominator, -part.value.numerator, part.name))


def _names(session: Session, dimension: Dimension, values: Sequence[Any]) -> Mapping[Any, str]:
    present = [value for value in values if value is not None]
    if dimension.names is None or not present:
        return {}
    return dimension.names(session, present)


def series(
    session: Session,
    metric: Metric,
    periods: Iterable[Period],
    *,
    viewer: Viewer,
    filters: Mapping[str, Any] | None = None,
) -> list[tuple[Period, MetricValue]]:
    """``metric`` over each of ``periods`` (a trend), one aggregate query each."""
    return [(period, measure(session, metric, period, viewer=viewer, filters=filters)) for period in periods]


def fact_orders(
    session: Session,
    metric: Metric,
    period: Period,
    *,
    viewer: Viewer,
    filters: Mapping[str, Any] | None = None,
    problems: bool = False,
    limit: int | None = 50,
    offset: int = 0,
) -> tuple[list[FactOrder], int]:
    """The orders behind ``metric`` over ``period`` (drill-down) and how many there are.

    Each order with its own numerator and denominator; ``problems`` keeps only the orders
    that pull the metric the wrong way (for "higher is better": ``num < den``, the late
    deliveries; for "lower is better": ``num > 0``, the rejected or returned ones).
    Customer-level facts (no order) are not listed. Newest orders first.
    """
    query = _Query(session, metric, period, viewer, filters)
    query.needs_order = True
    numerator, denominator = query.sums()
    grouped = (
        query.select(Order.id.label("order_id"), numerator.label("num"), denominator.label("den"))
        .where(query.facts.c.order_id.is_not(None))
        .group_by(Order.id)
    )
    if problems:
        wrong_way = numerator < denominator if metric.direction == "higher" else numerator > 0
        grouped = grouped.having(wrong_way)
    per_order = grouped.subquery("per_order")
    total = session.scalar(select(func.count()).select_from(per_order)) or 0
    stmt = (
        select(Order.id, Order.number, Customer.name, Order.status, per_order.c.num, per_order.c.den)
        .join(per_order, per_order.c.order_id == Order.id)
        .join(Customer, Customer.id == Order.customer_id)
        .order_by(Order.id.desc())
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = [
        FactOrder(
            row[0], row[1], row[2], row[3], _decimal(row[4]), _decimal(row[5]), value_of(metric, row[4], row[5]).value
        )
        for row in session.execute(stmt)
    ]
    return rows, total


def parse_number(value: Any, field: str = "value") -> Decimal:
    """``value`` as a finite Decimal; a 422 :class:`KpiError` naming ``field`` when it is not a number."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise KpiError("invalid", N_("%(value)s is not a number."), 422, {field: ["Not a number."]}, value=str(value))
    return number


__all__ = [
    "EVERYONE",
    "FactOrder",
    "MetricValue",
    "Part",
    "breakdown",
    "collect_dimensions",
    "collect_metrics",
    "fact_orders",
    "get_metric",
    "mark",
    "measure",
    "metric_dimensions",
    "parse_number",
    "series",
    "value_of",
]

"""Logistics' metrics for the kpi plugin (KP-1), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.logistics.bridges.kpi"}``,
so logistics never imports kpi when kpi is off. Each metric is a SQL select of *fact
rows* (:mod:`plugins.kpi.hookspecs`) that kpi adds up within the viewer's scope; nothing
is loaded into Python. Times are stored in UTC and compared as company dates.

A shipment is *delivered* at ``delivered_at`` (the carrier's or the proof of delivery's
time) or, without one, at ``receipt_at`` (the customer's confirmation); cancelled
shipments never count.

- ``logistics.on_time_delivery`` (percent, higher, target 98): one fact per shipment
  delivered in the period that has a promised date; num 1 when the company date of
  delivery is on or before ``promised_date``. Drill-down of the problems lists the orders
  with late shipments. Split remote/local by the order dimension ``remote``.
- ``logistics.fill_rate`` (percent, higher, 95): one fact per order line whose *first*
  shipment (earliest ``shipped_at``, then lowest id, among the shipments with stock moves
  for the line) left in the period; num 1 when that shipment's moves cover the line's
  whole quantity.
- ``logistics.shipping_accuracy`` (percent, higher, 99): one fact per shipment delivered
  in the period; num 1 when the customer raised no objection to it; fact dimension
  ``objection`` (the first objection's kind, ``none`` without one).
- ``logistics.return_rate`` (percent, lower, 2): units received back on returns received
  in the period (num, fact dimension ``return_reason``) per unit shipped in the period (den: the
  shipment stock moves dated in it).
- ``logistics.exceptions`` (sum, count, lower): one per logistics exception reported in
  the period; fact dimension ``exception_kind`` (delay, damage, loss).

``ordo_kpi_report_sections`` adds the daily report's ``shipped`` section and
``ordo_kpi_history`` writes shipments, moves, objections, returns and exceptions for
generated history orders.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, case, func, insert, literal, null, or_, select, union_all

from core import hookimpl
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from core.models import Customer, Order, OrderLine
from plugins.kpi.history import insert_numbered, insert_rows
from plugins.kpi.hookspecs import ORDER_DIMENSIONS, Dimension, Metric, Period, ReportSection
from plugins.kpi.sql import company_date
from plugins.logistics.models import (
    EXCEPTION_KINDS,
    OBJECTION_KINDS,
    RETURN_REASONS,
    LogisticsCarrier,
    LogisticsException,
    LogisticsLocation,
    LogisticsMove,
    LogisticsObjection,
    LogisticsReturn,
    LogisticsReturnLine,
    LogisticsShipment,
    LogisticsShipmentLine,
    LogisticsWarehouse,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from plugins.kpi.hookspecs import HistoryBatch, HistoryOrder

NO_OBJECTION = "none"


def _delivered_at() -> ColumnElement[dt.datetime]:
    """When a shipment was delivered: ``delivered_at``, else the customer's receipt."""
    return func.coalesce(LogisticsShipment.delivered_at, LogisticsShipment.receipt_at)


def _delivered_in(period: Period) -> ColumnElement[bool]:
    """The shipment was delivered in ``period`` (written so each half can use its index)."""
    return and_(
        LogisticsShipment.status != "cancelled",
        or_(
            period.within(LogisticsShipment.delivered_at),
            and_(LogisticsShipment.delivered_at.is_(None), period.within(LogisticsShipment.receipt_at)),
        ),
    )


def on_time_delivery(period: Period) -> Select[Any]:
    """Facts: each shipment delivered in the period with a promised date; num 1 when on time."""
    on_time = company_date(_delivered_at()) <= LogisticsShipment.promised_date
    return select(
        LogisticsShipment.order_id.label("order_id"),
        case((on_time, 1), else_=0).label("num"),
        literal(1).label("den"),
    ).where(_delivered_in(period), LogisticsShipment.promised_date.is_not(None))


def fill_rate(period: Period) -> Select[Any]:
    """Facts: each order line first shipped in the period; num 1 when that shipment was complete."""
    lines_shipped_now = (
        select(LogisticsMove.order_line_id)
        .join(LogisticsShipment, LogisticsShipment.id == LogisticsMove.shipment_id)
        .where(LogisticsMove.kind == "shipment", period.within(LogisticsShipment.shipped_at))
    )
    per_shipment = (
        select(
            LogisticsMove.order_line_id.label("line_id"),
            LogisticsShipment.shipped_at.label("shipped_at"),
            (-func.sum(LogisticsMove.quantity)).label("moved"),
            func.row_number()
            .over(
                partition_by=LogisticsMove.order_line_id,
                order_by=(LogisticsShipment.shipped_at, LogisticsMove.shipment_id),
            )
            .label("rank"),
        )
        .join(LogisticsShipment, LogisticsShipment.id == LogisticsMove.shipment_id)
        .where(
            LogisticsMove.kind == "shipment",
            LogisticsShipment.shipped_at.is_not(None),
            LogisticsMove.order_line_id.in_(lines_shipped_now),
        )
        .group_by(LogisticsMove.order_line_id, LogisticsMove.shipment_id, LogisticsShipment.shipped_at)
        .subquery("per_shipment")
    )
    return (
        select(
            OrderLine.order_id.label("order_id"),
            case((per_shipment.c.moved >= OrderLine.quantity, 1), else_=0).label("num"),
            literal(1).label("den"),
        )
        .select_from(per_shipment)
        .join(OrderLine, OrderLine.id == per_shipment.c.line_id)
        .where(per_shipment.c.rank == 1, period.within(per_shipment.c.shipped_at))
    )


def shipping_accuracy(period: Period) -> Select[Any]:
    """Facts: each shipment delivered in the period; num 1 without objection; dimension ``objection``."""
    first_objection = (
        select(LogisticsObjection.kind)
        .where(LogisticsObjection.shipment_id == LogisticsShipment.id)
        .order_by(LogisticsObjection.id)
        .limit(1)
        .scalar_subquery()
    )
    return select(
        LogisticsShipment.order_id.label("order_id"),
        case((first_objection.is_(None), 1), else_=0).label("num"),
        literal(1).label("den"),
        func.coalesce(first_objection, NO_OBJECTION).label("objection"),
    ).where(_delivered_in(period))


def return_rate(period: Period) -> Select[Any]:
    """Facts: units shipped in the period (den) and units received back on returns in it (num, by reason).

    The shipment rows have no ``return_reason``: a breakdown by reason shows the units
    returned per reason, and the shipped units in the part without a reason.
    """
    shipped = select(
        LogisticsMove.order_id.label("order_id"),
        literal(0).label("num"),
        (-LogisticsMove.quantity).label("den"),
        null().label("return_reason"),
    ).where(LogisticsMove.kind == "shipment", period.within(LogisticsMove.at))
    returned = (
        select(
            LogisticsReturn.order_id.label("order_id"),
            LogisticsReturnLine.received_quantity.label("num"),
            literal(0).label("den"),
            LogisticsReturnLine.reason.label("return_reason"),
        )
        .join(LogisticsReturn, LogisticsReturn.id == LogisticsReturnLine.return_id)
        .where(
            LogisticsReturn.status.in_(("received", "closed")),
            LogisticsReturnLine.received_quantity.is_not(None),
            period.within(LogisticsReturn.received_at),
        )
    )
    both = union_all(shipped, returned).subquery("moved")
    return select(both.c.order_id, both.c.num, both.c.den, both.c.return_reason)


def exceptions(period: Period) -> Select[Any]:
    """Facts: each logistics exception reported in the period; dimension ``exception_kind``."""
    return select(
        LogisticsException.order_id.label("order_id"),
        literal(1).label("num"),
        literal(1).label("den"),
        LogisticsException.kind.label("exception_kind"),
    ).where(period.within(LogisticsException.reported_at))


METRICS = (
    Metric(
        "logistics.on_time_delivery",
        N_("On-time delivery rate"),
        "percent",
        "higher",
        N_(
            "Of the shipments delivered in the period (delivery time, else the customer's receipt) that have a "
            "promised date, the share delivered on or before it (company dates)."
        ),
        on_time_delivery,
        target=Decimal("98"),
    ),
    Metric(
        "logistics.fill_rate",
        N_("Fill rate"),
        "percent",
        "higher",
        N_("Of the order lines first shipped in the period, the share shipped complete in that first shipment."),
        fill_rate,
        target=Decimal("95"),
    ),
    Metric(
        "logistics.shipping_accuracy",
        N_("Shipping accuracy"),
        "percent",
        "higher",
        N_("Of the shipments delivered in the period, the share the customer did not object to."),
        shipping_accuracy,
        target=Decimal("99"),
        dimensions=(*ORDER_DIMENSIONS, "objection"),
    ),
    Metric(
        "logistics.return_rate",
        N_("Return rate"),
        "percent",
        "lower",
        N_("Units received back on returns in the period per unit shipped in the period."),
        return_rate,
        target=Decimal("2"),
        dimensions=(*ORDER_DIMENSIONS, "return_reason"),
    ),
    Metric(
        "logistics.exceptions",
        N_("Logistics exceptions"),
        "count",
        "lower",
        N_("Delays, damage and losses reported in the period."),
        exceptions,
        aggregate="sum",
        places=0,
        dimensions=(*ORDER_DIMENSIONS, "exception_kind"),
    ),
)


def _labels(choices: Mapping[str, str], extra: Mapping[str, str] | None = None) -> Any:
    def names(session: Session, values: Sequence[Any]) -> Mapping[Any, str]:
        known = {**choices, **(extra or {})}
        return {value: known.get(value, value) for value in values}

    return names


#: The fact dimensions of logistics' metrics.
DIMENSIONS = (
    Dimension("objection", N_("Objection"), names=_labels(OBJECTION_KINDS, {NO_OBJECTION: N_("No objection")})),
    Dimension("return_reason", N_("Return reason"), names=_labels(RETURN_REASONS)),
    Dimension("exception_kind", N_("Exception kind"), names=_labels(EXCEPTION_KINDS)),
)


@hookimpl(optionalhook=True)
def ordo_kpi_metrics() -> list[Metric]:
    """Logistics' metrics: on-time delivery, fill rate, shipping accuracy, return rate, exceptions."""
    return list(METRICS)


@hookimpl(optionalhook=True)
def ordo_kpi_dimensions() -> list[Dimension]:
    """The fact dimensions of logistics' metrics: objection, return reason, exception kind."""
    return list(DIMENSIONS)


# --- the daily report ---------------------------------------------------------------

SHIPPED_TITLE = N_("Shipped orders")
SHIPPED_COLUMNS = (N_("Order"), N_("Customer"), N_("Shipment"), N_("Carrier"), N_("Tracking number"))


@hookimpl(optionalhook=True)
def ordo_kpi_report_sections(session: Session, start: dt.datetime, end: dt.datetime) -> list[ReportSection]:
    """The daily report's ``shipped`` section: each shipment shipped in [start, end) with its order."""
    rows = session.execute(
        select(
            Order.id,
            Order.number,
            Customer.name,
            LogisticsShipment.number,
            func.coalesce(LogisticsCarrier.name, ""),
            LogisticsShipment.tracking_number,
        )
        .join(Order, Order.id == LogisticsShipment.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .outerjoin(LogisticsCarrier, LogisticsCarrier.id == LogisticsShipment.carrier_id)
        .where(
            LogisticsShipment.shipped_at >= start,
            LogisticsShipment.shipped_at < end,
            LogisticsShipment.status != "cancelled",
        )
        .order_by(LogisticsShipment.shipped_at, LogisticsShipment.id)
    ).all()
    return [ReportSection("shipped", SHIPPED_TITLE, SHIPPED_COLUMNS, [tuple(row) for row in rows])]


# --- generated history --------------------------------------------------------------


def _history_place(session: Session, batch: HistoryBatch) -> tuple[int, int, list[int]]:
    """The warehouse and location history ships from (created once) and the carriers to use."""
    warehouse_id = session.scalar(
        select(LogisticsWarehouse.id).order_by(LogisticsWarehouse.is_default.desc(), LogisticsWarehouse.id).limit(1)
    )
    if warehouse_id is None:
        company_id = session.scalar(select(Order.company_id).where(Order.id == batch.orders[0].id))
        warehouse_id = session.execute(
            insert(LogisticsWarehouse).returning(LogisticsWarehouse.id),
            [{"company_id": company_id, "code": "HIST", "name": "History warehouse", "is_default": True}],
        ).scalar_one()
    location_id = session.scalar(
        select(LogisticsLocation.id)
        .where(LogisticsLocation.warehouse_id == warehouse_id)
        .order_by(LogisticsLocation.sequence, LogisticsLocation.id)
    )
    if location_id is None:
        location_id = session.execute(
            insert(LogisticsLocation).returning(LogisticsLocation.id),
            [{"warehouse_id": warehouse_id, "code": "H-01", "sequence": 1}],
        ).scalar_one()
    carriers = list(session.scalars(select(LogisticsCarrier.id).where(LogisticsCarrier.active.is_(True))))
    return warehouse_id, location_id, carriers


def _day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(COMPANY_TIMEZONE).date()


def _plan(order: HistoryOrder, today: dt.date) -> list[dict[str, Any]] | None:
    """The shipments of one history order (times, promised date, lines), or None when not shipped yet."""
    rng = random.Random(order.seed * 7919 + 17)
    now = dt.datetime.combine(today, dt.time(18), COMPANY_TIMEZONE)
    start = order.confirmed_at
    end = order.completed_at or min(now, start + dt.timedelta(days=rng.uniform(3, 10)))
    span = end - start
    if span <= dt.timedelta(hours=2):
        return None
    shipped_at = start + span * rng.uniform(0.1, 0.35)
    delivered = order.completed_at is not None or rng.random() < 0.6
    delivered_at = start + span * rng.uniform(0.6, 0.85) if delivered else None
    day = _day_of(delivered_at) if delivered_at else _day_of(shipped_at) + dt.timedelta(days=3)
    late = delivered_at is not None and rng.random() < 0.05
    promised = day - dt.timedelta(days=rng.randint(1, 3)) if late else day + dt.timedelta(days=rng.randint(0, 2))
    lines = [(line_id, product_id, Decimal(quantity)) for line_id, product_id, quantity, _amount in order.lines]
    first = [(line_id, product_id, quantity) for line_id, product_id, quantity in lines]
    rest: list[tuple[int, int, Decimal]] = []
    if lines and rng.random() < 0.05 and lines[0][2] > 1:  # short: the first line ships in two
        line_id, product_id, quantity = lines[0]
        part = max(Decimal(1), (quantity / 2).to_integral_value())
        first[0] = (line_id, product_id, part)
        rest = [(line_id, product_id, quantity - part)]
    plans = [{"shipped_at": shipped_at, "delivered_at": delivered_at, "promised": promised, "lines": first}]
    if rest:
        second = shipped_at + (end - shipped_at) * 0.3
        plans.append({"shipped_at": second, "delivered_at": delivered_at, "promised": promised, "lines": rest})
    return plans


@hookimpl(optionalhook=True)
def ordo_kpi_history(session: Session, batch: HistoryBatch) -> None:
    """Shipments (≈5 % late, ≈5 % in two parts), moves, objections (≈1 %), returns (≈1.5 %), exceptions (≈3 %)."""
    if not batch.orders:
        return
    warehouse_id, location_id, carriers = _history_place(session, batch)
    keepers: list[int | None] = [*(batch.users.get("warehouse") or batch.users.get("admin") or ())] or [None]
    shipments: list[dict[str, Any]] = []
    planned: list[tuple[HistoryOrder, dict[str, Any]]] = []
    for order in batch.orders:
        for index, plan in enumerate(_plan(order, batch.today) or ()):
            rng = random.Random(order.seed * 31 + index)
            delivered_at = plan["delivered_at"]
            shipments.append(
                {
                    "number": f"HS{order.id:09d}-{index + 1}",
                    "order_id": order.id,
                    "warehouse_id": warehouse_id,
                    "status": "delivered" if delivered_at else "shipped",
                    "promised_date": plan["promised"],
                    "carrier_id": rng.choice(carriers) if carriers else None,
                    "tracking_number": f"{rng.randint(10**11, 10**12 - 1)}",
                    "goods_value": order.total,
                    "created_at": order.confirmed_at,
                    "packed_at": plan["shipped_at"],
                    "shipped_by_id": rng.choice(keepers),
                    "shipped_at": plan["shipped_at"],
                    "delivered_at": delivered_at,
                    "receipt_status": "confirmed" if delivered_at else "pending",
                    "receipt_at": delivered_at + dt.timedelta(hours=rng.uniform(1, 20)) if delivered_at else None,
                }
            )
            planned.append((order, plan))
    if not shipments:
        return
    ids = insert_numbered(session, LogisticsShipment, shipments)
    lines: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    objections: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    returns: list[tuple[HistoryOrder, dict[str, Any], tuple[int, int, Decimal]]] = []
    for shipment_id, (order, plan), row in zip(ids, planned, shipments, strict=True):
        for line_id, product_id, quantity in plan["lines"]:
            lines.append(
                {
                    "shipment_id": shipment_id,
                    "order_line_id": line_id,
                    "product_id": product_id,
                    "location_id": location_id,
                    "quantity": quantity,
                    "picked_quantity": quantity,
                }
            )
            moves.append(
                {
                    "kind": "shipment",
                    "product_id": product_id,
                    "warehouse_id": warehouse_id,
                    "location_id": location_id,
                    "quantity": -quantity,
                    "order_id": order.id,
                    "order_line_id": line_id,
                    "shipment_id": shipment_id,
                    "reference": row["number"],
                    "at": plan["shipped_at"],
                }
            )
        rng = random.Random(order.seed * 131 + shipment_id % 97)
        delivered_at = plan["delivered_at"]
        if delivered_at is not None and rng.random() < 0.01:
            objections.append(
                {
                    "shipment_id": shipment_id,
                    "order_id": order.id,
                    "kind": rng.choice(sorted(OBJECTION_KINDS)),
                    "description": "History",
                    "raised_at": row["receipt_at"],
                }
            )
        if rng.random() < 0.03:
            reported = plan["shipped_at"] + dt.timedelta(hours=rng.uniform(2, 30))
            problems.append(
                {
                    "shipment_id": shipment_id,
                    "order_id": order.id,
                    "kind": rng.choice(sorted(EXCEPTION_KINDS)),
                    "description": "History",
                    "status": "resolved",
                    "owner_id": row["shipped_by_id"],
                    "due_date": _day_of(reported) + dt.timedelta(days=3),
                    "reported_by_id": row["shipped_by_id"],
                    "reported_at": reported,
                    "resolved_by_id": row["shipped_by_id"],
                    "resolved_at": reported + dt.timedelta(days=1),
                }
            )
        if delivered_at is not None and order.completed_at is not None and rng.random() < 0.015 and plan["lines"]:
            returns.append((order, plan, plan["lines"][0]))
    insert_rows(session, LogisticsShipmentLine, lines)
    insert_rows(session, LogisticsMove, moves)
    insert_rows(session, LogisticsObjection, objections)
    insert_rows(session, LogisticsException, problems)
    _history_returns(session, returns, batch.today)


def _history_returns(
    session: Session, returns: list[tuple[HistoryOrder, dict[str, Any], tuple[int, int, Decimal]]], today: dt.date
) -> None:
    """Closed returns of part of one delivered line each, received a few days after delivery."""
    if not returns:
        return
    heads: list[dict[str, Any]] = []
    bodies: list[dict[str, Any]] = []
    limit = dt.datetime.combine(today, dt.time(18), COMPANY_TIMEZONE)
    per_order: dict[int, int] = {}
    for order, plan, (line_id, product_id, quantity) in returns:
        per_order[order.id] = per_order.get(order.id, 0) + 1  # one return per shipment at most
        rng = random.Random(order.seed * 977 + 5 + per_order[order.id])
        requested = plan["delivered_at"] + dt.timedelta(days=rng.uniform(1, 5))
        received = min(requested + dt.timedelta(days=rng.uniform(2, 6)), limit)
        reason = rng.choice(("quality", "quality", "damaged", "wrong_item"))
        heads.append(
            {
                "number": f"HR{order.id:09d}-{per_order[order.id]}",
                "order_id": order.id,
                "status": "closed",
                "requested_at": requested,
                "reviewed_at": requested,
                "approved_at": requested,
                "received_at": received,
                "closed_at": received,
            }
        )
        back = max(Decimal(1), (quantity / 4).to_integral_value())
        bodies.append(
            {
                "order_line_id": line_id,
                "product_id": product_id,
                "reason": reason,
                "quantity": back,
                "approved_quantity": back,
                "received_quantity": back,
            }
        )
    ids = insert_numbered(session, LogisticsReturn, heads)
    for return_id, body in zip(ids, bodies, strict=True):
        body["return_id"] = return_id
    insert_rows(session, LogisticsReturnLine, bodies)

"""Logistics' indicators for the kpi plugin (KP-1), loaded only when kpi is enabled too.

Registered by the manifest line ``extras = {"kpi": "plugins.logistics.bridges.kpi"}``,
so logistics never imports kpi when kpi is off. Every indicator measures the company
days ``start`` … ``end`` inclusive (:func:`plugins.kpi.indicators.period_bounds`); the
percentages have no value (None) when there was nothing to measure.

- ``logistics.on_time_delivery`` (percent): of the shipments delivered in the period —
  a shipment counts as delivered at ``delivered_at`` (the carrier's or the proof of
  delivery's time), or, without one, at ``receipt_at`` (the customer's confirmation) —
  the share delivered on or before their promised date (company date of delivery ≤
  ``promised_date``). Shipments without a promised date are not measured. Broken down
  by ``remote`` / ``local``, each part that group's own on-time rate.
- ``logistics.fill_rate`` (percent): of the order lines whose first shipment left in the
  period, the share shipped complete in that first shipment (its shipment moves cover the
  line's whole quantity).
- ``logistics.shipping_accuracy`` (percent): of the shipments delivered in the period (as
  above, with or without a promised date), the share the customer did not object to.
  Broken down by ``none`` (no objection) and each objection kind (damaged, short,
  wrong_item) over the same denominator.
- ``logistics.return_rate`` (percent): units returned in the period (received quantity of
  returns received in the period) per unit shipped in the period (shipment moves);
  broken down by return reason over the same denominator.
- ``logistics.exceptions`` (count): logistics exceptions reported in the period, broken
  down by kind (delay, damage, loss).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.clock import COMPANY_TIMEZONE
from core.labels import N_
from core.models import OrderLine
from plugins.kpi.hookspecs import Indicator, IndicatorValue
from plugins.kpi.indicators import period_bounds
from plugins.logistics.models import (
    LogisticsException,
    LogisticsMove,
    LogisticsObjection,
    LogisticsReturn,
    LogisticsReturnLine,
    LogisticsShipment,
)
from plugins.logistics.stock import q3


def _within(column: Any, start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """``column`` lies within the company days ``start`` … ``end`` inclusive."""
    lower, upper = period_bounds(start, end)
    condition: ColumnElement[bool] = column >= lower
    return condition & (column < upper) if upper is not None else condition


def _count(value: int, breakdown: dict[str, IndicatorValue] | None = None) -> IndicatorValue:
    """A plain count (0 is a value: nothing happened)."""
    number = Decimal(value)
    return IndicatorValue(number, number, Decimal(1), dict(breakdown or {}))


def delivered_shipments(session: Session, start: dt.date, end: dt.date) -> list[tuple[LogisticsShipment, dt.date]]:
    """The shipments delivered in the period with their company delivery day (delivered_at, else receipt_at)."""
    shipments = session.scalars(
        select(LogisticsShipment)
        .where(
            LogisticsShipment.status != "cancelled",
            or_(
                _within(LogisticsShipment.delivered_at, start, end),
                and_(LogisticsShipment.delivered_at.is_(None), _within(LogisticsShipment.receipt_at, start, end)),
            ),
        )
        .order_by(LogisticsShipment.id)
    )
    found = []
    for shipment in shipments:
        moment = shipment.delivered_at or shipment.receipt_at
        assert moment is not None
        found.append((shipment, moment.astimezone(COMPANY_TIMEZONE).date()))
    return found


def on_time_delivery(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Shipments delivered in the period on or before their promised date / those with a promised date."""
    measured: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    for shipment, day in delivered_shipments(session, start, end):
        if shipment.promised_date is None:
            continue
        group = "remote" if shipment.remote else "local"
        measured[group] += 1
        if day <= shipment.promised_date:
            on_time[group] += 1
    breakdown = {group: IndicatorValue.ratio(on_time[group], measured[group]) for group in sorted(measured)}
    return IndicatorValue.ratio(sum(on_time.values()), sum(measured.values()), breakdown)


def fill_rate(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Order lines whose first shipment left in the period and shipped complete in it / those lines."""
    shipped_in_period = (
        select(LogisticsMove.order_line_id)
        .join(LogisticsShipment, LogisticsShipment.id == LogisticsMove.shipment_id)
        .where(LogisticsMove.kind == "shipment", _within(LogisticsShipment.shipped_at, start, end))
        .distinct()
    )
    issued = (
        select(
            LogisticsMove.order_line_id.label("line_id"),
            LogisticsMove.shipment_id.label("shipment_id"),
            func.sum(LogisticsMove.quantity).label("moved"),
            func.min(LogisticsShipment.shipped_at).label("shipped_at"),
        )
        .join(LogisticsShipment, LogisticsShipment.id == LogisticsMove.shipment_id)
        .where(
            LogisticsMove.kind == "shipment",
            LogisticsMove.order_line_id.in_(shipped_in_period),
            LogisticsShipment.shipped_at.is_not(None),
        )
        .group_by(LogisticsMove.order_line_id, LogisticsMove.shipment_id)
    )
    first: dict[int, tuple[dt.datetime, int, Decimal]] = {}
    for line_id, shipment_id, moved, shipped_at in session.execute(issued).tuples():
        if line_id is None or shipment_id is None or shipped_at is None:
            continue
        known = first.get(line_id)
        if known is None or (shipped_at, shipment_id) < (known[0], known[1]):
            first[line_id] = (shipped_at, shipment_id, -q3(moved))
    lower, upper = period_bounds(start, end)
    in_period = {
        line_id: quantity
        for line_id, (shipped_at, _shipment, quantity) in first.items()
        if shipped_at >= lower and (upper is None or shipped_at < upper)
    }
    ordered = (
        dict(
            session.execute(select(OrderLine.id, OrderLine.quantity).where(OrderLine.id.in_(list(in_period))))
            .tuples()
            .all()
        )
        if in_period
        else {}
    )
    complete = sum(1 for line_id, quantity in in_period.items() if quantity >= q3(ordered.get(line_id)))
    return IndicatorValue.ratio(complete, len(in_period))


def shipping_accuracy(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Shipments delivered in the period without an objection / shipments delivered; by objection kind."""
    delivered = [shipment.id for shipment, _day in delivered_shipments(session, start, end)]
    kinds: dict[int, str] = {}
    if delivered:
        for shipment_id, kind in session.execute(
            select(LogisticsObjection.shipment_id, LogisticsObjection.kind)
            .where(LogisticsObjection.shipment_id.in_(delivered))
            .order_by(LogisticsObjection.id)
        ).tuples():
            kinds.setdefault(shipment_id, kind)  # the first objection says what went wrong
    total = len(delivered)
    accurate = total - len(kinds)
    by_kind = Counter(kinds.values())
    breakdown = {"none": IndicatorValue.ratio(accurate, total)} if total else {}
    breakdown.update({kind: IndicatorValue.ratio(count, total) for kind, count in sorted(by_kind.items())})
    return IndicatorValue.ratio(accurate, total, breakdown)


def return_rate(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Units returned (received) in the period / units shipped in the period; by return reason."""
    shipped = -q3(
        session.scalar(
            select(func.coalesce(func.sum(LogisticsMove.quantity), 0)).where(
                LogisticsMove.kind == "shipment", _within(LogisticsMove.at, start, end)
            )
        )
    )
    returned: dict[str, Decimal] = {}
    for reason, quantity in session.execute(
        select(LogisticsReturnLine.reason, LogisticsReturnLine.received_quantity)
        .join(LogisticsReturn, LogisticsReturn.id == LogisticsReturnLine.return_id)
        .where(
            LogisticsReturn.status.in_(("received", "closed")),
            LogisticsReturnLine.received_quantity.is_not(None),
            _within(LogisticsReturn.received_at, start, end),
        )
    ).tuples():
        returned[reason] = returned.get(reason, Decimal("0")) + q3(quantity)
    total = sum(returned.values(), Decimal("0"))
    breakdown = {reason: IndicatorValue.ratio(qty, shipped) for reason, qty in sorted(returned.items())}
    return IndicatorValue.ratio(total, shipped, breakdown)


def exceptions(session: Session, start: dt.date, end: dt.date) -> IndicatorValue:
    """Logistics exceptions reported in the period, by kind."""
    kinds = Counter(
        session.scalars(select(LogisticsException.kind).where(_within(LogisticsException.reported_at, start, end)))
    )
    return _count(sum(kinds.values()), {kind: _count(count) for kind, count in sorted(kinds.items())})


INDICATORS = (
    Indicator(
        "logistics.on_time_delivery",
        N_("On-time delivery rate"),
        "percent",
        N_(
            "Share of the shipments delivered in the period (delivery time, else the customer's receipt) that "
            "arrived on or before their promised date, remote and local."
        ),
        on_time_delivery,
    ),
    Indicator(
        "logistics.fill_rate",
        N_("Fill rate"),
        "percent",
        N_("Share of the order lines first shipped in the period that shipped complete in that first shipment."),
        fill_rate,
    ),
    Indicator(
        "logistics.shipping_accuracy",
        N_("Shipping accuracy"),
        "percent",
        N_("Share of the shipments delivered in the period that the customer did not object to, by objection."),
        shipping_accuracy,
    ),
    Indicator(
        "logistics.return_rate",
        N_("Return rate"),
        "percent",
        N_("Units returned in the period per unit shipped in the period, by return reason."),
        return_rate,
    ),
    Indicator(
        "logistics.exceptions",
        N_("Logistics exceptions"),
        "count",
        N_("Delays, damage and losses reported in the period, by kind."),
        exceptions,
    ),
)


@hookimpl(optionalhook=True)
def ordo_kpi_indicators() -> list[Indicator]:
    """Logistics' indicators: on-time delivery, fill rate, shipping accuracy, return rate, exceptions."""
    return list(INDICATORS)

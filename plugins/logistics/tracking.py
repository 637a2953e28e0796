"""Tracking events of shipments (物流跟踪, LG-4, LG-5): entered by hand, pushed, or pulled.

A shipped shipment collects tracking events — booked, picked up, in transit, out for
delivery, delivered, exception — so staff and the customer (portal) can follow it:

- :func:`add_event` records one event (a warehouse clerk typing what the carrier's
  site says, the webhook, or the pull job). A ``delivered`` event marks the shipment
  delivered; an ``exception`` event tells the warehouse and the order's owner, who
  decide whether to open a logistics exception (:mod:`plugins.logistics.exceptions`)
  — an event alone opens nothing.
- :func:`receive_webhook` takes a carrier's push (``POST
  /api/v1/logistics/webhooks/<carrier code>/tracking`` with the header
  ``X-Ordo-Carrier-Secret``): the carrier's secret is checked, the payload validated
  in full and the tracking number looked up before anything is written, and an event
  the carrier already reported (same id) is not recorded twice.
- :func:`pull_tracking` is the job ``logistics.pull_tracking``: for shipped, undelivered
  shipments of a carrier with a connector that can pull tracking, it asks the
  carrier's system for new events.

Every function works inside the caller's transaction and never commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import COMPANY_TIMEZONE
from core.contrib import Job, NotificationTemplate
from core.db import utcnow
from core.labels import N_
from core.models import User
from core.notify import ToRole, ToUser, notify
from core.services import audit
from core.services.orders import get_order
from plugins.logistics import flow
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    TRACKING_CODES,
    TRACKING_SOURCES,
    LogisticsCarrier,
    LogisticsShipment,
    LogisticsTrackingEvent,
)

log = logging.getLogger(__name__)

#: Shipments that can have tracking events: those that have left the warehouse.
TRACKED_STATUSES = ("shipped", "delivered")
#: How far in the future an event's time may lie (clocks of carriers and servers differ).
CLOCK_SKEW = dt.timedelta(hours=1)
#: Column sizes of an event's texts.
PLACE_LIMIT = 200
DESCRIPTION_LIMIT = 500
EXTERNAL_ID_LIMIT = 100
#: The most events one webhook call may carry.
WEBHOOK_EVENT_LIMIT = 200

CARRIER_EXCEPTION = NotificationTemplate(
    "logistics.tracking_exception",
    label=N_("The carrier reported an exception on a shipment (to the warehouse and the order's owner)"),
    subject={
        "zh_CN": "运单 {{ shipment.tracking_number or shipment.number }} 物流异常（订单 {{ order.number }}）",
        "en": "Carrier exception on {{ shipment.tracking_number or shipment.number }} (order {{ order.number }})",
    },
    body={
        "zh_CN": "承运商报告发货单 {{ shipment.number }}"
        "（订单 {{ order.number }}，{{ order.customer.name }}）出现异常：\n"
        "{{ event.description or '（无说明）' }}{% if event.place %}\n地点：{{ event.place }}{% endif %}\n"
        "时间：{{ event.at|date }}\n请核实情况，如有延误、破损或丢失请登记物流异常并通知客户。\n",
        "en": "The carrier reports an exception on shipment {{ shipment.number }} (order {{ order.number }}, "
        "{{ order.customer.name }}):\n{{ event.description or '(no description)' }}"
        "{% if event.place %}\nPlace: {{ event.place }}{% endif %}\nTime: {{ event.at|date }}\n"
        "Please check; for a delay, damage or loss report a logistics exception so the customer is told.\n",
    },
    plugin="logistics",
)

#: The notification templates of this module (collected by the plugin).
NOTIFICATIONS = (CARRIER_EXCEPTION,)


# --- validation ----------------------------------------------------------------------------


def parse_time(value: Any, field: str = "at") -> dt.datetime:
    """An event time as an aware UTC datetime: a datetime, or ISO 8601 text (no zone: company time).

    Refused (422) when it is not a time or lies in the future.
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise LogisticsError(
                "invalid_time",
                N_("%(value)s is not a date and time (ISO 8601, e.g. 2026-05-04T10:30:00+08:00)."),
                details={field: ["invalid"]},
                value=value,
            ) from None
    if not isinstance(value, dt.datetime):
        raise LogisticsError("invalid_time", N_("The event needs a date and time."), details={field: ["required"]})
    if value.tzinfo is None:
        value = value.replace(tzinfo=COMPANY_TIMEZONE)
    value = value.astimezone(dt.UTC)
    if value > utcnow() + CLOCK_SKEW:
        raise LogisticsError(
            "future_time", N_("A tracking event cannot lie in the future."), details={field: ["future"]}
        )
    return value


def _text(value: Any, limit: int, field: str) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise LogisticsError(
            "too_long",
            N_("%(field)s is longer than %(max)s characters."),
            details={field: ["too_long"]},
            field=field,
            max=limit,
        )
    return text


def _check_code(code: Any) -> str:
    if code not in TRACKING_CODES:
        raise LogisticsError(
            "unknown_tracking_code",
            N_("%(event)s is not a tracking event; use one of %(codes)s."),
            details={"code": ["invalid"]},
            event=str(code),
            codes=", ".join(TRACKING_CODES),
        )
    return str(code)


def _tracked_shipment(session: Session, shipment_id: int) -> LogisticsShipment:
    shipment = session.get(LogisticsShipment, shipment_id)
    if shipment is None:
        raise LogisticsError("unknown_shipment", N_("Shipment %(id)s does not exist."), status=404, id=shipment_id)
    return shipment


def _check_tracked(shipment: LogisticsShipment) -> None:
    if shipment.status not in TRACKED_STATUSES:
        raise LogisticsError(
            "not_shipped",
            N_("Shipment %(number)s has not been shipped: it has no tracking yet."),
            status=409,
            number=shipment.number,
        )


# --- recording -----------------------------------------------------------------------------


def _existing(
    session: Session, shipment: LogisticsShipment, code: str, at: dt.datetime, external_id: str | None
) -> LogisticsTrackingEvent | None:
    """The event already recorded: same carrier id, or (without one) same code and time."""
    stmt = select(LogisticsTrackingEvent).where(LogisticsTrackingEvent.shipment_id == shipment.id)
    if external_id:
        return session.scalar(stmt.where(LogisticsTrackingEvent.external_id == external_id))
    for event in session.scalars(stmt.where(LogisticsTrackingEvent.code == code)):
        if event.external_id is None and _utc(event.at) == at:
            return event
    return None


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _record(
    session: Session,
    actor: User | None,
    shipment: LogisticsShipment,
    code: str,
    at: dt.datetime,
    place: str,
    description: str,
    source: str,
    external_id: str | None,
) -> LogisticsTrackingEvent:
    """Write one validated event (or return the one already there) and what it sets off."""
    existing = _existing(session, shipment, code, at, external_id)
    if existing is not None:
        return existing
    event = LogisticsTrackingEvent(
        shipment_id=shipment.id,
        code=code,
        at=at,
        place=place,
        description=description,
        source=source,
        external_id=external_id,
        recorded_by_id=actor.id if actor is not None else None,
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        actor,
        "logistics_shipment",
        shipment.id,
        "tracking_event",
        {"code": code, "at": at, "place": place, "source": source, "external_id": external_id},
        order_id=shipment.order_id,
    )
    if code == "delivered":
        from plugins.logistics import delivery

        delivery.set_delivered(session, actor, shipment, at)
    elif code == "exception":
        _tell_about_exception(session, shipment, event)
    return event


def _tell_about_exception(session: Session, shipment: LogisticsShipment, event: LogisticsTrackingEvent) -> None:
    from core.models import Order

    order = session.get(Order, shipment.order_id)
    if order is None:
        return
    recipients: list[Any] = [ToRole("warehouse")]
    if order.owner_id is not None:
        recipients.append(ToUser(order.owner_id))
    notify(
        session,
        CARRIER_EXCEPTION.name,
        to=recipients,
        order=order,
        context={"shipment": shipment, "event": event},
        dedupe_key=f"logistics.tracking_exception:{event.id}",
    )


def add_event(
    session: Session,
    actor: User | None,
    shipment_id: int,
    code: str,
    at: dt.datetime | str,
    place: str = "",
    description: str = "",
    source: str = "manual",
    external_id: str | None = None,
) -> LogisticsTrackingEvent:
    """Record a tracking event of a shipped shipment; the existing one when already recorded.

    ``actor`` needs ``logistics.shipping.manage`` and the order in their data scope;
    ``None`` is the system (webhook, pull job). A repeated ``external_id`` (the
    carrier's id of the event) returns the event recorded before and writes nothing.
    ``delivered`` marks the shipment delivered; ``exception`` notifies the warehouse and
    the order's owner. Refused: unknown code or source, a time in the future, texts too
    long (422), a shipment not shipped (409), not permitted (403), unknown (404).
    """
    if actor is not None and not actor.can(flow.SHIPPING_MANAGE):
        raise LogisticsError("forbidden", N_("You may not enter tracking events."), status=403)
    shipment = _tracked_shipment(session, shipment_id)
    if actor is not None:
        get_order(session, actor, shipment.order_id)  # 404 outside the actor's scope
    code = _check_code(code)
    if source not in TRACKING_SOURCES:
        raise LogisticsError(
            "unknown_source", N_("%(source)s is not a tracking source."), details={"source": ["invalid"]}, source=source
        )
    when = parse_time(at)
    place = _text(place, PLACE_LIMIT, "place")
    description = _text(description, DESCRIPTION_LIMIT, "description")
    external = _text(external_id, EXTERNAL_ID_LIMIT, "id") or None
    _check_tracked(shipment)
    return _record(session, actor, shipment, code, when, place, description, source, external)


# --- the carrier's webhook -----------------------------------------------------------------


def _webhook_events(payload: Any) -> tuple[str, list[dict[str, Any]]]:
    """The payload's tracking number and its events, validated; 422 naming every fault."""
    if not isinstance(payload, Mapping):
        raise LogisticsError("invalid_payload", N_("The webhook's body must be a JSON object."))
    errors: dict[str, Any] = {}
    number = payload.get("tracking_number")
    if not isinstance(number, str) or not number.strip():
        errors["tracking_number"] = ["required"]
    raw_events = payload.get("events", [])
    if not isinstance(raw_events, Sequence) or isinstance(raw_events, str | bytes):
        errors["events"] = ["not a list"]
        raw_events = []
    elif len(raw_events) > WEBHOOK_EVENT_LIMIT:
        errors["events"] = [f"at most {WEBHOOK_EVENT_LIMIT}"]
    events: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, Mapping):
            errors[f"events.{index}"] = ["not an object"]
            continue
        try:
            event_id = raw.get("id")
            events.append(
                {
                    "code": _check_code(raw.get("code")),
                    "at": parse_time(raw.get("at")),
                    "place": _text(raw.get("place"), PLACE_LIMIT, "place"),
                    "description": _text(raw.get("description"), DESCRIPTION_LIMIT, "description"),
                    "external_id": _text(event_id, EXTERNAL_ID_LIMIT, "id") or None,
                }
            )
        except LogisticsError as exc:
            errors[f"events.{index}"] = [exc.message]
    if errors:
        raise LogisticsError(
            "invalid_payload",
            N_("The webhook's body is not valid: %(fields)s."),
            details=errors,
            fields=", ".join(sorted(errors)),
        )
    return str(number).strip(), events


def receive_webhook(
    session: Session, carrier_code: str, presented_secret: str | None, payload: Any
) -> list[LogisticsTrackingEvent]:
    """Record the events a carrier pushes for one tracking number; nothing on any refusal.

    ``payload`` is ``{"tracking_number": …, "events": [{"code", "at" (ISO 8601),
    "place", "description", "id"}]}``. Refused: an unknown carrier (404
    ``unknown_carrier``), a wrong or missing secret (403 ``bad_secret``), a body that is
    not valid (422), a tracking number of none of the carrier's shipped shipments (404
    ``unknown_tracking``). Events reported before (same ``id``) are returned, not
    recorded again.
    """
    from plugins.logistics import carriers

    carrier = session.scalar(select(LogisticsCarrier).where(LogisticsCarrier.code == (carrier_code or "").strip()))
    if carrier is None or not carrier.active:
        raise LogisticsError(
            "unknown_carrier", N_("There is no carrier %(carrier)s."), status=404, carrier=carrier_code
        )
    if not presented_secret or not carriers.check_webhook_secret(carrier, presented_secret):
        raise LogisticsError("bad_secret", N_("The carrier's webhook secret is wrong."), status=403)
    number, events = _webhook_events(payload)
    shipment = session.scalar(
        select(LogisticsShipment)
        .where(
            LogisticsShipment.carrier_id == carrier.id,
            LogisticsShipment.tracking_number == number,
            LogisticsShipment.status.in_(TRACKED_STATUSES),
        )
        .order_by(LogisticsShipment.id.desc())
        .limit(1)
    )
    if shipment is None:
        raise LogisticsError(
            "unknown_tracking",
            N_("No shipped shipment of carrier %(carrier)s has the tracking number %(number)s."),
            status=404,
            carrier=carrier.code,
            number=number,
        )
    return [
        _record(
            session,
            None,
            shipment,
            e["code"],
            e["at"],
            e["place"],
            e["description"],
            "webhook",
            e["external_id"],
        )
        for e in events
    ]


# --- the pull job --------------------------------------------------------------------------


def pull_tracking(session: Session, now: dt.datetime) -> int:
    """Ask carriers' connectors for new events of shipped, undelivered shipments; the number recorded.

    A connector's failure is logged and skipped (the next run tries again); an event
    that is not valid is skipped with a warning, the shipment's others still count.
    """
    from plugins.logistics import connectors

    rows = session.execute(
        select(LogisticsShipment, LogisticsCarrier)
        .join(LogisticsCarrier, LogisticsCarrier.id == LogisticsShipment.carrier_id)
        .where(
            LogisticsShipment.status == "shipped",
            LogisticsShipment.tracking_number != "",
            LogisticsCarrier.connector != "",
            LogisticsCarrier.active.is_(True),
        )
        .order_by(LogisticsShipment.id)
    ).all()
    recorded = 0
    for shipment, carrier in rows:
        connector = connectors.find_connector(session, carrier.connector)
        if connector is None or connector.pull_tracking is None:
            continue
        try:
            updates = connector.pull_tracking(session, shipment)
        except connectors.ConnectorError as exc:
            log.warning("tracking pull for shipment %s (%s) failed: %s", shipment.number, carrier.code, exc)
            continue
        for update in updates:
            try:
                code = _check_code(update.code)
                at = parse_time(update.at)
                place = _text(update.place, PLACE_LIMIT, "place")
                description = _text(update.description, DESCRIPTION_LIMIT, "description")
                external = _text(update.external_id, EXTERNAL_ID_LIMIT, "id") or None
            except LogisticsError as exc:
                log.warning("tracking event of shipment %s skipped: %s", shipment.number, exc.message)
                continue
            before = _existing(session, shipment, code, at, external)
            _record(session, None, shipment, code, at, place, description, "connector", external)
            recorded += before is None
            if shipment.status != "shipped":
                break
    return recorded


#: The scheduled jobs of this module (collected by the plugin).
JOBS: tuple[Job, ...] = (
    Job(
        "logistics.pull_tracking",
        "every:3600",
        pull_tracking,
        plugin="logistics",
        label=N_("Logistics: pull tracking events from carriers' systems"),
    ),
)

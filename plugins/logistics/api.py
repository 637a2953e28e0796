"""API: stock, shipments, tracking, returns and the carriers' tracking webhook (``/api/v1/logistics``).

Other systems (a WMS, an e-shop, a carrier) do here what the logistics screens do:
read stock and the moves ledger (LG-2), read an order's reservations, backorders and
shipments, plan a shipment, add packages, choose the carrier (the suggestion of the
cheapest one meeting the promised date, LG-3), ship it with its tracking number (LG-1,
LG-4, LG-11), add tracking events (LG-5), confirm receipt (LG-7), and take a return
through request, review, decision, receipt and QC inspection (LG-9).

The endpoints are thin: the service modules (``shipping``, ``carriers``, ``tracking``,
``delivery``, ``returns``) check permissions, validate and change; here bodies are read,
the data scope applied and answers shaped. Errors answer like core's (``core.api``):
404 for a record that does not exist *or* belongs to an order outside the caller's data
scope (CORE-4; checked first, so existence never leaks), 403 without the permission, 409
for a state that forbids the change, 422 with per-field ``details``; a refused request
changes nothing.

The carriers' tracking webhook (``POST /api/v1/logistics/webhooks/<carrier>/tracking``)
is on a second blueprint, :data:`webhooks`, without a bearer token: the carrier proves
itself with its per-carrier secret in the header ``X-Ordo-Carrier-Secret``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, read_json
from core.clock import company_now, day_end, day_start
from core.labels import N_
from core.models import Order, Product, User
from core.schemas import MAX_ID
from core.security.scopes import order_scope
from core.services import NotFound, ServiceError
from core.services.orders import get_order, visible_orders
from core.services.paging import decode_cursor, encode_cursor
from core.web import db
from plugins.logistics import flow, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    DISPOSITIONS,
    MOVE_KINDS,
    RETURN_REASONS,
    RETURN_STATUSES,
    TRACKING_CODES,
    LogisticsCarrier,
    LogisticsLocation,
    LogisticsMove,
    LogisticsOrder,
    LogisticsReservation,
    LogisticsReturn,
    LogisticsService,
    LogisticsShipment,
    LogisticsStock,
    LogisticsWarehouse,
)
from plugins.logistics.panel import line_rows
from plugins.logistics.stock import default_warehouse

blp = Blueprint(
    "logistics_api",
    __name__,
    url_prefix="/api/v1/logistics",
    description="Logistics (物流): stock, reservations, shipments and tracking, returns.",
)
blp.before_request(require_api_user)

#: The carriers' tracking webhook: no bearer token, the per-carrier secret instead.
webhooks = Blueprint(
    "logistics_webhooks",
    __name__,
    url_prefix="/api/v1/logistics/webhooks",
    description="Carriers push tracking events here, authenticated by their secret (X-Ordo-Carrier-Secret).",
)
#: The header a carrier presents its secret in.
SECRET_HEADER = "X-Ordo-Carrier-Secret"


def _exempt_webhooks_from_csrf() -> None:
    """The webhook is called by carriers' servers, never by a browser: no CSRF token applies
    (core's check honours ``csrf.exempt``, see :mod:`core.security.csrf`)."""
    from core.app import csrf

    csrf.exempt(webhooks)


_exempt_webhooks_from_csrf()

STOCK_CURSOR = "ls"
MOVE_CURSOR = "lm"
RETURN_CURSOR = "lr"


# --------------------------------------------------------------------------- schemas


class LogisticsOrderRefSchema(Schema):
    """The order a record belongs to."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    step = fields.String(required=True)
    status = fields.String(required=True)
    customer_code = fields.String(required=True)


class LogisticsStockQuerySchema(PageQuerySchema):
    """Which stock rows to list."""

    product_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "A product id."})
    sku = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "A product's SKU."})
    warehouse_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "A warehouse."})
    include_empty = fields.Boolean(load_default=False, metadata={"description": "Also rows with nothing on hand."})


class LogisticsStockSchema(Schema):
    """The stock of one product at one location (库存)."""

    id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    product_name = fields.String(required=True)
    warehouse_id = fields.Integer(required=True)
    warehouse_code = fields.String(required=True)
    location_id = fields.Integer(required=True)
    location_code = fields.String(required=True)
    blocked = fields.Boolean(required=True, metadata={"description": "QC/rework/downgrade area: never reserved."})
    on_hand = fields.Decimal(as_string=True, required=True)
    reserved = fields.Decimal(as_string=True, required=True)
    free = fields.Decimal(as_string=True, required=True, metadata={"description": "On hand minus reserved."})


class LogisticsStockPageSchema(Schema):
    """One page of stock rows and the next page's cursor (null on the last page)."""

    items = fields.List(fields.Nested(LogisticsStockSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class LogisticsMoveQuerySchema(PageQuerySchema):
    """Which stock moves to list (newest first)."""

    product_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    warehouse_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    kind = fields.String(validate=validate.OneOf(list(MOVE_KINDS)), metadata={"description": "receipt, shipment…"})
    order_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "An order's moves."})
    date_from = fields.Date(metadata={"description": "Moves on or after this company day."})
    date_to = fields.Date(metadata={"description": "Moves on or before this company day."})


class LogisticsMoveSchema(Schema):
    """One stock move (库存流水): positive in, negative out."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    warehouse_id = fields.Integer(required=True)
    location_id = fields.Integer(required=True)
    location_code = fields.String(required=True)
    quantity = fields.Decimal(as_string=True, required=True)
    order_id = fields.Integer(required=True, allow_none=True)
    shipment_id = fields.Integer(required=True, allow_none=True)
    count_id = fields.Integer(required=True, allow_none=True)
    return_id = fields.Integer(required=True, allow_none=True)
    reference = fields.String(required=True)
    note = fields.String(required=True)
    at = fields.DateTime(required=True)


class LogisticsMovePageSchema(Schema):
    """One page of moves, newest first, and the next page's cursor."""

    items = fields.List(fields.Nested(LogisticsMoveSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class LogisticsLineSchema(Schema):
    """An order line's logistics quantities."""

    order_line_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    ordered = fields.Decimal(as_string=True, required=True)
    reserved = fields.Decimal(as_string=True, required=True)
    shipped = fields.Decimal(as_string=True, required=True)
    backorder = fields.Decimal(as_string=True, required=True, metadata={"description": "Neither shipped nor reserved."})
    returned = fields.Decimal(as_string=True, required=True)


class LogisticsReservationSchema(Schema):
    """Units of one stock row held for an order line."""

    id = fields.Integer(required=True)
    order_line_id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    location_id = fields.Integer(required=True)
    location_code = fields.String(required=True)
    quantity = fields.Decimal(as_string=True, required=True)


class LogisticsShipmentLineSchema(Schema):
    """An order line's quantity in a shipment: planned, then picked."""

    id = fields.Integer(required=True)
    order_line_id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    location_id = fields.Integer(required=True)
    quantity = fields.Decimal(as_string=True, required=True)
    picked_quantity = fields.Decimal(as_string=True, required=True, allow_none=True)


class LogisticsPackageSchema(Schema):
    """A package: kilograms and centimetres."""

    id = fields.Integer(required=True)
    weight = fields.Decimal(as_string=True, required=True)
    length = fields.Decimal(as_string=True, required=True)
    width = fields.Decimal(as_string=True, required=True)
    height = fields.Decimal(as_string=True, required=True)
    note = fields.String(required=True)


class LogisticsEventSchema(Schema):
    """A tracking event (物流跟踪)."""

    id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": ", ".join(TRACKING_CODES)})
    at = fields.DateTime(required=True)
    place = fields.String(required=True)
    description = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "manual, webhook or connector."})
    external_id = fields.String(required=True, allow_none=True)


class LogisticsCarrierRefSchema(Schema):
    """A carrier or service level, by id, code and name."""

    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class LogisticsShipmentSchema(Schema):
    """A shipment (发货): lines, packages, carrier, tracking, delivery and receipt."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    order = fields.Nested(LogisticsOrderRefSchema, required=True)
    kind = fields.String(required=True, metadata={"description": "normal or replacement."})
    status = fields.String(required=True, metadata={"description": "planned, picking, picked, packed, shipped…"})
    warehouse_id = fields.Integer(required=True)
    remote = fields.Boolean(required=True)
    promised_date = fields.Date(required=True, allow_none=True)
    carrier = fields.Nested(LogisticsCarrierRefSchema, required=True, allow_none=True)
    service = fields.Nested(LogisticsCarrierRefSchema, required=True, allow_none=True)
    suggested_service_id = fields.Integer(required=True, allow_none=True)
    override_reason = fields.String(required=True)
    tracking_number = fields.String(required=True)
    freight = fields.Decimal(as_string=True, required=True)
    goods_value = fields.Decimal(as_string=True, required=True)
    insured = fields.Boolean(required=True)
    insured_value = fields.Decimal(as_string=True, required=True)
    insurance_fee = fields.Decimal(as_string=True, required=True)
    created_at = fields.DateTime(required=True)
    packed_at = fields.DateTime(required=True, allow_none=True)
    shipped_at = fields.DateTime(required=True, allow_none=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    pod_signer = fields.String(required=True)
    pod_signed_at = fields.DateTime(required=True, allow_none=True)
    receipt_status = fields.String(required=True, metadata={"description": "pending, confirmed or objected."})
    receipt_at = fields.DateTime(required=True, allow_none=True)
    lines = fields.List(fields.Nested(LogisticsShipmentLineSchema), required=True)
    packages = fields.List(fields.Nested(LogisticsPackageSchema), required=True)
    events = fields.List(fields.Nested(LogisticsEventSchema), required=True)


class LogisticsOrderSchema(Schema):
    """An order's logistics: remote or local, promised date, lines, reservations, shipments."""

    order = fields.Nested(LogisticsOrderRefSchema, required=True)
    confirmed = fields.Boolean(required=True, metadata={"description": "Whether logistics has taken the order on."})
    remote = fields.Boolean(required=True)
    warehouse_id = fields.Integer(required=True, allow_none=True)
    allow_partial = fields.Boolean(required=True)
    promised_date = fields.Date(required=True, allow_none=True)
    ready_at = fields.DateTime(required=True, allow_none=True)
    ageing_level = fields.Integer(required=True, metadata={"description": "0 none … 3 general manager told."})
    checked_at = fields.DateTime(required=True, allow_none=True)
    backorder_closed_at = fields.DateTime(required=True, allow_none=True)
    lines = fields.List(fields.Nested(LogisticsLineSchema), required=True)
    reservations = fields.List(fields.Nested(LogisticsReservationSchema), required=True)
    shipments = fields.List(fields.Nested(LogisticsShipmentSchema), required=True)


class LogisticsPlanInSchema(Schema):
    """Which quantities to ship: order line id → quantity; empty or absent: everything reserved."""

    lines = fields.Dict(keys=fields.Integer(), values=fields.Decimal(), load_default=dict)


class LogisticsPackageInSchema(Schema):
    """A package: weight in kilograms, dimensions in centimetres, all above zero."""

    weight = fields.Decimal(required=True)
    length = fields.Decimal(required=True)
    width = fields.Decimal(required=True)
    height = fields.Decimal(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=200))


class LogisticsCarrierInSchema(Schema):
    """The service level chosen; another than the suggested one needs a reason."""

    service_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    override_reason = fields.String(load_default="", validate=validate.Length(max=500))


class LogisticsShipInSchema(Schema):
    """Ship: the tracking number (a remote shipment needs one) and insurance (default: by the rules)."""

    tracking_number = fields.String(load_default="", validate=validate.Length(max=64))
    insured = fields.Boolean(load_default=None, allow_none=True)


class LogisticsEventInSchema(Schema):
    """A tracking event entered by hand."""

    code = fields.String(required=True, validate=validate.OneOf(list(TRACKING_CODES)))
    at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={"description": "Default: now."})
    place = fields.String(load_default="", validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=500))


class LogisticsReturnLineInSchema(Schema):
    """A delivered order line to return, how many, and why."""

    order_line_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    quantity = fields.Decimal(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(list(RETURN_REASONS)))
    detail = fields.String(load_default="", validate=validate.Length(max=500))


class LogisticsReturnInSchema(Schema):
    """A return request (退货申请) for one order's delivered lines."""

    order_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    lines = fields.List(fields.Nested(LogisticsReturnLineInSchema), required=True, validate=validate.Length(min=1))
    note = fields.String(load_default="", validate=validate.Length(max=1000))
    exception_reason = fields.String(load_default="", validate=validate.Length(max=1000))


class LogisticsReturnReviewInSchema(Schema):
    """The regional manager's review."""

    approve = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))


class LogisticsReturnDecisionInSchema(Schema):
    """The marketing director's decision; non-quality reasons need an exception reason."""

    approve = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))
    approved_quantities = fields.Dict(
        keys=fields.Integer(),
        values=fields.Decimal(),
        load_default=None,
        allow_none=True,
        metadata={"description": "Return line id → approved quantity (default: as requested)."},
    )
    exception_reason = fields.String(load_default="", validate=validate.Length(max=1000))


class LogisticsReturnReceiptInSchema(Schema):
    """Returned goods received: return line id → quantity (at most the approved quantity)."""

    quantities = fields.Dict(keys=fields.Integer(), values=fields.Decimal(), required=True)


class LogisticsDispositionInSchema(Schema):
    """QC's decision on some units of a return line."""

    line_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))
    disposition = fields.String(required=True, validate=validate.OneOf(list(DISPOSITIONS)))
    quantity = fields.Decimal(required=True)
    location_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    note = fields.String(load_default="", validate=validate.Length(max=500))


class LogisticsInspectionInSchema(Schema):
    """QC inspection: per line, dispositions summing to the received quantity."""

    dispositions = fields.List(fields.Nested(LogisticsDispositionInSchema), required=True)


class LogisticsDispositionSchema(Schema):
    """QC's disposition of returned units: restock, rework, downgrade or scrap."""

    disposition = fields.String(required=True)
    quantity = fields.Decimal(as_string=True, required=True)
    location_id = fields.Integer(required=True, allow_none=True)
    note = fields.String(required=True)
    inspected_at = fields.DateTime(required=True)


class LogisticsReturnLineSchema(Schema):
    """A returned line: requested, approved and received quantities."""

    id = fields.Integer(required=True)
    order_line_id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    reason = fields.String(required=True)
    reason_detail = fields.String(required=True)
    quantity = fields.Decimal(as_string=True, required=True)
    approved_quantity = fields.Decimal(as_string=True, required=True, allow_none=True)
    received_quantity = fields.Decimal(as_string=True, required=True, allow_none=True)
    dispositions = fields.List(fields.Nested(LogisticsDispositionSchema), required=True)


class LogisticsReturnSchema(Schema):
    """A return (退换货) and where it stands."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)
    order = fields.Nested(LogisticsOrderRefSchema, required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(RETURN_STATUSES)})
    objection_id = fields.Integer(required=True, allow_none=True)
    exception_reason = fields.String(required=True)
    freight_paid_by = fields.String(required=True)
    note = fields.String(required=True)
    requested_at = fields.DateTime(required=True)
    reviewed_at = fields.DateTime(required=True, allow_none=True)
    review_note = fields.String(required=True)
    approved_at = fields.DateTime(required=True, allow_none=True)
    decision_note = fields.String(required=True)
    received_at = fields.DateTime(required=True, allow_none=True)
    closed_at = fields.DateTime(required=True, allow_none=True)
    lines = fields.List(fields.Nested(LogisticsReturnLineSchema), required=True)


class LogisticsReturnQuerySchema(PageQuerySchema):
    """Which returns to list (newest first)."""

    status = fields.String(validate=validate.OneOf(list(RETURN_STATUSES)))
    order_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))


class LogisticsReturnPageSchema(Schema):
    """One page of returns, newest first."""

    items = fields.List(fields.Nested(LogisticsReturnSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class LogisticsSuggestionQuerySchema(Schema):
    """What to ship where and by when."""

    to_province = fields.String(required=True, validate=validate.Length(min=1, max=64))
    from_province = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "Default: the default warehouse's."}
    )
    weight = fields.Decimal(required=True, validate=validate.Range(min=0), metadata={"description": "Kilograms."})
    volume = fields.Decimal(load_default=Decimal("0"), validate=validate.Range(min=0), metadata={"description": "m³."})
    promised_date = fields.Date(load_default=None, metadata={"description": "Default: no date to meet."})
    ship_date = fields.Date(load_default=None, metadata={"description": "Default: today."})
    insured_value = fields.Decimal(load_default=Decimal("0"), validate=validate.Range(min=0))


class LogisticsCandidateSchema(Schema):
    """A carrier's service as a candidate, with its cost, arrival and the reasons for or against it."""

    carrier = fields.Nested(LogisticsCarrierRefSchema, required=True)
    service = fields.Nested(LogisticsCarrierRefSchema, required=True)
    transit_days = fields.Integer(required=True, allow_none=True)
    arrival = fields.Date(required=True, allow_none=True)
    freight = fields.Decimal(as_string=True, required=True, allow_none=True)
    insurance = fields.Decimal(as_string=True, required=True, allow_none=True)
    total = fields.Decimal(as_string=True, required=True, allow_none=True)
    meets_date = fields.Boolean(required=True)
    chosen = fields.Boolean(required=True)
    reasons = fields.List(fields.String(), required=True)


class LogisticsSuggestionSchema(Schema):
    """The cheapest service meeting the date (null when none does), every candidate, and why."""

    best = fields.Nested(LogisticsCandidateSchema, required=True, allow_none=True)
    explanation = fields.String(required=True)
    candidates = fields.List(fields.Nested(LogisticsCandidateSchema), required=True)


class LogisticsWebhookEventInSchema(Schema):
    """One event as the carrier reports it."""

    id = fields.String(required=True, metadata={"description": "The carrier's event id (repeats are ignored)."})
    code = fields.String(required=True, metadata={"description": ", ".join(TRACKING_CODES)})
    at = fields.String(required=True, metadata={"description": "ISO 8601 with a zone."})
    place = fields.String()
    description = fields.String()


class LogisticsWebhookInSchema(Schema):
    """A carrier's tracking update for one tracking number (documentation of the body)."""

    tracking_number = fields.String(required=True)
    events = fields.List(fields.Nested(LogisticsWebhookEventInSchema), required=True)


class LogisticsWebhookSchema(Schema):
    """The call's events, recorded now or by an earlier call (an event is never recorded twice)."""

    tracking_number = fields.String(required=True)
    events = fields.List(fields.Nested(LogisticsEventSchema), required=True)


# --------------------------------------------------------------------------- helpers


def _load(schema: type[Schema], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` loaded by ``schema``; a 422 with per-field details when it does not fit."""
    try:
        loaded: dict[str, Any] = schema().load(body)
    except ValidationError as exc:
        raise LogisticsError("invalid", N_("The request is not valid."), details=exc.messages) from None
    return loaded


def _require(user: User, *permissions: str) -> None:
    """Refuse (403) a user holding none of ``permissions``."""
    if not any(user.can(p) for p in permissions):
        raise LogisticsError(
            "forbidden", N_("You need the permission %(permission)s."), 403, permission=" / ".join(permissions)
        )


def _cursor_id(kind: str, cursor: str | None) -> int | None:
    if not cursor:
        return None
    value = decode_cursor(kind, cursor)
    if not value.isdigit() or len(value) > 19:
        raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
    return int(value)


def _order_ref(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "step": order.step,
        "status": order.status,
        "customer_code": order.customer.code,
    }


def _ref(record: LogisticsCarrier | LogisticsService | None) -> dict[str, Any] | None:
    return None if record is None else {"id": record.id, "code": record.code, "name": record.name}


def _event(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "code": event.code,
        "at": event.at,
        "place": event.place,
        "description": event.description,
        "source": event.source,
        "external_id": event.external_id,
    }


def _shipment(session: Session, shipment: LogisticsShipment, order: Order) -> dict[str, Any]:
    skus = dict(
        session.execute(
            select(Product.id, Product.sku).where(Product.id.in_({line.product_id for line in shipment.lines}))
        )
        .tuples()
        .all()
    )
    return {
        "id": shipment.id,
        "number": shipment.number,
        "order": _order_ref(order),
        "kind": shipment.kind,
        "status": shipment.status,
        "warehouse_id": shipment.warehouse_id,
        "remote": shipment.remote,
        "promised_date": shipment.promised_date,
        "carrier": _ref(session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None),
        "service": _ref(session.get(LogisticsService, shipment.service_id) if shipment.service_id else None),
        "suggested_service_id": shipment.suggested_service_id,
        "override_reason": shipment.override_reason,
        "tracking_number": shipment.tracking_number,
        "freight": shipment.freight,
        "goods_value": shipment.goods_value,
        "insured": shipment.insured,
        "insured_value": shipment.insured_value,
        "insurance_fee": shipment.insurance_fee,
        "created_at": shipment.created_at,
        "packed_at": shipment.packed_at,
        "shipped_at": shipment.shipped_at,
        "delivered_at": shipment.delivered_at,
        "pod_signer": shipment.pod_signer,
        "pod_signed_at": shipment.pod_signed_at,
        "receipt_status": shipment.receipt_status,
        "receipt_at": shipment.receipt_at,
        "lines": [
            {
                "id": line.id,
                "order_line_id": line.order_line_id,
                "product_id": line.product_id,
                "sku": skus.get(line.product_id, ""),
                "location_id": line.location_id,
                "quantity": line.quantity,
                "picked_quantity": line.picked_quantity,
            }
            for line in shipment.lines
        ],
        "packages": [
            {
                "id": p.id,
                "weight": p.weight,
                "length": p.length,
                "width": p.width,
                "height": p.height,
                "note": p.note,
            }
            for p in shipment.packages
        ],
        "events": [_event(e) for e in shipment.events],
    }


def _return(request_: LogisticsReturn, order: Order) -> dict[str, Any]:
    return {
        "id": request_.id,
        "number": request_.number,
        "order": _order_ref(order),
        "status": request_.status,
        "objection_id": request_.objection_id,
        "exception_reason": request_.exception_reason,
        "freight_paid_by": request_.freight_paid_by,
        "note": request_.note,
        "requested_at": request_.requested_at,
        "reviewed_at": request_.reviewed_at,
        "review_note": request_.review_note,
        "approved_at": request_.approved_at,
        "decision_note": request_.decision_note,
        "received_at": request_.received_at,
        "closed_at": request_.closed_at,
        "lines": [
            {
                "id": line.id,
                "order_line_id": line.order_line_id,
                "product_id": line.product_id,
                "reason": line.reason,
                "reason_detail": line.reason_detail,
                "quantity": line.quantity,
                "approved_quantity": line.approved_quantity,
                "received_quantity": line.received_quantity,
                "dispositions": [
                    {
                        "disposition": d.disposition,
                        "quantity": d.quantity,
                        "location_id": d.location_id,
                        "note": d.note,
                        "inspected_at": d.inspected_at,
                    }
                    for d in line.dispositions
                ],
            }
            for line in request_.lines
        ],
    }


def _visible_shipment(
    session: Session, user: User, shipment_id: int, *, for_update: bool = False
) -> tuple[LogisticsShipment, Order]:
    """Shipment ``shipment_id`` and its order if ``user`` may see the order; 404 otherwise."""
    shipment = session.get(LogisticsShipment, shipment_id) if 0 < shipment_id <= MAX_ID else None
    if shipment is None:
        raise LogisticsError("not_found", N_("Shipment %(id)s was not found."), 404, id=shipment_id)
    try:
        order = get_order(session, user, shipment.order_id, for_update=for_update)
    except NotFound:
        raise LogisticsError("not_found", N_("Shipment %(id)s was not found."), 404, id=shipment_id) from None
    return shipment, order


def _visible_return(
    session: Session, user: User, return_id: int, *, for_update: bool = False
) -> tuple[LogisticsReturn, Order]:
    """Return ``return_id`` and its order if ``user`` may see the order; 404 otherwise."""
    found = session.get(LogisticsReturn, return_id) if 0 < return_id <= MAX_ID else None
    if found is None:
        raise LogisticsError("not_found", N_("Return %(id)s was not found."), 404, id=return_id)
    try:
        order = get_order(session, user, found.order_id, for_update=for_update)
    except NotFound:
        raise LogisticsError("not_found", N_("Return %(id)s was not found."), 404, id=return_id) from None
    return found, order


def _shipment_answer(session: Session, user: User, shipment_id: int) -> dict[str, Any]:
    commit()
    shipment, order = _visible_shipment(session, user, shipment_id)
    return _shipment(session, shipment, order)


def _return_answer(session: Session, user: User, return_id: int) -> dict[str, Any]:
    commit()
    found, order = _visible_return(session, user, return_id)
    return _return(found, order)


# --------------------------------------------------------------------------- stock


@blp.route("/stock", methods=["GET"])
@blp.arguments(LogisticsStockQuerySchema, location="query", unknown="raise")
@blp.response(200, LogisticsStockPageSchema)
@errors(blp, 401, 403, 422)
def list_stock(args: dict[str, Any]) -> dict[str, Any]:
    """List stock per product and location (on hand, reserved, free), filtered by product and warehouse (LG-2)."""
    user, session = api_user(), db()
    _require(user, flow.STOCK_READ)
    stmt = (
        select(LogisticsStock, Product, LogisticsLocation, LogisticsWarehouse)
        .join(Product, Product.id == LogisticsStock.product_id)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsStock.location_id)
        .join(LogisticsWarehouse, LogisticsWarehouse.id == LogisticsStock.warehouse_id)
        .order_by(LogisticsStock.id)
    )
    if args.get("product_id"):
        stmt = stmt.where(LogisticsStock.product_id == args["product_id"])
    if args.get("sku"):
        stmt = stmt.where(Product.sku == args["sku"])
    if args.get("warehouse_id"):
        stmt = stmt.where(LogisticsStock.warehouse_id == args["warehouse_id"])
    if not args["include_empty"]:
        stmt = stmt.where(LogisticsStock.on_hand > 0)
    after = _cursor_id(STOCK_CURSOR, args.get("cursor"))
    if after is not None:
        stmt = stmt.where(LogisticsStock.id > after)
    limit = args["limit"]
    rows = session.execute(stmt.limit(limit + 1)).tuples().all()
    next_cursor = encode_cursor(STOCK_CURSOR, rows[limit - 1][0].id) if len(rows) > limit else None
    return {
        "items": [
            {
                "id": row.id,
                "product_id": product.id,
                "sku": product.sku,
                "product_name": product.name,
                "warehouse_id": warehouse.id,
                "warehouse_code": warehouse.code,
                "location_id": location.id,
                "location_code": location.code,
                "blocked": location.blocked,
                "on_hand": row.on_hand,
                "reserved": row.reserved,
                "free": row.on_hand - row.reserved,
            }
            for row, product, location, warehouse in rows[:limit]
        ],
        "next_cursor": next_cursor,
    }


@blp.route("/moves", methods=["GET"])
@blp.arguments(LogisticsMoveQuerySchema, location="query", unknown="raise")
@blp.response(200, LogisticsMovePageSchema)
@errors(blp, 401, 403, 422)
def list_moves(args: dict[str, Any]) -> dict[str, Any]:
    """List stock moves (the ledger), newest first, filtered by product, warehouse, kind, order and day."""
    user, session = api_user(), db()
    _require(user, flow.STOCK_READ)
    stmt = (
        select(LogisticsMove, Product.sku, LogisticsLocation.code)
        .join(Product, Product.id == LogisticsMove.product_id)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsMove.location_id)
        .order_by(LogisticsMove.id.desc())
    )
    for name, column in (
        ("product_id", LogisticsMove.product_id),
        ("warehouse_id", LogisticsMove.warehouse_id),
        ("kind", LogisticsMove.kind),
        ("order_id", LogisticsMove.order_id),
    ):
        if args.get(name):
            stmt = stmt.where(column == args[name])
    if args.get("order_id"):  # an order outside the caller's scope has no moves to show
        stmt = stmt.where(LogisticsMove.order_id.in_(select(Order.id).where(order_scope(user))))
    if args.get("date_from"):
        stmt = stmt.where(LogisticsMove.at >= day_start(args["date_from"]))
    if args.get("date_to"):
        upper = day_end(args["date_to"])
        if upper is not None:
            stmt = stmt.where(LogisticsMove.at < upper)
    before = _cursor_id(MOVE_CURSOR, args.get("cursor"))
    if before is not None:
        stmt = stmt.where(LogisticsMove.id < before)
    limit = args["limit"]
    rows = session.execute(stmt.limit(limit + 1)).tuples().all()
    next_cursor = encode_cursor(MOVE_CURSOR, rows[limit - 1][0].id) if len(rows) > limit else None
    hidden = stock.moves_outside_scope(session, user, [move for move, _sku, _code in rows[:limit]])
    return {
        "items": [_move_out(move, sku, code, hidden=move.id in hidden) for move, sku, code in rows[:limit]],
        "next_cursor": next_cursor,
    }


def _move_out(move: LogisticsMove, sku: str, code: str, *, hidden: bool) -> dict[str, Any]:
    """One move for the API; a move of an order outside the caller's scope keeps its
    quantities but names no order, shipment or return (``stock.moves_outside_scope``)."""
    item = {
        "id": move.id,
        "kind": move.kind,
        "product_id": move.product_id,
        "sku": sku,
        "warehouse_id": move.warehouse_id,
        "location_id": move.location_id,
        "location_code": code,
        "quantity": move.quantity,
        "order_id": move.order_id,
        "shipment_id": move.shipment_id,
        "count_id": move.count_id,
        "return_id": move.return_id,
        "reference": move.reference,
        "note": move.note,
        "at": move.at,
    }
    if hidden:
        item.update(order_id=None, shipment_id=None, return_id=None, reference="", note="")
    return item


# --------------------------------------------------------------------------- orders and shipments


@blp.route("/orders/<int:order_id>/logistics", methods=["GET"])
@blp.response(200, LogisticsOrderSchema)
@errors(blp, 401, 403, 404)
def order_logistics(order_id: int) -> dict[str, Any]:
    """Read an order's logistics: remote or local, promised date, per-line quantities, reservations, shipments."""
    user, session = api_user(), db()
    order = get_order(session, user, order_id)
    _require(user, flow.STOCK_READ)
    facts = session.get(LogisticsOrder, order.id)
    reservations = session.execute(
        select(LogisticsReservation, LogisticsLocation.code)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsReservation.location_id)
        .where(LogisticsReservation.order_id == order.id, LogisticsReservation.quantity > 0)
        .order_by(LogisticsReservation.id)
    ).tuples()
    shipments = session.scalars(
        select(LogisticsShipment).where(LogisticsShipment.order_id == order.id).order_by(LogisticsShipment.id)
    )
    return {
        "order": _order_ref(order),
        "confirmed": facts is not None,
        "remote": bool(facts and facts.remote),
        "warehouse_id": facts.warehouse_id if facts else None,
        "allow_partial": facts.allow_partial if facts else True,
        "promised_date": facts.promised_date if facts else order.requested_date,
        "ready_at": facts.ready_at if facts else None,
        "ageing_level": facts.ageing_level if facts else 0,
        "checked_at": facts.checked_at if facts else None,
        "backorder_closed_at": facts.backorder_closed_at if facts else None,
        "lines": [
            {
                "order_line_id": row["line"].id,
                "sku": row["line"].product.sku,
                "ordered": row["ordered"],
                "reserved": row["reserved"],
                "shipped": row["shipped"],
                "backorder": row["backorder"],
                "returned": row["returned"],
            }
            for row in line_rows(session, order)
        ],
        "reservations": [
            {
                "id": r.id,
                "order_line_id": r.order_line_id,
                "product_id": r.product_id,
                "location_id": r.location_id,
                "location_code": code,
                "quantity": r.quantity,
            }
            for r, code in reservations
        ],
        "shipments": [_shipment(session, s, order) for s in shipments],
    }


@blp.route("/orders/<int:order_id>/shipments", methods=["POST"])
@blp.doc(requestBody=json_body(LogisticsPlanInSchema, required=False, example={"lines": {"12": "2"}}))
@blp.response(201, LogisticsShipmentSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def plan_shipment(order_id: int) -> tuple[dict[str, Any], int]:
    """Plan a shipment of the order's reserved quantities (all, or the given line quantities)."""
    from plugins.logistics import shipping

    user, session = api_user(), db()
    values = _load(LogisticsPlanInSchema, read_json(required=False))
    order = get_order(session, user, order_id, for_update=True)
    _require(user, flow.SHIPPING_MANAGE)
    shipment = shipping.plan_shipment(session, user, order, lines=values["lines"] or None)
    return _shipment_answer(session, user, shipment.id), 201


@blp.route("/shipments/<int:shipment_id>", methods=["GET"])
@blp.response(200, LogisticsShipmentSchema)
@errors(blp, 401, 403, 404)
def get_shipment(shipment_id: int) -> dict[str, Any]:
    """Read a shipment with its lines, packages and tracking events."""
    user, session = api_user(), db()
    shipment, order = _visible_shipment(session, user, shipment_id)
    _require(user, flow.STOCK_READ, flow.RECEIPT_CONFIRM)
    return _shipment(session, shipment, order)


@blp.route("/shipments/<int:shipment_id>/packages", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        LogisticsPackageInSchema, example={"weight": "12.5", "length": "60", "width": "40", "height": "35"}
    )
)
@blp.response(201, LogisticsShipmentSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def add_package(shipment_id: int) -> tuple[dict[str, Any], int]:
    """Add a package (weight in kg, dimensions in cm, all above zero) to a shipment."""
    from plugins.logistics import shipping

    user, session = api_user(), db()
    values = _load(LogisticsPackageInSchema, read_json())
    _visible_shipment(session, user, shipment_id, for_update=True)
    _require(user, flow.SHIPPING_MANAGE)
    shipping.add_package(
        session,
        user,
        shipment_id,
        values["weight"],
        values["length"],
        values["width"],
        values["height"],
        values["note"],
    )
    return _shipment_answer(session, user, shipment_id), 201


@blp.route("/shipments/<int:shipment_id>/carrier", methods=["POST"])
@blp.doc(requestBody=json_body(LogisticsCarrierInSchema, example={"service_id": 3, "override_reason": ""}))
@blp.response(200, LogisticsShipmentSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def choose_carrier(shipment_id: int) -> dict[str, Any]:
    """Choose the carrier's service; another than the suggested one needs `override_reason` (LG-3)."""
    from plugins.logistics import shipping

    user, session = api_user(), db()
    values = _load(LogisticsCarrierInSchema, read_json())
    _visible_shipment(session, user, shipment_id, for_update=True)
    _require(user, flow.SHIPPING_MANAGE)
    shipping.choose_carrier(session, user, shipment_id, values["service_id"], override_reason=values["override_reason"])
    return _shipment_answer(session, user, shipment_id)


@blp.route("/shipments/<int:shipment_id>/ship", methods=["POST"])
@blp.doc(requestBody=json_body(LogisticsShipInSchema, required=False, example={"tracking_number": "SF1234567890"}))
@blp.response(200, LogisticsShipmentSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def ship(shipment_id: int) -> dict[str, Any]:
    """Ship: issue the picked goods from stock; remote shipments need carrier, tracking and insurance (LG-1, LG-11)."""
    from plugins.logistics import shipping

    user, session = api_user(), db()
    values = _load(LogisticsShipInSchema, read_json(required=False))
    _visible_shipment(session, user, shipment_id, for_update=True)
    _require(user, flow.SHIPPING_MANAGE)
    shipping.ship(session, user, shipment_id, tracking_number=values["tracking_number"], insured=values["insured"])
    return _shipment_answer(session, user, shipment_id)


@blp.route("/shipments/<int:shipment_id>/events", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        LogisticsEventInSchema,
        example={"code": "in_transit", "at": "2026-12-02T09:30:00+08:00", "place": "成都转运中心"},
    )
)
@blp.response(201, LogisticsShipmentSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def add_event(shipment_id: int) -> tuple[dict[str, Any], int]:
    """Add a tracking event by hand (`delivered` marks the shipment delivered) (LG-4, LG-5)."""
    from plugins.logistics import tracking

    user, session = api_user(), db()
    values = _load(LogisticsEventInSchema, read_json())
    _visible_shipment(session, user, shipment_id, for_update=True)
    _require(user, flow.SHIPPING_MANAGE, flow.DELIVERY_MANAGE)
    tracking.add_event(
        session,
        user,
        shipment_id,
        values["code"],
        values["at"] or company_now(),
        values["place"],
        values["description"],
    )
    return _shipment_answer(session, user, shipment_id), 201


@blp.route("/shipments/<int:shipment_id>/receipt", methods=["POST"])
@blp.response(200, LogisticsShipmentSchema)
@errors(blp, 401, 403, 404, 409)
def confirm_receipt(shipment_id: int) -> dict[str, Any]:
    """Confirm the customer received the shipment (the customer's portal account, or staff recording it) (LG-7)."""
    from plugins.logistics import delivery

    user, session = api_user(), db()
    _visible_shipment(session, user, shipment_id, for_update=True)
    _require(user, flow.RECEIPT_CONFIRM, flow.DELIVERY_MANAGE)
    delivery.confirm_receipt(session, user, shipment_id)
    return _shipment_answer(session, user, shipment_id)


# --------------------------------------------------------------------------- returns


@blp.route("/returns")
class Returns(MethodView):
    """Returns (退换货) of the orders in your data scope."""

    @blp.arguments(LogisticsReturnQuerySchema, location="query", unknown="raise")
    @blp.response(200, LogisticsReturnPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List returns newest first, by status and order; only orders in your data scope."""
        user, session = api_user(), db()
        _require(user, flow.STOCK_READ, flow.RETURNS_REQUEST)
        scope = visible_orders(user).with_only_columns(Order.id)
        stmt = (
            select(LogisticsReturn, Order)
            .join(Order, Order.id == LogisticsReturn.order_id)
            .where(LogisticsReturn.order_id.in_(scope))
            .order_by(LogisticsReturn.id.desc())
        )
        if args.get("status"):
            stmt = stmt.where(LogisticsReturn.status == args["status"])
        if args.get("order_id"):
            stmt = stmt.where(LogisticsReturn.order_id == args["order_id"])
        before = _cursor_id(RETURN_CURSOR, args.get("cursor"))
        if before is not None:
            stmt = stmt.where(LogisticsReturn.id < before)
        limit = args["limit"]
        rows = session.execute(stmt.limit(limit + 1)).tuples().all()
        next_cursor = encode_cursor(RETURN_CURSOR, rows[limit - 1][0].id) if len(rows) > limit else None
        return {"items": [_return(r, order) for r, order in rows[:limit]], "next_cursor": next_cursor}

    @blp.doc(
        requestBody=json_body(
            LogisticsReturnInSchema,
            example={
                "order_id": 7,
                "lines": [{"order_line_id": 12, "quantity": "1", "reason": "quality", "detail": "电机异响"}],
                "note": "客户已盖章",
            },
        )
    )
    @blp.response(201, LogisticsReturnSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def post(self) -> tuple[dict[str, Any], int]:
        """Request a return of delivered lines (at most delivered minus already returned) (LG-9)."""
        from plugins.logistics import returns

        user, session = api_user(), db()
        values = _load(LogisticsReturnInSchema, read_json())
        order = get_order(session, user, values["order_id"], for_update=True)
        _require(user, flow.RETURNS_REQUEST)
        lines = [
            returns.ReturnLineInput(line["order_line_id"], line["quantity"], line["reason"], line["detail"])
            for line in values["lines"]
        ]
        created = returns.request_return(
            session, user, order.id, lines, note=values["note"], exception_reason=values["exception_reason"]
        )
        return _return_answer(session, user, created.id), 201


@blp.route("/returns/<int:return_id>", methods=["GET"])
@blp.response(200, LogisticsReturnSchema)
@errors(blp, 401, 403, 404)
def get_return(return_id: int) -> dict[str, Any]:
    """Read a return with its lines and QC dispositions."""
    user, session = api_user(), db()
    found, order = _visible_return(session, user, return_id)
    _require(user, flow.STOCK_READ, flow.RETURNS_REQUEST)
    return _return(found, order)


@blp.route("/returns/<int:return_id>/review", methods=["POST"])
@blp.doc(requestBody=json_body(LogisticsReturnReviewInSchema, example={"approve": True, "note": "确属质量问题"}))
@blp.response(200, LogisticsReturnSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def review_return(return_id: int) -> dict[str, Any]:
    """The regional manager's review of a requested return (approve passes it on, else rejected)."""
    from plugins.logistics import returns

    user, session = api_user(), db()
    values = _load(LogisticsReturnReviewInSchema, read_json())
    _visible_return(session, user, return_id, for_update=True)
    _require(user, flow.RETURNS_REVIEW)
    returns.review_return(session, user, return_id, approve=values["approve"], note=values["note"])
    return _return_answer(session, user, return_id)


@blp.route("/returns/<int:return_id>/decision", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        LogisticsReturnDecisionInSchema,
        example={"approve": True, "note": "同意退货", "approved_quantities": {"5": "1"}},
    )
)
@blp.response(200, LogisticsReturnSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def decide_return(return_id: int) -> dict[str, Any]:
    """The marketing director's decision; a non-quality reason needs `exception_reason` to be approved."""
    from plugins.logistics import returns

    user, session = api_user(), db()
    values = _load(LogisticsReturnDecisionInSchema, read_json())
    _visible_return(session, user, return_id, for_update=True)
    _require(user, flow.RETURNS_APPROVE)
    returns.decide_return(
        session,
        user,
        return_id,
        approve=values["approve"],
        note=values["note"],
        approved_quantities=values["approved_quantities"],
        exception_reason=values["exception_reason"],
    )
    return _return_answer(session, user, return_id)


@blp.route("/returns/<int:return_id>/receipt", methods=["POST"])
@blp.doc(requestBody=json_body(LogisticsReturnReceiptInSchema, example={"quantities": {"5": "1"}}))
@blp.response(200, LogisticsReturnSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def receive_return(return_id: int) -> dict[str, Any]:
    """Record the returned goods received (never above the approved quantity)."""
    from plugins.logistics import returns

    user, session = api_user(), db()
    values = _load(LogisticsReturnReceiptInSchema, read_json())
    _visible_return(session, user, return_id, for_update=True)
    _require(user, flow.RETURNS_RECEIVE)
    returns.receive_return(session, user, return_id, values["quantities"])
    return _return_answer(session, user, return_id)


@blp.route("/returns/<int:return_id>/inspection", methods=["POST"])
@blp.doc(
    requestBody=json_body(
        LogisticsInspectionInSchema,
        example={"dispositions": [{"line_id": 5, "disposition": "restock", "quantity": "1", "note": "复检合格"}]},
    )
)
@blp.response(200, LogisticsReturnSchema)
@errors(blp, 400, 401, 403, 404, 409, 415, 422)
def inspect_return(return_id: int) -> dict[str, Any]:
    """QC inspection: restock, rework, downgrade or scrap per unit, each posting its stock move; closes the return."""
    from plugins.logistics import returns

    user, session = api_user(), db()
    values = _load(LogisticsInspectionInSchema, read_json())
    _visible_return(session, user, return_id, for_update=True)
    _require(user, flow.RETURNS_INSPECT)
    returns.inspect_return(
        session,
        user,
        return_id,
        [(d["line_id"], d["disposition"], d["quantity"], d["location_id"], d["note"]) for d in values["dispositions"]],
    )
    return _return_answer(session, user, return_id)


# --------------------------------------------------------------------------- carriers


def _candidate(candidate: Any) -> dict[str, Any]:
    return {
        "carrier": _ref(candidate.carrier),
        "service": _ref(candidate.service),
        "transit_days": candidate.transit_days,
        "arrival": candidate.arrival,
        "freight": candidate.freight,
        "insurance": candidate.insurance,
        "total": candidate.total,
        "meets_date": candidate.meets_date,
        "chosen": candidate.chosen,
        "reasons": [str(reason) for reason in candidate.reasons],
    }


@blp.route("/carriers/suggestion", methods=["GET"])
@blp.arguments(LogisticsSuggestionQuerySchema, location="query", unknown="raise")
@blp.response(200, LogisticsSuggestionSchema)
@errors(blp, 401, 403, 422)
def carrier_suggestion(args: dict[str, Any]) -> dict[str, Any]:
    """Suggest the cheapest carrier service arriving by the promised date, with every candidate and why (LG-3)."""
    from plugins.logistics import carriers

    user, session = api_user(), db()
    _require(user, flow.SHIPPING_MANAGE, flow.CARRIERS_MANAGE)
    from_province = args.get("from_province")
    if not from_province:
        warehouse = default_warehouse(session)
        from_province = warehouse.province if warehouse is not None else ""
    suggestion = carriers.suggest(
        session,
        from_province=from_province,
        to_province=args["to_province"],
        parcel=carriers.Parcel(args["weight"], args["volume"]),
        promised_date=args["promised_date"],
        ship_date=args["ship_date"] or company_now().date(),
        insured_value=args["insured_value"],
    )
    return {
        "best": _candidate(suggestion.best) if suggestion.best is not None else None,
        "explanation": str(suggestion.explanation),
        "candidates": [_candidate(c) for c in suggestion.candidates],
    }


# --------------------------------------------------------------------------- the carriers' webhook


@webhooks.route("/<string:carrier_code>/tracking", methods=["POST"])
@webhooks.doc(
    security=[],
    parameters=[
        {
            "in": "header",
            "name": SECRET_HEADER,
            "required": True,
            "schema": {"type": "string"},
            "description": "The carrier's webhook secret (generated on the carrier's settings screen).",
        }
    ],
    requestBody=json_body(
        LogisticsWebhookInSchema,
        example={
            "tracking_number": "SF1234567890",
            "events": [
                {"id": "ev-1", "code": "in_transit", "at": "2026-12-02T09:30:00+08:00", "place": "成都转运中心"},
                {"id": "ev-2", "code": "delivered", "at": "2026-12-03T15:10:00+08:00", "description": "本人签收"},
            ],
        },
    ),
)
@webhooks.response(200, LogisticsWebhookSchema)
@errors(webhooks, 400, 403, 404, 415, 422)
def carrier_webhook(carrier_code: str) -> dict[str, Any]:
    """A carrier pushes tracking events for one tracking number; a wrong secret is 403, an unknown number 404.

    Events already recorded (same event id) are not recorded twice, so the carrier may
    repeat a call safely. A `delivered` event marks the shipment delivered (LG-4, LG-5).
    """
    from plugins.logistics import tracking

    session = db()
    presented = request.headers.get(SECRET_HEADER, "")
    payload = read_json()
    events = tracking.receive_webhook(session, carrier_code, presented, payload)
    answer = {
        "tracking_number": str(payload.get("tracking_number", "")),
        "events": [_event(e) for e in events],
    }
    commit()
    return answer

"""API: orders (订单) — create (idempotently), list, read, change while draft, act, history.

Thin endpoints over :mod:`core.services.orders` and :mod:`core.workflow`: the services
validate with core's schemas, check permissions and apply the data scope, so a record
outside the caller's scope answers 404 exactly like one that does not exist (CORE-4).
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import inspect, select
from sqlalchemy.orm import joinedload, selectinload

from core.api.auth import api_user, require_api_user
from core.api.common import (
    IF_MATCH,
    PageQuerySchema,
    change_schema,
    commit,
    errors,
    etag,
    json_body,
    merge_version,
    read_json,
)
from core.contrib import STATUSES
from core.models import Customer, Order, OrderLine, OrderTransition, User
from core.schemas import MAX_ID, ActionInSchema, OrderInSchema, OrderOutSchema, OrderPatchSchema
from core.security.fields import hides_person
from core.services import ServiceError
from core.services.orders import (
    OrderFilters,
    copy_order,
    create_order_once,
    get_order,
    list_orders,
    take_action,
    update_order,
)
from core.web import db, ordo
from core.workflow import Workflow, WorkflowError

blp = Blueprint(
    "api_orders",
    __name__,
    url_prefix="/api/v1/orders",
    description="Orders (订单): create, list, change while draft, take workflow actions, read the history.",
)
blp.before_request(require_api_user)

OrderChangeSchema = change_schema(OrderPatchSchema, "OrderChangeSchema", keep_required=("version",))

EXAMPLE = {
    "customer": "C001",
    "channel": "phone",
    "reference": "PO-2026-001",
    "requested_date": "2026-12-15",
    "payment_method": "monthly_settlement",
    "ship_to": {
        "contact": "张伟",
        "phone": "023-6000-0001",
        "province": "重庆市",
        "city": "重庆市",
        "address": "渝北区金开大道 1 号",
    },
    "lines": [{"product": "P-100", "quantity": "2", "unit_price": "1150.00"}, {"product": "P-300", "quantity": "100"}],
}

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "Retry-safe creation: the same key with the same body returns the first order (201, "
    "`Idempotent-Replayed: true`); with another body it answers 409. Keys are per caller.",
}


class OrderSummarySchema(OrderOutSchema):
    """An order as listed: the header and totals, without lines."""

    class Meta:
        exclude = ("lines",)


class OrderPageSchema(Schema):
    """One page of orders, newest first, and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(OrderSummarySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class OrderListQuerySchema(PageQuerySchema):
    """Filters and paging of the order list."""

    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "Coarse status."})
    step = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Workflow step key."})
    customer = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "Customer code (or id)."}
    )
    date_from = fields.Date(metadata={"description": "Orders taken on or after this day (ISO date)."})
    date_to = fields.Date(metadata={"description": "Orders taken on or before this day (ISO date)."})
    q = fields.String(
        validate=validate.Length(max=200), metadata={"description": "Text in the number, reference or customer."}
    )


class ActionRequestSchema(ActionInSchema):
    """The optional body of an action: a reason, and the version last read (refused if stale)."""

    version = fields.Integer(strict=True, load_default=None, allow_none=True)


class ActionOptionSchema(Schema):
    """An action the order's step offers now: allowed, or blocked with every reason."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    target = fields.String(required=True, metadata={"description": "The step the order moves to."})
    target_label = fields.String(required=True)
    needs_reason = fields.Boolean(required=True)
    allowed = fields.Boolean(required=True)
    blocked_by = fields.List(fields.String(), required=True)
    style = fields.String()
    confirm = fields.String(allow_none=True)


class ActionListSchema(Schema):
    """The actions of an order's current step."""

    items = fields.List(fields.Nested(ActionOptionSchema), required=True)


class ActorSchema(Schema):
    """Who took an action (for portal users, the supplier's staff show as id null, "staff")."""

    id = fields.Integer(required=True, allow_none=True)
    name = fields.String(required=True)


class HistoryEntrySchema(Schema):
    """One recorded transition (CORE-6): what was done, from where to where, by whom, when and why."""

    id = fields.Integer(required=True)
    action = fields.String(required=True)
    from_step = fields.String(required=True)
    to_step = fields.String(required=True)
    from_status = fields.String(required=True)
    to_status = fields.String(required=True)
    actor = fields.Nested(ActorSchema, allow_none=True, required=True)
    at = fields.DateTime(required=True)
    reason = fields.String(required=True)


class HistorySchema(Schema):
    """Every transition of an order, oldest first."""

    items = fields.List(fields.Nested(HistoryEntrySchema), required=True)


def _filters(args: dict[str, Any]) -> OrderFilters:
    step = args.get("step")
    if step is not None and step not in ordo().registry.steps:
        raise ServiceError("invalid", "unknown step", {"step": [f"Unknown step {step!r}."]})
    return OrderFilters(
        status=args.get("status"),
        step=step,
        customer=_customer_filter(args.get("customer")),
        date_from=args.get("date_from"),
        date_to=args.get("date_to"),
        text=args.get("q"),
    )


def _customer_filter(value: str | None) -> int | str | None:
    """A customer given by code, or by id when no customer has that code."""
    if value is None:
        return None
    value = value.strip()
    by_code = db().scalar(select(Customer.id).where(Customer.code == value))
    if by_code is not None:
        return by_code
    # An id beyond the database's ids names no customer: it stays text, like an unknown code.
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID else value


def _with_etag(order: Order, status: int = 200) -> tuple[Order, int, dict[str, str]]:
    return _answer(order), status, {"ETag": etag(order.version)}


def _answer(order: Order) -> Order:
    """``order`` with what its answer shows (customer, lines, their products) read in two queries.

    After ``commit()`` every object is expired, so the answer would otherwise read the
    order, its customer, its lines and then each line's product one query at a time. An
    order read in this request and not committed since (a GET) is answered as it is.
    """
    state = inspect(order)
    if not state.expired_attributes:
        return order
    identity = state.identity  # the id without reading the expired order first
    order_id = identity[0] if identity else order.id
    return (
        db()
        .scalars(
            select(Order)
            .where(Order.id == order_id)
            .options(joinedload(Order.customer), selectinload(Order.lines).joinedload(OrderLine.product))
        )
        .one()
    )


@blp.route("")
class Orders(MethodView):
    """The order list and order creation."""

    @blp.arguments(OrderListQuerySchema, location="query", unknown="raise")
    @blp.response(200, OrderPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the orders in your data scope, newest first, filtered and paged by cursor."""
        user = api_user()
        if not user.can("orders.read"):
            raise ServiceError("forbidden", "you lack the permission 'orders.read'", status=403)
        items, next_cursor = list_orders(db(), user, _filters(args), args["limit"], args.get("cursor"))
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(requestBody=json_body(OrderInSchema, example=EXAMPLE), parameters=[IDEMPOTENCY_KEY])
    @blp.response(201, OrderOutSchema, headers={"Location": {"schema": {"type": "string"}}})
    @errors(blp, 400, 401, 403, 409, 415, 422)
    def post(self) -> tuple[Order, int, dict[str, str]]:
        """Create a draft order; send `Idempotency-Key` so a retry never creates it twice."""
        order, replayed = create_order_once(db(), api_user(), read_json(), request.headers.get("Idempotency-Key"))
        commit()
        order, status, headers = _with_etag(order, 201)
        headers["Location"] = url_for(".OrderItem", order_id=order.id)
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return order, status, headers


@blp.route("/<int:order_id>")
class OrderItem(MethodView):
    """One order."""

    @blp.response(200, OrderOutSchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int) -> tuple[Order, int, dict[str, str]]:
        """Read an order with its lines and totals; the `ETag` is its version."""
        return _with_etag(get_order(db(), api_user(), order_id))

    @blp.doc(requestBody=json_body(OrderChangeSchema, example={"version": 1, "reference": "PO-2026-001-A"}))
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, OrderOutSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def patch(self, order_id: int) -> tuple[Order, int, dict[str, str]]:
        """Change a draft order; `version` (or `If-Match`) must be the one you read, else 409.

        Fields left out stay as they are; `lines` given replace all lines. Once submitted an
        order is not changed in place (409); later changes go through a change request.
        """
        user = api_user()
        body = merge_version(read_json())
        order = get_order(db(), user, order_id, for_update=True)
        update_order(db(), user, order, body)
        commit()
        return _with_etag(order)


@blp.route("/<int:order_id>/actions")
class OrderActions(MethodView):
    """The workflow actions an order offers now."""

    @blp.response(200, ActionListSchema)
    @errors(blp, 401, 404, 409)
    def get(self, order_id: int) -> dict[str, Any]:
        """List the actions of the order's step: allowed, or blocked with every reason (permission, guards)."""
        user = api_user()
        order = get_order(db(), user, order_id)
        workflow = Workflow(ordo().registry, db())
        try:
            options = workflow.options(order, user)
        except WorkflowError as exc:
            raise ServiceError(exc.code, exc.message, {"reasons": exc.reasons}, status=409) from None
        return {
            "items": [
                {
                    "name": option.action.name,
                    "label": option.action.label,
                    "target": option.target,
                    "target_label": workflow.steps[option.target].label,
                    "needs_reason": option.action.needs_reason,
                    "allowed": option.allowed,
                    "blocked_by": option.blocked_by,
                    "style": option.action.style,
                    "confirm": option.action.confirm,
                }
                for option in options
            ]
        }


@blp.route("/<int:order_id>/actions/<name>")
class OrderAction(MethodView):
    """Taking one workflow action."""

    @blp.doc(requestBody=json_body(ActionRequestSchema, required=False, example={"reason": "customer withdrew"}))
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, OrderOutSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def post(self, order_id: int, name: str) -> tuple[Order, int, dict[str, str]]:
        """Take action `name` (submit, confirm, complete, cancel, reject, or a plugin's) and return the order.

        A guard's veto answers 409 with every reason in `details.reasons`; an action
        that needs a reason (cancel, reject) answers 422 without one.
        """
        user = api_user()
        try:
            values = ActionRequestSchema().load(merge_version(read_json(required=False)))
        except ValidationError as exc:
            raise ServiceError("invalid", "the action request is not valid", exc.messages) from None
        order = get_order(db(), user, order_id, for_update=True)
        take_action(db(), ordo().registry, user, order, name, values["reason"], values["version"])
        commit()
        return _with_etag(order)


@blp.route("/<int:order_id>/copy")
class OrderCopy(MethodView):
    """Copying an order into a new draft."""

    @blp.response(201, OrderOutSchema, headers={"Location": {"schema": {"type": "string"}}})
    @errors(blp, 401, 403, 404, 409)
    def post(self, order_id: int) -> tuple[Order, int, dict[str, str]]:
        """Create a new draft with the order's customer, header and lines, and return it.

        Contract and external references are not copied. A guard's veto (billing's
        credit hold) answers 409 with every reason in `details.reasons`.
        """
        user = api_user()
        source = get_order(db(), user, order_id)
        order = copy_order(db(), ordo().registry, user, source)
        commit()
        order, status, headers = _with_etag(order, 201)
        headers["Location"] = url_for(".OrderItem", order_id=order.id)
        return order, status, headers


@blp.route("/<int:order_id>/history")
class OrderHistory(MethodView):
    """An order's recorded transitions."""

    @blp.response(200, HistorySchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """Every transition of the order, oldest first: action, from/to step and status, actor, time, reason."""
        viewer = api_user()
        order = get_order(db(), viewer, order_id)
        rows = db().execute(
            select(OrderTransition, User)
            .outerjoin(User, User.id == OrderTransition.actor_id)
            .where(OrderTransition.order_id == order.id)
            .order_by(OrderTransition.id)
        )
        return {
            "items": [
                {
                    "id": t.id,
                    "action": t.action,
                    "from_step": t.from_step,
                    "to_step": t.to_step,
                    "from_status": t.from_status,
                    "to_status": t.to_status,
                    "actor": (
                        None
                        if actor is None
                        else {"id": None, "name": "staff"}
                        if hides_person(viewer, actor)
                        else {"id": actor.id, "name": actor.name}
                    ),
                    "at": t.at,
                    "reason": t.reason,
                }
                for t, actor in rows
            ]
        }

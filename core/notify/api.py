"""API: your in-app notifications (站内通知) and, for administrators, the outbox (发件箱).

* ``/api/v1/notifications`` — the caller's own notifications (a portal user's include
  their customer's), newest first, keyset-paged; mark one or all read. Anyone else's
  notification answers 404.
* ``/api/v1/outbox`` — every message queued for delivery, for holders of
  ``outbox.manage``: list by status, read one, retry (perhaps to a corrected address),
  cancel, mark sent. Thin over :mod:`core.notify.outbox`, which records each remedy in
  the audit log.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, commit, errors, json_body, no_body, read_json, refuse_unknown_fields
from core.models import Notification, Order, OutboxMessage
from core.models.notify import OUTBOX_STATUSES
from core.notify import inbox
from core.notify.outbox import cancel, get_message, mark_sent, retry
from core.security.scopes import order_scope
from core.services import ServiceError
from core.services.paging import encode_cursor
from core.web import db

notifications_blp = Blueprint(
    "api_notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    description="Your in-app notifications (站内通知): the bell's list; a portal user's include the customer's.",
)
notifications_blp.before_request(require_api_user)

outbox_blp = Blueprint(
    "api_outbox",
    __name__,
    url_prefix="/api/v1/outbox",
    description="The outbox (发件箱): every message queued for delivery, its attempts and errors; "
    "retry, cancel or mark sent (needs `outbox.manage`).",
)

OUTBOX_CURSOR = "x"


def _require_outbox_manager() -> None:
    user = api_user()
    if not user.can("outbox.manage"):
        raise ServiceError("forbidden", "you lack the permission 'outbox.manage'", status=403)


outbox_blp.before_request(_require_outbox_manager)


# --- schemas ----------------------------------------------------------------------------


class OrderRefSchema(Schema):
    """The order a notification or message is about."""

    id = fields.Integer(required=True)
    number = fields.String(required=True)


class NotificationSchema(Schema):
    """One in-app notification, in the language it was written in."""

    id = fields.Integer(required=True)
    template = fields.String(required=True, metadata={"description": "The notification template's name."})
    subject = fields.String(required=True)
    body = fields.String(required=True)
    language = fields.String(required=True, metadata={"description": "zh_CN or en."})
    order = fields.Nested(
        OrderRefSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The order it is about, when you may see that order."},
    )
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(allow_none=True, required=True)
    read = fields.Boolean(required=True)


class NotificationPageSchema(Schema):
    """One page of notifications, newest first, the unread count and the next page's cursor."""

    items = fields.List(fields.Nested(NotificationSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    unread = fields.Integer(required=True, metadata={"description": "How many of yours are unread (the bell)."})


class NotificationQuerySchema(PageQuerySchema):
    """Which notifications to list."""

    unread = fields.Boolean(load_default=False, metadata={"description": "Only unread ones."})


class ReadAllSchema(Schema):
    """What ``read-all`` did."""

    marked = fields.Integer(required=True, metadata={"description": "How many were unread and are now read."})
    unread = fields.Integer(required=True)


class OutboxMessageSchema(Schema):
    """One message to one address over one channel, rendered when it was queued."""

    id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "One of: " + ", ".join(OUTBOX_STATUSES) + "."})
    template = fields.String(required=True)
    channel = fields.String(required=True, metadata={"description": "email, inapp or a plugin's channel."})
    address = fields.String(required=True)
    recipient_name = fields.String(required=True)
    user_id = fields.Integer(allow_none=True, required=True)
    customer_id = fields.Integer(allow_none=True, required=True)
    order_id = fields.Integer(allow_none=True, required=True)
    language = fields.String(required=True)
    subject = fields.String(required=True)
    body = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(required=True)
    last_error = fields.String(required=True)
    message_id = fields.String(required=True, metadata={"description": "The transport's id (an e-mail's Message-ID)."})
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True, required=True)


class OutboxPageSchema(Schema):
    """One page of outbox messages, newest first, and the next page's cursor."""

    items = fields.List(fields.Nested(OutboxMessageSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class OutboxQuerySchema(PageQuerySchema):
    """Filters of the outbox list."""

    status = fields.String(validate=validate.OneOf(OUTBOX_STATUSES), metadata={"description": "Only this status."})
    channel = fields.String(validate=validate.Length(min=1, max=32), metadata={"description": "Only this channel."})


class NoBodySchema(Schema):
    """No body is needed; an empty object (or none) is accepted."""


NO_BODY = json_body(NoBodySchema, required=False)


class RetrySchema(Schema):
    """The optional body of a retry: a corrected address."""

    address = fields.String(metadata={"description": "Send it here instead (the old address stays in the audit log)."})


# --- notifications ----------------------------------------------------------------------


def notification_out(notification: Notification, orders: dict[int, str]) -> dict[str, Any]:
    """``notification`` in the API's shape; the order only when the caller may see it."""
    order_id = notification.order_id
    return {
        "id": notification.id,
        "template": notification.template,
        "subject": notification.subject,
        "body": notification.body,
        "language": notification.language,
        "order": {"id": order_id, "number": orders[order_id]} if order_id in orders else None,
        "created_at": notification.created_at,
        "read_at": notification.read_at,
        "read": notification.read_at is not None,
    }


def _orders_seen(order_ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in order_ids if i is not None}
    if not ids:
        return {}
    stmt = select(Order.id, Order.number).where(Order.id.in_(ids), order_scope(api_user()))
    return dict(db().execute(stmt).tuples().all())


@notifications_blp.route("")
class Notifications(MethodView):
    """Your notifications."""

    @notifications_blp.arguments(NotificationQuerySchema, location="query", unknown="raise")
    @notifications_blp.response(200, NotificationPageSchema)
    @errors(notifications_blp, 401, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List your notifications newest first; `unread=true` for unread ones only; paged by cursor."""
        session, user = db(), api_user()
        rows, next_cursor = inbox.list_notifications(
            session, user, unread_only=args["unread"], limit=args["limit"], cursor=args.get("cursor")
        )
        orders = _orders_seen({n.order_id for n in rows})
        return {
            "items": [notification_out(n, orders) for n in rows],
            "next_cursor": next_cursor,
            "unread": inbox.unread_count(session, user),
        }


@notifications_blp.route("/<int:notification_id>/read", methods=["POST"])
@notifications_blp.doc(requestBody=NO_BODY)
@notifications_blp.response(200, NotificationSchema)
@errors(notifications_blp, 401, 404)
def read_notification(notification_id: int) -> dict[str, Any]:
    """Mark one of your notifications read (reading it again keeps the first time); another's is 404."""
    no_body()
    session, user = db(), api_user()
    inbox.mark_read(session, user, [notification_id])
    commit()
    notification = inbox.get_notification(session, user, notification_id)
    return notification_out(notification, _orders_seen({notification.order_id}))


@notifications_blp.route("/read-all", methods=["POST"])
@notifications_blp.doc(requestBody=NO_BODY)
@notifications_blp.response(200, ReadAllSchema)
@errors(notifications_blp, 401)
def read_all_notifications() -> dict[str, Any]:
    """Mark all your notifications read."""
    no_body()
    session, user = db(), api_user()
    marked = inbox.mark_read(session, user)
    commit()
    return {"marked": marked, "unread": inbox.unread_count(session, user)}


# --- the outbox -------------------------------------------------------------------------


@outbox_blp.route("")
class Outbox(MethodView):
    """The outbox."""

    @outbox_blp.arguments(OutboxQuerySchema, location="query", unknown="raise")
    @outbox_blp.response(200, OutboxPageSchema)
    @errors(outbox_blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List outbox messages newest first, by `status` and `channel`; paged by cursor."""
        limit = args["limit"]
        stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit + 1)
        if args.get("status"):
            stmt = stmt.where(OutboxMessage.status == args["status"])
        if args.get("channel"):
            stmt = stmt.where(OutboxMessage.channel == args["channel"])
        if args.get("cursor"):
            stmt = stmt.where(OutboxMessage.id < inbox.cursor_id(OUTBOX_CURSOR, args["cursor"]))
        rows = list(db().scalars(stmt))
        next_cursor = encode_cursor(OUTBOX_CURSOR, rows[limit - 1].id) if len(rows) > limit else None
        return {"items": rows[:limit], "next_cursor": next_cursor}


@outbox_blp.route("/<int:message_id>")
class OutboxItem(MethodView):
    """One outbox message."""

    @outbox_blp.response(200, OutboxMessageSchema)
    @errors(outbox_blp, 401, 403, 404)
    def get(self, message_id: int) -> OutboxMessage:
        """Read one message: rendered subject and body, attempts, last error."""
        return get_message(db(), message_id)


@outbox_blp.route("/<int:message_id>/retry", methods=["POST"])
@outbox_blp.doc(requestBody=json_body(RetrySchema, required=False, example={"address": "zhang.wei@example.com"}))
@outbox_blp.response(200, OutboxMessageSchema)
@errors(outbox_blp, 400, 401, 403, 404, 409, 415, 422)
def retry_message(message_id: int) -> OutboxMessage:
    """Queue a failed, uncertain or waiting message to be sent now, optionally to a corrected `address`."""
    body = refuse_unknown_fields(read_json(required=False), {"address"})
    address = body.get("address")
    if address is not None and not isinstance(address, str):
        raise ServiceError("invalid", "the request is not valid: address", {"address": ["Not a valid string."]})
    message = retry(db(), message_id, api_user(), address=(address or "").strip() or None)
    commit()
    return message


@outbox_blp.route("/<int:message_id>/cancel", methods=["POST"])
@outbox_blp.doc(requestBody=NO_BODY)
@outbox_blp.response(200, OutboxMessageSchema)
@errors(outbox_blp, 401, 403, 404, 409)
def cancel_message(message_id: int) -> OutboxMessage:
    """Cancel a message not yet sent: it will never be sent."""
    no_body()
    message = cancel(db(), message_id, api_user())
    commit()
    return message


@outbox_blp.route("/<int:message_id>/mark-sent", methods=["POST"])
@outbox_blp.doc(requestBody=NO_BODY)
@outbox_blp.response(200, OutboxMessageSchema)
@errors(outbox_blp, 401, 403, 404, 409)
def mark_message_sent(message_id: int) -> OutboxMessage:
    """Record that an uncertain message did arrive, so it is never sent again."""
    no_body()
    message = mark_sent(db(), message_id, api_user())
    commit()
    return message

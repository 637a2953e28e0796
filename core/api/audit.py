"""API: the audit log (审计日志) — read-only, filtered like the audit screen, paged by cursor.

For holders of ``audit.read``; entries about an order appear only when the order lies in
the caller's data scope. There is no endpoint that changes the log: it is append-only.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from core.api.auth import api_user, require_api_user
from core.api.common import PageQuerySchema, errors
from core.models import AuditLog, User
from core.schemas import MAX_ID
from core.services import ServiceError
from core.services.audit import AuditFilters, audit_entries
from core.services.paging import decode_cursor, encode_cursor
from core.web import db

blp = Blueprint(
    "api_audit",
    __name__,
    url_prefix="/api/v1/audit",
    description="The audit log (审计日志): who changed what, when, before and after, why, in which request.",
)
blp.before_request(require_api_user)

AUDIT_CURSOR = "a"


class AuditQuerySchema(PageQuerySchema):
    """Filters and paging of the audit log."""

    actor = fields.Integer(
        strict=False, validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "The acting user's id."}
    )
    entity = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "Record type: order, …"})
    action = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "E.g. create, update."})
    date_from = fields.Date(metadata={"description": "Entries on or after this company day (ISO date)."})
    date_to = fields.Date(metadata={"description": "Entries on or before this company day (ISO date)."})
    order = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "An order number: that order's entries."}
    )


class AuditActorSchema(Schema):
    """Who made the change."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)


class AuditEntrySchema(Schema):
    """One recorded change (CORE-6)."""

    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.Nested(AuditActorSchema, allow_none=True, required=True)
    entity = fields.String(required=True, metadata={"description": "Record type: order, customer, user, …"})
    entity_id = fields.Integer(allow_none=True, required=True)
    action = fields.String(required=True)
    changes = fields.Dict(
        required=True,
        metadata={"description": "Changed fields as [before, after] pairs, or the values recorded on creation."},
    )
    reason = fields.String(required=True)
    request_id = fields.String(required=True, metadata={"description": "The `X-Request-Id` of the request."})


class AuditPageSchema(Schema):
    """One page of entries, newest first, and the cursor of the next (null on the last page)."""

    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


def _cursor_id(cursor: str) -> int:
    value = decode_cursor(AUDIT_CURSOR, cursor)
    if not value.isdigit() or len(value) > 19:
        raise ServiceError("invalid", "bad cursor", {"cursor": ["Not a valid cursor."]})
    return int(value)


@blp.route("")
class AuditLogList(MethodView):
    """The audit log."""

    @blp.arguments(AuditQuerySchema, location="query", unknown="raise")
    @blp.response(200, AuditPageSchema)
    @errors(blp, 401, 403, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List audit entries newest first, filtered by who, what, when and order; paged by cursor."""
        user = api_user()
        if not user.can("audit.read"):
            raise ServiceError("forbidden", "you lack the permission 'audit.read'", status=403)
        filters = AuditFilters(
            actor_id=args.get("actor"),
            entity=args.get("entity"),
            action=args.get("action"),
            date_from=args.get("date_from"),
            date_to=args.get("date_to"),
            order=args.get("order"),
        )
        limit = args["limit"]
        stmt = audit_entries(user, filters).order_by(AuditLog.id.desc()).limit(limit + 1)
        if args.get("cursor"):
            stmt = stmt.where(AuditLog.id < _cursor_id(args["cursor"]))
        session = db()
        rows = list(session.scalars(stmt))
        next_cursor = encode_cursor(AUDIT_CURSOR, rows[limit - 1].id) if len(rows) > limit else None
        rows = rows[:limit]
        ids = {r.actor_id for r in rows if r.actor_id is not None}
        names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).tuples().all())
        return {
            "items": [
                {
                    "id": r.id,
                    "at": r.at,
                    "actor": {"id": r.actor_id, "name": names.get(r.actor_id, "")} if r.actor_id else None,
                    "entity": r.entity,
                    "entity_id": r.entity_id,
                    "action": r.action,
                    "changes": r.changes,
                    "reason": r.reason,
                    "request_id": r.request_id,
                }
                for r in rows
            ],
            "next_cursor": next_cursor,
        }

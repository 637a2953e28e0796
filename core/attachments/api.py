"""API: an order's attachments — list, upload (multipart), read, download, share, remove.

Thin endpoints over :mod:`core.attachments.service`: an order outside the caller's
scope answers 404 exactly like a missing one; refusals use Ordo's error envelope
(413 above the size limit, 422 for a refused type, 403 without the permission).
Portal users reach only the attachments shared with their customer.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from core.api import error_response
from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.attachments import service
from core.attachments.panel import upload_limit_mb
from core.attachments.service import AttachmentRefused
from core.labels import N_
from core.models import User
from core.models.files import ATTACHMENT_KINDS, OrderAttachment
from core.services import ServiceError
from core.web import db

blp = Blueprint(
    "api_attachments",
    __name__,
    url_prefix="/api/v1/orders",
    description="Attachments of an order (the customer's original order, contract, signed delivery note, "
    "acceptance report): checked by content, stored by SHA-256, downloaded within the order's scope.",
)
blp.before_request(require_api_user)


class UploaderSchema(Schema):
    """Who uploaded a file. Portal users see staff uploaders as `{"id": null, "name": "staff"}`."""

    id = fields.Integer(required=True, allow_none=True)
    name = fields.String(required=True)


class AttachmentSchema(Schema):
    """A file kept with an order; `content_type` is what its content was found to be."""

    id = fields.Integer(required=True)
    order_id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": list(ATTACHMENT_KINDS)})
    filename = fields.String(required=True, metadata={"example": "采购订单 PO-2026-001.pdf"})
    content_type = fields.String(required=True, metadata={"example": "application/pdf"})
    size = fields.Integer(required=True, metadata={"description": "Bytes."})
    sha256 = fields.String(required=True)
    note = fields.String(required=True)
    customer_visible = fields.Boolean(
        required=True,
        metadata={"description": "Whether the customer's portal users see it (always for their own uploads)."},
    )
    uploaded_by = fields.Nested(UploaderSchema, allow_none=True, required=True)
    uploaded_at = fields.DateTime(required=True)
    removed_at = fields.DateTime(allow_none=True, required=True)
    content_url = fields.String(required=True, metadata={"description": "Where to download the bytes."})


class AttachmentListSchema(Schema):
    """The order's attachments, oldest first (removed ones left out)."""

    items = fields.List(fields.Nested(AttachmentSchema), required=True)


class RemoveSchema(Schema):
    """Why the attachment is removed (kept in the order's audit trail)."""

    reason = fields.String(required=True, metadata={"example": "Uploaded to the wrong order"})


class ShareSchema(Schema):
    """Whether the customer's portal users see the attachment."""

    customer_visible = fields.Boolean(required=True, metadata={"example": True})


#: OpenAPI for a file's bytes; the actual ``Content-Type`` is the type found in the content.
BINARY = {"type": "string", "format": "binary"}
DOWNLOAD = {
    "description": "The file, as a download (`Content-Disposition: attachment`) with the type found in its content.",
    "content": {"application/octet-stream": {"schema": BINARY}},
}

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The file; its name is kept."},
                    "kind": {"type": "string", "enum": list(ATTACHMENT_KINDS), "default": "other"},
                    "note": {"type": "string", "maxLength": service.MAX_NOTE},
                    "customer_visible": {
                        "type": "boolean",
                        "default": False,
                        "description": "Share with the customer's portal users (staff only; a portal "
                        "user's upload is always shared).",
                    },
                },
            }
        }
    },
}


#: How a multipart form field says yes or no.
_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no", "")


def _form_flag(name: str) -> bool:
    """A yes/no multipart form field (absent is no); 422 for anything else."""
    value = request.form.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ServiceError("invalid", f"{name} must be true or false", {name: ["Expected true or false."]})


def _uploader(a: OrderAttachment, users: dict[int, User], viewer: User) -> dict[str, Any] | None:
    who = users.get(a.uploaded_by_id) if a.uploaded_by_id is not None else None
    if who is not None:
        return {"id": who.id, "name": who.name}
    if a.uploaded_by_id is not None and service.is_portal_user(viewer):
        return {"id": None, "name": service.STAFF_UPLOADER}
    return None


def _dump(session: Session, attachments: list[OrderAttachment]) -> list[dict[str, Any]]:
    viewer = api_user()
    users: dict[int, User] = service.uploaders(session, attachments, viewer)
    items = []
    for a in attachments:
        items.append(
            {
                "id": a.id,
                "order_id": a.order_id,
                "kind": a.kind,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "note": a.note,
                "customer_visible": a.customer_visible,
                "uploaded_by": _uploader(a, users, viewer),
                "uploaded_at": a.uploaded_at,
                "removed_at": a.removed_at,
                "content_url": url_for(".AttachmentContent", order_id=a.order_id, attachment_id=a.id),
            }
        )
    return items


@blp.route("/<int:order_id>/attachments")
class Attachments(MethodView):
    """An order's attachments and uploading a new one."""

    @blp.response(200, AttachmentListSchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """List the order's attachments, oldest first."""
        session = db()
        return {"items": _dump(session, service.list_attachments(session, api_user(), order_id))}

    @blp.doc(requestBody=UPLOAD_BODY)
    @blp.response(201, AttachmentSchema)
    @errors(blp, 401, 403, 404, 413, 415, 422)
    def post(self, order_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Upload a file (multipart `file`, optional `kind`, `note`, `customer_visible`) to the order.

        The type is found in the content and must be on the allowed list, and the
        file name's extension must agree with it; above the size limit answers 413.
        Staff uploads are shared with the customer only with `customer_visible=true`;
        a portal user's upload always is.
        """
        session, user = db(), api_user()
        service.order_for_upload(session, user, order_id)  # 404 / 403 before the body is looked at
        if request.mimetype != "multipart/form-data":
            raise ServiceError(
                "unsupported_media_type",
                f"the body must be multipart/form-data, not {request.mimetype or 'untyped'}",
                {"Content-Type": ["Send the file as multipart/form-data in the field 'file'."]},
                status=415,
            )
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise AttachmentRefused("invalid", N_("choose a file to upload"))
        attachment = service.add_attachment(
            session,
            user,
            order_id,
            filename=upload.filename,
            data=upload.read(),
            kind=request.form.get("kind", "other"),
            note=request.form.get("note", ""),
            customer_visible=_form_flag("customer_visible"),
        )
        commit()
        location = url_for(".AttachmentItem", order_id=order_id, attachment_id=attachment.id)
        return _dump(session, [attachment])[0], 201, {"Location": location}


@blp.route("/<int:order_id>/attachments/<int:attachment_id>")
class AttachmentItem(MethodView):
    """One attachment's description."""

    @blp.response(200, AttachmentSchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int, attachment_id: int) -> dict[str, Any]:
        """Read an attachment's name, kind, type, size, hash and uploader."""
        session = db()
        return _dump(session, [service.get_attachment(session, api_user(), order_id, attachment_id)])[0]


@blp.route("/<int:order_id>/attachments/<int:attachment_id>/content")
class AttachmentContent(MethodView):
    """One attachment's bytes."""

    @blp.response(200, description=DOWNLOAD["description"])
    @blp.doc(responses={"200": DOWNLOAD})
    @errors(blp, 401, 404)
    def get(self, order_id: int, attachment_id: int) -> Response:
        """Download the file exactly as uploaded, with the type found in its content."""
        session = db()
        attachment = service.get_attachment(session, api_user(), order_id, attachment_id)
        return Response(service.attachment_bytes(session, attachment), headers=service.download_headers(attachment))


@blp.route("/<int:order_id>/attachments/<int:attachment_id>/remove", methods=["POST"])
@blp.doc(requestBody=json_body(RemoveSchema, example={"reason": "Uploaded to the wrong order"}))
@blp.response(200, AttachmentSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def remove_attachment(order_id: int, attachment_id: int) -> dict[str, Any]:
    """Remove an attachment from the order with a reason; the file is kept and the removal audited."""
    session, user = db(), api_user()
    service.attachment_for_removal(session, user, order_id, attachment_id)  # 404 / 403 before the body
    body = read_json(required=False)
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ServiceError("invalid", "the reason must be a string", {"reason": ["Not a valid string."]})
    attachment = service.remove_attachment(session, user, order_id, attachment_id, reason)
    commit()
    return _dump(session, [attachment])[0]


@blp.route("/<int:order_id>/attachments/<int:attachment_id>/share", methods=["POST"])
@blp.doc(requestBody=json_body(ShareSchema, example={"customer_visible": True}))
@blp.response(200, AttachmentSchema)
@errors(blp, 400, 401, 403, 404, 415, 422)
def share_attachment(order_id: int, attachment_id: int) -> dict[str, Any]:
    """Share an attachment with the customer's portal users, or stop sharing it (staff with
    `attachments.upload`; audited). A file the customer uploaded cannot be hidden from them."""
    session, user = db(), api_user()
    service.attachment_for_sharing(session, user, order_id, attachment_id)  # 404 / 403 before the body
    body = read_json()
    visible = body.get("customer_visible")
    if not isinstance(visible, bool):
        raise ServiceError(
            "invalid", "customer_visible must be true or false", {"customer_visible": ["Expected true or false."]}
        )
    attachment = service.share_attachment(session, user, order_id, attachment_id, visible)
    commit()
    return _dump(session, [attachment])[0]


@blp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    # Flask refuses a body above MAX_CONTENT_LENGTH before the endpoint runs; name the limit.
    message = f"the upload is larger than {upload_limit_mb(db())} MB, the most accepted"
    return error_response(413, "too_large", message, {"file": [message]})

"""API: an order's documents (PDF) — which types may be printed, issuing one, the archive, e-mailing.

``GET …/documents/{type}`` issues the document: the PDF it returns is archived
(:mod:`core.documents.archive`), so ``…/issued-documents/{id}`` returns exactly what
was handed out; while the document's content does not change, the archived copy is
returned again and nothing is written. An order outside the caller's scope answers 404 like one that does not
exist; a document type the caller lacks the permission for answers 403.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import Session

from core.api.auth import api_user, require_api_user
from core.api.common import commit, errors, json_body, read_json
from core.db import transaction
from core.documents import check_may_print, printable_documents, reader_language
from core.documents.archive import (
    get_issued,
    issued_pdf,
    issuer_names,
    prepare_copy,
    store_copy,
    visible_issued_documents,
)
from core.documents.mail import prepare_send, send_document
from core.i18n import LANGUAGES
from core.models import IssuedDocument, User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.labels import translate
from core.web import db, ordo

blp = Blueprint(
    "api_documents",
    __name__,
    url_prefix="/api/v1/orders",
    description="Documents (PDF) of an order: the types you may print, issuing one (archived), "
    "the archive of issued documents, e-mailing one to the customer.",
)
blp.before_request(require_api_user)

PDF_RESPONSE = {"type": "string", "format": "binary"}
LANG_DESCRIPTION = "The language to print in: `zh_CN` or `en` (default: yours)."


class DocumentTypeSchema(Schema):
    """A document type you may print for the order."""

    name = fields.String(required=True, metadata={"example": "order_confirmation"})
    label = fields.String(required=True, metadata={"description": "In your language.", "example": "订单确认书"})
    url = fields.String(required=True, metadata={"description": "GET it to issue the PDF."})


class DocumentTypeListSchema(Schema):
    """The document types you may print for the order."""

    items = fields.List(fields.Nested(DocumentTypeSchema), required=True)


class LangQuerySchema(Schema):
    """The language of the document."""

    lang = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"description": LANG_DESCRIPTION})


class IssuerSchema(Schema):
    """Who issued a document."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)


class IssuedDocumentSchema(Schema):
    """A document as it was issued: the archived PDF's name, size, hash, who and when."""

    id = fields.Integer(required=True)
    document = fields.String(required=True, metadata={"description": "The document type's name."})
    label = fields.String(required=True, metadata={"description": "The type's label in your language."})
    language = fields.String(required=True)
    filename = fields.String(required=True, metadata={"example": "SO2026-000001-order_confirmation.pdf"})
    size = fields.Integer(required=True, metadata={"description": "Bytes."})
    sha256 = fields.String(required=True, metadata={"description": "SHA-256 of the PDF, hex."})
    issued_by = fields.Nested(
        IssuerSchema,
        allow_none=True,
        required=True,
        metadata={"description": "Null when unknown, and for a customer's portal user when staff issued it."},
    )
    issued_at = fields.DateTime(required=True)
    url = fields.String(required=True, metadata={"description": "GET it for the archived PDF."})


class IssuedDocumentListSchema(Schema):
    """The documents issued for the order that you may read, newest first."""

    items = fields.List(fields.Nested(IssuedDocumentSchema), required=True)


class SendRequestSchema(Schema):
    """What to send: the order version you looked at, and optionally the language."""

    version = fields.Integer(
        required=True,
        strict=True,
        metadata={"description": "The order version you last read (its ETag); another current version answers 409."},
    )
    lang = fields.String(
        validate=validate.OneOf(LANGUAGES),
        load_default=None,
        metadata={"description": "`zh_CN` or `en` (default: the customer's language)."},
    )


class SentSchema(Schema):
    """The document issued and queued for e-mail to the customer's contacts."""

    document = fields.Nested(IssuedDocumentSchema, required=True)
    to = fields.List(fields.String(), required=True, metadata={"description": "The e-mail addresses it goes to."})


def _pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def _issued_out(
    session: Session, viewer: User, issued: IssuedDocument, names: dict[int, str] | None = None
) -> dict[str, Any]:
    doc = ordo().registry.documents.get(issued.document)
    if names is None:
        names = issuer_names(session, viewer, [issued])
    issuer = issued.issued_by_id
    return {
        "id": issued.id,
        "document": issued.document,
        "label": translate(doc.label) if doc is not None else issued.document,
        "language": issued.language,
        "filename": issued.filename,
        "size": issued.size,
        "sha256": issued.sha256,
        "issued_by": {"id": issuer, "name": names[issuer]} if issuer is not None and issuer in names else None,
        "issued_at": issued.issued_at,
        "url": url_for(".IssuedDocumentItem", order_id=issued.order_id, doc_id=issued.id),
    }


@blp.route("/<int:order_id>/documents")
class OrderDocuments(MethodView):
    """The document types of an order."""

    @blp.response(200, DocumentTypeListSchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """List the document types you may print for the order, labelled in your language."""
        user = api_user()
        order = get_order(db(), user, order_id)
        return {
            "items": [
                {
                    "name": doc.name,
                    "label": translate(doc.label),
                    "url": url_for(".OrderDocument", order_id=order.id, name=doc.name),
                }
                for doc in printable_documents(ordo().registry, user)
            ]
        }


@blp.route("/<int:order_id>/documents/<name>")
class OrderDocument(MethodView):
    """Issuing one document."""

    @blp.arguments(LangQuerySchema, location="query", unknown="raise", as_kwargs=True)
    @blp.response(200, PDF_RESPONSE, content_type="application/pdf", description="The PDF, archived as issued.")
    @errors(blp, 401, 403, 404, 422)
    def get(self, order_id: int, name: str, lang: str | None = None) -> Response:
        """Issue document `name` (e.g. `order_confirmation`) for the order and return the PDF.

        The PDF returned is archived (see `issued-documents`). While nothing the document
        says has changed (order, customer, letterhead, terms), the call returns the archived
        copy of the same type and language again — the same bytes, printed when it was first
        issued — and records nothing; a change gives a new copy. `Content-Disposition`
        carries its file name `<order number>-<name>.pdf`. An unknown type answers 404.
        """
        user = api_user()
        state = ordo()
        language = lang or reader_language(user)
        copy = prepare_copy(db(), state.registry, name, order_id, user, language)
        if copy.issued is not None:
            return _pdf(copy.pdf, copy.issued.filename)
        # Rendering read only; the archive is written in a short transaction of its own.
        with transaction(state.sessions) as session:
            issued = store_copy(session, copy, user)
        return _pdf(copy.pdf, issued.filename)


@blp.route("/<int:order_id>/documents/<name>/send")
class SendOrderDocument(MethodView):
    """E-mailing one document to the customer."""

    @blp.doc(requestBody=json_body(SendRequestSchema, example={"version": 3, "lang": "zh_CN"}))
    @blp.response(201, SentSchema)
    @errors(blp, 400, 401, 403, 404, 409, 415, 422)
    def post(self, order_id: int, name: str) -> tuple[dict[str, Any], int]:
        """Issue document `name` and queue it by e-mail to the customer's contacts (PDF attached).

        `version` must be the order's current version (else 409), so nothing is sent for an
        order that changed after you looked. A customer without an e-mail contact answers
        409 `no_email_contact` and nothing is issued. Needs `documents.send`. As printing
        does, it sends the archived copy when the document has not changed since it was
        last issued, else a new one.
        """
        user, state = api_user(), ordo()
        # Out of scope (or no such type) answers 404 before anything about the body is said.
        get_order(db(), user, order_id)
        check_may_print(state.registry, name, user)
        try:
            values = SendRequestSchema().load(read_json())
        except ValidationError as exc:
            raise ServiceError("invalid", "the send request is not valid", exc.messages) from None
        # Rendering the PDF takes a while: done in a session that only reads, after letting
        # go of the request's transaction (it holds the write lock and has written nothing).
        db().commit()
        with state.read_sessions() as reading:
            reader = reading.get(User, user.id)
            if reader is None:  # pragma: no cover - the user was just loaded
                raise ServiceError("unauthorized", "the user is gone", status=401)
            copy = prepare_send(
                reading, state.registry, name, order_id, reader, version=values["version"], language=values["lang"]
            )
        # What was loaded before is read again now, under the lock: the order may have
        # changed while the PDF rendered (then the version check refuses it).
        db().expire_all()
        sent = send_document(db(), state.registry, name, order_id, user, version=values["version"], copy=copy)
        out = {"document": _issued_out(db(), user, sent.issued), "to": sent.addresses}
        commit()
        return out, 201


@blp.route("/<int:order_id>/issued-documents")
class IssuedDocuments(MethodView):
    """The archive of an order's issued documents."""

    @blp.response(200, IssuedDocumentListSchema)
    @errors(blp, 401, 404)
    def get(self, order_id: int) -> dict[str, Any]:
        """List the documents issued for the order (that you may read), newest first."""
        user, session = api_user(), db()
        order = get_order(session, user, order_id)
        rows = visible_issued_documents(session, ordo().registry, user, order)
        names = issuer_names(session, user, rows)
        return {"items": [_issued_out(session, user, row, names) for row in rows]}


@blp.route("/<int:order_id>/issued-documents/<int:doc_id>")
class IssuedDocumentItem(MethodView):
    """One archived document."""

    @blp.response(200, PDF_RESPONSE, content_type="application/pdf", description="Exactly the bytes issued.")
    @errors(blp, 401, 403, 404, 500)
    def get(self, order_id: int, doc_id: int) -> Response:
        """Download an issued document: exactly the bytes issued, checked against their recorded hash."""
        session = db()
        issued = get_issued(session, ordo().registry, api_user(), order_id, doc_id)
        return _pdf(issued_pdf(session, issued), issued.filename)

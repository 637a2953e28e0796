"""The archive of issued documents (CORE-6): every PDF handed out, kept byte for byte.

Printing a document for an order *issues* it: the PDF is rendered, its bytes go to the
instance's file store (named by their SHA-256) and an :class:`core.models.IssuedDocument`
row says which document, for which order, in which language, by whom and when, with
an audit entry on the order. What a customer was sent can so be shown again exactly,
however the order changed since; reading it back checks the hash.

:func:`issue_document` does it all in one session. A web request that only reads (a
GET) renders first and stores afterwards in a short write transaction of its own
(:func:`render_for_issue`, then :func:`archive_pdf`), so rendering never holds the
database's write lock.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import check_language, check_may_print, render_document
from core.files import file_store
from core.models import IssuedDocument, Order, User
from core.plugins import Registry
from core.services import NotFound, ServiceError, audit
from core.services.orders import get_order

#: Who may read archived documents of a type no enabled plugin registers any more.
ORPHAN_PERMISSION = "audit.read"


def issued_filename(order: Order, name: str) -> str:
    """The file name an issued document is saved and downloaded under: ``<order number>-<type>.pdf``."""
    return f"{order.number}-{name}.pdf"


def render_for_issue(
    session: Session, registry: Registry, name: str, order_id: int, user: User, language: str
) -> tuple[Order, bytes]:
    """The order and the PDF of document ``name`` as ``user`` may issue it; writes nothing.

    Refused with 404 when the order is outside the user's scope (as if it did not exist)
    or the document type is unknown, 403 without the type's permission, 422 for a
    language documents are not printed in.
    """
    order = get_order(session, user, order_id)
    check_may_print(registry, name, user)
    check_language(language)
    return order, render_document(session, registry, name, order, language)


def archive_pdf(session: Session, order: Order, name: str, language: str, user: User, pdf: bytes) -> IssuedDocument:
    """Store ``pdf`` as issued document ``name`` of ``order`` and record it (row and audit entry).

    Checks nothing: call :func:`render_for_issue` first. Runs in the caller's transaction.
    """
    sha256 = file_store(session).put(pdf)
    issued = IssuedDocument(
        order_id=order.id,
        document=name,
        language=language,
        filename=issued_filename(order, name),
        size=len(pdf),
        sha256=sha256,
        issued_by_id=user.id,
    )
    session.add(issued)
    session.flush()
    audit.record(
        session,
        user,
        "issued_document",
        issued.id,
        "issue",
        {"document": name, "language": language, "filename": issued.filename, "size": len(pdf), "sha256": sha256},
        order_id=order.id,
    )
    return issued


def issue_document(
    session: Session, registry: Registry, name: str, order: Order, user: User, language: str
) -> IssuedDocument:
    """Render document ``name`` of ``order`` in ``language`` and archive it as issued by ``user``.

    The order must be in the user's scope (else 404) and the user must hold the type's
    permission (else 403). Runs in the caller's transaction; the caller commits.
    """
    order, pdf = render_for_issue(session, registry, name, order.id, user, language)
    return archive_pdf(session, order, name, language, user, pdf)


def issued_documents(session: Session, order: Order) -> list[IssuedDocument]:
    """Every document issued for ``order``, newest first (no permission filter: see
    :func:`visible_issued_documents`)."""
    stmt = (
        select(IssuedDocument)
        .where(IssuedDocument.order_id == order.id)
        .order_by(IssuedDocument.issued_at.desc(), IssuedDocument.id.desc())
    )
    return list(session.scalars(stmt))


def may_read_issued(registry: Registry, user: User, issued: IssuedDocument) -> bool:
    """Whether ``user`` may read an issued document of an order they see: they hold its
    type's permission, or — for a type no enabled plugin registers any more — may read the
    audit trail."""
    doc = registry.documents.get(issued.document)
    return user.can(doc.permission if doc is not None else ORPHAN_PERMISSION)


def visible_issued_documents(session: Session, registry: Registry, user: User, order: Order) -> list[IssuedDocument]:
    """The documents issued for ``order`` that ``user`` may read, newest first."""
    return [issued for issued in issued_documents(session, order) if may_read_issued(registry, user, issued)]


def get_issued(session: Session, registry: Registry, user: User, order_id: int, doc_id: int) -> IssuedDocument:
    """Issued document ``doc_id`` of order ``order_id`` as ``user`` may read it.

    404 when the order is out of scope or the document is not one of the order's; 403
    without the permission its type needs.
    """
    order = get_order(session, user, order_id)
    issued = session.get(IssuedDocument, doc_id)
    if issued is None or issued.order_id != order.id:
        raise NotFound("issued document", doc_id)
    if not may_read_issued(registry, user, issued):
        doc = registry.documents.get(issued.document)
        code = doc.permission if doc is not None else ORPHAN_PERMISSION
        raise ServiceError("forbidden", f"you lack the permission {code!r}", status=403)
    return issued


def issued_pdf(session: Session, issued: IssuedDocument) -> bytes:
    """The archived bytes of ``issued``, exactly as issued; refused if they no longer match.

    The file store checks the content against its name; here it is checked against the
    hash and size recorded when the document was issued, so a swapped file is caught too.
    """
    try:
        data = file_store(session).get(issued.sha256)
    except (OSError, ValueError) as exc:
        raise ServiceError(
            "archive_damaged", f"issued document {issued.id} cannot be read from the archive: {exc}", status=500
        ) from None
    if len(data) != issued.size or hashlib.sha256(data).hexdigest() != issued.sha256:
        raise ServiceError(
            "archive_damaged", f"issued document {issued.id} no longer matches its recorded hash", status=500
        )
    return data

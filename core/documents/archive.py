"""The archive of issued documents (CORE-6): every PDF handed out, kept byte for byte.

Printing a document for an order *issues* it: the PDF is rendered, its bytes go to the
instance's file store (named by their SHA-256) and an :class:`core.models.IssuedDocument`
row says which document, for which order, in which language, by whom and when, with
an audit entry on the order. What a customer was sent can so be shown again exactly,
however the order changed since; reading it back checks the hash.

A document whose content has not changed is not issued again: printing (or e-mailing)
hands out the archived copy of the same type and language whose content matches —
the same bytes, with the printing time of that copy — and writes nothing. The content
is the hash of the document's HTML with a fixed printing time
(:func:`core.documents.content_hash`), kept in the audit entry of the issue; it covers
everything the document says (order, lines, customer, letterhead, terms), so any
change since the last copy gives a new one. Printing the same thing again, or a
browser prefetching a print link, so neither grows the archive nor the audit trail.

:func:`issue_document` does it all in one session. A web request renders first and
stores afterwards (:func:`prepare_copy` in a session that only reads, then
:func:`store_copy` in a short write transaction of its own), so rendering never holds
the database's write lock.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import check_language, check_may_print, content_hash, render_document
from core.files import file_store
from core.models import AuditLog, IssuedDocument, Order, User
from core.plugins import Registry
from core.services import NotFound, ServiceError, audit
from core.services.orders import get_order

#: Who may read archived documents of a type no enabled plugin registers any more.
ORPHAN_PERMISSION = "audit.read"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Copy:
    """A document ready to hand out: the PDF, and the archived copy it is (None: a new one
    that :func:`store_copy` archives)."""

    order: Order
    name: str
    language: str
    #: The content hash (:func:`core.documents.content_hash`) the PDF was rendered from.
    content: str
    pdf: bytes
    issued: IssuedDocument | None = None


def issued_filename(order: Order, name: str) -> str:
    """The file name an issued document is saved and downloaded under: ``<order number>-<type>.pdf``."""
    return f"{order.number}-{name}.pdf"


def prepare_copy(session: Session, registry: Registry, name: str, order_id: int, user: User, language: str) -> Copy:
    """Document ``name`` of the order as ``user`` may issue it: the archived copy with the
    same content if there is one, else a freshly rendered PDF. Writes nothing.

    Refused with 404 when the order is outside the user's scope (as if it did not exist)
    or the document type is unknown, 403 without the type's permission, 422 for a
    language documents are not printed in.
    """
    order = get_order(session, user, order_id)
    check_may_print(registry, name, user)
    check_language(language)
    content = content_hash(session, registry, name, order, language)
    archived = archived_copy(session, order, name, language, content)
    if archived is not None:
        issued, pdf = archived
        return Copy(order, name, language, content, pdf, issued)
    return Copy(order, name, language, content, render_document(session, registry, name, order, language))


def archived_copy(
    session: Session, order: Order, name: str, language: str, content: str
) -> tuple[IssuedDocument, bytes] | None:
    """The newest issued copy of document ``name`` of ``order`` in ``language`` whose
    content hash is ``content``, with its (checked) bytes; None without one.

    A copy whose archived file is missing or damaged is passed over (and logged), so a
    new one is issued instead of refusing to print.
    """
    entries = session.scalars(
        select(AuditLog)
        .where(AuditLog.order_id == order.id, AuditLog.entity == "issued_document", AuditLog.action == "issue")
        .order_by(AuditLog.id.desc())
    )
    for entry in entries:
        changes = entry.changes or {}
        if entry.entity_id is None or (changes.get("document"), changes.get("language"), changes.get("content")) != (
            name,
            language,
            content,
        ):
            continue
        issued = session.get(IssuedDocument, entry.entity_id)
        if issued is None or issued.order_id != order.id:
            continue
        try:
            return issued, issued_pdf(session, issued)
        except ServiceError as exc:
            log.warning("issued document %s not handed out again: %s", issued.id, exc.message)
    return None


def store_copy(session: Session, copy: Copy, user: User) -> IssuedDocument:
    """The issued document ``copy`` is: the archived one it came from, or — for a new PDF —
    archived now as issued by ``user``. Runs in the caller's transaction."""
    if copy.issued is not None:
        issued = session.get(IssuedDocument, copy.issued.id)
        if issued is None:  # pragma: no cover - issued documents are never deleted
            raise NotFound("issued document", copy.issued.id)
        return issued
    return archive_pdf(session, copy.order, copy.name, copy.language, user, copy.pdf, content=copy.content)


def archive_pdf(
    session: Session, order: Order, name: str, language: str, user: User, pdf: bytes, *, content: str
) -> IssuedDocument:
    """Store ``pdf`` as issued document ``name`` of ``order`` and record it (row and audit
    entry, which keeps the ``content`` hash the PDF was rendered from).

    Checks nothing: call :func:`prepare_copy` first. Runs in the caller's transaction.
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
        {
            "document": name,
            "language": language,
            "filename": issued.filename,
            "size": len(pdf),
            "sha256": sha256,
            "content": content,
        },
        order_id=order.id,
    )
    return issued


def issue_document(
    session: Session, registry: Registry, name: str, order: Order, user: User, language: str
) -> IssuedDocument:
    """Document ``name`` of ``order`` in ``language`` as issued: the archived copy with the
    same content, else rendered now and archived as issued by ``user``.

    The order must be in the user's scope (else 404) and the user must hold the type's
    permission (else 403). Runs in the caller's transaction; the caller commits.
    """
    return store_copy(session, prepare_copy(session, registry, name, order.id, user, language), user)


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


def issuer_names(session: Session, viewer: User, rows: list[IssuedDocument]) -> dict[int, str]:
    """The names of the users who issued ``rows`` that ``viewer`` may be told, by user id.

    A portal user (one of a customer's) is told only those of their own customer's users:
    staff names stay inside the company.
    """
    ids = {row.issued_by_id for row in rows if row.issued_by_id}
    if not ids:
        return {}
    found = session.execute(select(User.id, User.name, User.customer_id).where(User.id.in_(ids))).tuples()
    return {
        user_id: name
        for user_id, name, customer_id in found
        if viewer.customer_id is None or customer_id == viewer.customer_id
    }


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

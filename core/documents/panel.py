"""The order page's Documents panel: print a document (zh/en), the archive, e-mail to the customer.

Shown to users who may print at least one document type or read an issued one. Printing
issues (archives) the document; the archive lists what was issued, by whom and when,
with a download of the exact bytes; "E-mail to customer" issues it and queues it to the
customer's contacts (``documents.send``), after a confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy.orm import Session

from core.contrib import DocumentType, Panel
from core.documents import printable_documents
from core.documents.archive import issuer_names, visible_issued_documents
from core.documents.hooks import SEND_PERMISSION
from core.documents.mail import customer_emails
from core.models import IssuedDocument, Order, User
from core.plugins import Registry

#: The languages a document is offered in, with how each is named on its button.
LANGUAGE_NAMES = (("zh_CN", "中文"), ("en", "English"))


@dataclass(frozen=True)
class ArchiveRow:
    """One line of the archive: the issued document and who issued it."""

    issued: IssuedDocument
    label: str
    issuer: str


def _registry(session: Session) -> Registry:
    registry = session.info.get("ordo_registry")
    if not isinstance(registry, Registry):
        from core.web import ordo

        registry = ordo().registry
    return registry


def archive_rows(session: Session, registry: Registry, user: User, order: Order) -> list[ArchiveRow]:
    """The issued documents of ``order`` that ``user`` may read, newest first, for showing."""
    issued = visible_issued_documents(session, registry, user, order)
    names = issuer_names(session, user, issued)
    # A customer's portal user is not told which staff member issued a document.
    hidden = _("Staff") if user.customer_id is not None else ""
    return [
        ArchiveRow(
            row,
            _label(registry.documents.get(row.document), row.document),
            names.get(row.issued_by_id, hidden) if row.issued_by_id else "",
        )
        for row in issued
    ]


def _label(doc: DocumentType | None, name: str) -> str:
    from core.views.labels import translate

    return translate(doc.label) if doc is not None else name


def documents_panel(session: Session, order: Order, user: User) -> Panel | None:
    """The Documents panel of ``order`` for ``user``; None when there is nothing for them."""
    registry = _registry(session)
    printable = printable_documents(registry, user)
    archive = archive_rows(session, registry, user, order)
    if not printable and not archive:
        return None
    html = render_template(
        "documents/panel.html",
        order=order,
        documents=[(doc, _label(doc, doc.name)) for doc in printable],
        languages=LANGUAGE_NAMES,
        archive=archive,
        can_send=user.can(SEND_PERMISSION) and order.customer.active,
        emails=customer_emails(order.customer),
        back=request.path,
    )
    return Panel(_("Documents"), Markup(html), order=200)

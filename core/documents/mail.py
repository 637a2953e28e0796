"""E-mailing a document to the order's customer: issue it, then queue it through notifications.

The document is issued (archived, see :mod:`core.documents.archive`; an unchanged one is
the archived copy handed out again) and a
``document_issued`` notification naming it goes to the customer's contacts by e-mail,
in the same transaction: a rolled-back request sends nothing, a committed one is
delivered by the worker with the archived PDF attached. The caller names the order
version they looked at, so a document is never sent for an order that changed since.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.contrib import DocumentType
from core.documents import check_language, check_may_print, content_hash, document_label
from core.documents.archive import Copy, prepare_copy, store_copy
from core.documents.hooks import DOCUMENT_ISSUED, SEND_PERMISSION
from core.i18n import LANGUAGES
from core.models import Customer, IssuedDocument, Order, User
from core.plugins import Registry
from core.services import Conflict, ServiceError, audit
from core.services.orders import get_order


@dataclass(frozen=True)
class Sent:
    """A document on its way to the customer: the archived copy and the addresses it goes to."""

    issued: IssuedDocument
    addresses: list[str]


def customer_emails(customer: Customer) -> list[str]:
    """The e-mail addresses of the customer's contacts, each once (compared without case)."""
    seen: dict[str, str] = {}
    for contact in customer.contacts:
        address = (contact.email or "").strip()
        if address:
            seen.setdefault(address.lower(), address)
    return list(seen.values())


def customer_language(customer: Customer) -> str:
    """The language the customer reads (documents and e-mail), Chinese when unset or unknown."""
    return customer.language if customer.language in LANGUAGES else "zh_CN"


def _check_send(
    session: Session, registry: Registry, name: str, order_id: int, user: User, version: int, language: str | None
) -> tuple[Order, DocumentType, str, list[str]]:
    """The order, document type, language and addresses of a send ``user`` may make; the
    refusals of :func:`send_document`."""
    order = get_order(session, user, order_id)
    doc = check_may_print(registry, name, user)
    if not user.can(SEND_PERMISSION):
        raise ServiceError("forbidden", f"you lack the permission {SEND_PERMISSION!r}", status=403)
    if not doc.for_customer:
        raise Conflict(
            "internal_document",
            f"{name} is an internal document; it is not sent to customers",
            {"document": [f"{name} is not sent to customers."]},
        )
    if not order.customer.active:
        raise Conflict(
            "customer_inactive",
            f"customer {order.customer.code} is deactivated; nothing is sent to it",
            {"customer": [f"Customer {order.customer.code} is deactivated."]},
        )
    if version != order.version:
        raise Conflict(
            "stale_version",
            f"the order was changed meanwhile (you have version {version}, it is at {order.version}); "
            "check it and send again",
        )
    language = check_language(language or customer_language(order.customer))
    addresses = customer_emails(order.customer)
    if not addresses:
        raise Conflict(
            "no_email_contact",
            f"customer {order.customer.code} has no contact with an e-mail address; add one first",
            {"customer": [f"Customer {order.customer.code} has no contact with an e-mail address."]},
        )
    return order, doc, language, addresses


def prepare_send(
    session: Session,
    registry: Registry,
    name: str,
    order_id: int,
    user: User,
    *,
    version: int,
    language: str | None = None,
) -> Copy:
    """The document :func:`send_document` would send, rendered (or the archived copy of the
    same content), with all its refusals; writes nothing.

    Run it in a session that only reads, then pass its result to :func:`send_document`
    in the writing one, so rendering the PDF never holds the database's write lock.
    """
    order, _doc, language, _addresses = _check_send(session, registry, name, order_id, user, version, language)
    return prepare_copy(session, registry, name, order.id, user, language)


def send_document(
    session: Session,
    registry: Registry,
    name: str,
    order_id: int,
    user: User,
    *,
    version: int,
    language: str | None = None,
    copy: Copy | None = None,
) -> Sent:
    """Issue document ``name`` of order ``order_id`` and queue it by e-mail to the customer.

    ``version`` is the order version the user saw: a different current version is
    refused (409), as is a customer with no e-mail contact (409, nothing issued).
    ``language`` defaults to the customer's. Refusals: 404 out of scope or unknown
    type, 403 without ``documents.send`` or the type's permission, 422 bad language.
    As printing does, it hands out the archived copy when the document's content has
    not changed since (:mod:`core.documents.archive`), else issues a new one.

    ``copy`` is what :func:`prepare_send` rendered beforehand (its language is the one
    sent); without it the document is rendered here. Runs in the caller's transaction;
    the caller commits.
    """
    if copy is not None:
        language = copy.language
    order, doc, language, addresses = _check_send(session, registry, name, order_id, user, version, language)
    if copy is None:
        copy = prepare_copy(session, registry, name, order.id, user, language)
    elif (copy.order.id, copy.name) != (order.id, name):
        raise ValueError(f"the copy is of {copy.name} of order {copy.order.id}, not {name} of order {order.id}")
    elif content_hash(session, registry, name, order, language) != copy.content:
        # Something the document shows (the customer, a product, the letterhead, the terms)
        # changed while it was rendered: never send what is no longer true.
        raise Conflict(
            "document_changed",
            f"the {name} of order {order.number} changed while it was prepared; send it again",
        )
    from core.notify import ToCustomer, notify

    issued = store_copy(session, copy, user)
    queued = notify(
        session,
        DOCUMENT_ISSUED,
        to=[ToCustomer(order.customer_id)],
        order=order,
        document=issued,
        channels=("email",),
        context={"document_label": document_label(registry, doc, customer_language(order.customer))},
    )
    addresses = sorted({message.address for message in queued})
    if not addresses:
        raise Conflict("nothing_sent", f"no e-mail could be queued for customer {order.customer.code}")
    audit.record(
        session,
        user,
        "issued_document",
        issued.id,
        "email",
        {"document": name, "language": language, "to": addresses},
        order_id=order.id,
    )
    return Sent(issued, addresses)

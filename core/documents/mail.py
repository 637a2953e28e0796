"""E-mailing a document to the order's customer: issue it, then queue it through notifications.

The document is issued (archived, see :mod:`core.documents.archive`) and a
``document_issued`` notification naming it goes to the customer's contacts by e-mail,
in the same transaction: a rolled-back request sends nothing, a committed one is
delivered by the worker with the archived PDF attached. The caller names the order
version they looked at, so a document is never sent for an order that changed since.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.documents import check_language, check_may_print, document_label
from core.documents.archive import issue_document
from core.documents.hooks import DOCUMENT_ISSUED, SEND_PERMISSION
from core.i18n import LANGUAGES
from core.models import Customer, IssuedDocument, User
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


def send_document(
    session: Session,
    registry: Registry,
    name: str,
    order_id: int,
    user: User,
    *,
    version: int,
    language: str | None = None,
) -> Sent:
    """Issue document ``name`` of order ``order_id`` and queue it by e-mail to the customer.

    ``version`` is the order version the user saw: a different current version is
    refused (409), as is a customer with no e-mail contact (409, nothing issued).
    ``language`` defaults to the customer's. Refusals: 404 out of scope or unknown
    type, 403 without ``documents.send`` or the type's permission, 422 bad language.
    Runs in the caller's transaction; the caller commits.
    """
    order = get_order(session, user, order_id)
    doc = check_may_print(registry, name, user)
    if not user.can(SEND_PERMISSION):
        raise ServiceError("forbidden", f"you lack the permission {SEND_PERMISSION!r}", status=403)
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
    from core.notify import ToCustomer, notify

    issued = issue_document(session, registry, name, order, user, language)
    notify(
        session,
        DOCUMENT_ISSUED,
        to=[ToCustomer(order.customer_id)],
        order=order,
        document=issued,
        channels=("email",),
        context={"document_label": document_label(registry, doc, customer_language(order.customer))},
    )
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

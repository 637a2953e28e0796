"""Core's notification service: tell staff and customers about what happened (CORE-7).

:func:`notify` is called inside the transaction of the change it reports. It renders
the template for each recipient in their language and writes the result: in-app
notifications at once (:class:`core.models.Notification`, under a user's bell or in a
customer's portal list), every other channel as an :class:`core.models.OutboxMessage`
that the worker delivers later (:mod:`core.notify.delivery`). Nothing is committed
here, so a change that rolls back sends nothing and one that commits is never lost.

    from core.notify import ToCustomer, notify

    notify(session, "order_status_changed", to=ToCustomer(order.customer_id), order=order)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.files import file_store
from core.models import Company, Customer, IssuedDocument, Notification, Order, OutboxFile, OutboxMessage, User
from core.notify.recipients import (
    PermanentFailure,
    Recipient,
    ToCustomer,
    ToDepartment,
    ToRole,
    ToUser,
    customer_addresses,
    resolve,
)
from core.notify.render import pick_language, render
from core.plugins import CORE_CHANNELS, Registry
from core.settings import get_setting, session_registry

__all__ = [
    "NotifyFile",
    "PermanentFailure",
    "Recipient",
    "ToCustomer",
    "ToDepartment",
    "ToRole",
    "ToUser",
    "absolute_url",
    "notify",
    "parse_channels",
]

log = logging.getLogger(__name__)

#: Settings naming the channels used when ``notify`` is not told which.
USER_CHANNELS_SETTING = "core.notify.channels"
CUSTOMER_CHANNELS_SETTING = "core.notify.customer_channels"
#: Where people open Ordo (https://ordo.example.com): links in messages sent by jobs.
PUBLIC_URL_SETTING = "core.public_url"


def absolute_url(session: Session, path: str) -> str:
    """``path`` (``/kpi/surveys/…``) as an absolute link for a message.

    During a request the request's own address is used; in a job (no request) the
    ``core.public_url`` setting, and when that is empty the path stays relative.
    """
    from flask import has_request_context, request

    if has_request_context():
        return request.host_url.rstrip("/") + path
    base = str(get_setting(session, PUBLIC_URL_SETTING) or "").strip().rstrip("/")
    return base + path if base else path


#: The length of the ``dedupe_key`` columns.
DEDUPE_LIMIT = 300


@dataclass(frozen=True)
class NotifyFile:
    """A file sent along with the e-mails of a notice (a report's PDF or XLSX).

    ``notify(files=…)`` stores ``content`` in the instance's file store (once, by its
    SHA-256) and writes one :class:`core.models.OutboxFile` per file and e-mail message;
    the worker attaches them after the issued document, in the order given.
    """

    filename: str
    content_type: str
    content: bytes

    def __post_init__(self) -> None:
        if not self.filename or "/" not in self.content_type:
            raise ValueError(f"a notification file needs a name and a MIME type like 'application/pdf': {self!r}")


def parse_channels(value: str | Iterable[str], registry: Registry) -> list[str]:
    """The known channel names in ``value`` (``"inapp,email"`` or a list), in order, once each.

    Unknown names (a typo, or a plugin that is no longer enabled) are skipped with a
    warning in the log, so a notice still reaches the channels that do exist.
    """
    names = value.split(",") if isinstance(value, str) else list(value)
    known: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name or name in known:
            continue
        if name in CORE_CHANNELS or name in registry.channels:
            known.append(name)
        else:
            log.warning("notification channel %r is not known (is its plugin enabled?); skipped", name)
    return known


def notify(
    session: Session,
    template: str,
    *,
    to: Recipient | Iterable[Recipient],
    order: Order | None = None,
    context: Mapping[str, Any] | None = None,
    channels: Sequence[str] | None = None,
    dedupe_key: str | None = None,
    document: IssuedDocument | None = None,
    files: Sequence[NotifyFile] = (),
) -> list[OutboxMessage]:
    """Queue notice ``template`` for ``to`` in the caller's transaction; return the outbox rows.

    Each recipient gets it in their language on each channel: ``channels`` if given,
    else the ``core.notify.channels`` setting for users and
    ``core.notify.customer_channels`` for customers. ``inapp`` writes a
    :class:`Notification` now; ``email`` and plugin channels queue an outbox message
    per address. With ``dedupe_key`` a notice already queued under that key (for the
    same channel and address) is not queued again. ``document`` (an issued PDF) goes
    along as an attachment of the e-mails, and so do ``files`` (after the document, in
    their order; their content goes to the file store once). With ``order``, staff whose data scope does
    not include the order are left out (the notice shows its content), and deactivated
    users and customers never receive anything. Raises ``KeyError`` for an unknown template.
    """
    registry = session_registry(session)
    spec = registry.notifications.get(template)
    if spec is None:
        raise KeyError(f"no notification template {template!r} is registered (is its plugin enabled?)")
    writer = _Writer(session, registry, spec.name, order, dict(context or {}), dedupe_key, document, tuple(files))
    audience = resolve(session, to, order)
    if audience.users:
        user_channels = parse_channels(
            channels if channels is not None else get_setting(session, USER_CHANNELS_SETTING, registry), registry
        )
        for user in audience.users:
            writer.for_user(user, user_channels)
    if audience.customers:
        customer_channels = parse_channels(
            channels if channels is not None else get_setting(session, CUSTOMER_CHANNELS_SETTING, registry), registry
        )
        for customer in audience.customers:
            writer.for_customer(customer, customer_channels)
    session.flush()
    return writer.queued


class _Writer:
    """Renders one notice per recipient and writes its rows, skipping those already queued."""

    def __init__(
        self,
        session: Session,
        registry: Registry,
        template: str,
        order: Order | None,
        context: dict[str, Any],
        dedupe_key: str | None,
        document: IssuedDocument | None,
        files: tuple[NotifyFile, ...] = (),
    ):
        self.session = session
        self.registry = registry
        self.spec = registry.notifications[template]
        self.order = order
        self.context = context
        self.dedupe_key = dedupe_key
        self.document = document
        self.files = files
        #: The SHA-256 of each file once stored (on the first e-mail that carries them).
        self.stored: list[str] | None = None
        self.company = _company(session, order)
        self.queued: list[OutboxMessage] = []

    def render(self, language: str, recipient_name: str) -> tuple[str, str]:
        context = {
            "order": self.order,
            "recipient": recipient_name,
            "company": self.company,
            "language": language,
            **self.context,
        }
        return render(self.spec, language, context)

    def key(self, channel: str, who: str) -> str | None:
        """The stored dedupe key for ``channel`` and ``who`` (hashed if too long for the column)."""
        if self.dedupe_key is None:
            return None
        key = f"{self.dedupe_key}:{channel}:{who}"
        if len(key) > DEDUPE_LIMIT:
            key = f"{key[: DEDUPE_LIMIT - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"
        return key

    def for_user(self, user: User, channels: list[str]) -> None:
        language = user.language
        for channel in channels:
            if channel == "inapp":
                self.inapp(language, user.name, f"user{user.id}", user_id=user.id)
                continue
            kind = "email" if channel == "email" else self.registry.channels[channel].address
            if kind != "email" or not user.email:
                log.info("user %s has no %s address for channel %r; skipped", user.id, kind, channel)
                continue
            self.outbox(channel, user.email, user.name, language, user_id=user.id)

    def for_customer(self, customer: Customer, channels: list[str]) -> None:
        language = customer.language
        for channel in channels:
            if channel == "inapp":
                self.inapp(language, customer.name, f"customer{customer.id}", customer_id=customer.id)
                continue
            kind = "email" if channel == "email" else self.registry.channels[channel].address
            for address, contact_name, contact_id in customer_addresses(customer, kind):
                self.outbox(
                    channel,
                    address,
                    contact_name or customer.name,
                    language,
                    customer_id=customer.id,
                    contact_id=contact_id,
                )

    def inapp(self, language: str, name: str, who: str, **owner: int) -> None:
        key = self.key("inapp", who)
        if key is not None and self.session.scalar(select(Notification.id).where(Notification.dedupe_key == key)):
            return
        subject, body = self.render(language, name)
        self.session.add(
            Notification(
                template=self.spec.name,
                order_id=self.order.id if self.order is not None else None,
                language=pick_language(self.spec, language),
                subject=subject,
                body=body,
                dedupe_key=key,
                **owner,
            )
        )

    def outbox(self, channel: str, address: str, name: str, language: str, **owner: int) -> None:
        key = self.key(channel, address.lower())
        if key is not None and self.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
            return
        subject, body = self.render(language, name)
        message = OutboxMessage(
            template=self.spec.name,
            channel=channel,
            address=address[:254],
            recipient_name=name[:200],
            order_id=self.order.id if self.order is not None else None,
            language=pick_language(self.spec, language),
            subject=subject,
            body=body,
            document_id=self.document.id if self.document is not None and channel == "email" else None,
            dedupe_key=key,
            **owner,
        )
        self.session.add(message)
        self.queued.append(message)
        if self.files and channel == "email":
            self.attach(message)

    def attach(self, message: OutboxMessage) -> None:
        """Write the files' rows for ``message`` (storing their content the first time)."""
        if self.stored is None:
            store = file_store(self.session)
            self.stored = [store.put(item.content) for item in self.files]
        self.session.flush()  # the message's id
        for position, (item, sha256) in enumerate(zip(self.files, self.stored, strict=True)):
            self.session.add(
                OutboxFile(
                    message_id=message.id,
                    position=position,
                    filename=item.filename[:255],
                    content_type=item.content_type[:100],
                    size=len(item.content),
                    sha256=sha256,
                )
            )


def _company(session: Session, order: Order | None) -> Company | None:
    """The order's company, else the first one (the installation's own)."""
    if order is not None:
        company = session.get(Company, order.company_id)
        if company is not None:
            return company
    return session.scalar(select(Company).order_by(Company.id).limit(1))

"""E-mail over SMTP (standard library ``smtplib``), handing each message over at most once.

The SMTP conversation is split at the one point where a message may leave: before
``DATA`` nothing has been delivered, so any error there (server down, a 4xx) means
"try again later"; just before ``DATA`` the caller records the hand-over in the
database (``handed_at``, committed); a clean answer to ``DATA`` — accepted, or a
4xx/5xx refusal — settles it. Only a connection lost while the content is being handed
over leaves ``handed_at`` set, and such a message is never sent again automatically
(the worker marks it *uncertain* for an administrator to decide).

Settings: ``core.smtp.host``, ``.port``, ``.security`` (none/starttls/ssl),
``.username``, ``.password``, ``.sender`` and ``.timeout`` (seconds).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr
from typing import Any

from sqlalchemy.orm import Session

from core.db import utcnow
from core.models import OutboxMessage
from core.notify.recipients import PermanentFailure, check_email
from core.plugins import Registry
from core.settings import get_setting

#: ``security`` setting values.
SECURITY_CHOICES = ("none", "starttls", "ssl")
#: ``Content-Language`` per Ordo language.
CONTENT_LANGUAGES = {"zh_CN": "zh-CN", "en": "en"}
#: The ports and the timeouts (seconds) the ``port`` and ``timeout`` settings take.
PORT_RANGE = (1, 65535)
TIMEOUT_RANGE = (1, 300)


class DeliveryError(Exception):
    """A failure before the message was handed over: nothing was delivered, retry later."""


@dataclass(frozen=True)
class Attachment:
    """A file sent along with a message (an issued document's PDF, a report's XLSX)."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP server, and who messages come from."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"
    username: str = ""
    password: str = ""
    sender: str = "Ordo <ordo@localhost>"
    timeout: int = 30

    @classmethod
    def load(cls, session: Session, registry: Registry) -> SmtpSettings:
        """The ``core.smtp.*`` settings as stored (or their defaults)."""
        return cls(**{name: get_setting(session, f"core.smtp.{name}", registry) for name in cls.__dataclass_fields__})

    def check(self) -> None:
        """:class:`DeliveryError` naming the setting whose value cannot work.

        The settings screen refuses such values; this catches those stored before the
        settings had bounds, or written to the database by hand. The message waits
        (retried with backoff) until an administrator corrects the setting.
        """
        if self.security not in SECURITY_CHOICES:
            raise DeliveryError(f"setting core.smtp.security is {self.security!r}; use none, starttls or ssl")
        for name, (low, high) in (("port", PORT_RANGE), ("timeout", TIMEOUT_RANGE)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise DeliveryError(
                    f"setting core.smtp.{name} is {_shown(value)}; give a whole number from {low} to {high}"
                )

    def sender_address(self) -> tuple[str, str]:
        """``(display name, address)`` of the ``sender`` setting; :class:`DeliveryError` if malformed."""
        name, address = parseaddr(self.sender)
        if "@" not in address:
            raise DeliveryError(f"setting core.smtp.sender {self.sender!r} holds no e-mail address")
        return name, address


def message_id(message: OutboxMessage, sender_domain: str) -> str:
    """The Message-ID of outbox message ``message``: the same for every attempt to send it,
    so a copy that arrives twice (an administrator's resend) is recognised as one."""
    return f"<ordo-outbox-{message.id}@{sender_domain}>"


#: What ``build`` and ``SmtpTransport.send`` take as attachments: none, one, or several in order.
Attachments = Attachment | Sequence[Attachment] | None


def _as_list(attachments: Attachments) -> list[Attachment]:
    if attachments is None:
        return []
    if isinstance(attachments, Attachment):
        return [attachments]
    return list(attachments)


def build(message: OutboxMessage, settings: SmtpSettings, address: str, attachment: Attachments = None) -> EmailMessage:
    """The e-mail for ``message``: headers, UTF-8 text body, and the attachments (in order) if any."""
    sender_name, sender = settings.sender_address()
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = Address(display_name=sender_name, addr_spec=sender)
    mail["To"] = Address(display_name=message.recipient_name, addr_spec=address)
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = message_id(message, sender.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body, charset="utf-8")
    for item in _as_list(attachment):
        mail.add_attachment(item.content, maintype=item.maintype, subtype=item.subtype, filename=item.filename)
    # Set last: set_content() and add_attachment() move Content-* headers into the parts.
    mail["Content-Language"] = CONTENT_LANGUAGES.get(message.language, message.language)
    return mail


class SmtpTransport:
    """One SMTP connection, opened when first needed and reused for a worker's pass."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.connection: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye to the server (errors ignored: the pass is over anyway)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        s.check()
        context = ssl.create_default_context()
        timeout = s.timeout
        try:
            if s.security == "ssl":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout, context=context)
            else:
                connection = smtplib.SMTP(s.host, s.port, timeout=timeout)
            connection.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                connection.starttls(context=context)
                connection.ehlo()
            if s.username:
                connection.login(s.username, s.password)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot reach the SMTP server {s.host}:{s.port}: {_describe(exc)}") from exc
        except (OverflowError, ValueError) as exc:
            # E.g. a host name that is no valid name (a label longer than 63 characters).
            raise DeliveryError(
                f"the SMTP settings cannot be used (setting core.smtp.host {_shown(s.host)}, "
                f"core.smtp.port {_shown(s.port)}): {_describe(exc)}"
            ) from exc
        return connection

    def send(self, message: OutboxMessage, attachment: Attachments, hand_over: Callable[[], None]) -> None:
        """Deliver ``message`` with ``attachment`` (one, a sequence in order, or None);
        ``hand_over()`` is called (and must commit) just before DATA.

        Raises :class:`PermanentFailure` (bad address, 5xx to RCPT or DATA),
        :class:`DeliveryError` (nothing delivered, retry) or, after the hand-over, any
        connection error as it comes (the message may have arrived). On a clean
        refusal of DATA ``message.handed_at`` is cleared again.
        """
        address = check_email(message.address)
        mail = build(message, self.settings, address, attachment)
        utf8 = not (address.isascii() and self.settings.sender_address()[1].isascii())
        message.message_id = str(mail["Message-ID"])
        connection = self._envelope(address, utf8)
        try:
            hand_over()
        except BaseException:
            self._reset()
            raise
        try:
            code, reply = connection.data(mail.as_bytes(policy=SMTPUTF8 if utf8 else SMTP))
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPDataError as exc:
            # A clean answer: the server refused the content, so nothing was delivered.
            message.handed_at = None
            self.close()
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"the SMTP server refused the message: {_describe(exc)}") from exc
            raise DeliveryError(f"the SMTP server refused the message for now: {_describe(exc)}") from exc
        except BaseException:
            # Lost mid-hand-over: the message may have arrived; ``handed_at`` stays set.
            connection.close()
            self.connection = None
            raise

    def _envelope(self, address: str, utf8: bool) -> smtplib.SMTP:
        """Open the mail transaction (MAIL FROM, RCPT TO) on a live connection."""
        if self.connection is not None:
            try:
                return self._open_transaction(self.connection, address, utf8)
            except smtplib.SMTPServerDisconnected:
                # The server closed the idle connection between two messages: start afresh.
                self.connection = None
        self.connection = self._connect()
        try:
            return self._open_transaction(self.connection, address, utf8)
        except smtplib.SMTPServerDisconnected as exc:
            self.connection = None
            raise DeliveryError(f"the SMTP server closed the connection: {_describe(exc)}") from exc

    def _open_transaction(self, connection: smtplib.SMTP, address: str, utf8: bool) -> smtplib.SMTP:
        try:
            return self._mail_rcpt(connection, address, utf8)
        except (DeliveryError, PermanentFailure):
            self._reset()
            raise
        except smtplib.SMTPServerDisconnected:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"SMTP error before the message was sent: {_describe(exc)}") from exc

    def _mail_rcpt(self, connection: smtplib.SMTP, address: str, utf8: bool) -> smtplib.SMTP:
        _, sender = self.settings.sender_address()
        options: list[str] = []
        if utf8:
            if not connection.has_extn("smtputf8"):
                raise PermanentFailure(f"the SMTP server cannot take the internationalised address {address!r}")
            options.append("SMTPUTF8")
            if connection.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        code, reply = connection.mail(sender, options)
        if code != 250:
            raise DeliveryError(f"the SMTP server refused the sender {sender}: {code} {_text(reply)}")
        code, reply = connection.rcpt(address)
        if code not in (250, 251):
            if 500 <= code < 600:
                raise PermanentFailure(f"the SMTP server refused the recipient {address}: {code} {_text(reply)}")
            raise DeliveryError(f"the SMTP server refused the recipient {address} for now: {code} {_text(reply)}")
        return connection

    def _reset(self) -> None:
        """Abandon the open mail transaction so the connection serves the next message."""
        if self.connection is not None:
            try:
                self.connection.rset()
            except (smtplib.SMTPException, OSError):
                self.close()


def _shown(value: object) -> str:
    """``value`` for an error message, cut short when it is long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

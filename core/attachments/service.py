"""Attachments of an order: add, list, fetch, read back, share and remove, inside the order's scope.

Every function reaches the order through :func:`core.services.orders.get_order`, so a
user who may not see the order gets 404 for its attachments too, exactly as for a
missing one. Portal users (a user with a ``customer_id``) see only the attachments
shared with the customer (``customer_visible``: what they uploaded themselves, and
staff uploads shared on purpose); any other answers 404 for them like a missing one,
and staff uploaders are not named to them. An upload is checked completely — permission, size limit, type by content,
allowed-type list — before anything is written: a refused file leaves no row, no audit
entry and no bytes in the file store.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attachments.sniff import NAME_EXTENSIONS, DetectedType, FileTypeRefused, detect
from core.db import utcnow
from core.files import file_store
from core.labels import N_
from core.models import Order, User
from core.models.files import ATTACHMENT_KINDS, OrderAttachment
from core.services import NotFound, ServiceError, audit
from core.services.orders import get_order
from core.settings import get_setting

#: Setting: the largest file accepted, in MB (MiB: 1,048,576 bytes).
MAX_MB = "core.attachments.max_mb"
#: Setting: the types accepted, as extensions separated by commas.
ALLOWED_TYPES = "core.attachments.allowed_types"
DEFAULT_MAX_MB = 20
#: The most ``max_mb`` may be: the web server refuses any body above 32 MB (Flask's
#: ``MAX_CONTENT_LENGTH`` in :mod:`core.app`) before Ordo reads it.
SERVER_MAX_MB = 32
DEFAULT_ALLOWED_TYPES = "pdf,png,jpg,gif,tif,webp,docx,xlsx,doc,xls,txt,csv,ofd"
MB = 1024 * 1024
#: The longest file name kept (the column's width).
MAX_FILENAME = 255
MAX_NOTE = 500
#: The longest removal reason (the audit log's column).
MAX_REASON = 1000
#: Unicode categories a note or reason may not hold: control characters (NUL breaks
#: PostgreSQL, the others exports and PDFs) and lone surrogates (not encodable).
_FORBIDDEN_CATEGORIES = ("Cc", "Cs")
#: What portal users see instead of the name of the staff member who uploaded a file.
STAFF_UPLOADER = "staff"

#: Characters Windows forbids in file names; replaced so a download saves anywhere.
_RESERVED = re.compile(r'[<>:"/\\|?*]')
#: Extension aliases people write in the allowed-types setting (``jpeg`` for ``jpg``).
_ALIASES = {alias: extension for extension, aliases in NAME_EXTENSIONS.items() for alias in aliases}


class AttachmentRefused(ServiceError):
    """An upload refused for a reason about the file itself (size, type, emptiness).

    ``template`` and ``params`` let screens say it in the user's language; the English
    ``message`` (and the same under ``details[field]``) is what the API answers.
    """

    def __init__(
        self,
        code: str,
        template: str,
        params: Mapping[str, Any] | None = None,
        *,
        field: str = "file",
        status: int = 422,
    ):
        self.template = template
        self.params = dict(params or {})
        message = template % self.params
        super().__init__(code, message, {field: [message]}, status=status)


# --- settings -----------------------------------------------------------------------


def max_bytes(session: Session) -> int:
    """The upload size limit in bytes, from ``core.attachments.max_mb`` (at least 1 MB)."""
    return max(1, int(get_setting(session, MAX_MB))) * MB


def allowed_types(session: Session) -> tuple[str, ...]:
    """The accepted types (canonical extensions) from ``core.attachments.allowed_types``.

    Entries may be separated by commas, spaces or Chinese commas and may carry a dot or
    an alias (``.jpeg``, ``TIFF``); entries naming no type Ordo recognises are ignored.
    """
    raw = str(get_setting(session, ALLOWED_TYPES))
    found: list[str] = []
    for entry in re.split(r"[\s,;，、；]+", raw.lower()):
        extension = _ALIASES.get(entry.strip().lstrip("."))
        if extension and extension not in found:
            found.append(extension)
    return tuple(found)


def megabytes(size: int) -> str:
    """``size`` bytes in MB with one decimal, rounded up (so 20 MB + 1 byte reads 20.1)."""
    return f"{math.ceil(size * 10 / MB) / 10:.1f}"


# --- people and text -----------------------------------------------------------------


def is_portal_user(user: User | None) -> bool:
    """Whether ``user`` is a customer's portal user (sees only what is shared with the customer)."""
    return user is not None and user.customer_id is not None


def plain_text(text: str, field: str, template: str) -> str:
    """``text`` with line breaks made ``\n``; :class:`AttachmentRefused` (422, ``invalid``,
    under ``field``) with ``template`` if it holds control characters other than line
    breaks and tabs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES and c not in "\n\t" for c in text):
        raise AttachmentRefused("invalid", template, field=field)
    return text


# --- names ----------------------------------------------------------------------------


def clean_filename(name: str, fallback: str = "attachment") -> str:
    """A file name safe to store and offer for download, keeping Chinese and other letters.

    Drops any folder part (``C:\\scans\\x.pdf``, ``../x.pdf``), control and invisible
    format characters (a right-to-left override can disguise ``fdp.exe`` as ``exe.pdf``),
    characters Windows forbids and leading dots; squeezes spaces; keeps the extension
    when shortening to 255 characters.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
    name = _RESERVED.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name:
        name = fallback
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            name = stem[: MAX_FILENAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:MAX_FILENAME]
    return name


def download_headers(attachment: OrderAttachment) -> dict[str, str]:
    """The headers of a download: always an attachment, never shown inline, never sniffed.

    ``filename*`` (RFC 5987/6266) carries the name in UTF-8 so Chinese names survive;
    ``filename`` is an ASCII stand-in for old clients. The sandboxing policy keeps a
    file from running script even if a browser were talked into rendering it.
    """
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in attachment.filename)
    return {
        "Content-Type": attachment.content_type,
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }


# --- the operations --------------------------------------------------------------------


def add_attachment(
    session: Session,
    user: User,
    order_id: int,
    *,
    filename: str,
    data: bytes,
    kind: str = "other",
    note: str = "",
    customer_visible: bool = False,
) -> OrderAttachment:
    """Attach a file to an order the user may see (the customer's original order, a
    contract, a signed delivery note, …) and audit it on the order (IN-5, IN-6).

    ``customer_visible`` shares a staff upload with the customer's portal users; what a
    portal user uploads is always visible to them (the argument is ignored).

    Refused with nothing written: 404 outside the scope, 403 without
    ``attachments.upload``, 413 above the size limit, 422 for an empty file, a type not
    found in the content or disallowed, a name disagreeing with the content, an unknown
    kind, a note over 500 characters or holding control characters. The same bytes
    uploaded twice are stored once.
    """
    order = order_for_upload(session, user, order_id)
    if kind not in ATTACHMENT_KINDS:
        raise AttachmentRefused(
            "invalid",
            N_("unknown kind %(kind)s; choose one of %(kinds)s"),
            {"kind": repr(kind), "kinds": ", ".join(ATTACHMENT_KINDS)},
            field="kind",
        )
    note = plain_text((note or "").strip(), "note", N_("the note must not contain control characters"))
    if len(note) > MAX_NOTE:
        too_long = N_("the note is longer than %(max)s characters")
        raise AttachmentRefused("invalid", too_long, {"max": MAX_NOTE}, field="note")
    filename = clean_filename(filename)
    detected = check_file(session, filename, data)
    if not _has_extension(filename):
        filename = clean_filename(f"{filename}.{detected.extension}")
    sha256 = file_store(session).put(data)
    attachment = OrderAttachment(
        order_id=order.id,
        kind=kind,
        filename=filename,
        content_type=detected.mime,
        size=len(data),
        sha256=sha256,
        note=note,
        uploaded_by_id=user.id,
        customer_visible=is_portal_user(user) or bool(customer_visible),
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        user,
        "order_attachment",
        attachment.id,
        "upload",
        {
            "filename": filename,
            "kind": kind,
            "size": len(data),
            "content_type": detected.mime,
            "sha256": sha256,
            "customer_visible": attachment.customer_visible,
        },
        order_id=order.id,
    )
    return attachment


def order_for_upload(session: Session, user: User, order_id: int) -> Order:
    """The order ``user`` may attach files to: 404 outside the scope, 403 without
    ``attachments.upload``. Screens and API call it before reading an upload's body."""
    order = get_order(session, user, order_id)
    if not user.can("attachments.upload"):
        raise ServiceError("forbidden", "you lack the permission 'attachments.upload'", status=403)
    return order


def check_file(session: Session, filename: str, data: bytes) -> DetectedType:
    """The type of an upload if the instance accepts it; :class:`AttachmentRefused` otherwise.

    Checks, in order: not empty, within the size limit (naming both sizes), a type
    found in the content that the file's name agrees with, and on the allowed list.
    """
    if not data:
        raise AttachmentRefused("invalid", N_("“%(name)s” is empty"), {"name": filename})
    limit = max_bytes(session)
    if len(data) > limit:
        raise AttachmentRefused(
            "too_large",
            N_("the file is %(size)s MB; the limit is %(limit)s MB"),
            {"size": megabytes(len(data)), "limit": limit // MB},
            status=413,
        )
    try:
        detected = detect(data, filename)
    except FileTypeRefused as exc:
        raise AttachmentRefused("unsupported_type", exc.template, exc.params) from None
    allowed = allowed_types(session)
    if detected.extension not in allowed:
        raise AttachmentRefused(
            "unsupported_type",
            N_("%(type)s files are not accepted here; accepted types: %(allowed)s"),
            {"type": detected.label, "allowed": ", ".join(allowed) or "-"},
        )
    return detected


def _has_extension(filename: str) -> bool:
    stem, dot, extension = filename.rpartition(".")
    return bool(dot and stem and extension.lower() in _ALIASES)


def list_attachments(session: Session, user: User, order_id: int) -> list[OrderAttachment]:
    """The order's attachments (removed ones left out), oldest first; 404 outside the scope.

    A portal user gets only those shared with the customer.
    """
    order = get_order(session, user, order_id)
    stmt = (
        select(OrderAttachment)
        .where(OrderAttachment.order_id == order.id, OrderAttachment.removed_at.is_(None))
        .order_by(OrderAttachment.uploaded_at, OrderAttachment.id)
    )
    if is_portal_user(user):
        stmt = stmt.where(OrderAttachment.customer_visible.is_(True))
    return list(session.scalars(stmt))


def get_attachment(session: Session, user: User, order_id: int, attachment_id: int) -> OrderAttachment:
    """One attachment of an order; 404 if the order is out of scope, the attachment is
    on another order, was removed, does not exist or — for a portal user — is not shared
    with the customer, all alike."""
    order = get_order(session, user, order_id)
    stmt = select(OrderAttachment).where(
        OrderAttachment.id == attachment_id,
        OrderAttachment.order_id == order.id,
        OrderAttachment.removed_at.is_(None),
    )
    if is_portal_user(user):
        stmt = stmt.where(OrderAttachment.customer_visible.is_(True))
    attachment = session.scalar(stmt)
    if attachment is None:
        raise NotFound("attachment", attachment_id)
    return attachment


def attachment_bytes(session: Session, attachment: OrderAttachment) -> bytes:
    """The stored bytes of ``attachment``, checked against its hash by the file store.

    Call it only with an attachment obtained through :func:`get_attachment` (which
    checked the scope).
    """
    return file_store(session).get(attachment.sha256)


def remove_attachment(session: Session, user: User, order_id: int, attachment_id: int, reason: str) -> OrderAttachment:
    """Hide an attachment from the order, with the reason audited; the file and row stay.

    404 as for :func:`get_attachment`, 403 without ``attachments.remove``, 422 without
    a reason or with one holding control characters.
    """
    attachment = attachment_for_removal(session, user, order_id, attachment_id)
    reason = plain_text((reason or "").strip(), "reason", N_("the reason must not contain control characters"))
    if not reason:
        raise AttachmentRefused("reason_required", N_("give the reason for removing the attachment"), field="reason")
    if len(reason) > MAX_REASON:
        too_long = N_("the reason is longer than %(max)s characters")
        raise AttachmentRefused("invalid", too_long, {"max": MAX_REASON}, field="reason")
    attachment.removed_at = utcnow()
    audit.record(
        session,
        user,
        "order_attachment",
        attachment.id,
        "remove",
        {"filename": attachment.filename, "kind": attachment.kind},
        reason=reason,
        order_id=attachment.order_id,
    )
    session.flush()
    return attachment


def attachment_for_removal(session: Session, user: User, order_id: int, attachment_id: int) -> OrderAttachment:
    """The attachment ``user`` may remove: 404 as for :func:`get_attachment`, 403 without
    ``attachments.remove``."""
    attachment = get_attachment(session, user, order_id, attachment_id)
    if not user.can("attachments.remove"):
        raise ServiceError("forbidden", "you lack the permission 'attachments.remove'", status=403)
    return attachment


def share_attachment(
    session: Session, user: User, order_id: int, attachment_id: int, customer_visible: bool
) -> OrderAttachment:
    """Share an attachment with the customer's portal users, or stop sharing it; audited
    on the order (``share`` / ``unshare``) when it changes.

    404 as for :func:`get_attachment`; 403 without ``attachments.upload`` and for portal
    users (staff decide what is shared); 422 to hide from the customer a file the
    customer uploaded.
    """
    attachment = attachment_for_sharing(session, user, order_id, attachment_id)
    if not customer_visible and attachment.uploaded_by_id is not None:
        uploader = session.get(User, attachment.uploaded_by_id)
        if is_portal_user(uploader):
            raise AttachmentRefused(
                "invalid",
                N_("the customer uploaded “%(name)s”, so the customer always sees it"),
                {"name": attachment.filename},
                field="customer_visible",
            )
    if attachment.customer_visible != customer_visible:
        attachment.customer_visible = customer_visible
        audit.record(
            session,
            user,
            "order_attachment",
            attachment.id,
            "share" if customer_visible else "unshare",
            {"filename": attachment.filename, "customer_visible": customer_visible},
            order_id=attachment.order_id,
        )
        session.flush()
    return attachment


def attachment_for_sharing(session: Session, user: User, order_id: int, attachment_id: int) -> OrderAttachment:
    """The attachment ``user`` may share or unshare: 404 as for :func:`get_attachment`,
    403 without ``attachments.upload`` or for a portal user."""
    attachment = get_attachment(session, user, order_id, attachment_id)
    if not user.can("attachments.upload"):
        raise ServiceError("forbidden", "you lack the permission 'attachments.upload'", status=403)
    if is_portal_user(user):
        raise ServiceError("forbidden", "only staff choose what is shared with the customer", status=403)
    return attachment


def uploaders(session: Session, attachments: list[OrderAttachment], viewer: User | None = None) -> dict[int, User]:
    """The users who uploaded ``attachments``, by id (one query for a whole list).

    For a portal ``viewer`` only users of the viewer's own customer are included: staff
    who uploaded a shared file are not named to customers (see :data:`STAFF_UPLOADER`).
    """
    ids = {a.uploaded_by_id for a in attachments if a.uploaded_by_id is not None}
    if not ids:
        return {}
    stmt = select(User).where(User.id.in_(ids))
    if viewer is not None and is_portal_user(viewer):
        stmt = stmt.where(User.customer_id == viewer.customer_id)
    return {u.id: u for u in session.scalars(stmt)}

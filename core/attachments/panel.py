"""The order page's "Attachments" panel: the files kept with the order, and the upload
and remove forms for those allowed to use them."""

from __future__ import annotations

import math

from flask import current_app, render_template
from flask_babel import format_decimal, lazy_gettext
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy.orm import Session

from core.attachments.service import MB, allowed_types, is_portal_user, list_attachments, max_bytes, uploaders
from core.attachments.sniff import NAME_EXTENSIONS
from core.contrib import Panel
from core.models import Order, User
from core.models.files import ATTACHMENT_KINDS

#: What each kind of attachment is, in the user's language (IN-5, IN-6, LG-7, LG-8).
KIND_LABELS = {
    "customer_order": lazy_gettext("Customer's original order"),
    "contract": lazy_gettext("Contract"),
    "delivery_note": lazy_gettext("Signed delivery note"),
    "acceptance_report": lazy_gettext("Acceptance report"),
    "other": lazy_gettext("Other"),
}
assert set(KIND_LABELS) == set(ATTACHMENT_KINDS), "every attachment kind needs a label"


def kind_label(kind: str) -> str:
    """An attachment kind in the user's language (the code if unknown)."""
    label = KIND_LABELS.get(kind)
    return str(label) if label is not None else kind


def size_label(size: int) -> str:
    """A file size for people: ``820 KB``, ``3.4 MB``."""
    if size < MB:
        return _("%(size)s KB", size=format_decimal(max(1, round(size / 1024)), format="#,##0"))
    return _("%(size)s MB", size=format_decimal(size / MB, format="#,##0.0"))


def upload_limit_mb(session: Session) -> str:
    """The size limit people are told, in MB: the setting, or less if the server accepts
    less (Flask's ``MAX_CONTENT_LENGTH``); ``20`` or, for a limit below whole MB, ``0.5``."""
    limit = max_bytes(session)
    cap = current_app.config.get("MAX_CONTENT_LENGTH")
    if cap:
        limit = min(limit, int(cap))
    if limit % MB == 0:
        return str(limit // MB)
    return f"{math.floor(limit * 10 / MB) / 10:.1f}"


def accept_attribute(types: tuple[str, ...]) -> str:
    """The file input's ``accept`` list (``.pdf,.jpg,.jpeg,…``): a hint for the file picker only."""
    return ",".join(f".{name}" for extension in types for name in NAME_EXTENSIONS[extension])


def attachments_panel(session: Session, order: Order, user: User) -> Panel:
    """The panel for ``order`` as ``user`` sees it (the order page already checked the scope).

    Portal users see only the files shared with the customer, without staff names; staff
    who may upload also choose what is shared.
    """
    rows = list_attachments(session, user, order.id)
    types = allowed_types(session)
    html = render_template(
        "attachments/panel.html",
        order=order,
        rows=rows,
        uploaded_by=uploaders(session, rows, user),
        can_upload=user.can("attachments.upload"),
        can_share=user.can("attachments.upload") and not is_portal_user(user),
        can_remove=user.can("attachments.remove"),
        limit_mb=upload_limit_mb(session),
        allowed=types,
        accept=accept_attribute(types),
        kinds=[(kind, kind_label(kind)) for kind in ATTACHMENT_KINDS],
        kind_label=kind_label,
        size_label=size_label,
    )
    # The template escapes what it inserts, so its output is trusted as Markup.
    return Panel(_("Attachments"), Markup(html), order=20)

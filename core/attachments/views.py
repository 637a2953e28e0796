"""Attachment screens: upload from the order page, download, share with the customer,
remove with a reason.

Thin views over :mod:`core.attachments.service`, which checks the order's scope (404),
the permission (403) and the file; a refusal comes back to the order page as a message
in the user's language. CSRF is checked by core for every cookie-authenticated POST.
"""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from core.attachments import service
from core.attachments.panel import upload_limit_mb
from core.attachments.service import AttachmentRefused
from core.labels import N_
from core.services import ServiceError
from core.views.common import abort_for, current_actor, permission_required, screen_blueprint
from core.views.messages import localize
from core.web import db

bp = screen_blueprint("attachments", __name__)


def refusal_text(exc: ServiceError) -> str:
    """A service's refusal in the user's language, as a sentence."""
    text = _(exc.template, **exc.params) if isinstance(exc, AttachmentRefused) else localize(exc.message)
    text = text[:1].upper() + text[1:]
    if text.endswith((".", "。", "!", "！")):
        return text
    return text + ("。" if str(get_locale() or "").startswith("zh") else ".")


def _back(order_id: int) -> Response:
    return redirect(url_for("orders.view_order", order_id=order_id, _anchor="attachments"))


@bp.post("/orders/<int:order_id>/attachments")
@permission_required("attachments.upload")
def upload_attachment(order_id: int) -> Response:
    """Attach the uploaded file to the order, then go back to the order page."""
    session, user = db(), current_actor()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            service.order_for_upload(session, user, order_id)  # out of scope: 404 before anything else
            raise AttachmentRefused("invalid", N_("choose a file to upload"))
        attachment = service.add_attachment(
            session,
            user,
            order_id,
            filename=upload.filename,
            data=upload.read(),
            kind=request.form.get("kind", "other"),
            note=request.form.get("note", ""),
            customer_visible=request.form.get("customer_visible") == "1",
        )
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_("%(reason)s Nothing was uploaded.", reason=refusal_text(exc)), "danger")
        return _back(order_id)
    session.commit()
    flash(_("“%(name)s” was attached to the order.", name=attachment.filename), "success")
    return _back(order_id)


@bp.get("/orders/<int:order_id>/attachments/<int:attachment_id>")
@login_required
def download_attachment(order_id: int, attachment_id: int) -> Response:
    """The attachment's bytes as a download (never shown inline); 404 outside the scope."""
    session = db()
    try:
        attachment = service.get_attachment(session, current_actor(), order_id, attachment_id)
    except ServiceError as exc:
        abort_for(exc)
        raise
    return Response(service.attachment_bytes(session, attachment), headers=service.download_headers(attachment))


@bp.post("/orders/<int:order_id>/attachments/<int:attachment_id>/share")
@permission_required("attachments.upload")
def share_attachment(order_id: int, attachment_id: int) -> Response:
    """Share an attachment with the customer (``customer_visible=1``) or stop sharing it (``0``)."""
    session, user = db(), current_actor()
    choice = request.form.get("customer_visible")
    try:
        service.attachment_for_sharing(session, user, order_id, attachment_id)  # 404 / 403 first
        if choice not in ("0", "1"):
            raise AttachmentRefused(
                "invalid", N_("choose whether the customer sees the file"), field="customer_visible"
            )
        attachment = service.share_attachment(session, user, order_id, attachment_id, choice == "1")
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(refusal_text(exc), "danger")
        return _back(order_id)
    session.commit()
    if attachment.customer_visible:
        flash(_("“%(name)s” is shared with the customer.", name=attachment.filename), "success")
    else:
        flash(_("“%(name)s” is no longer shared with the customer.", name=attachment.filename), "success")
    return _back(order_id)


@bp.post("/orders/<int:order_id>/attachments/<int:attachment_id>/remove")
@permission_required("attachments.remove")
def remove_attachment(order_id: int, attachment_id: int) -> Response:
    """Remove an attachment from the order (kept in the store), with the reason given."""
    session, user = db(), current_actor()
    try:
        attachment = service.remove_attachment(session, user, order_id, attachment_id, request.form.get("reason", ""))
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(refusal_text(exc), "danger")
        return _back(order_id)
    session.commit()
    flash(_("“%(name)s” was removed from the order.", name=attachment.filename), "success")
    return _back(order_id)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    # Flask refuses a body above MAX_CONTENT_LENGTH before the view runs (even before the
    # CSRF check reads the form); say so on the order page, naming the limit.
    session = db()
    limit = upload_limit_mb(session)
    flash(_("The file is larger than %(limit)s MB, the most accepted. Nothing was uploaded.", limit=limit), "danger")
    order_id = (request.view_args or {}).get("order_id")
    return _back(order_id) if isinstance(order_id, int) else redirect(url_for("index"))

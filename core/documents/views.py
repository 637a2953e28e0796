"""Document screens: print (issue) a PDF, download an archived one, e-mail one to the customer.

``/orders/<id>/documents/<name>.pdf`` issues the document — what is printed is archived;
printing a document whose content has not changed since hands out the archived copy
again and writes nothing — and ``/orders/<id>/issued-documents/<doc_id>.pdf`` shows an
archived one byte for byte. Orders outside the user's scope answer 404 as if they did
not exist. Without ``?lang=`` a document prints in the language the user reads screens in.
"""

from __future__ import annotations

import re

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db import transaction
from core.documents import check_language, check_may_print
from core.documents.archive import get_issued, issued_pdf, prepare_copy, store_copy
from core.documents.hooks import SEND_PERMISSION
from core.documents.mail import prepare_send, send_document
from core.i18n import select_locale
from core.models import User
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import abort_for, current_actor, permission_required, screen_blueprint
from core.views.labels import translate
from core.views.messages import localize
from core.web import db, ordo

bp = screen_blueprint("documents", __name__)


def _inline_pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"},
    )


def _language() -> str:
    """The language asked for with ``?lang=``, else the one the user reads screens in
    (``zh_CN`` or ``en``, as :func:`core.i18n.select_locale` names it — not Babel's
    ``zh_Hans_CN``); 400 for one documents are not printed in."""
    language = request.args.get("lang") or select_locale()
    try:
        return check_language(language)
    except ServiceError:
        abort(400, description=_("Documents are printed in Chinese (zh_CN) or English (en) only."))


@bp.get("/orders/<int:order_id>/documents/<name>.pdf")
@login_required
def order_document(order_id: int, name: str) -> Response:
    """Issue document ``name`` for the order and show the PDF; the copy is archived (an
    unchanged document is the archived copy again, and nothing is written)."""
    user, state, language = current_actor(), ordo(), _language()
    try:
        copy = prepare_copy(db(), state.registry, name, order_id, user, language)
    except ServiceError as exc:
        abort(exc.status)
    if copy.issued is not None:
        return _inline_pdf(copy.pdf, copy.issued.filename)
    # The page's session only reads; the archive is written in a short transaction of its own.
    with transaction(state.sessions) as session:
        issued = store_copy(session, copy, user)
    return _inline_pdf(copy.pdf, issued.filename)


@bp.get("/orders/<int:order_id>/issued-documents/<int:doc_id>.pdf")
@login_required
def issued_document(order_id: int, doc_id: int) -> Response:
    """An archived document, exactly as it was issued."""
    session = db()
    try:
        issued = get_issued(session, ordo().registry, current_actor(), order_id, doc_id)
        data = issued_pdf(session, issued)
    except ServiceError as exc:
        abort(exc.status)
    return _inline_pdf(data, issued.filename)


@bp.post("/orders/<int:order_id>/documents/<name>/send")
@permission_required(SEND_PERMISSION)
def send_order_document(order_id: int, name: str) -> WerkzeugResponse:
    """E-mail document ``name`` to the order's customer (issued and queued), then back to the order."""
    session, user, state = db(), current_actor(), ordo()
    try:
        # Out of scope (or no such type) answers 404 before anything about the form is said.
        get_order(session, user, order_id)
        check_may_print(state.registry, name, user)
    except ServiceError as exc:
        abort_for(exc)
    back = redirect(url_for("orders.view_order", order_id=order_id) + "#documents")
    version = request.form.get("version", "")
    if not re.fullmatch(r"[0-9]{1,9}", version):
        flash(_("Nothing was sent: the form was incomplete. Please try again."), "danger")
        return back
    language = request.form.get("lang") or None
    try:
        # Rendering the PDF takes a while: done in a session that only reads, after
        # letting go of this request's transaction (it holds the write lock and has
        # written nothing yet); the send itself then writes in a new one.
        session.commit()
        with state.read_sessions() as reading:
            reader = reading.get(User, user.id)
            if reader is None:  # pragma: no cover - the user was just loaded
                abort(404)
            copy = prepare_send(
                reading, state.registry, name, order_id, reader, version=int(version), language=language
            )
        # What was loaded before is read again now, under the lock: the order may have
        # changed while the PDF rendered (then the version check refuses it).
        session.expire_all()
        sent = send_document(session, state.registry, name, order_id, user, version=int(version), copy=copy)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_refusal(exc), "danger")
        return back
    doc = state.registry.documents[name]
    flash(
        _(
            "%(document)s was issued and queued for e-mail to %(addresses)s.",
            document=translate(doc.label),
            addresses=", ".join(sent.addresses),
        ),
        "success",
    )
    return back


def _refusal(exc: ServiceError) -> str:
    """Why nothing was sent, in the user's language."""
    if exc.code == "stale_version":
        return _("Someone changed this order meanwhile, so nothing was sent. Check it and send again.")
    if exc.code == "no_email_contact":
        return _("Nothing was sent: the customer has no contact with an e-mail address. Add one to the customer first.")
    if exc.code == "invalid":
        return _("Documents are printed in Chinese (zh_CN) or English (en) only.")
    return localize(exc.message)

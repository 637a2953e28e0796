"""Document screens: print (issue) a PDF, download an archived one, e-mail one to the customer.

``/orders/<id>/documents/<name>.pdf`` issues the document — every print is archived —
and ``/orders/<id>/issued-documents/<doc_id>.pdf`` shows an archived one byte for byte.
Orders outside the user's scope answer 404 as if they did not exist.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db import transaction
from core.documents import check_language, check_may_print
from core.documents.archive import archive_pdf, get_issued, issued_pdf, render_for_issue
from core.documents.hooks import SEND_PERMISSION
from core.documents.mail import send_document
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
    """The language asked for with ``?lang=``, else the user's; 400 for one not printed."""
    language = request.args.get("lang") or str(get_locale() or "zh_CN")
    try:
        return check_language(language)
    except ServiceError:
        abort(400, description=_("Documents are printed in Chinese (zh_CN) or English (en) only."))


@bp.get("/orders/<int:order_id>/documents/<name>.pdf")
@login_required
def order_document(order_id: int, name: str) -> Response:
    """Issue document ``name`` for the order and show the PDF; the copy is archived."""
    user, state, language = current_actor(), ordo(), _language()
    try:
        order, pdf = render_for_issue(db(), state.registry, name, order_id, user, language)
    except ServiceError as exc:
        abort(exc.status)
    # The page's session only reads; the archive is written in a short transaction of its own.
    with transaction(state.sessions) as session:
        issued = archive_pdf(session, order, name, language, user, pdf)
    return _inline_pdf(pdf, issued.filename)


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
    session, user = db(), current_actor()
    try:
        # Out of scope (or no such type) answers 404 before anything about the form is said.
        get_order(session, user, order_id)
        check_may_print(ordo().registry, name, user)
    except ServiceError as exc:
        abort_for(exc)
    back = redirect(url_for("orders.view_order", order_id=order_id) + "#documents")
    version = request.form.get("version", "")
    if not version.isdigit():
        flash(_("Nothing was sent: the form was incomplete. Please try again."), "danger")
        return back
    try:
        sent = send_document(
            session,
            ordo().registry,
            name,
            order_id,
            user,
            version=int(version),
            language=request.form.get("lang") or None,
        )
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        flash(_refusal(exc), "danger")
        return back
    doc = ordo().registry.documents[name]
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

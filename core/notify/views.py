"""Screens of the notification service: the bell and its list, and the outbox for administrators.

* ``/notifications`` — everyone's own in-app notifications (CORE-7): newest first,
  unread in bold, a link to the order when the reader may see it, "mark read" per row
  and "mark all read". Portal customers see their customer's notifications here too:
  it is their portal list.
* ``/admin/outbox`` — for holders of ``outbox.manage``: every queued, sent, failed and
  uncertain message with counts per status, a message's rendered text, and the
  administrator's remedies (retry, perhaps to a corrected address; cancel; mark sent).

The bell's number comes from :func:`bell_count`, offered to every template by a context
processor: one COUNT query, and only on pages that show the bell.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core.models import Notification, Order, OutboxMessage, User
from core.models.notify import OUTBOX_STATUSES
from core.notify import inbox
from core.notify.outbox import cancel, mark_sent, outbox_counts, retry
from core.security.scopes import order_scope
from core.services import ServiceError
from core.views.common import (
    abort_for,
    current_actor,
    paginate,
    permission_required,
    query_args,
    safe_target,
    screen_blueprint,
)
from core.views.messages import localize
from core.web import db, ordo

bp = screen_blueprint("notifications", __name__, url_prefix="/notifications")
outbox_bp = screen_blueprint("outbox", __name__, url_prefix="/admin/outbox")

#: Outbox statuses in the reader's language, and one badge colour each; failed and
#: uncertain messages need an administrator, so they stand out.
OUTBOX_STATUS_LABELS = {
    "queued": _l("Queued"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "uncertain": _l("Uncertain"),
    "cancelled": _l("Cancelled"),
}
OUTBOX_STATUS_COLOURS = {
    "queued": "secondary",
    "sending": "info",
    "sent": "success",
    "failed": "danger",
    "uncertain": "warning",
    "cancelled": "dark",
}
#: Core's channels by name; plugins' channels show their registered label.
CORE_CHANNEL_LABELS = {"email": _l("E-mail"), "inapp": _l("In-app")}


def outbox_status_label(status: str) -> str:
    """An outbox status in the reader's language."""
    label = OUTBOX_STATUS_LABELS.get(status)
    return str(label) if label is not None else status


def outbox_status_colour(status: str) -> str:
    """The Bootstrap colour of an outbox status's badge."""
    return OUTBOX_STATUS_COLOURS.get(status, "light")


def notify_channel_label(name: str) -> str:
    """A delivery channel's label: core's translated, a plugin's as it registered it."""
    if name in CORE_CHANNEL_LABELS:
        return str(CORE_CHANNEL_LABELS[name])
    channel = ordo().registry.channels.get(name)
    return _(channel.label) if channel is not None else name


def bell_count() -> int:
    """The logged-in user's unread notifications (0 when nobody is logged in), counted once per request."""
    if not current_user.is_authenticated:
        return 0
    if "ordo_bell_count" not in g:
        session = db()
        # An error page shown after a failed write: the count waits for the next page.
        g.ordo_bell_count = inbox.unread_count(session, current_actor()) if session.is_active else 0
    return int(g.ordo_bell_count)


@bp.app_context_processor
def _bell() -> dict[str, Any]:
    # A function, not a number: pages that never show the bell (PDFs, mails) never count.
    return {"bell_count": bell_count}


@outbox_bp.record_once
def _template_helpers(state: BlueprintSetupState) -> None:
    # Globals, not a context processor: imported macros see globals only.
    state.app.jinja_env.globals.update(
        outbox_status_label=outbox_status_label,
        outbox_status_colour=outbox_status_colour,
        notify_channel_label=notify_channel_label,
    )


def visible_orders(session: Session, user: User, order_ids: set[int | None]) -> dict[int, str]:
    """The numbers of those of ``order_ids`` that ``user`` may see, by id (others get no link)."""
    ids = {i for i in order_ids if i is not None}
    if not ids:
        return {}
    stmt = select(Order.id, Order.number).where(Order.id.in_(ids), order_scope(user))
    return dict(session.execute(stmt).tuples().all())


# --- the bell's list ------------------------------------------------------------------


@bp.get("")
@login_required
def list_notifications() -> str:
    """The reader's notifications, newest first; ``?unread=1`` shows only unread ones."""
    session, user = db(), current_actor()
    unread = request.args.get("unread") == "1"
    page = paginate(
        session,
        inbox.notifications_query(user, unread_only=unread),
        sortable={"created": Notification.id},
        default_sort="-created",
        endpoint="notifications.list_notifications",
        args=query_args("unread"),
    )
    orders = visible_orders(session, user, {n.order_id for n in page.rows})
    return render_template("notifications/list.html", page=page, unread=unread, orders=orders)


def _back() -> str:
    return safe_target(request.form.get("next"), url_for(".list_notifications"))


@bp.post("/<int:notification_id>/read")
@login_required
def read_notification(notification_id: int) -> Response:
    """Mark one of the reader's notifications read; anyone else's answers 404."""
    session = db()
    try:
        inbox.mark_read(session, current_actor(), [notification_id])
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        raise
    session.commit()
    return redirect(_back())


@bp.post("/read-all")
@login_required
def read_all_notifications() -> Response:
    """Mark every notification of the reader read."""
    session = db()
    count = inbox.mark_read(session, current_actor())
    session.commit()
    if count:
        flash(_("%(count)s notification(s) marked read.", count=count), "success")
    return redirect(_back())


# --- the outbox -------------------------------------------------------------------------

_OUTBOX_SORTS: dict[str, Any] = {
    "created": OutboxMessage.id,
    "next_attempt": OutboxMessage.next_attempt_at,
    "attempts": OutboxMessage.attempts,
}


def outbox_query(status: str | None = None, channel: str | None = None, text: str | None = None) -> Any:
    """Outbox messages, filtered by status, channel and text in the address or template."""
    stmt = select(OutboxMessage)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)
    if text:
        like = f"%{text.strip()}%"
        stmt = stmt.where(
            or_(
                OutboxMessage.address.ilike(like),
                OutboxMessage.recipient_name.ilike(like),
                OutboxMessage.template.ilike(like),
            )
        )
    return stmt


def _status_counts(session: Session) -> dict[str, int]:
    counts = outbox_counts(session)
    return {status: int(counts.get(status, 0)) for status in OUTBOX_STATUSES}


@outbox_bp.get("")
@permission_required("outbox.manage")
def list_outbox() -> str:
    """Outbox messages with counts per status; filter by status, channel, address."""
    session, user = db(), current_actor()
    status = request.args.get("status", "").strip()
    status = status if status in OUTBOX_STATUSES else ""
    channel = request.args.get("channel", "").strip()
    page = paginate(
        session,
        outbox_query(status or None, channel or None, request.args.get("q", "").strip() or None),
        sortable=_OUTBOX_SORTS,
        default_sort="-created",
        endpoint="outbox.list_outbox",
        args=query_args("status", "channel", "q"),
        tie_breaker=OutboxMessage.id,
    )
    channels = ["email", "inapp", *sorted(ordo().registry.channels)]
    return render_template(
        "outbox/list.html",
        page=page,
        status=status,
        channel=channel,
        channels=channels,
        counts=_status_counts(session),
        orders=visible_orders(session, user, {m.order_id for m in page.rows}),
    )


def _message(message_id: int) -> OutboxMessage:
    message = db().get(OutboxMessage, message_id)
    if message is None:
        raise NotFound()
    return message


@outbox_bp.get("/<int:message_id>")
@permission_required("outbox.manage")
def view_outbox_message(message_id: int) -> str:
    """One message: its recipient, rendered subject and body, delivery attempts and last error."""
    session, user = db(), current_actor()
    message = _message(message_id)
    recipient = session.get(User, message.user_id) if message.user_id else None
    return render_template(
        "outbox/view.html",
        message=message,
        recipient=recipient,
        orders=visible_orders(session, user, {message.order_id}),
    )


def _outbox_action(message_id: int, done: str, act: Any) -> Response:
    session = db()
    _message(message_id)
    try:
        act(session)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        messages = [localize(m) for values in exc.details.values() for m in values] if exc.details else []
        flash(" ".join(messages) or localize(exc.message), "danger")
    else:
        flash(done, "success")
    return redirect(url_for(".view_outbox_message", message_id=message_id))


@outbox_bp.post("/<int:message_id>/retry")
@permission_required("outbox.manage")
def retry_outbox_message(message_id: int) -> Response:
    """Queue a failed, uncertain or waiting message to go now, to a corrected ``address`` if one is given."""
    address = request.form.get("address", "").strip() or None
    return _outbox_action(
        message_id,
        _("The message is queued again; the worker sends it shortly."),
        lambda session: retry(session, message_id, current_actor(), address=address),
    )


@outbox_bp.post("/<int:message_id>/cancel")
@permission_required("outbox.manage")
def cancel_outbox_message(message_id: int) -> Response:
    """Cancel a message that has not been sent: it will never be sent."""
    return _outbox_action(
        message_id,
        _("The message was cancelled; it will not be sent."),
        lambda session: cancel(session, message_id, current_actor()),
    )


@outbox_bp.post("/<int:message_id>/mark-sent")
@permission_required("outbox.manage")
def mark_outbox_message_sent(message_id: int) -> Response:
    """Record that an uncertain message did arrive (the administrator checked), so it is not sent again."""
    return _outbox_action(
        message_id,
        _("The message is marked sent."),
        lambda session: mark_sent(session, message_id, current_actor()),
    )

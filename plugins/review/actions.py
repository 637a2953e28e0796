"""Taking a workflow action from a review screen: the reason checked, refusals flashed.

The sheet page and the approvals inbox both post an order's step action (approve,
reject, abandon, re-quote …) with a reason; this does it once for both, in the user's
language, and commits or rolls back.
"""

from __future__ import annotations

from flask import flash, request
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.orm.exc import StaleDataError

from core.models import Order
from core.schemas import ActionInSchema
from core.services import ServiceError
from core.services.orders import take_action
from core.views.common import current_actor
from core.views.labels import action_label, step_label
from core.views.orders import describe_refusal
from core.web import db, ordo
from plugins.review.errors import ReviewError


def reason_from_form() -> str | None:
    """The posted reason, or None (with a message flashed) when it is too long."""
    try:
        return str(ActionInSchema().load({"reason": request.form.get("reason", "")})["reason"])
    except ValidationError:
        flash(_("The reason is too long (at most 1000 characters)."), "danger")
        return None


def take_posted_action(order: Order) -> bool:
    """Take the posted ``action`` on ``order`` with its reason and version; flash the outcome.

    Commits on success; on any refusal rolls back, flashes why and returns False.
    """
    session = db()
    name = request.form.get("action", "")
    version = request.form.get("version", "")
    reason = reason_from_form()
    if reason is None:
        return False
    try:
        transition = take_action(
            session, ordo().registry, current_actor(), order, name, reason, int(version) if version.isdigit() else None
        )
        session.commit()
    except ReviewError as exc:
        session.rollback()
        flash(exc.localized(), "danger")
        return False
    except ServiceError as exc:
        session.rollback()
        flash(" ".join(describe_refusal(exc, order, name)), "danger")
        return False
    except StaleDataError:
        session.rollback()
        flash(
            _("Someone changed this order meanwhile, so nothing was done. Check its current state and try again."),
            "danger",
        )
        return False
    flash(
        _(
            "Order %(number)s: “%(action)s” done; it is now at step “%(step)s”.",
            number=order.number,
            action=action_label(transition.action),
            step=step_label(transition.to_step),
        ),
        "success",
    )
    return True

"""API token screens: your own tokens — create (the token is shown once), see when each
was last used and when it expires, revoke. Holders of ``users.manage`` also see and
revoke everyone's tokens.

Thin views over :mod:`core.services.access`; only a token's hash is stored, so the page
that creates it is the only place it ever appears.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice

from core.models import ApiToken
from core.services import ServiceError
from core.services.access import (
    MANAGE,
    create_api_token,
    get_api_token,
    revoke_api_token,
    token_state,
    tokens_query,
)
from core.views.common import FieldErrors, abort_for, attach_errors, current_actor, screen_blueprint
from core.views.users import refusal
from core.web import db

bp = screen_blueprint("tokens", __name__, url_prefix="/account/tokens")

#: How long a new token may live, in days ("" for no expiry).
EXPIRY_CHOICES = [
    SelectChoice("30", _l("30 days")),
    SelectChoice("90", _l("90 days")),
    SelectChoice("365", _l("1 year")),
    SelectChoice("", _l("Never")),
]
STATE_LABELS = {"active": _l("Active"), "expired": _l("Expired"), "revoked": _l("Revoked")}


class TokenForm(FlaskForm):
    """What a new token is for and how long it lives."""

    name = StringField(_l("What is it for?"), render_kw={"maxlength": 100, "placeholder": _l("e.g. ERP sync")})
    expires = SelectField(_l("Expires after"), choices=EXPIRY_CHOICES, default="90")


def _page(
    form: TokenForm, new_token: str | None = None, errors: FieldErrors | None = None, status: int = 200
) -> tuple[str, int]:
    session, actor = db(), current_actor()
    own = list(session.scalars(tokens_query(actor)))
    others: list[ApiToken] = []
    if actor.can(MANAGE):
        others = [t for t in session.scalars(tokens_query(actor, everyone=True)) if t.user_id != actor.id]
    return (
        render_template(
            "tokens/list.html",
            form=form,
            own=own,
            others=others,
            new_token=new_token,
            errors=errors or FieldErrors(),
            token_state=token_state,
            state_labels=STATE_LABELS,
        ),
        status,
    )


@bp.get("")
@login_required
def list_tokens() -> tuple[str, int]:
    """Your tokens (and, for administrators, everyone's) with the form to create one."""
    return _page(TokenForm())


@bp.post("")
@login_required
def create_token() -> tuple[str, int]:
    """Create a token and show it this once, with a button to copy it."""
    session, actor = db(), current_actor()
    form = TokenForm()
    days = form.expires.data or ""
    data: dict[str, Any] = {"name": (form.name.data or "").strip()}
    if days:
        data["expires_days"] = int(days) if days.isdigit() else days
    try:
        row, token = create_api_token(session, actor, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        attach_errors(form, errors, {"expires_days": "expires", "expires_at": "expires"})
        return _page(form, errors=errors, status=422)
    flash(_("Token %(prefix)s… was created. Copy it now: it is not shown again.", prefix=row.prefix), "success")
    return _page(TokenForm(formdata=None), new_token=token)


@bp.post("/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    """Revoke a token (your own, or anyone's for ``users.manage``)."""
    session, actor = db(), current_actor()
    try:
        token = revoke_api_token(session, actor, get_api_token(session, actor, token_id))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        abort_for(exc)
        raise NotFound() from exc
    flash(_("Token %(prefix)s… was revoked; it no longer works.", prefix=token.prefix), "success")
    return redirect(url_for(".list_tokens"))

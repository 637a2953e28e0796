"""Logging in and out, and choosing the language before logging in."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email

from core.i18n import LANGUAGES
from core.models import User
from core.security.passwords import verify_password
from core.services import audit
from core.views.common import safe_target
from core.web import actor, db

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """E-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    return safe_target(target, url_for("index"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """Show the login form; on success start a fresh session and go where the user was going."""
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        user = db().scalar(select(User).where(User.email == email))
        if user is not None and user.active and verify_password(user.password_hash, form.password.data or ""):
            lang = session.get("lang")
            session.clear()  # a new session on login (no fixation)
            if lang:
                session["lang"] = lang
            login_user(user)
            audit.record(db(), user, "user", user.id, "login")
            db().commit()
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."), "danger")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """End the session."""
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>", methods=["GET", "POST"])
def set_language(code: str) -> Response:
    """Choose the interface language: kept in the session, and for a logged-in user (by
    POST, so with the CSRF token) saved as the user's own language."""
    if code in LANGUAGES:
        session["lang"] = code
        user = actor()
        if request.method == "POST" and user is not None and user.language != code:
            audit.record(db(), user, "user", user.id, "update", {"language": [user.language, code]})
            user.language = code
            db().commit()
    return redirect(_safe_next(request.args.get("next")))

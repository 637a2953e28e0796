"""Logging in and out, and choosing the language before logging in.

Logging out ends the user's sessions on every device (:mod:`core.security.sessions`).
Logging in is throttled (:mod:`core.security.throttle`): every attempt is recorded,
repeated failures per account and per client address lock further attempts for a
growing delay, and an unknown e-mail costs the same password check as a known one, so
neither the message nor the timing tells whether an account exists. A password hash
made with older argon2 parameters is renewed with today's at the next successful login
(:func:`core.security.passwords.upgraded_hash`).
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email

from core.clock import app_now
from core.i18n import LANGUAGES
from core.models import User
from core.security.passwords import dummy_hash, upgraded_hash, verify_password
from core.security.sessions import end_sessions, start_clock
from core.security.throttle import (
    Lockout,
    ThrottleSettings,
    lockout,
    normalise_email,
    prune,
    record_attempt,
    record_refused_attempt,
)
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


def _refuse_locked(form: LoginForm, lock: Lockout) -> tuple[str, int, dict[str, str]]:
    seconds = lock.seconds_left(app_now())
    flash(
        _(
            "Too many failed logins. Please wait %(seconds)s seconds and try again (after %(time)s).",
            seconds=seconds,
            time=format_datetime(lock.until, "HH:mm:ss"),
        ),
        "danger",
    )
    return render_template("auth/login.html", form=form), 429, {"Retry-After": str(seconds)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int, dict[str, str]]:
    """Show the login form; on success start a fresh session and go where the user was going.

    A locked account or address is refused with 429 before the password is looked at;
    every attempt is recorded, failures and locks are audited.
    """
    form = LoginForm()
    if form.validate_on_submit():
        store = db()
        email = normalise_email(form.email.data or "")
        address = request.remote_addr or ""
        settings = ThrottleSettings.from_config(current_app.config)
        now = app_now()
        prune(store, settings, now)  # old attempts go, whoever they were
        lock = lockout(store, email, address, settings, now)
        if lock is not None:
            # A refused attempt counts as a failure too (the lock grows while guessing goes
            # on), unless its address is locked itself: then it adds no row.
            lock = record_refused_attempt(store, email, address, settings, now) or lock
            store.commit()
            return _refuse_locked(form, lock)
        user = store.scalar(select(User).where(User.email == email))
        # Verify even for an unknown e-mail (against a dummy hash): same time either way.
        matches = verify_password(user.password_hash if user is not None else dummy_hash(), form.password.data or "")
        if user is not None and user.active and matches:
            record_attempt(store, email, address, succeeded=True, now=now)
            renewed = upgraded_hash(user.password_hash, form.password.data or "")
            if renewed is not None:
                user.password_hash = renewed  # made with older parameters: today's from now on
            lang = session.get("lang")
            session.clear()  # a new session on login (no fixation)
            if lang:
                session["lang"] = lang
            login_user(user)
            start_clock(session, now)  # for the idle and absolute timeouts
            audit.record(store, user, "user", user.id, "login", {"address": address})
            store.commit()
            return redirect(_safe_next(request.args.get("next")))
        record_attempt(store, email, address, succeeded=False, now=now)
        details = {"email": email, "address": address}
        audit.record(store, None, "user", user.id if user is not None else None, "login_failed", details)
        lock = lockout(store, email, address, settings, now)
        if lock is not None:
            locked = details | {"by": lock.by, "failures": lock.failures, "until": lock.until}
            audit.record(store, None, "user", user.id if user is not None else None, "login_locked", locked)
            store.commit()
            return _refuse_locked(form, lock)
        store.commit()
        flash(_("Wrong e-mail or password."), "danger")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """End the user's login sessions everywhere: this browser's, and (by raising the
    session epoch) every other device's and any copy of the cookie."""
    user = actor()
    if user is not None:
        end_sessions(db(), user)
        db().commit()
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

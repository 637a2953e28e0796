"""User administration screens: list with filters, create, edit roles and organisation,
reset a password, deactivate and reactivate.

Thin views over :mod:`core.services.access` (all need ``users.manage``). The service's
refusals — unknown roles, duplicate e-mail, weak password, the last administrator — are
shown beside the fields in the user's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField

from core.i18n import LANGUAGES
from core.labels import N_
from core.models import Branch, Customer, Department, Role, User
from core.services import ServiceError
from core.services.access import create_user, get_user, reset_password, set_user_active, update_user, users_query
from core.views.common import (
    FieldErrors,
    abort_for,
    attach_errors,
    current_actor,
    field_errors,
    paginate,
    permission_required,
    query_args,
    screen_blueprint,
    select_choices,
)
from core.views.labels import permission_label, translate
from core.views.messages import localize
from core.web import db

bp = screen_blueprint("users", __name__, url_prefix="/admin/users")

#: Fixed messages of :mod:`core.services.access`, looked up in the catalogue as they are.
ACCESS_MESSAGES = (
    N_("A portal user (a role with the customer scope) needs a customer."),
    N_("Only portal users (a role with the customer scope) are linked to a customer."),
    N_("A password needs at least one letter and one digit."),
    N_("This password is one of the most common passwords; choose another."),
    N_("A name is required."),
    N_("Use 1–64 lower-case letters, digits, '.', '_' or '-'."),
    N_("The expiry must lie in the future."),
)

#: (pattern, how to word it) for access-control messages carrying a value; keep in step
#: with the wording in core/services/access.py.
ACCESS_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r"^Unknown role\(s\) (.+); known roles: (.*)\.$"),
        lambda m: _("Unknown role(s) %(codes)s; known roles: %(known)s.", codes=m[1], known=m[2]),
    ),
    (
        re.compile(r"^A user with e-mail (.+) exists already\.$"),
        lambda m: _("A user with e-mail %(email)s exists already.", email=m[1]),
    ),
    (
        re.compile(r"^Unknown department '(.*)'\.$"),
        lambda m: _("Unknown department %(code)s.", code=m[1]),
    ),
    (
        re.compile(r"^A password needs at least (\d+) characters\.$"),
        lambda m: _("A password needs at least %(count)s characters.", count=m[1]),
    ),
    (
        re.compile(r"^(.+) is the last active administrator; give the admin role to another active user first$"),
        lambda m: _(
            "%(email)s is the last active administrator; give the admin role to another active user first.",
            email=m[1],
        ),
    ),
    (
        re.compile(r"^(.+) is the last active administrator; make another user an administrator before .*$"),
        lambda m: _(
            "%(email)s is the last active administrator; make another user an administrator before deactivating "
            "this one.",
            email=m[1],
        ),
    ),
    (
        re.compile(r"^you cannot change your own roles without the permission '(.+)'$"),
        lambda m: _(
            "You cannot change your own roles without the permission “%(permission)s”.",
            permission=permission_label(m[1]),
        ),
    ),
    (
        re.compile(r"^Unknown data scope '(.*)'; choose one of (.*)\.$"),
        lambda m: _("Unknown data scope %(scope)s; choose one of %(scopes)s.", scope=m[1], scopes=m[2]),
    ),
    (
        re.compile(r"^Permission '(.+)' belongs to plugin '(.+)', which is not enabled\.$"),
        lambda m: _("Permission %(code)s belongs to plugin %(plugin)s, which is not enabled.", code=m[1], plugin=m[2]),
    ),
    (re.compile(r"^Unknown permission '(.+)'\.$"), lambda m: _("Unknown permission %(code)s.", code=m[1])),
    (re.compile(r"^Role code '(.+)' is taken\.$"), lambda m: _("Role code %(code)s is already taken.", code=m[1])),
    (
        re.compile(r"^no active user would keep the permission '(.+)'; grant it through another role first$"),
        lambda m: _(
            "No active user would keep the permission “%(permission)s”; grant it through another role first.",
            permission=permission_label(m[1]),
        ),
    ),
    (
        re.compile(r"^role '(.+)' ships with Ordo and cannot be deleted$"),
        lambda m: _("Role %(code)s ships with Ordo and cannot be deleted.", code=m[1]),
    ),
    (
        re.compile(r"^role '(.+)' is held by (\d+) user\(s\); take it from them first$"),
        lambda m: _("Role %(code)s is held by %(count)s user(s); take it from them first.", code=m[1], count=m[2]),
    ),
    (
        re.compile(r"^A token lives at most (\d+) days\.$"),
        lambda m: _("A token lives at most %(days)s days.", days=m[1]),
    ),
)


def localize_access(message: str) -> str:
    """An access-control message in the user's language (core's own messages as core words them)."""
    for pattern, word in ACCESS_PATTERNS:
        match = pattern.match(str(message))
        if match:
            return word(match)
    return localize(message)


def _localized_details(details: Any) -> Any:
    if isinstance(details, Mapping):
        return {key: _localized_details(value) for key, value in details.items()}
    if isinstance(details, list | tuple):
        return [_localized_details(value) for value in details]
    if isinstance(details, str):
        return localize_access(details)
    return details


def refusal(exc: ServiceError) -> FieldErrors:
    """A service's refusal as errors for a form, worded for the user; 403/404 become their pages."""
    abort_for(exc)
    errors = field_errors(_localized_details(exc.details))
    if not exc.details:
        errors.general.append(localize_access(exc.message))
    return errors


def attach(form: Any, errors: FieldErrors, beside: tuple[str, ...] = ()) -> None:
    """Put ``errors`` on the form's fields; those of ``beside`` (checkbox groups the template
    shows itself) stay out of the general messages."""
    attach_errors(
        form, FieldErrors(fields={k: v for k, v in errors.fields.items() if k not in beside}, general=errors.general)
    )


LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}


class UserForm(FlaskForm):
    """A user's own fields; roles are checkboxes read from the request."""

    email = EmailField(_l("E-mail"), render_kw={"maxlength": 254, "required": True, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"maxlength": 200})
    language = SelectField(_l("Language"), choices=select_choices((code, LANGUAGE_NAMES[code]) for code in LANGUAGES))
    branch = SelectField(_l("Branch"), validate_choice=False)
    department = SelectField(_l("Department"), validate_choice=False)
    customer = StringField(_l("Customer code"), render_kw={"maxlength": 32, "autocomplete": "off"})
    password = PasswordField(_l("Password"), render_kw={"autocomplete": "new-password"})
    active = BooleanField(_l("Active (may log in)"))


class PasswordForm(FlaskForm):
    """An administrator's password reset: the new password twice."""

    password = PasswordField(_l("New password"), render_kw={"autocomplete": "new-password", "required": True})
    confirm = PasswordField(_l("Repeat the new password"), render_kw={"autocomplete": "new-password", "required": True})


def _options(session: Session) -> dict[str, Any]:
    return {
        "branches": list(session.scalars(select(Branch).order_by(Branch.code))),
        "departments": list(session.scalars(select(Department).order_by(Department.code))),
        "roles": list(session.scalars(select(Role).order_by(Role.code))),
    }


def _setup(form: UserForm, options: dict[str, Any]) -> None:
    none = [("", _("— none —"))]
    form.branch.choices = select_choices([*none, *((b.code, f"{b.code} · {b.name}") for b in options["branches"])])
    form.department.choices = select_choices(
        [*none, *((d.code, f"{d.code} · {d.name}") for d in options["departments"])]
    )


def _code(session: Session, model: Any, ident: int | None) -> str:
    if ident is None:
        return ""
    return session.scalar(select(model.code).where(model.id == ident)) or ""


def _user_input(form: UserForm, roles: list[str]) -> dict[str, Any]:
    return {
        "name": (form.name.data or "").strip(),
        "language": form.language.data,
        "branch": form.branch.data or None,
        "department": form.department.data or None,
        "customer": (form.customer.data or "").strip() or None,
        "roles": roles,
    }


def _render_form(
    form: UserForm,
    options: dict[str, Any],
    chosen: list[str],
    errors: FieldErrors,
    user: User | None,
    status: int = 200,
    password_form: PasswordForm | None = None,
) -> tuple[str, int]:
    return (
        render_template(
            "users/form.html",
            form=form,
            chosen=set(chosen),
            errors=errors,
            user=user,
            password_form=password_form or PasswordForm(formdata=None),
            **options,
        ),
        status,
    )


def _get(user_id: int) -> User:
    try:
        return get_user(db(), current_actor(), user_id)
    except ServiceError as exc:
        abort_for(exc)
        raise NotFound() from exc


_SORTS = {"email": User.email, "name": User.name, "created": User.created_at}


@bp.get("")
@permission_required("users.manage")
def list_users() -> str:
    """Users, searchable by e-mail or name, filtered by role, branch and state."""
    session, actor = db(), current_actor()
    options = _options(session)
    branch_code = request.args.get("branch", "")
    branch = next((b for b in options["branches"] if b.code == branch_code), None)
    state = request.args.get("state", "")
    active = {"active": True, "inactive": False}.get(state)
    role = request.args.get("role") or None
    stmt = users_query(
        actor,
        request.args.get("q"),
        role,
        branch.id if branch else (-1 if branch_code else None),
        active=active,
    )
    page = paginate(
        session,
        stmt,
        sortable=_SORTS,
        default_sort="email",
        endpoint="users.list_users",
        args=query_args("q", "role", "branch", "state"),
        tie_breaker=User.id,
    )
    return render_template(
        "users/list.html",
        page=page,
        state=state,
        branch_names={b.id: b.name for b in options["branches"]},
        department_names={d.id: d.name for d in options["departments"]},
        role_options=[(r.code, translate(r.name)) for r in options["roles"]],
        branch_options=[(b.code, f"{b.code} · {b.name}") for b in options["branches"]],
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required("users.manage")
def new_user() -> Any:
    """Create a user with roles, branch, department, language and a first password."""
    session, actor = db(), current_actor()
    options = _options(session)
    form = UserForm()
    _setup(form, options)
    if request.method == "GET":
        form.language.data = "zh_CN"
        return _render_form(form, options, [], FieldErrors(), None)
    roles = request.form.getlist("roles")
    data = {**_user_input(form, roles), "email": (form.email.data or "").strip(), "password": form.password.data or ""}
    try:
        user = create_user(session, actor, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        attach(form, errors, beside=("roles",))
        return _render_form(form, options, roles, errors, None, 422)
    flash(_("User %(email)s was created.", email=user.email), "success")
    return redirect(url_for(".edit_user", user_id=user.id))


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@permission_required("users.manage")
def edit_user(user_id: int) -> Any:
    """Change a user's name, language, branch, department, customer, roles and whether it is active."""
    session, actor = db(), current_actor()
    user = _get(user_id)
    options = _options(session)
    form = UserForm(obj=user if request.method == "GET" else None)
    _setup(form, options)
    if request.method == "GET":
        form.branch.data = _code(session, Branch, user.branch_id)
        form.department.data = _code(session, Department, user.department_id)
        form.customer.data = _code(session, Customer, user.customer_id)
        return _render_form(form, options, [r.code for r in user.roles], FieldErrors(), user)
    roles = request.form.getlist("roles")
    try:
        update_user(session, actor, user, _user_input(form, roles))
        set_user_active(session, actor, user, bool(form.active.data))
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        attach(form, errors, beside=("roles",))
        return _render_form(form, options, roles, errors, _get(user_id), 422)
    flash(_("User %(email)s was saved.", email=user.email), "success")
    return redirect(url_for(".list_users"))


@bp.post("/<int:user_id>/password")
@permission_required("users.manage")
def set_password(user_id: int) -> Any:
    """Set a new password for a user (the password policy applies)."""
    session, actor = db(), current_actor()
    user = _get(user_id)
    password_form = PasswordForm()
    if password_form.password.data != password_form.confirm.data:
        password_form.confirm.errors = [_("The two passwords differ.")]
        return _edit_page_with(user, password_form)
    try:
        reset_password(session, actor, user, {"password": password_form.password.data or ""})
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        password_form.password.errors = errors.fields.get("password", []) + errors.general
        return _edit_page_with(_get(user_id), password_form)
    flash(_("The password of %(email)s was changed.", email=user.email), "success")
    return redirect(url_for(".edit_user", user_id=user.id))


def _edit_page_with(user: User, password_form: PasswordForm) -> tuple[str, int]:
    session = db()
    options = _options(session)
    form = UserForm(formdata=None, obj=user)
    _setup(form, options)
    form.branch.data = _code(session, Branch, user.branch_id)
    form.department.data = _code(session, Department, user.department_id)
    form.customer.data = _code(session, Customer, user.customer_id)
    return _render_form(
        form, options, [r.code for r in user.roles], FieldErrors(), user, 422, password_form=password_form
    )


@bp.post("/<int:user_id>/active")
@permission_required("users.manage")
def set_active(user_id: int) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) a user."""
    session, actor = db(), current_actor()
    user = _get(user_id)
    active = request.form.get("active") == "1"
    try:
        set_user_active(session, actor, user, active)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        for message in refusal(exc).general:
            flash(message, "danger")
        return redirect(url_for(".edit_user", user_id=user_id))
    if active:
        flash(_("User %(email)s is active again.", email=user.email), "success")
    else:
        flash(_("User %(email)s was deactivated; they can no longer log in.", email=user.email), "success")
    return redirect(url_for(".list_users"))

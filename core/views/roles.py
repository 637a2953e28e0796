"""Role administration screens: the roles, and each role's permissions and data scope.

Permissions are checkboxes grouped by the plugin that registers them, with their labels;
the data scope is a choice with what each one means. Ordo's own roles can be changed but
not deleted; a role nobody holds can be deleted. Thin views over
:mod:`core.services.access` (all need ``users.manage``).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import StringField

from core.labels import N_
from core.models import Role
from core.models.user import DATA_SCOPES
from core.services import ServiceError
from core.services.access import (
    PermissionGroup,
    create_role,
    delete_role,
    get_role,
    permission_groups,
    role_holders,
    roles_query,
    update_role,
)
from core.views.common import (
    FieldErrors,
    abort_for,
    current_actor,
    permission_required,
    screen_blueprint,
)
from core.views.labels import translate
from core.views.users import attach, refusal
from core.web import db, ordo

bp = screen_blueprint("roles", __name__, url_prefix="/admin/roles")

#: The names of the roles ``ordo init`` creates (core/roles.py), for the catalogue.
DEFAULT_ROLE_NAMES = (
    N_("Administrator"),
    N_("General manager"),
    N_("Sales manager"),
    N_("Salesperson"),
    N_("Order clerk"),
    N_("Warehouse"),
    N_("Finance"),
    N_("Auditor (read-only)"),
    N_("Customer (portal)"),
)

#: Each data scope's name and what it means, in the user's language.
SCOPE_LABELS = {
    "own": _l("Own orders"),
    "department": _l("Own department"),
    "branch": _l("Own branch"),
    "all": _l("All orders"),
    "customer": _l("Own customer (portal)"),
}
SCOPE_HELP = {
    "own": _l("Orders the user owns (as salesperson) or created."),
    "department": _l("Orders of the user's department."),
    "branch": _l("Orders of the user's branch."),
    "all": _l("Every order of the company."),
    "customer": _l("Orders of the customer the portal user is linked to; for customers' own accounts."),
}


def scope_label(scope: str | None) -> str:
    """A data scope's name in the user's language (the code if unknown)."""
    label = SCOPE_LABELS.get(scope or "")
    return str(label) if label is not None else scope or ""


@bp.app_context_processor
def _scope_helpers() -> dict[str, Any]:
    return {"scope_label": scope_label}


class RoleForm(FlaskForm):
    """A role's code and name; scope and permissions are read from the request."""

    code = StringField(_l("Code"), render_kw={"maxlength": 64, "required": True, "autocomplete": "off"})
    name = StringField(_l("Name"), render_kw={"maxlength": 200, "required": True})


def plugin_title(plugin: str) -> str:
    """The heading of a plugin's permissions: "Core", or the plugin's title, translated."""
    if plugin == "core":
        return _("Core")
    info = ordo().registry.installed.get(plugin)
    return translate(info.title) if info is not None else plugin


def _render_form(
    form: RoleForm,
    scope: str,
    chosen: set[str],
    errors: FieldErrors,
    role: Role | None,
    status: int = 200,
) -> tuple[str, int]:
    registry = ordo().registry
    groups: list[PermissionGroup] = permission_groups(registry)
    dormant = sorted(c for c in (role.permission_codes if role else set()) if c not in registry.permissions)
    return (
        render_template(
            "roles/form.html",
            form=form,
            scope=scope,
            scopes=DATA_SCOPES,
            scope_help=SCOPE_HELP,
            chosen=chosen,
            groups=groups,
            plugin_title=plugin_title,
            dormant=dormant,
            errors=errors,
            role=role,
            holders=role_holders(db()).get(role.id, 0) if role else 0,
        ),
        status,
    )


def _get(role_id: int) -> Role:
    try:
        return get_role(db(), current_actor(), role_id)
    except ServiceError as exc:
        abort_for(exc)
        raise NotFound() from exc


def _posted() -> tuple[str, set[str]]:
    return request.form.get("data_scope", ""), set(request.form.getlist("permissions"))


@bp.get("")
@permission_required("users.manage")
def list_roles() -> str:
    """Every role with its data scope, how many permissions it grants and how many users hold it."""
    session, actor = db(), current_actor()
    roles = list(session.scalars(roles_query(actor)))
    return render_template("roles/list.html", roles=roles, holders=role_holders(session))


@bp.route("/new", methods=["GET", "POST"])
@permission_required("users.manage")
def new_role() -> Any:
    """Create a role: code, name, data scope and permissions."""
    session, actor = db(), current_actor()
    form = RoleForm()
    if request.method == "GET":
        return _render_form(form, "own", set(), FieldErrors(), None)
    scope, chosen = _posted()
    data = {
        "code": (form.code.data or "").strip(),
        "name": (form.name.data or "").strip(),
        "data_scope": scope,
        "permissions": sorted(chosen),
    }
    try:
        role = create_role(session, actor, ordo().registry, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        attach(form, errors, beside=("data_scope", "permissions"))
        return _render_form(form, scope, chosen, errors, None, 422)
    flash(_("Role %(code)s was created.", code=role.code), "success")
    return redirect(url_for(".list_roles"))


@bp.route("/<int:role_id>/edit", methods=["GET", "POST"])
@permission_required("users.manage")
def edit_role(role_id: int) -> Any:
    """Change a role's name, data scope and permissions; its holders feel it on their next page."""
    session, actor = db(), current_actor()
    role = _get(role_id)
    form = RoleForm(obj=role if request.method == "GET" else None)
    if request.method == "GET":
        return _render_form(form, role.data_scope, role.permission_codes, FieldErrors(), role)
    scope, chosen = _posted()
    data = {"name": (form.name.data or "").strip(), "data_scope": scope, "permissions": sorted(chosen)}
    try:
        update_role(session, actor, ordo().registry, role, data)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        errors = refusal(exc)
        attach(form, errors, beside=("data_scope", "permissions"))
        return _render_form(form, scope, chosen, errors, _get(role_id), 422)
    flash(_("Role %(code)s was saved.", code=role.code), "success")
    return redirect(url_for(".list_roles"))


@bp.post("/<int:role_id>/delete")
@permission_required("users.manage")
def remove_role(role_id: int) -> Response:
    """Delete a role Ordo did not ship and nobody holds."""
    session, actor = db(), current_actor()
    role = _get(role_id)
    code = role.code
    try:
        delete_role(session, actor, role)
        session.commit()
    except ServiceError as exc:
        session.rollback()
        for message in refusal(exc).general:
            flash(message, "danger")
        return redirect(url_for(".edit_role", role_id=role_id))
    flash(_("Role %(code)s was deleted.", code=code), "success")
    return redirect(url_for(".list_roles"))

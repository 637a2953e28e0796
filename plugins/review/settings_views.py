"""Review settings (``/review/settings/...``): departments, review templates, approval limits.

- **Departments** (技术部, 生产部, 品质部, 采购部, 财务部 …): code, English and Chinese
  names, kind (which figures its verdict carries), the reviewer role, the head who is
  told of overdue tasks, whether a reject escalates to the president, which negotiated
  changes re-open its task, its own SLA in working days, position and active flag
  (RV-1, RV-3, RV-4).
- **Templates**: which departments review which orders — conditions (regular or not,
  amount range, product category, urgency, branch), priority, and the departments of
  tier 1 (branch initial review) and tier 2 (head-office committee re-review) (RV-2, RV-5).
- **Approval limits**: the largest order total each role may approve, or no limit (RV-6).

Everything needs ``review.settings.manage``. Input is checked here (unique code, known
role, amounts ≥ 0, minimum below maximum …) with the errors beside the fields, and
every change is written to the audit log (:func:`core.services.audit.record`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from core import labels as core_labels
from core.contrib import MenuItem
from core.labels import N_
from core.models import Branch, Product, Role, User
from core.services import audit
from core.views.common import current_actor, permission_required, screen_blueprint
from core.web import db
from plugins.review import flow
from plugins.review.models import (
    CHANGE_KINDS,
    DEPARTMENT_KINDS,
    ReviewApprovalLimit,
    ReviewDepartment,
    ReviewSheet,
    ReviewTemplate,
    ReviewTemplateDepartment,
)
from plugins.review.panel import view_helpers
from plugins.review.views import bp as screens

bp = screen_blueprint("review_settings", __name__, url_prefix="/settings", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        N_("Review settings"),
        "review.review_settings.departments",
        flow.SETTINGS_MANAGE,
        order=47,
        icon="diagram-3",
        plugin="review",
    )
]

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: The largest amount a form accepts (the Money column holds 16 digits, 2 after the point).
MAX_AMOUNT = Decimal("99999999999999")

Errors = dict[str, list[str]]


def _roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.code)))


def _staff(session: Session) -> list[User]:
    return list(
        session.scalars(select(User).where(User.customer_id.is_(None), User.active.is_(True)).order_by(User.name))
    )


def _amount(text: str, errors: Errors, key: str) -> Decimal | None:
    """``text`` as an amount ≥ 0 (None when empty); a bad one adds an error under ``key``."""
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        errors[key] = [_("Give an amount such as 200000 or 1500.50.")]
        return None
    if not value.is_finite():
        errors[key] = [_("Give an amount such as 200000 or 1500.50.")]
    elif value < 0:
        errors[key] = [_("An amount cannot be negative.")]
    elif value > MAX_AMOUNT:
        errors[key] = [_("The amount is too large.")]
    else:
        return value.quantize(Decimal("0.01"))
    return None


def _integer(text: str, errors: Errors, key: str, low: int, high: int) -> int | None:
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,6}", text) or not low <= int(text) <= high:
        errors[key] = [_("Give a whole number from %(low)s to %(high)s.", low=low, high=high)]
        return None
    return int(text)


def _text(value: Decimal | None) -> str | None:
    """An amount as the audit log keeps it (None: no limit)."""
    return None if value is None else str(value)


def _settings_page(page: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"review/settings/{page}", **context, **view_helpers()), status


# --- departments ------------------------------------------------------------------------------


@bp.get("")
@permission_required(flow.SETTINGS_MANAGE)
def index() -> Response:
    """The settings start at the departments."""
    return redirect(url_for(".departments"))


@bp.get("/departments")
@permission_required(flow.SETTINGS_MANAGE)
def departments() -> tuple[str, int]:
    """Every review department, in position order."""
    session = db()
    rows = list(session.scalars(select(ReviewDepartment).order_by(ReviewDepartment.position, ReviewDepartment.id)))
    heads = {u.id: u for u in session.scalars(select(User).where(User.id.in_({d.head_user_id for d in rows})))}
    return _settings_page("departments.html", departments=rows, heads=heads, tab="departments")


def department_values(department: ReviewDepartment | None) -> dict[str, Any]:
    """The department form's values for ``department`` (a new one: sensible defaults)."""
    if department is None:
        return {
            "code": "",
            "name": "",
            "name_zh": "",
            "kind": "other",
            "role_code": "",
            "head_user_id": "",
            "escalating": False,
            "reopen_on": [],
            "sla_days": "",
            "position": "100",
            "active": True,
        }
    return {
        "code": department.code,
        "name": department.name,
        "name_zh": department.name_zh,
        "kind": department.kind,
        "role_code": department.role_code,
        "head_user_id": str(department.head_user_id or ""),
        "escalating": department.escalating,
        "reopen_on": [k for k in department.reopen_on.split(",") if k],
        "sla_days": "" if department.sla_days is None else str(department.sla_days),
        "position": str(department.position),
        "active": department.active,
    }


def read_department(
    session: Session, department: ReviewDepartment | None
) -> tuple[dict[str, Any], dict[str, Any], Errors]:
    """The posted department form: (what was typed, the clean values, errors per field)."""
    form = request.form
    typed: dict[str, Any] = {
        key: form.get(key, "").strip()
        for key in ("code", "name", "name_zh", "kind", "role_code", "head_user_id", "sla_days", "position")
    }
    typed["escalating"] = "escalating" in form
    typed["active"] = "active" in form
    typed["reopen_on"] = [k for k in form.getlist("reopen_on") if k]
    errors: Errors = {}
    clean: dict[str, Any] = {"escalating": typed["escalating"], "active": typed["active"]}
    code = typed["code"].lower()
    if not CODE_PATTERN.match(code):
        errors["code"] = [_("Give a code of lower-case letters, digits and _ (at most 32), starting with a letter.")]
    else:
        other = session.scalar(select(ReviewDepartment).where(ReviewDepartment.code == code))
        if other is not None and other is not department:
            errors["code"] = [_("Another department already has the code %(code)s.", code=code)]
        clean["code"] = code
    if not typed["name"]:
        errors["name"] = [_("Give the department's name.")]
    elif len(typed["name"]) > 100:
        errors["name"] = [_("At most %(count)s characters.", count=100)]
    clean["name"] = typed["name"]
    if len(typed["name_zh"]) > 100:
        errors["name_zh"] = [_("At most %(count)s characters.", count=100)]
    clean["name_zh"] = typed["name_zh"]
    if typed["kind"] not in DEPARTMENT_KINDS:
        errors["kind"] = [_("Choose one of the offered kinds.")]
    clean["kind"] = typed["kind"]
    if typed["role_code"] not in {r.code for r in _roles(session)}:
        errors["role_code"] = [_("Choose a known role.")]
    clean["role_code"] = typed["role_code"]
    clean["head_user_id"] = None
    if typed["head_user_id"]:
        staff = {str(u.id): u.id for u in _staff(session)}
        if typed["head_user_id"] not in staff:
            errors["head_user_id"] = [_("Choose an active staff user.")]
        else:
            clean["head_user_id"] = staff[typed["head_user_id"]]
    unknown = [k for k in typed["reopen_on"] if k not in CHANGE_KINDS]
    if unknown:
        errors["reopen_on"] = [_("Choose among the offered changes.")]
    clean["reopen_on"] = ",".join(k for k in CHANGE_KINDS if k in typed["reopen_on"])
    clean["sla_days"] = _integer(typed["sla_days"], errors, "sla_days", 1, 60)
    position = _integer(typed["position"], errors, "position", 0, 100000)
    clean["position"] = position if position is not None else 0
    return typed, clean, errors


def _department_form(
    department: ReviewDepartment | None, values: dict[str, Any], errors: Errors, status: int = 200
) -> tuple[str, int]:
    session = db()
    return _settings_page(
        "department_form.html",
        status,
        department=department,
        values=values,
        errors=errors,
        kinds=DEPARTMENT_KINDS,
        change_kinds=CHANGE_KINDS,
        roles=_roles(session),
        staff=_staff(session),
        tab="departments",
    )


def _save_department(department: ReviewDepartment | None) -> Any:
    session, actor = db(), current_actor()
    typed, clean, errors = read_department(session, department)
    if errors:
        return _department_form(department, typed, errors, 422)
    if department is None:
        department = ReviewDepartment(**clean)
        session.add(department)
        session.flush()
        audit.record(session, actor, "review_department", department.id, "create", clean)
        message = _("Department %(name)s created.", name=department.name)
    else:
        changes = audit.diff(department, clean)
        for key, value in clean.items():
            setattr(department, key, value)
        if not changes:
            flash(_("Nothing changed."), "info")
            return redirect(url_for(".departments"))
        audit.record(session, actor, "review_department", department.id, "update", changes)
        message = _("Department %(name)s saved.", name=department.name)
    session.commit()
    flash(message, "success")
    return redirect(url_for(".departments"))


@bp.route("/departments/new", methods=["GET", "POST"])
@permission_required(flow.SETTINGS_MANAGE)
def new_department() -> Any:
    """Create a review department."""
    if request.method == "POST":
        return _save_department(None)
    return _department_form(None, department_values(None), {})


@bp.route("/departments/<int:department_id>", methods=["GET", "POST"])
@permission_required(flow.SETTINGS_MANAGE)
def edit_department(department_id: int) -> Any:
    """Change a review department (deactivate it instead of deleting: sheets keep it)."""
    department = db().get(ReviewDepartment, department_id)
    if department is None:
        raise NotFound()
    if request.method == "POST":
        return _save_department(department)
    return _department_form(department, department_values(department), {})


# --- templates --------------------------------------------------------------------------------


@bp.get("/templates")
@permission_required(flow.SETTINGS_MANAGE)
def templates() -> tuple[str, int]:
    """Every review template: the first active one matching an order (by priority) wins."""
    session = db()
    rows = list(session.scalars(select(ReviewTemplate).order_by(ReviewTemplate.priority, ReviewTemplate.id)))
    branches = {b.id: b for b in session.scalars(select(Branch))}
    return _settings_page("templates.html", templates=rows, branches=branches, tab="templates")


def template_values(template: ReviewTemplate | None) -> dict[str, Any]:
    """The template form's values for ``template`` (a new one: defaults)."""
    if template is None:
        return {
            "name": "",
            "priority": "100",
            "active": True,
            "regular": "",
            "min_amount": "",
            "max_amount": "",
            "product_category": "",
            "urgency": "",
            "branch_id": "",
            "two_tier": False,
            "members": set(),
        }
    return {
        "name": template.name,
        "priority": str(template.priority),
        "active": template.active,
        "regular": "" if template.regular is None else ("1" if template.regular else "0"),
        "min_amount": "" if template.min_amount is None else format(template.min_amount.normalize(), "f"),
        "max_amount": "" if template.max_amount is None else format(template.max_amount.normalize(), "f"),
        "product_category": template.product_category,
        "urgency": template.urgency,
        "branch_id": str(template.branch_id or ""),
        "two_tier": template.two_tier,
        "members": {f"{m.department_id}-{m.tier}" for m in template.departments},
    }


def read_template(session: Session) -> tuple[dict[str, Any], dict[str, Any], list[tuple[int, int]], Errors]:
    """The posted template form: (typed values, clean values, (department id, tier) pairs, errors)."""
    form = request.form
    typed: dict[str, Any] = {
        key: form.get(key, "").strip()
        for key in (
            "name",
            "priority",
            "regular",
            "min_amount",
            "max_amount",
            "product_category",
            "urgency",
            "branch_id",
        )
    }
    typed["active"] = "active" in form
    typed["two_tier"] = "two_tier" in form
    typed["members"] = set(form.getlist("members"))
    errors: Errors = {}
    clean: dict[str, Any] = {"active": typed["active"], "two_tier": typed["two_tier"]}
    if not typed["name"]:
        errors["name"] = [_("Give the template's name.")]
    elif len(typed["name"]) > 100:
        errors["name"] = [_("At most %(count)s characters.", count=100)]
    clean["name"] = typed["name"]
    priority = _integer(typed["priority"], errors, "priority", 0, 100000)
    if priority is None and "priority" not in errors:
        errors["priority"] = [_("Give a whole number from %(low)s to %(high)s.", low=0, high=100000)]
    clean["priority"] = priority
    if typed["regular"] not in ("", "1", "0"):
        errors["regular"] = [_("Choose one of the offered values.")]
    clean["regular"] = None if typed["regular"] in ("", None) else typed["regular"] == "1"
    clean["min_amount"] = _amount(typed["min_amount"], errors, "min_amount")
    clean["max_amount"] = _amount(typed["max_amount"], errors, "max_amount")
    if (
        clean["min_amount"] is not None
        and clean["max_amount"] is not None
        and clean["min_amount"] >= clean["max_amount"]
    ):
        errors["max_amount"] = [_("The maximum must be above the minimum.")]
    if len(typed["product_category"]) > 64:
        errors["product_category"] = [_("At most %(count)s characters.", count=64)]
    clean["product_category"] = typed["product_category"]
    if typed["urgency"] and typed["urgency"] not in core_labels.URGENCIES:
        errors["urgency"] = [_("Choose one of the offered values.")]
    clean["urgency"] = typed["urgency"]
    clean["branch_id"] = None
    if typed["branch_id"]:
        branch_ids = {str(b.id): b.id for b in session.scalars(select(Branch))}
        if typed["branch_id"] not in branch_ids:
            errors["branch_id"] = [_("Choose one of the offered branches.")]
        else:
            clean["branch_id"] = branch_ids[typed["branch_id"]]
    known = {d.id for d in session.scalars(select(ReviewDepartment))}
    members: list[tuple[int, int]] = []
    for key in sorted(typed["members"]):
        match = re.fullmatch(r"([0-9]{1,9})-([12])", key)
        if match is None or int(match[1]) not in known:
            errors["members"] = [_("Choose among the offered departments.")]
            continue
        members.append((int(match[1]), int(match[2])))
    tiers = {tier for _department, tier in members}
    if "members" not in errors:
        if 1 not in tiers:
            errors["members"] = [_("Choose at least one department for the initial review (tier 1).")]
        elif typed["two_tier"] and 2 not in tiers:
            errors["members"] = [_("A two-tier template needs at least one committee department (tier 2).")]
        elif not typed["two_tier"] and 2 in tiers:
            errors["members"] = [_("Tick “Two-tier review” to have a committee re-review (tier 2).")]
    return typed, clean, members, errors


def _template_form(
    template: ReviewTemplate | None, values: dict[str, Any], errors: Errors, status: int = 200
) -> tuple[str, int]:
    session = db()
    departments = list(
        session.scalars(select(ReviewDepartment).order_by(ReviewDepartment.position, ReviewDepartment.id))
    )
    categories = sorted({c for c in session.scalars(select(Product.category).distinct()) if c})
    return _settings_page(
        "template_form.html",
        status,
        template=template,
        values=values,
        errors=errors,
        departments=departments,
        branches=list(session.scalars(select(Branch).order_by(Branch.code))),
        categories=categories,
        urgencies=core_labels.URGENCIES,
        tab="templates",
    )


def _members_record(session: Session, members: list[tuple[int, int]]) -> list[str]:
    codes = {d.id: d.code for d in session.scalars(select(ReviewDepartment))}
    return [f"{codes.get(department_id, department_id)}:{tier}" for department_id, tier in sorted(members)]


def _save_template(template: ReviewTemplate | None) -> Any:
    session, actor = db(), current_actor()
    typed, clean, members, errors = read_template(session)
    if errors:
        return _template_form(template, typed, errors, 422)
    new = template is None
    if template is None:
        template = ReviewTemplate(**clean)
        session.add(template)
        changes: dict[str, Any] = dict(clean)
        before: list[str] = []
    else:
        changes = audit.diff(template, clean)
        before = _members_record(session, [(m.department_id, m.tier) for m in template.departments])
        for key, value in clean.items():
            setattr(template, key, value)
    after = _members_record(session, members)
    if before != after:
        template.departments = [ReviewTemplateDepartment(department_id=d, tier=t) for d, t in members]
        changes["departments"] = after if new else [before, after]
    if not new and not changes:
        flash(_("Nothing changed."), "info")
        return redirect(url_for(".templates"))
    session.flush()
    audit.record(session, actor, "review_template", template.id, "create" if new else "update", changes)
    session.commit()
    flash(_("Review template %(name)s saved.", name=template.name), "success")
    return redirect(url_for(".templates"))


@bp.route("/templates/new", methods=["GET", "POST"])
@permission_required(flow.SETTINGS_MANAGE)
def new_template() -> Any:
    """Create a review template."""
    if request.method == "POST":
        return _save_template(None)
    return _template_form(None, template_values(None), {})


def _template(template_id: int) -> ReviewTemplate:
    template = db().get(ReviewTemplate, template_id)
    if template is None:
        raise NotFound()
    return template


@bp.route("/templates/<int:template_id>", methods=["GET", "POST"])
@permission_required(flow.SETTINGS_MANAGE)
def edit_template(template_id: int) -> Any:
    """Change a review template's conditions and departments."""
    template = _template(template_id)
    if request.method == "POST":
        return _save_template(template)
    return _template_form(template, template_values(template), {})


@bp.post("/templates/<int:template_id>/delete")
@permission_required(flow.SETTINGS_MANAGE)
def delete_template(template_id: int) -> Response:
    """Delete a template no review sheet used (the page asks for confirmation first)."""
    session, actor = db(), current_actor()
    template = _template(template_id)
    used = session.scalar(select(func.count()).select_from(ReviewSheet).where(ReviewSheet.template_id == template.id))
    if used:
        flash(
            _(
                "Review template %(name)s was used by %(count)s review sheets, so it is kept; deactivate it instead.",
                name=template.name,
                count=used,
            ),
            "danger",
        )
        return redirect(url_for(".edit_template", template_id=template.id))
    audit.record(
        session,
        actor,
        "review_template",
        template.id,
        "delete",
        {
            "name": template.name,
            "departments": _members_record(session, [(m.department_id, m.tier) for m in template.departments]),
        },
    )
    session.delete(template)
    session.commit()
    flash(_("Review template %(name)s deleted.", name=template.name), "success")
    return redirect(url_for(".templates"))


# --- approval limits ----------------------------------------------------------------------------


def _limits_page(values: dict[str, str], errors: Errors, status: int = 200) -> tuple[str, int]:
    session = db()
    limits = list(
        session.scalars(
            select(ReviewApprovalLimit).order_by(
                ReviewApprovalLimit.max_amount.is_(None), ReviewApprovalLimit.max_amount, ReviewApprovalLimit.role_code
            )
        )
    )
    return _settings_page(
        "limits.html", status, limits=limits, roles=_roles(session), values=values, errors=errors, tab="limits"
    )


@bp.get("/limits")
@permission_required(flow.SETTINGS_MANAGE)
def limits() -> tuple[str, int]:
    """The approval limits per role, with a form to set one."""
    return _limits_page({"role_code": "", "max_amount": "", "unlimited": ""}, {})


@bp.post("/limits")
@permission_required(flow.SETTINGS_MANAGE)
def set_limit() -> Any:
    """Set a role's approval limit (an amount ≥ 0, or unlimited); an existing one is replaced."""
    session, actor = db(), current_actor()
    values = {key: request.form.get(key, "").strip() for key in ("role_code", "max_amount")}
    values["unlimited"] = "1" if "unlimited" in request.form else ""
    errors: Errors = {}
    if values["role_code"] not in {r.code for r in _roles(session)}:
        errors["role_code"] = [_("Choose a known role.")]
    amount = _amount(values["max_amount"], errors, "max_amount")
    if not values["unlimited"] and amount is None and "max_amount" not in errors:
        errors["max_amount"] = [_("Give the largest total this role may approve, or tick “No limit”.")]
    if values["unlimited"] and values["max_amount"]:
        errors["max_amount"] = [_("Give an amount or tick “No limit”, not both.")]
    if errors:
        return _limits_page(values, errors, 422)
    maximum = None if values["unlimited"] else amount
    limit = session.get(ReviewApprovalLimit, values["role_code"])
    if limit is None:
        session.add(ReviewApprovalLimit(role_code=values["role_code"], max_amount=maximum))
        audit.record(
            session,
            actor,
            "review_approval_limit",
            None,
            "create",
            {"role": values["role_code"], "max_amount": maximum},
        )
    elif limit.max_amount != maximum:
        audit.record(
            session,
            actor,
            "review_approval_limit",
            None,
            "update",
            {"role": values["role_code"], "max_amount": [_text(limit.max_amount), _text(maximum)]},
        )
        limit.max_amount = maximum
    session.commit()
    flash(_("Approval limit of %(role)s saved.", role=view_helpers()["role_label"](values["role_code"])), "success")
    return redirect(url_for(".limits"))


@bp.post("/limits/<role_code>/delete")
@permission_required(flow.SETTINGS_MANAGE)
def delete_limit(role_code: str) -> Response:
    """Remove a role's approval limit: its holders no longer approve (asks for confirmation first)."""
    session, actor = db(), current_actor()
    limit = session.get(ReviewApprovalLimit, role_code)
    if limit is None:
        raise NotFound()
    audit.record(
        session, actor, "review_approval_limit", None, "delete", {"role": role_code, "max_amount": limit.max_amount}
    )
    session.delete(limit)
    session.commit()
    flash(_("Approval limit of %(role)s removed.", role=view_helpers()["role_label"](role_code)), "success")
    return redirect(url_for(".limits"))

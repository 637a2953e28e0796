"""The review panel on the order page, and the labels every review screen shows.

Staff who may read reviews (``review.tasks.read``) see on the order page where the
order's review stands: the current review sheet (订单评审表) with its round, tier,
status and outcome, each department's task with its verdict, an open credit hold
with the exceptions granted so far, and whether internal audit supervises the order
(RV-1, RV-6, RV-7). An order never reviewed shows no panel; portal users never get one.

The label helpers (:func:`view_helpers`) are shared by the review screens so that a
department, a verdict or a sheet status reads the same everywhere, in the reader's
language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contrib import Panel
from core.models import Order, Role, User
from core.services.orders import may_see_order
from core.views.labels import translate
from plugins.review import approval, credit, flow, sheets
from plugins.review.figures import FIGURES, RISK_LEVELS
from plugins.review.models import (
    CHANGE_KINDS,
    DEPARTMENT_KINDS,
    SHEET_OUTCOMES,
    SHEET_STATUSES,
    TASK_STATUSES,
    VERDICTS,
    ReviewDepartment,
)

#: Bootstrap colour of each verdict badge.
VERDICT_COLOURS = {"approve": "success", "approve_with_conditions": "warning", "reject": "danger"}


def _from(table: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    text = table.get(code)
    return translate(text) if text is not None else code


def verdict_label(code: str | None) -> str:
    """A verdict (approve, approve with conditions, reject) in the reader's language."""
    return _from(VERDICTS, code)


def sheet_status_label(code: str | None) -> str:
    """A review sheet's status in the reader's language."""
    return _from(SHEET_STATUSES, code)


def outcome_label(code: str | None) -> str:
    """How a review sheet ended, in the reader's language."""
    return _from(SHEET_OUTCOMES, code)


def task_status_label(code: str | None) -> str:
    """A review task's status (open, answered, withdrawn) in the reader's language."""
    return _from(TASK_STATUSES, code)


def kind_label(code: str | None) -> str:
    """A department kind (technical, production …) in the reader's language."""
    return _from(DEPARTMENT_KINDS, code)


def change_kind_label(code: str | None) -> str:
    """A negotiated change kind (price, date, quantity) in the reader's language."""
    return _from(CHANGE_KINDS, code)


def department_name(department: ReviewDepartment | None) -> str:
    """A department's name in the reader's language (the Chinese name when reading Chinese)."""
    if department is None:
        return ""
    locale = get_locale()
    if locale is not None and locale.language == "zh" and department.name_zh:
        return department.name_zh
    return department.name


def role_label(code: str | None) -> str:
    """A role's name by code, translated (the code when no such role exists)."""
    if not code:
        return ""
    from core.web import db

    name = db().scalar(select(Role.name).where(Role.code == code))
    return translate(name) if name else code


def figure_label(kind: str, name: str) -> str:
    """The label of figure ``name`` of a department of ``kind`` (the name if unknown)."""
    for figure in FIGURES.get(kind, ()):
        if figure.name == name:
            return translate(figure.label)
    return name


def figure_value(kind: str, name: str, value: Any) -> str:
    """A stored figure as the screens show it: yes/no, a risk level's label, else the text."""
    figure = next((f for f in FIGURES.get(kind, ()) if f.name == name), None)
    if isinstance(value, bool) or (figure is not None and figure.type == "bool"):
        return _("Yes") if value in (True, "true", "True", "1") else _("No")
    if figure is not None and figure.type == "choice":
        return _from(dict(figure.choices) or RISK_LEVELS, str(value))
    if figure is not None and figure.type == "percent":
        return f"{value} %"
    return "" if value is None else str(value)


def join_labels(items: Iterable[Any], label: Callable[[Any], str]) -> str:
    """``items`` shown through ``label`` and joined with commas (Jinja's map takes filter names only)."""
    return ", ".join(label(item) for item in items)


def view_helpers() -> dict[str, Any]:
    """The label helpers review's templates use (passed to ``render_template``)."""
    return {
        "verdict_label": verdict_label,
        "verdict_colour": lambda code: VERDICT_COLOURS.get(code or "", "secondary"),
        "sheet_status_label": sheet_status_label,
        "outcome_label": outcome_label,
        "task_status_label": task_status_label,
        "kind_label": kind_label,
        "change_kind_label": change_kind_label,
        "department_name": department_name,
        "role_label": role_label,
        "figure_label": figure_label,
        "figure_value": figure_value,
        "join_labels": join_labels,
    }


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """Review's panel for ``order`` as ``user`` may see it; none for an order never reviewed."""
    if user is None or user.customer_id is not None or not user.can(flow.READ):
        return []
    if not may_see_order(session, user, order):
        return []
    sheet = sheets.current_sheet(session, order.id)
    hold = credit.open_hold(session, order.id)
    supervised = approval.is_supervised(session, order.id)
    if sheet is None and hold is None and not supervised:
        return []
    people_ids = {e.granted_by_id for e in hold.exceptions} if hold is not None else set()
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    html = render_template(
        "review/panel.html",
        order=order,
        sheet=sheet,
        hold=hold,
        still_to_grant=credit.roles_still_to_grant(session, hold) if hold is not None else [],
        supervised=supervised,
        people=people,
        **view_helpers(),
    )
    return [Panel(_("Review"), Markup(html), order=40, plugin="review")]

"""My review tasks (``/review/tasks``): the department reviewer's queue (RV-1, RV-2).

A reviewer sees the tasks of every department they give verdicts for, within their
data scope: urgent orders first, then by due date; overdue tasks in red. Filters: open
(the default), answered, overdue, all. Each row links to the review sheet page where
the verdict is given. Needs ``review.tasks.read``; a thin view over
:func:`plugins.review.sheets.tasks_for`.
"""

from __future__ import annotations

import datetime as dt

from flask import render_template, request
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.models import Order
from core.views.common import PAGE_SIZES, Page, current_actor, permission_required, screen_blueprint
from core.web import db
from plugins.review import flow, sheets
from plugins.review.models import ReviewTask
from plugins.review.panel import view_helpers
from plugins.review.views import bp as screens

bp = screen_blueprint("review_tasks", __name__, url_prefix="/tasks", template_folder="templates")
screens.register_blueprint(bp)

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: list[MenuItem] = [
    MenuItem(
        N_("My review tasks"), "review.review_tasks.tasks", flow.READ, order=36, icon="clipboard-check", plugin="review"
    )
]

#: The filters the list offers: what ``tasks_for`` is asked for.
FILTERS = {
    "open": N_("Open"),
    "answered": N_("Answered"),
    "overdue": N_("Overdue"),
    "all": N_("All"),
}


def company_today() -> dt.date:
    """The company's date today (due dates are company dates)."""
    return company_now().date()


def _page_number() -> tuple[int, int]:
    page, size = request.args.get("page", "1"), request.args.get("size", str(PAGE_SIZES[0]))
    number = int(page) if page.isdigit() and int(page) > 0 else 1
    return number, int(size) if size.isdigit() and int(size) in PAGE_SIZES else PAGE_SIZES[0]


@bp.get("")
@permission_required(flow.READ)
def tasks() -> str:
    """The user's review tasks, urgent first then by due date, filtered and paged."""
    session, actor = db(), current_actor()
    chosen = request.args.get("status", "open")
    if chosen not in FILTERS:
        chosen = "open"
    today = company_today()
    if chosen == "overdue":
        stmt = sheets.tasks_for(session, actor, status="open").where(ReviewTask.due_date < today)
    else:
        stmt = sheets.tasks_for(session, actor, status=None if chosen == "all" else chosen)
    # Urgent orders first, then the earliest due date (tasks_for joins the order).
    stmt = stmt.order_by(None).order_by(
        case((Order.urgency == "urgent", 0), else_=1), ReviewTask.due_date, ReviewTask.id
    )
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    number, size = _page_number()
    number = min(number, max(1, -(-total // size)))
    rows: list[ReviewTask] = list(
        session.scalars(
            stmt.options(selectinload(ReviewTask.department), selectinload(ReviewTask.sheet))
            .offset((number - 1) * size)
            .limit(size)
        )
    )
    order_ids = {task.sheet.order_id for task in rows}
    orders: dict[int, Order] = {
        o.id: o
        for o in session.scalars(select(Order).where(Order.id.in_(order_ids)).options(selectinload(Order.customer)))
    }
    page = Page(rows, total, number, size, "", "review.review_tasks.tasks", {"status": chosen})
    return render_template(
        "review/tasks/list.html",
        page=page,
        chosen=chosen,
        filters=FILTERS,
        orders=orders,
        today=today,
        member_of=sheets.member_departments(session, actor),
        task_state=task_state,
        **view_helpers(),
    )


def task_state(task: ReviewTask, today: dt.date) -> str:
    """How a task stands for the list: ``answered``, ``withdrawn``, ``overdue``, ``today`` or ``open``."""
    if task.status != "open":
        return task.status
    if task.due_date < today:
        return "overdue"
    return "today" if task.due_date == today else "open"

"""The review sheet (订单评审表): opening it, departments' verdicts, tiers and negotiation.

OWNER: helper "sheets" — replace every ``NotImplementedError`` body; keep the signatures
(screens, API and other modules call them).

- Entering ``review.department_review`` opens a sheet for a new round (the previous one,
  if any, is closed — ``requoted`` after a re-quote), using the matching template
  (``plugins.review.templates.match_template``): one task per tier-1 department, each
  due ``sla_days`` (department) or ``review.sla.days`` working days later; the
  departments' reviewers are notified (``review.task_assigned``). A renegotiation
  (action ``renegotiate`` from consolidation) keeps the sheet: only re-opened tasks wait.
- A verdict is recorded by a member of the task's department (a user holding its
  ``role_code`` and ``review.tasks.decide``) while the task is open and the order is in
  department review; the figures are checked against the department's kind
  (``plugins.review.figures``). When every task of the sheet's tier is answered: a
  reject from an escalating department → the order moves (``not_acceptable``) to
  ``review.president``; else a two-tier sheet at tier 1 opens tier 2's tasks; else the
  order moves on (``reviewed``, to the next step: consolidation).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.contrib import NotificationTemplate

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User
    from core.plugins import Registry
    from plugins.review.models import ReviewDepartment, ReviewNegotiation, ReviewSheet, ReviewTask, ReviewVerdict


def on_enter_review(session: Session, order: Order, transition: Transition, user: User | None) -> ReviewSheet | None:
    """Open the round's sheet (None when the move is a renegotiation that keeps the sheet)."""
    raise NotImplementedError


def on_enter_consolidation(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Mark the sheet reviewed (``complete``) and tell the order's salesperson."""
    raise NotImplementedError


def on_leave(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Close the current sheet when the order leaves review for good.

    Outcomes: ``approved`` (final approval → on), ``abandoned`` (president), ``rejected``
    (consolidation/approval reject, cancel), ``superseded`` (back to draft); a re-quote
    is closed by :func:`on_enter_review` as ``requoted``. Open tasks are ``withdrawn``.
    """
    raise NotImplementedError


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse ``send_for_approval`` while a task is open (fixed, translatable sentences)."""
    raise NotImplementedError


def current_sheet(session: Session, order_id: int) -> ReviewSheet | None:
    """The order's latest sheet (highest round), open or not."""
    raise NotImplementedError


def is_member(user: User, department: ReviewDepartment) -> bool:
    """Whether ``user`` gives ``department``'s verdicts (holds its role and ``review.tasks.decide``)."""
    raise NotImplementedError


def member_departments(session: Session, user: User) -> list[ReviewDepartment]:
    """The active departments ``user`` is a member of."""
    raise NotImplementedError


def tasks_for(session: Session, user: User, *, status: str | None = "open") -> Select[Any]:
    """SELECT of the tasks of ``user``'s departments (``status`` None: all), most urgent first.

    Only tasks of orders the user may see (``core.services.orders.visible_orders``).
    """
    raise NotImplementedError


def record_verdict(
    session: Session,
    registry: Registry,
    actor: User,
    task: ReviewTask,
    *,
    verdict: str,
    comment: str = "",
    conditions: str = "",
    figures: dict[str, Any] | None = None,
    proposed_date: dt.date | None = None,
) -> ReviewVerdict:
    """Record ``actor``'s verdict on ``task`` and move the review on when it was the last.

    Refused (``plugins.review.errors.ReviewError``, nothing changed): not a member (403
    ``not_department_member``), task not open (409 ``task_closed``), order not in
    department review (409 ``not_in_review``), unknown verdict or bad figures (422,
    ``details`` per field), conditions missing for ``approve_with_conditions``, comment
    missing for ``reject``.
    """
    raise NotImplementedError


def negotiate(
    session: Session,
    registry: Registry,
    actor: User,
    order: Order,
    *,
    unit_prices: dict[int, Decimal] | None = None,
    quantities: dict[int, Decimal] | None = None,
    requested_date: dt.date | None = None,
    note: str = "",
) -> ReviewNegotiation:
    """Apply what sales agreed with the customer during consolidation (RV-4).

    Changes line prices/quantities (by line id) and the requested date in place
    (``core.services.orders.revise_order`` with ``action="negotiate"``), records a
    :class:`ReviewNegotiation`, re-opens the tasks (latest tier) of the departments
    whose ``reopen_on`` names a changed kind and moves the order back to department
    review (action ``renegotiate``). Nothing changed, or not at consolidation: refused.
    """
    raise NotImplementedError


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()

"""Final approval by limits, audit supervision, the president and the chairman (RV-3, RV-6).

OWNER: helper "approvals" — replace every ``NotImplementedError`` body; keep the signatures.

Approval limits (``ReviewApprovalLimit``): a role may approve orders up to its
``max_amount`` (none: any amount). The approver the rules name is the role with the
smallest limit covering the order's total (sales manager, else general manager); a user
may approve or reject at ``review.final_approval`` only if one of their roles covers
it. An order whose total is above ``review.audit.threshold`` is flagged for audit
supervision: the auditor role is notified of each of its later moves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from core.contrib import NotificationTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User


def approver_role(session: Session, amount: Decimal) -> str | None:
    """The role with the smallest approval limit covering ``amount`` (None: nobody may)."""
    raise NotImplementedError


def may_approve(session: Session, user: User, amount: Decimal) -> bool:
    """Whether one of ``user``'s roles has a limit covering ``amount``."""
    raise NotImplementedError


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse ``approve``/``reject`` at final approval by a user whose limit is too low."""
    raise NotImplementedError


def flag_supervision(session: Session, order: Order) -> bool:
    """Flag ``order`` for audit supervision if its total is above the threshold (once)."""
    raise NotImplementedError


def is_supervised(session: Session, order_id: int) -> bool:
    """Whether internal audit follows ``order_id``."""
    raise NotImplementedError


def follow_supervised(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the auditors of every move of a supervised order (``review.supervised_step``)."""
    raise NotImplementedError


def on_enter_final_approval(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Name the approver on the sheet, flag supervision, notify the approver role."""
    raise NotImplementedError


def on_enter_president(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the president a not-acceptable order waits (and the salesperson why)."""
    raise NotImplementedError


def on_appeal(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Tell the chairman of the appeal, with its reason."""
    raise NotImplementedError


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()

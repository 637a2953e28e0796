"""The credit gate before review (RV-7): ask, hold, grant exceptions, release.

OWNER: helper "approvals" — replace every ``NotImplementedError`` body; keep the signatures.

Entering ``review.credit_check`` asks ``ordo_review_credit_standing`` (every answer's
reasons). None: the order moves on at once (``credit_ok``). Some: a
:class:`ReviewCreditHold` keeps the reasons (the order waits; the salesperson and the
exception roles are notified, ``review.credit_hold``). Each role named in
``review.credit.exception_roles`` grants once, with a reason, by a user holding that
role and ``review.credit.exception``; when all have granted, the order moves on
(``credit_exception``). ``recheck_credit`` asks again; ``return_to_sales`` sends it to
draft (outcome ``returned``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.contrib import NotificationTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User
    from core.plugins import Registry
    from plugins.review.models import ReviewCreditHold


def standing_reasons(session: Session, registry: Registry, order: Order) -> list[str]:
    """Every reason a plugin gives why the customer is not in good standing."""
    raise NotImplementedError


def on_enter_credit_check(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Ask the gate; move on, or hold the order with the reasons."""
    raise NotImplementedError


def on_leave(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Close the open hold with how it ended (exception, cleared, returned, cancelled)."""
    raise NotImplementedError


def open_hold(session: Session, order_id: int) -> ReviewCreditHold | None:
    """The order's hold that is still open."""
    raise NotImplementedError


def roles_still_to_grant(session: Session, hold: ReviewCreditHold) -> list[str]:
    """Role codes named by the setting that have not granted on ``hold`` yet."""
    raise NotImplementedError


def grant_exception(session: Session, registry: Registry, actor: User, order: Order, reason: str) -> ReviewCreditHold:
    """Record ``actor``'s grant for one of their named roles; move on when all have granted.

    Refused (ReviewError, nothing changed): no open hold (409), no reason (422), actor
    holds none of the roles still to grant or lacks the permission (403).
    """
    raise NotImplementedError


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()

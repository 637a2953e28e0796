"""Change and cancellation requests (订单变更申请表) and the revisions they make (RV-8, CORE-5).

OWNER: helper "changes" — replace every ``NotImplementedError`` body; keep the signatures.

A request on a submitted or confirmed order says what changes (lines, quantities,
specification, dates, address, scope), why, the impact on each step and the expected
handling time; the affected departments assess it; a user with
``review.changes.approve`` approves or rejects. On approval the order is revised in
place (lines keep their ids), a new :class:`ReviewOrderRevision` keeps the new state
(revision 1, the state before the first change, is kept first), the order goes back to
the step the change needs (``rewind_to``, e.g. re-review) and departments and customer
are told the new delivery date. A cancellation request, approved, cancels the order
with its reason (RV-9) — unless goods have left (``ordo_review_goods_issued``): then it
is refused, a return is needed. Core's plain ``cancel`` of a confirmed order is refused
while review is enabled: it goes through a cancellation request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.contrib import NotificationTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.contrib import Transition
    from core.models import Order, User
    from core.plugins import Registry
    from plugins.review.models import ReviewChangeRequest


def on_transitioned(session: Session, order: Order, transition: Transition, user: User | None) -> None:
    """Keep revision 1 when an order is first confirmed."""
    raise NotImplementedError


def guard(session: Session, order: Order, action: str, transition: Transition, user: User | None) -> list[str]:
    """Refuse a plain ``cancel`` of a confirmed order (it needs a cancellation request)."""
    raise NotImplementedError


def file_request(
    session: Session, registry: Registry, actor: User, order: Order, data: dict[str, Any]
) -> ReviewChangeRequest:
    """File a change or cancellation request (validated; see the module doc); audited."""
    raise NotImplementedError


def assess(
    session: Session, actor: User, request: ReviewChangeRequest, *, verdict: str, comment: str = ""
) -> ReviewChangeRequest:
    """An affected department's assessment; when all have assessed, it waits for approval."""
    raise NotImplementedError


def decide(
    session: Session, registry: Registry, actor: User, request: ReviewChangeRequest, *, approve: bool, reason: str
) -> ReviewChangeRequest:
    """Approve (revise or cancel the order, rewind, notify) or reject the request."""
    raise NotImplementedError


#: Notification templates of this module (collected by the plugin manifest).
NOTIFICATIONS: tuple[NotificationTemplate, ...] = ()

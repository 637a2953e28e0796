"""Review templates: which departments review an order, in one tier or two (RV-1, RV-2, RV-5).

A template (:class:`ReviewTemplate`) names departments by tier; the first *active*
template by ``(priority, id)`` whose conditions all hold decides an order's review:

- ``regular``: the order is regular (常规订单) or not. The hook
  ``ordo_review_is_regular`` answers first (intake's classification); without an
  answer an order is regular when every product on it is marked regular.
- ``min_amount`` (inclusive) / ``max_amount`` (exclusive): the order's ``total``.
- ``product_category``: some line's product is of that category.
- ``urgency``: the order's urgency (``normal`` / ``urgent``).
- ``branch_id``: the order's branch.

An empty condition matches every order. With no matching template — or one whose
departments are all inactive — every active department reviews the order in one tier,
so an order is never left without a review. The sheet module turns the plan into tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.settings import session_registry
from plugins.review.models import ReviewDepartment, ReviewTemplate

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.models import Order


@dataclass(frozen=True)
class ReviewPlan:
    """Who reviews an order: the template applied (None: the fallback) and each tier's departments."""

    template: ReviewTemplate | None
    tiers: dict[int, list[ReviewDepartment]] = field(default_factory=dict)

    @property
    def two_tier(self) -> bool:
        """Whether a committee re-review (tier 2) follows the initial review."""
        return bool(self.tiers.get(2))

    def departments(self, tier: int) -> list[ReviewDepartment]:
        """The departments of ``tier`` (empty when the plan has no such tier)."""
        return list(self.tiers.get(tier, ()))


def is_regular(session: Session, order: Order) -> bool:
    """Whether ``order`` is regular: the hook's answer, else every product is marked regular."""
    answer = session_registry(session).hook.ordo_review_is_regular(order=order, session=session)
    if answer is not None:
        return bool(answer)
    return all(line.product.regular for line in order.lines)


def matches(session: Session, template: ReviewTemplate, order: Order, regular: bool | None = None) -> bool:
    """Whether every condition of ``template`` holds for ``order`` (``regular`` asked only if needed)."""
    if template.min_amount is not None and order.total < template.min_amount:
        return False
    if template.max_amount is not None and order.total >= template.max_amount:
        return False
    if template.product_category and not any(
        line.product.category == template.product_category for line in order.lines
    ):
        return False
    if template.urgency and order.urgency != template.urgency:
        return False
    if template.branch_id is not None and order.branch_id != template.branch_id:
        return False
    if template.regular is not None:
        if regular is None:
            regular = is_regular(session, order)
        if template.regular != regular:
            return False
    return True


def match_template(session: Session, order: Order) -> ReviewTemplate | None:
    """The first active template by ``(priority, id)`` whose conditions all hold (None: no match)."""
    templates = session.scalars(
        select(ReviewTemplate)
        .where(ReviewTemplate.active.is_(True))
        .order_by(ReviewTemplate.priority, ReviewTemplate.id)
    )
    regular: bool | None = None
    for template in templates:
        if template.regular is not None and regular is None:
            regular = is_regular(session, order)
        if matches(session, template, order, regular):
            return template
    return None


def departments_for(template: ReviewTemplate, tier: int) -> list[ReviewDepartment]:
    """The active departments ``template`` names in ``tier``, in their display order."""
    found = [m.department for m in template.departments if m.tier == tier and m.department.active]
    return sorted(found, key=lambda d: (d.position, d.id))


def active_departments(session: Session) -> list[ReviewDepartment]:
    """Every active department, in display order (the fallback review)."""
    return list(
        session.scalars(
            select(ReviewDepartment)
            .where(ReviewDepartment.active.is_(True))
            .order_by(ReviewDepartment.position, ReviewDepartment.id)
        )
    )


def review_plan(session: Session, order: Order) -> ReviewPlan:
    """Who reviews ``order``: the matching template's departments per tier, or the fallback.

    A template with no active department in either tier falls back to every active
    department in one tier; a two-tier template whose tier 1 has no active department
    runs its tier 2 as a single tier.
    """
    template = match_template(session, order)
    if template is not None:
        first, second = departments_for(template, 1), departments_for(template, 2)
        if first and second and template.two_tier:
            return ReviewPlan(template, {1: first, 2: second})
        merged = first or second
        if not template.two_tier and first and second:
            # A single-tier template naming tier-2 departments: all review at once.
            merged = _unique([*first, *second])
        if merged:
            return ReviewPlan(template, {1: merged})
    return ReviewPlan(None, {1: active_departments(session)})


def _unique(departments: list[ReviewDepartment]) -> list[ReviewDepartment]:
    seen: set[int] = set()
    out = []
    for department in departments:
        if department.id not in seen:
            seen.add(department.id)
            out.append(department)
    return sorted(out, key=lambda d: (d.position, d.id))

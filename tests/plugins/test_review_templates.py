"""Review templates choose the departments (RV-1, RV-2, RV-5): regular or not (the hook first,
else the products), amount thresholds, product category, urgency and branch; the first active
template by priority wins, and without a usable template every active department reviews."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Order, User
from core.plugins import Registry
from core.testing import make_order, make_user
from plugins.review import templates
from plugins.review.models import ReviewDepartment, ReviewTemplate, ReviewTemplateDepartment

CABINET = [{"product": "P-200", "quantity": "1", "unit_price": "8800.00"}]
LARGE = [{"product": "P-100", "quantity": "500", "unit_price": "1200.00"}]  # 678,000.00 with 13 % tax


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def sales(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "sales@example.com", ["sales"], branch=seed["hq"])


def by_name(session: Session, name: str) -> ReviewTemplate:
    return session.scalars(select(ReviewTemplate).where(ReviewTemplate.name == name)).one()


def department(session: Session, code: str) -> ReviewDepartment:
    return session.scalars(select(ReviewDepartment).where(ReviewDepartment.code == code)).one()


def codes(departments: list[ReviewDepartment]) -> list[str]:
    return [d.code for d in departments]


def add_template(session: Session, name: str, departments: list[str], **conditions: Any) -> ReviewTemplate:
    template = ReviewTemplate(name=name, **conditions)
    template.departments = [
        ReviewTemplateDepartment(department_id=department(session, code).id, tier=1) for code in departments
    ]
    session.add(template)
    session.commit()
    return template


class Classifier:
    """An integrator plugin (like intake) that classifies every order."""

    def __init__(self, answer: bool | None):
        self.answer = answer

    @hookimpl(optionalhook=True)
    def ordo_review_is_regular(self, order: Order, session: Session) -> bool | None:
        return self.answer


@pytest.mark.req("RV-5")
def test_regular_orders_go_to_production_and_finance_non_regular_to_every_department(session, sales):
    regular = make_order(session, sales)
    non_regular = make_order(session, sales, reference="PO-2", lines=CABINET)
    assert templates.is_regular(session, regular) and not templates.is_regular(session, non_regular)
    assert templates.match_template(session, regular) == by_name(session, "Regular orders")
    assert templates.match_template(session, non_regular) == by_name(session, "Non-regular orders")
    plan = templates.review_plan(session, regular)
    assert codes(plan.departments(1)) == ["production", "finance"] and not plan.two_tier
    assert codes(templates.review_plan(session, non_regular).departments(1)) == [
        "technical",
        "production",
        "quality",
        "purchasing",
        "finance",
    ]


@pytest.mark.req("RV-5")
def test_the_regular_hook_answers_before_the_products(session, registry, sales):
    order = make_order(session, sales)  # every product regular
    classifier = Classifier(False)
    registry.pm.register(classifier, name="test_classifier")
    try:
        assert templates.match_template(session, order) == by_name(session, "Non-regular orders")
        classifier.answer = None  # cannot tell: the products decide again
        assert templates.match_template(session, order) == by_name(session, "Regular orders")
    finally:
        registry.pm.unregister(name="test_classifier")


@pytest.mark.req("RV-2")
def test_a_large_order_gets_the_two_tier_template(session, sales):
    order = make_order(session, sales, lines=LARGE)
    assert order.total == Decimal("678000.00")
    plan = templates.review_plan(session, order)
    assert plan.template == by_name(session, "Large orders: branch review, then committee")
    assert plan.two_tier
    assert codes(plan.departments(1)) == ["technical", "production", "quality"]
    assert codes(plan.departments(2)) == ["quality", "purchasing", "finance"]


@pytest.mark.req("RV-1")
def test_amounts_match_from_the_minimum_inclusive_to_the_maximum_exclusive(session, sales):
    order = make_order(session, sales)
    band = add_template(session, "Band", ["quality"], priority=1, min_amount=order.total, max_amount=order.total + 1)
    assert templates.match_template(session, order) == band
    band.min_amount, band.max_amount = order.total - 1, order.total
    session.commit()
    assert templates.match_template(session, order) == by_name(session, "Regular orders")


@pytest.mark.req("RV-1")
def test_a_product_category_matches_when_any_line_has_it(session, sales):
    cabinets = add_template(session, "Cabinets", ["technical"], priority=1, product_category="cabinets")
    mixed = make_order(session, sales, lines=[*CABINET, {"product": "P-300", "quantity": "10"}])
    plain = make_order(session, sales, reference="PO-2")
    assert templates.match_template(session, mixed) == cabinets
    assert templates.match_template(session, plain) != cabinets


@pytest.mark.req("RV-1")
def test_urgency_and_branch_conditions(session, seed, sales):
    urgent_tpl = add_template(session, "Urgent", ["production"], priority=1, urgency="urgent")
    branch_tpl = add_template(session, "Chengdu", ["finance"], priority=2, branch_id=seed["cd"].id)
    cd_sales = make_user(session, "cd.sales@example.com", ["sales"], branch=seed["cd"])
    urgent = make_order(session, sales, urgency="urgent")
    chengdu = make_order(session, cd_sales, reference="PO-CD")
    normal = make_order(session, sales, reference="PO-3")
    assert chengdu.branch_id == seed["cd"].id
    assert templates.match_template(session, urgent) == urgent_tpl
    assert templates.match_template(session, chengdu) == branch_tpl
    assert templates.match_template(session, normal) == by_name(session, "Regular orders")


@pytest.mark.req("RV-1")
def test_priority_then_id_decides_and_inactive_templates_are_skipped(session, sales):
    order = make_order(session, sales)
    first = add_template(session, "First", ["quality"], priority=1)
    add_template(session, "Same priority, later id", ["technical"], priority=1)
    assert templates.match_template(session, order) == first
    first.active = False
    session.commit()
    assert templates.match_template(session, order).name == "Same priority, later id"


@pytest.mark.req("RV-1")
def test_without_a_usable_template_every_active_department_reviews_in_one_tier(session, sales):
    order = make_order(session, sales, lines=LARGE)
    # A template whose departments are all inactive falls back too.
    only_purchasing = add_template(session, "Purchasing only", ["purchasing"], priority=1)
    department(session, "purchasing").active = False
    session.commit()
    assert templates.match_template(session, order) == only_purchasing
    plan = templates.review_plan(session, order)
    assert plan.template is None and not plan.two_tier
    assert codes(plan.departments(1)) == ["technical", "production", "quality", "finance"]
    session.execute(update(ReviewTemplate).values(active=False))
    session.commit()
    assert templates.match_template(session, order) is None
    assert codes(templates.review_plan(session, order).departments(1)) == [
        "technical",
        "production",
        "quality",
        "finance",
    ]


@pytest.mark.req("RV-2")
def test_inactive_departments_are_left_out_of_a_tier(session, sales):
    order = make_order(session, sales, lines=LARGE)
    department(session, "quality").active = False
    session.commit()
    plan = templates.review_plan(session, order)
    assert codes(plan.departments(1)) == ["technical", "production"]
    assert codes(plan.departments(2)) == ["purchasing", "finance"]

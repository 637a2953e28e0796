"""Change and cancellation requests (RV-8, RV-9, CORE-5): a confirmed order changes only through
an approved request — the affected departments assess it, an approver decides, the order is
revised in place with its revisions kept and the differences viewable, the order goes back to
re-review and departments and customer are told; a cancellation keeps its reason; goods that
have left (logistics' answer, here a tiny integrator plugin) refuse what would need a return."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import AuditLog, Notification, Order, OrderLine, OrderTransition, StepSetting, User
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.review import changes, revisions, sheets
from plugins.review.errors import ReviewError
from plugins.review.flow import CONSOLIDATION, CREDIT_CHECK, DEPARTMENT_REVIEW, FINAL_APPROVAL
from plugins.review.models import ReviewChangeRequest, ReviewOrderRevision

FAR = "2030-03-15"
LATER = "2030-04-30"
REVIEW_STEPS = (CREDIT_CHECK, DEPARTMENT_REVIEW, CONSOLIDATION, FINAL_APPROVAL)


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


class GoodsIssued:
    """Stands in for logistics: answers what has shipped per order line."""

    def __init__(self) -> None:
        self.shipped: dict[int, dict[int, Decimal]] = {}

    @hookimpl(optionalhook=True)
    def ordo_review_goods_issued(self, order: Order, session: Session) -> dict[int, Decimal]:
        return dict(self.shipped.get(order.id, {}))


@pytest.fixture
def goods(registry: Registry) -> Iterator[GoodsIssued]:
    plugin = GoodsIssued()
    registry.pm.register(plugin, name="test_goods")
    yield plugin
    registry.pm.unregister(name="test_goods")


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
        "tech": make_user(session, "tech@example.com", ["review_technical"], branch=hq),
        "prod": make_user(session, "prod@example.com", ["review_production"], branch=hq),
        "quality": make_user(session, "quality@example.com", ["review_quality"], branch=hq),
        "purch": make_user(session, "purch@example.com", ["review_purchasing"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
    }


def confirmed_order(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    """An order taken to *confirmed* with review's steps switched off, then review switched on again."""
    session.add_all(StepSetting(key=key, enabled=False) for key in REVIEW_STEPS)
    session.commit()
    order = make_order(session, people["sales"], requested_date=FAR)
    take_action(session, registry, people["sales"], order, "submit")
    take_action(session, registry, people["manager"], order, "confirm")
    session.execute(delete(StepSetting).where(StepSetting.key.in_(REVIEW_STEPS)))
    session.commit()
    assert (order.status, order.step) == ("confirmed", "confirmed")
    return order


@pytest.fixture
def order(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    return confirmed_order(session, registry, people)


def line_of(order: Order, sku: str) -> OrderLine:
    return next(line for line in order.lines if line.product.sku == sku)


def notices(session: Session, template: str, order: Order) -> list[Notification]:
    query = select(Notification).where(Notification.template == template, Notification.order_id == order.id)
    return list(session.scalars(query.order_by(Notification.id)))


def quantity_and_date(order: Order) -> dict[str, Any]:
    motor = line_of(order, "P-100")
    return {
        "kind": "change",
        "reason": "The customer needs five motors and a later date.",
        "content": {"lines": [{"line_id": motor.id, "quantity": "5"}], "requested_date": LATER},
        "impact": {DEPARTMENT_REVIEW: "Production re-plans capacity."},
        "expected_days": 3,
        "new_delivery_date": LATER,
    }


def assess_all(session: Session, request: ReviewChangeRequest, people: dict[str, User]) -> None:
    by_role = {
        "review_technical": "tech",
        "review_production": "prod",
        "review_quality": "quality",
        "review_purchasing": "purch",
        "finance": "finance",
    }
    for assessment in list(request.assessments):
        changes.assess(session, people[by_role[assessment.department.role_code]], request, verdict="approve")
    session.commit()


# --- the whole path ------------------------------------------------------------------------


@pytest.mark.req("RV-8")
@pytest.mark.req("CORE-5")
def test_an_approved_change_revises_the_order_in_place_rewinds_it_and_tells_everyone(
    session, registry, people, order, seed
):
    (first,) = revisions.revisions_of(session, order.id)
    assert (first.number, first.note) == (1, "confirmed")
    ids_before = [line.id for line in order.lines]
    version_before = order.version
    motor = line_of(order, "P-100")

    request = changes.file_request(session, registry, people["sales"], order, quantity_and_date(order))
    session.commit()
    assert (request.number, request.status, request.rewind_to) == (1, "assessing", DEPARTMENT_REVIEW)
    # Quantity and date: technical (date), production (date, quantity), purchasing (quantity).
    assert sorted(a.department.code for a in request.assessments) == ["production", "purchasing", "technical"]
    assert request.content["lines"] == [
        {"line_id": motor.id, "position": 1, "product": "P-100", "quantity": "5", "was": {"quantity": "2"}}
    ]
    assert {n.user_id for n in notices(session, "review.change_requested", order)} == {
        people["tech"].id,
        people["prod"].id,
        people["purch"].id,
    }
    # Filing changes nothing on the order.
    assert motor.quantity == Decimal("2") and order.version == version_before

    assess_all(session, request, people)
    assert request.status == "pending_approval"
    assert people["manager"].id in {n.user_id for n in notices(session, "review.change_to_approve", order)}

    generic_before = [n for n in notices(session, "order_status_changed", order) if n.customer_id]
    changes.decide(session, registry, people["manager"], request, approve=True, reason="Capacity confirmed.")
    session.commit()
    session.refresh(order)
    assert request.status == "approved" and request.decided_by_id == people["manager"].id
    # Revised in place: the same line ids, the new quantity and date, a new version, totals recomputed.
    assert [line.id for line in order.lines] == ids_before
    assert line_of(order, "P-100").quantity == Decimal("5")
    assert order.requested_date.isoformat() == LATER
    assert order.version > version_before
    assert order.untaxed_amount == Decimal("7000.00")  # 5 × 1150 + 100 × 12.50
    # Revision 1 kept as it was, revision 2 is the new state; the diff shows what changed.
    kept = revisions.revisions_of(session, order.id)
    assert [r.number for r in kept] == [1, 2] and request.revision_id == kept[1].id
    differences = {d.what: (d.before, d.after) for d in revisions.diff(kept[0].snapshot, kept[1].snapshot)}
    assert differences[f"lines.{motor.id}.quantity"] == ("2", "5")
    assert differences["requested_date"] == (FAR, LATER)
    assert "total" in differences and kept[0].snapshot["lines"][0]["quantity"] == "2"
    # Back to department review: a new review round opens, the order must be confirmed again.
    assert (order.status, order.step) == ("submitted", DEPARTMENT_REVIEW)
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()[-1]
    assert (last.action, last.from_step, last.to_step) == ("revise", "confirmed", DEPARTMENT_REVIEW)
    assert "Change request 1" in last.reason
    assert sheets.current_sheet(session, order.id) is not None
    # Departments, requester and customer are told, with the new delivery date.
    decided = notices(session, "review.change_decided", order)
    assert {n.customer_id for n in decided if n.customer_id} == {seed["local"].id}
    told = {n.user_id for n in decided if n.user_id}
    assert {people["sales"].id, people["tech"].id, people["quality"].id, people["finance"].id} <= told
    customer_notice = next(n for n in decided if n.customer_id)
    assert "2030" in customer_notice.body and order.number in customer_notice.subject
    # Not also the generic "your order is submitted again" notice.
    assert [n for n in notices(session, "order_status_changed", order) if n.customer_id] == generic_before
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.entity == "review_change_request", AuditLog.order_id == order.id)
    ).all()
    assert actions == ["file", "assess", "assess", "assess", "approve"]
    assert session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.entity == "order", AuditLog.action == "revise")
    )


@pytest.mark.req("RV-8")
def test_lines_added_and_removed_keep_the_other_ids_and_an_address_change_needs_no_department(
    session, registry, people, order
):
    cable, motor = line_of(order, "P-300"), line_of(order, "P-100")
    request = changes.file_request(
        session,
        registry,
        people["sales"],
        order,
        {
            "reason": "Site moved.",
            "content": {"ship_to": {"address": "两江新区 9 号", "city": "重庆市"}},
            "rewind_to": "confirmed",
        },
    )
    session.commit()
    # Only the address changes (the city is the same): no department assesses, approval at once.
    assert request.content["ship_to"] == {"address": "两江新区 9 号"}
    assert request.status == "pending_approval" and request.assessments == []
    changes.decide(session, registry, people["manager"], request, approve=True, reason="")
    session.commit()
    assert order.ship_to_address == "两江新区 9 号" and (order.status, order.step) == ("confirmed", "confirmed")

    second = changes.file_request(
        session,
        registry,
        people["sales"],
        order,
        {
            "reason": "Cabinet instead of cable.",
            "content": {
                "lines": [{"line_id": cable.id, "remove": True}, {"product": "P-200", "quantity": "1"}],
            },
        },
    )
    session.commit()
    assert second.number == 2 and len(second.assessments) == 5  # a new product: every department
    assess_all(session, second, people)
    changes.decide(session, registry, people["manager"], second, approve=True, reason="OK")
    session.commit()
    session.refresh(order)
    assert [line.product.sku for line in order.lines] == ["P-100", "P-200"]
    assert line_of(order, "P-100").id == motor.id and line_of(order, "P-200").unit_price == Decimal("8800")
    assert [r.number for r in revisions.revisions_of(session, order.id)] == [1, 2, 3]
    kept = revisions.revisions_of(session, order.id)
    whats = [d.what for d in revisions.diff(kept[1].snapshot, kept[2].snapshot)]
    assert f"lines.{cable.id}" in whats and any(w.startswith("lines.") and w != f"lines.{cable.id}" for w in whats)


@pytest.mark.req("RV-8")
def test_a_rejected_change_changes_nothing_and_needs_a_reason(session, registry, people, order):
    before = revisions.snapshot(order)
    version = order.version
    request = changes.file_request(session, registry, people["sales"], order, quantity_and_date(order))
    session.commit()
    assess_all(session, request, people)
    with pytest.raises(ReviewError) as refused:
        changes.decide(session, registry, people["manager"], request, approve=False, reason=" ")
    assert refused.value.status == 422 and request.status == "pending_approval"
    changes.decide(session, registry, people["manager"], request, approve=False, reason="No capacity in April.")
    session.commit()
    session.refresh(order)
    assert request.status == "rejected" and request.decision_reason == "No capacity in April."
    assert revisions.snapshot(order) == before and order.version == version
    assert (order.status, order.step) == ("confirmed", "confirmed")
    assert [r.number for r in revisions.revisions_of(session, order.id)] == [1]
    (notice,) = [n for n in notices(session, "review.change_decided", order) if n.user_id == people["sales"].id]
    assert "No capacity in April." in notice.body
    assert not [n for n in notices(session, "review.change_decided", order) if n.customer_id]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.req("CORE-5")
def test_requests_on_draft_or_cancelled_orders_are_refused(session, registry, people, seed):
    draft = make_order(session, people["sales"], requested_date=FAR)
    with pytest.raises(ReviewError) as refused:
        changes.file_request(session, registry, people["sales"], draft, {"reason": "x", "scope": "more"})
    assert (refused.value.status, refused.value.code) == (409, "order_is_draft")
    take_action(session, registry, people["manager"], draft, "cancel", "Customer withdrew.")
    session.commit()
    with pytest.raises(ReviewError) as refused:
        changes.file_request(session, registry, people["sales"], draft, {"reason": "x", "kind": "cancel"})
    assert (refused.value.status, refused.value.code) == (409, "order_closed")
    assert "cancelled" in refused.value.message
    assert session.scalar(select(func.count()).select_from(ReviewChangeRequest)) == 0


@pytest.mark.req("RV-8")
def test_bad_input_is_refused_field_by_field_and_nothing_is_written(session, registry, people, order):
    with pytest.raises(ReviewError) as refused:
        changes.file_request(
            session,
            registry,
            people["sales"],
            order,
            {
                "reason": "",
                "content": {
                    "lines": [{"line_id": 999999, "quantity": "1"}, {"line_id": order.lines[0].id, "quantity": "0"}],
                    "requested_date": "tomorrow",
                },
                "rewind_to": "review.nowhere",
                "expected_days": "-2",
            },
        )
    details = refused.value.details
    assert refused.value.status == 422
    assert set(details) == {"reason", "lines", "requested_date", "rewind_to", "expected_days"}
    assert details["lines"][0] == {"line_id": [changes.NOT_A_LINE]}
    assert details["lines"][1] == {"quantity": [changes.QUANTITY_POSITIVE]}
    with pytest.raises(ReviewError) as nothing:
        changes.file_request(
            session, registry, people["sales"], order, {"reason": "same", "content": {"requested_date": FAR}}
        )
    assert nothing.value.code == "nothing_to_change"
    with pytest.raises(ReviewError) as forbidden:
        changes.file_request(session, registry, people["tech"], order, {"reason": "x", "scope": "more"})
    assert forbidden.value.status == 403
    assert session.scalar(select(func.count()).select_from(ReviewChangeRequest)) == 0


@pytest.mark.req("RV-8")
def test_only_affected_departments_assess_once_and_only_approvers_decide(session, registry, people, order):
    request = changes.file_request(session, registry, people["sales"], order, quantity_and_date(order))
    session.commit()
    with pytest.raises(ReviewError) as outsider:  # quality is not affected by quantity and date
        changes.assess(session, people["quality"], request, verdict="approve")
    assert (outsider.value.status, outsider.value.code) == (403, "not_department_member")
    with pytest.raises(ReviewError) as early:
        changes.decide(session, registry, people["manager"], request, approve=True, reason="")
    assert (early.value.status, early.value.code) == (409, "not_pending")
    with pytest.raises(ReviewError) as bare:
        changes.assess(session, people["tech"], request, verdict="reject")
    assert bare.value.details == {"comment": [changes.COMMENT_NEEDED]}
    changes.assess(session, people["tech"], request, verdict="approve_with_conditions", comment="Drawings by 4-10.")
    with pytest.raises(ReviewError) as twice:
        changes.assess(session, people["tech"], request, verdict="approve")
    assert (twice.value.status, twice.value.code) == (409, "already_assessed")
    changes.assess(session, people["prod"], request, verdict="approve")
    changes.assess(session, people["purch"], request, verdict="approve")
    session.commit()
    with pytest.raises(ReviewError) as forbidden:
        changes.decide(session, registry, people["sales"], request, approve=True, reason="")
    assert forbidden.value.status == 403 and request.status == "pending_approval"
    with pytest.raises(ReviewError) as second:
        changes.file_request(session, registry, people["sales"], order, {"reason": "x", "scope": "more"})
    assert (second.value.status, second.value.code) == (409, "request_open")


@pytest.mark.req("CORE-5")
def test_a_line_cannot_go_below_what_has_shipped(session, registry, people, order, goods):
    motor, cable = line_of(order, "P-100"), line_of(order, "P-300")
    goods.shipped[order.id] = {motor.id: Decimal("2"), cable.id: Decimal("0")}
    with pytest.raises(ReviewError) as below:
        changes.file_request(
            session,
            registry,
            people["sales"],
            order,
            {"reason": "Fewer", "content": {"lines": [{"line_id": motor.id, "quantity": "1"}]}},
        )
    assert below.value.code == "below_shipped" and "2 already shipped" in below.value.message
    with pytest.raises(ReviewError) as removed:
        changes.file_request(
            session,
            registry,
            people["sales"],
            order,
            {"reason": "Drop", "content": {"lines": [{"line_id": motor.id, "remove": "1"}]}},
        )
    assert removed.value.code == "line_shipped"
    # The cable has not shipped: it may go down; shipping meanwhile refuses the approval.
    request = changes.file_request(
        session,
        registry,
        people["sales"],
        order,
        {"reason": "Less cable", "content": {"lines": [{"line_id": cable.id, "quantity": "50"}]}},
    )
    session.commit()
    assess_all(session, request, people)
    goods.shipped[order.id][cable.id] = Decimal("80")
    with pytest.raises(ReviewError) as late:
        changes.decide(session, registry, people["manager"], request, approve=True, reason="")
    session.rollback()
    assert late.value.code == "below_shipped"
    session.refresh(order)
    assert line_of(order, "P-300").quantity == Decimal("100") and request.status == "pending_approval"


@pytest.mark.req("RV-9")
@pytest.mark.req("CORE-5")
def test_a_cancellation_after_goods_issue_is_refused_a_return_is_needed(session, registry, people, order, goods):
    goods.shipped[order.id] = {line_of(order, "P-100").id: Decimal("1")}
    with pytest.raises(ReviewError) as refused:
        changes.file_request(session, registry, people["sales"], order, {"kind": "cancel", "reason": "Not needed."})
    assert (refused.value.status, refused.value.code) == (409, "goods_issued")
    assert "a return is needed" in refused.value.message
    assert session.scalar(select(func.count()).select_from(ReviewChangeRequest)) == 0


@pytest.mark.req("RV-9")
def test_an_approved_cancellation_cancels_the_order_with_its_reason(session, registry, people, order, seed):
    request = changes.file_request(
        session, registry, people["sales"], order, {"kind": "cancel", "reason": "Project stopped by the owner."}
    )
    session.commit()
    assert request.status == "assessing" and len(request.assessments) == 5
    assess_all(session, request, people)
    changes.decide(session, registry, people["manager"], request, approve=True, reason="Nothing produced yet.")
    session.commit()
    assert (order.status, order.step) == ("cancelled", "cancelled") and request.status == "approved"
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()[-1]
    assert last.action == "cancel" and "Project stopped by the owner." in last.reason
    (customer,) = [n for n in notices(session, "review.change_decided", order) if n.customer_id]
    assert "Project stopped by the owner." in customer.body
    assert session.scalar(select(func.count()).select_from(ReviewOrderRevision)) == 1


@pytest.mark.req("CORE-5")
def test_a_plain_cancel_of_a_confirmed_order_is_refused(session, registry, people, order):
    with pytest.raises(ServiceError) as refused:
        take_action(session, registry, people["manager"], order, "cancel", "Customer called.")
    assert refused.value.code == "transition_refused"
    assert refused.value.details["reasons"] == [changes.CANCEL_NEEDS_REQUEST]
    assert order.status == "confirmed"


def test_an_order_cancelled_while_a_request_is_open_withdraws_it(session, registry, people):
    session.add_all(StepSetting(key=key, enabled=False) for key in REVIEW_STEPS)
    session.commit()
    submitted = make_order(session, people["sales"], requested_date=FAR)
    take_action(session, registry, people["sales"], submitted, "submit")
    session.commit()
    request = changes.file_request(session, registry, people["sales"], submitted, {"reason": "x", "scope": "more"})
    take_action(session, registry, people["manager"], submitted, "cancel", "Customer withdrew.")
    session.commit()
    assert request.status == "withdrawn" and "cancelled" in request.decision_reason
